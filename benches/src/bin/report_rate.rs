//! Reports per second one server accepts from many things at QoS 0, 1 and 2, and what
//! each report costs on disk.
//!
//! ```sh
//! cargo run --release -p lithos-benches --bin report-rate [THINGS] [REPORTS_PER_THING] [WINDOW] [LEVELS]
//! # default 1000 things × 20 reports per level, 1 in flight per thing, levels 012
//! ```
//!
//! The server runs on its own two-thread runtime; the things (one `lithos-client` each, TLS,
//! XML) share a one-thread runtime. Each thing keeps WINDOW reports in flight: at QoS 1
//! and 2 a report is in flight until its acknowledgement (durable storage; two phases for
//! QoS 2), at QoS 0 until it is written to the socket. A level ends when every report is in the history; the rate is
//! reports stored per second of that time.

use std::time::{Duration, Instant};

use lithos_client::{Client, ClientBuilder, Trust, WireFormat};
use lithos_core::Element;
use lithos_server::storage::Database;
use lithos_tuxp_report::{Qos, ReporterExt, Retry};
use lithos_tuxp_things::{Registry, ThingRecord};

async fn stored(db: &Database) -> i64 {
    db.run(|c| {
        c.query_value(
            "SELECT COUNT(*) FROM report_history",
            lithos_server::params![],
        )
    })
    .await
    .expect("count")
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("lithos.sqlite"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let things: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_thing: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let window: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let levels: Vec<Qos> = args
        .next()
        .unwrap_or_else(|| "012".into())
        .bytes()
        .filter_map(|b| Qos::from_ordinal(b.wrapping_sub(b'0')))
        .collect();
    let lithos_benches::BenchServer {
        dir,
        runtime: server_rt,
        server,
    } = lithos_benches::BenchServer::start("");
    let addr = server.thing_addrs[0].to_string();
    let db = server.handle().storage().db().clone();
    // Things registered directly in the registry, as IBTR would leave them.
    let names: Vec<String> = server_rt.block_on(async {
        let registry = Registry::new(db.clone());
        let mut names = Vec::new();
        for i in 0..things {
            let id = format!("STR-01-{i:08X}");
            let name = id.to_lowercase();
            registry
                .register(
                    ThingRecord {
                        thing_id: id,
                        thing_name: name.clone(),
                        model: "STR-01".into(),
                        owner: "alice".into(),
                        registered_ms: 0,
                        security_key: vec![0; 16],
                    },
                    None,
                )
                .await
                .expect("registered");
            let creds = lithos_server::sasl::Credentials::new("secret", 4096).expect("creds");
            server
                .handle()
                .storage()
                .accounts
                .create_account(&name, &creds)
                .await
                .expect("account");
            names.push(name);
        }
        names
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let trust = Trust::pinned_file(dir.path().join("tls/cert.pem")).expect("cert");
    let clients: Vec<Client> = client_rt.block_on(async {
        let mut v = Vec::new();
        for chunk in names.chunks(50) {
            let mut batch = Vec::new();
            for n in chunk {
                let b = ClientBuilder::new(&format!("{n}@localhost/0"), "secret")
                    .expect("jid")
                    .address(addr.clone())
                    .trust(trust.clone())
                    .format(WireFormat::Xml);
                batch.push(tokio::spawn(async move { b.connect().await }));
            }
            for t in batch {
                let (c, mut events) = t.await.expect("task").expect("a thing connects");
                tokio::spawn(async move { while events.recv().await.is_some() {} });
                v.push(c);
            }
        }
        v
    });
    println!(
        "{things} things × {per_thing} reports per level, {window} in flight per thing, loopback, TLS, XML"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>9}",
        "qos", "reports/s", "stored", "dropped"
    );
    client_rt.block_on(db.flush()).expect("checkpoint");
    let baseline = disk_bytes(dir.path());
    let total = (things * per_thing) as i64;
    let mut rates = Vec::new();
    for &qos in &levels {
        let before = client_rt.block_on(stored(&db));
        let start = Instant::now();
        client_rt.block_on(async {
            let mut tasks = Vec::new();
            for c in &clients {
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let room = std::sync::Arc::new(tokio::sync::Semaphore::new(window));
                    let mut mine = Vec::new();
                    for i in 0..per_thing {
                        let permit = room.clone().acquire_owned().await.expect("semaphore");
                        let c = c.clone();
                        let data =
                            Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
                                .attr("value", format!("{}.5", i % 40))
                                .build();
                        // Retransmissions would only add load (and QoS 1 duplicates) here.
                        let retry = Retry {
                            initial: Duration::from_secs(5),
                            max_interval: Duration::from_secs(10),
                            give_up: Duration::from_secs(120),
                        };
                        mine.push(tokio::spawn(async move {
                            c.report_with(data, qos, retry).await.expect("reported");
                            drop(permit);
                        }));
                    }
                    for t in mine {
                        t.await.expect("task");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
        });
        // Until the history holds them all (QoS 0 has no acknowledgement to wait for), or
        // nothing more arrives for a second (reports lost: a failure, shown as such).
        let (mut last, mut quiet) = (before, Instant::now());
        let now_stored = client_rt.block_on(async {
            loop {
                let n = stored(&db).await;
                if n - before >= total {
                    return n;
                }
                if n != last {
                    (last, quiet) = (n, Instant::now());
                } else if quiet.elapsed() > Duration::from_secs(1) {
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let took = start.elapsed();
        let got = now_stored - before;
        let rate = got as f64 / took.as_secs_f64();
        rates.push(rate);
        println!(
            "{:<6} {:>10.0} {:>10} {:>9}",
            qos.ordinal(),
            rate,
            got,
            total - got
        );
    }
    if let [q0, q1, q2] = rates[..] {
        println!(
            "QoS 1 / QoS 0 = {:.2}, QoS 2 / QoS 0 = {:.2}",
            q1 / q0,
            q2 / q0
        );
    }
    let rows = client_rt.block_on(stored(&db));
    client_rt.block_on(db.flush()).expect("checkpoint");
    let bytes = disk_bytes(dir.path()).saturating_sub(baseline);
    println!(
        "storage: {rows} reports, {} KiB on disk, {:.0} bytes per report (history, latest value, indexes)",
        bytes / 1024,
        bytes as f64 / rows as f64
    );
    server_rt.block_on(server.shutdown(Duration::from_secs(2)));
}
