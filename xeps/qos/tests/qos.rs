//! urn:xmpp:qos against lithosd, in XML and BXMPP: end to end between clients, and through
//! the server for accounts; duplicates, bounds and trust.

use std::time::Duration;

// Delivery to accounts goes through presence and, for offline ones, the offline store;
// clients discover the feature through disco.
use lithos_client::{Client, Event, Events, WireFormat};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, Message, Presence};
use lithos_core::{Element, Jid, Payload};
use lithos_disco as _;
use lithos_offline as _;
use lithos_presence as _;
use lithos_qos::{Assured, Deliver, Level, QosError, QosExt, Retry};
use lithos_roster::RosterExt;
use lithos_testkit::TestServer;
use lithos_testkit::things::{self, T, condition, refused};

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

fn chat(body: &str) -> Message {
    let mut m = Message::chat(jid("nobody@localhost"), body);
    // Whatever the sender writes here is replaced by the iq's addresses.
    m.from = Some(jid("mallory@evil.example"));
    m
}

/// Bodies of the messages that arrive within `wait`.
async fn bodies(events: &mut Events, wait: Duration) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut v = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let Event::Message(m) = e
            && let Some(b) = m.body()
        {
            v.push((m.from.map(|f| f.to_string()).unwrap_or_default(), b));
        }
    }
    v
}

fn assured(id: &str, body: &str) -> Element {
    Assured {
        msg_id: id.into(),
        message: Element::from(chat(body)),
    }
    .into_element()
}

fn deliver(id: &str) -> Element {
    Deliver { msg_id: id.into() }.into_element()
}

/// Sends `payload` to `to` as an iq set with id `id` and waits for the answer.
async fn raw(
    c: &Client,
    to: &Jid,
    id: &str,
    payload: Element,
) -> Result<Iq, lithos_client::RequestError> {
    c.request(Iq::set(id, payload).with_to(to.clone()), T).await
}

/// As [`raw`], and the answer is a result.
async fn ok(c: &Client, to: &Jid, id: &str, payload: Element) -> Iq {
    raw(c, to, id, payload).await.unwrap()
}

async fn befriend(s: &TestServer, bob: &Client) {
    let _ = s;
    bob.roster_set(jid("alice@localhost"), None, vec![], T)
        .await
        .unwrap();
}

async fn end_to_end(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, mut bob_events) = s.user("bob", format).await;
    befriend(&s, &bob).await;
    let bob_full = jid("bob@localhost/app");
    let quiet = Duration::from_millis(300);

    alice
        .send_with_qos(
            bob_full.clone(),
            chat("one"),
            Level::AtLeastOnce,
            Retry::default(),
        )
        .await
        .unwrap();
    alice
        .send_with_qos(
            bob_full.clone(),
            chat("two"),
            Level::ExactlyOnce,
            Retry::default(),
        )
        .await
        .unwrap();
    alice
        .send_with_qos(
            bob_full.clone(),
            chat("three"),
            Level::AtMostOnce,
            Retry::default(),
        )
        .await
        .unwrap();
    let got = bodies(&mut bob_events, Duration::from_millis(500)).await;
    let want: Vec<(String, String)> = ["one", "two", "three"]
        .iter()
        .map(|b| ("alice@localhost/app".to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "delivered once each, from the iq's sender");

    // Duplicated assured and deliver: received twice, delivered once.
    for _ in 0..2 {
        let a = ok(&alice, &bob_full, "a-1", assured("m-1", "four")).await;
        assert!(
            matches!(a.payload, IqPayload::Result(Some(ref p)) if p.is("received", lithos_qos::NS))
        );
    }
    ok(&alice, &bob_full, "d-1", deliver("m-1")).await;
    ok(&alice, &bob_full, "d-1", deliver("m-1")).await;
    // And re-sent after its delivery: still once.
    ok(&alice, &bob_full, "a-1", assured("m-1", "four")).await;
    ok(&alice, &bob_full, "d-2", deliver("m-1")).await;
    let got = bodies(&mut bob_events, quiet).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "four");

    // The receiving client holds at most 64 undelivered messages per sender.
    for i in 0..64 {
        ok(
            &alice,
            &bob_full,
            &format!("p-{i}"),
            assured(&format!("p-{i}"), "x"),
        )
        .await;
    }
    assert_eq!(
        refused(raw(&alice, &bob_full, "p-64", assured("p-64", "x"))).await,
        Some(DefinedCondition::ResourceConstraint)
    );
}

