//! A client connection, over the byte stream (TCP, STARTTLS; XML or BXMPP through
//! `StreamCodec`) or over a WebSocket (RFC 7395, through tokio-tungstenite: each message one
//! XML document, `<open/>` and `<close/>` for the stream's ends). Scenarios see one `Stream`
//! of events and one `Sink`, whichever it is.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use lithos_core::codec::StreamCodec;
use lithos_core::{Element, StreamEvent, StreamHeader};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::Framed;

use crate::Io;

/// The RFC 7395 framing namespace.
const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// What went wrong on a connection, in words.
#[derive(Debug)]
pub struct ConnError(pub String);

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(e: impl std::fmt::Display) -> ConnError {
    ConnError(e.to_string())
}

/// A connection of either kind.
pub enum Conn {
    /// TCP, perhaps TLS, framed by the stream codec.
    Stream(Box<Framed<Io, StreamCodec>>),
    /// A WebSocket with the `xmpp` subprotocol.
    Ws(Box<WebSocketStream<TcpStream>>),
}

impl Conn {
    /// Before a new stream header (after SASL): the byte stream's decoder starts over; a
    /// WebSocket's documents are whole, so there is nothing to reset.
    pub fn reset_decoder(&mut self) {
        if let Conn::Stream(f) = self {
            f.codec_mut().reset_decoder();
        }
    }
}

/// An event as one RFC 7395 text message.
fn ws_text(event: StreamEvent) -> Option<String> {
    match event {
        StreamEvent::Header(h) => Some(open_xml(&h)),
        StreamEvent::Element(e) => Some(e.to_xml()),
        StreamEvent::Close => Some(format!("<close xmlns='{FRAMING}'/>")),
        StreamEvent::KeepAlive => None,
    }
}

fn open_xml(h: &StreamHeader) -> String {
    let to = h.to.as_deref().unwrap_or_default();
    format!("<open xmlns='{FRAMING}' to='{to}' version='1.0'/>")
}

/// One text message as an event: `<open/>` the stream's header, `<close/>` its end, anything
/// else a top-level element.
fn ws_event(text: &str) -> Result<StreamEvent, ConnError> {
    let el = Element::parse(text).map_err(err)?;
    if el.ns() == FRAMING {
        return Ok(match el.name() {
            "open" => StreamEvent::Header(Box::new(StreamHeader::client())),
            _ => StreamEvent::Close,
        });
    }
    Ok(StreamEvent::Element(el))
}

impl Stream for Conn {
    type Item = Result<StreamEvent, ConnError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut *self {
            Conn::Stream(f) => Pin::new(&mut **f)
                .poll_next(cx)
                .map(|o| o.map(|r| r.map_err(err))),
            Conn::Ws(ws) => loop {
                match Pin::new(&mut **ws).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(err(e)))),
                    Poll::Ready(Some(Ok(Message::Text(t)))) => {
                        return Poll::Ready(Some(ws_event(t.as_str())));
                    }
                    Poll::Ready(Some(Ok(Message::Close(_)))) => return Poll::Ready(None),
                    Poll::Ready(Some(Ok(_))) => continue, // ping, pong
                }
            },
        }
    }
}

impl Sink<StreamEvent> for Conn {
    type Error = ConnError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        match &mut *self {
            Conn::Stream(f) => Sink::<StreamEvent>::poll_ready(Pin::new(&mut **f), cx).map_err(err),
            Conn::Ws(ws) => Sink::<Message>::poll_ready(Pin::new(&mut **ws), cx).map_err(err),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, item: StreamEvent) -> Result<(), ConnError> {
        match &mut *self {
            Conn::Stream(f) => Pin::new(&mut **f).start_send(item).map_err(err),
            Conn::Ws(ws) => match ws_text(item) {
                Some(t) => Pin::new(&mut **ws)
                    .start_send(Message::text(t))
                    .map_err(err),
                None => Ok(()),
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        match &mut *self {
            Conn::Stream(f) => Sink::<StreamEvent>::poll_flush(Pin::new(&mut **f), cx).map_err(err),
            Conn::Ws(ws) => Sink::<Message>::poll_flush(Pin::new(&mut **ws), cx).map_err(err),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        match &mut *self {
            Conn::Stream(f) => Sink::<StreamEvent>::poll_close(Pin::new(&mut **f), cx).map_err(err),
            Conn::Ws(ws) => Sink::<Message>::poll_close(Pin::new(&mut **ws), cx).map_err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_both_ways() {
        let h = StreamHeader::client().to("localhost".to_string());
        assert_eq!(
            ws_text(StreamEvent::from(h)).unwrap(),
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
        );
        assert!(matches!(
            ws_event(
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' version='1.0' id='x'/>"
            ),
            Ok(StreamEvent::Header(_))
        ));
        assert!(matches!(
            ws_event("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"),
            Ok(StreamEvent::Close)
        ));
        let Ok(StreamEvent::Element(m)) =
            ws_event("<message xmlns='jabber:client' to='a@b'><body>x</body></message>")
        else {
            panic!()
        };
        assert_eq!(m.name(), "message");
        assert!(ws_event("<message").is_err());
    }
}
