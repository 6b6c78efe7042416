//! The [`Payload`] trait: typed extension payloads, implemented by every `xeps/` crate, and
//! usually derived.
//!
//! ```
//! use lithos_core::{AttrValue, Element, Payload, PayloadError};
//!
//! /// A delivery guarantee, written as its ordinal.
//! #[derive(Debug, Clone, Copy, PartialEq, AttrValue)]
//! enum Qos {
//!     #[payload(value = "0")]
//!     AtMostOnce,
//!     #[payload(value = "1")]
//!     AtLeastOnce,
//! }
//!
//! /// `<report xmlns='urn:example' qos='1'><any-data/></report>`
//! #[derive(Debug, PartialEq, Payload)]
//! #[payload(ns = "urn:example", name = "report")]
//! struct Report {
//!     #[payload(attr, default = Qos::AtMostOnce)]
//!     qos: Qos,
//!     #[payload(attr = "report-id")]
//!     report_id: Option<String>,
//!     #[payload(element)]
//!     data: Element,
//! }
//!
//! let el = Element::parse("<report xmlns='urn:example' qos='1'><t xmlns='urn:t'/></report>")?;
//! let r = Report::from_element(el.clone())?;
//! assert_eq!((r.qos, r.report_id.as_deref(), r.data.name()), (Qos::AtLeastOnce, None, "t"));
//! assert_eq!(r.into_element(), el);
//! let bad = Element::parse("<report xmlns='urn:example' qos='7'><t/></report>")?;
//! assert!(matches!(Report::from_element(bad), Err(PayloadError::InvalidAttribute { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## `#[derive(Payload)]`
//!
//! On the struct: `#[payload(ns = EXPR, name = "element")]` (the name defaults to the type's
//! name in kebab case), and optionally `validate = path` (a `fn(&Self) -> Result<(),
//! PayloadError>` run after reading, for rules across fields), `ignore_unknown_attrs` and
//! `ignore_unknown_children` (also ignores text) where the specification lets unknown content
//! through. Without them, reading is strict: any attribute, child or non-whitespace text the
//! type does not define is an error, and so is a second occurrence of what may appear once.
//!
//! On each field, what it reads (a field of type `Option<T>` is optional, `Vec<T>`
//! repeated, `T` required):
//!
//! | Attribute | Reads | Field type |
//! |---|---|---|
//! | `attr` or `attr = "name"` | an attribute in no namespace (named after the field, in kebab case, by default) | `T: AttrValue` |
//! | `text` | the element's text (absent text reads as `""`, or `None` for an `Option`) | `T: AttrValue` |
//! | `text_child = "name"` | the text of a child in the element's namespace that holds only text | `T: AttrValue` |
//! | `flag = "name"` | an empty child in the element's namespace, present or not | `bool` |
//! | `child` | a child read by its own `Payload` implementation | `T: Payload` |
//! | `element`, or `element, name = "n"` | a child element kept as it is: any one (once per type), or the one with that name | [`Element`] |
//!
//! With `attr`, `text` and `text_child`: `default` or `default = EXPR` for an absent value
//! (with `skip_default`, a value equal to it is not written),
//! `with = module` to read and write through `module::parse(&str) -> Option<T>` and
//! `module::format(T) -> String` (such as [`crate::datetime`]), and `check = path` for a
//! `fn(&T) -> bool` the value must pass. Errors name the element and what is wrong
//! ([`PayloadError`]), and a handler answers them with `?`: they convert to `bad-request`.
//!
//! `from_element` moves the children out of the element it reads (nothing is cloned), and
//! `into_element` writes attributes, then children in field order, then text.

use crate::element::Element;
use crate::stanza::{DefinedCondition, StanzaError};

pub mod value;

pub use value::AttrValue;

/// A typed payload: an element with a fixed name and namespace, converted both ways.
pub trait Payload: Sized {
    /// The payload's namespace.
    const NS: &'static str;
    /// The payload's element name.
    const NAME: &'static str;

