//! The `gateway` scenario (Lithos only): what the hop through a LoRa gateway costs.
//!
//! In this process: a gateway (`lithos-gateway`: LAN router and DAC service) on a simulated
//! radio with no delay and no loss, `--nodes` lights behind it (`lithos-mud`, each getting
//! its address by LoRa-DAC), a light connected directly, and the operator who owns them all.
//! The operator executes `--commands` flashes one at a time on the direct light, then on the
//! nodes (round robin), then on the nodes with `--in-flight` at once; then a second gateway's
//! `--nodes` thermometers report `--reports` readings each, acknowledged (QoS 1 upstream).
//! Printed: the round trips' p50/p99 direct and through the gateway (and the difference, the
//! hop's cost), commands/s, reports/s, and CPU per 1,000 for the server (`--server-pid`) and
//! for this process, which runs the gateways and nodes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lithos_client::{Client, ClientBuilder, Trust};
use lithos_core::{Element, Jid, Payload};
use lithos_lora_sim::{Conditions, RadioNetwork};
use lithos_mud::{Node, NodeBuilder};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_operator::OperatorExt;
use tokio::sync::Semaphore;

use crate::{Format, cpu_ms, ms_per_1000, percentile};

const T: Duration = Duration::from_secs(10);
const KEY: &str = "LOADGEN-KEY";
const LIGHT: &str = lithos_things_demo::light::NS;

/// Options of the `gateway` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct GatewayArgs {
    /// The client port.
    #[arg(long, default_value = "127.0.0.1:5222")]
    addr: SocketAddr,
    /// The things port.
    #[arg(long, default_value = "127.0.0.1:6222")]
    things_addr: SocketAddr,
    /// XMPP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// The operator (named in `[modules.operator] operators`), who owns and commands.
    #[arg(long, default_value = "operator")]
    operator: String,
    /// The operator's password.
    #[arg(long, default_value = "pw")]
    password: String,
    /// The server's certificate (PEM), trusted as is.
    #[arg(long)]
    pinned_cert: PathBuf,
    /// The server's process id, to read its CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Nodes behind each gateway (1 to 255).
    #[arg(long, default_value_t = 255)]
    nodes: usize,
    /// Commands per phase.
    #[arg(long, default_value_t = 2000)]
    commands: usize,
    /// Commands in flight in the throughput phase.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Reports per thermometer node.
    #[arg(long, default_value_t = 20)]
    reports: usize,
    /// Wire format of every session.
    #[arg(long, value_enum, default_value_t = Format::Xml)]
    format: Format,
}

fn thing(args: &GatewayArgs, id: &str, trust: &Trust) -> ThingRuntime {
    ThingRuntime::new(id, KEY, &args.domain)
        .address(args.things_addr.to_string())
        .trust(trust.clone())
        .format(args.format.into())
}

/// A gateway `LGW-01-<tag><g>` with `n` nodes `<model>-<tag><i>` behind it, each authorized
/// by the operator and configured by DAC over a fresh simulated network.
async fn gateway(
    args: &GatewayArgs,
    op: &Client,
    trust: &Trust,
    tag: &str,
    model: &str,
    light: bool,
) -> Result<(Client, Vec<Node>), String> {
    let gw_id = format!("LGW-01-{tag}00");
    op.authorize_thing(&gw_id, KEY, T)
        .await
        .map_err(|e| format!("authorize {gw_id}: {e}"))?;
    let net = RadioNetwork::new(1, Conditions::perfect());
    let gw = lithos_gateway::simulated::start(&net, thing(args, &gw_id, trust), |_, _| {})
        .await
        .map_err(|e| format!("gateway: {e}"))?;
    std::mem::forget(gw.events);
    let client = gw.client;
    let mut nodes = Vec::with_capacity(args.nodes);
    for i in 1..=args.nodes {
        let id = format!("{model}-{tag}{i:02X}");
        let code = format!("CODE-{i:03}");
        op.authorize_thing(&id, &code, T)
            .await
            .map_err(|e| format!("authorize {id}: {e}"))?;
        let mut b = NodeBuilder::new(&id, &code)
            .dac_timing(Duration::from_millis(200), Duration::from_secs(30));
        if light {
            b = b.on_action(LIGHT, "flash", |_| 0);
        }
        let node = b
            .start(net.radio(lithos_tuxp_lora_dac::DAC_CLIENT))
            .await
            .map_err(|e| format!("node {id}: {e}"))?;
        nodes.push(node);
    }
    // The network lives as long as its radios (held by the tasks and nodes).
    std::mem::forget(net);
    Ok((client, nodes))
}

fn flash() -> Element {
    Element::builder("flash", LIGHT).attr("repeat", "1").build()
}

