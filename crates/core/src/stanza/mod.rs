//! The typed stanza model: [`Message`], [`Presence`], [`Iq`], and stanza errors.
//!
//! Conversions from [`Element`] validate what RFC 6120 and RFC 6121 require (addresses are
//! JIDs, types are known, an iq of type get or set carries exactly one payload and an id, an
//! error stanza carries an error...) and fail with an [`InvalidStanza`] that says which stanza
//! error to answer with. Conversions back to elements are infallible.
//!
//! ```
//! use lithos_core::{Element, stanza::{Stanza, Iq, IqPayload}};
//! let el = Element::parse(
//!     r#"<iq xmlns="jabber:client" type="get" id="p1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>"#,
//! ).unwrap();
//! let Stanza::Iq(iq) = Stanza::try_from(el).unwrap() else { panic!() };
//! assert_eq!(iq.payload_ns(), Some("urn:xmpp:ping"));
//! let reply = iq.result_reply(None);
//! assert_eq!(reply.id, "p1");
//! assert!(matches!(reply.payload, IqPayload::Result(None)));
//! ```

mod error;
mod iq;
mod message;
mod presence;

pub use error::{DefinedCondition, ErrorType, StanzaError, StanzaErrorParseError};
pub use iq::{Iq, IqPayload};
pub use message::{Message, MessageType};
pub use presence::{Presence, PresenceType, Show};

use bytestring::ByteString;

use crate::element::{Attribute, Element};
use crate::jid::{Jid, JidError};
use crate::ns;

/// Why an element is not a valid stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStanza {
    /// Not `message`, `presence` or `iq` in a content namespace.
    #[error("<{name}/> in {ns:?} is not a stanza")]
    NotAStanza {
        /// Element name.
        name: String,
        /// Element namespace.
        ns: String,
    },
    /// `to` or `from` is not a valid JID.
    #[error("the {attribute} address is malformed: {error}")]
    BadAddress {
        /// `to` or `from`.
        attribute: &'static str,
        /// Why.
        error: JidError,
    },
    /// The `type` attribute has a value the stanza kind does not define.
    #[error("unknown stanza type {0:?}")]
    BadType(String),
    /// An iq without an `id`.
    #[error("an iq must have an id")]
    MissingId,
    /// An iq of type get/set without exactly one child, or a result with more than one.
    #[error("an iq of type {type_} must carry {expected}, found {found} child elements")]
    PayloadCount {
        /// The iq type.
        type_: &'static str,
        /// What was expected.
        expected: &'static str,
        /// How many child elements there were.
        found: usize,
    },
    /// A stanza of type error without a valid `<error/>` child.
    #[error("error stanza without a valid error element: {0}")]
    BadError(StanzaErrorParseError),
    /// A presence `<priority/>` that is not an integer in -128..=127, or an unknown `<show/>`.
    #[error("invalid presence child: {0}")]
    BadPresenceChild(&'static str),
}

impl InvalidStanza {
    /// The stanza error to answer this with: `jid-malformed` for bad addresses, else
    /// `bad-request`.
    pub fn to_stanza_error(&self) -> StanzaError {
        let cond = match self {
            InvalidStanza::BadAddress { .. } => DefinedCondition::JidMalformed,
            _ => DefinedCondition::BadRequest,
        };
        StanzaError::new(cond).with_text(self.to_string())
    }
}

/// Any of the three stanza kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    /// A message.
    Message(Message),
    /// A presence.
    Presence(Presence),
    /// An info/query.
    Iq(Iq),
}

impl TryFrom<Element> for Stanza {
    type Error = InvalidStanza;
    fn try_from(el: Element) -> Result<Stanza, InvalidStanza> {
        if !is_content_ns(el.ns()) {
            return Err(not_a_stanza(&el));
        }
        match el.name() {
            "message" => Message::try_from(el).map(Stanza::Message),
            "presence" => Presence::try_from(el).map(Stanza::Presence),
            "iq" => Iq::try_from(el).map(Stanza::Iq),
            _ => Err(not_a_stanza(&el)),
        }
    }
}

