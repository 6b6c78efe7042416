//! The XML side of the codec: a streaming parser for the restricted XML of RFC 6120 §11,
//! written with nom.
//!
//! - [`XmlDecoder`] reads a stream: the header as one event, each top-level element as one
//!   complete [`Element`], white space between them as keep-alives, the close.
//! - [`parse_document`] reads one standalone element.
//!
//! What RFC 6120 forbids is refused with a typed [`XmlError`] that maps to the stream error a
//! server must send: comments, processing instructions, DTDs and undeclared entities
//! (`restricted-xml`), bad prefixes (`bad-namespace-prefix`), encodings other than UTF-8
//! (`unsupported-encoding`), and every well-formedness error (`not-well-formed`). [`Limits`]
//! bound the memory a peer can make the decoder hold (`policy-violation`).

pub(crate) mod chars;
mod decoder;
mod error;
mod intern;
mod scanner;
mod tree;

pub use decoder::XmlDecoder;
pub use error::{Limits, XmlError};
pub use tree::ParseContext;

use bytestring::ByteString;

use crate::element::Element;

/// Parses a standalone document holding one element (an optional XML declaration and white
/// space may surround it).
///
/// ```
/// # use lithos_core::{xml::{parse_document, Limits}, XmlError};
/// let e = parse_document("<?xml version='1.0'?>\n<a xmlns='urn:a'/>\n", &Limits::default()).unwrap();
/// assert_eq!(e.ns(), "urn:a");
/// assert_eq!(parse_document("<a><!-- no --></a>", &Limits::default()), Err(XmlError::Comment));
/// ```
pub fn parse_document(xml: &str, limits: &Limits) -> Result<Element, XmlError> {
    if xml.len() > limits.max_stanza_size {
        return Err(XmlError::StanzaTooLarge(limits.max_stanza_size));
    }
    let src = ByteString::from(xml);
    let has_cr = chars::check_chars(src.as_bytes())?;
    let b = src.as_bytes();
    let mut i = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if b[i..].starts_with(b"<?") {
        i += tree::xml_decl(&b[i..])?;
    }
    i += ws_len(&b[i..]);
    let ctx = ParseContext::empty();
    let mut p = tree::TreeParser::new(&src, limits, has_cr, tree::ParserState::new(&ctx));
    let (el, end) = p.parse_element(i)?;
    let rest = &b[end..];
    let tail = ws_len(rest);
    if tail != rest.len() {
        let rest = &rest[tail..];
        return Err(match rest.get(1) {
            Some(b'!') => tree::markup_declaration_error(rest),
            Some(b'?') => tree::pi_error(rest),
            _ => XmlError::Syntax("content after the root element"),
        });
    }
    Ok(el)
}

fn ws_len(b: &[u8]) -> usize {
    b.iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(b.len())
}
