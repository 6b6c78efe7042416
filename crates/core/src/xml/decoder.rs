//! The streaming XML decoder: bytes in, [`StreamEvent`]s out.

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use memchr::memchr;

use super::chars::check_chars;
use super::error::{Limits, XmlError};
use super::scanner::{Scan, Scanner};
use super::tree::{
    ParseContext, ParserState, TreeParser, markup_declaration_error, pi_error, xml_decl,
};
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

/// The longest XML declaration accepted.
const MAX_DECL: usize = 1024;

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
    /// The stream's namespace scope and the parser's reusable buffers.
    state: Option<ParserState>,
    close_qname: ByteString,
    seen_decl: bool,
    /// Input taken from the caller's buffer by the fast path and not parsed yet.
    pending: Option<Pending>,
    /// The namespace bindings the stream header declared.
    header_bindings: Vec<(ByteString, ByteString)>,
    /// No byte of the stream has been consumed yet (a BOM may come).
    at_start: bool,
}

/// A copy of `s` that owns its bytes (a static one for well-known names), so that keeping
/// it does not keep the buffer `s` was sliced from.
fn detach(s: &ByteString) -> ByteString {
    if let Some(known) = crate::ns::intern(s) {
        return known;
    }
    match &**s {
        "" => ByteString::new(),
        "stream" => ByteString::from_static("stream"),
        "stream:stream" => ByteString::from_static("stream:stream"),
        other => ByteString::from(other.to_owned()),
    }
}

impl Default for XmlDecoder {
    fn default() -> Self {
        XmlDecoder::new()
    }
}

impl XmlDecoder {
    /// Frees the buffers the parser reuses from one element to the next, for a stream that
    /// has gone quiet (they grow again with the next element). Costs nothing to call often.
    pub fn release_buffers(&mut self) {
        if let Some(s) = self.state.as_mut() {
            s.release_buffers();
        }
    }

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
            state: None,
            close_qname: ByteString::new(),
            seen_decl: false,
            pending: None,
            header_bindings: Vec::new(),
            at_start: true,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Starts over, expecting a new stream header (RFC 6120 stream restart after STARTTLS or
    /// SASL). Bytes not yet decoded are kept and read as the start of the new stream.
    pub fn reset(&mut self) {
        let pending = self.pending.take();
        *self = XmlDecoder::with_limits(self.limits.clone());
        self.pending = pending;
    }

    /// True when the decoder holds input it has not decoded yet (taken from the caller's
    /// buffer). Before switching transports (STARTTLS), a server checks this is false: bytes
    /// sent before the switch must not be read as if they came after it.
    pub fn has_buffered_input(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.pos < p.frozen.len())
    }

