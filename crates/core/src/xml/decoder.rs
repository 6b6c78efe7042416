//! The streaming XML decoder: bytes in, [`StreamEvent`]s out.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use memchr::memchr;

use super::chars::check_chars;
use super::error::{Limits, XmlError};
use super::scanner::{Scan, Scanner};
use super::tree::{ParseContext, TreeParser, markup_declaration_error, pi_error, xml_decl};
use crate::stream::{StreamEvent, StreamHeader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header: BOM, XML declaration, white space.
    Prolog,
    /// Reading the stream header.
    Header,
    /// Between and inside top-level elements.
    Body,
    /// After `</stream:stream>`.
    Closed,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads an XMPP stream incrementally.
///
/// Feed it the bytes read so far with [`decode`](XmlDecoder::decode); it consumes complete items
/// from the front of the buffer and leaves partial ones for the next call. Each byte is scanned
/// once however the input is split. The decoder is also a tokio-util `Decoder` through
/// [`XmlCodec`](crate::XmlCodec).
///
/// ```
/// use bytes::BytesMut;
/// use lithos_core::{StreamEvent, xml::XmlDecoder};
/// let mut d = XmlDecoder::new();
/// let mut buf = BytesMut::from(&b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
///     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\
///     <message to='a@example.com'><bo"[..]);
/// let Some(StreamEvent::Header(h)) = d.decode(&mut buf).unwrap() else { panic!() };
/// assert_eq!(h.to.as_deref(), Some("example.com"));
/// assert_eq!(d.decode(&mut buf).unwrap(), None); // the message is not complete yet
/// buf.extend_from_slice(b"dy>hi</body></message>");
/// let Some(StreamEvent::Element(m)) = d.decode(&mut buf).unwrap() else { panic!() };
/// assert_eq!(m.ns(), "jabber:client");
/// assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), "hi");
/// ```
#[derive(Debug, Clone)]
pub struct XmlDecoder {
    limits: Limits,
    phase: Phase,
    scanner: Option<Scanner>,
    ctx: ParseContext,
    close_qname: ByteString,
    seen_decl: bool,
    /// Events parsed ahead by the fast path, not yet returned.
    ready: VecDeque<StreamEvent>,
    /// No byte of the stream has been consumed yet (a BOM may come).
    at_start: bool,
}

impl Default for XmlDecoder {
    fn default() -> Self {
        XmlDecoder::new()
    }
}

impl XmlDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> XmlDecoder {
        XmlDecoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> XmlDecoder {
        XmlDecoder {
            limits,
            phase: Phase::Prolog,
            scanner: None,
            ctx: ParseContext::empty(),
            close_qname: ByteString::new(),
            seen_decl: false,
            ready: VecDeque::new(),
            at_start: true,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Starts over, expecting a new stream header (RFC 6120 stream restart after STARTTLS or
    /// SASL). Bytes already in the caller's buffer are not touched; events parsed ahead of the
    /// restart but not yet returned are dropped (a peer must not send anything between the
    /// element that triggers a restart and the new header).
    pub fn reset(&mut self) {
        *self = XmlDecoder::with_limits(self.limits.clone());
    }

    /// True once the peer has closed its stream.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Reads the next event from the front of `buf`, or `None` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(ev) = self.ready.pop_front() {
            return Ok(Some(ev));
        }
        if self.phase == Phase::Body && self.scanner.is_none() && buf.len() > 1 {
            self.parse_ahead(buf);
            if let Some(ev) = self.ready.pop_front() {
                return Ok(Some(ev));
            }
        }
        loop {
            match self.phase {
                Phase::Prolog => {
                    if self.at_start {
                        // A byte-order mark is allowed only as the very first bytes.
                        if buf.len() < BOM.len() && BOM.starts_with(buf) {
                            return Ok(None);
                        }
                        if buf.starts_with(BOM) {
                            buf.advance(BOM.len());
                        }
                        if !buf.is_empty() {
                            self.at_start = false;
                        }
                    }
                    skip_ws(buf);
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'<') {
                            return Err(XmlError::Syntax("expected the stream header"));
                        }
                        return Ok(None);
                    }
                    if buf[0] != b'<' {
                        return Err(XmlError::Syntax("expected the stream header"));
                    }
                    match buf[1] {
                        b'?' => {
                            let Some(end) = memchr::memmem::find(buf, b"?>") else {
                                if buf.len() > 1024 {
                                    return Err(XmlError::Syntax("unterminated XML declaration"));
                                }
                                return Ok(None);
                            };
                            let decl = &buf[..end + 2];
                            if self.seen_decl {
                                return Err(pi_error(decl));
                            }
                            check_chars(decl)?;
                            let n = xml_decl(decl)?;
                            buf.advance(n);
                            self.seen_decl = true;
                        }
                        b'!' => {
                            if buf.len() < 3 {
                                return Ok(None);
                            }
                            return Err(markup_declaration_error(buf));
                        }
                        _ => {
                            self.phase = Phase::Header;
                            self.scanner = Some(Scanner::header());
                        }
                    }
                }
                Phase::Header => {
                    let scanner = self.scanner.as_mut().expect("header phase has a scanner");
                    match scanner.scan(buf, &self.limits)? {
                        Scan::NeedMore => return Ok(None),
                        Scan::Stop(end) => return Err(self.error_in(&buf[..end])),
                        Scan::Complete(end) => {
                            self.scanner = None;
                            let src = freeze(buf, end)?;
                            let has_cr = check_chars(src.as_bytes())?;
                            let empty = ParseContext::empty();
                            let mut p = TreeParser::new(&src, &empty, &self.limits, has_cr);
                            let open = p.parse_open_tag(0)?;
                            let (el, qname, declared) = (open.element, open.qname, open.declared);
                            self.ctx = ParseContext::with_bindings(declared.iter().cloned());
                            self.close_qname = qname.clone();
                            self.phase = Phase::Body;
                            return Ok(Some(StreamEvent::Header(Box::new(
                                StreamHeader::from_parts(el, qname, declared),
                            ))));
                        }
                    }
                }
                Phase::Body => {
                    if self.scanner.is_none() {
                        if skip_ws(buf) {
                            return Ok(Some(StreamEvent::KeepAlive));
                        }
                        let Some(&first) = buf.first() else {
                            return Ok(None);
                        };
                        if first != b'<' {
                            return Err(XmlError::TextAtTopLevel);
                        }
                        let Some(&second) = buf.get(1) else {
                            return Ok(None);
                        };
                        match second {
                            b'/' => return self.close(buf),
                            b'?' => {
                                if buf.len() < 6 && memchr(b'>', buf).is_none() {
                                    return Ok(None);
                                }
                                return Err(pi_error(buf));
                            }
                            b'!' => {
                                if buf.len() < 3 {
                                    return Ok(None);
                                }
                                if buf[2] == b'[' {
                                    return Err(XmlError::TextAtTopLevel);
                                }
                                return Err(markup_declaration_error(buf));
                            }
                            _ => self.scanner = Some(Scanner::stanza()),
                        }
                    }
                    let scanner = self.scanner.as_mut().expect("set above");
                    return match scanner.scan(buf, &self.limits)? {
                        Scan::NeedMore => Ok(None),
                        Scan::Stop(end) => Err(self.error_in(&buf[..end])),
                        Scan::Complete(end) => {
                            self.scanner = None;
                            let src = freeze(buf, end)?;
                            let has_cr = check_chars(src.as_bytes())?;
                            let mut p = TreeParser::new(&src, &self.ctx, &self.limits, has_cr);
                            let (el, used) = p.parse_element(0)?;
                            if used != src.len() {
                                return Err(XmlError::Syntax("malformed element"));
                            }
                            Ok(Some(StreamEvent::Element(el)))
                        }
                    };
                }
                Phase::Closed => {
                    skip_ws(buf);
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    return Err(XmlError::Syntax("data after the end of the stream"));
                }
            }
        }
    }
    /// The fast path: parses every complete top-level element already in `buf` straight from
    /// the buffer, without the scanner, and queues the events. It stops at the first thing it
    /// does not handle (an incomplete element, the stream close, anything invalid) and leaves
    /// the rest in `buf` for the careful path, which finds the exact error or waits for more
    /// bytes with the scanner. Only what is left over is copied, once.
    fn parse_ahead(&mut self, buf: &mut BytesMut) {
        let frozen: Bytes = buf.split().freeze();
        let src = match ByteString::try_from(frozen.clone()) {
            Ok(s) => s,
            Err(_) => {
                // A character cut by the read, or invalid bytes: parse the valid prefix.
                let valid = match std::str::from_utf8(&frozen) {
                    Ok(_) => frozen.len(),
                    Err(e) => e.valid_up_to(),
                };
                ByteString::try_from(frozen.slice(..valid)).unwrap_or_default()
            }
        };
        let mut used = 0;
        if let Ok(has_cr) = check_chars(src.as_bytes()) {
            let bytes: &[u8] = src.as_bytes();
            let mut p = TreeParser::new(&src, &self.ctx, &self.limits, has_cr);
            loop {
                let ws = bytes[used..]
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .unwrap_or(bytes.len() - used);
                if ws > 0 {
                    self.ready.push_back(StreamEvent::KeepAlive);
                    used += ws;
                }
                let rest = &bytes[used..];
                if rest.len() < 2 || rest[0] != b'<' || matches!(rest[1], b'/' | b'?' | b'!') {
                    break;
                }
                match p.parse_element(used) {
                    Ok((el, end)) if end - used <= self.limits.max_stanza_size => {
                        self.ready.push_back(StreamEvent::Element(el));
                        used = end;
                    }
                    _ => break,
                }
            }
        }
        buf.extend_from_slice(&frozen[used..]);
    }

    /// `</stream:stream>` (or whatever the header's name was).
    fn close(&mut self, buf: &mut BytesMut) -> Result<Option<StreamEvent>, XmlError> {
        let Some(end) = memchr(b'>', buf) else {
            if buf.len() > self.limits.max_name_len + 16 {
                return Err(XmlError::NameTooLong(self.limits.max_name_len));
            }
            return Ok(None);
        };
        let tag = &buf[2..end];
        let name = tag.trim_ascii_end();
        if name != self.close_qname.as_bytes() {
            return Err(XmlError::MismatchedEndTag {
                expected: self.close_qname.to_string(),
                found: String::from_utf8_lossy(name).into_owned(),
            });
        }
        buf.advance(end + 1);
        self.phase = Phase::Closed;
        Ok(Some(StreamEvent::Close))
    }

    /// The exact error in bytes the scanner stopped at.
    fn error_in(&self, bytes: &[u8]) -> XmlError {
        let Ok(s) = std::str::from_utf8(bytes) else {
            return XmlError::InvalidUtf8;
        };
        let src = ByteString::from(s);
        let has_cr = match check_chars(src.as_bytes()) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut p = TreeParser::new(&src, &self.ctx, &self.limits, has_cr);
        let r = if self.phase == Phase::Header {
            p.parse_open_tag(0).map(|_| ())
        } else {
            p.parse_element(0).map(|_| ())
        };
        match r {
            Err(XmlError::UnexpectedEof) | Ok(()) => XmlError::Syntax("malformed markup"),
            Err(e) => e,
        }
    }
}

/// Skips leading XML white space; true if there was any.
fn skip_ws(buf: &mut BytesMut) -> bool {
    let n = buf
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(buf.len());
    buf.advance(n);
    n > 0
}

/// Takes the first `end` bytes off the buffer as a UTF-8 string, without copying.
fn freeze(buf: &mut BytesMut, end: usize) -> Result<ByteString, XmlError> {
    ByteString::try_from(buf.split_to(end).freeze()).map_err(|_| XmlError::InvalidUtf8)
}
