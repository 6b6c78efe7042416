//! Stream negotiation against the real server: each step, and each way it can fail.

mod common;

use std::time::Duration;

use common::{Client, TestServer, stanza};
use lithos_core::StreamErrorCondition as C;
use lithos_core::codec::WireFormat;
use lithos_server::sasl::scram::ScramHash;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

async fn error_for(server: &TestServer, input: &str) -> C {
    let mut c = Client::connect(server.addr()).await;
    c.send_raw(input.as_bytes()).await;
    c.expect_stream_error().await
}

#[tokio::test]
async fn header_checks() {
    let s = TestServer::start("").await;
    let cases = [
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>",
            C::InvalidNamespace,
        ),
        (
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
            C::InvalidNamespace,
        ),
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.example' version='1.0'>",
            C::HostUnknown,
        ),
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>",
            C::UnsupportedVersion,
        ),
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='2.0'>",
            C::UnsupportedVersion,
        ),
        (
            "<stream:stream xmlns='jabber:client' to='localhost' version='1.0'>",
            C::BadNamespacePrefix,
        ),
        ("<!-- hi --><stream:stream>", C::RestrictedXml),
    ];
    for (input, want) in cases {
        assert_eq!(error_for(&s, input).await, want, "{input}");
    }
}

#[tokio::test]
async fn tls_is_required_by_default() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    let f = c.features.clone().unwrap();
    let tls = f
        .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
        .unwrap();
    assert!(tls.has_child("required", "urn:ietf:params:xml:ns:xmpp-tls"));
    assert!(c.mechanisms().is_empty(), "no SASL before TLS");
    // Trying anyway is refused.
    assert_eq!(
        c.auth_plain("juliet", "r0m30").await,
        Err("encryption-required".into())
    );
    // A stanza before authentication ends the stream.
    c.send(stanza(
        "<message to='romeo@localhost'><body>hi</body></message>",
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, C::NotAuthorized);
}

#[tokio::test]
async fn starttls_then_each_mechanism() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30").await;
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"] {
        let mut c = Client::connect(s.addr()).await;
        c.open().await;
        c.starttls(&s.tls_connector()).await;
        assert_eq!(c.mechanisms(), ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
        let r = match mech {
            "SCRAM-SHA-256" => c.auth_scram(ScramHash::Sha256, "juliet", "r0m30").await,
            "SCRAM-SHA-1" => c.auth_scram(ScramHash::Sha1, "Juliet", "r0m30").await,
            _ => c.auth_plain("juliet", "r0m30").await,
        };
        assert_eq!(r, Ok(()), "{mech}");
        let f = c.features.clone().unwrap();
        assert!(f.has_child("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
        assert!(f.has_child("ver", "urn:xmpp:features:rosterver"));
        let jid = c.bind(Some("balcony")).await;
        assert_eq!(jid, "juliet@localhost/balcony");
        c.close().await;
    }
}

#[tokio::test]
async fn direct_tls_and_generated_resources() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = Client::connect_direct_tls(s.tls_addr(), &s.tls_connector()).await;
    c.open().await;
    assert!(!c.mechanisms().is_empty());
    c.auth_scram(ScramHash::Sha256, "juliet", "r0m30")
        .await
        .unwrap();
    let jid = c.bind(None).await;
    assert!(jid.starts_with("juliet@localhost/lithos-"), "{jid}");
}

