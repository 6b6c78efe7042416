//! Test support: an in-process server on ephemeral ports, and a raw XMPP client.

#![allow(dead_code)]

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use lithos_core::codec::{StreamCodec, WireFormat};
use lithos_core::{Element, StreamErrorCondition, StreamEvent, StreamHeader, ns};
use lithos_server::sasl::scram::{ScramHash, client_final};
use lithos_server::{Config, RunningServer};
use rustls::pki_types::pem::PemObject;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub extra: String,
}

impl TestServer {
    pub async fn start(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: &str) -> TestServer {
        if std::env::var_os("LITHOS_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
        let text = format!(
            "domain = 'localhost'\ndata_dir = '{}'\n{extra}\n[things]\nlisten = ['127.0.0.1:0']\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = ['127.0.0.1:0']\n",
            dir.path().display()
        );
        let (head, c2s_extra) = match extra.split_once("[c2s]") {
            Some((h, rest)) => (h.to_string(), rest.to_string()),
            None => (extra.to_string(), String::new()),
        };
        let text = if c2s_extra.is_empty() {
            text
        } else {
            format!(
                "domain = 'localhost'\ndata_dir = '{}'\n{head}\n[things]\nlisten = ['127.0.0.1:0']\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = ['127.0.0.1:0']\n{c2s_extra}\n",
                dir.path().display()
            )
        };
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let server = RunningServer::start(config).await.unwrap();
        TestServer {
            server: Some(server),
            dir,
            extra: extra.to_string(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().c2s_addrs[0]
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().direct_tls_addrs[0]
    }

    pub fn handle(&self) -> &lithos_server::ServerHandle {
        self.server.as_ref().unwrap().handle()
    }

    pub async fn add_user(&self, name: &str, password: &str) {
        let creds = lithos_server::sasl::Credentials::new(password, 4096).unwrap();
        self.handle()
            .storage()
            .accounts
            .create_account(name, &creds)
            .await
            .unwrap();
    }

    /// Stops the server (as on SIGTERM) and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        self.server
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await;
        let extra = self.extra.clone();
        Self::start_in(self.dir, &extra).await
    }

    pub fn tls_connector(&self) -> tokio_rustls::TlsConnector {
        connector_for(&self.dir.path().join("tls/cert.pem"))
    }

    /// A client logged in over STARTTLS with SCRAM-SHA-256, with `resource` bound.
    pub async fn login(&self, user: &str, password: &str, resource: &str) -> Client {
        self.login_on(Client::connect(self.addr()).await, user, password, resource)
            .await
    }

    /// As [`login`](Self::login), on a connection whose receive buffer is a few kilobytes:
    /// when it stops reading, the server's writes stall at once instead of filling megabytes
    /// of socket buffers first.
    pub async fn login_small_window(&self, user: &str, password: &str, resource: &str) -> Client {
        self.login_on(
            Client::connect_small_window(self.addr()).await,
            user,
            password,
            resource,
        )
        .await
    }

    /// Logs in on a connected client.
    pub async fn login_on(
        &self,
        mut c: Client,
        user: &str,
        password: &str,
        resource: &str,
    ) -> Client {
        c.open().await;
        c.starttls(&self.tls_connector()).await;
        c.auth_scram(ScramHash::Sha256, user, password)
            .await
            .unwrap();
        c.bind(Some(resource)).await;
        c
    }
}

/// A TLS connector that trusts the certificate in `cert` (a server's generated one).
pub fn connector_for(cert: &std::path::Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

type Io = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

pub struct Client {
    /// Stanzas read while waiting for another, handed out first by the next read.
    pub pending: std::collections::VecDeque<Element>,
    pub framed: Framed<Io, StreamCodec>,
    pub format: WireFormat,
    pub features: Option<Element>,
    pub jid: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::connect_with(addr, WireFormat::Xml).await
    }

    /// A connection with a 4 KiB receive buffer (see [`TestServer::login_small_window`]).
    pub async fn connect_small_window(addr: SocketAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        Self::from_tcp(socket.connect(addr).await.unwrap(), WireFormat::Xml)
    }

    pub async fn connect_with(addr: SocketAddr, format: WireFormat) -> Client {
        Self::from_tcp(TcpStream::connect(addr).await.unwrap(), format)
    }

    pub fn from_tcp(tcp: TcpStream, format: WireFormat) -> Client {
        Client {
            pending: Default::default(),
            framed: Framed::new(Either::Left(tcp), StreamCodec::new(format)),
            format,
            features: None,
            jid: String::new(),
        }
    }

    pub async fn connect_direct_tls(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
    ) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        Client {
            pending: Default::default(),
            framed: Framed::new(Either::Right(tls), StreamCodec::new(WireFormat::Xml)),
            format: WireFormat::Xml,
            features: None,
            jid: String::new(),
        }
    }

    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, data: &[u8]) {
        self.framed.get_mut().write_all(data).await.unwrap();
        self.framed.get_mut().flush().await.unwrap();
    }

