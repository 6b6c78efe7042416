//! Limits a trusted server has (issue 14): traffic shaping per connection, resources per
//! account, directed-presence targets per session. Each bound has its documented answer.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestServer, error_condition, stanza};
use lithos_core::codec::WireFormat;
use lithos_core::{Element, ns};

async fn connect_from(addr: std::net::SocketAddr, source: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    Client::from_tcp(socket.connect(addr).await.unwrap(), WireFormat::Xml)
}

/// Logs in from `source`, sends `bytes` of white space and a ping, and returns how long the
/// ping's answer took.
async fn flood_then_ping(s: &TestServer, source: &str, bytes: usize) -> Duration {
    let c = connect_from(s.addr(), source).await;
    let mut c = s.login_on(c, "juliet", "j", source).await;
    let start = Instant::now();
    let mut data = " ".repeat(bytes);
    data.push_str("<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>");
    c.send_xml(&data).await;
    let pong = c.recv_where(|e| e.attr("id") == Some("after")).await;
    assert_eq!(
        pong.attr("type"),
        Some("result"),
        "the client was not cut off"
    );
    start.elapsed()
}

#[tokio::test]
async fn a_fast_client_is_read_slowly_not_disconnected() {
    let s = TestServer::start(
        "[limits]\ntrusted_networks = ['127.0.0.1/32']\nc2s_rate = 50000\nc2s_burst = 16384",
    )
    .await;
    s.add_user("juliet", "j").await;
    // The ping is answered once the server has read the 100 KB before it: past a 16 KiB
    // burst at 50 KB/s, 1.6 s at least.
    let shaped = flood_then_ping(&s, "127.0.0.2", 100_000).await;
    assert!(shaped >= Duration::from_millis(1500), "{shaped:?}");
    // A trusted address is not shaped.
    let trusted = flood_then_ping(&s, "127.0.0.1", 100_000).await;
    assert!(trusted < Duration::from_millis(1000), "{trusted:?}");
}

#[tokio::test]
async fn things_have_their_own_rate() {
    let s = TestServer::start(
        "[limits]\ntrusted_networks = []\nc2s_rate = 0\nthings_rate = 20000\nthings_burst = 5000",
    )
    .await;
    let timed = |addr| async move {
        let mut c = connect_from(addr, "127.0.0.2").await;
        c.open().await;
        let start = Instant::now();
        // 30 KB of white space, then something that ends the stream at once.
        let mut data = " ".repeat(30_000);
        data.push_str("<message/>");
        c.send_xml(&data).await;
        c.expect_stream_error().await;
        start.elapsed()
    };
    let things = s.server.as_ref().unwrap().thing_addrs[0];
    let t = timed(things).await;
    assert!(t >= Duration::from_millis(1100), "things port: {t:?}");
    // The client port has no rate here.
    let c = timed(s.addr()).await;
    assert!(c < Duration::from_millis(800), "client port: {c:?}");
}

#[tokio::test]
async fn resources_per_account_are_bounded() {
    let s = TestServer::start("[limits]\nmax_resources_per_account = 2").await;
    s.add_user("juliet", "j").await;
    let _a = s.login("juliet", "j", "a").await;
    let _b = s.login("juliet", "j", "b").await;
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    c.starttls(&s.tls_connector()).await;
    c.auth_scram(lithos_server::sasl::scram::ScramHash::Sha256, "juliet", "j")
        .await
        .unwrap();
    let r = c
        .iq(
            "set",
            None,
            Element::builder("bind", ns::XMPP_BIND)
                .child(
                    Element::builder("resource", ns::XMPP_BIND)
                        .text("c")
                        .build(),
                )
                .build(),
        )
        .await;
    assert_eq!(r.attr("type"), Some("error"), "{r}");
    assert_eq!(error_condition(&r).as_deref(), Some("resource-constraint"));
    // Replacing one of the two is not a third.
    let _a2 = s.login("juliet", "j", "a").await;
    assert_eq!(s.handle().sessions().resources("juliet@localhost").len(), 2);
}

#[tokio::test]
async fn directed_presence_targets_are_bounded() {
    let s = TestServer::start("[limits]\nmax_directed_presences = 3").await;
    s.add_user("juliet", "j").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    for i in 0..4 {
        j.send(stanza(&format!(
            "<presence to='friend{i}@localhost' id='d{i}'/>"
        )))
        .await;
    }
    let e = j.recv_where(|e| e.attr("id") == Some("d3")).await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_condition(&e).as_deref(), Some("resource-constraint"));
    // A target already in the set is no new target; unavailable frees a place.
    j.send(stanza("<presence to='friend0@localhost' id='again'/>"))
        .await;
    j.send(stanza(
        "<presence to='friend1@localhost' type='unavailable'/>",
    ))
    .await;
    j.send(stanza("<presence to='friend9@localhost' id='new'/>"))
        .await;
    j.expect_none_of("presence", Duration::from_millis(300))
        .await;
}
