//! Message carbons against a real server: who gets which copy, the opt-outs, enabling and
//! disabling, in XML and in BXMPP.

use std::time::Duration;

use lithos_carbons::{NS, Received, Sent};
use lithos_core::{Element, Payload};
use lithos_testkit::{RawClient, TestServer, WireFormat, error_condition, stanza};

use lithos_presence as _;
use lithos_roster as _;

const QUIET: Duration = Duration::from_millis(300);

async fn resource(s: &TestServer, resource: &str, format: WireFormat, priority: i8) -> RawClient {
    let raw = RawClient::connect_with(s.addr(), format).await;
    let mut c = s.login_on(raw, "alice", "alice-password", resource).await;
    c.send(stanza(&format!(
        "<presence><priority>{priority}</priority></presence>"
    )))
    .await;
    c
}

async fn carbons(c: &mut RawClient, on: bool) -> Element {
    let payload = Element::bare(if on { "enable" } else { "disable" }, NS);
    c.iq("set", None, payload).await
}

fn chat(to: &str, id: &str, extra: &str) -> Element {
    stanza(&format!(
        "<message to='{to}' type='chat' id='{id}'><body>hello</body>{extra}</message>"
    ))
}

/// The next carbon copy `c` gets: (sent?, the message inside).
async fn next_copy(c: &mut RawClient) -> (bool, Element) {
    let m = c
        .recv_where(|e| e.has_child("sent", NS) || e.has_child("received", NS))
        .await;
    assert_eq!(
        m.attr("from"),
        Some("alice@localhost"),
        "copies come from the bare JID"
    );
    assert_eq!(m.attr("to"), Some(c.jid.as_str()));
    if let Some(s) = m.get_child("sent", NS) {
        (
            true,
            Sent::from_element(s.clone()).unwrap().forwarded.message,
        )
    } else {
        let r = m.get_child("received", NS).unwrap().clone();
        (false, Received::from_element(r).unwrap().forwarded.message)
    }
}

async fn copies(format: WireFormat) {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let mut phone = resource(&s, "phone", WireFormat::Xml, 5).await;
    let mut desk = resource(&s, "desk", format, 0).await;
    let mut tablet = resource(&s, "tablet", WireFormat::Xml, 0).await;
    let mut bob = s.login_as("bob", "desk").await;
    assert_eq!(carbons(&mut phone, true).await.attr("type"), Some("result"));
    assert_eq!(carbons(&mut desk, true).await.attr("type"), Some("result"));
    // Enabling twice is not an error (XEP-0280 §8.1).
    assert_eq!(carbons(&mut desk, true).await.attr("type"), Some("result"));

    // Received: bob writes to the phone; the desk gets a copy, the tablet (carbons off)
    // none, and the phone only the original.
    bob.send(chat("alice@localhost/phone", "r1", "")).await;
    let got = phone.recv_where(|e| e.name() == "message").await;
    assert_eq!(got.attr("id"), Some("r1"));
    let (sent, inner) = next_copy(&mut desk).await;
    assert!(!sent);
    assert_eq!(inner.attr("id"), Some("r1"));
    assert_eq!(inner.attr("from"), Some("bob@localhost/desk"));

    // Sent: the phone writes to bob; the desk gets a copy, the phone none.
    phone.send(chat("bob@localhost/desk", "s1", "")).await;
    assert_eq!(
        bob.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("s1")
    );
    let (sent, inner) = next_copy(&mut desk).await;
    assert!(sent);
    assert_eq!(inner.attr("id"), Some("s1"));
    assert_eq!(inner.attr("to"), Some("bob@localhost/desk"));

    // To the bare JID: the highest priority (the phone) gets it, the desk a copy.
    bob.send(chat("alice@localhost", "b1", "")).await;
    assert_eq!(
        phone.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("b1")
    );
    assert_eq!(next_copy(&mut desk).await.1.attr("id"), Some("b1"));

    // Opted out: <private/> and the no-copy hint.
    bob.send(chat(
        "alice@localhost/phone",
        "p1",
        "<private xmlns='urn:xmpp:carbons:2'/>",
    ))
    .await;
    phone
        .send(chat(
            "bob@localhost/desk",
            "p2",
            "<no-copy xmlns='urn:xmpp:hints'/>",
        ))
        .await;
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='headline' id='h1'><body>news</body></message>",
    ))
    .await;
    assert_eq!(
        phone
            .recv_where(|e| e.attr("id") == Some("p1"))
            .await
            .name(),
        "message"
    );
    desk.expect_none_of("message", QUIET).await;

    // Disabled: nothing more.
    assert_eq!(carbons(&mut desk, false).await.attr("type"), Some("result"));
    bob.send(chat("alice@localhost/phone", "r2", "")).await;
    phone.recv_where(|e| e.attr("id") == Some("r2")).await;
    desk.expect_none_of("message", QUIET).await;
    tablet.expect_none_of("message", QUIET).await;
}

lithos_testkit::in_both_formats!(copies);

#[tokio::test]
async fn only_for_oneself() {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let mut alice = s.login_as("alice", "phone").await;
    let r = alice
        .iq("set", Some("bob@localhost"), Element::bare("enable", NS))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("not-allowed"));
    let r = alice.iq("get", None, Element::bare("enable", NS)).await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));
}
