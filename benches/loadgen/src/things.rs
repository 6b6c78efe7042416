//! The `things` scenario (Lithos only: the TUXP protocols): an operator authorizes N
//! temperature reporters and one light; each registers in band (IBTR) on the things port
//! and logs in; the reporters send M reports each at QoS 0, then M at QoS 1 (W in flight);
//! then the operator, owner of the light, executes C commands on it, one at a time.
//! Reports/s per level, command round trip p50/p99, server CPU per 1,000 reports.

use std::net::SocketAddr;
use std::time::Instant;

use lithos_core::{Element, ns};
use tokio::sync::Semaphore;

use crate::ingest::{CONSUMER_STALL, Ingest, Measured, Outcome, Phase};
use crate::{
    Conn, Target, authenticate_as, connector, cpu_ms, ms_per_1000, next_element, percentile,
    rss_kib, secure, send,
};

const IBTR: &str = "urn:leps:tuxp:ibtr";
const OPERATOR: &str = "urn:leps:tuxp:operator";
const SENSOR: &str = "urn:leps:tuxp:sensor";
const ACTUATOR: &str = "urn:leps:tuxp:actuator";
const TEMPERATURE: &str = "urn:leps:things:simple-temperature-reporter";
const LIGHT: &str = "urn:leps:things:simple-light";

/// Where the things and their operator connect (the `things` and `reports` scenarios).
#[derive(clap::Args, Clone)]
pub(crate) struct ThingsServer {
    /// The client port (`--addr`), the operator's account (`--password`), TLS, format.
    #[command(flatten)]
    target: Target,
    /// The things port.
    #[arg(long, default_value = "127.0.0.1:6222")]
    things_addr: SocketAddr,
    /// The operator (named in the server's `[modules.operator] operators`), who authorizes
    /// and owns the things (and commands them, or follows their reports).
    #[arg(long, default_value = "operator")]
    operator: String,
}

impl ThingsServer {
    /// The things port, with the rest of the target.
    fn things_target(&self) -> Target {
        Target {
            addr: self.things_addr,
            ..self.target.clone()
        }
    }
}

/// Options of the `things` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct ThingsArgs {
    #[command(flatten)]
    server: ThingsServer,
    /// Temperature reporters.
    #[arg(long, default_value_t = 200)]
    things: usize,
    /// Reports per thing and QoS level.
    #[arg(long, default_value_t = 50)]
    reports: usize,
    /// QoS 1 reports in flight per thing.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Commands executed on the light, one at a time.
    #[arg(long, default_value_t = 2000)]
    commands: usize,
}

fn iq(kind: &str, id: &str, to: Option<&str>, payload: Element) -> Element {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr("type", kind.to_string())
        .attr("id", id.to_string())
        .opt_attr("to", to.map(str::to_string))
        .child(payload)
        .build()
}

/// Sends a request and waits for its answer (other stanzas are skipped).
async fn request(c: &mut Conn, el: Element) -> Result<Element, String> {
    let id = el.attr("id").unwrap_or_default().to_string();
    send(c, el).await?;
    loop {
        let a = next_element(c).await?;
        if a.name() == "iq" && a.attr("id") == Some(&id) {
            return match a.attr("type") {
                Some("result") => Ok(a),
                _ => Err(format!("refused: {a}")),
            };
        }
    }
}

fn text_of(el: &Element, name: &str) -> Option<String> {
    fn find(el: &Element, name: &str) -> Option<String> {
        if el.is(name, IBTR) {
            return Some(el.text());
        }
        el.children().find_map(|c| find(c, name))
    }
    find(el, name)
}

/// Registers `id` in band; gives its account name and password.
async fn register(target: &Target, id: &str) -> Result<(String, String), String> {
    let tls = target.tls.then(connector);
    let mut c = secure(target, tls.as_ref()).await?;
    let req = Element::builder("thing-register", IBTR)
        .child(
            Element::builder("unregistered-edge-thing", IBTR)
                .child(
                    Element::builder("thing-id", IBTR)
                        .text(id.to_string())
                        .build(),
                )
                .child(
                    Element::builder("registration-key", IBTR)
                        .text("LOADGEN-KEY")
                        .build(),
                )
                .build(),
        )
        .build();
    let a = request(&mut c, iq("set", "r", None, req)).await?;
    match (text_of(&a, "thing-name"), text_of(&a, "credentials")) {
        (Some(n), Some(p)) => Ok((n, p)),
        _ => Err(format!("no credentials in {a}")),
    }
}

fn report(qos: u8, id: usize) -> Element {
    iq(
        "set",
        &format!("q{qos}-{id}"),
        None,
        Element::builder("report", SENSOR)
            .attr("qos", qos.to_string())
            .child(
                Element::builder("celsius-degree", TEMPERATURE)
                    .attr("value", format!("{}.5", id % 40))
                    .build(),
            )
            .build(),
    )
}

