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
    /// The peer sent bytes that are not a valid XML stream.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The peer sent bytes that are not valid BXMPP, or an element cannot be written as BXMPP.
    #[error(transparent)]
    Bxmpp(#[from] crate::binary::BxmppError),
    /// Reading or writing the transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads and writes XMPP over XML: a tokio-util [`Decoder`] and [`Encoder`].
///
/// Top-level elements are written in the namespace context of the last header this codec
/// encoded (by default `jabber:client` with the `stream` prefix), so a stanza in the content
/// namespace carries no `xmlns` and `stream:features` keeps its prefix.
///
/// Buffers: a decoded element shares the bytes it was read from. While a stream is busy
/// (input left over after an event), the decoder keeps at least 2 KiB of room in the read
/// buffer (reserving 8 KiB when there is less), so reads stay whole. A server that wants idle
/// streams small shrinks the buffer when a stream is quiet.
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
    /// Frees the decoder's reusable buffers (see [`XmlDecoder::release_buffers`]).
    pub fn release_buffers(&mut self) {
        self.decoder.release_buffers();
    }

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

impl CodecError {
    /// The stream error to answer the peer with (`None` for I/O errors).
    pub fn condition(&self) -> Option<crate::StreamErrorCondition> {
        match self {
            CodecError::Xml(e) => Some(e.condition()),
            CodecError::Bxmpp(e) => Some(e.condition()),
            CodecError::Io(_) => None,
        }
    }
}

/// The two encodings a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// XML text (`<` or white space first).
    Xml,
    /// Binary XMPP (`0xFF` first).
    Bxmpp,
}

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// The connection speaks this format.
    Format(WireFormat),
    /// A TLS ClientHello (direct TLS).
    Tls,
    /// Nothing yet, or only white space: read more.
    NeedMore,
    /// Neither XML, BXMPP nor TLS.
    Unknown,
}

/// Tells from the first bytes of a connection whether it speaks XML or BXMPP (or starts TLS),
/// so one listener can serve all of them. White space may precede either, so it is skipped.
///
/// ```
/// use lithos_core::codec::{detect_format, Detection, WireFormat};
/// assert_eq!(detect_format(b"<?xml version='1.0'?>"), Detection::Format(WireFormat::Xml));
/// assert_eq!(detect_format(b"\xEF\xBB\xBF<stream"), Detection::Format(WireFormat::Xml));
/// assert_eq!(detect_format(&[0xFF, 0xFA, 0x02]), Detection::Format(WireFormat::Bxmpp));
/// assert_eq!(detect_format(&[0x16, 0x03, 0x01]), Detection::Tls);
/// assert_eq!(detect_format(b"  "), Detection::NeedMore);
/// assert_eq!(detect_format(b"GET / HTTP/1.1"), Detection::Unknown);
/// ```
pub fn detect_format(first: &[u8]) -> Detection {
    let start = first
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(first.len());
    match first.get(start) {
        None => Detection::NeedMore,
        Some(b'<') | Some(0xEF) => Detection::Format(WireFormat::Xml),
        Some(&crate::binary::DOC) => Detection::Format(WireFormat::Bxmpp),
        Some(0x16) if start == 0 => Detection::Tls,
        Some(_) => Detection::Unknown,
    }
}

/// A codec for either format, chosen per connection: what is above it sees the same events.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one codec per connection, used on every read: not worth an indirection"
)]
pub enum StreamCodec {
    /// XML.
    Xml(XmlCodec),
    /// BXMPP.
    Bxmpp(crate::binary::BxmppCodec),
}

impl StreamCodec {
    /// Frees what the decoder keeps between elements, for a quiet stream.
    pub fn release_buffers(&mut self) {
        if let StreamCodec::Xml(c) = self {
            c.release_buffers();
        }
    }

    /// A codec for `format`, with default settings.
    pub fn new(format: WireFormat) -> StreamCodec {
        match format {
            WireFormat::Xml => StreamCodec::Xml(XmlCodec::new()),
            WireFormat::Bxmpp => StreamCodec::Bxmpp(crate::binary::BxmppCodec::new()),
        }
    }
    /// The format spoken.
    pub fn format(&self) -> WireFormat {
        match self {
            StreamCodec::Xml(_) => WireFormat::Xml,
            StreamCodec::Bxmpp(_) => WireFormat::Bxmpp,
        }
    }
    /// Expects a new stream header from the peer (stream restart).
    pub fn reset_decoder(&mut self) {
        match self {
            StreamCodec::Xml(c) => c.reset_decoder(),
            StreamCodec::Bxmpp(c) => c.reset_decoder(),
        }
    }
}

impl Decoder for StreamCodec {
    type Item = StreamEvent;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        match self {
            StreamCodec::Xml(c) => c.decode(src),
            StreamCodec::Bxmpp(c) => c.decode(src),
        }
    }
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        match self {
            StreamCodec::Xml(c) => c.decode_eof(src),
            StreamCodec::Bxmpp(c) => c.decode_eof(src),
        }
    }
}

impl<'a> Encoder<&'a StreamEvent> for StreamCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &'a StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        match self {
            StreamCodec::Xml(c) => c.encode(item, dst),
            StreamCodec::Bxmpp(c) => c.encode(item, dst),
        }
    }
}

