//! One BXMPP document → an element, a stream header, or the stream close.

use base64::Engine;
use bytes::Bytes;
use bytestring::ByteString;

use super::error::BxmppError;
use super::table::{Extension, NameKind, STREAM_CODE, Vocabulary};
use super::{BYTE_TYPE, BYTES_TYPE, DOC, ESCAPE, NOREPLACE, SPLITTER};
use crate::element::{Attribute, Element, Node};
use crate::ns;
use crate::stream::StreamHeader;
use crate::xml::chars::check_chars;

/// What a document holds.
#[derive(Debug)]
pub(crate) enum Document {
    Header(Box<StreamHeader>),
    Element(Element),
    Close,
}

/// Reads one document. `frame` runs from its opening 0xFF to its closing 0xFF inclusive.
pub(crate) struct Reader<'v> {
    vocab: &'v Vocabulary,
    frame: Bytes,
    pos: usize,
    content_ns: ByteString,
    max_depth: usize,
}

impl<'v> Reader<'v> {
    pub(crate) fn new(
        vocab: &'v Vocabulary,
        frame: Bytes,
        content_ns: ByteString,
        max_depth: usize,
    ) -> Reader<'v> {
        Reader {
            vocab,
            frame,
            pos: 1,
            content_ns,
            max_depth,
        }
    }

    /// The next content byte; the closing 0xFF is not content.
    #[inline]
    fn next(&mut self) -> Result<u8, BxmppError> {
        if self.pos + 1 >= self.frame.len() {
            return Err(BxmppError::Truncated);
        }
        let b = self.frame[self.pos];
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.frame.get(self.pos).copied()
    }

    pub(crate) fn document(mut self) -> Result<Document, BxmppError> {
        if self.frame.len() < 3 || self.frame[0] != DOC || self.frame[self.frame.len() - 1] != DOC {
            return Err(BxmppError::Truncated);
        }
        let doc = if self.peek() == Some(STREAM_CODE) {
            self.pos += 1;
            if self.pos == self.frame.len() - 1 {
                return Ok(Document::Close);
            }
            Document::Header(Box::new(self.header()?))
        } else {
            let ext = self.vocab.default_extension();
            let content_ns = self.content_ns.clone();
            Document::Element(self.element(ext, content_ns)?)
        };
        if self.pos != self.frame.len() - 1 {
            return Err(BxmppError::TrailingBytes);
        }
        Ok(doc)
    }

    fn keyword(ext: &Extension, code: u8) -> Result<&'static str, BxmppError> {
        ext.keyword(code).ok_or_else(|| BxmppError::UnknownCode {
            code,
            namespace: ext
                .namespace()
                .unwrap_or("the default extension")
                .to_string(),
        })
    }

    /// Reads a value up to its terminator (consuming a 0xFE; a 0xFF is the document end and is
    /// left for the caller).
    fn value(&mut self, ext: &Extension) -> Result<ByteString, BxmppError> {
        let start = self.pos;
        let mut escapes = false;
        let bytes: &[u8] = &self.frame;
        let mut i = start;
        let end = loop {
            let Some(k) = find_special(bytes, i) else {
                return Err(BxmppError::Truncated);
            };
            i = k;
            if bytes[i] == ESCAPE {
                escapes = true;
                i += 2;
            } else {
                break i;
            }
        };
        self.pos = end;
        if bytes[end] == SPLITTER {
            self.pos += 1;
        }
        let raw = &self.frame[start..end];
        let text = match raw {
            [] => return Err(BxmppError::EmptyValue),
            [code] => return Ok(ByteString::from_static(Self::keyword(ext, *code)?)),
            [BYTE_TYPE, rest @ ..] => {
                let data = unescape(rest);
                return match data.as_slice() {
                    [b] => Ok(ByteString::from(format!("$B{{{b}}}"))),
                    _ => Err(BxmppError::BadRawByte),
                };
            }
            [BYTES_TYPE, rest @ ..] => {
                let data = unescape(rest);
                let b64 = base64::engine::general_purpose::STANDARD.encode(data);
                return Ok(ByteString::from(format!("$B[{b64}]")));
            }
            // A one-character literal: shared static strings for ASCII, no allocation.
            [NOREPLACE, c] if c.is_ascii() => ByteString::from_static(ASCII[*c as usize]),
            [NOREPLACE, ..] if !escapes => ByteString::try_from(self.frame.slice(start + 1..end))
                .map_err(|_| BxmppError::InvalidUtf8)?,
            [NOREPLACE, rest @ ..] => text(unescape(rest))?,
            _ if !escapes => ByteString::try_from(self.frame.slice(start..end))
                .map_err(|_| BxmppError::InvalidUtf8)?,
            _ => text(unescape(raw))?,
        };
        // What XML cannot carry, BXMPP must not smuggle to an XML peer (RFC 6120 §11).
        check_chars(text.as_bytes()).map_err(|e| match e {
            crate::xml::XmlError::IllegalChar(c) => BxmppError::IllegalChar(c),
            _ => BxmppError::InvalidUtf8,
        })?;
        Ok(text)
    }

    /// Reads an element's name (and namespace code, if any): its extension, namespace and
    /// an element with that name and no content yet.
    fn start(
        &mut self,
        parent_ext: &'v Extension,
        parent_ns: &ByteString,
        depth: usize,
    ) -> Result<(&'v Extension, Element), BxmppError> {
        if depth > self.max_depth {
            return Err(BxmppError::TooDeep(self.max_depth));
        }
        let mut b = self.next()?;
        let (ext, ns) = if (0xF0..=0xF9).contains(&b) {
            let code = [b, self.next()?];
            let ext = self
                .vocab
                .extension_for_code(code)
                .ok_or(BxmppError::UnknownNamespaceCode(code))?;
            b = self.next()?;
            let ns = ext
                .namespace()
                .map(ByteString::from_static)
                .unwrap_or_default();
            (ext, ns)
        } else {
            (parent_ext, parent_ns.clone())
        };
        let keyword = Self::keyword(ext, b)?;
        let (ns, name) = match ext.name_kind(b) {
            NameKind::Plain => (ns, keyword),
            NameKind::Stream if ext.namespace().is_none() => (ns::STREAMS, &keyword[7..]),
            _ => return Err(ext.not_a_name(keyword)),
        };
        Ok((ext, Element::bare(ByteString::from_static(name), ns)))
    }

    /// Reads the root element of a document.
    fn element(
        &mut self,
        parent_ext: &'v Extension,
        parent_ns: ByteString,
    ) -> Result<Element, BxmppError> {
        let (ext, mut el) = self.start(parent_ext, &parent_ns, 1)?;
        self.content(ext, &mut el, 1)?;
        Ok(el)
    }

    /// Reads an element's attributes and children into `el`. Children are built in place,
    /// in vectors sized from the counts the format gives up front: no element is moved
    /// after it is pushed.
    fn content(
        &mut self,
        ext: &'v Extension,
        el: &mut Element,
        depth: usize,
    ) -> Result<(), BxmppError> {
        // An empty element written without a body: only as the last thing of the document.
        if self.peek() == Some(DOC) {
            return Ok(());
        }
        let n_attrs = self.next()? as usize;
        let child_byte = self.next()?;
        let n_children = (child_byte & 0x7F) as usize;
        let has_text = child_byte & 0x80 != 0;
        if n_attrs > 0 {
            el.attrs = Vec::with_capacity(n_attrs);
        }
        for _ in 0..n_attrs {
            let code = self.next()?;
            let k = Self::keyword(ext, code)?;
            let kind = ext.name_kind(code);
            let value = self.value(ext)?;
            let attr = match kind {
                // `xmlns` declares a namespace in XML: as an attribute it would let a binary
                // client change what an XML recipient reads.
                NameKind::Plain if k == "xmlns" => return Err(ext.not_a_name(k)),
                NameKind::Plain => Attribute::new(ByteString::from_static(k), value),
                NameKind::Xml => {
                    Attribute::with_ns(ns::XML, ByteString::from_static(&k[4..]), value)
                }
                _ => return Err(ext.not_a_name(k)),
            };
            // One value per attribute, as in XML: a second `from` must not slip past the
            // check of the first.
            if el
                .attrs
                .iter()
                .any(|a| a.name == attr.name && a.ns == attr.ns)
            {
                return Err(BxmppError::DuplicateAttribute(k.to_string()));
            }
            el.attrs.push(attr);
        }
        let nodes = n_children + has_text as usize;
        if nodes > 0 {
            el.children = Vec::with_capacity(nodes);
        }
        for _ in 0..n_children {
            let (child_ext, child) = self.start(ext, &el.ns, depth + 1)?;
            el.children.push(Node::Element(child));
            if let Some(Node::Element(child)) = el.children.last_mut() {
                self.content(child_ext, child, depth + 1)?;
            }
        }
        if has_text {
            el.children.push(Node::Text(self.value(ext)?));
        }
        Ok(())
    }

    fn header(&mut self) -> Result<StreamHeader, BxmppError> {
        let ext = self.vocab.default_extension();
        let n_attrs = self.next()? as usize;
        let children = self.next()?;
        if children != 0 {
            return Err(BxmppError::BadHeader);
        }
        let mut h = StreamHeader::new(self.content_ns.clone());
        h.version = None;
        for _ in 0..n_attrs {
            let k = Self::keyword(ext, self.next()?)?;
            let v = self.value(ext)?;
            match k {
                "xmlns:stream" => {
                    if v != ns::STREAMS {
                        return Err(BxmppError::BadHeader);
                    }
                }
                "to" => h.to = Some(v),
                "from" => h.from = Some(v),
                "id" => h.id = Some(v),
                "version" => h.version = Some(v),
                "xml:lang" => h.lang = Some(v),
                other => h
                    .extra
                    .push(Attribute::new(ByteString::from_static(other), v)),
            }
        }
        Ok(h)
    }
}

