//! Errors of the BXMPP codec.

use crate::stream_error::StreamErrorCondition;

/// Why an element cannot be written as BXMPP, or bytes cannot be read as BXMPP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BxmppError {
    /// A name (or value) that must be a keyword has no code in the extension it belongs to.
    #[error("keyword {keyword:?} has no code in {namespace}")]
    UnknownKeyword {
        /// The keyword.
        keyword: String,
        /// The extension's namespace.
        namespace: String,
    },
    /// An element's namespace has no 2-byte code.
    #[error("namespace {0:?} has no BXMPP code")]
    NoNamespaceCode(String),
    /// An attribute in a namespace other than `xml:` (BXMPP names attributes by keyword only).
    #[error("attribute {name:?} in namespace {namespace:?} cannot be written as BXMPP")]
    NamespacedAttribute {
        /// The attribute's namespace.
        namespace: String,
        /// Its local name.
        name: String,
    },
    /// An empty attribute value or text: the format has no way to write one.
    #[error("empty values cannot be written as BXMPP")]
    EmptyValue,
    /// More attributes than a count byte can say.
    #[error("{0} attributes is more than BXMPP can carry on one element (249)")]
    TooManyAttributes(usize),
    /// More children than a count byte can say.
    #[error("{0} child elements is more than BXMPP can carry on one element (127, 121 with text)")]
    TooManyChildren(usize),
    /// A 1-byte code with no keyword in the current extension.
    #[error("code 0x{code:02x} has no keyword in {namespace}")]
    UnknownCode {
        /// The code.
        code: u8,
        /// The extension's namespace.
        namespace: String,
    },
    /// A code read where a name belongs (element or attribute) whose keyword is not one: a
    /// value such as `jabber:client`, or a prefixed form the position does not allow. Also
    /// returned when writing an element or attribute whose name is not an XML name.
    #[error("keyword {keyword:?} of {namespace} is not an element or attribute name there")]
    NotAName {
        /// The keyword.
        keyword: String,
        /// The extension's namespace.
        namespace: String,
    },
    /// A 2-byte namespace code no table defines.
    #[error("namespace code {0:02x?} is not registered")]
    UnknownNamespaceCode([u8; 2]),
    /// The document ended early.
    #[error("the document ends early")]
    Truncated,
    /// Bytes after the element, before the document end.
    #[error("bytes after the end of the element")]
    TrailingBytes,
    /// A raw-byte value (`0xFA`) that does not hold exactly one byte.
    #[error("a raw byte value must hold one byte")]
    BadRawByte,
    /// A text value that is not UTF-8.
    #[error("a text value is not UTF-8")]
    InvalidUtf8,
    /// A stream header with children or a wrong `xmlns:stream`.
    #[error("malformed stream header")]
    BadHeader,
    /// A document that does not start with 0xFF.
    #[error("a document must start with 0xFF, found 0x{0:02x}")]
    BadFrameStart(u8),
    /// A document longer than the frame limit.
    #[error("document exceeds {0} bytes")]
    FrameTooLarge(usize),
    /// Elements nested deeper than the limit.
    #[error("elements nested deeper than {0} levels")]
    TooDeep(usize),
    /// The input ended inside a document.
    #[error("the stream ended inside a document")]
    UnexpectedEof,
    /// A value with a character XML forbids (a control character, U+FFFE, U+FFFF).
    #[error("character U+{0:04X} is not allowed in XML, nor in BXMPP")]
    IllegalChar(u32),
    /// The same attribute twice on one element.
    #[error("attribute {0:?} appears twice")]
    DuplicateAttribute(String),
}

impl BxmppError {
    /// The stream error a server answers a malformed input with.
    pub fn condition(&self) -> StreamErrorCondition {
        use StreamErrorCondition as C;
        match self {
            BxmppError::FrameTooLarge(_) | BxmppError::TooDeep(_) => C::PolicyViolation,
            BxmppError::InvalidUtf8 => C::UnsupportedEncoding,
            BxmppError::BadFrameStart(_)
            | BxmppError::Truncated
            | BxmppError::UnexpectedEof
            // As the XML decoder answers the same faults.
            | BxmppError::IllegalChar(_)
            | BxmppError::DuplicateAttribute(_) => C::NotWellFormed,
            _ => C::BadFormat,
        }
    }
}