impl From<Stanza> for Element {
    fn from(s: Stanza) -> Element {
        match s {
            Stanza::Message(m) => m.into(),
            Stanza::Presence(p) => p.into(),
            Stanza::Iq(i) => i.into(),
        }
    }
}

/// True for the namespaces stanzas live in (`jabber:client`, `jabber:server`,
/// `jabber:component:accept`).
pub fn is_content_ns(n: &str) -> bool {
    n == &*ns::JABBER_CLIENT || n == &*ns::JABBER_SERVER || n == &*ns::JABBER_COMPONENT_ACCEPT
}

/// True when the element is a message, presence or iq in a content namespace.
pub fn is_stanza(el: &Element) -> bool {
    is_content_ns(el.ns()) && matches!(el.name(), "message" | "presence" | "iq")
}

/// True for an `<iq/>` that is not itself an answer: its type is neither `result` nor
/// `error`. That is a get or a set, or a malformed iq whose handler must answer it with an
/// error. A cheap look at the element, for hooks that decide whether a stanza is theirs
/// before parsing it.
///
/// ```
/// use lithos_core::{Element, stanza::iq_awaiting_answer};
/// assert!(iq_awaiting_answer(&Element::parse(r#"<iq xmlns="jabber:client" type="set" id="1"/>"#).unwrap()));
/// assert!(!iq_awaiting_answer(&Element::parse(r#"<iq xmlns="jabber:client" type="result" id="1"/>"#).unwrap()));
/// assert!(!iq_awaiting_answer(&Element::parse(r#"<message xmlns="jabber:client"/>"#).unwrap()));
/// ```
pub fn iq_awaiting_answer(el: &Element) -> bool {
    el.name() == "iq" && !matches!(el.attr("type"), Some("result" | "error"))
}

/// Why an `<iq/>` element is not a valid iq (RFC 6120 §8.2.3), if it is not: it must have an
/// `id`, a `type` of get, set, result or error, and a get or set exactly one payload. The
/// answer to such an iq is `bad-request`.
///
/// ```
/// use lithos_core::{Element, stanza::iq_shape_error};
/// let iq = |xml: &str| Element::parse(xml).unwrap();
/// assert_eq!(iq_shape_error(&iq(r#"<iq xmlns="jabber:client" type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq>"#)), None);
/// assert!(iq_shape_error(&iq(r#"<iq xmlns="jabber:client" type="get"><ping xmlns="urn:xmpp:ping"/></iq>"#)).is_some());
/// assert!(iq_shape_error(&iq(r#"<iq xmlns="jabber:client" type="poke" id="1"/>"#)).is_some());
/// assert!(iq_shape_error(&iq(r#"<iq xmlns="jabber:client" type="set" id="1"/>"#)).is_some());
/// assert!(iq_shape_error(&iq(r#"<iq xmlns="jabber:client" type="result" id="1"/>"#)).is_none());
/// ```
pub fn iq_shape_error(el: &Element) -> Option<&'static str> {
    if el.attr("id").is_none_or(str::is_empty) {
        return Some("an iq needs an id");
    }
    match el.attr("type") {
        Some("get" | "set") => {
            let mut payloads = el.children();
            match (payloads.next(), payloads.next()) {
                (Some(_), None) => None,
                (None, _) => Some("a get or set iq needs a payload"),
                (Some(_), Some(_)) => Some("a get or set iq carries exactly one payload"),
            }
        }
        Some("result" | "error") => None,
        Some(_) => Some("the type of an iq is get, set, result or error"),
        None => Some("an iq needs a type"),
    }
}

