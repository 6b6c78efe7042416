//! The `muc` scenario: fan-out through one multi-user chat room (XEP-0045), on any server.
//!
//! N occupants (accounts `<prefix>0` … `<prefix>N-1`) join one fresh room; the first
//! creates it and accepts the default configuration (an instant room, for servers that lock
//! new rooms). Then S of them send M groupchat messages each, W in flight per sender (a
//! message is in flight until its sender sees the room send it back), and every occupant
//! counts what it receives. Delivered stanzas/s, the server's CPU per 1,000 delivered
//! stanzas, delivery latency (from a timestamp in the body) and loss.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lithos_core::{Element, StreamEvent, ns};
use tokio::sync::Semaphore;

use crate::{
    Target, connector, cpu_ms, fanout, login, ms_per_1000, next_element, percentile, send,
};

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// Options of the `muc` scenario.
#[derive(clap::Args, Clone)]
pub(crate) struct MucArgs {
    #[command(flatten)]
    target: Target,
    /// The MUC service's domain.
    #[arg(long, default_value = "conference.localhost")]
    service: String,
    /// Occupants of the room.
    #[arg(long, default_value_t = 100)]
    occupants: usize,
    /// Occupants that send (the first ones).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages in flight per sender.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

fn own_presence(el: &Element, me: &str) -> bool {
    el.name() == "presence"
        && el.attr("from") == Some(me)
        && el.get_child("x", NS_USER).is_some_and(|x| {
            x.children()
                .any(|c| c.name() == "status" && c.attr("code") == Some("110"))
        })
}

/// Sends the join and waits for the own presence (an error presence fails).
async fn join(c: &mut crate::Conn, me: &str) -> Result<(), String> {
    let p = Element::builder("presence", ns::JABBER_CLIENT)
        .attr("to", me.to_string())
        .child(
            Element::builder("x", NS_MUC)
                .child(
                    Element::builder("history", NS_MUC)
                        .attr("maxstanzas", "0")
                        .build(),
                )
                .build(),
        )
        .build();
    send(c, p).await?;
    loop {
        let el = next_element(c).await?;
        if el.name() == "presence" && el.attr("type") == Some("error") {
            return Err(format!("join refused: {el}"));
        }
        if own_presence(&el, me) {
            return Ok(());
        }
    }
}

pub(crate) async fn muc(args: MucArgs) {
    let t = &args.target;
    let fail = |e: String| println!("{{\"scenario\":\"muc\",\"error\":{e:?}}}");
    let tls = t.tls.then(connector);
    let room = format!("bench{:08x}@{}", rand::random::<u32>(), args.service);
    let nick = |i: usize| format!("{room}/o{i}");
    let mut conns = Vec::with_capacity(args.occupants);
    for i in 0..args.occupants {
        match login(t, tls.as_ref(), i).await {
            Ok(c) => conns.push(c),
            Err(e) => return fail(format!("login {i}: {e}")),
        }
    }
    // The creator, then the instant configuration (servers that lock new rooms wait for it).
    if let Err(e) = join(&mut conns[0], &nick(0)).await {
        return fail(e);
    }
    let instant = Element::builder("iq", ns::JABBER_CLIENT)
        .attr("type", "set")
        .attr("id", "instant")
        .attr("to", room.clone())
        .child(
            Element::builder("query", NS_OWNER)
                .child(
                    Element::builder("x", "jabber:x:data")
                        .attr("type", "submit")
                        .build(),
                )
                .build(),
        )
        .build();
    if let Err(e) = send(&mut conns[0], instant).await {
        return fail(e);
    }
    loop {
        match next_element(&mut conns[0]).await {
            Ok(el) if el.name() == "iq" && el.attr("id") == Some("instant") => break,
            Ok(_) => {}
            Err(e) => return fail(e),
        }
    }
    for (i, c) in conns.iter_mut().enumerate().skip(1) {
        if let Err(e) = join(c, &nick(i)).await {
            return fail(format!("occupant {i}: {e}"));
        }
    }
    // Let the presence floods of the joins drain.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let base = Instant::now();
    let expected_each = args.senders * args.messages;
    let delivered = Arc::new(AtomicUsize::new(0));
    let cpu_before = t.server_pid.and_then(cpu_ms);
    let start = Instant::now();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let (mut sink, stream) = c.split();
        let window = Arc::new(Semaphore::new(args.in_flight.max(1)));
        let me = nick(i);
        let sender = i < args.senders;
        readers.push(fanout::reader(
            stream,
            expected_each,
            base,
            delivered.clone(),
            sender.then(|| window.clone()),
            move |ev| {
                let groupchat = ev.name() == "message" && ev.attr("type") == Some("groupchat");
                let sent_us = groupchat
                    .then(|| ev.get_child("body", "jabber:client").map(|b| b.text()))
                    .flatten()
                    .and_then(|b| fanout::stamp(&b));
                fanout::Seen {
                    release: sent_us.is_some() && ev.attr("from") == Some(me.as_str()),
                    sent_us,
                }
            },
        ));
        if sender {
            let (room, m) = (room.clone(), args.messages);
            writers.push(tokio::spawn(async move {
                for seq in 0..m {
                    let Ok(p) = window.acquire().await else {
                        break;
                    };
                    p.forget();
                    let body = format!("{seq} {i} {}", base.elapsed().as_micros());
                    let msg = Element::builder("message", ns::JABBER_CLIENT)
                        .attr("type", "groupchat")
                        .attr("to", room.clone())
                        .child(
                            Element::builder("body", ns::JABBER_CLIENT)
                                .text(body)
                                .build(),
                        )
                        .build();
                    if sink.send(StreamEvent::Element(msg)).await.is_err() {
                        break;
                    }
                }
                sink
            }));
        } else {
            drop(sink);
        }
    }
    let (total, l, last) = fanout::collect(readers, start).await;
    let cpu_after = t.server_pid.and_then(cpu_ms);
    for w in writers {
        let _ = w.await;
    }
    let expected = expected_each * args.occupants;
    let secs = last.duration_since(start).as_secs_f64().max(1e-9);
    println!(
        "{{\"scenario\":\"muc\",\"occupants\":{},\"senders\":{},\"messages_per_sender\":{},\"in_flight\":{},\"expected\":{expected},\"delivered\":{total},\"lost\":{},\"delivered_per_s\":{:.0},\"latency_p50_ms\":{:.3},\"latency_p99_ms\":{:.3},\"server_cpu_ms_per_1000\":{}}}",
        args.occupants,
        args.senders,
        args.messages,
        args.in_flight,
        expected.saturating_sub(total),
        total as f64 / secs,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        ms_per_1000(cpu_before, cpu_after, total),
    );
}
