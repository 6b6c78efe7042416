//! `lithos-client` with stream management against a real server: the counts of both sides
//! agree under traffic, and a lost connection is resumed with a request still in flight.

use std::time::Duration;

use lithos_client::{Event, Reconnect, RequestError};
use lithos_core::stanza::{Iq, Message};
use lithos_core::{Element, Jid};
use lithos_ping::PingExt;
use lithos_testkit::{Proxy, TestServer, next_event, stanza};

use lithos_presence as _;
use lithos_roster as _;

const T: Duration = Duration::from_secs(5);

fn fast() -> Option<Reconnect> {
    Some(Reconnect {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(300),
    })
}

/// A server; alice (lithos-client, reconnecting fast, stream management as `sm` says)
/// connected through a proxy; bob (raw) directly.
async fn behind_a_proxy(
    sm: bool,
) -> (
    TestServer,
    Proxy,
    lithos_client::Client,
    lithos_client::Events,
    lithos_testkit::RawClient,
) {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let proxy = Proxy::start(s.addr()).await;
    let (alice, events) = s
        .client("alice@localhost/app", "alice-password")
        .address(proxy.addr().to_string())
        .reconnect(fast())
        .stream_management(sm)
        .connect()
        .await
        .unwrap();
    let bob = s.login_as("bob", "desk").await;
    (s, proxy, alice, events, bob)
}

/// Alice asks bob (a raw client) something he takes his time to answer.
fn ask_bob(alice: &lithos_client::Client) -> tokio::task::JoinHandle<Result<Iq, RequestError>> {
    let asking = alice.clone();
    tokio::spawn(async move {
        asking
            .request(
                Iq::get("", Element::bare("query", "urn:example:slow"))
                    .with_to(Jid::new("bob@localhost/desk").unwrap()),
                Duration::from_secs(10),
            )
            .await
    })
}

#[tokio::test]
async fn counts_agree_under_traffic() {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let (alice, mut events) = s
        .client("alice@localhost/app", "alice-password")
        .connect()
        .await
        .unwrap();
    let mut bob = s.login_as("bob", "desk").await;
    // Both directions, well past the request interval of either side: a count that
    // disagreed would end the stream (handled-count-too-high) or the client's connection.
    for i in 0..60 {
        alice
            .send(Message::chat(
                Jid::new("bob@localhost/desk").unwrap(),
                format!("to bob {i}"),
            ))
            .await
            .unwrap();
        bob.send(stanza(&format!(
            "<message to='alice@localhost/app' type='chat' id='b{i}'><body>to alice</body></message>"
        )))
        .await;
    }
    for _ in 0..60 {
        bob.recv_where(|e| e.name() == "message").await;
    }
    let mut got = 0;
    while got < 60 {
        if let Event::Message(_) = next_event(&mut events, |e| {
            matches!(e, Event::Message(_) | Event::Disconnected { .. })
        })
        .await
        {
            got += 1;
        } else {
            panic!("disconnected");
        }
    }
    alice
        .ping(Jid::new("localhost").unwrap(), T)
        .await
        .expect("still connected after the traffic");
}

#[tokio::test]
async fn a_request_in_flight_survives_a_resumption() {
    let (_s, proxy, alice, mut events, mut bob) = behind_a_proxy(true).await;
    // Alice asks bob something; bob takes his time.
    let request = ask_bob(&alice);
    let asked = bob.recv_where(|e| e.name() == "iq").await;
    // Alice's link breaks and stays down a moment; bob answers meanwhile.
    proxy.down();
    next_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    bob.send(stanza(&format!(
        "<iq type='result' id='{}' to='alice@localhost/app'><query xmlns='urn:example:slow'/></iq>",
        asked.attr("id").unwrap()
    )))
    .await;
    bob.send(stanza(
        "<message to='alice@localhost/app' type='chat' id='meanwhile'><body>while you were away</body></message>",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.up();
    match next_event(&mut events, |e| {
        matches!(e, Event::Resumed { .. } | Event::Reconnected { .. })
    })
    .await
    {
        Event::Resumed { jid } => assert_eq!(jid.as_str(), "alice@localhost/app"),
        other => panic!("a new session instead of a resumption: {other:?}"),
    }
    // The answer reaches the request that was waiting for it...
    let answer = tokio::time::timeout(T, request).await.unwrap().unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    // ...and the message sent meanwhile arrives once.
    let Event::Message(m) = next_event(&mut events, |e| matches!(e, Event::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.id.as_deref(), Some("meanwhile"));
    // Alice goes on as before.
    alice.ping(Jid::new("localhost").unwrap(), T).await.unwrap();
}

#[tokio::test]
async fn without_resumption_requests_in_flight_end() {
    // Stream management off: the old behaviour, a loss ends what was in flight.
    let (_s, proxy, alice, mut events, mut bob) = behind_a_proxy(false).await;
    let request = ask_bob(&alice);
    bob.recv_where(|e| e.name() == "iq").await;
    proxy.cut();
    let answer = tokio::time::timeout(T, request).await.unwrap().unwrap();
    assert_eq!(answer.unwrap_err(), RequestError::Disconnected);
    next_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
}