/// A TLS client configuration trusting the server's certificate and offering `alpn`.
fn tls_with_alpn(s: &TestServer, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in
        rustls::pki_types::CertificateDer::pem_file_iter(s.dir.path().join("tls/cert.pem")).unwrap()
    {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

#[tokio::test]
async fn direct_tls_negotiates_alpn_xmpp_client() {
    // XEP-0368: the client offers ALPN `xmpp-client` (and names the domain in SNI).
    let s = TestServer::start("").await;
    let tcp = tokio::net::TcpStream::connect(s.tls_addr()).await.unwrap();
    let tls = tls_with_alpn(&s, &[b"xmpp-client"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"xmpp-client"[..]));
    // A client offering only another protocol is refused in the handshake.
    let tcp = tokio::net::TcpStream::connect(s.tls_addr()).await.unwrap();
    assert!(
        tls_with_alpn(&s, &[b"h2"])
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_then_cut_off() {
    // Loopback is a trusted network by default, which is never delayed.
    let s = TestServer::start("[limits]\ntrusted_networks = []").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    c.starttls(&s.tls_connector()).await;
    assert_eq!(
        c.auth_scram(ScramHash::Sha256, "juliet", "wrong").await,
        Err("not-authorized".into())
    );
    // Unknown users fail the same way, at the same step.
    assert_eq!(
        c.auth_scram(ScramHash::Sha1, "nobody", "x").await,
        Err("not-authorized".into())
    );
    let t = std::time::Instant::now();
    assert_eq!(
        c.auth_plain("juliet", "wrong").await,
        Err("not-authorized".into())
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "failures are answered later and later"
    );
    assert_eq!(c.expect_stream_error().await, C::PolicyViolation);
}

#[tokio::test]
async fn plaintext_when_allowed_and_plain_only_if_allowed() {
    let s = TestServer::start("[c2s]\nrequire_tls = false").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    assert_eq!(
        c.mechanisms(),
        ["SCRAM-SHA-256", "SCRAM-SHA-1"],
        "no PLAIN without TLS"
    );
    assert_eq!(
        c.auth_plain("juliet", "r0m30").await,
        Err("invalid-mechanism".into())
    );
    c.auth_scram(ScramHash::Sha256, "juliet", "r0m30")
        .await
        .unwrap();
    c.bind(Some("a")).await;

    let s = TestServer::start("[c2s]\nrequire_tls = false\nallow_plain_without_tls = true").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    assert!(c.mechanisms().contains(&"PLAIN".to_string()));
    c.auth_plain("juliet", "r0m30").await.unwrap();
}

#[tokio::test]
async fn bxmpp_client_on_the_same_port() {
    let s = TestServer::start("[c2s]\nrequire_tls = false\nallow_plain_without_tls = true").await;
    s.add_user("thing", "pw").await;
    let mut c = Client::connect_with(s.addr(), WireFormat::Bxmpp).await;
    c.open().await;
    c.auth_plain("thing", "pw").await.unwrap();
    assert_eq!(c.bind(Some("0")).await, "thing@localhost/0");
    let ping = c
        .iq(
            "get",
            Some("localhost"),
            lithos_core::Element::bare("ping", "urn:xmpp:ping"),
        )
        .await;
    assert_eq!(ping.attr("type"), Some("result"));
}

#[tokio::test]
async fn resource_conflict_replaces_the_old_session() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30").await;
    let mut first = s.login("juliet", "r0m30", "balcony").await;
    let _second = s.login("juliet", "r0m30", "balcony").await;
    assert_eq!(first.expect_stream_error().await, C::Conflict);
}

#[tokio::test]
async fn oversized_stanzas_and_idle_connections() {
    let s = TestServer::start("[c2s]\nmax_stanza_size = 2048\nidle_timeout_secs = 1").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = s.login("juliet", "r0m30", "r").await;
    let big = format!(
        "<message to='juliet@localhost'><body>{}</body></message>",
        "x".repeat(4000)
    );
    c.send_raw(big.as_bytes()).await;
    assert_eq!(c.expect_stream_error().await, C::PolicyViolation);

    let mut idle = s.login("juliet", "r0m30", "idle").await;
    assert_eq!(idle.expect_stream_error().await, C::ConnectionTimeout);
}

#[tokio::test]
async fn shutdown_tells_every_stream() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "r0m30").await;
    let mut c = s.login("juliet", "r0m30", "r").await;
    let mut s = s;
    let server = s.server.take().unwrap();
    let stop = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    assert_eq!(c.expect_stream_error().await, C::SystemShutdown);
    stop.await.unwrap();
}

#[tokio::test]
async fn xml_errors_map_to_stream_errors() {
    let s = TestServer::start("").await;
    assert_eq!(
        error_for(&s, &format!("{HEADER}<message><a></b></message>")).await,
        C::NotWellFormed
    );
    assert_eq!(
        error_for(&s, &format!("{HEADER}<?pi x?>")).await,
        C::RestrictedXml
    );
    assert_eq!(
        error_for(&s, &format!("{HEADER}<foo:bar/>")).await,
        C::BadNamespacePrefix
    );
}
