//! The [`Payload`] trait: typed extension payloads, implemented by every `xeps/` crate.
//!
//! ```
//! use lithos_core::{Element, Payload, PayloadError};
//!
//! /// XEP-0199 ping.
//! #[derive(Debug, PartialEq)]
//! struct Ping;
//!
//! impl Payload for Ping {
//!     const NS: &'static str = "urn:xmpp:ping";
//!     const NAME: &'static str = "ping";
//!     fn from_element(el: Element) -> Result<Self, PayloadError> {
//!         PayloadError::check_name::<Self>(&el)?;
//!         Ok(Ping)
//!     }
//!     fn into_element(self) -> Element {
//!         Element::bare(Self::NAME, Self::NS)
//!     }
//! }
//!
//! let el = Ping.into_element();
//! assert!(Ping::matches(&el));
//! assert_eq!(Ping::from_element(el), Ok(Ping));
//! assert!(Ping::from_element(Element::bare("pong", "urn:xmpp:ping")).is_err());
//! ```

use crate::element::Element;
use crate::stanza::{DefinedCondition, StanzaError};

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
    /// Anything else, described.
    #[error("{0}")]
    Invalid(String),
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
