//! Command round-trip latency on loopback: controller → server → thing → server →
//! controller, one command in flight, in XML and in BXMPP.
//!
//! ```sh
//! cargo run --release -p lithos-benches --bin exec-latency [COMMANDS]   # default 10000
//! ```
//!
//! The server runs on its own two-thread runtime; the controller and the thing share a
//! one-thread runtime, so the figures include what a real pair of peers would cost.

use std::time::{Duration, Instant};

use lithos_client::{ClientBuilder, Trust, WireFormat};
use lithos_core::Payload;
use lithos_things_demo::light::Flash;
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_operator::OperatorExt;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let lithos_benches::BenchServer {
        dir,
        runtime: server_rt,
        server,
    } = lithos_benches::BenchServer::start("[modules.operator]\noperators = ['alice']\n");
    let c2s = server.c2s_addrs[0].to_string();
    let things = server.thing_addrs[0].to_string();
    let cert = dir.path().join("tls/cert.pem");
    server_rt.block_on(async {
        let creds = lithos_server::sasl::Credentials::new("alice-password", 4096).expect("creds");
        server
            .handle()
            .storage()
            .accounts
            .create_account("alice", &creds)
            .await
            .expect("alice");
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("commands per format: {n} (one in flight), loopback");
    println!(
        "{:<7} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "format", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "cmds/s"
    );
    for (i, format) in [WireFormat::Xml, WireFormat::Bxmpp].into_iter().enumerate() {
        client_rt.block_on(async {
            let trust = Trust::pinned_file(&cert).expect("cert");
            let (alice, _ae) = ClientBuilder::new("alice@localhost/bench", "alice-password")
                .expect("jid")
                .address(c2s.clone())
                .trust(trust.clone())
                .format(format)
                .connect()
                .await
                .expect("alice connects");
            let id = format!("SL-01-BE0C000{i}");
            alice
                .authorize_thing(&id, "k", Duration::from_secs(5))
                .await
                .expect("authorized");
            let (_thing, _te) = ThingRuntime::new(&id, "k", "localhost")
                .address(things.clone())
                .trust(trust)
                .format(format)
                .on_action(
                    lithos_things_demo::light::NS,
                    "flash",
                    action_handler(|_| async { Ok(None) }),
                )
                .start()
                .await
                .expect("the thing starts");
            let to =
                lithos_core::Jid::new(&format!("{}@localhost", id.to_lowercase())).expect("jid");
            let flash = Flash { repeat: 1 }.into_element();
            // Warm up.
            for _ in 0..200 {
                alice
                    .execute(to.clone(), flash.clone(), Duration::from_secs(5))
                    .await
                    .expect("executed");
            }
            let mut rtts = Vec::with_capacity(n);
            let all = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                alice
                    .execute(to.clone(), flash.clone(), Duration::from_secs(5))
                    .await
                    .expect("executed");
                rtts.push(t.elapsed());
            }
            let total = all.elapsed();
            rtts.sort_unstable();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "{:<7} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.0}",
                format!("{format:?}"),
                us(percentile(&rtts, 0.5)),
                us(percentile(&rtts, 0.99)),
                us(percentile(&rtts, 0.999)),
                us(*rtts.last().expect("some")),
                n as f64 / total.as_secs_f64()
            );
        });
    }
    server_rt.block_on(server.shutdown(Duration::from_secs(2)));
}
