//! Element → BXMPP bytes.

use std::borrow::Cow;

use base64::Engine;
use bytes::{BufMut, BytesMut};

use super::error::BxmppError;
use super::table::{Extension, NameKind, STREAM_CODE, Vocabulary};
use super::{BYTE_TYPE, BYTES_TYPE, DOC, ESCAPE, NOREPLACE, SPLITTER};
use crate::element::{Element, Node};
use crate::ns;
use crate::stream::StreamHeader;

/// Largest attribute count and child byte written: a count byte of 0xFA..=0xFF would read as a
/// flag byte (the Java encoder writes such counts anyway, and its own framing then breaks).
const MAX_COUNT_BYTE: usize = 0xF9;

/// Appends `data` escaped: every byte in 0xFA..=0xFF is preceded by 0xFD.
fn put_escaped(out: &mut BytesMut, data: &[u8]) {
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b >= 0xFA {
            out.put_slice(&data[start..i]);
            out.put_u8(ESCAPE);
            start = i;
        }
    }
    out.put_slice(&data[start..]);
}

/// The length `data` has once escaped.
fn escaped_len(data: &[u8]) -> usize {
    data.len() + data.iter().filter(|&&b| b >= 0xFA).count()
}

/// `$B[base64]` → the bytes, when the text is exactly that with canonical base64.
pub(crate) fn raw_bytes(value: &str) -> Option<Vec<u8>> {
    let inner = value.strip_prefix("$B[")?.strip_suffix(']')?;
    if inner.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(inner).ok()
}

/// `$B{n}` → the byte, when the text is exactly that with a canonical decimal 0..=255.
pub(crate) fn raw_byte(value: &str) -> Option<u8> {
    let inner = value.strip_prefix("$B{")?.strip_suffix('}')?;
    let n: u8 = inner.parse().ok()?;
    (n.to_string() == inner).then_some(n)
}

/// Writes a value (attribute value or text), without its terminator.
fn put_value(out: &mut BytesMut, value: &str, ext: &Extension) -> Result<(), BxmppError> {
    if value.is_empty() {
        return Err(BxmppError::EmptyValue);
    }
    if let Some(code) = ext.code_of(value) {
        out.put_u8(code);
        return Ok(());
    }
    if value.as_bytes()[0] == b'$' {
        if let Some(data) = raw_bytes(value) {
            out.put_u8(BYTES_TYPE);
            // A single byte that needs no escape would read as a keyword without the prefix;
            // with it, FB b is unambiguous (the Java encoder's special case).
            put_escaped(out, &data);
            return Ok(());
        }
        if let Some(b) = raw_byte(value) {
            out.put_u8(BYTE_TYPE);
            put_escaped(out, &[b]);
            return Ok(());
        }
    }
    let bytes = value.as_bytes();
    if escaped_len(bytes) == 1 {
        // One byte alone would be read as a keyword code.
        out.put_u8(NOREPLACE);
    }
    put_escaped(out, bytes);
    Ok(())
}

/// The keyword an element name is written as, and the extension it is looked up in; `None`
/// for the namespace code when the element stays in the current extension.
struct Placement<'v, 'e> {
    ext: &'v Extension,
    ns_code: Option<[u8; 2]>,
    keyword: Cow<'e, str>,
}

pub(crate) struct Writer<'v> {
    pub(crate) vocab: &'v Vocabulary,
    /// The stream's content namespace: elements in it at the top use the default extension.
    pub(crate) content_ns: &'v str,
}

