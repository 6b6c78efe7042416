//! The BXMPP stream codec: a tokio-util `Decoder`/`Encoder` giving the same
//! [`StreamEvent`]s as the XML codec.

use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use bytestring::ByteString;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::{Document, Reader};
use super::encode::{Writer, stream_close};
use super::error::BxmppError;
use super::table::Vocabulary;
use super::{DOC, ESCAPE};
use crate::codec::CodecError;
use crate::element::Element;
use crate::ns;
use crate::stream::StreamEvent;

/// The default largest document, 1 MiB (as Lithosphere's).
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// Reads and writes XMPP as BXMPP documents.
///
/// Documents are `0xFF`-delimited; white space between them is a keep-alive. The decoder scans
/// each byte once however the input is split, and fails as soon as a document passes the size
/// limit.
///
/// ```
/// use bytes::BytesMut;
/// use tokio_util::codec::{Decoder, Encoder};
/// use lithos_core::{Element, StreamEvent, binary::BxmppCodec};
///
/// let mut codec = BxmppCodec::new();
/// let mut wire = BytesMut::new();
/// let msg = Element::builder("message", "jabber:client")
///     .attr("to", "a@b").attr("type", "chat")
///     .child(Element::builder("body", "jabber:client").text("Hi").build())
///     .build();
/// codec.encode(&msg, &mut wire).unwrap();
/// assert_eq!(&wire[..], [0xFF, 0x60, 0x02, 0x01, 0x06, 0x61, 0x40, 0x62, 0xFE, 0x61, 0x73, 0xFE,
///                        0x66, 0x00, 0x80, 0x48, 0x69, 0xFF]);
/// assert_eq!(codec.decode(&mut wire).unwrap(), Some(StreamEvent::Element(msg)));
/// ```
#[derive(Debug, Clone)]
pub struct BxmppCodec {
    vocab: Arc<Vocabulary>,
    max_frame: usize,
    max_depth: usize,
    /// Bytes of the current document already scanned (0 when between documents).
    scanned: usize,
    content_ns: ByteString,
    closed: bool,
}

impl Default for BxmppCodec {
    fn default() -> Self {
        BxmppCodec::new()
    }
}

impl BxmppCodec {
    /// A codec over the linked vocabulary ([`Vocabulary::global`]).
    pub fn new() -> BxmppCodec {
        BxmppCodec::with_vocabulary(Vocabulary::global())
    }

    /// A codec over a given vocabulary.
    pub fn with_vocabulary(vocab: Arc<Vocabulary>) -> BxmppCodec {
        BxmppCodec {
            vocab,
            max_frame: DEFAULT_MAX_FRAME,
            max_depth: crate::Limits::default().max_depth,
            scanned: 0,
            content_ns: ns::JABBER_CLIENT,
            closed: false,
        }
    }

    /// Sets the largest document accepted.
    pub fn max_frame(mut self, bytes: usize) -> BxmppCodec {
        self.max_frame = bytes;
        self
    }

    /// The vocabulary in use.
    pub fn vocabulary(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Expects a new stream (stream restart).
    pub fn reset_decoder(&mut self) {
        self.scanned = 0;
        self.closed = false;
    }

    /// Reads the next event, or `None` if more bytes are needed.
    pub fn decode_event(&mut self, buf: &mut BytesMut) -> Result<Option<StreamEvent>, BxmppError> {
        if self.scanned == 0 {
            let ws = buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(buf.len());
            if ws > 0 {
                buf.advance(ws);
                return Ok(Some(StreamEvent::KeepAlive));
            }
            match buf.first() {
                None => return Ok(None),
                Some(&DOC) if !self.closed => self.scanned = 1,
                Some(&b) => return Err(BxmppError::BadFrameStart(b)),
            }
        }
        let limit = buf.len().min(self.max_frame + 1);
        let mut i = self.scanned;
        let end = loop {
            if i >= limit {
                break None;
            }
            match memchr::memchr2(ESCAPE, DOC, &buf[i..limit]) {
                None => {
                    i = limit;
                    break None;
                }
                Some(k) => {
                    let p = i + k;
                    if buf[p] == DOC {
                        break Some(p);
                    }
                    if p + 1 >= limit {
                        // The byte this escape protects has not arrived: resume here.
                        i = p;
                        break None;
                    }
                    i = p + 2;
                }
            }
        };
        let Some(end) = end else {
            if limit > self.max_frame {
                return Err(BxmppError::FrameTooLarge(self.max_frame));
            }
            self.scanned = i;
            return Ok(None);
        };
        self.scanned = 0;
        let frame = buf.split_to(end + 1).freeze();
        let doc =
            Reader::new(&self.vocab, frame, self.content_ns.clone(), self.max_depth).document()?;
        Ok(Some(match doc {
            Document::Header(h) => {
                self.content_ns = h.content_ns.clone();
                StreamEvent::Header(h)
            }
            Document::Element(e) => StreamEvent::Element(e),
            Document::Close => {
                self.closed = true;
                StreamEvent::Close
            }
        }))
    }

    /// Appends one event as BXMPP.
    pub fn encode_event(&self, item: &StreamEvent, dst: &mut BytesMut) -> Result<(), BxmppError> {
        let w = Writer {
            vocab: &self.vocab,
            content_ns: &self.content_ns,
        };
        match item {
            StreamEvent::Header(h) => w.header(dst, h),
            StreamEvent::Element(e) => w.document(dst, e),
            StreamEvent::KeepAlive => {
                dst.put_u8(b' ');
                Ok(())
            }
            StreamEvent::Close => {
                stream_close(dst);
                Ok(())
            }
        }
    }
}

impl Decoder for BxmppCodec {
    type Item = StreamEvent;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        let ev = self.decode_event(src)?;
        if ev.is_some() {
            crate::codec::keep_read_room(src, !src.is_empty());
        }
        Ok(ev)
    }
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        match self.decode_event(src)? {
            Some(ev) => Ok(Some(ev)),
            None if src.is_empty() => Ok(None),
            None => Err(BxmppError::UnexpectedEof.into()),
        }
    }
}

impl Encoder<StreamEvent> for BxmppCodec {
    type Error = CodecError;
    fn encode(&mut self, item: StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_event(&item, dst)?)
    }
}

impl Encoder<&StreamEvent> for BxmppCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_event(item, dst)?)
    }
}

impl Encoder<&Element> for BxmppCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &Element, dst: &mut BytesMut) -> Result<(), CodecError> {
        let w = Writer {
            vocab: &self.vocab,
            content_ns: &self.content_ns,
        };
        Ok(w.document(dst, item)?)
    }
}

impl Encoder<Element> for BxmppCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Element, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}
