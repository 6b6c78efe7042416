//! Finds where a top-level element ends, across reads.
//!
//! The scanner keeps its state between calls, so every byte of a stanza is looked at once no
//! matter how the stanza is split into reads; the tree parser then runs once over the complete
//! stanza. It tracks only what decides the boundary (tags, quotes, CDATA) and enforces the size
//! and depth limits as it goes, so a hostile peer cannot make the decoder buffer more than
//! [`Limits::max_stanza_size`](super::Limits) bytes. Anything it does not expect (`<?`, `<!`
//! other than CDATA, a stray `/` or `<` in a tag) stops it: the parser then reports the exact
//! error.

use memchr::{memchr, memchr3};

use super::error::{Limits, XmlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data; looking for `<`.
    Content,
    /// Just after `<`.
    Lt,
    /// Inside a start tag, outside quotes.
    Tag,
    /// Inside a quoted attribute value.
    Quote(u8),
    /// After `/` in a start tag: `>` must follow.
    Slash,
    /// Inside an end tag.
    EndTag,
    /// After `<!`, matching `[CDATA[` (the count of bytes matched).
    Bang(u8),
    /// Inside CDATA (the count of `]` just seen, up to 2).
    CData(u8),
    /// After `<?`: a few more bytes tell an XML declaration from another instruction (the
    /// count of bytes seen).
    Pi(u8),
}

/// What the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The element is not complete yet; call again with more bytes.
    NeedMore,
    /// The element ends at this offset (exclusive).
    Complete(usize),
    /// The bytes up to this offset contain an error; parse them to find out which.
    Stop(usize),
}

/// Incremental boundary scanner for one top-level element whose `<` is at offset 0.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    state: State,
    pos: usize,
    depth: usize,
    /// In header mode the element is complete when its start tag ends.
    header: bool,
}

const CDATA: &[u8; 7] = b"[CDATA[";

impl Scanner {
    /// A scanner for a stanza whose first byte (`<`) has been seen.
    pub(crate) fn stanza() -> Scanner {
        Scanner {
            state: State::Lt,
            pos: 1,
            depth: 0,
            header: false,
        }
    }

    /// A scanner for a stream header (a start tag that stays open).
    pub(crate) fn header() -> Scanner {
        Scanner {
            header: true,
            ..Scanner::stanza()
        }
    }

    /// Bytes examined so far.
    #[cfg(test)]
    pub(crate) fn scanned(&self) -> usize {
        self.pos
    }

    /// Scans `buf` (the element's bytes so far, from its `<`) from where the last call stopped.
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, XmlError> {
        let r = self.run(buf, limits);
        if self.pos > limits.max_stanza_size
            && !matches!(r, Ok(Scan::Complete(end)) if end <= limits.max_stanza_size)
        {
            return Err(XmlError::StanzaTooLarge(limits.max_stanza_size));
        }
        r
    }