impl<'v> Writer<'v> {
    fn place<'e>(
        &self,
        el: &'e Element,
        parent_ns: Option<&str>,
        parent_ext: &'v Extension,
    ) -> Result<Placement<'v, 'e>, BxmppError> {
        let ns = el.ns();
        if parent_ns == Some(ns) {
            // Inside a `stream:` element of the default extension, a child in the streams
            // namespace is again a `stream:` keyword when the table has one.
            if ns == &*ns::STREAMS && std::ptr::eq(parent_ext, self.vocab.default_extension()) {
                let prefixed = format!("stream:{}", el.name());
                if parent_ext.code_of(&prefixed).is_some() {
                    return Ok(Placement {
                        ext: parent_ext,
                        ns_code: None,
                        keyword: Cow::Owned(prefixed),
                    });
                }
            }
            return Ok(Placement {
                ext: parent_ext,
                ns_code: None,
                keyword: Cow::Borrowed(el.name()),
            });
        }
        if parent_ns.is_none() && ns == self.content_ns {
            return Ok(Placement {
                ext: self.vocab.default_extension(),
                ns_code: None,
                keyword: Cow::Borrowed(el.name()),
            });
        }
        if let Some(ext) = self.vocab.extension_for_ns(ns) {
            return Ok(Placement {
                ext,
                ns_code: ext.code(),
                keyword: Cow::Borrowed(el.name()),
            });
        }
        // `stream:features` and `stream:error` are keywords of the default extension.
        if ns == &*ns::STREAMS && std::ptr::eq(parent_ext, self.vocab.default_extension()) {
            return Ok(Placement {
                ext: parent_ext,
                ns_code: None,
                keyword: Cow::Owned(format!("stream:{}", el.name())),
            });
        }
        Err(BxmppError::NoNamespaceCode(ns.to_string()))
    }

    /// The code of an element (`element`) or attribute name: a keyword that reads back as
    /// the same name.
    fn name_code(ext: &Extension, keyword: &str, element: bool) -> Result<u8, BxmppError> {
        let code = Self::code(ext, keyword)?;
        match (ext.name_kind(code), element) {
            (NameKind::Plain, _) | (NameKind::Xml, false) => Ok(code),
            (NameKind::Stream, true) if ext.namespace().is_none() => Ok(code),
            _ => Err(ext.not_a_name(keyword)),
        }
    }

    fn code(ext: &Extension, keyword: &str) -> Result<u8, BxmppError> {
        ext.code_of(keyword)
            .ok_or_else(|| BxmppError::UnknownKeyword {
                keyword: keyword.to_string(),
                namespace: ext
                    .namespace()
                    .unwrap_or("the default extension")
                    .to_string(),
            })
    }

    /// Writes one element. `last` says whether nothing follows it in the document (then an
    /// empty element gets no body, as Lithosphere writes it; elsewhere it gets `00 00`).
    fn element(
        &self,
        out: &mut BytesMut,
        el: &Element,
        parent_ns: Option<&str>,
        parent_ext: &'v Extension,
        last: bool,
    ) -> Result<(), BxmppError> {
        let p = self.place(el, parent_ns, parent_ext)?;
        if let Some(c) = p.ns_code {
            out.put_slice(&c);
        }
        out.put_u8(Self::name_code(p.ext, &p.keyword, true)?);

        let n_children = el.child_count();
        // BXMPP has one text per element, after the children.
        let mut texts = el.nodes().iter().filter_map(Node::as_text);
        let text: Cow<'_, str> = match (texts.next(), texts.next()) {
            (None, _) => Cow::Borrowed(""),
            (Some(t), None) => Cow::Borrowed(t),
            (Some(a), Some(b)) => {
                let mut s = String::from(a);
                s.push_str(b);
                for t in texts {
                    s.push_str(t);
                }
                Cow::Owned(s)
            }
        };
        // White space that sits before a child element is formatting (pretty-printed XML),
        // not content.
        let mut text = text;
        if n_children > 0 && text.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
            let last_child = el
                .nodes()
                .iter()
                .rposition(|n| matches!(n, Node::Element(_)));
            let first_text = el.nodes().iter().position(|n| matches!(n, Node::Text(_)));
            if matches!((first_text, last_child), (Some(t), Some(c)) if t < c) {
                text = Cow::Borrowed("");
            }
        }
        let attrs = el.attrs();
        if attrs.is_empty() && n_children == 0 && text.is_empty() {
            if !last {
                out.put_slice(&[0, 0]);
            }
            return Ok(());
        }
        if attrs.len() > MAX_COUNT_BYTE {
            return Err(BxmppError::TooManyAttributes(attrs.len()));
        }
        let child_byte = n_children | if text.is_empty() { 0 } else { 0x80 };
        if n_children > 0x7F || child_byte > MAX_COUNT_BYTE {
            return Err(BxmppError::TooManyChildren(n_children));
        }
        out.put_u8(attrs.len() as u8);
        out.put_u8(child_byte as u8);
        for a in attrs {
            let name = if a.ns().is_empty() {
                Cow::Borrowed(a.name())
            } else if a.ns() == &*ns::XML {
                if a.name() == "lang" {
                    Cow::Borrowed("xml:lang")
                } else {
                    Cow::Owned(format!("xml:{}", a.name()))
                }
            } else {
                return Err(BxmppError::NamespacedAttribute {
                    namespace: a.ns().to_string(),
                    name: a.name().to_string(),
                });
            };
            out.put_u8(Self::name_code(p.ext, &name, false)?);
            put_value(out, a.value(), p.ext)?;
            out.put_u8(SPLITTER);
        }
        let ns = el.ns();
        for (i, c) in el.children().enumerate() {
            let child_last = last && text.is_empty() && i + 1 == n_children;
            self.element(out, c, Some(ns), p.ext, child_last)?;
        }
        if !text.is_empty() {
            put_value(out, &text, p.ext)?;
            out.put_u8(SPLITTER);
        }
        Ok(())
    }

    /// Writes a whole document for a top-level element. On error nothing is appended.
    pub(crate) fn document(&self, out: &mut BytesMut, el: &Element) -> Result<(), BxmppError> {
        let start = out.len();
        out.put_u8(DOC);
        let r = self.element(out, el, None, self.vocab.default_extension(), true);
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        close(out);
        Ok(())
    }

    /// Writes the stream header: element 0xFA with `xmlns:stream` first, then the other
    /// attributes in the order from, to, id, xml:lang, version.
    pub(crate) fn header(&self, out: &mut BytesMut, h: &StreamHeader) -> Result<(), BxmppError> {
        let start = out.len();
        let r = self.header_inner(out, h);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn header_inner(&self, out: &mut BytesMut, h: &StreamHeader) -> Result<(), BxmppError> {
        let ext = self.vocab.default_extension();
        let streams = ns::STREAMS;
        let mut attrs: Vec<(&str, &str)> = vec![("xmlns:stream", &streams)];
        for (k, v) in [
            ("from", &h.from),
            ("to", &h.to),
            ("id", &h.id),
            ("xml:lang", &h.lang),
            ("version", &h.version),
        ] {
            if let Some(v) = v {
                attrs.push((k, v));
            }
        }
        out.put_u8(DOC);
        out.put_u8(STREAM_CODE);
        out.put_u8(attrs.len() as u8);
        out.put_u8(0);
        for (k, v) in attrs {
            out.put_u8(Self::code(ext, k)?);
            put_value(out, v, ext)?;
            out.put_u8(SPLITTER);
        }
        close(out);
        Ok(())
    }
}

/// The closing rule: a final splitter becomes the document end, else one is appended.
fn close(out: &mut BytesMut) {
    match out.last_mut() {
        Some(b) if *b == SPLITTER => *b = DOC,
        _ => out.put_u8(DOC),
    }
}

/// `FF FA FF`.
pub(crate) fn stream_close(out: &mut BytesMut) {
    out.put_slice(&[DOC, STREAM_CODE, DOC]);
}
