//! Binary XMPP (BXMPP): Lithosphere's keyword-substitution encoding of XMPP, byte-compatible
//! with its Java implementation and its MCU library, for constrained links.
//!
//! Every element name, attribute name and namespace is replaced by a code from a keyword table
//! ([`Vocabulary`]); values that equal a keyword are replaced too; everything else is written
//! as escaped UTF-8. A document is `0xFF element 0xFF`:
//!
//! ```text
//! element   := [ns_hi ns_lo] name_code [ attr_count child_byte attribute* element* [value FE] ]
//! attribute := name_code value FE
//! value     := keyword_code | FB escaped_bytes | FA escaped_byte | [FC] escaped_utf8
//! ```
//!
//! `child_byte` holds the number of children (bits 0..6) and whether the element has text
//! (bit 7). A final `FE` becomes the closing `FF`. The stream header is element `0xFA` with
//! attributes; `FF FA FF` closes the stream. Raw binary values appear on the XML side as
//! `$B[base64]` (bytes) and `$B{n}` (one byte, 0..=255).
//!
//! Where Lithos departs from the Java original, it stays able to read everything the original
//! writes:
//! - An empty element that is not the last thing in its document is written with an explicit
//!   empty body (`00 00`); the original writes nothing, which its own decoder misreads.
//! - `$B{n}` round-trips for n ≥ 128 (the original reads it back as a signed byte and fails).
//! - Count bytes never take the flag values 0xFA..0xFF: at most 249 attributes, and 127
//!   children (121 with text); the original writes such counts and then cannot frame them.
//! - Negotiation namespaces (TLS, SASL, bind, session, stanza and stream errors) and the roster
//!   get extension codes in the 0xF0 block (`tables/lithos_core.props`), so a whole session can
//!   run in BXMPP.
//! - Basalt's disco#info table gives code 0x04 to both `name` and `feature`; a table with a
//!   code given twice is refused here. The disco crate registers `feature` as 0x04 (the value
//!   Java's `Properties` kept) and `name` under a free code (see its table).
//!
//! ```
//! use lithos_core::{Element, binary::{Vocabulary, encode_document, decode_document}};
//! let vocab = Vocabulary::linked().unwrap();
//! let iq = Element::builder("iq", "jabber:client").attr("type", "get").attr("id", "p1")
//!     .child(Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
//!     .build();
//! let bytes = encode_document(&vocab, &iq).unwrap();
//! assert_eq!(bytes.len(), 15);
//! assert_eq!(decode_document(&vocab, bytes).unwrap(), iq);
//! ```

mod codec;
mod decode;
mod encode;
mod error;
pub mod lan;
mod table;

pub use codec::{BxmppCodec, DEFAULT_MAX_FRAME};
pub use error::BxmppError;
pub use table::{CORE_TABLES, Extension, STREAM_CODE, TableError, TableRegistration, Vocabulary};

use bytes::{Bytes, BytesMut};

use crate::element::Element;
use crate::ns;

/// First and last byte of a document.
pub const DOC: u8 = 0xFF;
/// Ends an attribute value or a text.
pub const SPLITTER: u8 = 0xFE;
/// Precedes a data byte in 0xFA..=0xFF.
pub const ESCAPE: u8 = 0xFD;
/// Marks a one-byte literal (so it is not read as a keyword).
pub const NOREPLACE: u8 = 0xFC;
/// Prefix of a raw bytes value (`$B[base64]`).
pub const BYTES_TYPE: u8 = 0xFB;
/// Prefix of a raw byte value (`$B{n}`).
pub const BYTE_TYPE: u8 = 0xFA;

/// Encodes one top-level element (content namespace `jabber:client`) as a document.
pub fn encode_document(vocab: &Vocabulary, el: &Element) -> Result<Bytes, BxmppError> {
    let mut out = BytesMut::with_capacity(64);
    encode::Writer {
        vocab,
        content_ns: &ns::JABBER_CLIENT,
    }
    .document(&mut out, el)?;
    Ok(out.freeze())
}

/// Decodes one document (from its opening to its closing `0xFF`) holding an element.
pub fn decode_document(vocab: &Vocabulary, doc: impl Into<Bytes>) -> Result<Element, BxmppError> {
    let depth = crate::Limits::default().max_depth;
    match decode::Reader::new(vocab, doc.into(), ns::JABBER_CLIENT, depth).document()? {
        decode::Document::Element(e) => Ok(e),
        _ => Err(BxmppError::BadHeader),
    }
}