/// The payload of an iq that must be a set: `bad-request` with `refusal` for another type,
/// and for a set without exactly one payload (which [`iq_shape_error`] already refuses on a
/// stream).
///
/// ```
/// use lithos_core::{Element, stanza::set_payload};
/// let iq = |xml: &str| Element::parse(xml).unwrap();
/// let set = iq(r#"<iq xmlns="jabber:client" type="set" id="1"><ping xmlns="urn:xmpp:ping"/></iq>"#);
/// assert_eq!(set_payload(&set, "a set").unwrap().name(), "ping");
/// let get = iq(r#"<iq xmlns="jabber:client" type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq>"#);
/// assert!(set_payload(&get, "a set").is_err());
/// ```
// The error is the answer to the request, built only when it is refused.
#[allow(clippy::result_large_err)]
pub fn set_payload<'a>(iq: &'a Element, refusal: &'static str) -> Result<&'a Element, StanzaError> {
    let bad = |why: &'static str| StanzaError::explained(DefinedCondition::BadRequest, why);
    if iq.attr("type") != Some("set") {
        return Err(bad(refusal));
    }
    let mut payloads = iq.children();
    match (payloads.next(), payloads.next()) {
        (Some(p), None) => Ok(p),
        _ => Err(bad("a get or set iq carries exactly one payload")),
    }
}

fn not_a_stanza(el: &Element) -> InvalidStanza {
    InvalidStanza::NotAStanza {
        name: el.name().into(),
        ns: el.ns().into(),
    }
}

/// The attributes every stanza kind shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Common {
    pub to: Option<Jid>,
    pub from: Option<Jid>,
    pub id: Option<ByteString>,
    pub lang: Option<ByteString>,
    pub type_: Option<ByteString>,
}

/// Takes the shared attributes off an element, validating the addresses.
pub(crate) fn take_common(el: &mut Element) -> Result<Common, InvalidStanza> {
    let mut c = Common::default();
    let mut rest: Vec<Attribute> = Vec::new();
    for a in std::mem::take(&mut el.attrs) {
        if a.ns.is_empty() {
            match &*a.name {
                "to" => {
                    c.to = Some(Jid::parse_shared(a.value).map_err(|error| {
                        InvalidStanza::BadAddress {
                            attribute: "to",
                            error,
                        }
                    })?)
                }
                "from" => {
                    c.from = Some(Jid::parse_shared(a.value).map_err(|error| {
                        InvalidStanza::BadAddress {
                            attribute: "from",
                            error,
                        }
                    })?)
                }
                "id" => c.id = Some(a.value),
                "type" => c.type_ = Some(a.value),
                _ => rest.push(a),
            }
        } else if a.ns == ns::XML && &*a.name == "lang" {
            c.lang = Some(a.value);
        } else {
            rest.push(a);
        }
    }
    el.attrs = rest;
    Ok(c)
}

/// Starts the element for a stanza with the shared attributes set.
pub(crate) fn element_with_common(
    name: &'static str,
    to: Option<&Jid>,
    from: Option<&Jid>,
    id: Option<&ByteString>,
    type_: Option<&'static str>,
    lang: Option<&ByteString>,
) -> Element {
    let mut el = Element::bare(ByteString::from_static(name), ns::JABBER_CLIENT);
    let attrs = &mut el.attrs;
    let mut push =
        |n: &'static str, v: ByteString| attrs.push(Attribute::new(ByteString::from_static(n), v));
    if let Some(t) = type_ {
        push("type", ByteString::from_static(t));
    }
    if let Some(id) = id {
        push("id", id.clone());
    }
    if let Some(to) = to {
        push("to", to.as_shared().clone());
    }
    if let Some(from) = from {
        push("from", from.as_shared().clone());
    }
    if let Some(l) = lang {
        el.attrs.push(Attribute::with_ns(
            ns::XML,
            ByteString::from_static("lang"),
            l.clone(),
        ));
    }
    el
}

/// Finds and parses the `<error/>` child of an error stanza, removing it from the children.
pub(crate) fn take_error(el: &mut Element) -> Result<StanzaError, InvalidStanza> {
    let content_ns = el.ns_shared().clone();
    let e = el
        .remove_child("error", &content_ns)
        .ok_or(InvalidStanza::BadError(StanzaErrorParseError::NotError))?;
    StanzaError::from_element(&e).map_err(InvalidStanza::BadError)
}

