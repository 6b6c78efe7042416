//! XMPP over WebSocket (RFC 7395) against the real server: a raw client opens, authenticates,
//! restarts, binds, reads its roster and exchanges messages with a TCP client; the
//! subprotocol is required; a binary message ends the stream; XEP-0156 discovery.

mod common;

use common::{TestServer, stanza};
use futures_util::{SinkExt, StreamExt};
use lithos_core::Element;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    s: &TestServer,
    protocol: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}/xmpp-websocket", s.http_addr())
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (ws, response) = tokio_tungstenite::connect_async(req).await?;
    if protocol.is_some() {
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("xmpp")
        );
    }
    Ok(ws)
}

/// The next text message, parsed (each is one XML document).
async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Element {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket open")
            .unwrap();
        if let Message::Text(t) = m {
            return Element::parse(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}"));
        }
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, xml: &str) {
    ws.send(Message::Text(xml.into())).await.unwrap();
}

/// `<open/>`, and the server's `<open/>` and features.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Element {
    send(
        ws,
        &format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"),
    )
    .await;
    let o = next(ws).await;
    assert!(o.is("open", FRAMING), "{o}");
    assert_eq!(
        (o.attr("from"), o.attr("version")),
        (Some("localhost"), Some("1.0"))
    );
    assert!(o.attr("id").is_some());
    let f = next(ws).await;
    assert!(f.is("features", "http://etherx.jabber.org/streams"), "{f}");
    f
}

#[tokio::test]
async fn a_websocket_client_logs_in_reads_its_roster_and_chats_with_a_tcp_client() {
    let s = TestServer::start("[c2s]\nrequire_tls = false\nallow_plain_without_tls = true").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut romeo = s.login("romeo", "r", "orchard").await;
    romeo.send(stanza("<presence/>")).await;

    let mut ws = connect(&s, Some("xmpp")).await.unwrap();
    let features = open(&mut ws).await;
    let xml = features.to_xml();
    assert!(
        xml.contains("PLAIN") && !xml.contains("starttls"),
        "no STARTTLS over WebSocket: {xml}"
    );
    // SASL PLAIN, then the restart with a new <open/>.
    send(
        &mut ws,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABq</auth>",
    )
    .await;
    let ok = next(&mut ws).await;
    assert_eq!(ok.name(), "success", "{ok}");
    let features = open(&mut ws).await;
    assert!(
        features
            .to_xml()
            .contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{features}"
    );
    send(
        &mut ws,
        "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>",
    )
    .await;
    let bound = next(&mut ws).await;
    assert!(bound.to_xml().contains("juliet@localhost/web"), "{bound}");
    send(
        &mut ws,
        "<iq xmlns='jabber:client' type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    let roster = next(&mut ws).await;
    assert_eq!(
        (roster.attr("id"), roster.attr("type")),
        (Some("r"), Some("result")),
        "{roster}"
    );
    send(&mut ws, "<presence xmlns='jabber:client'/>").await;

    // WebSocket to TCP, and back.
    send(
        &mut ws,
        "<message xmlns='jabber:client' to='romeo@localhost/orchard' type='chat' id='w1'><body>over the web</body></message>",
    )
    .await;
    let m = romeo.recv_where(|e| e.attr("id") == Some("w1")).await;
    assert_eq!(m.attr("from"), Some("juliet@localhost/web"));
    romeo
        .send(stanza(
            "<message to='juliet@localhost/web' type='chat' id='t1'><body>over TCP</body></message>",
        ))
        .await;
    let back = loop {
        let e = next(&mut ws).await;
        if e.attr("id") == Some("t1") {
            break e;
        }
    };
    assert_eq!(back.ns(), "jabber:client");
    assert!(back.to_xml().contains("over TCP"));

    // <close/> is answered with <close/>.
    send(&mut ws, &format!("<close xmlns='{FRAMING}'/>")).await;
    let c = loop {
        let e = next(&mut ws).await;
        if e.is("close", FRAMING) {
            break e;
        }
    };
    assert!(c.is("close", FRAMING));
}

#[tokio::test]
async fn the_subprotocol_is_required_and_binary_or_malformed_messages_end_the_stream() {
    let s = TestServer::start("").await;
    match connect(&s, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        Err(e) => panic!("refused otherwise: {e}"),
        Ok(_) => panic!("accepted without the xmpp subprotocol"),
    }
    assert!(connect(&s, Some("chat")).await.is_err());

    let mut ws = connect(&s, Some("xmpp")).await.unwrap();
    open(&mut ws).await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let e = next(&mut ws).await;
    assert!(e.is("error", "http://etherx.jabber.org/streams"), "{e}");
    assert!(e.to_xml().contains("unsupported-encoding"), "{e}");
    assert!(next(&mut ws).await.is("close", FRAMING));

    // A text message that is not one well-formed document ends the stream with
    // not-well-formed (RFC 7395 §3.3.3), then <close/>.
    let mut ws = connect(&s, Some("xmpp")).await.unwrap();
    open(&mut ws).await;
    ws.send(Message::text(
        "<message xmlns='jabber:client'><body>unclosed",
    ))
    .await
    .unwrap();
    let e = next(&mut ws).await;
    assert!(e.is("error", "http://etherx.jabber.org/streams"), "{e}");
    assert!(e.to_xml().contains("not-well-formed"), "{e}");
    assert!(next(&mut ws).await.is("close", FRAMING));

    // XEP-0156: where to connect.
    let mut c = tokio::net::TcpStream::connect(s.http_addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: xmpp.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).await.unwrap();
    assert!(r.contains("ws://xmpp.example/xmpp-websocket"), "{r}");
    assert!(r.contains("urn:xmpp:alt-connections:websocket"), "{r}");
}

/// Over HTTPS (`[http] tls`), the WebSocket counts as encrypted: with `require_tls` (the
/// default) a client authenticates there, which it may not over plain HTTP from elsewhere
/// than loopback.
#[tokio::test]
async fn over_https_a_websocket_counts_as_encrypted() {
    let s = TestServer::start("[http]\nlisten = ['127.0.0.1:0']\ntls = true\n").await;
    s.add_user("juliet", "j").await;
    let tcp = tokio::net::TcpStream::connect(s.http_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = s.tls_connector().connect(name, tcp).await.unwrap();
    let mut req = "wss://localhost/xmpp-websocket"
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    let features = open(&mut ws).await;
    assert!(features.to_xml().contains("PLAIN"), "{features}");
    send(
        &mut ws,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABq</auth>",
    )
    .await;
    assert_eq!(next(&mut ws).await.name(), "success");

    // The same listener over plain HTTP is refused: it speaks TLS only.
    let mut plain = tokio::net::TcpStream::connect(s.http_addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // Plain HTTP from loopback counts as encrypted (`loopback_is_secure`, the default: a
    // browser on the machine, or a TLS-terminating proxy beside the server)...
    let s = TestServer::start("").await;
    let mut ws = connect(&s, Some("xmpp")).await.unwrap();
    let features = open(&mut ws).await;
    assert!(features.to_xml().contains("PLAIN"), "{features}");
    // ...and, with it off, require_tls keeps PLAIN off the WebSocket.
    let s =
        TestServer::start("[http]\nlisten = ['127.0.0.1:0']\nloopback_is_secure = false\n").await;
    let mut ws = connect(&s, Some("xmpp")).await.unwrap();
    let features = open(&mut ws).await;
    assert!(!features.to_xml().contains("PLAIN"), "{features}");
}
