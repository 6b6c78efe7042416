//! Errors of the XML codec, each mapped to the RFC 6120 stream error a server sends for it.

use crate::stream_error::StreamErrorCondition;

/// Why bytes could not be read as a restricted-XML stream (RFC 6120 §11).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// `<!-- ... -->` (RFC 6120 §11.1).
    #[error("XML comments are not allowed in XMPP")]
    Comment,
    /// `<? ... ?>` other than the XML declaration at the start (RFC 6120 §11.1).
    #[error("processing instructions are not allowed in XMPP")]
    ProcessingInstruction,
    /// `<!DOCTYPE ...>` or another markup declaration (RFC 6120 §11.1).
    #[error("document type declarations are not allowed in XMPP")]
    Doctype,
    /// A reference to an entity other than the five predefined ones (RFC 6120 §11.1).
    #[error("reference to the undeclared entity &{0};")]
    UnknownEntity(String),
    /// A prefix used on an element or attribute without a declaration in scope.
    #[error("namespace prefix {0:?} is not declared")]
    UndeclaredPrefix(String),
    /// A reserved prefix or namespace misused (`xmlns:xml` bound elsewhere, `xmlns:xmlns`,
    /// an empty prefix binding, a prefixed `xmlns` element...).
    #[error("misuse of a reserved namespace prefix or name: {0}")]
    BadPrefix(String),
    /// The same attribute twice on one element, by name or by namespace and local name.
    #[error("attribute {0:?} appears twice")]
    DuplicateAttribute(String),
    /// An end tag whose name differs from its start tag.
    #[error("end tag </{found}> does not match start tag <{expected}>")]
    MismatchedEndTag {
        /// The start tag's qualified name.
        expected: String,
        /// The end tag's qualified name.
        found: String,
    },
    /// A character outside XML's `Char` production (controls, U+FFFE, U+FFFF).
    #[error("character U+{0:04X} is not allowed in XML")]
    IllegalChar(u32),
    /// A numeric character reference that is malformed or names an illegal character.
    #[error("invalid character reference &{0};")]
    BadCharRef(String),
    /// Bytes that are not UTF-8.
    #[error("the stream is not valid UTF-8")]
    InvalidUtf8,
    /// An XML declaration naming an encoding other than UTF-8.
    #[error("unsupported encoding {0:?}")]
    UnsupportedEncoding(String),
    /// An XML declaration anywhere but at the start of the stream, or a second one.
    #[error("the XML declaration is only allowed at the start of the stream")]
    MisplacedXmlDecl,
    /// Character data between stanzas that is not white space.
    #[error("text is not allowed between stanzas")]
    TextAtTopLevel,
    /// Any other well-formedness error; the text says what was expected.
    #[error("malformed XML: {0}")]
    Syntax(&'static str),
    /// The input ended inside an element (only for whole-document parsing).
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A stanza (or the stream header) longer than the limit, in bytes.
    #[error("stanza exceeds {0} bytes")]
    StanzaTooLarge(usize),
    /// Elements nested deeper than the limit.
    #[error("elements nested deeper than {0} levels")]
    TooDeep(usize),
    /// More attributes on one element than the limit.
    #[error("more than {0} attributes on one element")]
    TooManyAttributes(usize),
    /// A qualified name longer than the limit, in bytes.
    #[error("name longer than {0} bytes")]
    NameTooLong(usize),
}

impl XmlError {
    /// The stream error condition a server answers this error with.
    ///
    /// ```
    /// # use lithos_core::{XmlError, StreamErrorCondition};
    /// assert_eq!(XmlError::Comment.condition(), StreamErrorCondition::RestrictedXml);
    /// assert_eq!(XmlError::StanzaTooLarge(1).condition(), StreamErrorCondition::PolicyViolation);
    /// ```
    pub fn condition(&self) -> StreamErrorCondition {
        use StreamErrorCondition as C;
        match self {
            XmlError::Comment
            | XmlError::ProcessingInstruction
            | XmlError::Doctype
            | XmlError::UnknownEntity(_) => C::RestrictedXml,
            XmlError::UndeclaredPrefix(_) | XmlError::BadPrefix(_) => C::BadNamespacePrefix,
            XmlError::InvalidUtf8 | XmlError::UnsupportedEncoding(_) => C::UnsupportedEncoding,
            XmlError::TextAtTopLevel => C::BadFormat,
            XmlError::StanzaTooLarge(_)
            | XmlError::TooDeep(_)
            | XmlError::TooManyAttributes(_)
            | XmlError::NameTooLong(_) => C::PolicyViolation,
            XmlError::DuplicateAttribute(_)
            | XmlError::MismatchedEndTag { .. }
            | XmlError::IllegalChar(_)
            | XmlError::BadCharRef(_)
            | XmlError::MisplacedXmlDecl
            | XmlError::Syntax(_)
            | XmlError::UnexpectedEof => C::NotWellFormed,
        }
    }

    /// The stream error to send for this error, with the error's description as text.
    pub fn to_stream_error(&self) -> crate::StreamError {
        crate::StreamError::new(self.condition()).with_text(self.to_string())
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for XmlError {
    fn from_error_kind(_input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        XmlError::Syntax("malformed markup")
    }
    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// Size limits the parser enforces before it spends memory.
///
/// Going over one is an [`XmlError`] whose condition is `policy-violation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest stanza (or stream header), in bytes. Default 256 KiB.
    pub max_stanza_size: usize,
    /// Deepest element nesting inside one stanza (the stanza itself is level 1). Default 64.
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included. Default 64.
    pub max_attributes: usize,
    /// Longest qualified element or attribute name, in bytes. Default 256.
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_size: 256 * 1024,
            max_depth: 64,
            max_attributes: 64,
            max_name_len: 256,
        }
    }
}