/// The index of the first byte at or after `from` that is ESCAPE, SPLITTER or DOC (the bytes
/// that end or interrupt a value), eight bytes at a time: values are short, where a vector
/// search costs more to set up than it saves.
#[inline]
fn find_special(bytes: &[u8], from: usize) -> Option<usize> {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const THREE: u64 = 0x0303_0303_0303_0303;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Per byte: (b & 0x7F) + 3 stays within the byte, and reaches 0x80 exactly when
        // b & 0x7F >= 0x7D; with b's own high bit, that is b >= 0xFD.
        let hits = ((x & LOW7) + THREE) & x & HIGH;
        if hits != 0 {
            return Some(i + hits.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| b >= ESCAPE)
        .map(|k| i + k)
}

/// Every ASCII character as a one-character static string.
static ASCII: [&str; 128] = {
    const ALL: &str = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\
\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \
!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f";
    let mut out = [""; 128];
    let mut i = 0;
    while i < 128 {
        out[i] = match ALL.split_at_checked(i) {
            Some((_, rest)) => match rest.split_at_checked(1) {
                Some((c, _)) => c,
                None => "",
            },
            None => "",
        };
        i += 1;
    }
    out
};

fn text(data: Vec<u8>) -> Result<ByteString, BxmppError> {
    String::from_utf8(data)
        .map(ByteString::from)
        .map_err(|_| BxmppError::InvalidUtf8)
}

/// Drops each 0xFD that precedes a byte in 0xFA..=0xFF.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == ESCAPE && data.get(i + 1).is_some_and(|&b| b >= 0xFA) {
            i += 1;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ASCII, find_special};
    use crate::binary::{BxmppError, Vocabulary, decode_document, encode_document};
    use crate::element::{Attribute, Element};

    fn message(attrs: &[(&str, &str)], body: &str) -> Element {
        let mut m = Element::builder("message", "jabber:client")
            .child(
                Element::builder("body", "jabber:client")
                    .text(body.to_string())
                    .build(),
            )
            .build();
        for (k, v) in attrs {
            m.attrs.push(Attribute::new(k.to_string(), v.to_string()));
        }
        m
    }

    /// Issue 14, defect 5: what the XML decoder refuses, the BXMPP decoder refuses too, so a
    /// binary client cannot hand an XML recipient a stanza it could not have sent as XML.
    #[test]
    fn refuses_what_xml_refuses() {
        let vocab = Vocabulary::global();
        let decode = |el: &Element| {
            let bytes = encode_document(&vocab, el).expect("the encoder writes it");
            decode_document(&vocab, bytes)
        };
        assert_eq!(
            decode(&message(
                &[
                    ("from", "mallory@example.com"),
                    ("from", "admin@example.com")
                ],
                "hi"
            )),
            Err(BxmppError::DuplicateAttribute("from".into()))
        );
        for bad in ["\u{1}", "a\u{0}b", "x\u{1b}[2J", "\u{fffe}", "\u{ffff}"] {
            let c = bad
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && *c != '[')
                .unwrap();
            assert_eq!(
                decode(&message(&[], bad)),
                Err(BxmppError::IllegalChar(c as u32)),
                "{bad:?}"
            );
            assert_eq!(
                decode(&message(&[("id", bad)], "ok")),
                Err(BxmppError::IllegalChar(c as u32)),
                "attribute {bad:?}"
            );
        }
        // What XML allows still passes: tabs, line breaks, any other character.
        let fine = message(&[("id", "a\tb")], "line\nnext\r\u{e9}\u{1F600}");
        assert_eq!(decode(&fine), Ok(fine));
    }

    #[test]
    fn duplicate_attribute_and_illegal_characters_are_not_well_formed() {
        use crate::StreamErrorCondition as C;
        assert_eq!(BxmppError::IllegalChar(1).condition(), C::NotWellFormed);
        assert_eq!(
            BxmppError::DuplicateAttribute("from".into()).condition(),
            C::NotWellFormed
        );
    }

    #[test]
    fn find_special_finds_the_first_byte_from_0xfd() {
        for len in 0..20 {
            for at in 0..len {
                for special in [0xFD, 0xFE, 0xFF] {
                    // Every other byte value below 0xFD around it, 0x80..=0xFC included.
                    let mut v: Vec<u8> = (0..len).map(|k| (0xFC - (k * 7) % 0xFD) as u8).collect();
                    v[at] = special;
                    for from in 0..=at {
                        assert_eq!(find_special(&v, from), Some(at), "{v:x?} from {from}");
                    }
                    assert_eq!(find_special(&v, at + 1), None);
                }
            }
            let plain: Vec<u8> = (0..len).map(|k| (0xFC - k) as u8).collect();
            assert_eq!(find_special(&plain, 0), None);
        }
        assert_eq!(find_special(&[1, 2], 5), None);
    }

    #[test]
    fn ascii_table() {
        for (i, s) in ASCII.iter().enumerate() {
            assert_eq!(s.as_bytes(), [i as u8]);
        }
    }
}