    pub async fn send(&mut self, el: Element) {
        self.framed.send(StreamEvent::Element(el)).await.unwrap();
    }

    pub async fn send_xml(&mut self, xml: &str) {
        self.send_raw(xml.as_bytes()).await;
    }

    /// The next event other than a keep-alive; panics after [`WAIT`].
    pub async fn event(&mut self) -> Option<StreamEvent> {
        loop {
            match tokio::time::timeout(WAIT, self.framed.next()).await {
                Err(_) => panic!("no event within {WAIT:?}"),
                Ok(None) => return None,
                Ok(Some(Err(e))) => panic!("client decode error: {e}"),
                Ok(Some(Ok(StreamEvent::KeepAlive))) => continue,
                Ok(Some(Ok(ev))) => return Some(ev),
            }
        }
    }

    pub async fn recv(&mut self) -> Element {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        match self.event().await {
            Some(StreamEvent::Element(e)) => e,
            other => panic!("expected an element, got {other:?}"),
        }
    }

    /// Waits for a stanza matching `pred`; the others are kept for later reads, in order.
    pub async fn recv_where(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index found");
        }
        loop {
            let e = match self.event().await {
                Some(StreamEvent::Element(e)) => e,
                other => panic!("expected an element, got {other:?}"),
            };
            if pred(&e) {
                return e;
            }
            self.pending.push_back(e);
        }
    }

    /// Asserts no stanza named `name` arrives within `d`; others are kept.
    pub async fn expect_none_of(&mut self, name: &str, d: Duration) {
        assert!(
            !self.pending.iter().any(|e| e.name() == name),
            "expected no {name}, have {:?}",
            self.pending
        );
        let until = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(until, self.framed.next()).await {
                Err(_) => return,
                Ok(Some(Ok(StreamEvent::Element(e)))) => {
                    assert!(e.name() != name, "expected no {name}, got {e}");
                    self.pending.push_back(e);
                }
                Ok(Some(Ok(StreamEvent::KeepAlive))) => continue,
                Ok(other) => panic!("expected stanzas, got {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives within `d` (and nothing is waiting).
    pub async fn expect_silence(&mut self, d: Duration) {
        assert!(
            self.pending.is_empty(),
            "expected nothing, have {:?}",
            self.pending
        );
        loop {
            match tokio::time::timeout(d, self.framed.next()).await {
                Err(_) => return,
                Ok(Some(Ok(StreamEvent::KeepAlive))) => continue,
                Ok(other) => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    /// Reads until a stream error and the close; returns the condition.
    pub async fn expect_stream_error(&mut self) -> StreamErrorCondition {
        loop {
            match self.event().await {
                Some(StreamEvent::Element(e))
                    if e.is("error", "http://etherx.jabber.org/streams") =>
                {
                    let err = lithos_core::StreamError::from_element(&e).unwrap();
                    return err.condition;
                }
                Some(StreamEvent::Header(_)) | Some(StreamEvent::Element(_)) => continue,
                other => panic!("expected a stream error, got {other:?}"),
            }
        }
    }

    pub async fn open(&mut self) {
        self.open_to("localhost").await;
    }

    pub async fn open_to(&mut self, to: &str) {
        self.framed.codec_mut().reset_decoder();
        self.framed
            .send(StreamEvent::from(StreamHeader::client().to(to.to_string())))
            .await
            .unwrap();
        match self.event().await {
            Some(StreamEvent::Header(h)) => {
                assert_eq!(h.from.as_deref(), Some("localhost"));
                assert!(h.id.is_some());
            }
            other => panic!("expected a header, got {other:?}"),
        }
        let f = self.recv().await;
        assert!(f.is("features", "http://etherx.jabber.org/streams"), "{f}");
        self.features = Some(f);
    }

    pub fn mechanisms(&self) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(|f| f.get_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"))
            .map(|m| m.children().map(|c| c.text()).collect())
            .unwrap_or_default()
    }

    pub async fn starttls(&mut self, connector: &tokio_rustls::TlsConnector) {
        self.send(Element::bare("starttls", ns::XMPP_TLS)).await;
        let p = self.recv().await;
        assert!(p.is("proceed", "urn:ietf:params:xml:ns:xmpp-tls"), "{p}");
        let old = std::mem::replace(
            &mut self.framed,
            Framed::new(
                Either::Left(TcpStream::connect(placeholder()).await.unwrap()),
                StreamCodec::new(self.format),
            ),
        );
        let Either::Left(tcp) = old.into_inner() else {
            panic!("already TLS")
        };
        let tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        self.framed = Framed::new(Either::Right(tls), StreamCodec::new(self.format));
        self.open().await;
    }

    /// SASL PLAIN; on success the stream is reopened.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), String> {
        let data = B64.encode(format!("\0{user}\0{password}"));
        self.send(
            Element::builder("auth", ns::XMPP_SASL)
                .attr("mechanism", "PLAIN")
                .text(data)
                .build(),
        )
        .await;
        let r = self.recv().await;
        self.finish_auth(r).await
    }

    async fn finish_auth(&mut self, r: Element) -> Result<(), String> {
        match r.name() {
            "success" => {
                self.open().await;
                Ok(())
            }
            "failure" => Err(r
                .children()
                .next()
                .map(|c| c.name().to_string())
                .unwrap_or_default()),
            other => panic!("unexpected {other}: {r}"),
        }
    }

    /// SASL SCRAM; on success the stream is reopened. Checks the server's signature.
    pub async fn auth_scram(
        &mut self,
        hash: ScramHash,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        let name = if hash == ScramHash::Sha1 {
            "SCRAM-SHA-1"
        } else {
            "SCRAM-SHA-256"
        };
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce[..]);
        let first_bare = format!("n={user},r={}", B64.encode(nonce));
        self.send(
            Element::builder("auth", ns::XMPP_SASL)
                .attr("mechanism", name)
                .text(B64.encode(format!("n,,{first_bare}")))
                .build(),
        )
        .await;
        let ch = self.recv().await;
        if ch.name() != "challenge" {
            return self.finish_auth(ch).await;
        }
        let server_first = String::from_utf8(B64.decode(ch.text()).unwrap()).unwrap();
        let (fin, sig) = client_final(hash, password, &first_bare, &server_first).unwrap();
        self.send(
            Element::builder("response", ns::XMPP_SASL)
                .text(B64.encode(fin))
                .build(),
        )
        .await;
        let r = self.recv().await;
        if r.name() == "success" {
            let v = String::from_utf8(B64.decode(r.text()).unwrap()).unwrap();
            assert_eq!(v, format!("v={}", B64.encode(sig)), "server signature");
        }
        self.finish_auth(r).await
    }

    /// Binds a resource and returns the full JID.
    pub async fn bind(&mut self, resource: Option<&str>) -> String {
        let mut bind = Element::bare("bind", ns::XMPP_BIND);
        if let Some(r) = resource {
            bind.append_child(
                Element::builder("resource", ns::XMPP_BIND)
                    .text(r.to_string())
                    .build(),
            );
        }
        self.send(
            Element::builder("iq", ns::JABBER_CLIENT)
                .attr("type", "set")
                .attr("id", "bind1")
                .child(bind)
                .build(),
        )
        .await;
        let r = self.recv().await;
        assert_eq!(r.attr("type"), Some("result"), "{r}");
        self.jid = r
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(|j| j.text())
            .unwrap();
        self.jid.clone()
    }

    /// Sends an iq and returns the answer with the same id.
    pub async fn iq(&mut self, type_: &str, to: Option<&str>, payload: Element) -> Element {
        let id = format!("q{}", rand::random::<u32>());
        self.send(
            Element::builder("iq", ns::JABBER_CLIENT)
                .attr("type", type_.to_string())
                .attr("id", id.clone())
                .opt_attr("to", to.map(str::to_string))
                .child(payload)
                .build(),
        )
        .await;
        self.recv_where(|e| e.name() == "iq" && e.attr("id") == Some(id.as_str()))
            .await
    }

    pub async fn close(mut self) {
        let _ = self.framed.send(StreamEvent::Close).await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(ev)) = self.framed.next().await {
                if ev == StreamEvent::Close {
                    break;
                }
            }
        })
        .await;
    }
}

