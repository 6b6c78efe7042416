//! The `things` scenario (Lithos only: the TUXP protocols): an operator authorizes N
//! temperature reporters and one light; each registers in band (IBTR) on the things port
//! and logs in; the reporters send M reports each at QoS 0, then M at QoS 1 (W in flight);
//! then the operator, owner of the light, executes C commands on it, one at a time.
//! Reports/s per level, command round trip p50/p99, server CPU per 1,000 reports.

use std::net::SocketAddr;
use std::time::Instant;

use lithos_core::{Element, ns};
use tokio::sync::Semaphore;

use super::{
    Conn, Target, authenticate_as, connector, cpu_ms, ms_per_1000, next_element, percentile,
    secure, send,
};

const IBTR: &str = "urn:leps:tuxp:ibtr";
const OPERATOR: &str = "urn:leps:tuxp:operator";
const SENSOR: &str = "urn:leps:tuxp:sensor";
const ACTUATOR: &str = "urn:leps:tuxp:actuator";
const TEMPERATURE: &str = "urn:leps:things:simple-temperature-reporter";
const LIGHT: &str = "urn:leps:things:simple-light";

/// Options of the `things` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct ThingsArgs {
    /// The client port (`--addr`), the operator's account (`--password`), TLS.
    #[command(flatten)]
    target: Target,
    /// The things port.
    #[arg(long, default_value = "127.0.0.1:6222")]
    things_addr: SocketAddr,
    /// The operator (named in the server's `[modules.operator] operators`), who authorizes,
    /// owns and commands the things.
    #[arg(long, default_value = "operator")]
    operator: String,
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
/// says the server has taken everything before it; `window` in flight at QoS 1.
async fn reports(c: &mut Conn, qos: u8, n: usize, window: usize) -> Result<(), String> {
    if qos == 0 {
        for i in 0..n {
            send(c, report(0, i)).await?;
        }
        return request(c, report(1, usize::MAX)).await.map(drop);
    }
    let (mut sent, mut acked) = (0, 0);
    while acked < n {
        while sent < n && sent - acked < window {
            send(c, report(1, sent)).await?;
            sent += 1;
        }
        let a = next_element(c).await?;
        if a.name() == "iq" {
            match a.attr("type") {
                Some("result") => acked += 1,
                Some("error") => return Err(format!("report refused: {a}")),
                _ => {}
            }
        }
    }
    Ok(())
}

pub(crate) async fn things(args: ThingsArgs) {
    let fail = |what: &str, e: String| {
        println!(
            "{{\"scenario\":\"things\",\"error\":{:?}}}",
            format!("{what}: {e}")
        );
    };
    let t = &args.target;
    let tls = t.tls.then(connector);
    let mut op = match secure(t, tls.as_ref()).await {
        Ok(c) => c,
        Err(e) => return fail("operator connects", e),
    };
    if let Err(e) = authenticate_as(t, &mut op, &args.operator, "lg").await {
        return fail("operator logs in", e);
    }
    // Fresh ids every run, so a server keeps working across runs.
    let run: u32 = rand::random();
    let light = format!("SL-01-{:08X}", run);
    let ids: Vec<String> = (1..=args.things)
        .map(|i| format!("STR-01-{:08X}", run.wrapping_add(i as u32)))
        .collect();
    for (k, id) in std::iter::once(&light).chain(&ids).enumerate() {
        let auth = Element::builder("auth-thing", OPERATOR)
            .attr("thing-id", id.clone())
            .attr("registration-key", "LOADGEN-KEY")
            .build();
        if let Err(e) = request(&mut op, iq("set", &format!("a{k}"), Some(&t.domain), auth)).await {
            return fail("authorization", e);
        }
    }
    let things_target = Target {
        addr: args.things_addr,
        ..t.clone()
    };
    // Registration (20 at a time), then login as <name>@<domain>/0.
    let gate = std::sync::Arc::new(Semaphore::new(20));
    let mut joins = Vec::new();
    for id in std::iter::once(light.clone()).chain(ids.iter().cloned()) {
        let (target, gate) = (things_target.clone(), gate.clone());
        joins.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let (name, password) = register(&target, &id).await?;
            let target = Target { password, ..target };
            let tls = target.tls.then(connector);
            let mut c = secure(&target, tls.as_ref()).await?;
            authenticate_as(&target, &mut c, &name, "0").await?;
            send(&mut c, Element::bare("presence", ns::JABBER_CLIENT)).await?;
            Ok::<_, String>((name, c))
        }));
    }
    let mut conns = Vec::new();
    for j in joins {
        match j.await.expect("task") {
            Ok(c) => conns.push(c),
            Err(e) => return fail("registration", e),
        }
    }
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
                reports(&mut c, qos, n, w).await.map(|()| c)
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
