//! Routing (RFC 6121 §8.5) and addressing checks, against the real server.

mod common;

use std::time::Duration;

use common::{Client, TestServer, bxmpp_message, error_condition, stanza};
use lithos_core::Element;
use lithos_core::StreamErrorCondition as C;

async fn pair(s: &TestServer) -> (Client, Client) {
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let j = s.login("juliet", "j", "balcony").await;
    let r = s.login("romeo", "r", "orchard").await;
    (j, r)
}

async fn available(c: &mut Client, priority: i8) {
    c.send(stanza(&format!(
        "<presence><priority>{priority}</priority></presence>"
    )))
    .await;
}

#[tokio::test]
async fn full_jid_delivery_stamps_from() {
    let s = TestServer::start("").await;
    let (mut j, mut r) = pair(&s).await;
    r.send(stanza(
        "<message to='juliet@localhost/balcony' type='chat' id='m1'><body>Hi</body></message>",
    ))
    .await;
    let m = j.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("romeo@localhost/orchard"));
    assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), "Hi");
    // A from that is the sender's bare JID is accepted and replaced by the full JID.
    r.send(stanza(
        "<message from='romeo@localhost' to='juliet@localhost/balcony'><body>2</body></message>",
    ))
    .await;
    let m = j.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("romeo@localhost/orchard"));
}

#[tokio::test]
async fn addressing_errors() {
    let s = TestServer::start("").await;
    let (_j, mut r) = pair(&s).await;
    r.send(stanza(
        "<message to='a@b@c' id='bad'><body>x</body></message>",
    ))
    .await;
    let e = r.recv_where(|e| e.attr("id") == Some("bad")).await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_condition(&e).as_deref(), Some("jid-malformed"));

    r.send(stanza(
        "<message to='nobody@localhost' id='u' type='chat'><body>x</body></message>",
    ))
    .await;
    let e = r.recv_where(|e| e.attr("id") == Some("u")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));

    r.send(stanza(
        "<message to='someone@elsewhere.example' id='far'><body>x</body></message>",
    ))
    .await;
    let e = r.recv_where(|e| e.attr("id") == Some("far")).await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("remote-server-not-found")
    );

    // An error never gets an error in reply.
    r.send(stanza("<message to='nobody@localhost' id='err' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")).await;
    r.expect_silence(Duration::from_millis(300)).await;

    // A from that is someone else's ends the stream.
    r.send(stanza(
        "<message from='juliet@localhost/balcony' to='romeo@localhost'><body>x</body></message>",
    ))
    .await;
    assert_eq!(r.expect_stream_error().await, C::InvalidFrom);
}

#[tokio::test]
async fn iqs_to_the_server_and_between_clients() {
    let s = TestServer::start("").await;
    let (mut j, mut r) = pair(&s).await;
    let e = r
        .iq(
            "get",
            Some("localhost"),
            Element::bare("query", "urn:example:unknown"),
        )
        .await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    assert_eq!(e.attr("from"), Some("localhost"));

    // An iq to a full JID goes to that session, and its answer comes back.
    r.send(stanza("<iq type='get' id='v1' to='juliet@localhost/balcony'><query xmlns='jabber:iq:version'/></iq>")).await;
    let q = j.recv_where(|e| e.name() == "iq").await;
    assert_eq!(q.attr("from"), Some("romeo@localhost/orchard"));
    j.send(stanza("<iq type='result' id='v1' to='romeo@localhost/orchard'><query xmlns='jabber:iq:version'><name>x</name></query></iq>")).await;
    let a = r.recv_where(|e| e.attr("id") == Some("v1")).await;
    assert_eq!(a.attr("type"), Some("result"));
    assert_eq!(a.attr("from"), Some("juliet@localhost/balcony"));

    // To a resource that is not there: service-unavailable.
    let e = r
        .iq(
            "get",
            Some("juliet@localhost/elsewhere"),
            Element::bare("query", "jabber:iq:version"),
        )
        .await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
}