/// Somewhere to connect a throwaway socket while the real one is being upgraded.
fn placeholder() -> SocketAddr {
    use std::sync::OnceLock;
    static L: OnceLock<std::net::TcpListener> = OnceLock::new();
    L.get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .local_addr()
        .unwrap()
}

pub fn stanza(xml: &str) -> Element {
    let end = xml[1..]
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap()
        + 1;
    Element::parse(&format!(
        "{} xmlns='jabber:client'{}",
        &xml[..end],
        &xml[end..]
    ))
    .unwrap()
}

pub fn buf(s: &str) -> BytesMut {
    BytesMut::from(s.as_bytes())
}

/// The defined condition of a stanza error (`<iq type='error'>`, a bounced message...).
pub fn error_condition(e: &Element) -> Option<String> {
    e.get_child("error", "jabber:client")?
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_string())
}

/// `n` chat messages to `to` as one write, ids `<prefix>0`, `<prefix>1`, ..., each with
/// `body`.
pub fn chat_burst(to: &str, prefix: &str, n: usize, body: &str) -> String {
    (0..n)
        .map(|i| {
            format!("<message to='{to}' type='chat' id='{prefix}{i}'><body>{body}</body></message>")
        })
        .collect()
}

/// A BXMPP message document built byte by byte (the encoder would not write a duplicate
/// attribute or a control character): `attrs` on `<message>`, and a `<body>` holding
/// `body`, all plain ASCII.
pub fn bxmpp_message(attrs: &[(&str, &str)], body: &str) -> Vec<u8> {
    let vocab = lithos_core::binary::Vocabulary::global();
    let code = |k: &str| vocab.default_extension().code_of(k).unwrap();
    let mut doc = vec![0xFF, code("message"), attrs.len() as u8, 1];
    for (k, v) in attrs {
        doc.push(code(k));
        doc.extend_from_slice(v.as_bytes());
        doc.push(0xFE);
    }
    doc.extend_from_slice(&[code("body"), 0, 0x80]);
    doc.extend_from_slice(body.as_bytes());
    doc.push(0xFF);
    doc
}

impl Client {
    /// Pings the server and returns its answer: everything sent before was handled by then.
    pub async fn ping(&mut self) -> Element {
        self.iq(
            "get",
            Some("localhost"),
            Element::bare("ping", "urn:xmpp:ping"),
        )
        .await
    }
}

/// For tests that run the `lithosd` binary as a process.
pub mod process {
    use std::io::Write as _;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A loopback port nothing listens on now.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// `lithosd --config CONFIG user add NAME`, the password on standard input.
    pub fn add_user(config: &Path, name: &str, password: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lithosd"))
            .arg("--config")
            .arg(config)
            .args(["user", "add", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `lithosd --config CONFIG`, its standard error appended to `log`.
    pub fn spawn(config: &Path, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_lithosd"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("lithosd starts")
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`; panics after 30 s
    /// with the server's `log`.
    pub async fn wait_listening(port: u16, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "lithosd did not listen: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Writes `chunk` `times` times on its own task, reading nothing, until the server stops
/// taking bytes or closes: what a client that never reads does. Abort the task when done.
pub fn flood<W>(mut w: W, chunk: String, times: usize) -> tokio::task::JoinHandle<W>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        for _ in 0..times {
            if w.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        w
    })
}