    /// Reads the payload, validating it.
    fn from_element(el: Element) -> Result<Self, PayloadError>;

    /// Writes the payload.
    fn into_element(self) -> Element;

    /// True when `el` has this payload's name and namespace.
    fn matches(el: &Element) -> bool {
        el.is(Self::NAME, Self::NS)
    }
}

/// Why an element is not a valid payload of some type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The element has another name or namespace.
    #[error("expected <{expected_name} xmlns='{expected_ns}'/>, found <{name} xmlns='{ns}'/>")]
    WrongElement {
        /// Expected name.
        expected_name: &'static str,
        /// Expected namespace.
        expected_ns: &'static str,
        /// Found name.
        name: String,
        /// Found namespace.
        ns: String,
    },
    /// A required attribute is missing.
    #[error("<{element}/> lacks the attribute {attribute}")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute has a value the payload does not allow.
    #[error("<{element}/> has an invalid {attribute}: {value:?}")]
    InvalidAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
        /// The value found.
        value: String,
    },
    /// A required child element is missing.
    #[error("<{element}/> lacks the child <{child}/>")]
    MissingChild {
        /// The element.
        element: &'static str,
        /// The child.
        child: &'static str,
    },
    /// An attribute the payload does not define.
    #[error("<{element}/> takes no attribute {attribute}")]
    UnknownAttribute {
        /// The element.
        element: &'static str,
        /// The attribute found (`{namespace}name` when namespaced).
        attribute: String,
    },
    /// A child element the payload does not define.
    #[error("<{element}/> takes no child <{child} xmlns='{ns}'/>")]
    UnknownChild {
        /// The element.
        element: &'static str,
        /// The child's name.
        child: String,
        /// The child's namespace.
        ns: String,
    },
    /// A child element that may appear once appears again.
    #[error("<{element}/> holds more than one <{child}/>")]
    DuplicateChild {
        /// The element.
        element: &'static str,
        /// The child.
        child: &'static str,
    },
    /// Text where the payload defines none (whitespace is always allowed).
    #[error("<{element}/> holds text it does not define")]
    UnexpectedText {
        /// The element.
        element: &'static str,
    },
    /// Text content the payload cannot read.
    #[error("<{element}/> has invalid text: {value:?}")]
    InvalidText {
        /// The element.
        element: &'static str,
        /// The text found.
        value: String,
    },
    /// Anything else, described.
    #[error("{0}")]
    Invalid(String),
}

impl From<PayloadError> for StanzaError {
    /// `bad-request`, with the error's text: what a handler answers an invalid payload with.
    fn from(e: PayloadError) -> StanzaError {
        e.to_stanza_error()
    }
}

impl PayloadError {
    /// Checks that `el` has `P`'s name and namespace.
    pub fn check_name<P: Payload>(el: &Element) -> Result<(), PayloadError> {
        if P::matches(el) {
            Ok(())
        } else {
            Err(PayloadError::WrongElement {
                expected_name: P::NAME,
                expected_ns: P::NS,
                name: el.name().into(),
                ns: el.ns().into(),
            })
        }
    }

    /// The stanza error to answer an invalid payload with (`bad-request`, with this text).
    pub fn to_stanza_error(&self) -> StanzaError {
        StanzaError::new(DefinedCondition::BadRequest).with_text(self.to_string())
    }
}

/// What `#[derive(Payload)]` expands to calls these; not an API of its own.
#[doc(hidden)]
pub mod derive_support {
    use bytestring::ByteString;

    use super::{AttrValue, PayloadError};
    use crate::element::{Attribute, Element, Node};

    /// True when `s` holds only XML whitespace.
    #[inline]
    pub fn is_whitespace(s: &str) -> bool {
        s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    }

