//! The client against a real server (in-process, through the test kit, with the ping, disco
//! and roster modules): each way of logging in, and each way a request can end.

use std::time::{Duration, Instant};

use lithos_client::handler::fn_handler;
use lithos_client::{
    Client, ConnectError, Event, Events, Mechanism, Reconnect, RequestError, SendError, TlsMode,
    WireFormat,
};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Element, Jid, StreamError, StreamErrorCondition};
use lithos_disco::DiscoExt;
use lithos_ping::PingExt;
use lithos_roster::{RosterEntry, RosterExt};
use lithos_testkit::TestServer;

const T: Duration = Duration::from_secs(5);

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

fn condition(e: &RequestError) -> Option<DefinedCondition> {
    match e {
        RequestError::Stanza(s) => Some(s.condition),
        _ => None,
    }
}

async fn next_event(events: &mut Events, what: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(T, async {
        loop {
            let e = events.recv().await.expect("the events ended");
            if what(&e) {
                return e;
            }
        }
    })
    .await
    .expect("no such event in time")
}

#[tokio::test]
async fn logs_in_with_each_mechanism_tls_mode_and_codec() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30-and-more").await;
    for format in [WireFormat::Xml, WireFormat::Bxmpp] {
        for mech in [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ] {
            let (c, _e) = s
                .client("juliet@localhost/m", "r0m30-and-more")
                .mechanisms(vec![mech])
                .format(format)
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{format:?} {mech:?}: {e}"));
            assert_eq!(c.jid(), jid("juliet@localhost/m"));
            c.ping(jid("localhost"), T).await.unwrap();
            c.close().await;
        }
    }
    // Direct TLS, and a resource chosen by the server.
    let (c, _e) = s
        .client("juliet@localhost", "r0m30-and-more")
        .address(s.tls_addr().to_string())
        .tls(TlsMode::Direct)
        .connect()
        .await
        .unwrap();
    assert!(c.jid().resource().is_some());
    c.close().await;
}

#[tokio::test]
async fn refusals_are_typed() {
    let s = TestServer::start("[c2s]\nrequire_tls = false\nallow_plain_without_tls = true").await;
    s.add_user("juliet", "r0m30-and-more").await;
    // A wrong password.
    let e = s
        .client("juliet@localhost", "wrong")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectError::Auth { condition, .. } if condition == "not-authorized"),
        "{e}"
    );
    // PLAIN without TLS is never tried unless allowed, even when the server offers it.
    let e = s
        .client("juliet@localhost", "r0m30-and-more")
        .tls(TlsMode::Plaintext)
        .mechanisms(vec![Mechanism::Plain])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::NoMechanism(_)), "{e}");
    let (c, _e) = s
        .client("juliet@localhost", "r0m30-and-more")
        .tls(TlsMode::Plaintext)
        .mechanisms(vec![Mechanism::Plain])
        .allow_plain_without_tls(true)
        .connect()
        .await
        .unwrap();
    c.close().await;
    // A certificate other than the pinned one.
    let other = TestServer::start("").await;
    let e = s
        .client("juliet@localhost", "r0m30-and-more")
        .trust(other.trust())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::Tls(_)), "{e}");
    // Nobody listening.
    let e = s
        .client("juliet@localhost", "r0m30-and-more")
        .address("127.0.0.1:1")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::Io(_)), "{e}");
}

/// Two clients of one server: `a` asks, `b` answers (or does not).
async fn pair(s: &TestServer) -> ((Client, Events), (Client, Events)) {
    s.add_user("a", "password-a").await;
    s.add_user("b", "password-b").await;
    let a = s
        .client("a@localhost/r", "password-a")
        .connect()
        .await
        .unwrap();
    let b = s
        .client("b@localhost/r", "password-b")
        .handle_iq(
            "urn:example:echo",
            fn_handler(|_ctx, iq| async move {
                match iq.payload {
                    IqPayload::Get(p) | IqPayload::Set(p) => Ok(Some(p)),
                    _ => Ok(None),
                }
            }),
        )
        .handle_iq(
            "urn:example:refuse",
            fn_handler(|_ctx, _iq| async move {
                Err(StanzaError::new(DefinedCondition::Forbidden).with_text("not you"))
            }),
        )
        .handle_iq(
            "urn:example:slow",
            fn_handler(|_ctx, _iq| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(None)
            }),
        )
        .connect()
        .await
        .unwrap();
    (a, b)
}