#[tokio::test]
async fn bare_jid_messages_go_to_the_highest_priority() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut high = s.login("juliet", "j", "high").await;
    let mut low = s.login("juliet", "j", "low").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    available(&mut high, 5).await;
    available(&mut low, 1).await;
    // Each sees its own and the other's presence.
    high.presence_from("juliet@localhost/low").await;
    low.presence_from("juliet@localhost/low").await;

    r.send(stanza(
        "<message to='juliet@localhost' type='chat' id='p'><body>to the best</body></message>",
    ))
    .await;
    let m = high.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("p"));
    low.expect_none_of("message", Duration::from_millis(300))
        .await;

    // Equal priorities: both get it.
    available(&mut low, 5).await;
    high.presence_from("juliet@localhost/low").await;
    r.send(stanza(
        "<message to='juliet@localhost' type='chat' id='q'><body>to both</body></message>",
    ))
    .await;
    assert_eq!(
        high.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("q")
    );
    assert_eq!(
        low.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("q")
    );

    // A full JID that is not bound falls back to the bare JID for chat messages.
    r.send(stanza(
        "<message to='juliet@localhost/gone' type='chat' id='f'><body>fallback</body></message>",
    ))
    .await;
    assert_eq!(
        high.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("f")
    );
    assert_eq!(
        low.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("f")
    );

    // Headlines go to every available resource.
    r.send(stanza(
        "<message to='juliet@localhost' type='headline' id='h'><body>news</body></message>",
    ))
    .await;
    assert_eq!(
        high.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("h")
    );
    assert_eq!(
        low.recv_where(|e| e.name() == "message").await.attr("id"),
        Some("h")
    );

    // Groupchat to a bare JID is refused.
    r.send(stanza(
        "<message to='juliet@localhost' type='groupchat' id='g'><body>x</body></message>",
    ))
    .await;
    let e = r.recv_where(|e| e.attr("id") == Some("g")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected() {
    let s = TestServer::start("[c2s]\noutbound_queue = 8\nwrite_timeout_secs = 1").await;
    let (mut j, mut r) = pair(&s).await;
    available(&mut j, 0).await;
    // Juliet stops reading; Romeo floods her with large messages.
    let body = "x".repeat(16 * 1024);
    let msg = stanza(&format!(
        "<message to='juliet@localhost/balcony' type='chat'><body>{body}</body></message>"
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while s
        .handle()
        .sessions()
        .get(&lithos_core::Jid::new("juliet@localhost/balcony").unwrap())
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the session was never closed ({sent} sent)"
        );
        for _ in 0..16 {
            r.send(msg.clone()).await;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Romeo is unaffected.
    let pong = r.ping().await;
    assert_eq!(pong.attr("type"), Some("result"));
    drop(j);
}

async fn bxmpp_thing(s: &TestServer) -> Client {
    let mut b = Client::connect_with(s.addr(), lithos_core::codec::WireFormat::Bxmpp).await;
    b.open().await;
    b.auth_plain("thing", "pw").await.unwrap();
    b.bind(Some("0")).await;
    b
}

#[tokio::test]
async fn a_bxmpp_client_cannot_forge_a_sender_or_smuggle_control_characters() {
    // Issue 14, defect 5: a BXMPP client delivered <message from='mallory' from='admin'>
    // with U+0001 in its body to an XML recipient, whose stream then broke.
    let s = TestServer::start("[c2s]\nrequire_tls = false\nallow_plain_without_tls = true").await;
    s.add_user("juliet", "j").await;
    s.add_user("thing", "pw").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    let to = ("to", "juliet@localhost/balcony");
    // The document is well formed as BXMPP: sent alone it is delivered.
    let mut b = bxmpp_thing(&s).await;
    b.send_raw(&bxmpp_message(&[to, ("id", "ok")], "hello"))
        .await;
    let m = j.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("thing@localhost/0"));

    b.send_raw(&bxmpp_message(
        &[
            to,
            ("from", "thing@localhost/0"),
            ("from", "admin@localhost/x"),
        ],
        "hi",
    ))
    .await;
    assert_eq!(b.expect_stream_error().await, C::NotWellFormed);

    let mut b = bxmpp_thing(&s).await;
    b.send_raw(&bxmpp_message(&[to], "hi\u{1}there")).await;
    assert_eq!(b.expect_stream_error().await, C::NotWellFormed);

    // Juliet received neither, and her stream is sound.
    j.expect_none_of("message", Duration::from_millis(300))
        .await;
    let pong = j.ping().await;
    assert_eq!(pong.attr("type"), Some("result"));
}

#[tokio::test]
async fn malformed_iqs_get_bad_request_wherever_they_go() {
    // Issue 14, defect 6: each of these was accepted in silence.
    let s = TestServer::start("").await;
    let (_j, mut r) = pair(&s).await;
    for to in ["localhost", "juliet@localhost", "juliet@localhost/balcony"] {
        for (id, xml) in [
            (
                "t1",
                format!("<iq to='{to}' type='poke' id='t1'><ping xmlns='urn:xmpp:ping'/></iq>"),
            ),
            (
                "t2",
                format!("<iq to='{to}' id='t2'><ping xmlns='urn:xmpp:ping'/></iq>"),
            ),
            ("t3", format!("<iq to='{to}' type='get' id='t3'/>")),
            (
                "t4",
                format!(
                    "<iq to='{to}' type='set' id='t4'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>"
                ),
            ),
        ] {
            r.send(stanza(&xml)).await;
            let e = r.recv_where(|e| e.attr("id") == Some(id)).await;
            assert_eq!(e.attr("type"), Some("error"), "{xml}: {e}");
            assert_eq!(error_condition(&e).as_deref(), Some("bad-request"), "{xml}");
        }
        // No id: the error cannot name the request, but it comes.
        r.send(stanza(&format!(
            "<iq to='{to}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        )))
        .await;
        let e = r
            .recv_where(|e| e.name() == "iq" && e.attr("id").is_none())
            .await;
        assert_eq!(error_condition(&e).as_deref(), Some("bad-request"), "{e}");
    }
}

#[tokio::test]
async fn the_legacy_session_iq_is_answered_with_an_empty_result() {
    // Issue 14, defect 7: advertised as optional, then refused with service-unavailable.
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    for to in [None, Some("localhost")] {
        let r = j
            .iq(
                "set",
                to,
                Element::bare("session", "urn:ietf:params:xml:ns:xmpp-session"),
            )
            .await;
        assert_eq!(r.attr("type"), Some("result"), "{r}");
        assert_eq!(r.children().count(), 0);
    }
}
