//! `<presence/>` (RFC 6121 §4).

use bytestring::ByteString;

use super::{
    InvalidStanza, StanzaError, element_with_common, is_content_ns, take_common, take_error,
};
use crate::element::Element;
use crate::jid::Jid;
use crate::ns;

/// The `type` of a presence; `Available` when the attribute is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PresenceType {
    /// Available (no `type` attribute).
    #[default]
    Available,
    /// An error about a presence previously sent.
    Error,
    /// A request for the recipient's current presence (sent by servers).
    Probe,
    /// A subscription request.
    Subscribe,
    /// A subscription approval.
    Subscribed,
    /// No longer available.
    Unavailable,
    /// Ending a subscription.
    Unsubscribe,
    /// Cancelling or denying a subscription.
    Unsubscribed,
}

impl PresenceType {
    /// The attribute value (`None` for available).
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            PresenceType::Available => return None,
            PresenceType::Error => "error",
            PresenceType::Probe => "probe",
            PresenceType::Subscribe => "subscribe",
            PresenceType::Subscribed => "subscribed",
            PresenceType::Unavailable => "unavailable",
            PresenceType::Unsubscribe => "unsubscribe",
            PresenceType::Unsubscribed => "unsubscribed",
        })
    }
    fn parse(s: &str) -> Option<PresenceType> {
        Some(match s {
            "error" => PresenceType::Error,
            "probe" => PresenceType::Probe,
            "subscribe" => PresenceType::Subscribe,
            "subscribed" => PresenceType::Subscribed,
            "unavailable" => PresenceType::Unavailable,
            "unsubscribe" => PresenceType::Unsubscribe,
            "unsubscribed" => PresenceType::Unsubscribed,
            _ => return None,
        })
    }
    /// True for the four subscription types.
    pub fn is_subscription(self) -> bool {
        matches!(
            self,
            PresenceType::Subscribe
                | PresenceType::Subscribed
                | PresenceType::Unsubscribe
                | PresenceType::Unsubscribed
        )
    }
}

/// The `<show/>` of an available presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Show {
    /// Temporarily away.
    Away,
    /// Free to chat.
    Chat,
    /// Do not disturb.
    Dnd,
    /// Away for a long time.
    Xa,
}

impl Show {
    /// The element text.
    pub fn as_str(self) -> &'static str {
        match self {
            Show::Away => "away",
            Show::Chat => "chat",
            Show::Dnd => "dnd",
            Show::Xa => "xa",
        }
    }
    fn parse(s: &str) -> Option<Show> {
        Some(match s {
            "away" => Show::Away,
            "chat" => Show::Chat,
            "dnd" => Show::Dnd,
            "xa" => Show::Xa,
            _ => return None,
        })
    }
}

/// A presence stanza. `show` and `priority` are parsed (routing needs the priority); `status`
/// and extensions stay elements in [`payloads`](Presence::payloads).
///
/// ```
/// use lithos_core::{Element, stanza::{Presence, Show}};
/// let el = Element::parse(r#"<presence xmlns="jabber:client"><show>dnd</show><priority>-1</priority><status>busy</status></presence>"#).unwrap();
/// let p = Presence::try_from(el).unwrap();
/// assert_eq!(p.show, Some(Show::Dnd));
/// assert_eq!(p.priority, -1);
/// assert_eq!(p.status().as_deref(), Some("busy"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// Recipient (absent for broadcast presence).
    pub to: Option<Jid>,
    /// Sender.
    pub from: Option<Jid>,
    /// Stanza id.
    pub id: Option<ByteString>,
    /// `xml:lang`.
    pub lang: Option<ByteString>,
    /// Presence type.
    pub type_: PresenceType,
    /// Availability detail.
    pub show: Option<Show>,
    /// Priority, -128..=127 (0 when absent).
    pub priority: i8,
    /// For `type="error"`: the error.
    pub error: Option<StanzaError>,
    /// Other child elements (status, caps, ...).
    pub payloads: Vec<Element>,
}