fn get(ns: &str, to: &str) -> Iq {
    Iq::get(
        "",
        Element::builder("query", ns.to_string())
            .attr("n", "1")
            .build(),
    )
    .with_to(jid(to))
}

#[tokio::test]
async fn requests_end_in_result_error_or_timeout() {
    let s = TestServer::start("").await;
    let ((a, _ae), (_b, _be)) = pair(&s).await;

    // Executed: the handler's payload comes back.
    let r = a
        .request(get("urn:example:echo", "b@localhost/r"), T)
        .await
        .unwrap();
    assert!(matches!(&r.payload, IqPayload::Result(Some(p)) if p.attr("n") == Some("1")));
    // Error: the handler's, then the automatic one for a namespace nobody handles, then the
    // server's for an account that does not exist.
    let e = a
        .request(get("urn:example:refuse", "b@localhost/r"), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = a
        .request(get("urn:example:unknown", "b@localhost/r"), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ServiceUnavailable));
    let e = a
        .request(get("urn:example:echo", "nobody@localhost/x"), T)
        .await
        .unwrap_err();
    assert!(condition(&e).is_some(), "{e}");

    // Timeout: at the deadline, not much later.
    let start = Instant::now();
    let e = a
        .request(
            get("urn:example:slow", "b@localhost/r"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(e, RequestError::Timeout);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_millis(800),
        "timeout reported late: {took:?}"
    );
    // The connection is still good afterwards.
    a.ping(jid("localhost"), T).await.unwrap();

    // Plugins: b answers pings and disco#info without the application doing anything.
    a.ping(jid("b@localhost/r"), T).await.unwrap();
    let info = a.disco_info(jid("b@localhost/r"), T).await.unwrap();
    assert!(info.has_feature("urn:xmpp:ping"), "{info:?}");
    assert!(
        info.has_feature("http://jabber.org/protocol/disco#info"),
        "{info:?}"
    );
    let server = a.disco_info(jid("localhost"), T).await.unwrap();
    assert!(
        server.identities.iter().any(|i| i.category == "server"),
        "{server:?}"
    );
}

#[tokio::test]
async fn a_lost_connection_ends_requests_at_once() {
    let s = TestServer::start("").await;
    let ((a, mut ae), (_b, _be)) = pair(&s).await;
    let a2 = a.clone();
    let pending = tokio::spawn(async move {
        let start = Instant::now();
        let r = a2
            .request(
                get("urn:example:slow", "b@localhost/r"),
                Duration::from_secs(30),
            )
            .await;
        (r, start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.handle().sessions().close_account(
        "a@localhost",
        &StreamError::new(StreamErrorCondition::PolicyViolation),
    );
    let (r, took) = pending.await.unwrap();
    assert_eq!(r.unwrap_err(), RequestError::Disconnected);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let e = next_event(&mut ae, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(
        matches!(&e, Event::Disconnected { reason: Some(r), reconnecting: false } if r.contains("policy-violation")),
        "{e:?}"
    );
    assert_eq!(
        a.send_message(jid("b@localhost"), "too late").await,
        Err(SendError::Disconnected)
    );
    assert_eq!(
        a.request(get("urn:example:echo", "b@localhost/r"), T).await,
        Err(RequestError::Disconnected)
    );
}

#[tokio::test]
async fn messages_roster_and_pushes() {
    let s = TestServer::start("").await;
    let ((a, _ae), (b, mut be)) = pair(&s).await;
    a.send_message(jid("b@localhost/r"), "wherefore")
        .await
        .unwrap();
    let m = next_event(&mut be, |e| matches!(e, Event::Message(_))).await;
    let Event::Message(m) = m else { unreachable!() };
    assert_eq!(m.body().as_deref(), Some("wherefore"));
    assert_eq!(m.from, Some(jid("a@localhost/r")));

    assert!(b.roster(T).await.unwrap().is_empty());
    b.roster_set(
        jid("a@localhost"),
        Some("A".into()),
        vec!["friends".into()],
        T,
    )
    .await
    .unwrap();
    let push = next_event(&mut be, |e| matches!(e, Event::Iq(_))).await;
    let Event::Iq(push) = push else {
        unreachable!()
    };
    assert_eq!(RosterEntry::all_in(&push)[0].jid, jid("a@localhost"));
    let roster = b.roster(T).await.unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].name.as_deref(), Some("A"));
    assert_eq!(roster[0].groups, ["friends"]);
    b.roster_remove(jid("a@localhost"), T).await.unwrap();
    assert!(b.roster(T).await.unwrap().is_empty());
    b.close().await;
    let e = next_event(&mut be, |e| matches!(e, Event::Disconnected { .. })).await;
    assert_eq!(
        e,
        Event::Disconnected {
            reason: None,
            reconnecting: false
        }
    );
    assert!(!b.is_connected());
}

#[tokio::test]
async fn reconnects_when_asked_to() {
    let s = TestServer::start("").await;
    s.add_user("a", "password-a").await;
    let (a, mut ae) = s
        .client("a@localhost/r", "password-a")
        .reconnect(Some(Reconnect {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        }))
        .connect()
        .await
        .unwrap();
    s.handle().sessions().close_account(
        "a@localhost",
        &StreamError::new(StreamErrorCondition::Reset),
    );
    let e = next_event(&mut ae, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(
        matches!(
            e,
            Event::Disconnected {
                reconnecting: true,
                ..
            }
        ),
        "{e:?}"
    );
    let e = next_event(&mut ae, |e| matches!(e, Event::Reconnected { .. })).await;
    assert_eq!(
        e,
        Event::Reconnected {
            jid: jid("a@localhost/r")
        }
    );
    assert!(a.is_connected());
    a.ping(jid("localhost"), T).await.unwrap();
    a.close().await;
}

#[tokio::test]
async fn keepalives_hold_an_idle_connection() {
    let s = TestServer::start("[c2s]\nidle_timeout_secs = 1").await;
    s.add_user("a", "password-a").await;
    s.add_user("b", "password-b").await;
    let (kept, _ke) = s
        .client("a@localhost/r", "password-a")
        .keepalive(Some(Duration::from_millis(200)))
        .connect()
        .await
        .unwrap();
    let (silent, mut se) = s
        .client("b@localhost/r", "password-b")
        .keepalive(None)
        .connect()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    kept.ping(jid("localhost"), T).await.unwrap();
    let e = next_event(&mut se, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(
        matches!(&e, Event::Disconnected { reason: Some(r), .. } if r.contains("connection-timeout")),
        "{e:?}"
    );
    assert!(!silent.is_connected());
}

#[tokio::test]
async fn a_stanza_bxmpp_cannot_carry_is_refused_alone() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30-and-more").await;
    let (c, _e) = s
        .client("juliet@localhost/b", "r0m30-and-more")
        .format(WireFormat::Bxmpp)
        .connect()
        .await
        .unwrap();
    // No table gives urn:example:unknown a code.
    let iq =
        lithos_core::stanza::Iq::get("", lithos_core::Element::bare("q", "urn:example:unknown"))
            .with_to(jid("localhost"));
    match c.request(iq, T).await {
        Err(lithos_client::RequestError::Stanza(e)) => {
            assert_eq!(
                e.condition,
                lithos_core::stanza::DefinedCondition::NotAcceptable
            )
        }
        other => panic!("{other:?}"),
    }
    // The connection goes on.
    c.ping(jid("localhost"), T).await.unwrap();
    assert!(c.is_connected());
}

#[tokio::test]
async fn what_a_bxmpp_recipient_cannot_read_goes_back_to_the_sender() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30-and-more").await;
    s.add_user("romeo", "wherefore-art").await;
    let (juliet, mut juliet_events) = s
        .client("juliet@localhost/x", "r0m30-and-more")
        .connect()
        .await
        .unwrap();
    let (romeo, _re) = s
        .client("romeo@localhost/b", "wherefore-art")
        .format(WireFormat::Bxmpp)
        .connect()
        .await
        .unwrap();
    let mut m = lithos_core::stanza::Message::chat(jid("romeo@localhost/b"), "hi");
    m.payloads.push(Element::bare("x", "urn:example:unknown"));
    juliet.send(m).await.unwrap();
    let e = next_event(&mut juliet_events, |e| matches!(e, Event::Message(_))).await;
    let Event::Message(m) = e else { unreachable!() };
    assert_eq!(
        m.error.map(|e| e.condition),
        Some(DefinedCondition::NotAcceptable)
    );
    // Romeo's stream goes on.
    romeo.ping(jid("localhost"), T).await.unwrap();
}
