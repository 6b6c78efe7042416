//! Builds an [`Element`] from the bytes of one complete element, resolving namespaces.
//!
//! The tokens (tags, attributes, names, quoted values) are parsed with nom; the tree is built
//! with an explicit stack, so nesting depth costs heap, not call stack, and is bounded by
//! [`Limits::max_depth`]. Strings are slices of the shared input wherever no unescaping was
//! needed.

use std::collections::HashMap;

use bytes::Bytes;
use bytestring::ByteString;
use memchr::{memchr, memchr3, memmem};
use nom::bytes::complete::tag;
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

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `S?`: white space, possibly none.
#[inline]
fn ws0(i: &[u8]) -> PResult<'_, &[u8]> {
    let n = i.iter().position(|&b| !is_ws(b)).unwrap_or(i.len());
    Ok((&i[n..], &i[..n]))
}

/// A qualified name as read: its bytes, where its colon is, and whether it is all ASCII.
#[derive(Clone, Copy)]
struct QName<'s> {
    all: &'s [u8],
    colon: Option<usize>,
    ascii: bool,
}

/// A name token (name characters and colons); checked for XML's name rules by
/// [`TreeParser::split_qname`].
#[inline]
fn qname(i: &[u8]) -> PResult<'_, QName<'_>> {
    let mut colon = None;
    let mut high = 0u8;
    let mut n = 0;
    while let Some(&b) = i.get(n) {
        if !is_name_byte(b) {
            break;
        }
        if b == b':' && colon.is_none() {
            colon = Some(n);
        }
        high |= b;
        n += 1;
    }
    if n == 0 {
        return Err(nom::Err::Failure(XmlError::Syntax("expected a name")));
    }
    Ok((
        &i[n..],
        QName {
            all: &i[..n],
            colon,
            ascii: high < 0x80,
        },
    ))
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

/// Byte classes inside a quoted value: 0 ordinary, 1 `"`, 2 `'`, 3 needs decoding
/// (`&`, tab, line end), 4 `<` (forbidden).
static VALUE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'\'' as usize] = 2;
    t[b'&' as usize] = 3;
    t[b'\t' as usize] = 3;
    t[b'\n' as usize] = 3;
    t[b'\r' as usize] = 3;
    t[b'<' as usize] = 4;
    t
};

/// A quoted attribute value, raw, and whether it needs decoding. `<` inside is an error.
#[inline]
fn quoted(i: &[u8]) -> PResult<'_, (&[u8], bool)> {
    let close = match i.first() {
        Some(b'"') => 1,
        Some(b'\'') => 2,
        _ => {
            return Err(nom::Err::Failure(XmlError::Syntax(
                "expected a quoted attribute value",
            )));
        }
    };
    let mut decode = false;
    for (n, &b) in i[1..].iter().enumerate() {
        match VALUE_CLASS[b as usize] {
            0 => {}
            c if c == close => return Ok((&i[n + 2..], (&i[1..n + 1], decode))),
            3 => decode = true,
            4 => {
                return Err(nom::Err::Failure(XmlError::Syntax(
                    "'<' in an attribute value",
                )));
            }
            _ => {}
        }
    }
    Err(nom::Err::Failure(XmlError::Syntax(
        "unterminated attribute value",
    )))
}

/// One attribute of a start tag, tokenised.
#[derive(Clone, Copy)]
struct RawAttr<'s> {
    name: QName<'s>,
    value: &'s [u8],
    decode: bool,
}

/// `Name Eq AttValue`
fn attribute(i: &[u8]) -> PResult<'_, RawAttr<'_>> {
    let (i, name) = qname(i)?;
    let (i, ()) = eq(i)?;
    let (i, (value, decode)) = quoted(i)?;
    Ok((
        i,
        RawAttr {
            name,
            value,
            decode,
        },
    ))
}

/// `'</' Name S? '>'`
fn end_tag(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, _) = tag(&b"</"[..]).parse(i)?;
    let (i, name) = qname(i)?;
    let name = name.all;
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
    /// Where this element's children start in the scratch list of nodes.
    first_node: usize,
    qname: &'s [u8],
    scope_mark: usize,
    /// The default namespace to restore when this element ends, if it declared one.
    saved_default: Option<ByteString>,
    text: Text<'s>,
}