/// Runs `commands` flashes one at a time on `targets` (round robin): sorted round trips (ms).
async fn one_at_a_time(op: &Client, targets: &[Jid], commands: usize) -> Result<Vec<f64>, String> {
    let mut rtt = Vec::with_capacity(commands);
    for i in 0..commands {
        let to = targets[i % targets.len()].clone();
        let t = Instant::now();
        op.execute(to.clone(), flash(), T)
            .await
            .map_err(|e| format!("flash on {to}: {e}"))?;
        rtt.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    rtt.sort_by(f64::total_cmp);
    Ok(rtt)
}

pub(crate) async fn gateway_scenario(args: GatewayArgs) {
    let fail = |e: String| println!("{{\"scenario\":\"gateway\",\"error\":{e:?}}}");
    if !(1..=255).contains(&args.nodes) {
        return fail("--nodes is 1 to 255".into());
    }
    let trust = match Trust::pinned_file(&args.pinned_cert) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let op = ClientBuilder::new(
        &format!("{}@{}", args.operator, args.domain),
        &args.password,
    )
    .map(|b| {
        b.address(args.addr.to_string())
            .trust(trust.clone())
            .format(args.format.into())
    });
    let op = match op {
        Ok(b) => match b.connect().await {
            Ok((c, events)) => {
                std::mem::forget(events);
                c
            }
            Err(e) => return fail(format!("operator: {e}")),
        },
        Err(e) => return fail(format!("operator: {e}")),
    };
    let tag = format!("{:06X}", rand::random::<u32>() & 0xFF_FFFF);
    let tag2 = format!(
        "{:06X}",
        (u32::from_str_radix(&tag, 16).unwrap_or(0) + 1) & 0xFF_FFFF
    );

    // The direct light.
    let direct_id = format!("SL-01-{tag}00");
    if let Err(e) = op.authorize_thing(&direct_id, KEY, T).await {
        return fail(format!("authorize {direct_id}: {e}"));
    }
    let direct = thing(&args, &direct_id, &trust)
        .on_action(LIGHT, "flash", action_handler(|_| async { Ok(None) }))
        .start()
        .await;
    let (direct, _de) = match direct {
        Ok(c) => c,
        Err(e) => return fail(format!("direct light: {e}")),
    };
    let setup = Instant::now();
    let (gw, _nodes) = match gateway(&args, &op, &trust, &tag, "SL-01", true).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let setup_s = setup.elapsed().as_secs_f64();
    let direct_jid = direct.jid().to_bare();
    let bare = gw.jid().to_bare();
    let node_jids: Vec<Jid> = (1..=args.nodes)
        .filter_map(|i| bare.with_resource(&i.to_string()).ok())
        .collect();

    let me = std::process::id();
    let server = |f: fn(u32) -> Option<f64>| args.server_pid.and_then(f);
    // One at a time: direct, then through the gateway.
    let (s0, g0) = (server(cpu_ms), cpu_ms(me));
    let direct_rtt =
        match one_at_a_time(&op, std::slice::from_ref(&direct_jid), args.commands).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
    let (s1, g1) = (server(cpu_ms), cpu_ms(me));
    let hop_rtt = match one_at_a_time(&op, &node_jids, args.commands).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (s2, g2) = (server(cpu_ms), cpu_ms(me));
    // Throughput through the gateway.
    let permits = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.commands);
    for i in 0..args.commands {
        let Ok(p) = permits.clone().acquire_owned().await else {
            break;
        };
        let (op, to) = (op.clone(), node_jids[i % node_jids.len()].clone());
        tasks.push(tokio::spawn(async move {
            let r = op.execute(to, flash(), T).await;
            drop(p);
            r.is_ok()
        }));
    }
    let mut ok = 0usize;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    let rate = ok as f64 / started.elapsed().as_secs_f64();
    let (s3, g3) = (server(cpu_ms), cpu_ms(me));

    // Reports: a second gateway's thermometers, all at once, each acknowledged.
    let (_gw2, thermometers) = match gateway(&args, &op, &trust, &tag2, "STR-01", false).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let thermometers: Vec<Arc<Node>> = thermometers.into_iter().map(Arc::new).collect();
    let (s4, g4) = (server(cpu_ms), cpu_ms(me));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in &thermometers {
        let (n, reports) = (n.clone(), args.reports);
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for v in 0..reports {
                let data = lithos_things_demo::temperature::CelsiusDegree { value: v as f32 }
                    .into_element();
                ok += usize::from(n.report(data, true).await.is_ok());
            }
            ok
        }));
    }
    let mut reported = 0usize;
    for t in tasks {
        reported += t.await.unwrap_or(0);
    }
    let report_rate = reported as f64 / started.elapsed().as_secs_f64();
    let (s5, g5) = (server(cpu_ms), cpu_ms(me));

    let p = |v: &[f64], q: f64| percentile(v, q);
    println!(
        "{{\"scenario\":\"gateway\",\"nodes\":{},\"setup_s\":{setup_s:.1},\
         \"direct_p50_ms\":{:.3},\"direct_p99_ms\":{:.3},\
         \"gateway_p50_ms\":{:.3},\"gateway_p99_ms\":{:.3},\"hop_p99_added_ms\":{:.3},\
         \"commands_per_s\":{rate:.0},\"commands_ok\":{ok},\"in_flight\":{},\
         \"server_cpu_ms_per_1000_direct\":{},\"server_cpu_ms_per_1000_via_gateway\":{},\
         \"gateway_process_cpu_ms_per_1000_direct\":{},\"gateway_process_cpu_ms_per_1000_via_gateway\":{},\
         \"server_cpu_ms_per_1000_throughput\":{},\"gateway_process_cpu_ms_per_1000_throughput\":{},\
         \"reports_per_s\":{report_rate:.0},\"reports_ok\":{reported},\"reports_sent\":{},\
         \"server_cpu_ms_per_1000_reports\":{},\"gateway_process_cpu_ms_per_1000_reports\":{}}}",
        args.nodes,
        p(&direct_rtt, 0.5),
        p(&direct_rtt, 0.99),
        p(&hop_rtt, 0.5),
        p(&hop_rtt, 0.99),
        p(&hop_rtt, 0.99) - p(&direct_rtt, 0.99),
        args.in_flight,
        ms_per_1000(s0, s1, args.commands),
        ms_per_1000(s1, s2, args.commands),
        ms_per_1000(g0, g1, args.commands),
        ms_per_1000(g1, g2, args.commands),
        ms_per_1000(s2, s3, ok),
        ms_per_1000(g2, g3, ok),
        args.nodes * args.reports,
        ms_per_1000(s4, s5, reported),
        ms_per_1000(g4, g5, reported),
    );
}
