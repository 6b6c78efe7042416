//! [`RawClient`]: a client that takes every step of a stream by hand (XML or BXMPP), for tests
//! of what the server does with exactly the bytes a test chooses, malformed ones included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use lithos_core::codec::{StreamCodec, WireFormat};
use lithos_core::{Element, StreamErrorCondition, StreamEvent, StreamHeader, ns};
use lithos_server::sasl::scram::{ScramHash, client_final};
use rustls::pki_types::pem::PemObject;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

use crate::WAIT;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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

/// A raw XMPP client: every step of the stream by hand, for tests of what the server
/// does with exactly these bytes.
pub struct RawClient {
    /// Stanzas read while waiting for another, handed out first by the next read.
    pub pending: std::collections::VecDeque<Element>,
    /// The connection.
    pub framed: Framed<Io, StreamCodec>,
    /// The wire format spoken.
    pub format: WireFormat,
    /// The last stream features received.
    pub features: Option<Element>,
    /// The full JID once bound.
    pub jid: String,
}

impl RawClient {
    /// A plain TCP connection speaking XML.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(addr, WireFormat::Xml).await
    }

    /// A connection with a 4 KiB receive buffer (see [`crate::TestServer::login_small_window`]).
    pub async fn connect_small_window(addr: SocketAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        Self::from_tcp(socket.connect(addr).await.unwrap(), WireFormat::Xml)
    }

    /// A plain TCP connection speaking `format`.
    pub async fn connect_with(addr: SocketAddr, format: WireFormat) -> RawClient {
        Self::from_tcp(TcpStream::connect(addr).await.unwrap(), format)
    }

    /// A client on a connected socket.
    pub fn from_tcp(tcp: TcpStream, format: WireFormat) -> RawClient {
        RawClient {
            pending: Default::default(),
            framed: Framed::new(Either::Left(tcp), StreamCodec::new(format)),
            format,
            features: None,
            jid: String::new(),
        }
    }

    /// A direct TLS connection (XEP-0368), trusting `connector`.
    pub async fn connect_direct_tls(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
    ) -> RawClient {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        RawClient {
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

    /// Writes an element in the connection's format.
    pub async fn send(&mut self, el: Element) {
        self.framed.send(StreamEvent::Element(el)).await.unwrap();
    }

    /// Writes XML text (parsed, then sent in the connection's format).
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

    /// The next element; panics at the end of the stream or after [`WAIT`].
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

    /// The next presence from `from` (a full or bare JID, as the stanza writes it); other
    /// elements are kept for later reads.
    pub async fn presence_from(&mut self, from: &str) -> Element {
        self.recv_where(|e| e.name() == "presence" && e.attr("from") == Some(from))
            .await
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

    /// Opens the stream to `localhost` and reads the features.
    pub async fn open(&mut self) {
        self.open_to("localhost").await;
    }

    /// Opens the stream to `to` and reads the features.
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

    /// The SASL mechanisms the last features offered.
    pub fn mechanisms(&self) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(|f| f.get_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"))
            .map(|m| m.children().map(|c| c.text()).collect())
            .unwrap_or_default()
    }

    /// Negotiates STARTTLS and reopens the stream.
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

    /// Closes the stream and waits for the server's close.
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