impl Encoder<StreamEvent> for StreamCodec {
    type Error = CodecError;
    fn encode(&mut self, item: StreamEvent, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}

impl<'a> Encoder<&'a Element> for StreamCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &'a Element, dst: &mut BytesMut) -> Result<(), CodecError> {
        match self {
            StreamCodec::Xml(c) => c.encode(item, dst),
            StreamCodec::Bxmpp(c) => c.encode(item, dst),
        }
    }
}

/// Room for the next read that a decoder leaves in the read buffer after an event on a busy
/// stream (input left over), at least...
const READ_MIN_ROOM: usize = 2048;
/// ... by reserving this much when there is less.
const READ_CHUNK: usize = 8192;
/// Room left after an event on a quiet stream (nothing left over), at least...
const READ_QUIET_MIN_ROOM: usize = 256;
/// ... by reserving this much when there is less.
const READ_QUIET_CHUNK: usize = 512;

/// Leaves room in `src` for the next read. Both decoders hand what they parse on as shared
/// slices of the read buffer, so the room after the data shrinks with every event, and
/// tokio-util's `FramedRead` only reserves one byte before reading: left alone, a stream
/// would read a few bytes per system call, each stanza cut and parsed again at every read.
///
/// The decoders call it after every event. A busy stream (input left over: several stanzas
/// in one read, or one cut by it) gets room for many stanzas per read. A quiet one, which
/// sends a stanza now and then or a request and waits, gets room for a whole ordinary
/// stanza, and no more: its buffer is what an idle session costs.
pub(crate) fn keep_read_room(src: &mut BytesMut, input_left: bool) {
    let room = src.capacity() - src.len();
    if input_left {
        if room < READ_MIN_ROOM {
            src.reserve(READ_CHUNK);
        }
    } else if room < READ_QUIET_MIN_ROOM {
        src.reserve(READ_QUIET_CHUNK);
    }
}

impl Decoder for XmlCodec {
    type Item = StreamEvent;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamEvent>, CodecError> {
        let ev = self.decoder.decode(src)?;
        if ev.is_some() {
            let input_left = !src.is_empty() || self.decoder.has_buffered_input();
            keep_read_room(src, input_left);
        }
        Ok(ev)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads as many back-to-back copies of `stanza` as the buffer has room for (at most
    /// `per_read`), decodes them (holding the last 64 events, as stanzas queued for delivery
    /// would be), 2,000 times; returns the smallest room a read had after the first.
    fn smallest_read(
        codec: &mut StreamCodec,
        header: &[u8],
        stanza: &[u8],
        per_read: usize,
    ) -> usize {
        let mut buf = BytesMut::with_capacity(512);
        buf.extend_from_slice(header);
        let mut held = std::collections::VecDeque::new();
        let mut smallest = usize::MAX;
        for round in 0..2000 {
            let room = buf.capacity() - buf.len();
            if round > 0 {
                smallest = smallest.min(room);
            }
            let mut n = 0;
            while n < per_read && (n + 1) * stanza.len() <= room.max(stanza.len()) {
                buf.extend_from_slice(stanza);
                n += 1;
            }
            while let Some(ev) = codec.decode(&mut buf).expect("valid") {
                held.push_back(ev);
                if held.len() > 64 {
                    held.pop_front();
                }
            }
        }
        smallest
    }

    /// The smallest room a read had, in XML and in BXMPP, for a stream of chat messages
    /// with body `body`, read at most `per_read` at a time.
    fn smallest_reads(body: &str, per_read: usize) -> [(WireFormat, usize); 2] {
        let stanza = Element::builder("message", ns::JABBER_CLIENT)
            .attr("to", "user19@localhost/lg")
            .attr("type", "chat")
            .child(
                Element::builder("body", ns::JABBER_CLIENT)
                    .text(body)
                    .build(),
            )
            .build();
        let header = StreamHeader::new(ns::JABBER_CLIENT);
        [WireFormat::Xml, WireFormat::Bxmpp].map(|format| {
            let mut writer = StreamCodec::new(format);
            let mut head = BytesMut::new();
            writer
                .encode(&StreamEvent::Header(Box::new(header.clone())), &mut head)
                .expect("header");
            let mut one = BytesMut::new();
            writer
                .encode(&StreamEvent::Element(stanza.clone()), &mut one)
                .expect("stanza");
            let smallest = smallest_read(&mut StreamCodec::new(format), &head, &one, per_read);
            (format, smallest)
        })
    }

    /// Without `keep_read_room` the room shrinks read by read (the decoders share what
    /// they parse out of the buffer) down to a few bytes.
    #[test]
    fn a_busy_stream_keeps_room_for_whole_reads() {
        for (format, smallest) in smallest_reads("hello", usize::MAX) {
            assert!(
                smallest >= READ_MIN_ROOM,
                "{format:?}: a read had only {smallest} bytes of room"
            );
        }
    }

    /// A stream that sends one stanza at a time (nothing left over after each) must still
    /// read each in one call: before the quiet reserve, reads there shrank to a few bytes
    /// and a 90-byte message took five system calls and as many partial parses.
    #[test]
    fn a_quiet_stream_reads_each_stanza_whole() {
        for (format, smallest) in smallest_reads("497 3006505", 1) {
            assert!(
                smallest >= READ_QUIET_MIN_ROOM,
                "{format:?}: a read had only {smallest} bytes of room"
            );
        }
    }
}
