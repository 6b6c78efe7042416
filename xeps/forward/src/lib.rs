//! # lithos-forward
//!
//! XEP-0297 (Stanza Forwarding): `<forwarded xmlns='urn:xmpp:forward:0'>` holds a copy of a
//! message, optionally with the XEP-0203 `<delay/>` saying when it was first sent. Message
//! carbons (`lithos-carbons`) and message archives carry messages in it.
//!
//! ```
//! use lithos_core::{Element, Payload};
//! use lithos_forward::Forwarded;
//! let m = Element::parse("<message xmlns='jabber:client' to='a@x' type='chat'><body>hi</body></message>")?;
//! let f = Forwarded::of(m.clone()).into_element();
//! assert_eq!(Forwarded::from_element(f)?.message, m);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lithos_core::Element;

/// The namespace.
pub const NS: &str = "urn:xmpp:forward:0";

// Code `F0 1A`; the message inside uses `jabber:client`'s nested code (`F0 07`) and the
// delay stamp `urn:xmpp:delay`'s (`F0 14`).
lithos_core::extension! { table_file: "forward.props" }

/// A forwarded message.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "forwarded", validate = Forwarded::check)]
pub struct Forwarded {
    /// When the message was first sent (`<delay xmlns='urn:xmpp:delay'/>`), if known.
    #[payload(element, name = "delay")]
    pub delay: Option<Element>,
    /// The message, as it was.
    #[payload(element, name = "message")]
    pub message: Element,
}

impl Forwarded {
    /// `message` forwarded, without a delay stamp.
    pub fn of(message: Element) -> Forwarded {
        Forwarded {
            delay: None,
            message,
        }
    }

    fn check(&self) -> Result<(), lithos_core::PayloadError> {
        let ok = self.message.ns() == &*lithos_core::ns::JABBER_CLIENT
            && self
                .delay
                .as_ref()
                .is_none_or(|d| d.ns() == "urn:xmpp:delay");
        if ok {
            Ok(())
        } else {
            Err(lithos_core::PayloadError::Invalid(
                "<forwarded/> holds a jabber:client <message/> and at most a urn:xmpp:delay stamp"
                    .into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    #[test]
    fn strict_reading() {
        let el = |x: &str| Element::parse(x).unwrap();
        let ok = el(
            "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/><message xmlns='jabber:client' from='a@x/r'><body>b</body></message></forwarded>",
        );
        let f = Forwarded::from_element(ok.clone()).unwrap();
        assert_eq!(
            f.delay.as_ref().and_then(|d| d.attr("stamp")),
            Some("2010-07-10T23:08:25Z")
        );
        assert_eq!(f.into_element(), ok);
        for bad in [
            "<forwarded xmlns='urn:xmpp:forward:0'/>",
            "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='urn:other'/></forwarded>",
            "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/><message xmlns='jabber:client'/></forwarded>",
            "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:other'/><message xmlns='jabber:client'/></forwarded>",
        ] {
            assert!(Forwarded::from_element(el(bad)).is_err(), "{bad}");
        }
    }
}
