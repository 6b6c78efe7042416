//! Reports under `kill -9`: a thing floods QoS 1 and QoS 2 reports while the `lithosd`
//! process is killed with SIGKILL and restarted 20 times. Afterwards every report the thing
//! saw acknowledged is in the history, QoS 1 ones at least once, QoS 2 ones exactly once
//! (and an unacknowledged QoS 2 report at most once).

mod common;

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process;
use lithos_client::{ClientBuilder, Reconnect, Trust, WireFormat};
use lithos_core::{Element, Jid};
use lithos_rsm::ResultSet;
use lithos_tuxp_execution::thing::ThingRuntime;
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{History, Qos, ReporterExt, ReportsExt, Retry};

const CYCLES: usize = 20;
/// The test thing's registration key.
const KEY: &str = "REGISTRATION-KEY";
const IN_FLIGHT: usize = 32;
const T: Duration = Duration::from_secs(10);

struct Server {
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Server {
    async fn wait_listening(&self, port: u16) {
        process::wait_listening(port, &self.log).await;
    }

    fn kill_9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown code runs.
        self.child.wait().unwrap();
    }

    fn restart(&mut self) {
        self.child = process::spawn(&self.config, &self.log);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn celsius(seq: u32) -> Element {
    Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
        .attr("value", seq.to_string())
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_20_kills_in_xml() {
    survive_kills(WireFormat::Xml).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_20_kills_in_bxmpp() {
    survive_kills(WireFormat::Bxmpp).await;
}

/// The history's tail is indexed every 500 reports, so kills land before, during and after
/// the bulk indexing, and the final queries read the index and the tail read back.
async fn survive_kills(format: WireFormat) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (c2s, things) = (process::free_port(), process::free_port());
    let config = dir.join("lithos.toml");
    std::fs::write(
        &config,
        format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:{things}']\n\
             [http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:{c2s}']\ndirect_tls = []\n\
             [modules.operator]\noperators = ['alice']\n\
             [modules.report]\nindex_every = 500\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    process::add_user(&config, "alice", "alice-password");
    let log = dir.join("lithosd.log");
    let mut server = Server {
        child: process::spawn(&config, &log),
        config: config.clone(),
        log,
    };
    server.wait_listening(things).await;
    let trust = Trust::pinned_file(dir.join("data/tls/cert.pem")).unwrap();

    let (alice, _ae) = ClientBuilder::new("alice@localhost/app", "alice-password")
        .unwrap()
        .address(format!("127.0.0.1:{c2s}"))
        .trust(trust.clone())
        .connect()
        .await
        .unwrap();
    let id = "STR-01-C0C0C0C0";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let creds = ThingRuntime::new(id, KEY, "localhost")
        .address(format!("127.0.0.1:{things}"))
        .trust(trust.clone())
        .format(format)
        .credentials()
        .await
        .unwrap();
    alice.close().await;
    let (thing, mut thing_events) = ClientBuilder::new(
        &format!("{}@localhost/0", creds.thing_name),
        &creds.credentials,
    )
    .unwrap()
    .address(format!("127.0.0.1:{things}"))
    .trust(trust.clone())
    .format(format)
    .reconnect(Some(Reconnect {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }))
    .connect()
    .await
    .unwrap();
    tokio::spawn(async move { while thing_events.recv().await.is_some() {} });

    // The flood: odd sequence numbers at QoS 1, even ones at QoS 2, 32 in flight.
    let acked: Arc<Mutex<Vec<(u32, Qos)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (acked, failed, stop, thing) = (acked.clone(), failed.clone(), stop.clone(), thing);
        tokio::spawn(async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut tasks = Vec::new();
            let mut seq = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let qos = if seq % 2 == 1 {
                    Qos::AtLeastOnce
                } else {
                    Qos::ExactlyOnce
                };
                let (thing, acked, failed) = (thing.clone(), acked.clone(), failed.clone());
                let retry = Retry {
                    initial: Duration::from_millis(200),
                    max_interval: Duration::from_secs(1),
                    give_up: Duration::from_secs(120),
                };
                tasks.push(tokio::spawn(async move {
                    match thing.report_with(celsius(seq), qos, retry).await {
                        Ok(()) => acked.lock().unwrap().push((seq, qos)),
                        Err(e) => failed.lock().unwrap().push(format!("{seq}: {e}")),
                    }
                    drop(permit);
                }));
                seq += 1;
            }
            for t in tasks {
                t.await.unwrap();
            }
            seq
        })
    };

    let mut acked_at_kill = Vec::new();
    for cycle in 0..CYCLES {
        // The flood flows again (the thing reconnected and a report was acknowledged) before
        // the next kill, so every kill interrupts reports in flight: waiting a fixed time
        // instead let a loaded machine's reconnection back-off fall behind the kills.
        let before = acked.lock().unwrap().len();
        let flowing = std::time::Instant::now() + Duration::from_secs(15);
        while acked.lock().unwrap().len() == before {
            assert!(
                std::time::Instant::now() < flowing,
                "no report acknowledged within 15 s of restart {cycle}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let some reports through, then kill in the middle of the flood.
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 250)).await;
        acked_at_kill.push(acked.lock().unwrap().len());
        server.kill_9();
        server.restart();
        server.wait_listening(things).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = tokio::time::timeout(Duration::from_secs(180), flood)
        .await
        .expect("every report ends")
        .unwrap();
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "reports that gave up: {failed:?}");
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len() as u32,
        sent,
        "every report was acknowledged in the end"
    );
    // The flood was really interrupted: reports were acknowledged between kills.
    let progressing = acked_at_kill.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        progressing >= CYCLES / 2,
        "acks per kill: {acked_at_kill:?}"
    );

    // Read the whole history back, 500 at a time.
    let (alice, _ae) = ClientBuilder::new("alice@localhost/check", "alice-password")
        .unwrap()
        .address(format!("127.0.0.1:{c2s}"))
        .trust(trust)
        .connect()
        .await
        .unwrap();
    let thing_jid = Jid::new(&format!("{}@localhost", creds.thing_name)).unwrap();
    let mut count: HashMap<u32, usize> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut set = ResultSet::page(500);
        set.after = after.clone();
        let q = History {
            set: Some(set),
            ..History::default()
        };
        let (items, page) = alice.report_history(thing_jid.clone(), q, T).await.unwrap();
        if items.is_empty() {
            break;
        }
        for i in &items {
            let seq: u32 = i.data.attr("value").unwrap().parse().unwrap();
            *count.entry(seq).or_default() += 1;
        }
        after = page.last;
    }
    let mut duplicated_qos1 = 0;
    for (seq, qos) in &acked {
        let n = count.get(seq).copied().unwrap_or(0);
        match qos {
            Qos::ExactlyOnce => assert_eq!(n, 1, "QoS 2 report {seq} stored {n} times"),
            _ => {
                assert!(n >= 1, "acknowledged QoS 1 report {seq} is lost");
                duplicated_qos1 += usize::from(n > 1);
            }
        }
    }
    eprintln!(
        "{format:?}: {sent} reports over {CYCLES} kills; {duplicated_qos1} QoS 1 reports stored twice; acks at each kill: {acked_at_kill:?}"
    );
}
