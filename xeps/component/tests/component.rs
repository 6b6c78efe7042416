//! XEP-0114 against a real server: the handshake, stanzas both ways, and every refusal.

use lithos_component::{NS_ACCEPT, digest};
use lithos_core::{Element, StreamErrorCondition, StreamEvent};
use lithos_testkit::{RawClient, TestServer};

use lithos_disco as _;
use lithos_presence as _;
use lithos_roster as _;

const CONFIG: &str = "[components]\nlisten = ['127.0.0.1:0']\n\
                      [components.secrets]\n'bridge.localhost' = 'bridge-secret'\n\
                      'other.localhost' = 'other-secret'\n";

async fn server() -> TestServer {
    TestServer::with_users(CONFIG, &["alice"]).await
}

/// A connection to the component listener that sent a stream header in `content_ns`.
async fn connect(s: &TestServer, content_ns: &str, domain: &str) -> RawClient {
    let mut c = RawClient::connect(s.running().component_addrs[0]).await;
    c.send_raw(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='{content_ns}' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
        )
        .as_bytes(),
    )
    .await;
    c
}

/// Opens a component stream to `domain`; gives the connection and the stream id.
async fn open(s: &TestServer, domain: &str) -> (RawClient, String) {
    let mut c = connect(s, NS_ACCEPT, domain).await;
    match c.event().await {
        Some(StreamEvent::Header(h)) => {
            assert_eq!(&*h.content_ns, NS_ACCEPT);
            assert_eq!(h.from.as_deref(), Some(domain));
            assert_eq!(h.version, None, "XEP-0114's header has no version");
            let id = h.id.as_deref().expect("a stream id").to_string();
            (c, id)
        }
        other => panic!("expected a stream header, got {other:?}"),
    }
}

/// Sends the handshake proving `secret`.
async fn prove(c: &mut RawClient, id: &str, secret: &str) {
    c.send_xml(&format!(
        "<handshake xmlns='jabber:component:accept'>{}</handshake>",
        digest(id, secret)
    ))
    .await;
}

/// A component of `domain`, through the handshake.
async fn component(s: &TestServer, domain: &str, secret: &str) -> RawClient {
    let (mut c, id) = open(s, domain).await;
    prove(&mut c, &id, secret).await;
    let ok = c.recv().await;
    assert!(ok.is("handshake", NS_ACCEPT), "{ok}");
    assert_eq!(ok.child_count(), 0);
    c
}

