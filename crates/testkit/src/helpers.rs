//! Small helpers: stanzas from short XML, error conditions, floods and hand-built BXMPP.

use bytes::BytesMut;
use lithos_core::Element;
use tokio::io::AsyncWriteExt;

use crate::RawClient;

/// A stanza from XML written without its namespace (`jabber:client` is added).
pub fn stanza(xml: &str) -> Element {
    let end = xml[1..]
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap()
        + 1;
    Element::parse(&format!(
        "{} xmlns='jabber:client'{}",
        &xml[..end],
        &xml[end..]
    ))
    .unwrap()
}

/// Bytes to feed a decoder.
pub fn buf(s: &str) -> BytesMut {
    BytesMut::from(s.as_bytes())
}

/// The defined condition of a stanza error (`<iq type='error'>`, a bounced message...).
pub fn error_condition(e: &Element) -> Option<String> {
    e.get_child("error", "jabber:client")?
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_string())
}

/// `n` chat messages to `to` as one write, ids `<prefix>0`, `<prefix>1`, ..., each with
/// `body`.
pub fn chat_burst(to: &str, prefix: &str, n: usize, body: &str) -> String {
    (0..n)
        .map(|i| {
            format!("<message to='{to}' type='chat' id='{prefix}{i}'><body>{body}</body></message>")
        })
        .collect()
}

/// A BXMPP message document built byte by byte (the encoder would not write a duplicate
/// attribute or a control character): `attrs` on `<message>`, and a `<body>` holding
/// `body`, all plain ASCII.
pub fn bxmpp_message(attrs: &[(&str, &str)], body: &str) -> Vec<u8> {
    let vocab = lithos_core::binary::Vocabulary::global();
    let code = |k: &str| vocab.default_extension().code_of(k).unwrap();
    let mut doc = vec![0xFF, code("message"), attrs.len() as u8, 1];
    for (k, v) in attrs {
        doc.push(code(k));
        doc.extend_from_slice(v.as_bytes());
        doc.push(0xFE);
    }
    doc.extend_from_slice(&[code("body"), 0, 0x80]);
    doc.extend_from_slice(body.as_bytes());
    doc.push(0xFF);
    doc
}

impl RawClient {
    /// Pings the server and returns its answer: everything sent before was handled by then.
    pub async fn ping(&mut self) -> Element {
        self.iq(
            "get",
            Some("localhost"),
            Element::bare("ping", "urn:xmpp:ping"),
        )
        .await
    }
}

/// Writes `chunk` `times` times on its own task, reading nothing, until the server stops
/// taking bytes or closes: what a client that never reads does. Abort the task when done.
pub fn flood<W>(mut w: W, chunk: String, times: usize) -> tokio::task::JoinHandle<W>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        for _ in 0..times {
            if w.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        w
    })
}

/// `jabber:iq:roster`.
const ROSTER: &str = "jabber:iq:roster";

/// A roster get's query, with `ver` when versioning is asked for.
pub fn roster_query(ver: Option<&str>) -> Element {
    Element::builder("query", ROSTER)
        .opt_attr("ver", ver.map(str::to_string))
        .build()
}

/// The items of a roster result or push: `(jid, subscription, ask)`.
pub fn roster_items(iq: &Element) -> Vec<(String, String, Option<String>)> {
    iq.get_child("query", ROSTER)
        .map(|q| {
            q.children()
                .map(|i| {
                    (
                        i.attr("jid").unwrap_or_default().to_string(),
                        i.attr("subscription").unwrap_or_default().to_string(),
                        i.attr("ask").map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The next roster push `c` receives, acknowledged as clients must.
pub async fn roster_push(c: &mut RawClient) -> Element {
    let p = c
        .recv_where(|e| {
            e.name() == "iq" && e.attr("type") == Some("set") && e.has_child("query", ROSTER)
        })
        .await;
    c.send(
        Element::builder("iq", "jabber:client")
            .attr("type", "result")
            .attr("id", p.attr("id").unwrap().to_string())
            .build(),
    )
    .await;
    p
}

/// `x` subscribes to `y`'s presence and `y` approves (both should be available, so the
/// request reaches `y` at once).
pub async fn subscribe(x: &mut RawClient, y: &mut RawClient) {
    let to = y.jid.split('/').next().unwrap_or_default().to_string();
    x.send(stanza(&format!("<presence to='{to}' type='subscribe'/>")))
        .await;
    let req = y
        .recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await;
    let from = req.attr("from").unwrap_or_default().to_string();
    y.send(stanza(&format!(
        "<presence to='{from}' type='subscribed'/>"
    )))
    .await;
}

/// Makes `a` and `b` (bound, of two accounts) available and subscribed to each other;
/// returns once each has seen the other's presence. Needs the presence module linked.
pub async fn befriend(a: &mut RawClient, b: &mut RawClient) {
    a.send(stanza("<presence/>")).await;
    b.send(stanza("<presence/>")).await;
    subscribe(a, b).await;
    subscribe(b, a).await;
    let (ja, jb) = (a.jid.clone(), b.jid.clone());
    a.presence_from(&jb).await;
    b.presence_from(&ja).await;
}

/// The next event of a `lithos_client` client that matches `pred` (others are skipped);
/// panics after [`WAIT`](crate::WAIT) or when the events end.
pub async fn next_event(
    events: &mut lithos_client::Events,
    pred: impl Fn(&lithos_client::Event) -> bool,
) -> lithos_client::Event {
    tokio::time::timeout(crate::WAIT, async {
        loop {
            let e = events.recv().await.expect("the client's events ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("no such event in time")
}
