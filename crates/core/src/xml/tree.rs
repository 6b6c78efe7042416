//! Builds an [`Element`] from the bytes of one complete element, resolving namespaces.
//!
//! The tokens (tags, attributes, names, quoted values) are parsed with nom; the tree is built
//! with an explicit stack, so nesting depth costs heap, not call stack, and is bounded by
//! [`Limits::max_depth`]. Strings are slices of the shared input wherever no unescaping was
//! needed.

use bytestring::ByteString;
use memchr::{memchr, memmem};
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::{IResult, Parser};

use super::chars::{check_name, is_name_byte, normalize_eol_into, unescape_into};
use super::error::{Limits, XmlError};
use crate::element::{Attribute, Element, Node};
use crate::ns;

type PResult<'a, T> = IResult<&'a [u8], T, XmlError>;

/// The namespace bindings in force where parsing starts: `("", default)` for the default
/// namespace, `(prefix, uri)` for prefixes. `xml` is always bound.
#[derive(Debug, Clone)]
pub struct ParseContext {
    pub(crate) bindings: Vec<(ByteString, ByteString)>,
}

impl ParseContext {
    /// Only the `xml` prefix bound: a standalone document.
    pub fn empty() -> ParseContext {
        ParseContext {
            bindings: vec![(ByteString::from_static("xml"), ns::XML)],
        }
    }
    /// The bindings inside a stream whose header declared `bindings`.
    pub fn with_bindings(bindings: impl IntoIterator<Item = (ByteString, ByteString)>) -> Self {
        let mut c = ParseContext::empty();
        c.bindings.extend(bindings);
        c
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn ws0(i: &[u8]) -> PResult<'_, &[u8]> {
    take_while(is_ws).parse(i)
}

fn qname(i: &[u8]) -> PResult<'_, &[u8]> {
    take_while1::<_, _, XmlError>(is_name_byte)
        .parse(i)
        .map_err(|_| nom::Err::Failure(XmlError::Syntax("expected a name")))
}

/// `S? '=' S?`
fn eq(i: &[u8]) -> PResult<'_, ()> {
    let (i, _) = ws0(i)?;
    let (i, _) = tag(&b"="[..]).parse(i).map_err(|_: nom::Err<XmlError>| {
        nom::Err::Failure(XmlError::Syntax("expected '=' after an attribute name"))
    })?;
    let (i, _) = ws0(i)?;
    Ok((i, ()))
}

/// A quoted attribute value, raw (not yet unescaped).
fn quoted(i: &[u8]) -> PResult<'_, &[u8]> {
    let q = match i.first() {
        Some(&q @ (b'"' | b'\'')) => q,
        _ => {
            return Err(nom::Err::Failure(XmlError::Syntax(
                "expected a quoted attribute value",
            )));
        }
    };
    match memchr(q, &i[1..]) {
        Some(end) => Ok((&i[end + 2..], &i[1..end + 1])),
        None => Err(nom::Err::Failure(XmlError::Syntax(
            "unterminated attribute value",
        ))),
    }
}

/// `Name Eq AttValue`
fn attribute(i: &[u8]) -> PResult<'_, (&[u8], &[u8])> {
    let (i, name) = qname(i)?;
    let (i, ()) = eq(i)?;
    let (i, value) = quoted(i)?;
    Ok((i, (name, value)))
}

/// `'</' Name S? '>'`
fn end_tag(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, _) = tag(&b"</"[..]).parse(i)?;
    let (i, name) = qname(i)?;
    let (i, _) = ws0(i)?;
    let (i, _) = tag(&b">"[..]).parse(i).map_err(|_: nom::Err<XmlError>| {
        nom::Err::Failure(XmlError::Syntax("expected '>' to close an end tag"))
    })?;
    Ok((i, name))
}

fn fail<T>(e: XmlError) -> Result<T, XmlError> {
    Err(e)
}

fn unwrap_nom(e: nom::Err<XmlError>) -> XmlError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => XmlError::UnexpectedEof,
    }
}

/// Pending character data of the element being built: nothing, one slice of the input that
/// needs no decoding, or decoded text.
enum Text<'s> {
    Empty,
    Slice(&'s [u8]),
    Owned(String),
}

struct Frame<'s> {
    el: Element,
    qname: &'s [u8],
    scope_mark: usize,
    text: Text<'s>,
}

