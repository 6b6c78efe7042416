//! Finds where a top-level element ends, across reads, and refuses malformed markup as soon
//! as it arrives.
//!
//! The scanner keeps its state between calls, so every byte of a stanza is looked at once no
//! matter how the stanza is split into reads; the tree parser then runs once over the complete
//! stanza. It follows the markup closely enough that a byte which cannot begin or continue a
//! well-formed element stops it at once, before the rest of the element arrives (a peer
//! cannot keep a connection waiting with garbage): tag and attribute syntax, names (ASCII
//! exactly; other characters by the parser), references (`&name;` with one of XML's five
//! entities, `&#…;`), `<` in attribute values, and end tags, which must match their start
//! tags. It enforces the size and depth limits as it goes, so a hostile peer cannot make the
//! decoder buffer more than [`Limits::max_stanza_size`](super::Limits) bytes. Where it stops,
//! the parser runs over the bytes so far and reports the exact error.

use memchr::{memchr, memchr2, memchr3};

use super::error::{Limits, XmlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data; looking for `<` or `&`.
    Content,
    /// Just after `<`.
    Lt,
    /// In a start tag's name, which began at this offset.
    TagName(usize),
    /// In a start tag, where an attribute, `/` or `>` may come (after white space).
    InTag,
    /// Just after an attribute value: white space, `/` or `>` must follow.
    AfterValue,
    /// In an attribute name, which began at this offset.
    AttrName(usize),
    /// After an attribute name and white space: `=` must come.
    AfterAttrName,
    /// After `=`: a quote must come.
    BeforeValue,
    /// Inside a quoted attribute value.
    Quote(u8),
    /// After `/` in a start tag: `>` must follow.
    Slash,
    /// In an end tag's name, which began at this offset.
    EndTagName(usize),
    /// After an end tag's name: white space, then `>`.
    EndTagSpace,
    /// In a reference, in content (`None`) or in a value quoted with this byte.
    Ref(Option<u8>, RefPart),
    /// After `<!`, matching `[CDATA[` (the count of bytes matched).
    Bang(u8),
    /// Inside CDATA (the count of `]` just seen, up to 2).
    CData(u8),
    /// After `<?`: a few more bytes tell an XML declaration from another instruction (the
    /// count of bytes seen).
    Pi(u8),
}

/// Where a reference has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefPart {
    /// Just after `&`.
    Start,
    /// In an entity name that began at this offset.
    Name(usize),
    /// In a character reference whose `#` is at this offset.
    Char(usize),
}

/// What the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The element is not complete yet; call again with more bytes.
    NeedMore,
    /// The element ends at this offset (exclusive).
    Complete(usize),
    /// The bytes up to this offset contain an error; parse them to find out which (the text
    /// says what the scanner expected, for when the bytes alone do not tell).
    Stop(usize, &'static str),
}

/// Incremental boundary scanner for one top-level element whose `<` is at offset 0.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    state: State,
    pos: usize,
    /// The names of the open elements, as offsets into the element's bytes.
    open: Vec<(usize, usize)>,
    /// In header mode the element is complete when its start tag ends.
    header: bool,
}

const CDATA: &[u8; 7] = b"[CDATA[";

/// The longest reference worth waiting for (`&#x10FFFF;` and the entity names are shorter).
const MAX_REF: usize = 12;

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A byte that may start a name: an ASCII letter, `_`, `:`, or any byte of a non-ASCII
/// character (the parser checks which characters).
#[inline]
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

