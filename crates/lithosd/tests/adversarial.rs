//! The adversarial suite (issue 14): a real `lithosd` process, attacked over TCP the way a
//! careless or hostile client would, one attack after another. Each attack must end as
//! specified, and after each the server must still serve others: a fresh login pings the
//! server and messages a session that has been connected since the start.
//!
//! Attackers connect from their own loopback addresses (127.0.0.2 and up), which the server
//! is configured not to trust; the clients that check the server's health come from
//! 127.0.0.1, which it trusts. Whether the server has closed its side of a connection a
//! client never reads is read from `/proc/net/tcp`: the client's own socket cannot tell, since
//! the close waits behind the data it did not read.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{
    Client, bxmpp_message, chat_burst, connector_for, error_condition, flood, process, stanza,
};
use futures_util::{SinkExt, StreamExt};
use lithos_core::codec::WireFormat;
use lithos_core::{StreamErrorCondition as C, StreamEvent, ns};
use lithos_server::sasl::scram::ScramHash;

const NEGOTIATION_SECS: u64 = 3;

/// `lithosd`, started as a process, killed when dropped.
struct Lithosd {
    child: Child,
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    log: std::path::PathBuf,
}

impl Drop for Lithosd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(dir: &Path) -> Lithosd {
    let port = process::free_port();
    let config = dir.join("lithos.toml");
    std::fs::write(
        &config,
        format!(
            "domain = 'localhost'\ndata_dir = '{}'\n\
             [limits]\ntrusted_networks = ['127.0.0.1/32']\nauth_ban_failures = 5\nauth_ban_secs = 120\n\
             [http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:{port}']\ndirect_tls = []\n\
             negotiation_timeout_secs = {NEGOTIATION_SECS}\noutbound_queue = 32\n\
             [things]\nlisten = []\n\
             [modules.register]\nenabled = true\nmin_seconds_between = 0\n\
             [modules.offline]\nmax_per_account = 2000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    for (u, p) in [
        ("alice", "alice-password"),
        ("bob", "bob-password"),
        ("juliet", "juliet-password"),
        ("romeo", "romeo-password"),
        ("thing", "thing-password"),
    ] {
        process::add_user(&config, u, p);
    }
    let log = dir.join("lithosd.log");
    let child = process::spawn(&config, &log);
    process::wait_listening(port, &log).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Lithosd {
        child,
        addr,
        connector: connector_for(&dir.join("data/tls/cert.pem")),
        log,
    }
}

impl Lithosd {
    /// A TCP connection from `source` (a loopback address), with a small receive buffer when
    /// the client means not to read.
    async fn tcp_from(&self, source: &str, small_window: bool) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if small_window {
            socket.set_recv_buffer_size(4096).unwrap();
        }
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(self.addr).await.unwrap()
    }

    async fn client_from(&self, source: &str, format: WireFormat, small_window: bool) -> Client {
        Client::from_tcp(self.tcp_from(source, small_window).await, format)
    }

    /// A client logged in (STARTTLS, SCRAM-SHA-256) from `source` as `user/resource`.
    async fn login(&self, source: &str, user: &str, resource: &str, format: WireFormat) -> Client {
        self.login_with(source, user, resource, format, false).await
    }

    async fn login_with(
        &self,
        source: &str,
        user: &str,
        resource: &str,
        format: WireFormat,
        small_window: bool,
    ) -> Client {
        let mut c = self.client_from(source, format, small_window).await;
        c.open().await;
        c.starttls(&self.connector).await;
        c.auth_scram(ScramHash::Sha256, user, &format!("{user}-password"))
            .await
            .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"));
        c.bind(Some(resource)).await;
        c
    }

