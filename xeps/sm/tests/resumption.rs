//! Stream management against a real server: a connection cut in the middle of a burst, then
//! resumed (every message exactly once, in order) or not resumed in time (every message in
//! offline storage), in XML and in BXMPP; and the protocol's refusals.

use std::time::Duration;

use futures_util::StreamExt;

use lithos_core::stanza::DefinedCondition;
use lithos_core::{Element, Payload, StreamErrorCondition};
use lithos_sm::{Ack, Enable, Enabled, Failed, Request, Resume, Resumed};
use lithos_testkit::{RawClient, TestServer, WireFormat, chat_burst, stanza};

use lithos_offline as _;
use lithos_ping as _;
use lithos_presence as _;
use lithos_roster as _;

/// A raw client that counts the stanzas it handles and answers the server's `<r/>`, as a
/// stream management client does.
struct SmClient {
    raw: RawClient,
    handled: u32,
}

impl SmClient {
    /// The next stanza (answering requests on the way).
    async fn stanza(&mut self) -> Element {
        loop {
            let el = self.raw.recv().await;
            if Request::matches(&el) {
                let h = self.handled;
                self.raw.send(Ack { h }.into_element()).await;
                continue;
            }
            assert!(!lithos_sm::is_sm(&el), "unexpected {el}");
            self.handled += 1;
            return el;
        }
    }

    /// The ids of the next `n` messages.
    async fn message_ids(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let el = self.stanza().await;
            if el.name() == "message" {
                ids.push(el.attr("id").unwrap_or_default().to_string());
            }
        }
        ids
    }
}

/// Logs `name` in over `format`, available, with stream management enabled; returns the
/// client and the resumption id.
async fn enabled(s: &TestServer, name: &str, format: WireFormat) -> (SmClient, String) {
    let raw = RawClient::connect_with(s.addr(), format).await;
    let mut raw = s
        .login_on(raw, name, &format!("{name}-password"), "phone")
        .await;
    let sm = raw
        .features
        .as_ref()
        .and_then(|f| f.get_child("sm", lithos_sm::NS));
    assert!(
        sm.is_some(),
        "stream management is offered after authentication"
    );
    raw.send(
        Enable {
            resume: true,
            max: None,
        }
        .into_element(),
    )
    .await;
    let en = Enabled::from_element(raw.recv().await).unwrap();
    assert!(en.resume && en.max.is_some());
    let mut c = SmClient { raw, handled: 0 };
    c.raw.send(stanza("<presence/>")).await;
    (c, en.id.unwrap())
}

