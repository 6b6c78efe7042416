//! The blocking command against a real server: what a block stops in each direction, the
//! pushes, offline storage, presence, unblocking, and a restart.

use std::time::Duration;

use lithos_blocking::{NS, NS_ERRORS};
use lithos_core::Element;
use lithos_testkit::{RawClient, TestServer, befriend, error_condition, stanza};

use lithos_offline as _;
use lithos_presence as _;

const QUIET: Duration = Duration::from_millis(300);

fn items(jids: &[&str], name: &str) -> Element {
    let mut b = Element::bare(name, NS);
    for j in jids {
        b.append_child(
            Element::builder("item", NS)
                .attr("jid", j.to_string())
                .build(),
        );
    }
    b
}

async fn blocklist(c: &mut RawClient) -> Vec<String> {
    let r = c.iq("get", None, Element::bare("blocklist", NS)).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    r.get_child("blocklist", NS)
        .unwrap()
        .children()
        .map(|i| i.attr("jid").unwrap().to_string())
        .collect()
}

/// Alice and bob subscribed to each other, both available.
async fn friends(s: &TestServer) -> (RawClient, RawClient) {
    let mut a = s.login_as("alice", "phone").await;
    let mut b = s.login_as("bob", "desk").await;
    befriend(&mut a, &mut b).await;
    (a, b)
}

#[tokio::test]
async fn a_block_stops_both_directions_until_unblocked() {
    let s = TestServer::with_users("", &["alice", "bob", "carol"]).await;
    let (mut alice, mut bob) = friends(&s).await;
    let mut other = s.login_as("alice", "tablet").await;
    assert!(blocklist(&mut other).await.is_empty());

    let r = alice
        .iq("set", None, items(&["bob@localhost"], "block"))
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    // The resource that asked for the list hears of it.
    let push = other
        .recv_where(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .await;
    assert_eq!(push.get_child("block", NS).unwrap().children().count(), 1);
    assert_eq!(blocklist(&mut alice).await, ["bob@localhost"]);
    // Bob, who saw alice's presence, sees her go.
    let gone = bob.presence_from("alice@localhost/phone").await;
    assert_eq!(gone.attr("type"), Some("unavailable"));

    alice.pending.clear();
    bob.pending.clear();
    // Bob to alice: a message and a request are answered as if she were offline...
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat' id='m1'><body>hi</body></message>",
    ))
    .await;
    let e = bob.recv_where(|e| e.attr("id") == Some("m1")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    let r = bob
        .iq(
            "get",
            Some("alice@localhost/phone"),
            Element::bare("ping", "urn:xmpp:ping"),
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    // ...and presence vanishes without a word.
    bob.send(stanza("<presence to='alice@localhost' type='subscribe'/>"))
        .await;
    bob.send(stanza("<presence><show>away</show></presence>"))
        .await;
    alice.expect_silence(QUIET).await;

    // Alice to bob: refused with <blocked/>; her presence never reaches him.
    alice
        .send(stanza(
            "<message to='bob@localhost/desk' type='chat' id='m2'><body>hey</body></message>",
        ))
        .await;
    let e = alice.recv_where(|e| e.attr("id") == Some("m2")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("not-acceptable"));
    assert!(
        e.get_child("error", "jabber:client")
            .unwrap()
            .has_child("blocked", NS_ERRORS),
        "{e}"
    );
    alice
        .send(stanza("<presence><show>dnd</show></presence>"))
        .await;
    bob.expect_none_of("message", QUIET).await;
    let from_alice = |e: &Element| e.attr("from").is_some_and(|f| f.starts_with("alice@"));
    assert!(!bob.pending.iter().any(from_alice), "{:?}", bob.pending);
    // Others are not affected.
    let mut carol = s.login_as("carol", "x").await;
    carol
        .send(stanza(
            "<message to='alice@localhost/phone' type='chat' id='c1'><body>hello</body></message>",
        ))
        .await;
    assert_eq!(
        alice
            .recv_where(|e| e.attr("id") == Some("c1"))
            .await
            .name(),
        "message"
    );

    // Unblocked: bob sees alice's presence again, and messages flow.
    let r = alice
        .iq("set", None, items(&["bob@localhost"], "unblock"))
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    let back = bob.presence_from("alice@localhost/phone").await;
    assert_eq!(back.attr("type"), None, "{back}");
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat' id='m3'><body>again</body></message>",
    ))
    .await;
    assert_eq!(
        alice
            .recv_where(|e| e.attr("id") == Some("m3"))
            .await
            .name(),
        "message"
    );
}

#[tokio::test]
async fn blocked_messages_are_not_stored_and_lists_survive_a_restart() {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let mut alice = s.login_as("alice", "phone").await;
    // A domain item blocks everyone there; a full JID item only that resource.
    let r = alice
        .iq(
            "set",
            None,
            items(&["bob@localhost/desk", "evil.example"], "block"),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    alice.close().await;
    let s = s.restart().await;

    let mut bob = s.login_as("bob", "desk").await;
    bob.send(stanza(
        "<message to='alice@localhost' type='chat' id='o1'><body>while away</body></message>",
    ))
    .await;
    let e = bob.recv_where(|e| e.attr("id") == Some("o1")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    // From another resource of bob's: not blocked, stored offline.
    let mut bob2 = s.login_as("bob", "laptop").await;
    bob2.send(stanza(
        "<message to='alice@localhost' type='chat' id='o2'><body>stored</body></message>",
    ))
    .await;
    let mut alice = s.login_as("alice", "phone").await;
    assert_eq!(
        blocklist(&mut alice).await,
        ["bob@localhost/desk", "evil.example"]
    );
    alice.send(stanza("<presence/>")).await;
    let m = alice.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("o2"));
    alice.expect_none_of("message", QUIET).await;
}

#[tokio::test]
async fn only_the_account_itself_and_within_bounds() {
    let s = TestServer::with_users("[modules.blocking]\nmax_items = 2\n", &["alice", "bob"]).await;
    let mut bob = s.login_as("bob", "desk").await;
    let r = bob
        .iq(
            "get",
            Some("alice@localhost"),
            Element::bare("blocklist", NS),
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("not-allowed"));
    let r = bob.iq("set", None, Element::bare("block", NS)).await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));
    let r = bob
        .iq("set", None, items(&["a@x", "b@x", "c@x"], "block"))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("resource-constraint"));
    assert!(
        blocklist(&mut bob).await.is_empty(),
        "a refused block stores nothing"
    );
    // Unblock all.
    bob.iq("set", None, items(&["a@x", "b@x"], "block")).await;
    bob.iq("set", None, Element::bare("unblock", NS)).await;
    assert!(blocklist(&mut bob).await.is_empty());
}