/// One thing's reports at `qos`: all of them, then (QoS 0) a QoS 1 fence whose answer
/// says the server has taken everything before it; `window` in flight at QoS 1. Gives the
/// acknowledgement latencies (ms) of the QoS 1 reports.
async fn reports(c: &mut Conn, qos: u8, n: usize, window: usize) -> Result<Vec<f64>, String> {
    if qos == 0 {
        for i in 0..n {
            send(c, report(0, i)).await?;
        }
        return request(c, report(1, usize::MAX)).await.map(|_| Vec::new());
    }
    let mut sent_at = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        while sent_at.len() < n && sent_at.len() - latencies.len() < window {
            send(c, report(1, sent_at.len())).await?;
            sent_at.push(Instant::now());
        }
        let a = next_element(c).await?;
        if a.name() == "iq" {
            match a.attr("type") {
                Some("result") => {
                    let i = a
                        .attr("id")
                        .and_then(|id| id.strip_prefix("q1-"))
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| sent_at.get(i))
                        .ok_or_else(|| format!("an answer to no report: {a}"))?;
                    latencies.push(i.elapsed().as_secs_f64() * 1000.0);
                }
                Some("error") => return Err(format!("report refused: {a}")),
                _ => {}
            }
        }
    }
    Ok(latencies)
}

/// The operator's connection, logged in.
async fn operator(t: &Target, name: &str) -> Result<Conn, String> {
    let tls = t.tls.then(connector);
    let mut op = secure(t, tls.as_ref()).await?;
    authenticate_as(t, &mut op, name, "lg").await?;
    Ok(op)
}