fn body(el: &Element, ns: &str) -> String {
    el.get_child("body", ns)
        .map(Element::text)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_component_and_an_account_exchange_stanzas() {
    let s = server().await;
    let mut bridge = component(&s, "bridge.localhost", "bridge-secret").await;
    let mut alice = s.login_as("alice", "phone").await;

    // From the component to the account: in jabber:client on the account's stream.
    bridge
        .send_xml(
            "<message xmlns='jabber:component:accept' from='bot@bridge.localhost/x' \
             to='alice@localhost/phone' type='chat'><body>hello from the bridge</body></message>",
        )
        .await;
    let m = alice.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("bot@bridge.localhost/x"));
    assert_eq!(body(&m, "jabber:client"), "hello from the bridge");

    // From the account to any address of the component's domain: in the component's
    // namespace, from the sender's full JID.
    alice
        .send_xml(
            "<message xmlns='jabber:client' to='bob@bridge.localhost' type='chat'>\
             <body>hi bob</body><x xmlns='urn:example'><body>kept</body></x></message>",
        )
        .await;
    let m = bridge.recv().await;
    assert!(m.is("message", NS_ACCEPT), "{m}");
    assert_eq!(m.attr("from"), Some("alice@localhost/phone"));
    assert_eq!(m.attr("to"), Some("bob@bridge.localhost"));
    assert_eq!(body(&m, NS_ACCEPT), "hi bob");
    assert!(
        m.get_child("x", "urn:example")
            .is_some_and(|x| x.has_child("body", "urn:example")),
        "payloads keep their namespace: {m}"
    );

    // An iq to the component's domain, answered by the component.
    alice
        .send_xml(
            "<iq xmlns='jabber:client' type='get' id='q1' to='bridge.localhost'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    let q = bridge.recv().await;
    assert!(q.is("iq", NS_ACCEPT), "{q}");
    assert_eq!(q.attr("id"), Some("q1"));
    bridge
        .send_xml(
            "<iq xmlns='jabber:component:accept' type='result' id='q1' from='bridge.localhost' \
             to='alice@localhost/phone'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='gateway' type='irc'/></query></iq>",
        )
        .await;
    let a = alice
        .recv_where(|e| e.name() == "iq" && e.attr("id") == Some("q1"))
        .await;
    assert_eq!(a.attr("type"), Some("result"), "{a}");
    assert_eq!(a.attr("from"), Some("bridge.localhost"));

    // The server answers the component too (its own disco), and lists it as a service.
    bridge
        .send_xml(
            "<iq xmlns='jabber:component:accept' type='get' id='d1' from='bridge.localhost' \
             to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        )
        .await;
    let items = bridge.recv().await;
    assert_eq!(items.attr("type"), Some("result"), "{items}");
    let jids: Vec<&str> = items
        .children()
        .flat_map(|q| q.children())
        .filter_map(|i| i.attr("jid"))
        .collect();
    assert!(jids.contains(&"bridge.localhost"), "{items}");
    assert!(jids.contains(&"other.localhost"), "{items}");
}

#[tokio::test]
async fn stanzas_for_an_absent_component_are_refused() {
    let s = server().await;
    let mut alice = s.login_as("alice", "phone").await;
    alice
        .send_xml(
            "<message xmlns='jabber:client' to='bob@other.localhost' id='m1' type='chat'>\
             <body>anyone?</body></message>",
        )
        .await;
    let e = alice.recv_where(|e| e.name() == "message").await;
    assert_eq!(e.attr("type"), Some("error"), "{e}");
    assert_eq!(
        lithos_testkit::error_condition(&e).as_deref(),
        Some("service-unavailable")
    );
    // A domain that is no component's: no server-to-server here.
    let r = alice
        .iq(
            "get",
            Some("nowhere.example"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    assert_eq!(
        lithos_testkit::error_condition(&r).as_deref(),
        Some("remote-server-not-found")
    );
    // Once the component connects, the same address works; once it leaves, it is refused again.
    let mut other = component(&s, "other.localhost", "other-secret").await;
    alice
        .send_xml("<message xmlns='jabber:client' to='bob@other.localhost' id='m2'><body>now?</body></message>")
        .await;
    assert_eq!(other.recv().await.attr("id"), Some("m2"));
    other.close().await;
    let mut tries = 0;
    loop {
        alice
            .send_xml("<message xmlns='jabber:client' to='bob@other.localhost' id='m3'><body>gone?</body></message>")
            .await;
        let e = alice.recv_where(|e| e.name() == "message").await;
        if lithos_testkit::error_condition(&e).as_deref() == Some("service-unavailable") {
            break;
        }
        tries += 1;
        assert!(tries < 50, "still delivered after the component left");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn wrong_secrets_unknown_domains_and_second_connections_are_refused() {
    let s = server().await;
    let (mut c, id) = open(&s, "bridge.localhost").await;
    prove(&mut c, &id, "not-the-secret").await;
    assert_eq!(
        c.expect_stream_error().await,
        StreamErrorCondition::NotAuthorized
    );

    let mut c = connect(&s, NS_ACCEPT, "stranger.localhost").await;
    assert_eq!(
        c.expect_stream_error().await,
        StreamErrorCondition::HostUnknown
    );

    let mut c = connect(&s, "jabber:client", "bridge.localhost").await;
    assert_eq!(
        c.expect_stream_error().await,
        StreamErrorCondition::InvalidNamespace
    );

    let _first = component(&s, "bridge.localhost", "bridge-secret").await;
    let (mut second, id) = open(&s, "bridge.localhost").await;
    prove(&mut second, &id, "bridge-secret").await;
    assert_eq!(
        second.expect_stream_error().await,
        StreamErrorCondition::Conflict
    );
}

#[tokio::test]
async fn a_component_speaks_only_for_its_own_domain() {
    let s = server().await;
    let mut bridge = component(&s, "bridge.localhost", "bridge-secret").await;
    bridge
        .send_xml(
            "<message xmlns='jabber:component:accept' from='alice@localhost' \
             to='alice@localhost'><body>spoof</body></message>",
        )
        .await;
    assert_eq!(
        bridge.expect_stream_error().await,
        StreamErrorCondition::InvalidFrom
    );

    let mut bridge = component(&s, "bridge.localhost", "bridge-secret").await;
    bridge
        .send_xml("<message xmlns='jabber:component:accept' from='bot@bridge.localhost'><body>to whom?</body></message>")
        .await;
    assert_eq!(
        bridge.expect_stream_error().await,
        StreamErrorCondition::ImproperAddressing
    );
}
