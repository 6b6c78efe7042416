//! tokio-util framing: one line turns a socket into a stream of [`StreamEvent`]s.
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use lithos_core::{Element, StreamEvent, StreamHeader, XmlCodec};
//!
//! let mut codec = XmlCodec::new();
//! let mut wire = BytesMut::new();
//! codec.encode(StreamEvent::from(StreamHeader::client().to("example.com")), &mut wire).unwrap();
//! let msg = Element::builder("message", "jabber:client").attr("to", "a@example.com").build();
//! codec.encode(&msg, &mut wire).unwrap();
//!
//! // The same codec reads what it wrote.
//! let mut reader = XmlCodec::new();
//! assert!(matches!(reader.decode(&mut wire).unwrap(), Some(StreamEvent::Header(_))));
//! assert_eq!(reader.decode(&mut wire).unwrap(), Some(StreamEvent::Element(msg)));
//! ```
//!
//! With tokio: `Framed::new(socket, XmlCodec::new())`.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::element::{Element, NsContext};
use crate::ns;
use crate::stream::{StreamEvent, StreamHeader};
use crate::xml::{Limits, XmlDecoder, XmlError};

/// Errors of a framed stream: a protocol error in the bytes, or an I/O error on the socket.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent bytes that are not a valid stream.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// Reading or writing the transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads and writes XMPP over XML: a tokio-util [`Decoder`] and [`Encoder`].
///
/// Top-level elements are written in the namespace context of the last header this codec
/// encoded (by default `jabber:client` with the `stream` prefix), so a stanza in the content
/// namespace carries no `xmlns` and `stream:features` keeps its prefix.
#[derive(Debug, Clone)]
pub struct XmlCodec {
    decoder: XmlDecoder,
    out_ctx: NsContext,
    out_header: StreamHeader,
    /// Write `<?xml version='1.0'?>` before each header.
    pub xml_declaration: bool,
}

impl Default for XmlCodec {
    fn default() -> Self {
        XmlCodec::new()
    }
}

impl XmlCodec {
    /// A codec with default [`Limits`].
    pub fn new() -> XmlCodec {
        XmlCodec::with_limits(Limits::default())
    }
    /// A codec with the given limits for what it reads.
    pub fn with_limits(limits: Limits) -> XmlCodec {
        XmlCodec {
            decoder: XmlDecoder::with_limits(limits),
            out_ctx: NsContext::stream(ns::JABBER_CLIENT),
            out_header: StreamHeader::client(),
            xml_declaration: true,
        }
    }
    /// The decoding half.
    pub fn decoder(&self) -> &XmlDecoder {
        &self.decoder
    }
    /// Expects a new stream header from the peer (stream restart).
    pub fn reset_decoder(&mut self) {
        self.decoder.reset();
    }

    /// Appends one event to `dst`.
    pub fn write_event(&mut self, item: &StreamEvent, dst: &mut BytesMut) {
        match item {
            StreamEvent::Header(h) => {
                if self.xml_declaration {
                    dst.put_slice(b"<?xml version='1.0'?>");
                }
                h.write_to(dst);
                self.out_ctx = h.ns_context();
                self.out_header = (**h).clone();
            }
            StreamEvent::Element(e) => e.write_to(dst, &self.out_ctx),
            StreamEvent::KeepAlive => dst.put_u8(b' '),
            StreamEvent::Close => self.out_header.write_close(dst),
        }
    }
}

impl Decoder for XmlCodec {
    type Item = StreamEvent;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        match self.decoder.decode(src)? {
            Some(ev) => Ok(Some(ev)),
            None if src.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(XmlError::UnexpectedEof.into()),
        }
    }
}

impl Encoder<StreamEvent> for XmlCodec {
    type Error = CodecError;
    fn encode(&mut self, item: StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.write_event(&item, dst);
        Ok(())
    }
}

impl Encoder<&StreamEvent> for XmlCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.write_event(item, dst);
        Ok(())
    }
}

impl Encoder<&Element> for XmlCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &Element, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write_to(dst, &self.out_ctx);
        Ok(())
    }
}

impl Encoder<Element> for XmlCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Element, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write_to(dst, &self.out_ctx);
        Ok(())
    }
}