/// `count` fresh thing ids of `model` (fresh every run, so a server keeps working across
/// runs), authorized by the operator.
async fn authorize(
    op: &mut Conn,
    t: &Target,
    model: &str,
    count: usize,
) -> Result<Vec<String>, String> {
    let run: u32 = rand::random();
    let mut ids = Vec::with_capacity(count);
    for k in 0..count {
        let id = format!("{model}-{:08X}", run.wrapping_add(k as u32));
        let auth = Element::builder("auth-thing", OPERATOR)
            .attr("thing-id", id.clone())
            .attr("registration-key", "LOADGEN-KEY")
            .build();
        request(op, iq("set", &format!("a{k}"), Some(&t.domain), auth)).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Runs `work` for every item, `at_once` at a time, in order of the items.
async fn each<I, T, F>(
    items: Vec<I>,
    at_once: usize,
    work: impl Fn(I) -> F,
) -> Result<Vec<T>, String>
where
    F: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let gate = std::sync::Arc::new(Semaphore::new(at_once));
    let mut joins = Vec::with_capacity(items.len());
    for item in items {
        let (gate, job) = (gate.clone(), work(item));
        joins.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            job.await
        }));
    }
    let mut out = Vec::with_capacity(joins.len());
    for j in joins {
        out.push(j.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// Logs a registered thing in as `<name>@<domain>/0`, available.
async fn thing_login(
    target: Target,
    name: String,
    password: String,
) -> Result<(String, Conn), String> {
    let target = Target { password, ..target };
    let tls = target.tls.then(connector);
    let mut c = secure(&target, tls.as_ref()).await?;
    authenticate_as(&target, &mut c, &name, "0").await?;
    send(&mut c, Element::bare("presence", ns::JABBER_CLIENT)).await?;
    Ok((name, c))
}

/// Registers every id on the things port (20 at a time), then logs them in (100 at a time).
async fn register_and_login(
    things_target: &Target,
    ids: Vec<String>,
    between: impl FnOnce(),
) -> Result<Vec<(String, Conn)>, String> {
    let t = things_target.clone();
    let creds = each(ids, 20, move |id| {
        let t = t.clone();
        async move { register(&t, &id).await }
    })
    .await?;
    between();
    let t = things_target.clone();
    each(creds, 100, move |(name, password)| {
        thing_login(t.clone(), name, password)
    })
    .await
}

pub(crate) async fn things(args: ThingsArgs) {
    let fail = |what: &str, e: String| {
        println!(
            "{{\"scenario\":\"things\",\"error\":{:?}}}",
            format!("{what}: {e}")
        );
    };
    let t = &args.server.target;
    let mut op = match operator(t, &args.server.operator).await {
        Ok(c) => c,
        Err(e) => return fail("operator logs in", e),
    };
    let light = match authorize(&mut op, t, "SL-01", 1).await {
        Ok(l) => l,
        Err(e) => return fail("authorization", e),
    };
    let ids = match authorize(&mut op, t, "STR-01", args.things).await {
        Ok(ids) => ids,
        Err(e) => return fail("authorization", e),
    };
    let things_target = args.server.things_target();
    let all = light.into_iter().chain(ids).collect();
    let mut conns = match register_and_login(&things_target, all, || ()).await {
        Ok(c) => c,
        Err(e) => return fail("registration", e),
    };
    let (light_name, mut light_conn) = conns.remove(0);
    // The light answers every execution at once.
    let responder = tokio::spawn(async move {
        while let Ok(el) = next_element(&mut light_conn).await {
            if el.name() == "iq" && el.attr("type") == Some("set") {
                let answer = Element::builder("iq", ns::JABBER_CLIENT)
                    .attr("type", "result")
                    .attr("id", el.attr("id").unwrap_or_default().to_string())
                    .opt_attr("to", el.attr("from").map(str::to_string))
                    .build();
                if send(&mut light_conn, answer).await.is_err() {
                    break;
                }
            }
        }
    });

    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    let total = args.things * args.reports;
    for qos in [0u8, 1] {
        let cpu_before = t.server_pid.and_then(cpu_ms);
        let start = Instant::now();
        let mut joins = Vec::new();
        for (_, mut c) in std::mem::take(&mut conns) {
            let (n, w) = (args.reports, args.in_flight.max(1));
            joins.push(tokio::spawn(async move {
                reports(&mut c, qos, n, w).await.map(|_| c)
            }));
        }
        for j in joins {
            match j.await.expect("task") {
                Ok(c) => conns.push((String::new(), c)),
                Err(e) => return fail("reports", e),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push(total as f64 / secs);
        cpu.push(ms_per_1000(
            cpu_before,
            t.server_pid.and_then(cpu_ms),
            total,
        ));
    }

    // Commands: the owner executes `flash` on the light, one at a time.
    let to = format!("{light_name}@{}", t.domain);
    let mut rtts = Vec::with_capacity(args.commands);
    for k in 0..args.commands {
        let exec = Element::builder("execution", ACTUATOR)
            .child(Element::builder("flash", LIGHT).attr("repeat", "1").build())
            .build();
        let started = Instant::now();
        if let Err(e) = request(&mut op, iq("set", &format!("e{k}"), Some(&to), exec)).await {
            return fail("command", e);
        }
        rtts.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    responder.abort();
    rtts.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"scenario\":\"things\",\"things\":{},\"reports_per_thing\":{},\"in_flight\":{},\"qos0_reports_per_s\":{:.0},\"qos1_reports_per_s\":{:.0},\"server_cpu_ms_per_1000_qos0\":{},\"server_cpu_ms_per_1000_qos1\":{},\"commands\":{},\"command_p50_ms\":{:.3},\"command_p99_ms\":{:.3}}}",
        args.things,
        args.reports,
        args.in_flight,
        rates[0],
        rates[1],
        cpu[0],
        cpu[1],
        rtts.len(),
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
    );
}

/// Options of the `reports` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct ReportsArgs {
    #[command(flatten)]
    server: ThingsServer,
    /// What the run is called in the output (`server`).
    #[arg(long, default_value = "lithos")]
    label: String,
    #[command(flatten)]
    ingest: Ingest,
}

/// The Lithos side of the ingest comparison: N temperature reporters send M reports each,
/// at QoS 0 or 1, W in flight; with `--consumer`, their owner follows every thing's reports
/// live (`<subscribe/>`) and the run ends when it has them all.
pub(crate) async fn reports_scenario(args: ReportsArgs) {
    let (t, a) = (&args.server.target, &args.ingest);
    let mut out = Outcome::new(&args.label, a);
    let pid = t.server_pid;
    let mut op = match operator(t, &args.server.operator).await {
        Ok(c) => c,
        Err(e) => return out.fail(Phase::Setup, e),
    };
    let ids = match authorize(&mut op, t, "STR-01", a.devices).await {
        Ok(ids) => ids,
        Err(e) => return out.fail(Phase::Setup, e),
    };
    let things_target = args.server.things_target();
    // Memory is read between registration and login, so it counts the sessions only.
    let mut rss_before = None;
    let conns = match register_and_login(&things_target, ids, || rss_before = pid.and_then(rss_kib))
        .await
    {
        Ok(c) => c,
        Err(e) => return out.fail(Phase::Connect, e),
    };
    out.rss_per_device(rss_before, pid.and_then(rss_kib));

    let total = a.devices * a.messages;
    let consumer = if a.consumer {
        for (k, (name, _)) in conns.iter().enumerate() {
            let to = format!("{name}@{}", t.domain);
            let sub = Element::bare("subscribe", SENSOR);
            if let Err(e) = request(&mut op, iq("set", &format!("s{k}"), Some(&to), sub)).await {
                return out.fail(Phase::Consumer, e);
            }
        }
        Some(tokio::spawn(async move {
            let (mut got, mut last) = (0, Instant::now());
            while got < total {
                match tokio::time::timeout(CONSUMER_STALL, next_element(&mut op)).await {
                    Ok(Ok(el)) => {
                        if el.name() == "message" && el.get_child("report", SENSOR).is_some() {
                            got += 1;
                            last = Instant::now();
                        }
                    }
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            (got, last)
        }))
    } else {
        None
    };

    let measured = Measured::start(pid);
    let (qos, n, w) = (a.qos, a.messages, a.in_flight.max(1));
    let at_once = conns.len().max(1);
    let latencies = match each(conns, at_once, move |(_, mut c)| async move {
        reports(&mut c, qos, n, w).await
    })
    .await
    {
        Ok(l) => l.into_iter().flatten().collect(),
        Err(e) => return out.fail(Phase::Publish, e),
    };
    measured.end(out, total, latencies, consumer).await;
}
