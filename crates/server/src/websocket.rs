//! XMPP over WebSocket (RFC 7395) at `/xmpp-websocket` on the HTTP listener: the same
//! negotiation, session, routing and modules as a TCP stream, with one XML document per
//! text message: `<open/>` and `<close/>` (`urn:ietf:params:xml:ns:xmpp-framing`) where TCP
//! has the stream's header and end tag, and each stanza with its own namespace.
//!
//! A request that does not offer the `xmpp` subprotocol is refused (`400`); a binary message
//! ends the stream with `unsupported-encoding`; each message is parsed with the limits of
//! the `[c2s]` listener (`max_stanza_size`, depth). A WebSocket over HTTPS (`[http] tls`)
//! counts as encrypted; over plain HTTP it does not, and where `[c2s] require_tls` holds,
//! such a client cannot authenticate.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, Stream};
use lithos_core::{CodecError, Element, Limits, StreamEvent, StreamHeader, XmlError, ns};
use sync_wrapper::SyncWrapper;

use crate::ServerHandle;

/// The framing namespace of `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The subprotocol a client must offer.
pub const SUBPROTOCOL: &str = "xmpp";

/// A WebSocket carrying XMPP.
pub(crate) struct WsTransport {
    /// Behind `SyncWrapper` (used only through `&mut`): the upgraded connection is `Send`
    /// but not `Sync`, and a connection is shared by reference across awaits.
    ws: SyncWrapper<WebSocket>,
    limits: Limits,
}

fn io(e: axum::Error) -> CodecError {
    CodecError::Io(std::io::Error::other(e))
}

impl WsTransport {
    fn event(&self, text: &str) -> Result<StreamEvent, CodecError> {
        let el = lithos_core::xml::parse_document(text, &self.limits)?;
        if el.is("open", NS_FRAMING) {
            let mut h = StreamHeader::client();
            h.to = el.attr_shared("to").cloned();
            h.from = el.attr_shared("from").cloned();
            h.version = el.attr_shared("version").cloned();
            h.lang = el.attr_ns(ns::XML.as_ref(), "lang").map(Into::into);
            return Ok(StreamEvent::Header(Box::new(h)));
        }
        if el.is("close", NS_FRAMING) {
            return Ok(StreamEvent::Close);
        }
        Ok(StreamEvent::Element(el))
    }
}

/// One element as a message of its own: namespaced, the stream namespace's elements
/// (`<stream:features/>`, `<stream:error/>`) with the `stream` prefix, as RFC 7395 shows them.
fn document(el: &Element) -> String {
    if el.ns() != &*ns::STREAMS {
        return el.to_xml();
    }
    let mut s = format!("<stream:{} xmlns:stream=\"{}\">", el.name(), ns::STREAMS);
    for child in el.children() {
        s.push_str(&child.to_xml());
    }
    s.push_str(&format!("</stream:{}>", el.name()));
    s
}

fn open(h: &StreamHeader) -> String {
    let mut b = Element::builder("open", NS_FRAMING);
    for (name, value) in [
        ("from", &h.from),
        ("to", &h.to),
        ("id", &h.id),
        ("version", &h.version),
    ] {
        if let Some(v) = value {
            b = b.attr(name, v.clone());
        }
    }
    if let Some(lang) = &h.lang {
        b = b.attr_ns(ns::XML.clone(), "lang", lang.clone());
    }
    b.build().to_xml()
}

impl Stream for WsTransport {
    type Item = Result<StreamEvent, CodecError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let msg = match ready!(Pin::new(this.ws.get_mut()).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(io(e)))),
                Some(Ok(m)) => m,
            };
            return Poll::Ready(Some(match msg {
                Message::Text(t) => this.event(t.as_str()),
                // RFC 7395 §3.2: text messages only.
                Message::Binary(_) => Err(CodecError::Xml(XmlError::InvalidUtf8)),
                // Answered by the WebSocket layer.
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) => continue,
            }));
        }
    }
}

