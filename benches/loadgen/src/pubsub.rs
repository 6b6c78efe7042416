//! The `pubsub` scenario: fan-out through one publish-subscribe node (XEP-0060), on any
//! server with a pubsub service.
//!
//! N subscribers (accounts `<prefix>0` … `<prefix>N-1`, each subscribing its full JID) on
//! one fresh node that the first creates with the service's defaults; the first then
//! publishes M items, W in flight (an item is in flight until the service answers its
//! publish), and every subscriber counts the notifications it receives. Delivered
//! notifications/s, the server's CPU per 1,000 delivered, delivery latency (publish to
//! notification, from a timestamp in the payload: p50, p99) and loss.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use lithos_core::{Element, StreamEvent, ns};
use tokio::sync::Semaphore;

use crate::{
    Target, connector, cpu_ms, fanout, login, ms_per_1000, next_element, percentile, send,
};

const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const NS_BENCH: &str = "urn:lithos:bench";

/// Options of the `pubsub` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct PubsubArgs {
    #[command(flatten)]
    target: Target,
    /// The pubsub service's domain.
    #[arg(long, default_value = "pubsub.localhost")]
    service: String,
    /// Subscribers of the node (the first one also publishes).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Items published.
    #[arg(long, default_value_t = 200)]
    items: usize,
    /// Publications in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

fn iq(kind: &str, id: String, to: &str, payload: Element) -> Element {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr("type", kind.to_string())
        .attr("id", id)
        .attr("to", to.to_string())
        .child(payload)
        .build()
}

fn pubsub(child: Element) -> Element {
    Element::builder("pubsub", NS_PUBSUB).child(child).build()
}

/// Sends `el` and waits for the answer to its id; an error answer fails.
async fn ask(c: &mut crate::Conn, el: Element) -> Result<(), String> {
    let id = el.attr("id").unwrap_or_default().to_string();
    send(c, el).await?;
    loop {
        let a = next_element(c).await?;
        if a.name() == "iq" && a.attr("id") == Some(id.as_str()) {
            return match a.attr("type") {
                Some("result") => Ok(()),
                _ => Err(format!("refused: {a}")),
            };
        }
    }
}

/// The publication timestamp in a notification about `node`.
fn notified(el: &Element, node: &str) -> Option<u64> {
    let items = el
        .get_child("event", NS_EVENT)?
        .get_child("items", NS_EVENT)
        .filter(|i| i.attr("node") == Some(node))?;
    let entry = items
        .get_child("item", NS_EVENT)?
        .get_child("entry", NS_BENCH)?;
    fanout::stamp(&entry.text())
}

pub(crate) async fn pubsub_scenario(args: PubsubArgs) {
    let t = &args.target;
    let fail = |e: String| println!("{{\"scenario\":\"pubsub\",\"error\":{e:?}}}");
    let tls = t.tls.then(connector);
    let node = format!("bench{:08x}", rand::random::<u32>());
    let mut conns = Vec::with_capacity(args.subscribers);
    let mut jids = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        match login(t, tls.as_ref(), i).await {
            Ok(c) => conns.push(c),
            Err(e) => return fail(format!("login {i}: {e}")),
        }
        // The resource `login` binds.
        jids.push(format!("{}{i}@{}/lg", t.prefix, t.domain));
    }
    let create = iq(
        "set",
        "create".into(),
        &args.service,
        pubsub(
            Element::builder("create", NS_PUBSUB)
                .attr("node", node.clone())
                .build(),
        ),
    );
    if let Err(e) = ask(&mut conns[0], create).await {
        return fail(format!("create: {e}"));
    }
    // Every subscription asked at once, then every answer read.
    for (i, c) in conns.iter_mut().enumerate() {
        let sub = Element::builder("subscribe", NS_PUBSUB)
            .attr("node", node.clone())
            .attr("jid", jids[i].clone())
            .build();
        if let Err(e) = send(c, iq("set", format!("sub{i}"), &args.service, pubsub(sub))).await {
            return fail(format!("subscribe {i}: {e}"));
        }
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let id = format!("sub{i}");
        loop {
            match next_element(c).await {
                Ok(a) if a.name() == "iq" && a.attr("id") == Some(id.as_str()) => {
                    if a.attr("type") != Some("result") {
                        return fail(format!("subscribe {i} refused: {a}"));
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => return fail(format!("subscribe {i}: {e}")),
            }
        }
    }

    let base = Instant::now();
    let delivered = Arc::new(AtomicUsize::new(0));
    let cpu_before = t.server_pid.and_then(cpu_ms);
    let start = Instant::now();
    let window = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let mut readers = Vec::new();
    let mut publisher = None;
    for (i, c) in conns.into_iter().enumerate() {
        let (sink, stream) = c.split();
        let node = node.clone();
        readers.push(fanout::reader(
            stream,
            args.items,
            base,
            delivered.clone(),
            (i == 0).then(|| window.clone()),
            move |el| fanout::Seen {
                sent_us: (el.name() == "message")
                    .then(|| notified(el, &node))
                    .flatten(),
                release: el.name() == "iq" && el.attr("id").is_some_and(|id| id.starts_with("pub")),
            },
        ));
        if i == 0 {
            publisher = Some(sink);
        }
    }
    let Some(mut sink) = publisher else {
        return fail("no subscribers".into());
    };
    let (service, node_name, items) = (args.service.clone(), node.clone(), args.items);
    let writer = tokio::spawn(async move {
        for seq in 0..items {
            let Ok(p) = window.acquire().await else {
                break;
            };
            p.forget();
            let entry = Element::builder("entry", NS_BENCH)
                .text(format!("{seq} {}", base.elapsed().as_micros()))
                .build();
            let publish = Element::builder("publish", NS_PUBSUB)
                .attr("node", node_name.clone())
                .child(Element::builder("item", NS_PUBSUB).child(entry).build())
                .build();
            let el = iq("set", format!("pub{seq}"), &service, pubsub(publish));
            if sink.send(StreamEvent::Element(el)).await.is_err() {
                break;
            }
        }
        sink
    });
    let (total, l, last) = fanout::collect(readers, start).await;
    let cpu_after = t.server_pid.and_then(cpu_ms);
    let _ = writer.await;
    let expected = args.items * args.subscribers;
    let secs = last.duration_since(start).as_secs_f64().max(1e-9);
    println!(
        "{{\"scenario\":\"pubsub\",\"subscribers\":{},\"items\":{},\"in_flight\":{},\"expected\":{expected},\"delivered\":{total},\"lost\":{},\"delivered_per_s\":{:.0},\"latency_p50_ms\":{:.3},\"latency_p99_ms\":{:.3},\"server_cpu_ms_per_1000\":{}}}",
        args.subscribers,
        args.items,
        args.in_flight,
        expected.saturating_sub(total),
        total as f64 / secs,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        ms_per_1000(cpu_before, cpu_after, total),
    );
}
