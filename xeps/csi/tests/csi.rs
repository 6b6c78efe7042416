//! Client state indication against a real server: what an inactive client gets, and when.

use std::time::Duration;

use lithos_core::{Element, Payload};
use lithos_csi::{Active, Inactive};
use lithos_testkit::{RawClient, TestServer, WireFormat, befriend, next_event, stanza};

use lithos_ping as _;
use lithos_presence as _;
use lithos_roster as _;

const QUIET: Duration = Duration::from_millis(300);

fn show(p: &Element) -> String {
    p.get_child("show", "jabber:client")
        .map(|s| s.text())
        .unwrap_or_default()
}

async fn held_and_flushed(format: WireFormat) {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let raw = RawClient::connect_with(s.addr(), format).await;
    let mut alice = s.login_on(raw, "alice", "alice-password", "phone").await;
    assert!(
        alice
            .features
            .as_ref()
            .is_some_and(|f| f.has_child("csi", lithos_csi::NS)),
        "offered after authentication"
    );
    let mut bob = s.login_as("bob", "desk").await;
    befriend(&mut alice, &mut bob).await;
    alice.pending.clear();

    alice.send(Inactive.into_element()).await;
    // Answered once the state is in effect (the server handles a stream in order).
    alice.ping().await;
    // Presence changes wait; typing notifications are dropped.
    for sh in ["away", "dnd", "xa"] {
        bob.send(stanza(&format!("<presence><show>{sh}</show></presence>")))
            .await;
    }
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    ))
    .await;
    alice.expect_silence(QUIET).await;
    // A message goes out at once, after the latest presence that waited.
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat' id='m1'><body>are you there?</body></message>",
    ))
    .await;
    let first = alice.recv().await;
    assert_eq!(first.name(), "presence", "{first}");
    assert_eq!(show(&first), "xa");
    assert_eq!(alice.recv().await.attr("id"), Some("m1"));
    alice.expect_silence(QUIET).await;

    // Active again: what waited comes before the answer to the next request.
    bob.send(stanza("<presence><show>chat</show></presence>"))
        .await;
    alice.expect_silence(QUIET).await;
    alice.send(Active.into_element()).await;
    alice
        .send(stanza(
            "<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        ))
        .await;
    let p = alice.recv().await;
    assert_eq!((p.name(), show(&p).as_str()), ("presence", "chat"), "{p}");
    assert_eq!(alice.recv().await.attr("id"), Some("after"));
    // And presence flows as usual.
    bob.send(stanza("<presence/>")).await;
    assert_eq!(alice.recv().await.name(), "presence");
}

lithos_testkit::in_both_formats!(held_and_flushed);

#[tokio::test]
async fn switched_off() {
    let s = TestServer::with_users("[csi]\nenabled = false\n", &["alice", "bob"]).await;
    let mut alice = s.login_as("alice", "phone").await;
    assert!(
        !alice
            .features
            .as_ref()
            .is_some_and(|f| f.has_child("csi", lithos_csi::NS))
    );
    let mut bob = s.login_as("bob", "desk").await;
    befriend(&mut alice, &mut bob).await;
    alice.pending.clear();
    // Ignored: presence keeps flowing.
    alice.send(Inactive.into_element()).await;
    bob.send(stanza("<presence><show>away</show></presence>"))
        .await;
    assert_eq!(
        show(&alice.presence_from("bob@localhost/desk").await),
        "away"
    );
}

#[tokio::test]
async fn from_lithos_client() {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let (alice, mut events) = s
        .client("alice@localhost/app", "alice-password")
        .connect()
        .await
        .unwrap();
    alice.set_active(false).await.unwrap();
    let mut bob = s.login_as("bob", "desk").await;
    // Directed presence waits; a message brings it, first.
    bob.send(stanza(
        "<presence to='alice@localhost/app'><show>away</show></presence>",
    ))
    .await;
    let early = tokio::time::timeout(QUIET, events.recv()).await;
    assert!(early.is_err(), "nothing while inactive: {early:?}");
    bob.send(stanza(
        "<message to='alice@localhost/app' type='chat' id='x'><body>hi</body></message>",
    ))
    .await;
    let any = |_: &lithos_client::Event| true;
    assert!(matches!(
        next_event(&mut events, any).await,
        lithos_client::Event::Presence(_)
    ));
    assert!(
        matches!(next_event(&mut events, any).await, lithos_client::Event::Message(m) if m.id.as_deref() == Some("x"))
    );
}