/// `Sink<$item>` for a WebSocket: each item one text message (nothing for a keep-alive).
macro_rules! ws_sink {
    ($item:ty, $text:expr) => {
        impl<'a> Sink<$item> for WsTransport {
            type Error = CodecError;

            fn poll_ready(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                Sink::<Message>::poll_ready(Pin::new(self.get_mut().ws.get_mut()), cx).map_err(io)
            }

            fn start_send(self: Pin<&mut Self>, item: $item) -> Result<(), CodecError> {
                let text: Option<String> = $text(item);
                match text {
                    Some(t) => Pin::new(self.get_mut().ws.get_mut())
                        .start_send(Message::Text(t.into()))
                        .map_err(io),
                    None => Ok(()),
                }
            }

            fn poll_flush(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                Sink::<Message>::poll_flush(Pin::new(self.get_mut().ws.get_mut()), cx).map_err(io)
            }

            fn poll_close(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                Sink::<Message>::poll_close(Pin::new(self.get_mut().ws.get_mut()), cx).map_err(io)
            }
        }
    };
}

ws_sink!(&'a StreamEvent, |ev: &StreamEvent| match ev {
    StreamEvent::Header(h) => Some(open(h)),
    StreamEvent::Element(el) => Some(document(el)),
    StreamEvent::Close => Some(format!("<close xmlns=\"{NS_FRAMING}\"/>")),
    _ => None,
});
ws_sink!(&'a Element, |el: &Element| Some(document(el)));

/// Whether the upgrade request offers the `xmpp` subprotocol.
fn offers_xmpp(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

/// `GET /xmpp-websocket`: the upgrade, then a client session like a TCP one's.
pub(crate) async fn upgrade(
    State(server): State<ServerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::http::Secure>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let tls = crate::http::counts_as_secure(&server, secure.is_some(), Some(peer.ip()));
    if !offers_xmpp(&headers) {
        return (
            StatusCode::BAD_REQUEST,
            "XMPP over WebSocket needs the \"xmpp\" subprotocol (RFC 7395)\n",
        )
            .into_response();
    }
    // Counted and bounded as any client connection ([limits]).
    let ticket = match server.0.admission.admit(peer.ip()) {
        Ok(t) => t,
        Err(why) => {
            tracing::info!(%peer, %why, "WebSocket connection refused");
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
        }
    };
    let max = server.config().c2s.max_stanza_size;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(max)
        .on_upgrade(move |socket| async move {
            let limits = Limits {
                max_stanza_size: max,
                ..Limits::default()
            };
            let transport = WsTransport {
                ws: SyncWrapper::new(socket),
                limits,
            };
            crate::stream::serve_websocket(server, transport, peer, tls, ticket).await;
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_namespace_elements_get_their_prefix_and_stanzas_their_namespace() {
        let f = Element::builder("features", ns::STREAMS.clone())
            .child(Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
            .build();
        let d = document(&f);
        assert!(
            d.starts_with("<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">"),
            "{d}"
        );
        assert!(d.ends_with("</stream:features>"), "{d}");
        assert!(
            Element::parse(&d).is_ok_and(|e| e.is("features", &ns::STREAMS)),
            "{d}"
        );
        let m = Element::builder("message", ns::JABBER_CLIENT.clone())
            .attr("to", "a@b")
            .build();
        assert!(
            document(&m).contains("xmlns=\"jabber:client\""),
            "{}",
            document(&m)
        );
        let h = StreamHeader::client()
            .from("localhost")
            .id("abc")
            .lang("en");
        let o = open(&h);
        let parsed = Element::parse(&o).unwrap();
        assert!(parsed.is("open", NS_FRAMING), "{o}");
        assert_eq!(parsed.attr("version"), Some("1.0"));
        assert_eq!(parsed.attr("id"), Some("abc"));
    }

    #[test]
    fn the_subprotocol_must_be_offered() {
        let mut h = HeaderMap::new();
        assert!(!offers_xmpp(&h));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            "chat, xmpp".parse().unwrap(),
        );
        assert!(offers_xmpp(&h));
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, "xmpp-old".parse().unwrap());
        assert!(!offers_xmpp(&h));
    }
}