/// A start tag, tokenised: its qualified name, raw attributes, and whether it is empty (`/>`).
struct StartTag<'s> {
    name: &'s [u8],
    empty: bool,
}

pub(crate) struct TreeParser<'s> {
    src: &'s ByteString,
    bytes: &'s [u8],
    limits: &'s Limits,
    has_cr: bool,
    scope: Vec<(&'s [u8], ByteString)>,
    attrs: Vec<(&'s [u8], &'s [u8])>,
}

impl<'s> TreeParser<'s> {
    /// `has_cr` says whether the input holds a carriage return (then line ends are normalised).
    pub(crate) fn new(
        src: &'s ByteString,
        ctx: &'s ParseContext,
        limits: &'s Limits,
        has_cr: bool,
    ) -> TreeParser<'s> {
        TreeParser {
            src,
            bytes: src.as_bytes(),
            limits,
            has_cr,
            scope: ctx
                .bindings
                .iter()
                .map(|(p, n)| (AsRef::<[u8]>::as_ref(p), n.clone()))
                .collect(),
            attrs: Vec::new(),
        }
    }

    /// Where a slice of the input starts. Every slice the parser hands around is a sub-slice
    /// of `self.bytes` (empty ones excepted, see [`shared`](Self::shared)).
    fn offset(&self, s: &[u8]) -> usize {
        (s.as_ptr() as usize).saturating_sub(self.bytes.as_ptr() as usize)
    }

    /// The shared string for a slice of the input.
    fn shared(&self, s: &'s [u8]) -> Result<ByteString, XmlError> {
        if s.is_empty() {
            return Ok(ByteString::new());
        }
        let off = self.offset(s);
        match self.src.get(off..off + s.len()) {
            Some(sub) => Ok(self.src.slice_ref(sub)),
            None => Err(XmlError::InvalidUtf8),
        }
    }

    fn resolve(&self, prefix: &[u8]) -> Option<&ByteString> {
        self.scope
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, n)| n)
    }

    /// `'<' Name (S Attribute)* S? ('>' | '/>')`, filling `self.attrs`.
    fn start_tag(&mut self, i: &'s [u8]) -> PResult<'s, StartTag<'s>> {
        let (mut i, _) = tag(&b"<"[..]).parse(i)?;
        let (rest, name) = qname(i)?;
        i = rest;
        self.attrs.clear();
        loop {
            let (rest, space) = ws0(i)?;
            match rest.first() {
                Some(b'>') => return Ok((&rest[1..], StartTag { name, empty: false })),
                Some(b'/') => {
                    return match rest.get(1) {
                        Some(b'>') => Ok((&rest[2..], StartTag { name, empty: true })),
                        _ => Err(nom::Err::Failure(XmlError::Syntax(
                            "expected '>' after '/'",
                        ))),
                    };
                }
                None => return Err(nom::Err::Failure(XmlError::UnexpectedEof)),
                Some(_) if space.is_empty() => {
                    return Err(nom::Err::Failure(XmlError::Syntax(
                        "expected white space, '>' or '/>' in a start tag",
                    )));
                }
                Some(_) => {}
            }
            let (rest, attr) = attribute(rest)?;
            if self.attrs.len() >= self.limits.max_attributes {
                return Err(nom::Err::Failure(XmlError::TooManyAttributes(
                    self.limits.max_attributes,
                )));
            }
            self.attrs.push(attr);
            i = rest;
        }
    }

    /// Splits and checks a qualified name: `(prefix, local)`, prefix empty when absent.
    fn split_qname(&self, q: &'s [u8]) -> Result<(&'s [u8], &'s [u8]), XmlError> {
        if q.len() > self.limits.max_name_len {
            return fail(XmlError::NameTooLong(self.limits.max_name_len));
        }
        match memchr(b':', q) {
            None => {
                check_name(q)?;
                Ok((&[], q))
            }
            Some(c) => {
                let (p, l) = (&q[..c], &q[c + 1..]);
                if p.is_empty() || l.is_empty() || memchr(b':', l).is_some() {
                    return fail(XmlError::Syntax("malformed qualified name"));
                }
                check_name(p)?;
                check_name(l)?;
                Ok((p, l))
            }
        }
    }

    /// Decodes an attribute value (references, white-space normalisation).
    fn attr_value(&self, raw: &'s [u8]) -> Result<ByteString, XmlError> {
        if memchr(b'<', raw).is_some() {
            return fail(XmlError::Syntax("'<' in an attribute value"));
        }
        if raw
            .iter()
            .any(|&b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
        {
            let mut s = String::with_capacity(raw.len());
            unescape_into(raw, true, &mut s)?;
            Ok(ByteString::from(s))
        } else {
            self.shared(raw)
        }
    }

    /// Turns the tokenised start tag into an element: namespace declarations go into scope,
    /// names are resolved, duplicates rejected.
    fn build(&mut self, st: &StartTag<'s>) -> Result<Element, XmlError> {
        let attrs = std::mem::take(&mut self.attrs);
        let result = self.build_inner(st, &attrs);
        self.attrs = attrs;
        result
    }

    fn build_inner(
        &mut self,
        st: &StartTag<'s>,
        attrs: &[(&'s [u8], &'s [u8])],
    ) -> Result<Element, XmlError> {
        // Same qualified name twice.
        for (k, (a, _)) in attrs.iter().enumerate() {
            if attrs[k + 1..].iter().any(|(b, _)| a == b) {
                return fail(XmlError::DuplicateAttribute(
                    String::from_utf8_lossy(a).into_owned(),
                ));
            }
        }
        let mut n_plain = 0;
        for &(name, value) in attrs {
            let prefix: &[u8] = if name == b"xmlns" {
                b""
            } else if let Some(p) = name.strip_prefix(b"xmlns:") {
                p
            } else {
                n_plain += 1;
                continue;
            };
            if name.len() > self.limits.max_name_len {
                return fail(XmlError::NameTooLong(self.limits.max_name_len));
            }
            let uri = self.attr_value(value)?;
            if !prefix.is_empty() {
                check_name(prefix)?;
                if memchr(b':', prefix).is_some() {
                    return fail(XmlError::Syntax("malformed qualified name"));
                }
                if prefix == b"xmlns" {
                    return fail(XmlError::BadPrefix(
                        "the prefix xmlns cannot be declared".into(),
                    ));
                }
                if uri.is_empty() {
                    return fail(XmlError::BadPrefix(format!(
                        "prefix {} bound to the empty namespace",
                        String::from_utf8_lossy(prefix)
                    )));
                }
            }
            if (prefix == b"xml") != (uri == ns::XML) {
                return fail(XmlError::BadPrefix(
                    "the xml prefix and its namespace go only together".into(),
                ));
            }
            if *uri == *"http://www.w3.org/2000/xmlns/" {
                return fail(XmlError::BadPrefix(
                    "the xmlns namespace cannot be bound".into(),
                ));
            }
            let uri = ns::intern(&uri).unwrap_or(uri);
            self.scope.push((prefix, uri));
        }

        let (prefix, local) = self.split_qname(st.name)?;
        if prefix == b"xmlns" {
            return fail(XmlError::BadPrefix(
                "an element cannot use the xmlns prefix".into(),
            ));
        }
        let ns = match self.resolve(prefix) {
            Some(n) => n.clone(),
            None if prefix.is_empty() => ByteString::new(),
            None => {
                return fail(XmlError::UndeclaredPrefix(
                    String::from_utf8_lossy(prefix).into_owned(),
                ));
            }
        };
        let mut el = Element {
            name: self.shared(local)?,
            ns,
            attrs: Vec::with_capacity(n_plain),
            children: Vec::new(),
        };
        let mut prefixed = false;
        for &(name, value) in attrs {
            if name == b"xmlns" || name.starts_with(b"xmlns:") {
                continue;
            }
            let (p, l) = self.split_qname(name)?;
            let ans = if p.is_empty() {
                ByteString::new()
            } else {
                prefixed = true;
                match self.resolve(p) {
                    Some(n) => n.clone(),
                    None => {
                        return fail(XmlError::UndeclaredPrefix(
                            String::from_utf8_lossy(p).into_owned(),
                        ));
                    }
                }
            };
            el.attrs.push(Attribute {
                ns: ans,
                name: self.shared(l)?,
                value: self.attr_value(value)?,
            });
        }
        if prefixed {
            // Two prefixes bound to one namespace can still name the same attribute.
            for (k, a) in el.attrs.iter().enumerate() {
                if !a.ns.is_empty()
                    && el.attrs[k + 1..]
                        .iter()
                        .any(|b| b.ns == a.ns && b.name == a.name)
                {
                    return fail(XmlError::DuplicateAttribute(format!(
                        "{{{}}}{}",
                        a.ns, a.name
                    )));
                }
            }
        }
        Ok(el)
    }

    fn add_text(&self, acc: &mut Text<'s>, raw: &'s [u8], cdata: bool) -> Result<(), XmlError> {
        if raw.is_empty() {
            return Ok(());
        }
        if !cdata && memchr(b']', raw).is_some() && memmem::find(raw, b"]]>").is_some() {
            return fail(XmlError::Syntax("']]>' is not allowed in text"));
        }
        let decode = (!cdata && memchr(b'&', raw).is_some())
            || (self.has_cr && memchr(b'\r', raw).is_some());
        if !decode && matches!(acc, Text::Empty) {
            *acc = Text::Slice(raw);
            return Ok(());
        }
        let mut s = match std::mem::replace(acc, Text::Empty) {
            Text::Empty => String::with_capacity(raw.len()),
            Text::Slice(prev) => {
                let mut s = String::with_capacity(prev.len() + raw.len());
                s.push_str(std::str::from_utf8(prev).map_err(|_| XmlError::InvalidUtf8)?);
                s
            }
            Text::Owned(s) => s,
        };
        if cdata {
            normalize_eol_into(raw, &mut s);
        } else {
            unescape_into(raw, false, &mut s)?;
        }
        *acc = Text::Owned(s);
        Ok(())
    }

    fn flush_text(&self, text: &mut Text<'s>, children: &mut Vec<Node>) -> Result<(), XmlError> {
        match std::mem::replace(text, Text::Empty) {
            Text::Empty => {}
            Text::Slice(s) => children.push(Node::Text(self.shared(s)?)),
            Text::Owned(s) => children.push(Node::Text(ByteString::from(s))),
        }
        Ok(())
    }

    /// Parses one element starting at byte `start`. Returns it and the offset just past it.
    pub(crate) fn parse_element(&mut self, start: usize) -> Result<(Element, usize), XmlError> {
        let mut i: &'s [u8] = &self.bytes[start..];
        let mut stack: Vec<Frame<'s>> = Vec::new();
        loop {
            let Some(&first) = i.first() else {
                return fail(XmlError::UnexpectedEof);
            };
            if first != b'<' {
                let Some(top) = stack.last_mut() else {
                    return fail(XmlError::Syntax("expected '<'"));
                };
                let end = memchr(b'<', i).unwrap_or(i.len());
                self.add_text(&mut top.text, &i[..end], false)?;
                i = &i[end..];
                continue;
            }
            match i.get(1) {
                Some(b'/') => {
                    let (rest, name) = end_tag(i).map_err(unwrap_nom)?;
                    let Some(mut frame) = stack.pop() else {
                        return fail(XmlError::Syntax("end tag without a start tag"));
                    };
                    if frame.qname != name {
                        return fail(XmlError::MismatchedEndTag {
                            expected: String::from_utf8_lossy(frame.qname).into_owned(),
                            found: String::from_utf8_lossy(name).into_owned(),
                        });
                    }
                    self.flush_text(&mut frame.text, &mut frame.el.children)?;
                    self.scope.truncate(frame.scope_mark);
                    match stack.last_mut() {
                        Some(parent) => parent.el.children.push(Node::Element(frame.el)),
                        None => return Ok((frame.el, self.offset(rest))),
                    }
                    i = rest;
                }
                Some(b'!') => {
                    if i.starts_with(b"<![CDATA[") {
                        let body = &i[9..];
                        let Some(end) = memmem::find(body, b"]]>") else {
                            return fail(XmlError::UnexpectedEof);
                        };
                        let Some(top) = stack.last_mut() else {
                            return fail(XmlError::Syntax("CDATA outside an element"));
                        };
                        self.add_text(&mut top.text, &body[..end], true)?;
                        i = &body[end + 3..];
                    } else {
                        return fail(markup_declaration_error(i));
                    }
                }
                Some(b'?') => return fail(pi_error(i)),
                Some(_) => {
                    if stack.len() >= self.limits.max_depth {
                        return fail(XmlError::TooDeep(self.limits.max_depth));
                    }
                    let scope_mark = self.scope.len();
                    let (rest, st) = self.start_tag(i).map_err(unwrap_nom)?;
                    let el = self.build(&st)?;
                    if let Some(parent) = stack.last_mut() {
                        self.flush_text(&mut parent.text, &mut parent.el.children)?;
                    }
                    if st.empty {
                        self.scope.truncate(scope_mark);
                        match stack.last_mut() {
                            Some(parent) => parent.el.children.push(Node::Element(el)),
                            None => return Ok((el, self.offset(rest))),
                        }
                    } else {
                        stack.push(Frame {
                            el,
                            qname: st.name,
                            scope_mark,
                            text: Text::Empty,
                        });
                    }
                    i = rest;
                }
                None => return fail(XmlError::UnexpectedEof),
            }
        }
    }

    /// Parses a start tag that must not be empty (a stream header). Returns the element (no
    /// children), its qualified name, the namespace bindings it declared, and the offset past it.
    pub(crate) fn parse_open_tag(
        &mut self,
        start: usize,
    ) -> Result<(Element, ByteString, Vec<(ByteString, ByteString)>, usize), XmlError> {
        let i = &self.bytes[start..];
        let mark = self.scope.len();
        let (rest, st) = self.start_tag(i).map_err(unwrap_nom)?;
        if st.empty {
            return fail(XmlError::Syntax(
                "the stream header must not be an empty element",
            ));
        }
        let el = self.build(&st)?;
        let mut declared = Vec::with_capacity(self.scope.len() - mark);
        for (p, n) in &self.scope[mark..] {
            declared.push((self.shared(p)?, n.clone()));
        }
        Ok((el, self.shared(st.name)?, declared, self.offset(rest)))
    }
}