    fn run(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, XmlError> {
        // Never look further than one byte past the limit.
        let buf = &buf[..buf.len().min(limits.max_stanza_size + 1)];
        while self.pos < buf.len() {
            let rest = &buf[self.pos..];
            match self.state {
                State::Content => match memchr(b'<', rest) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.state = State::Lt;
                    }
                    None => self.pos = buf.len(),
                },
                State::Lt => {
                    self.pos += 1;
                    match rest[0] {
                        b'/' => self.state = State::EndTag,
                        b'!' => self.state = State::Bang(0),
                        b'?' => self.state = State::Pi(0),
                        _ => {
                            self.depth += 1;
                            if self.depth > limits.max_depth {
                                return Err(XmlError::TooDeep(limits.max_depth));
                            }
                            self.state = State::Tag;
                        }
                    }
                }
                State::Tag => {
                    let Some(i) = rest
                        .iter()
                        .position(|&b| matches!(b, b'>' | b'"' | b'\'' | b'/' | b'<'))
                    else {
                        self.pos = buf.len();
                        continue;
                    };
                    self.pos += i + 1;
                    match rest[i] {
                        b'>' => {
                            if self.header {
                                return Ok(Scan::Complete(self.pos));
                            }
                            self.state = State::Content;
                        }
                        b'/' => self.state = State::Slash,
                        b'<' => return Ok(Scan::Stop(self.pos)),
                        q => self.state = State::Quote(q),
                    }
                }
                State::Quote(q) => match memchr(q, rest) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.state = State::Tag;
                    }
                    None => self.pos = buf.len(),
                },
                State::Slash => {
                    self.pos += 1;
                    if rest[0] != b'>' || self.header {
                        return Ok(Scan::Stop(self.pos));
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(Scan::Complete(self.pos));
                    }
                    self.state = State::Content;
                }
                State::EndTag => match memchr3(b'>', b'<', b'"', rest) {
                    Some(i) if rest[i] == b'>' => {
                        self.pos += i + 1;
                        if self.depth <= 1 {
                            return Ok(Scan::Complete(self.pos));
                        }
                        self.depth -= 1;
                        self.state = State::Content;
                    }
                    Some(i) => return Ok(Scan::Stop(self.pos + i + 1)),
                    None => self.pos = buf.len(),
                },
                State::Bang(n) => {
                    self.pos += 1;
                    if rest[0] != CDATA[n as usize] {
                        return Ok(Scan::Stop(self.pos));
                    }
                    self.state = if n as usize + 1 == CDATA.len() {
                        State::CData(0)
                    } else {
                        State::Bang(n + 1)
                    };
                }
                State::Pi(n) => {
                    self.pos += 1;
                    if n == 3 || rest[0] == b'>' {
                        return Ok(Scan::Stop(self.pos));
                    }
                    self.state = State::Pi(n + 1);
                }
                State::CData(n) => {
                    if n == 0 {
                        match memchr(b']', rest) {
                            Some(i) => {
                                self.pos += i + 1;
                                self.state = State::CData(1);
                            }
                            None => self.pos = buf.len(),
                        }
                    } else {
                        self.pos += 1;
                        self.state = match rest[0] {
                            b']' => State::CData(2),
                            b'>' if n == 2 => State::Content,
                            _ => State::CData(0),
                        };
                    }
                }
            }
        }
        Ok(Scan::NeedMore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(doc: &[u8]) -> Result<Scan, XmlError> {
        Scanner::stanza().scan(doc, &Limits::default())
    }

    #[test]
    fn finds_the_end() {
        let doc = b"<a x='>' y=\"/>\"><b/><![CDATA[</a>]]]]></a><next/>";
        assert_eq!(scan_all(doc), Ok(Scan::Complete(doc.len() - 7)));
        assert_eq!(scan_all(b"<a/>tail"), Ok(Scan::Complete(4)));
    }

    #[test]
    fn same_answer_byte_by_byte() {
        let doc = b"<a x='>' y=\"/>\"><b/><![CDATA[</a>]]]]></a><next/>";
        let mut s = Scanner::stanza();
        let limits = Limits::default();
        let mut result = Scan::NeedMore;
        for n in 1..=doc.len() {
            result = s.scan(&doc[..n], &limits).unwrap();
            if result != Scan::NeedMore {
                break;
            }
        }
        assert_eq!(result, Scan::Complete(doc.len() - 7));
        assert_eq!(s.scanned(), doc.len() - 7);
    }

    #[test]
    fn stops_on_suspect_markup() {
        assert_eq!(scan_all(b"<a><!-- x --></a>"), Ok(Scan::Stop(6)));
        assert_eq!(scan_all(b"<a><?pi?></a>"), Ok(Scan::Stop(9)));
        assert_eq!(scan_all(b"<a><?xml version='1.0'?></a>"), Ok(Scan::Stop(9)));
        assert_eq!(scan_all(b"<a/ ></a>"), Ok(Scan::Stop(4)));
        assert_eq!(scan_all(b"<a <b/>"), Ok(Scan::Stop(4)));
    }

    #[test]
    fn limits_hold_before_the_end() {
        let limits = Limits {
            max_stanza_size: 16,
            max_depth: 2,
            ..Limits::default()
        };
        let mut s = Scanner::stanza();
        assert_eq!(s.scan(b"<a>0123456789", &limits), Ok(Scan::NeedMore));
        assert_eq!(
            s.scan(b"<a>0123456789abcdef", &limits),
            Err(XmlError::StanzaTooLarge(16))
        );
        assert_eq!(
            Scanner::stanza().scan(b"<a><b><c>", &limits),
            Err(XmlError::TooDeep(2))
        );
        // Exactly at the limit is fine.
        assert_eq!(
            Scanner::stanza().scan(
                b"<a>0123456789</a>",
                &Limits {
                    max_stanza_size: 17,
                    ..limits.clone()
                }
            ),
            Ok(Scan::Complete(17))
        );
    }

    #[test]
    fn header_mode() {
        let mut s = Scanner::header();
        assert_eq!(
            s.scan(b"<stream:stream to='a>b'>", &Limits::default()),
            Ok(Scan::Complete(24))
        );
    }
}