    /// An unknown attribute, named `{ns}name` when namespaced.
    #[cold]
    pub fn unknown_attribute(element: &'static str, a: &Attribute) -> PayloadError {
        let attribute = if a.ns().is_empty() {
            a.name().to_string()
        } else {
            format!("{{{}}}{}", a.ns(), a.name())
        };
        PayloadError::UnknownAttribute { element, attribute }
    }

    /// An unknown child element.
    #[cold]
    pub fn unknown_child(element: &'static str, c: &Element) -> PayloadError {
        PayloadError::UnknownChild {
            element,
            child: c.name().to_string(),
            ns: c.ns().to_string(),
        }
    }

    /// A value that does not read.
    #[cold]
    pub fn invalid_attribute(
        element: &'static str,
        attribute: &'static str,
        value: &str,
    ) -> PayloadError {
        PayloadError::InvalidAttribute {
            element,
            attribute,
            value: value.to_string(),
        }
    }

    /// Text that does not read.
    #[cold]
    pub fn invalid_text(element: &'static str, value: &str) -> PayloadError {
        PayloadError::InvalidText {
            element,
            value: value.to_string(),
        }
    }

    /// Reads an attribute's value through [`AttrValue`].
    #[inline]
    pub fn attr<T: AttrValue>(
        element: &'static str,
        attribute: &'static str,
        v: &ByteString,
    ) -> Result<T, PayloadError> {
        T::parse_attr(v).ok_or_else(|| invalid_attribute(element, attribute, v))
    }

    /// Reads an attribute's value through a `with` module's `parse`.
    #[inline]
    pub fn attr_with<T>(
        element: &'static str,
        attribute: &'static str,
        v: &ByteString,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, PayloadError> {
        parse(v).ok_or_else(|| invalid_attribute(element, attribute, v))
    }

    /// Reads text through [`AttrValue`].
    #[inline]
    pub fn text<T: AttrValue>(element: &'static str, v: &ByteString) -> Result<T, PayloadError> {
        T::parse_attr(v).ok_or_else(|| invalid_text(element, v))
    }

    /// Reads text through a `with` module's `parse`.
    #[inline]
    pub fn text_with<T>(
        element: &'static str,
        v: &ByteString,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, PayloadError> {
        parse(v).ok_or_else(|| invalid_text(element, v))
    }

    /// The text of a child that may hold text only: its nodes merged, an error for a child
    /// element inside it or for any attribute.
    pub fn text_only(mut el: Element, name: &'static str) -> Result<ByteString, PayloadError> {
        if let Some(a) = el.attrs().first() {
            return Err(unknown_attribute(name, a));
        }
        let mut nodes = el.take_nodes().into_iter();
        let mut out = match nodes.next() {
            None => return Ok(ByteString::new()),
            Some(Node::Text(t)) => t,
            Some(Node::Element(c)) => return Err(unknown_child(name, &c)),
        };
        for n in nodes {
            match n {
                Node::Text(t) => {
                    let mut s = String::from(&*out);
                    s.push_str(&t);
                    out = ByteString::from(s);
                }
                Node::Element(c) => return Err(unknown_child(name, &c)),
            }
        }
        Ok(out)
    }

    /// A flag child: an empty element, present or not.
    pub fn flag(el: &Element, name: &'static str) -> Result<(), PayloadError> {
        if let Some(a) = el.attrs().first() {
            return Err(unknown_attribute(name, a));
        }
        match el.nodes().iter().find(|n| match n {
            Node::Text(t) => !is_whitespace(t),
            Node::Element(_) => true,
        }) {
            None => Ok(()),
            Some(Node::Element(c)) => Err(unknown_child(name, c)),
            Some(Node::Text(_)) => Err(PayloadError::UnexpectedText { element: name }),
        }
    }

    /// Appends `t` to the text gathered so far.
    #[inline]
    pub fn push_text(acc: &mut Option<ByteString>, t: ByteString) {
        *acc = Some(match acc.take() {
            None => t,
            Some(prev) => {
                let mut s = String::from(&*prev);
                s.push_str(&t);
                ByteString::from(s)
            }
        });
    }
}
