//! What a connection reads stream events from and writes them to: a byte stream framed by
//! the XML or BXMPP codec (TCP, TLS), or a WebSocket carrying one XML document per message
//! (RFC 7395).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::{Sink, Stream};
use lithos_core::codec::StreamCodec;
use lithos_core::{CodecError, Element, StreamEvent, WireFormat};
use tokio_util::codec::Framed;

use super::{Io, QUIET_READ_BUFFER};
use crate::websocket::WsTransport;

/// A stream's transport. The byte stream, every TCP connection's, stays inline as it was
/// before WebSockets came; the rarer WebSocket is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transport {
    /// Bytes, framed by the codec.
    Bytes(Framed<Io, StreamCodec>),
    /// An RFC 7395 WebSocket.
    Ws(Box<WsTransport>),
}

impl Transport {
    /// XML or BXMPP (a WebSocket speaks XML).
    pub(crate) fn format(&self) -> WireFormat {
        match self {
            Transport::Bytes(f) => f.codec().format(),
            Transport::Ws(_) => WireFormat::Xml,
        }
    }

    /// Whether this is a WebSocket (no STARTTLS there: its security is the HTTP
    /// connection's).
    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self, Transport::Ws(_))
    }

    /// Whether this stream can carry `el`: always in XML; in BXMPP only if every name has a
    /// code.
    pub(crate) fn encodable(&self, el: &Element) -> bool {
        match self {
            Transport::Bytes(f) => match f.codec() {
                StreamCodec::Xml(_) => true,
                StreamCodec::Bxmpp(c) => {
                    lithos_core::binary::encode_document(c.vocabulary(), el).is_ok()
                }
            },
            Transport::Ws(_) => true,
        }
    }

    /// Expects a new stream header (a restart after SASL). A WebSocket reads each
    /// `<open/>` as a header anyway.
    pub(crate) fn reset_decoder(&mut self) {
        if let Transport::Bytes(f) = self {
            f.codec_mut().reset_decoder();
        }
    }

    /// Gives back the buffers' memory when they hold nothing.
    pub(crate) fn trim_buffers(&mut self) {
        let Transport::Bytes(f) = self else { return };
        let r = f.read_buffer_mut();
        if r.is_empty() && r.capacity() > QUIET_READ_BUFFER {
            *r = BytesMut::with_capacity(QUIET_READ_BUFFER);
        }
        let w = f.write_buffer_mut();
        if w.is_empty() && w.capacity() > 0 {
            *w = BytesMut::new();
        }
        f.codec_mut().release_buffers();
    }
}

impl Stream for Transport {
    type Item = Result<StreamEvent, CodecError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Transport::Bytes(f) => Pin::new(f).poll_next(cx),
            Transport::Ws(w) => Pin::new(&mut **w).poll_next(cx),
        }
    }
}

/// `Sink<$item>` by delegation to both transports.
macro_rules! delegate_sink {
    ($item:ty) => {
        impl<'a> Sink<$item> for Transport {
            type Error = CodecError;

            fn poll_ready(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                match self.get_mut() {
                    Transport::Bytes(f) => Sink::<$item>::poll_ready(Pin::new(f), cx),
                    Transport::Ws(w) => Sink::<$item>::poll_ready(Pin::new(&mut **w), cx),
                }
            }

            fn start_send(self: Pin<&mut Self>, item: $item) -> Result<(), CodecError> {
                match self.get_mut() {
                    Transport::Bytes(f) => Pin::new(f).start_send(item),
                    Transport::Ws(w) => Pin::new(&mut **w).start_send(item),
                }
            }

            fn poll_flush(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                match self.get_mut() {
                    Transport::Bytes(f) => Sink::<$item>::poll_flush(Pin::new(f), cx),
                    Transport::Ws(w) => Sink::<$item>::poll_flush(Pin::new(&mut **w), cx),
                }
            }

            fn poll_close(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), CodecError>> {
                match self.get_mut() {
                    Transport::Bytes(f) => Sink::<$item>::poll_close(Pin::new(f), cx),
                    Transport::Ws(w) => Sink::<$item>::poll_close(Pin::new(&mut **w), cx),
                }
            }
        }
    };
}

delegate_sink!(&'a StreamEvent);
delegate_sink!(&'a Element);