    /// True once the peer has closed its stream.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Reads the next event from the front of `buf`, or `None` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<StreamEvent>, XmlError> {
        if self.phase == Phase::Body && self.scanner.is_none() {
            if let Some(ev) = self.fast_path(buf) {
                return Ok(Some(ev));
            }
        } else if self.pending.is_some() {
            self.give_back(buf);
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
                        self.at_start = false;
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
                            // Bounded search, so the answer does not depend on how much
                            // has arrived.
                            let window = &buf[..buf.len().min(MAX_DECL)];
                            let Some(end) = memchr::memmem::find(window, b"?>") else {
                                if buf.len() >= MAX_DECL {
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
                        Scan::Stop(end, why) => return Err(self.error_in(&buf[..end], why)),
                        Scan::Complete(end) => {
                            self.scanner = None;
                            let src = freeze(buf, end)?;
                            let has_cr = check_chars(src.as_bytes())?;
                            let state = ParserState::new(&ParseContext::empty());
                            let mut p = TreeParser::new(&src, &self.limits, has_cr, state);
                            let open = p.parse_open_tag(0)?;
                            let (el, qname, declared) = (open.element, open.qname, open.declared);
                            // What the decoder keeps for the stream's life must not share the
                            // input buffer: a slice of it would keep the whole read buffer
                            // (kilobytes) alive in every idle session.
                            let kept: Vec<(ByteString, ByteString)> = declared
                                .iter()
                                .map(|(p, n)| (detach(p), detach(n)))
                                .collect();
                            self.state = Some(ParserState::new(&ParseContext::with_bindings(
                                kept.iter().cloned(),
                            )));
                            self.header_bindings = kept;
                            self.close_qname = detach(&qname);
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
                        Scan::Stop(end, why) => Err(self.error_in(&buf[..end], why)),
                        Scan::Complete(end) => {
                            self.scanner = None;
                            let src = freeze(buf, end)?;
                            let has_cr = check_chars(src.as_bytes())?;
                            let state = self.take_state();
                            let mut p = TreeParser::new(&src, &self.limits, has_cr, state);
                            let (el, used) = p.parse_element(0)?;
                            self.state = Some(p.into_state());
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
    /// The parser state of the stream (a fresh one if an error consumed it).
    fn take_state(&mut self) -> ParserState {
        self.state
            .take()
            .unwrap_or_else(|| ParserState::new(&ParseContext::empty()))
    }

    /// The fast path: parses the next complete top-level element straight from the bytes
    /// already read, without the scanner. The first call takes the whole buffer (no copy);
    /// later calls go on from where the last one stopped. At the first thing it does not
    /// handle (an incomplete element, the stream close, anything invalid) it gives the rest
    /// back to `buf` for the careful path, which finds the exact error or waits for more bytes
    /// with the scanner. So each byte is copied at most once, and only if it was part of an
    /// element cut by a read.
    fn fast_path(&mut self, buf: &mut BytesMut) -> Option<StreamEvent> {
        if self.pending.is_none() {
            if buf.len() < 2 {
                return None;
            }
            self.pending = Some(Pending::take(buf));
        }
        let pending = self.pending.as_mut()?;
        let Some(has_cr) = pending.has_cr else {
            self.give_back(buf);
            return None;
        };
        let bytes: &[u8] = pending.src.as_bytes();
        let ws = bytes[pending.pos..]
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(bytes.len() - pending.pos);
        if ws > 0 {
            pending.pos += ws;
            return Some(StreamEvent::KeepAlive);
        }
        let rest = &bytes[pending.pos..];
        if rest.len() < 2 || rest[0] != b'<' || matches!(rest[1], b'/' | b'?' | b'!') {
            self.give_back(buf);
            return None;
        }
        let state = self.take_state();
        let pending = self.pending.as_mut()?;
        let mut p = TreeParser::new(&pending.src, &self.limits, has_cr, state);
        let parsed = p.parse_element(pending.pos);
        let state = p.into_state();
        match parsed {
            Ok((el, end)) if end - pending.pos <= self.limits.max_stanza_size => {
                pending.pos = end;
                self.state = Some(state);
                Some(StreamEvent::Element(el))
            }
            _ => {
                // The careful path decides; the state is rebuilt from the header's bindings.
                self.state = Some(ParserState::new(&ParseContext::with_bindings(
                    self.header_bindings.iter().cloned(),
                )));
                self.give_back(buf);
                None
            }
        }
    }

    /// Puts the bytes the fast path took and did not parse back in front of `buf`.
    fn give_back(&mut self, buf: &mut BytesMut) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let rest = &p.frozen[p.pos..];
        if rest.is_empty() {
            return;
        }
        if buf.is_empty() {
            buf.extend_from_slice(rest);
        } else {
            let mut joined = BytesMut::with_capacity(rest.len() + buf.len());
            joined.extend_from_slice(rest);
            joined.extend_from_slice(buf);
            *buf = joined;
        }
    }

    /// `</stream:stream>` (or whatever the header's name was).
    fn close(&mut self, buf: &mut BytesMut) -> Result<Option<StreamEvent>, XmlError> {
        // Look for the '>' only as far as a name may reach, so the answer does not depend on
        // how much of the stream has arrived.
        let window = self.limits.max_name_len.saturating_add(16);
        let Some(end) = memchr(b'>', &buf[..buf.len().min(window)]) else {
            if buf.len() >= window {
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

    /// The exact error in bytes the scanner stopped at; `why` (what the scanner expected)
    /// when parsing them does not find it.
    fn error_in(&self, bytes: &[u8], why: &'static str) -> XmlError {
        let Ok(s) = std::str::from_utf8(bytes) else {
            return XmlError::InvalidUtf8;
        };
        let src = ByteString::from(s);
        let has_cr = match check_chars(src.as_bytes()) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let state = ParserState::new(&ParseContext::with_bindings(
            self.header_bindings.iter().cloned(),
        ));
        let mut p = TreeParser::new(&src, &self.limits, has_cr, state);
        let r = if self.phase == Phase::Header {
            p.parse_open_tag(0).map(|_| ())
        } else {
            p.parse_element(0).map(|_| ())
        };
        match r {
            Err(XmlError::UnexpectedEof) | Ok(()) => XmlError::Syntax(why),
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

/// Bytes the fast path took from the caller's buffer: the frozen bytes, their longest valid
/// UTF-8 prefix as a string, whether that prefix passed the character check (and holds a
/// carriage return), and how far parsing has got.
#[derive(Debug, Clone)]
struct Pending {
    frozen: Bytes,
    src: ByteString,
    /// `None` when the prefix holds a character XML forbids: the careful path reports it.
    has_cr: Option<bool>,
    pos: usize,
}

impl Pending {
    fn take(buf: &mut BytesMut) -> Pending {
        let frozen = buf.split().freeze();
        let src = match ByteString::try_from(frozen.clone()) {
            Ok(s) => s,
            Err(_) => {
                // A character cut by the read, or invalid bytes: keep the valid prefix.
                let valid = match std::str::from_utf8(&frozen) {
                    Ok(_) => frozen.len(),
                    Err(e) => e.valid_up_to(),
                };
                ByteString::try_from(frozen.slice(..valid)).unwrap_or_default()
            }
        };
        let has_cr = check_chars(src.as_bytes()).ok();
        Pending {
            frozen,
            src,
            has_cr,
            pos: 0,
        }
    }
}
