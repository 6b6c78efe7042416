//! No stream outlives its deadlines: malformed XML fails at once, a client that never reads is
//! dropped at the negotiation deadline, SASL aborts count as failures, and an address that
//! keeps failing is banned (issue 14, defects 3 and 4, and the SASL limits).

mod common;

use std::time::Duration;

use common::{Client, TestServer, flood};
use futures_util::StreamExt;
use lithos_core::StreamErrorCondition as C;
use lithos_server::sasl::scram::ScramHash;

/// The stream error the server answers `garbage` with, once the stream is open; it must
/// come within a second (the negotiation timeout is 30 s).
async fn prompt_error(c: &mut Client, garbage: &str) -> C {
    c.send_raw(garbage.as_bytes()).await;
    tokio::time::timeout(Duration::from_secs(1), c.expect_stream_error())
        .await
        .unwrap_or_else(|_| panic!("no stream error within 1 s for {garbage:?}"))
}

/// Waits until the server has no connection open (the client side never reads); returns how
/// long that took.
async fn until_no_connection(s: &TestServer, within: Duration) -> Duration {
    let start = tokio::time::Instant::now();
    let until = start + within;
    while s.handle().connection_counts().open > 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "a connection is still open after {within:?}: {:?}",
            s.handle().connection_counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn malformed_xml_fails_at_once_before_and_after_authentication() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    for garbage in [
        "<<this is not xml>>&&;",
        "<message><body>never closed</stream:stream>",
        "<message><body>&&;",
        "<message to='a'b='c'>",
        "<message><body>&nbsp;",
    ] {
        let mut c = Client::connect(s.addr()).await;
        c.open().await;
        let cond = prompt_error(&mut c, garbage).await;
        assert!(
            matches!(cond, C::NotWellFormed | C::RestrictedXml),
            "{garbage:?}: {cond:?}"
        );
        let mut c = s.login("juliet", "j", "balcony").await;
        let cond = prompt_error(&mut c, garbage).await;
        assert!(
            matches!(cond, C::NotWellFormed | C::RestrictedXml),
            "{garbage:?} after login: {cond:?}"
        );
    }
}

/// A small-window connection with its stream open (header and features read), as a bare
/// socket: from here on the test writes and never reads.
async fn opened_small_window(s: &TestServer) -> tokio::net::TcpStream {
    let mut c = Client::connect_small_window(s.addr()).await;
    c.open().await;
    assert_eq!(s.handle().connection_counts().open, 1);
    match c.framed.into_inner() {
        tokio_util::either::Either::Left(t) => t,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_at_the_negotiation_deadline() {
    // Before the fix, the stream error after the deadline was written without a deadline of
    // its own: a client that never read kept its socket (and the server's task) forever.
    let s = TestServer::start(
        "[modules.register]\nenabled = true\n[c2s]\nrequire_tls = false\nnegotiation_timeout_secs = 2",
    )
    .await;
    let tcp = opened_small_window(&s).await;
    // Registration forms are answered before authentication: ask for one again and again,
    // and never read an answer.
    let flood = flood(
        tcp,
        "<iq type='get' id='r'><query xmlns='jabber:iq:register'/></iq>".repeat(100),
        2000,
    );
    // The deadline (2 s), the goodbye's own deadline (2 s), and some slack.
    let took = until_no_connection(&s, Duration::from_secs(8)).await;
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}, before the deadline"
    );
    flood.abort();
}

#[tokio::test]
async fn sasl_aborts_count_as_failures() {
    let s = TestServer::start("[c2s]\nrequire_tls = false").await;
    let tcp = opened_small_window(&s).await;
    let flood = flood(
        tcp,
        "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".repeat(1000),
        1000,
    );
    // Three failures end the stream; the negotiation timeout (30 s) is not waited for.
    until_no_connection(&s, Duration::from_secs(5)).await;
    flood.abort();

    // A reading client sees three failures, then policy-violation.
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    c.send_xml(&"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".repeat(3))
        .await;
    for _ in 0..3 {
        let f = c.recv().await;
        assert!(f.is("failure", "urn:ietf:params:xml:ns:xmpp-sasl"), "{f}");
        assert!(f.has_child("aborted", "urn:ietf:params:xml:ns:xmpp-sasl"));
    }
    assert_eq!(c.expect_stream_error().await, C::PolicyViolation);
}

/// A client connected from `source` (a loopback address other than 127.0.0.1).
async fn connect_from(s: &TestServer, source: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    Client::from_tcp(
        socket.connect(s.addr()).await.unwrap(),
        lithos_core::codec::WireFormat::Xml,
    )
}

/// True when the server closes a new connection from `source` without a word.
async fn refused_from(s: &TestServer, source: &str) -> bool {
    let mut c = connect_from(s, source).await;
    matches!(
        tokio::time::timeout(Duration::from_secs(2), c.framed.next()).await,
        Ok(None) | Ok(Some(Err(_)))
    )
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_banned_and_others_are_not() {
    let s = TestServer::start(
        "[limits]\ntrusted_networks = []\nauth_ban_failures = 4\nauth_ban_secs = 60\n[c2s]\nrequire_tls = false\nallow_plain_without_tls = true",
    )
    .await;
    s.add_user("juliet", "r0m30").await;
    // Two connections from 127.0.0.2, two failures each (under the per-connection limit).
    for _ in 0..2 {
        let mut c = connect_from(&s, "127.0.0.2").await;
        c.open().await;
        for _ in 0..2 {
            assert_eq!(
                c.auth_plain("juliet", "guess").await,
                Err("not-authorized".into())
            );
        }
    }
    // Banned: a new connection is closed at once, whatever the password.
    assert!(refused_from(&s, "127.0.0.2").await);
    // Another address logs in as usual, and the ban does not touch 127.0.0.3's attempts.
    let mut c = connect_from(&s, "127.0.0.3").await;
    c.open().await;
    assert_eq!(c.auth_plain("juliet", "r0m30").await, Ok(()));
    let mut c = connect_from(&s, "127.0.0.3").await;
    c.open().await;
    assert_eq!(
        c.auth_scram(ScramHash::Sha256, "juliet", "r0m30").await,
        Ok(())
    );
}

#[tokio::test]
async fn connections_per_address_are_bounded_outside_trusted_networks() {
    let s = TestServer::start(
        "[limits]\ntrusted_networks = ['127.0.0.1/32']\nmax_connections_per_address = 3",
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(&s, "127.0.0.2").await;
        c.open().await;
        held.push(c);
    }
    assert!(refused_from(&s, "127.0.0.2").await);
    // The trusted address is not limited.
    for _ in 0..5 {
        let mut c = Client::connect(s.addr()).await;
        c.open().await;
        held.push(c);
    }
    // A place freed is a place taken.
    held.remove(0).close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = connect_from(&s, "127.0.0.2").await;
    c.open().await;
}