    /// The server's state for its side of the connection from `client` (None: no socket).
    fn server_side(&self, client: SocketAddr) -> Option<u8> {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        let port_of = |field: &str| {
            field
                .split(':')
                .nth(1)
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        table.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 3
                && port_of(f[1]) == Some(self.addr.port())
                && port_of(f[2]) == Some(client.port()))
            .then(|| u8::from_str_radix(f[3], 16).ok())
            .flatten()
        })
    }

    /// Waits until the server no longer has the connection from `client` established.
    async fn until_closed(&self, client: SocketAddr, within: Duration, what: &str) -> Duration {
        const ESTABLISHED: u8 = 0x01;
        let start = Instant::now();
        while self.server_side(client) == Some(ESTABLISHED) {
            assert!(
                start.elapsed() < within,
                "{what}: the server still holds the connection after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The server still serves: a fresh login pings it and messages `watcher`, the session that
/// has been connected since the start, which receives the message.
async fn alive(s: &Lithosd, watcher: &mut Client, after: &str) {
    let mut a = tokio::time::timeout(
        Duration::from_secs(10),
        s.login("127.0.0.1", "alice", after, WireFormat::Xml),
    )
    .await
    .unwrap_or_else(|_| panic!("after {after}: no login within 10 s\n{}", s.log()));
    let pong = a.ping().await;
    assert_eq!(pong.attr("type"), Some("result"), "after {after}: {pong}");
    let id = format!("alive-{after}");
    a.send(stanza(&format!(
        "<message to='bob@localhost/watch' type='chat' id='{id}'><body>still here</body></message>"
    )))
    .await;
    let m = watcher
        .recv_where(|e| e.name() == "message" && e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(m.attr("from"), Some(&*format!("alice@localhost/{after}")));
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lithosd_withstands_the_attacks_and_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let s = start(tmp.path()).await;
    let mut watcher = s.login("127.0.0.1", "bob", "watch", WireFormat::Xml).await;
    alive(&s, &mut watcher, "start").await;

    non_reading_client_after_the_deadline(&s).await;
    alive(&s, &mut watcher, "non-reading").await;

    abort_flood(&s).await;
    alive(&s, &mut watcher, "aborts").await;

    malformed_xml(&s).await;
    alive(&s, &mut watcher, "malformed").await;

    bxmpp_forgery(&s, &mut watcher).await;
    alive(&s, &mut watcher, "bxmpp").await;

    offline_store_larger_than_the_queue(&s).await;
    alive(&s, &mut watcher, "offline").await;

    flood_to_a_full_jid(&s).await;
    alive(&s, &mut watcher, "flood").await;

    login_storm(&s, &mut watcher).await;
    alive(&s, &mut watcher, "storm").await;
}

/// A client that asks and never reads: dropped at the negotiation deadline, however much
/// the server had left to write.
async fn non_reading_client_after_the_deadline(s: &Lithosd) {
    let mut c = s.client_from("127.0.0.2", WireFormat::Xml, true).await;
    c.open().await;
    // Registration forms are answered before authentication, once the stream is encrypted.
    c.starttls(&s.connector).await;
    let tokio_util::either::Either::Right(tcp) = c.framed.into_inner() else {
        unreachable!()
    };
    let local = tcp.get_ref().0.local_addr().unwrap();
    let flood = flood(
        tcp,
        "<iq type='get' id='r'><query xmlns='jabber:iq:register'/></iq>".repeat(100),
        2000,
    );
    let took = s
        .until_closed(
            local,
            Duration::from_secs(NEGOTIATION_SECS + 2 + 4),
            "non-reading client",
        )
        .await;
    assert!(
        took >= Duration::from_secs(NEGOTIATION_SECS - 1),
        "closed after {took:?}"
    );
    flood.abort();
}

/// SASL aborts without end, never read: three failures end the stream.
async fn abort_flood(s: &Lithosd) {
    let mut c = s.client_from("127.0.0.3", WireFormat::Xml, true).await;
    c.open().await;
    let tokio_util::either::Either::Left(tcp) = c.framed.into_inner() else {
        unreachable!()
    };
    let local = tcp.local_addr().unwrap();
    let flood = flood(
        tcp,
        "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".repeat(1000),
        1000,
    );
    // Well before the negotiation deadline: delays of 100, 200 and 400 ms, then the close.
    s.until_closed(local, Duration::from_secs(NEGOTIATION_SECS), "abort flood")
        .await;
    flood.abort();
}

/// Garbage gets `not-well-formed` at once, before and after authentication.
async fn malformed_xml(s: &Lithosd) {
    for garbage in [
        "<<this is not xml>>&&;",
        "<message><body>never closed</stream:stream>",
    ] {
        let mut c = s.client_from("127.0.0.4", WireFormat::Xml, false).await;
        c.open().await;
        c.send_raw(garbage.as_bytes()).await;
        let cond = tokio::time::timeout(Duration::from_secs(1), c.expect_stream_error())
            .await
            .unwrap_or_else(|_| panic!("{garbage:?} before authentication: no answer in 1 s"));
        assert_eq!(cond, C::NotWellFormed, "{garbage:?}");

        let mut c = s
            .login("127.0.0.4", "juliet", "garbage", WireFormat::Xml)
            .await;
        c.send_raw(garbage.as_bytes()).await;
        let cond = tokio::time::timeout(Duration::from_secs(1), c.expect_stream_error())
            .await
            .unwrap_or_else(|_| panic!("{garbage:?} after authentication: no answer in 1 s"));
        assert_eq!(cond, C::NotWellFormed, "{garbage:?}");
    }
}

/// A BXMPP client forging a second `from`, or smuggling a control character, is cut off;
/// the XML recipient sees nothing of it.
async fn bxmpp_forgery(s: &Lithosd, watcher: &mut Client) {
    let to = ("to", "bob@localhost/watch");
    for doc in [
        bxmpp_message(
            &[
                to,
                ("from", "thing@localhost/0"),
                ("from", "alice@localhost/x"),
            ],
            "forged",
        ),
        bxmpp_message(&[to], "control\u{1}character"),
    ] {
        let mut b = s.login("127.0.0.5", "thing", "0", WireFormat::Bxmpp).await;
        b.send_raw(&doc).await;
        assert_eq!(b.expect_stream_error().await, C::NotWellFormed);
    }
    watcher
        .expect_none_of("message", Duration::from_millis(300))
        .await;
}

/// 1,000 stored messages for a session whose queue holds 32: all arrive, in order, and the
/// session lives.
async fn offline_store_larger_than_the_queue(s: &Lithosd) {
    let mut r = s
        .login("127.0.0.6", "romeo", "orchard", WireFormat::Xml)
        .await;
    r.send_xml(&chat_burst("juliet@localhost", "o", 1000, "stored"))
        .await;
    r.ping().await;
    let mut j = s
        .login("127.0.0.6", "juliet", "balcony", WireFormat::Xml)
        .await;
    j.send(stanza("<presence/>")).await;
    let mut got = Vec::new();
    while got.len() < 1000 {
        let e = j.recv().await;
        assert!(
            !e.is("error", &ns::STREAMS),
            "juliet's session was closed after {} messages: {e}",
            got.len()
        );
        if e.name() == "message" {
            got.push(e.attr("id").unwrap().to_string());
        }
    }
    let want: Vec<String> = (0..1000).map(|i| format!("o{i}")).collect();
    assert_eq!(got, want);
    let pong = j.ping().await;
    assert_eq!(pong.attr("type"), Some("result"));
    j.close().await;
    // Delivered once: the next session finds the store empty.
    let mut j = s
        .login("127.0.0.6", "juliet", "phone", WireFormat::Xml)
        .await;
    j.send(stanza("<presence/>")).await;
    j.expect_none_of("message", Duration::from_millis(500))
        .await;
    j.close().await;
    r.close().await;
}

/// A flood to a full JID whose client does not read: refused with `resource-constraint`,
/// never dropped, and the recipient stays connected.
async fn flood_to_a_full_jid(s: &Lithosd) {
    let mut j = s
        .login_with("127.0.0.7", "juliet", "slow", WireFormat::Xml, true)
        .await;
    // Juliet reads nothing until the flood is over.
    // The sender comes from the trusted address, so it is not shaped: the flood must outrun
    // what juliet's queue and the server's socket buffer (up to 4 MB on Linux) can hold.
    let r = s
        .login("127.0.0.1", "romeo", "flood", WireFormat::Xml)
        .await;
    let (mut out, mut inp) = r.framed.split();
    let (sent_tx, mut sent) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        let mut bounced = BTreeSet::new();
        // Until the flood is sent and then quiet.
        loop {
            let quiet = tokio::time::sleep(Duration::from_secs(2));
            tokio::select! {
                ev = inp.next() => match ev {
                    Some(Ok(StreamEvent::Element(e)))
                        if e.name() == "message" && e.attr("type") == Some("error") =>
                    {
                        assert_eq!(error_condition(&e).as_deref(), Some("resource-constraint"));
                        bounced.insert(e.attr("id").unwrap().to_string());
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = quiet, if *sent.borrow() => break,
                _ = sent.changed() => {}
            }
        }
        bounced
    });
    let body = "z".repeat(16 * 1024);
    let n = 600;
    for i in 0..n {
        out.send(StreamEvent::Element(stanza(&format!(
            "<message to='juliet@localhost/slow' type='chat' id='f{i}'><body>{body}</body></message>"
        ))))
        .await
        .unwrap();
    }
    let _ = sent_tx.send(true);
    let bounced = reader.await.unwrap();
    assert!(!bounced.is_empty(), "nothing was refused");
    // Juliet was not cut off for it: she reads now, and gets every message not refused.
    let mut got = BTreeSet::new();
    while got.len() + bounced.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), j.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} delivered and {} refused of {n}: the rest is lost",
                    got.len(),
                    bounced.len()
                )
            });
        assert!(!e.is("error", &ns::STREAMS), "juliet was cut off: {e}");
        if e.name() == "message" {
            got.insert(e.attr("id").unwrap().to_string());
        }
    }
    assert!(got.is_disjoint(&bounced));
    j.close().await;
}