impl Presence {
    /// An available presence.
    pub fn available() -> Presence {
        Presence::default()
    }
    /// A presence of the given type to `to`.
    pub fn of_type(type_: PresenceType, to: Option<Jid>) -> Presence {
        Presence {
            type_,
            to,
            ..Presence::default()
        }
    }
    /// The text of the first `<status/>`, if any.
    pub fn status(&self) -> Option<String> {
        self.payloads
            .iter()
            .find(|p| p.name() == "status" && is_content_ns(p.ns()))
            .map(Element::text)
    }
}

impl TryFrom<Element> for Presence {
    type Error = InvalidStanza;
    fn try_from(mut el: Element) -> Result<Presence, InvalidStanza> {
        let c = take_common(&mut el)?;
        let type_ = match c.type_.as_deref() {
            None => PresenceType::Available,
            Some(t) => PresenceType::parse(t).ok_or_else(|| InvalidStanza::BadType(t.into()))?,
        };
        let error = if type_ == PresenceType::Error {
            Some(take_error(&mut el)?)
        } else {
            None
        };
        let content_ns = el.ns_shared().clone();
        let mut p = Presence {
            to: c.to,
            from: c.from,
            id: c.id,
            lang: c.lang,
            type_,
            error,
            ..Presence::default()
        };
        for child in el.children() {
            if child.ns() == &*content_ns && child.name() == "show" {
                p.show = Some(
                    Show::parse(child.text().trim())
                        .ok_or(InvalidStanza::BadPresenceChild("unknown <show/> value"))?,
                );
            } else if child.ns() == &*content_ns && child.name() == "priority" {
                p.priority = child.text().trim().parse().map_err(|_| {
                    InvalidStanza::BadPresenceChild("<priority/> is not in -128..=127")
                })?;
            } else {
                p.payloads.push(child.clone());
            }
        }
        Ok(p)
    }
}

impl From<Presence> for Element {
    fn from(p: Presence) -> Element {
        let mut el = element_with_common(
            "presence",
            p.to.as_ref(),
            p.from.as_ref(),
            p.id.as_ref(),
            p.type_.as_str(),
            p.lang.as_ref(),
        );
        if let Some(s) = p.show {
            el.append_child(
                Element::builder("show", ns::JABBER_CLIENT)
                    .text(ByteString::from_static(s.as_str()))
                    .build(),
            );
        }
        if p.priority != 0 {
            el.append_child(
                Element::builder("priority", ns::JABBER_CLIENT)
                    .text(p.priority.to_string())
                    .build(),
            );
        }
        for c in p.payloads {
            el.append_child(c);
        }
        if let Some(e) = p.error {
            el.append_child(e.to_element());
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_round_trip() {
        for t in [
            "probe",
            "subscribe",
            "subscribed",
            "unavailable",
            "unsubscribe",
            "unsubscribed",
        ] {
            let el = Element::parse(&format!(
                r#"<presence xmlns="jabber:client" type="{t}" to="a@b"/>"#
            ))
            .unwrap();
            let p = Presence::try_from(el.clone()).unwrap();
            assert_eq!(p.type_.as_str(), Some(t));
            assert_eq!(Element::from(p), el);
        }
        let el = Element::parse(
            r#"<presence xmlns="jabber:client"><show>away</show><priority>5</priority><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="v"/></presence>"#,
        )
        .unwrap();
        let p = Presence::try_from(el.clone()).unwrap();
        assert_eq!(
            (p.show, p.priority, p.payloads.len()),
            (Some(Show::Away), 5, 1)
        );
        assert_eq!(Element::from(p), el);
    }

    #[test]
    fn invalid_children() {
        for bad in [
            "<priority>200</priority>",
            "<priority>x</priority>",
            "<show>sleeping</show>",
        ] {
            let el = Element::parse(&format!(
                r#"<presence xmlns="jabber:client">{bad}</presence>"#
            ))
            .unwrap();
            assert!(
                matches!(
                    Presence::try_from(el),
                    Err(InvalidStanza::BadPresenceChild(_))
                ),
                "{bad}"
            );
        }
        let el = Element::parse(r#"<presence xmlns="jabber:client" type="away"/>"#).unwrap();
        assert_eq!(
            Presence::try_from(el),
            Err(InvalidStanza::BadType("away".into()))
        );
    }
}
