//! # lithos-sm
//!
//! XEP-0198 (Stream Management, `urn:xmpp:sm:3`): acknowledgements between the two ends of a
//! stream, and resumption of a session whose connection broke. This crate holds what both
//! ends share: the elements ([`Enable`], [`Enabled`], [`Resume`], [`Resumed`], [`Failed`],
//! [`Request`], [`Ack`]) and the counting ([`Unacked`] for what a side sent, [`Handled`] for
//! what it received). The server's kernel (`lithos-server`) and `lithos-client` run the
//! protocol with them: unlike an iq payload, these elements sit on the stream between
//! stanzas, so they are read by the connection itself, not by a module. Their BXMPP codes
//! (`F0 19`) are in `lithos-core`'s tables, with the other stream features'.
//!
//! ```
//! use lithos_core::Payload;
//! use lithos_sm::{Ack, Unacked};
//!
//! let mut sent = Unacked::new();
//! for n in 0..3 {
//!     sent.push(n);
//! }
//! // The peer says it handled two of them: they are forgotten, the third is kept to resend.
//! assert_eq!(sent.ack(2), Ok(2));
//! assert_eq!(sent.iter().copied().collect::<Vec<_>>(), [2]);
//! assert_eq!(Ack { h: 2 }.into_element().to_xml(), "<a xmlns=\"urn:xmpp:sm:3\" h=\"2\"/>");
//! ```

mod counting;

pub use counting::{Handled, TooHigh, Unacked};

use lithos_core::Element;
use lithos_core::stanza::DefinedCondition;

lithos_core::extension! {}

/// The stream management namespace (version 3).
pub const NS: &str = "urn:xmpp:sm:3";

/// `<sm/>`: the stream feature, offered after authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "sm", ignore_unknown_children)]
pub struct Feature;

/// `<enable/>`: the client turns stream management on (after binding a resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "enable")]
pub struct Enable {
    /// Whether the session should be resumable.
    #[payload(attr, default, skip_default)]
    pub resume: bool,
    /// The longest time, in seconds, the client would like the session kept for resumption.
    #[payload(attr)]
    pub max: Option<u32>,
}

/// `<enabled/>`: the server's answer to [`Enable`].
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "enabled")]
pub struct Enabled {
    /// The session's resumption id (when resumable).
    #[payload(attr)]
    pub id: Option<String>,
    /// Whether the session is resumable.
    #[payload(attr, default, skip_default)]
    pub resume: bool,
    /// How long, in seconds, the server keeps the session after its connection breaks.
    #[payload(attr)]
    pub max: Option<u32>,
    /// Where the client should reconnect to resume (when not this host).
    #[payload(attr)]
    pub location: Option<String>,
}

/// `<resume/>`: a new connection asks for a broken session back (after authentication, in
/// place of binding).
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "resume")]
pub struct Resume {
    /// The id from [`Enabled`].
    #[payload(attr)]
    pub previd: String,
    /// How many stanzas the client handled from the server.
    #[payload(attr)]
    pub h: u32,
}

/// `<resumed/>`: the session is back.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "resumed")]
pub struct Resumed {
    /// The id resumed.
    #[payload(attr)]
    pub previd: String,
    /// How many stanzas the server handled from the client.
    #[payload(attr)]
    pub h: u32,
}

/// `<failed/>`: enabling or resuming was refused; holds a stanza error condition.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "failed", ignore_unknown_children)]
pub struct Failed {
    /// On a failed resumption, how many stanzas the server had handled from the client in
    /// the old session (so the client knows which of its own to send again).
    #[payload(attr)]
    pub h: Option<u32>,
    /// The condition, in `urn:ietf:params:xml:ns:xmpp-stanzas`.
    #[payload(element)]
    pub condition: Option<Element>,
}

impl Failed {
    /// A failure with this condition.
    pub fn new(condition: DefinedCondition, h: Option<u32>) -> Failed {
        Failed {
            h,
            condition: Some(Element::bare(
                condition.as_str(),
                lithos_core::ns::XMPP_STANZAS.clone(),
            )),
        }
    }