/// A parsed opening tag that stays open (a stream header).
pub(crate) struct OpenTag {
    /// The element, without children.
    pub element: Element,
    /// Its qualified name as written.
    pub qname: ByteString,
    /// The namespace bindings it declared, `("", uri)` for a default namespace.
    pub declared: Vec<(ByteString, ByteString)>,
}

/// A start tag, tokenised: its qualified name, raw attributes, and whether it is empty (`/>`).
struct StartTag<'s> {
    name: QName<'s>,
    empty: bool,
}

/// The namespace bindings in scope, innermost last (default-namespace declarations included,
/// with an empty prefix, so the header's declarations can be listed).
///
/// A prefix is found in constant time: bindings declared inside the stanza are indexed by
/// prefix (each remembering the binding of the same prefix it shadows, restored when it goes
/// out of scope); the few the stream header declared are below `base` and searched in order.
/// A linear search of every binding let a 256 KiB stanza of nested declarations cost ~15
/// times the CPU of a plain one. The default namespace is not indexed: it is kept at hand.
#[derive(Debug, Default)]
struct Scope {
    bindings: Vec<(ByteString, ByteString)>,
    /// The stream header's bindings end here.
    base: usize,
    /// The index of prefixed bindings above `base`, made when the first is declared (most
    /// stanzas declare none: an idle stream holds no index).
    index: Option<Box<Index>>,
}

#[derive(Debug, Default)]
struct Index {
    /// Prefix → index of its innermost binding above `base`.
    map: HashMap<Bytes, usize>,
    /// For each prefixed binding above `base`, in order: the binding it shadows.
    shadows: Vec<Option<usize>>,
}

impl Scope {
    fn new(bindings: Vec<(ByteString, ByteString)>) -> Scope {
        Scope {
            base: bindings.len(),
            bindings,
            index: None,
        }
    }

    fn len(&self) -> usize {
        self.bindings.len()
    }

    fn push(&mut self, prefix: ByteString, uri: ByteString) {
        if !prefix.is_empty() {
            let at = self.bindings.len();
            let index = self.index.get_or_insert_with(Box::default);
            let shadowed = index.map.insert(prefix.as_bytes().clone(), at);
            index.shadows.push(shadowed);
        }
        self.bindings.push((prefix, uri));
    }

    /// Drops the bindings from `mark` on (their element ended).
    fn truncate(&mut self, mark: usize) {
        while self.bindings.len() > mark.max(self.base) {
            let Some((prefix, _)) = self.bindings.pop() else {
                break;
            };
            if prefix.is_empty() {
                continue;
            }
            let Some(index) = self.index.as_mut() else {
                continue;
            };
            match index.shadows.pop().flatten() {
                Some(i) => {
                    index.map.insert(prefix.as_bytes().clone(), i);
                }
                None => {
                    index.map.remove(prefix.as_bytes());
                }
            }
        }
    }

    /// The namespace bound to a non-empty prefix.
    fn resolve(&self, prefix: &[u8]) -> Option<&ByteString> {
        if let Some(&i) = self.index.as_ref().and_then(|x| x.map.get(prefix)) {
            return Some(&self.bindings[i].1);
        }
        self.bindings[..self.base]
            .iter()
            .rev()
            .find(|(p, _)| same(p.as_bytes(), prefix))
            .map(|(_, n)| n)
    }

    /// Frees what a quiet stream does not need: the index, and room beyond the header's
    /// bindings.
    fn release(&mut self) {
        if self.bindings.len() == self.base {
            self.index = None;
            self.bindings.shrink_to_fit();
        }
    }
}

impl Clone for Scope {
    fn clone(&self) -> Scope {
        let mut s = Scope::new(self.bindings[..self.base].to_vec());
        for (p, n) in &self.bindings[self.base..] {
            s.push(p.clone(), n.clone());
        }
        s
    }
}