/// The error for `<!` markup that is not CDATA: a comment, a DTD, or garbage.
pub(crate) fn markup_declaration_error(i: &[u8]) -> XmlError {
    if i.starts_with(b"<!-") {
        XmlError::Comment
    } else if i.get(2).is_some_and(|b| b.is_ascii_uppercase()) {
        XmlError::Doctype
    } else {
        XmlError::Syntax("malformed markup after '<!'")
    }
}

/// The error for `<?` anywhere but the very start of a stream.
pub(crate) fn pi_error(i: &[u8]) -> XmlError {
    let is_decl = i.starts_with(b"<?xml") && i.get(5).is_none_or(|&b| is_ws(b) || b == b'?');
    if is_decl {
        XmlError::MisplacedXmlDecl
    } else {
        XmlError::ProcessingInstruction
    }
}

/// An XML declaration `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`; returns the
/// offset past it. Anything but UTF-8 is refused.
pub(crate) fn xml_decl(i: &[u8]) -> Result<usize, XmlError> {
    let full = i;
    let Some(rest) = i.strip_prefix(b"<?xml") else {
        return fail(XmlError::ProcessingInstruction);
    };
    if !rest.first().is_some_and(|&b| is_ws(b)) {
        return fail(XmlError::ProcessingInstruction);
    }
    let mut i = rest;
    let mut seen_version = false;
    loop {
        let (r, _) = ws0(i).map_err(unwrap_nom)?;
        if let Some(r) = r.strip_prefix(b"?>") {
            if !seen_version {
                return fail(XmlError::Syntax("the XML declaration lacks a version"));
            }
            return Ok(full.len() - r.len());
        }
        let (r, (name, value)) = attribute(r).map_err(unwrap_nom)?;
        match name {
            b"version" => {
                if !(value.starts_with(b"1.")
                    && value.len() > 2
                    && value[2..].iter().all(u8::is_ascii_digit))
                {
                    return fail(XmlError::Syntax("unsupported XML version"));
                }
                seen_version = true;
            }
            b"encoding" => {
                if !value.eq_ignore_ascii_case(b"utf-8") {
                    return fail(XmlError::UnsupportedEncoding(
                        String::from_utf8_lossy(value).into_owned(),
                    ));
                }
            }
            b"standalone" => {
                if value != b"yes" && value != b"no" {
                    return fail(XmlError::Syntax("standalone must be yes or no"));
                }
            }
            _ => {
                return fail(XmlError::Syntax(
                    "unknown pseudo-attribute in the XML declaration",
                ));
            }
        }
        i = r;
    }
}