    /// The condition, when it is one RFC 6120 defines.
    pub fn defined_condition(&self) -> Option<DefinedCondition> {
        let c = self.condition.as_ref()?;
        (c.ns() == &*lithos_core::ns::XMPP_STANZAS)
            .then(|| DefinedCondition::from_name(c.name()))
            .flatten()
    }
}

/// `<r/>`: asks the other side how many stanzas it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "r")]
pub struct Request;

/// `<a/>`: how many stanzas this side handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "a")]
pub struct Ack {
    /// The count, modulo 2^32.
    #[payload(attr)]
    pub h: u32,
}

/// `<handled-count-too-high/>`: the application condition of the stream error sent to a peer
/// that acknowledged more stanzas than were sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "handled-count-too-high")]
pub struct HandledCountTooHigh {
    /// The count the peer claimed.
    #[payload(attr)]
    pub h: u32,
    /// How many were sent.
    #[payload(attr = "send-count")]
    pub send_count: u32,
}

impl From<TooHigh> for HandledCountTooHigh {
    fn from(e: TooHigh) -> Self {
        HandledCountTooHigh {
            h: e.h,
            send_count: e.sent,
        }
    }
}

/// True for the elements of this namespace.
pub fn is_sm(el: &Element) -> bool {
    el.ns() == NS
}

/// True when `el` is a stanza stream management counts (message, presence or iq, in the
/// stream's content namespace): everything else on the stream (these elements, stream
/// errors) is not counted.
pub fn is_counted(el: &Element) -> bool {
    lithos_core::stanza::is_stanza(el)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    fn el(xml: &str) -> Element {
        Element::parse(xml).unwrap()
    }

    #[test]
    fn the_specification_examples_read_and_write() {
        let e = Enable::from_element(el("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")).unwrap();
        assert_eq!(
            e,
            Enable {
                resume: true,
                max: None
            }
        );
        assert_eq!(
            Enable::from_element(el("<enable xmlns='urn:xmpp:sm:3'/>")).unwrap(),
            Enable::default()
        );
        let en = Enabled {
            id: Some("some-long-sm-id".into()),
            resume: true,
            max: Some(300),
            location: None,
        };
        assert_eq!(
            en.clone().into_element().to_xml(),
            "<enabled xmlns=\"urn:xmpp:sm:3\" id=\"some-long-sm-id\" resume=\"true\" max=\"300\"/>"
        );
        assert_eq!(Enabled::from_element(en.clone().into_element()), Ok(en));
        let r =
            Resume::from_element(el("<resume xmlns='urn:xmpp:sm:3' h='5' previd='x1'/>")).unwrap();
        assert_eq!((r.previd.as_str(), r.h), ("x1", 5));
        let a = Ack::from_element(el("<a xmlns='urn:xmpp:sm:3' h='4294967295'/>")).unwrap();
        assert_eq!(a.h, u32::MAX);
        let f = Failed::from_element(el(
            "<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
        ))
        .unwrap();
        assert_eq!(f.defined_condition(), Some(DefinedCondition::ItemNotFound));
        assert_eq!(
            Failed::new(DefinedCondition::UnexpectedRequest, None)
                .into_element()
                .to_xml(),
            "<failed xmlns=\"urn:xmpp:sm:3\"><unexpected-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></failed>"
        );
    }

    #[test]
    fn malformed_counts_are_refused() {
        for bad in [
            "<a xmlns='urn:xmpp:sm:3'/>",
            "<a xmlns='urn:xmpp:sm:3' h='-1'/>",
            "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
            "<resume xmlns='urn:xmpp:sm:3' h='1'/>",
            "<enable xmlns='urn:xmpp:sm:3' resume='yes'/>",
        ] {
            let e = el(bad);
            let read = match e.name() {
                "a" => Ack::from_element(e).map(|_| ()),
                "resume" => Resume::from_element(e).map(|_| ()),
                _ => Enable::from_element(e).map(|_| ()),
            };
            assert!(read.is_err(), "{bad} was read");
        }
    }
}