/// What the parser keeps between elements: the namespace scope of the stream, and buffers
/// reused from one element to the next. Owned by the decoder, lent to each [`TreeParser`].
pub(crate) struct ParserState {
    /// Prefix bindings in scope.
    scope: Scope,
    /// The default namespace in scope (looked up for every element, so kept at hand).
    default: ByteString,
    attrs: Vec<RawAttr<'static>>,
    frames: Vec<Frame<'static>>,
    nodes: Vec<Node>,
}

impl ParserState {
    /// A state whose scope holds the context's bindings.
    pub(crate) fn new(ctx: &ParseContext) -> ParserState {
        ParserState {
            scope: Scope::new(ctx.bindings.clone()),
            default: ctx
                .bindings
                .iter()
                .rev()
                .find(|(p, _)| p.is_empty())
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            attrs: Vec::new(),
            frames: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

impl ParserState {
    /// Frees the reusable buffers (they hold nothing between elements).
    pub(crate) fn release_buffers(&mut self) {
        if self.attrs.is_empty() && self.frames.is_empty() && self.nodes.is_empty() {
            self.attrs = Vec::new();
            self.frames = Vec::new();
            self.nodes = Vec::new();
        }
        self.scope.release();
    }
}

impl Clone for ParserState {
    /// The same scope, with fresh buffers.
    fn clone(&self) -> ParserState {
        ParserState {
            scope: self.scope.clone(),
            default: self.default.clone(),
            attrs: Vec::new(),
            frames: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ParserState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserState")
            .field("scope", &self.scope)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// Reuses an empty vector's allocation for another element type of the same layout (here: the
/// same type with another lifetime). In-place collection keeps the buffer.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

pub(crate) struct TreeParser<'s> {
    src: &'s ByteString,
    bytes: &'s [u8],
    limits: &'s Limits,
    has_cr: bool,
    scope: Scope,
    default: ByteString,
    attrs: Vec<RawAttr<'s>>,
    /// Open elements, innermost last.
    frames: Vec<Frame<'s>>,
    /// Children of the open elements, in order; an element takes its own when it closes, in a
    /// vector of exactly the right size.
    nodes: Vec<Node>,
}

/// Byte-slice equality for the short names compared here, inlined rather than a `memcmp` call.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl<'s> TreeParser<'s> {
    /// A parser over `src` that starts from `state`. `has_cr` says whether the input holds a
    /// carriage return (then line ends are normalised).
    pub(crate) fn new(
        src: &'s ByteString,
        limits: &'s Limits,
        has_cr: bool,
        state: ParserState,
    ) -> TreeParser<'s> {
        TreeParser {
            src,
            bytes: src.as_bytes(),
            limits,
            has_cr,
            scope: state.scope,
            default: state.default,
            attrs: recycle(state.attrs),
            frames: recycle(state.frames),
            nodes: state.nodes,
        }
    }

    /// Gives the state back. After an error the scope may hold the failed element's bindings;
    /// a stream is over after an error, so the state is not reused then.
    pub(crate) fn into_state(self) -> ParserState {
        ParserState {
            scope: self.scope,
            default: self.default,
            attrs: recycle(self.attrs),
            frames: recycle(self.frames),
            nodes: self.nodes,
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
    /// The namespace bound to a non-empty prefix.
    fn resolve(&self, prefix: &[u8]) -> Option<&ByteString> {
        self.scope.resolve(prefix)
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
    fn split_qname(&self, q: QName<'s>) -> Result<(&'s [u8], &'s [u8]), XmlError> {
        if q.all.len() > self.limits.max_name_len {
            return fail(XmlError::NameTooLong(self.limits.max_name_len));
        }
        let check = |part: &[u8]| -> Result<(), XmlError> {
            if q.ascii {
                // Bytes are name characters already; only the first has a stricter rule.
                if !matches!(part.first(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_')) {
                    return fail(XmlError::Syntax(
                        "a name starts with a character that cannot start a name",
                    ));
                }
                Ok(())
            } else {
                check_name(part)
            }
        };
        match q.colon {
            None => {
                check(q.all)?;
                Ok((&[], q.all))
            }
            Some(c) => {
                let (p, l) = (&q.all[..c], &q.all[c + 1..]);
                if p.is_empty() || l.is_empty() || memchr(b':', l).is_some() {
                    return fail(XmlError::Syntax("malformed qualified name"));
                }
                check(p)?;
                check(l)?;
                Ok((p, l))
            }
        }
    }

    /// A name as a shared string: a static one for common XMPP names, else a slice.
    #[inline]
    fn name_string(&self, name: &'s [u8]) -> Result<ByteString, XmlError> {
        match super::intern::name(name) {
            Some(s) => Ok(ByteString::from_static(s)),
            None => self.shared(name),
        }
    }

    /// Decodes an attribute value (references, white-space normalisation).
    fn attr_value(&self, a: &RawAttr<'s>) -> Result<ByteString, XmlError> {
        if a.decode {
            let mut s = String::with_capacity(a.value.len());
            unescape_into(a.value, true, &mut s)?;
            Ok(ByteString::from(s))
        } else if let Some(s) = super::intern::value(a.value) {
            Ok(ByteString::from_static(s))
        } else {
            self.shared(a.value)
        }
    }

    /// Turns the tokenised start tag into an element: namespace declarations go into scope,
    /// names are resolved, duplicates rejected.
    /// Builds the element of a start tag. A top-level element (`root`, a stanza) gets room
    /// for one attribute more than it has: a server stamps `from` on every stanza it routes,
    /// and the vector would otherwise be reallocated and copied for it.
    fn build(
        &mut self,
        st: &StartTag<'s>,
        root: bool,
    ) -> Result<(Element, Option<ByteString>), XmlError> {
        let attrs = std::mem::take(&mut self.attrs);
        let result = self.build_inner(st, &attrs, root);
        self.attrs = attrs;
        result
    }

    fn build_inner(
        &mut self,
        st: &StartTag<'s>,
        attrs: &[RawAttr<'s>],
        root: bool,
    ) -> Result<(Element, Option<ByteString>), XmlError> {
        // Same qualified name twice.
        for (k, a) in attrs.iter().enumerate() {
            if attrs[k + 1..].iter().any(|b| same(a.name.all, b.name.all)) {
                return fail(XmlError::DuplicateAttribute(
                    String::from_utf8_lossy(a.name.all).into_owned(),
                ));
            }
        }
        let mut n_plain = 0;
        let mut saved_default = None;
        for a in attrs {
            let Some(prefix) = xmlns_prefix(a.name.all) else {
                n_plain += 1;
                continue;
            };
            if a.name.all.len() > self.limits.max_name_len {
                return fail(XmlError::NameTooLong(self.limits.max_name_len));
            }
            let uri = if a.decode {
                self.attr_value(a)?
            } else {
                match ns::intern_bytes(a.value) {
                    Some(n) => n,
                    None => self.shared(a.value)?,
                }
            };
            if !prefix.is_empty() {
                check_name(prefix)?;
                if memchr(b':', prefix).is_some() {
                    return fail(XmlError::Syntax("malformed qualified name"));
                }
                if same(prefix, b"xmlns") {
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
            if same(prefix, b"xml") != same(uri.as_bytes(), ns::XML.as_bytes()) {
                return fail(XmlError::BadPrefix(
                    "the xml prefix and its namespace go only together".into(),
                ));
            }
            if same(uri.as_bytes(), b"http://www.w3.org/2000/xmlns/") {
                return fail(XmlError::BadPrefix(
                    "the xmlns namespace cannot be bound".into(),
                ));
            }
            if prefix.is_empty() {
                saved_default = Some(std::mem::replace(&mut self.default, uri.clone()));
            }
            let prefix = self.shared(prefix)?;
            self.scope.push(prefix, uri);
        }

        let (prefix, local) = self.split_qname(st.name)?;
        let ns = if prefix.is_empty() {
            self.default.clone()
        } else if same(prefix, b"xmlns") {
            return fail(XmlError::BadPrefix(
                "an element cannot use the xmlns prefix".into(),
            ));
        } else {
            match self.resolve(prefix) {
                Some(n) => n.clone(),
                None => {
                    return fail(XmlError::UndeclaredPrefix(
                        String::from_utf8_lossy(prefix).into_owned(),
                    ));
                }
            }
        };
        let mut el = Element {
            name: self.name_string(local)?,
            ns,
            attrs: Vec::with_capacity(n_plain + root as usize),
            children: Vec::new(),
        };
        let mut prefixed = false;
        for a in attrs {
            if xmlns_prefix(a.name.all).is_some() {
                continue;
            }
            let (p, l) = self.split_qname(a.name)?;
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
                name: self.name_string(l)?,
                value: self.attr_value(a)?,
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
        Ok((el, saved_default))
    }

    /// Adds a run of character data (`cdata`: from a CDATA section) to the pending text.
    /// `amp` and `bracket` say whether the run holds `&` or `]`.
    fn add_text(
        &self,
        acc: &mut Text<'s>,
        raw: &'s [u8],
        cdata: bool,
        amp: bool,
        bracket: bool,
    ) -> Result<(), XmlError> {
        if raw.is_empty() {
            return Ok(());
        }
        if bracket && memmem::find(raw, b"]]>").is_some() {
            return fail(XmlError::Syntax("']]>' is not allowed in text"));
        }
        let decode = amp || (self.has_cr && memchr(b'\r', raw).is_some());
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

    fn flush_text(&self, text: &mut Text<'s>, nodes: &mut Vec<Node>) -> Result<(), XmlError> {
        match std::mem::replace(text, Text::Empty) {
            Text::Empty => {}
            Text::Slice(s) => nodes.push(Node::Text(self.shared(s)?)),
            Text::Owned(s) => nodes.push(Node::Text(ByteString::from(s))),
        }
        Ok(())
    }

    /// Parses one element starting at byte `start`. Returns it and the offset just past it.
    pub(crate) fn parse_element(&mut self, start: usize) -> Result<(Element, usize), XmlError> {
        let mut frames = std::mem::take(&mut self.frames);
        let mut nodes = std::mem::take(&mut self.nodes);
        frames.clear();
        nodes.clear();
        let result = self.parse_element_with(start, &mut frames, &mut nodes);
        self.frames = frames;
        self.nodes = nodes;
        result
    }

    fn parse_element_with(
        &mut self,
        start: usize,
        frames: &mut Vec<Frame<'s>>,
        nodes: &mut Vec<Node>,
    ) -> Result<(Element, usize), XmlError> {
        let mut i: &'s [u8] = &self.bytes[start..];
        loop {
            let Some(&first) = i.first() else {
                return fail(XmlError::UnexpectedEof);
            };
            if first != b'<' {
                let Some(top) = frames.last_mut() else {
                    return fail(XmlError::Syntax("expected '<'"));
                };
                // One pass finds the end of the run and whether it needs a closer look.
                let (mut at, mut amp, mut bracket) = (0, false, false);
                let end = loop {
                    match memchr3(b'<', b'&', b']', &i[at..]) {
                        None => break i.len(),
                        Some(k) => match i[at + k] {
                            b'<' => break at + k,
                            b'&' => {
                                amp = true;
                                at += k + 1;
                            }
                            _ => {
                                bracket = true;
                                at += k + 1;
                            }
                        },
                    }
                };
                self.add_text(&mut top.text, &i[..end], false, amp, bracket)?;
                i = &i[end..];
                continue;
            }
            match i.get(1) {
                Some(b'/') => {
                    let (rest, name) = end_tag(i).map_err(unwrap_nom)?;
                    let Some(mut frame) = frames.pop() else {
                        return fail(XmlError::Syntax("end tag without a start tag"));
                    };
                    if !same(frame.qname, name) {
                        return fail(XmlError::MismatchedEndTag {
                            expected: String::from_utf8_lossy(frame.qname).into_owned(),
                            found: String::from_utf8_lossy(name).into_owned(),
                        });
                    }
                    self.flush_text(&mut frame.text, nodes)?;
                    frame.el.children = nodes.drain(frame.first_node..).collect();
                    self.scope.truncate(frame.scope_mark);
                    if let Some(d) = frame.saved_default {
                        self.default = d;
                    }
                    if frames.is_empty() {
                        return Ok((frame.el, self.offset(rest)));
                    }
                    nodes.push(Node::Element(frame.el));
                    i = rest;
                }
                Some(b'!') => {
                    if i.starts_with(b"<![CDATA[") {
                        let body = &i[9..];
                        let Some(end) = memmem::find(body, b"]]>") else {
                            return fail(XmlError::UnexpectedEof);
                        };
                        let Some(top) = frames.last_mut() else {
                            return fail(XmlError::Syntax("CDATA outside an element"));
                        };
                        self.add_text(&mut top.text, &body[..end], true, false, false)?;
                        i = &body[end + 3..];
                    } else {
                        return fail(markup_declaration_error(i));
                    }
                }
                Some(b'?') => return fail(pi_error(i)),
                Some(_) => {
                    if frames.len() >= self.limits.max_depth {
                        return fail(XmlError::TooDeep(self.limits.max_depth));
                    }
                    let scope_mark = self.scope.len();
                    let (rest, st) = self.start_tag(i).map_err(unwrap_nom)?;
                    let (el, saved_default) = self.build(&st, frames.is_empty())?;
                    if let Some(parent) = frames.last_mut() {
                        self.flush_text(&mut parent.text, nodes)?;
                    }
                    if st.empty {
                        self.scope.truncate(scope_mark);
                        if let Some(d) = saved_default {
                            self.default = d;
                        }
                        if frames.is_empty() {
                            return Ok((el, self.offset(rest)));
                        }
                        nodes.push(Node::Element(el));
                    } else {
                        frames.push(Frame {
                            el,
                            first_node: nodes.len(),
                            qname: st.name.all,
                            scope_mark,
                            saved_default,
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
    pub(crate) fn parse_open_tag(&mut self, start: usize) -> Result<OpenTag, XmlError> {
        let i = &self.bytes[start..];
        let mark = self.scope.len();
        let (_, st) = self.start_tag(i).map_err(unwrap_nom)?;
        if st.empty {
            return fail(XmlError::Syntax(
                "the stream header must not be an empty element",
            ));
        }
        let (el, _) = self.build(&st, false)?;
        let declared = self.scope.bindings[mark..].to_vec();
        Ok(OpenTag {
            element: el,
            qname: self.shared(st.name.all)?,
            declared,
        })
    }
}

/// For `xmlns` the empty prefix, for `xmlns:p` the prefix `p`, for other names `None`.
#[inline]
fn xmlns_prefix(name: &[u8]) -> Option<&[u8]> {
    if name.len() < 5 || name[0] != b'x' || !same(&name[..5], b"xmlns") {
        return None;
    }
    match name.get(5) {
        None => Some(&[]),
        Some(b':') => Some(&name[6..]),
        Some(_) => None,
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
        let (r, a) = attribute(r).map_err(unwrap_nom)?;
        let value = a.value;
        match a.name.all {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_keeps_the_allocation() {
        let v: Vec<Frame<'static>> = Vec::with_capacity(16);
        let ptr = v.as_ptr() as usize;
        let w: Vec<Frame<'_>> = recycle(v);
        assert_eq!(w.capacity(), 16);
        assert_eq!(w.as_ptr() as usize, ptr);
    }

    #[test]
    fn a_stanza_has_room_for_the_from_stamp() {
        let mut el = crate::Element::parse(
            "<message xmlns='jabber:client' to='b@x/r' type='chat'><body a='1'>hi</body></message>",
        )
        .expect("valid");
        assert_eq!(el.attrs.capacity(), 3);
        let body = el.get_child("body", "jabber:client").expect("body");
        assert_eq!(body.attrs.capacity(), 1);
        let before = el.attrs.as_ptr();
        el.set_attr("from", "a@x/r");
        assert_eq!(el.attrs.as_ptr(), before, "stamping from reallocated");
    }
}