/// Authenticates a new connection of `name` without binding.
async fn authenticated(s: &TestServer, name: &str, format: WireFormat) -> RawClient {
    let mut c = RawClient::connect_with(s.addr(), format).await;
    c.open().await;
    c.starttls(&s.tls_connector()).await;
    c.auth_scram(
        lithos_sasl::ScramHash::Sha256,
        name,
        &format!("{name}-password"),
    )
    .await
    .unwrap();
    c
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

async fn resumed_after_a_cut(format: WireFormat) {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let (mut a, id) = enabled(&s, "alice", format).await;
    let jid = a.raw.jid.clone();
    let mut bob = s.login_as("bob", "desk").await;
    bob.send_raw(chat_burst(&jid, "m", 1000, "while the link drops").as_bytes())
        .await;
    // Alice reads 300, then her connection is cut: no </stream>, no last ack.
    assert_eq!(a.message_ids(300).await, ids(0..300));
    let handled = a.handled;
    drop(a);

    let mut raw = authenticated(&s, "alice", format).await;
    raw.send(
        Resume {
            previd: id.clone(),
            h: handled,
        }
        .into_element(),
    )
    .await;
    let r = Resumed::from_element(raw.recv().await).unwrap();
    assert_eq!(r.previd, id);
    assert_eq!(r.h, 1, "the server handled alice's one presence");
    let mut a = SmClient { raw, handled };
    // The rest, each once, in order: what was written to the dead connection first, then
    // what queued while the session was held.
    assert_eq!(a.message_ids(700).await, ids(300..1000));
    a.raw
        .expect_none_of("message", Duration::from_millis(300))
        .await;
    // Still the same session: bound to the same address, reachable.
    let pong = a.raw.ping().await;
    assert_eq!(pong.attr("type"), Some("result"));
    assert_eq!(pong.attr("to"), Some(jid.as_str()));
}

async fn not_resumed_in_time(format: WireFormat) {
    let s = TestServer::with_users(
        "[stream_management]\nresume_timeout_secs = 1\n",
        &["alice", "bob"],
    )
    .await;
    let (mut a, id) = enabled(&s, "alice", format).await;
    let jid = a.raw.jid.clone();
    let mut bob = s.login_as("bob", "desk").await;
    bob.send_raw(chat_burst(&jid, "m", 1000, "nobody resumes").as_bytes())
        .await;
    assert_eq!(a.message_ids(250).await, ids(0..250));
    // Alice acknowledges what she read, then her connection dies.
    let h = a.handled;
    a.raw.send(Ack { h }.into_element()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The session's unacknowledged messages go to offline storage as it ends; on a slower
    // database (PostgreSQL, fsync per commit) that can outlast the sleep, and a message
    // re-routed after alice is back is delivered to her live instead. Wait for all of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored: i64 = s
            .handle()
            .storage()
            .db()
            .run(|c| {
                c.query_value(
                    "SELECT COUNT(*) FROM offline_messages WHERE username = 'alice'",
                    lithos_server::params![],
                )
            })
            .await
            .unwrap();
        if stored == 750 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stored} of 750 stored offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Too late: the session is gone...
    let mut raw = authenticated(&s, "alice", format).await;
    raw.send(Resume { previd: id, h }.into_element()).await;
    let f = Failed::from_element(raw.recv().await).unwrap();
    assert_eq!(f.defined_condition(), Some(DefinedCondition::ItemNotFound));
    // ...and what it had not acknowledged waits in offline storage, each message once.
    raw.bind(Some("phone")).await;
    raw.send(stanza("<presence/>")).await;
    let mut got = Vec::new();
    while got.len() < 750 {
        let el = raw.recv().await;
        if el.name() == "message" {
            assert!(el.get_child("delay", "urn:xmpp:delay").is_some(), "{el}");
            got.push(el.attr("id").unwrap_or_default().to_string());
        }
    }
    assert_eq!(got, ids(250..1000));
    raw.expect_none_of("message", Duration::from_millis(300))
        .await;
}

lithos_testkit::in_both_formats!(resumed_after_a_cut, not_resumed_in_time);

#[tokio::test]
async fn a_live_connection_is_taken_over() {
    let s = TestServer::with_users("", &["alice", "bob"]).await;
    let (mut a, id) = enabled(&s, "alice", WireFormat::Xml).await;
    let mut bob = s.login_as("bob", "desk").await;
    bob.send_raw(chat_burst(&a.raw.jid, "m", 10, "x").as_bytes())
        .await;
    assert_eq!(a.message_ids(4).await, ids(0..4));
    // The client thinks its link is dead; the server does not know yet.
    let mut raw = authenticated(&s, "alice", WireFormat::Xml).await;
    raw.send(
        Resume {
            previd: id,
            h: a.handled,
        }
        .into_element(),
    )
    .await;
    assert!(Resumed::matches(&raw.recv().await));
    let mut b = SmClient {
        raw,
        handled: a.handled,
    };
    assert_eq!(b.message_ids(6).await, ids(4..10));
    // The old connection was closed.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match a.raw.framed.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the replaced connection is closed");
}

#[tokio::test]
async fn refusals() {
    let s = TestServer::with_users("", &["alice", "mallory"]).await;
    // Enabling before binding.
    let mut early = authenticated(&s, "alice", WireFormat::Xml).await;
    early.send(Enable::default().into_element()).await;
    let f = Failed::from_element(early.recv().await).unwrap();
    assert_eq!(
        f.defined_condition(),
        Some(DefinedCondition::UnexpectedRequest)
    );

    let (mut a, id) = enabled(&s, "alice", WireFormat::Xml).await;
    // Twice.
    a.raw.send(Enable::default().into_element()).await;
    let f = Failed::from_element(a.raw.recv_where(Failed::matches).await).unwrap();
    assert_eq!(
        f.defined_condition(),
        Some(DefinedCondition::UnexpectedRequest)
    );
    // The count the server reports: alice's presence, then a ping.
    a.raw.ping().await;
    a.raw.send(Request.into_element()).await;
    let ack = a.raw.recv_where(Ack::matches).await;
    assert_eq!(Ack::from_element(ack).unwrap().h, 2);

    // Another account cannot resume alice's session, even with its id.
    let mut m = authenticated(&s, "mallory", WireFormat::Xml).await;
    m.send(
        Resume {
            previd: id.clone(),
            h: 0,
        }
        .into_element(),
    )
    .await;
    let f = Failed::from_element(m.recv().await).unwrap();
    assert_eq!(f.defined_condition(), Some(DefinedCondition::ItemNotFound));
    // Alice's session is untouched.
    assert_eq!(a.raw.ping().await.attr("type"), Some("result"));

    // Acknowledging more than was sent ends the stream (XEP-0198 §4).
    a.raw.send(Ack { h: 1000 }.into_element()).await;
    assert_eq!(
        a.raw.expect_stream_error().await,
        StreamErrorCondition::UndefinedCondition
    );
}

#[tokio::test]
async fn acknowledgements_without_resumption_and_switched_off() {
    // Asked without `resume`: acknowledgements only, no id.
    let s = TestServer::with_users("", &["alice"]).await;
    let mut a = s.login_as("alice", "phone").await;
    a.send(Enable::default().into_element()).await;
    let en = Enabled::from_element(a.recv().await).unwrap();
    assert_eq!((en.id, en.resume, en.max), (None, false, None));

    // Switched off: not offered, and refused.
    let s = TestServer::with_users("[stream_management]\nenabled = false\n", &["alice"]).await;
    let mut a = s.login_as("alice", "phone").await;
    assert!(
        a.features
            .as_ref()
            .and_then(|f| f.get_child("sm", lithos_sm::NS))
            .is_none()
    );
    a.send(Enable::default().into_element()).await;
    let f = Failed::from_element(a.recv().await).unwrap();
    assert_eq!(
        f.defined_condition(),
        Some(DefinedCondition::FeatureNotImplemented)
    );
}

/// At `max_unacked` the server writes nothing more until an acknowledgement comes; what
/// waits stays in the session's queue and arrives, in order, once acknowledged.
#[tokio::test]
async fn writing_pauses_at_the_bound_and_loses_nothing() {
    let s = TestServer::with_users(
        "[stream_management]\nmax_unacked = 10\nrequest_every = 5\n",
        &["alice", "bob"],
    )
    .await;
    let mut alice = s.login_as("alice", "phone").await;
    alice.send(Enable::default().into_element()).await;
    assert!(Enabled::matches(&alice.recv().await));
    let mut bob = s.login_as("bob", "desk").await;
    bob.send_raw(chat_burst("alice@localhost/phone", "m", 30, "x").as_bytes())
        .await;
    let mut got: Vec<String> = Vec::new();
    let mut handled = 0u32;
    for round in 0..3 {
        // Ten written, then silence: the server waits for an acknowledgement.
        while got.len() < 10 * (round + 1) {
            let el = alice.recv().await;
            if el.name() == "message" {
                handled += 1;
                got.push(el.attr("id").unwrap().to_string());
            }
        }
        alice
            .expect_none_of("message", Duration::from_millis(300))
            .await;
        alice.pending.retain(|e| !Request::matches(e));
        alice.send(Ack { h: handled }.into_element()).await;
    }
    assert_eq!(got, ids(0..30));
}