#[inline]
fn is_name_byte(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

const NAME_START: &str = "a name starts with a character that cannot start a name";
const IN_TAG: &str = "expected white space, '>' or '/>' in a start tag";
const EQUALS: &str = "expected '=' after an attribute name";
const QUOTE: &str = "expected a quoted attribute value";
const LT_IN_VALUE: &str = "'<' in an attribute value";
const REFERENCE: &str = "'&' not followed by a reference ending in ';'";
const SLASH: &str = "expected '>' after '/'";
const END_TAG: &str = "expected '>' to close an end tag";
const BANG: &str = "malformed markup after '<!'";
const PI: &str = "processing instructions are not allowed";

/// An end tag that does not match its start tag.
fn mismatch(expected: &[u8], found: &[u8]) -> XmlError {
    XmlError::MismatchedEndTag {
        expected: String::from_utf8_lossy(expected).into_owned(),
        found: String::from_utf8_lossy(found).into_owned(),
    }
}

/// A name (element, attribute or end tag) that began at `from` and has reached `to`.
fn name_fits(from: usize, to: usize, limits: &Limits) -> Result<(), XmlError> {
    if to - from > limits.max_name_len {
        return Err(XmlError::NameTooLong(limits.max_name_len));
    }
    Ok(())
}

impl Scanner {
    /// A scanner for a stanza whose first byte (`<`) has been seen.
    pub(crate) fn stanza() -> Scanner {
        Scanner {
            state: State::Lt,
            pos: 1,
            open: Vec::new(),
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

    /// A start tag ended (`>`): the element is open, or in header mode complete.
    fn opened(&mut self) -> Option<Scan> {
        if self.header {
            return Some(Scan::Complete(self.pos));
        }
        self.state = State::Content;
        None
    }

    /// The byte after an end tag's name (or after white space there): more white space, or
    /// the `>` that closes the element.
    fn end_tag_byte(&mut self, b: u8) -> Result<Option<Scan>, XmlError> {
        match b {
            c if is_space(c) => {
                self.state = State::EndTagSpace;
                Ok(None)
            }
            b'>' => Ok(self.closed()),
            _ => Ok(Some(Scan::Stop(self.pos, END_TAG))),
        }
    }

    /// An element ended (`/>` or a matching end tag): complete if it was the top one.
    fn closed(&mut self) -> Option<Scan> {
        self.open.pop();
        if self.open.is_empty() {
            return Some(Scan::Complete(self.pos));
        }
        self.state = State::Content;
        None
    }

    fn run(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, XmlError> {
        // Never look further than one byte past the limit.
        let buf = &buf[..buf.len().min(limits.max_stanza_size.saturating_add(1))];
        let stop = |at: usize, why: &'static str| Ok(Scan::Stop(at, why));
        while self.pos < buf.len() {
            let rest = &buf[self.pos..];
            let b = rest[0];
            match self.state {
                State::Content => match memchr2(b'<', b'&', rest) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.state = if rest[i] == b'<' {
                            State::Lt
                        } else {
                            State::Ref(None, RefPart::Start)
                        };
                    }
                    None => self.pos = buf.len(),
                },
                State::Lt => {
                    self.pos += 1;
                    match b {
                        b'/' => self.state = State::EndTagName(self.pos),
                        b'!' => self.state = State::Bang(0),
                        b'?' => self.state = State::Pi(0),
                        _ if is_name_start(b) => {
                            if self.open.len() >= limits.max_depth {
                                return Err(XmlError::TooDeep(limits.max_depth));
                            }
                            self.state = State::TagName(self.pos - 1);
                        }
                        _ => return stop(self.pos, NAME_START),
                    }
                }
                State::TagName(mark) => {
                    let n = rest.iter().position(|&c| !is_name_byte(c));
                    let Some(i) = n else {
                        self.pos = buf.len();
                        name_fits(mark, self.pos, limits)?;
                        continue;
                    };
                    self.pos += i + 1;
                    name_fits(mark, self.pos - 1, limits)?;
                    self.open.push((mark, self.pos - 1));
                    match rest[i] {
                        c if is_space(c) => self.state = State::InTag,
                        b'/' => self.state = State::Slash,
                        b'>' => {
                            if let Some(done) = self.opened() {
                                return Ok(done);
                            }
                        }
                        _ => return stop(self.pos, IN_TAG),
                    }
                }
                State::InTag | State::AfterValue => {
                    self.pos += 1;
                    match b {
                        c if is_space(c) => self.state = State::InTag,
                        b'/' => self.state = State::Slash,
                        b'>' => {
                            if let Some(done) = self.opened() {
                                return Ok(done);
                            }
                        }
                        c if self.state == State::InTag && is_name_start(c) => {
                            self.state = State::AttrName(self.pos - 1)
                        }
                        _ => return stop(self.pos, IN_TAG),
                    }
                }
                State::AttrName(mark) => {
                    let Some(i) = rest.iter().position(|&c| !is_name_byte(c)) else {
                        self.pos = buf.len();
                        name_fits(mark, self.pos, limits)?;
                        continue;
                    };
                    self.pos += i + 1;
                    name_fits(mark, self.pos - 1, limits)?;
                    match rest[i] {
                        c if is_space(c) => self.state = State::AfterAttrName,
                        b'=' => self.state = State::BeforeValue,
                        _ => return stop(self.pos, EQUALS),
                    }
                }
                State::AfterAttrName | State::BeforeValue => {
                    self.pos += 1;
                    match b {
                        c if is_space(c) => {}
                        b'=' if self.state == State::AfterAttrName => {
                            self.state = State::BeforeValue
                        }
                        b'\'' | b'"' if self.state == State::BeforeValue => {
                            self.state = State::Quote(b)
                        }
                        _ if self.state == State::AfterAttrName => {
                            return stop(self.pos, EQUALS);
                        }
                        _ => return stop(self.pos, QUOTE),
                    }
                }
                State::Quote(q) => match memchr3(q, b'<', b'&', rest) {
                    Some(i) => {
                        self.pos += i + 1;
                        match rest[i] {
                            b'<' => return stop(self.pos, LT_IN_VALUE),
                            b'&' => self.state = State::Ref(Some(q), RefPart::Start),
                            _ => self.state = State::AfterValue,
                        }
                    }
                    None => self.pos = buf.len(),
                },
                State::Ref(within, part) => {
                    self.pos += 1;
                    let next = match (part, b) {
                        (RefPart::Start, b'#') => RefPart::Char(self.pos - 1),
                        (RefPart::Start, c) if is_name_start(c) => RefPart::Name(self.pos - 1),
                        (RefPart::Name(from), b';') => {
                            let name = &buf[from..self.pos - 1];
                            if !matches!(name, b"lt" | b"gt" | b"amp" | b"apos" | b"quot") {
                                return Err(XmlError::UnknownEntity(
                                    String::from_utf8_lossy(name).into_owned(),
                                ));
                            }
                            self.state = within.map_or(State::Content, State::Quote);
                            continue;
                        }
                        (RefPart::Char(from), b';') => {
                            let text = &buf[from..self.pos - 1];
                            let digits_ok = match text {
                                [b'#', b'x', hex @ ..] => {
                                    !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit)
                                }
                                [b'#', dec @ ..] => {
                                    !dec.is_empty() && dec.iter().all(u8::is_ascii_digit)
                                }
                                _ => false,
                            };
                            if !digits_ok {
                                return Err(XmlError::BadCharRef(
                                    String::from_utf8_lossy(text).into_owned(),
                                ));
                            }
                            self.state = within.map_or(State::Content, State::Quote);
                            continue;
                        }
                        (RefPart::Name(from) | RefPart::Char(from), c)
                            if is_name_byte(c) && self.pos - from < MAX_REF =>
                        {
                            part
                        }
                        _ => return stop(self.pos, REFERENCE),
                    };
                    self.state = State::Ref(within, next);
                }
                State::Slash => {
                    self.pos += 1;
                    if b != b'>' || self.header {
                        return stop(self.pos, SLASH);
                    }
                    if let Some(done) = self.closed() {
                        return Ok(done);
                    }
                }
                State::EndTagName(mark) => {
                    let Some(i) = rest.iter().position(|&c| !is_name_byte(c)) else {
                        self.pos = buf.len();
                        name_fits(mark, self.pos, limits)?;
                        continue;
                    };
                    let name_end = self.pos + i;
                    self.pos += i + 1;
                    name_fits(mark, name_end, limits)?;
                    // The name must be the innermost open element's.
                    let Some(&(from, to)) = self.open.last() else {
                        return stop(self.pos, END_TAG);
                    };
                    if buf[mark..name_end] != buf[from..to] {
                        return Err(mismatch(&buf[from..to], &buf[mark..name_end]));
                    }
                    if let Some(done) = self.end_tag_byte(rest[i])? {
                        return Ok(done);
                    }
                }
                State::EndTagSpace => {
                    self.pos += 1;
                    if let Some(done) = self.end_tag_byte(b)? {
                        return Ok(done);
                    }
                }
                State::Bang(n) => {
                    self.pos += 1;
                    if b != CDATA[n as usize] {
                        return stop(self.pos, BANG);
                    }
                    self.state = if n as usize + 1 == CDATA.len() {
                        State::CData(0)
                    } else {
                        State::Bang(n + 1)
                    };
                }
                State::Pi(n) => {
                    self.pos += 1;
                    if n == 3 || b == b'>' {
                        return stop(self.pos, PI);
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
                        self.state = match b {
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
        assert_eq!(scan_all(b"<a><!-- x --></a>"), Ok(Scan::Stop(6, BANG)));
        assert_eq!(scan_all(b"<a><?pi?></a>"), Ok(Scan::Stop(9, PI)));
        assert_eq!(
            scan_all(b"<a><?xml version='1.0'?></a>"),
            Ok(Scan::Stop(9, PI))
        );
        assert_eq!(scan_all(b"<a/ ></a>"), Ok(Scan::Stop(4, SLASH)));
        assert_eq!(scan_all(b"<a <b/>"), Ok(Scan::Stop(4, IN_TAG)));
    }

    /// Bytes that cannot begin or continue a well-formed element stop the scan where they
    /// are, without waiting for the element's end (issue 14, defect 4: a peer could hold a
    /// connection with garbage until the negotiation timeout).
    #[test]
    fn refuses_malformed_markup_as_it_arrives() {
        let partial = |doc: &[u8]| Scanner::stanza().scan(doc, &Limits::default());
        assert_eq!(
            partial(b"<<this is not xml>>&&;"),
            Ok(Scan::Stop(2, NAME_START))
        );
        assert_eq!(partial(b"<a>&&;"), Ok(Scan::Stop(5, REFERENCE)));
        assert_eq!(partial(b"<a>& "), Ok(Scan::Stop(5, REFERENCE)));
        assert_eq!(partial(b"<a>&#x;"), Err(XmlError::BadCharRef("#x".into())));
        assert_eq!(partial(b"<a>&#12 "), Ok(Scan::Stop(8, REFERENCE)));
        assert_eq!(
            partial(b"<a>&nbsp;"),
            Err(XmlError::UnknownEntity("nbsp".into()))
        );
        assert_eq!(partial(b"<a x='1'y"), Ok(Scan::Stop(9, IN_TAG)));
        assert_eq!(partial(b"<a x=1"), Ok(Scan::Stop(6, QUOTE)));
        assert_eq!(partial(b"<a x y"), Ok(Scan::Stop(6, EQUALS)));
        assert_eq!(partial(b"<a x='<"), Ok(Scan::Stop(7, LT_IN_VALUE)));
        assert_eq!(partial(b"<a></a x"), Ok(Scan::Stop(8, END_TAG)));
        assert_eq!(
            partial(b"<message><body>never closed</stream:stream>"),
            Err(XmlError::MismatchedEndTag {
                expected: "body".into(),
                found: "stream:stream".into()
            })
        );
        // Well-formed beginnings wait for more.
        for ok in [
            &b"<a x='&amp;&#60;&#x3C;' y = \"2\" >text &lt; more"[..],
            b"<a><b/><c></c></a",
            b"<a>&am",
            b"<a>\xC3\xA9</",
        ] {
            assert_eq!(
                partial(ok),
                Ok(Scan::NeedMore),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    #[test]
    fn names_are_bounded_before_they_end() {
        let limits = Limits {
            max_name_len: 8,
            ..Limits::default()
        };
        for doc in [&b"<abcdefghij"[..], b"<a abcdefghij", b"<a></abcdefghij"] {
            assert_eq!(
                Scanner::stanza().scan(doc, &limits),
                Err(XmlError::NameTooLong(8)),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
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