async fn through_the_server(format: WireFormat) {
    let s = things::start("\n[modules.qos]\nmax_pending_per_sender = 2\n").await;
    s.add_user("carol", "carol-password").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (carol, _ce) = s.user("carol", format).await;
    let (bob, _be) = s.user("bob", format).await;
    befriend(&s, &bob).await;
    // Bob's connection drops: what is acknowledged now waits in the server for him.
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bob_bare = jid("bob@localhost");

    alice
        .send_with_qos(
            bob_bare.clone(),
            chat("one"),
            Level::AtLeastOnce,
            Retry::default(),
        )
        .await
        .unwrap();
    alice
        .send_with_qos(
            bob_bare.clone(),
            chat("two"),
            Level::ExactlyOnce,
            Retry::default(),
        )
        .await
        .unwrap();
    // Duplicated assured and deliver, through the server.
    ok(&alice, &bob_bare, "a-1", assured("m-1", "three")).await;
    ok(&alice, &bob_bare, "a-1", assured("m-1", "three")).await;
    ok(&alice, &bob_bare, "d-1", deliver("m-1")).await;
    ok(&alice, &bob_bare, "d-1", deliver("m-1")).await;
    ok(&alice, &bob_bare, "a-2", assured("m-1", "three")).await;
    ok(&alice, &bob_bare, "d-2", deliver("m-1")).await;

    // At most two pending per sender here.
    ok(&alice, &bob_bare, "p-1", assured("p-1", "x")).await;
    ok(&alice, &bob_bare, "p-2", assured("p-2", "x")).await;
    let e = raw(&alice, &bob_bare, "p-3", assured("p-3", "x"))
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ResourceConstraint));
    ok(&alice, &bob_bare, "d-p1", deliver("p-1")).await;
    ok(&alice, &bob_bare, "p-3", assured("p-3", "y")).await;

    // Untrusted: carol is not in bob's roster (assured only; to his account or a session).
    for to in [bob_bare.clone(), jid("bob@localhost/app")] {
        match carol
            .send_with_qos(to, chat("spam"), Level::ExactlyOnce, Retry::default())
            .await
        {
            Err(QosError::Refused(e)) => assert_eq!(e.condition, DefinedCondition::NotAllowed),
            other => panic!("{other:?}"),
        }
    }

    // Bob comes back: each message once, from alice's session, oldest first.
    let (bob, mut bob_events) = s.user("bob", format).await;
    bob.send_presence(Presence::available()).await.unwrap();
    let got = bodies(&mut bob_events, Duration::from_millis(800)).await;
    let want: Vec<(String, String)> = ["one", "two", "three", "x"]
        .iter()
        .map(|b| ("alice@localhost/app".to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);

    // Advertised.
    let disco = Iq::get(
        "",
        Element::bare("query", "http://jabber.org/protocol/disco#info"),
    )
    .with_to(jid("localhost"));
    let answer = alice.request(disco, T).await.unwrap();
    let IqPayload::Result(Some(q)) = answer.payload else {
        panic!("{answer:?}")
    };
    assert!(
        q.children()
            .any(|f| f.name() == "feature" && f.attr("var") == Some(lithos_qos::NS)),
        "{q:?}"
    );
}

/// Alice's second session, as `alice@localhost/<resource>`.
async fn alice_as(s: &TestServer, resource: &str) -> (Client, Events) {
    lithos_client::ClientBuilder::new(&format!("alice@localhost/{resource}"), "alice-password")
        .unwrap()
        .address(s.addr().to_string())
        .trust(s.trust())
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn pending_assured_messages_are_bounded_per_account_in_count_and_bytes_and_expire() {
    // Issue 14, defect 11: the quota was per full JID (a new resource, a new quota), counted
    // messages only, excepted messages to oneself, and nothing expired.
    let s = things::start(
        "\n[modules.qos]\nmax_pending_per_sender = 3\nmax_pending_bytes_per_sender = 4096\nexpire_after_secs = 1\n",
    )
    .await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let (other, _oe) = alice_as(&s, "other").await;
    let (bob, _be) = s.user("bob", WireFormat::Xml).await;
    befriend(&s, &bob).await;
    bob.close().await;
    let bob_bare = jid("bob@localhost");
    let alice_bare = jid("alice@localhost");
    ok(&alice, &bob_bare, "1", assured("q-1", "x")).await;
    ok(&other, &bob_bare, "2", assured("q-2", "x")).await;
    // To herself: trusted, and counted like the rest.
    ok(&other, &alice_bare, "3", assured("q-3", "x")).await;
    for (c, id) in [(&alice, "q-4"), (&other, "q-5")] {
        let e = raw(c, &bob_bare, id, assured(id, "x")).await.unwrap_err();
        assert_eq!(
            condition(&e),
            Some(DefinedCondition::ResourceConstraint),
            "{id}"
        );
    }
    // A message id is its resource's: the other resource's deliver finds nothing.
    assert_eq!(
        refused(raw(&other, &bob_bare, "d0", deliver("q-1"))).await,
        Some(DefinedCondition::ItemNotFound)
    );
    ok(&alice, &bob_bare, "d1", deliver("q-1")).await;
    // Repeated: answered, delivered once.
    ok(&alice, &bob_bare, "d1", deliver("q-1")).await;
    ok(&alice, &bob_bare, "4", assured("q-4", "x")).await;
    // Bytes: one large message is refused though the count allows it.
    ok(&other, &bob_bare, "d2", deliver("q-2")).await;
    let big = "y".repeat(5000);
    assert_eq!(
        refused(raw(&alice, &bob_bare, "5", assured("q-big", &big))).await,
        Some(DefinedCondition::ResourceConstraint)
    );
    // Expiry: after a second the pending ones are gone; their deliver delivers nothing, and
    // the quota is free again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 0..3 {
        let id = format!("r-{i}");
        ok(&alice, &bob_bare, &id, assured(&id, "z")).await;
    }
    // The expired message's deliver says so.
    assert_eq!(
        refused(raw(&alice, &bob_bare, "d4", deliver("q-4"))).await,
        Some(DefinedCondition::ItemNotFound)
    );
    let (bob, mut bob_events) = s.user("bob", WireFormat::Xml).await;
    bob.send_presence(Presence::available()).await.unwrap();
    let got: Vec<String> = bodies(&mut bob_events, Duration::from_millis(800))
        .await
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        got,
        ["x", "x"],
        "q-1 and q-2 only: q-4 expired before its deliver"
    );
}

lithos_testkit::in_both_formats!(end_to_end, through_the_server);