/// The error reply to a stanza (RFC 6120 §8.3.1): `to` and `from` swapped, `type="error"`, the
/// original children kept, the error appended. `None` if the stanza is itself an error, since
/// an error must never be answered with an error.
///
/// ```
/// # use lithos_core::{Element, stanza::{error_reply, StanzaError, DefinedCondition}};
/// let msg = Element::parse(r#"<message xmlns="jabber:client" from="a@x/r" to="b@x" id="1"><body>hi</body></message>"#).unwrap();
/// let reply = error_reply(&msg, &StanzaError::new(DefinedCondition::ServiceUnavailable)).unwrap();
/// assert_eq!(reply.attr("to"), Some("a@x/r"));
/// assert_eq!(reply.attr("from"), Some("b@x"));
/// assert_eq!(reply.attr("type"), Some("error"));
/// assert!(error_reply(&reply, &StanzaError::new(DefinedCondition::BadRequest)).is_none());
/// ```
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Option<Element> {
    if stanza.attr("type") == Some("error") {
        return None;
    }
    let mut out = Element::bare(stanza.name.clone(), stanza.ns.clone());
    for a in &stanza.attrs {
        let name = if a.ns.is_empty() {
            match &*a.name {
                "to" => "from",
                "from" => "to",
                "type" => continue,
                _ => "",
            }
        } else {
            ""
        };
        let mut a = a.clone();
        if !name.is_empty() {
            a.name = ByteString::from_static(name);
        }
        out.attrs.push(a);
    }
    out.attrs.push(Attribute::new(
        ByteString::from_static("type"),
        ByteString::from_static("error"),
    ));
    out.children = stanza.children.clone();
    out.append_child(error.to_element_ns(stanza.ns.clone()));
    Some(out)
}

/// As [`error_reply`], without the stanza's payload: only the `<error/>`. For requests that
/// may carry a secret (a password in XEP-0077), which an error must not echo.
///
/// ```
/// # use lithos_core::{Element, stanza::{error_reply_without_payload, StanzaError, DefinedCondition}};
/// let iq = Element::parse(r#"<iq xmlns="jabber:client" type="set" id="r1"><query xmlns="jabber:iq:register"><password>s3cret</password></query></iq>"#).unwrap();
/// let reply = error_reply_without_payload(&iq, &StanzaError::new(DefinedCondition::NotAllowed)).unwrap();
/// assert_eq!(reply.children().count(), 1);
/// assert!(!reply.to_string().contains("s3cret"));
/// ```
pub fn error_reply_without_payload(stanza: &Element, error: &StanzaError) -> Option<Element> {
    if stanza.attr("type") == Some("error") {
        return None;
    }
    let mut head = Element::bare(stanza.name.clone(), stanza.ns.clone());
    head.attrs = stanza.attrs.clone();
    error_reply(&head, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_stanza() {
        let e = Element::bare("features", ns::STREAMS);
        assert!(matches!(
            Stanza::try_from(e),
            Err(InvalidStanza::NotAStanza { .. })
        ));
        let e = Element::bare("foo", ns::JABBER_CLIENT);
        assert!(matches!(
            Stanza::try_from(e),
            Err(InvalidStanza::NotAStanza { .. })
        ));
    }

    #[test]
    fn bad_addresses_map_to_jid_malformed() {
        let e = Element::parse(r#"<message xmlns="jabber:client" to="a@b@c"/>"#).unwrap();
        let err = Stanza::try_from(e).unwrap_err();
        assert!(matches!(
            err,
            InvalidStanza::BadAddress {
                attribute: "to",
                ..
            }
        ));
        assert_eq!(
            err.to_stanza_error().condition,
            DefinedCondition::JidMalformed
        );
    }
}