/// Many connections from one address with wrong passwords: the address is banned (new
/// connections closed at once, the right password refused too) while others log in.
async fn login_storm(s: &Lithosd, watcher: &mut Client) {
    let mut storm = Vec::new();
    for _ in 0..20 {
        let tcp = s.tcp_from("127.0.0.8", false).await;
        let connector = s.connector.clone();
        storm.push(tokio::spawn(async move {
            let mut c = Client::from_tcp(tcp, WireFormat::Xml);
            // A banned address may be closed before its stream opens: that is the point.
            let opened = tokio::time::timeout(Duration::from_secs(5), async {
                c.framed
                    .send(StreamEvent::from(
                        lithos_core::StreamHeader::client().to("localhost".to_string()),
                    ))
                    .await
                    .is_ok()
                    && matches!(c.framed.next().await, Some(Ok(StreamEvent::Header(_))))
            })
            .await
            .unwrap_or(false);
            if !opened {
                return;
            }
            let _ = c.framed.next().await; // features
            c.starttls(&connector).await;
            let _ = c.auth_scram(ScramHash::Sha256, "alice", "guess").await;
        }));
    }
    // Others are served during the storm.
    alive(s, watcher, "during-storm").await;
    for t in storm {
        let _ = t.await;
    }
    // Banned: a new connection from there is closed before a word, even with the password.
    let mut c = s.client_from("127.0.0.8", WireFormat::Xml, false).await;
    let first = tokio::time::timeout(Duration::from_secs(2), c.framed.next()).await;
    assert!(
        matches!(first, Ok(None) | Ok(Some(Err(_)))),
        "a banned address got {first:?}"
    );
}
