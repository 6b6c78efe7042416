//! The `mqtt` scenario: the MQTT side of the ingest comparison (`benches/compare-mqtt.sh`).
//!
//! N devices connect to an MQTT broker (clean sessions, `rumqttc`) and publish M readings
//! each to `things/<n>/report`, at QoS 0 or 1, with W QoS 1 publishes in flight; optionally
//! one consumer subscribed to `things/+/report` receives every reading. It prints one JSON
//! line of the same shape as the `reports` scenario's ([`crate::ingest::Outcome`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::Semaphore;

use crate::ingest::{Ingest, Measured, Outcome, Phase};
use crate::rss_kib;

/// Options of the `mqtt` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct MqttArgs {
    /// The broker's address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    addr: SocketAddr,
    /// The broker's process id, to read its memory and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// What the run is called in the output (`server`).
    #[arg(long, default_value = "mqtt")]
    label: String,
    #[command(flatten)]
    ingest: Ingest,
}

/// A device's reading, about the size of the XMPP report's data element.
fn reading(i: usize) -> Vec<u8> {
    format!("{{\"celsius\":{}.5}}", i % 40).into_bytes()
}

fn options(id: String, addr: SocketAddr, in_flight: usize) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_inflight(in_flight.clamp(1, u16::MAX as usize) as u16);
    o
}

/// Polls until the broker has accepted the connection.
async fn connected(ev: &mut EventLoop) -> Result<(), String> {
    loop {
        match ev.poll().await.map_err(|e| e.to_string())? {
            Event::Incoming(Packet::ConnAck(_)) => return Ok(()),
            _ => continue,
        }
    }
}

/// One device: `n` readings at `qos`, then (QoS 0) a QoS 1 fence whose acknowledgement
/// says the broker has taken everything before it. Gives the acknowledgement latencies (ms)
/// of its QoS 1 readings.
async fn publish(
    client: AsyncClient,
    mut ev: EventLoop,
    topic: String,
    qos: u8,
    n: usize,
) -> Result<Vec<f64>, String> {
    let feeder = {
        let (client, topic) = (client.clone(), topic.clone());
        tokio::spawn(async move {
            let level = if qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            for i in 0..n {
                client
                    .publish(topic.clone(), level, false, reading(i))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if qos == 0 {
                // On a topic the consumer does not follow.
                let fence = topic.replace("/report", "/fence");
                client
                    .publish(fence, QoS::AtLeastOnce, false, reading(0))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        })
    };
    let want = if qos == 0 { 1 } else { n };
    let mut sent: HashMap<u16, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(if qos == 0 { 0 } else { n });
    let mut acked = 0;
    while acked < want {
        match ev.poll().await.map_err(|e| e.to_string())? {
            Event::Outgoing(Outgoing::Publish(pkid)) if pkid != 0 => {
                sent.insert(pkid, Instant::now());
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(t) = sent.remove(&ack.pkid)
                    && qos == 1
                {
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                acked += 1;
            }
            _ => {}
        }
    }
    feeder.await.map_err(|e| e.to_string())??;
    let _ = client.disconnect().await;
    // Let the disconnect go out; the broker must not count a dropped socket as an error.
    let _ = tokio::time::timeout(Duration::from_millis(200), ev.poll()).await;
    Ok(latencies)
}

pub(crate) async fn mqtt(args: MqttArgs) {
    let a = &args.ingest;
    let mut out = Outcome::new(&args.label, a);
    let pid = args.server_pid;
    let rss_before = pid.and_then(rss_kib);

    // The devices connect (100 at a time).
    let gate = std::sync::Arc::new(Semaphore::new(100));
    let mut joins = Vec::new();
    for n in 0..a.devices {
        let gate = gate.clone();
        let o = options(format!("dev{n}"), args.addr, a.in_flight);
        joins.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let (client, mut ev) = AsyncClient::new(o, 16);
            connected(&mut ev).await?;
            Ok::<_, String>((client, ev))
        }));
    }
    let mut devices = Vec::new();
    for j in joins {
        match j.await.expect("task") {
            Ok(d) => devices.push(d),
            Err(e) => return out.fail(Phase::Connect, e),
        }
    }
    out.rss_per_device(rss_before, pid.and_then(rss_kib));

    // The consumer: subscribed to every device's readings, at QoS 0 (the live forward of a
    // Lithos report is not acknowledged by its subscriber either).
    let total = a.devices * a.messages;
    let consumer = if a.consumer {
        let (client, mut ev) = AsyncClient::new(options("consumer".into(), args.addr, 100), 64);
        if let Err(e) = connected(&mut ev).await {
            return out.fail(Phase::Consumer, e);
        }
        if let Err(e) = client.subscribe("things/+/report", QoS::AtMostOnce).await {
            return out.fail(Phase::Consumer, e.to_string());
        }
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => return out.fail(Phase::Consumer, e.to_string()),
            }
        }
        Some(tokio::spawn(async move {
            let mut got = 0;
            let mut last = Instant::now();
            while got < total {
                match tokio::time::timeout(crate::ingest::CONSUMER_STALL, ev.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                        got += 1;
                        last = Instant::now();
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            drop(client);
            (got, last)
        }))
    } else {
        None
    };

    let measured = Measured::start(pid);
    let mut joins = Vec::new();
    for (n, (client, ev)) in devices.into_iter().enumerate() {
        let topic = format!("things/{n}/report");
        joins.push(tokio::spawn(publish(client, ev, topic, a.qos, a.messages)));
    }
    let mut latencies = Vec::new();
    for j in joins {
        match j.await.expect("task") {
            Ok(l) => latencies.extend(l),
            Err(e) => return out.fail(Phase::Publish, e),
        }
    }
    measured.end(out, total, latencies, consumer).await;
}
