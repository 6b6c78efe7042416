//! # lithos-carbons
//!
//! XEP-0280 (Message Carbons, `urn:xmpp:carbons:2`): a resource that enables carbons gets a
//! copy of every chat its account's other resources send (`<sent/>`) and of every chat sent
//! to the account that another resource received (`<received/>`), each wrapped in a XEP-0297
//! `<forwarded/>` and sent from the account's bare JID.
//!
//! Eligible messages (XEP-0280 §6's suggested rules): type `chat`, and type `normal` with a
//! `<body/>`; not with `<private xmlns='urn:xmpp:carbons:2'/>` (removed before delivery) or
//! the XEP-0334 `no-copy` hint, and never a carbon itself. The module claims
//! `<enable/>`/`<disable/>` for the sender's own account (`not-allowed` for another's),
//! repeatable, and advertises `urn:xmpp:carbons:2`. With the `client` feature,
//! [`CarbonsExt`] turns them on and [`carbon_of`] reads a copy, checking that it came from
//! the client's own account (§11: any other is forged).

use lithos_core::{Element, Jid, Payload};
use lithos_forward::Forwarded;

pub mod client;
mod server;

#[cfg(feature = "client")]
pub use client::CarbonsExt;
pub use client::{Carbon, carbon_of};

/// The namespace.
pub const NS: &str = "urn:xmpp:carbons:2";

// Code `F0 1B`.
lithos_core::extension! { table_file: "carbons.props", server: [server::MODULE] }

/// `<enable/>`: carbons on for the sending resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "enable")]
pub struct Enable;

/// `<disable/>`: carbons off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "disable")]
pub struct Disable;

/// `<sent/>`: a copy of a message another resource of the account sent.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "sent")]
pub struct Sent {
    /// The message.
    #[payload(child)]
    pub forwarded: Forwarded,
}

/// `<received/>`: a copy of a message another resource of the account received.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "received")]
pub struct Received {
    /// The message.
    #[payload(child)]
    pub forwarded: Forwarded,
}

/// Whether `message` may be copied (XEP-0280 §6, and the opt-outs of §7 and XEP-0334).
pub fn eligible(message: &Element) -> bool {
    if message.name() != "message" {
        return false;
    }
    let typed = match message.attr("type") {
        Some("chat") => true,
        None | Some("normal") => message.has_child("body", &lithos_core::ns::JABBER_CLIENT),
        _ => false,
    };
    typed
        && !message.has_child("private", NS)
        && !lithos_hints::Hint::NoCopy.is_on(message)
        && !message.has_child("sent", NS)
        && !message.has_child("received", NS)
}

/// The copy for `to` (a full JID of `account`): `<message from=account to=to type=…>` holding
/// `wrapper` (`<sent/>` or `<received/>`) around the message.
pub fn copy(message: &Element, account: &Jid, to: &Jid, sent: bool) -> Element {
    let forwarded = Forwarded::of(message.clone());
    let wrapped = if sent {
        Sent { forwarded }.into_element()
    } else {
        Received { forwarded }.into_element()
    };
    Element::builder("message", lithos_core::ns::JABBER_CLIENT)
        .attr("from", account.as_shared().clone())
        .attr("to", to.as_shared().clone())
        .opt_attr("type", message.attr_shared("type").cloned())
        .child(wrapped)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x).unwrap()
    }

    #[test]
    fn eligibility() {
        assert!(eligible(&el(
            "<message xmlns='jabber:client' type='chat'/>"
        )));
        assert!(eligible(&el(
            "<message xmlns='jabber:client'><body>b</body></message>"
        )));
        for no in [
            "<message xmlns='jabber:client'/>",
            "<message xmlns='jabber:client' type='headline'><body>b</body></message>",
            "<message xmlns='jabber:client' type='groupchat'><body>b</body></message>",
            "<message xmlns='jabber:client' type='error'><body>b</body></message>",
            "<message xmlns='jabber:client' type='chat'><private xmlns='urn:xmpp:carbons:2'/></message>",
            "<message xmlns='jabber:client' type='chat'><no-copy xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>",
            "<presence xmlns='jabber:client'/>",
        ] {
            assert!(!eligible(&el(no)), "{no}");
        }
    }

    #[test]
    fn the_specification_example() {
        let m = el(
            "<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' type='chat'><body>What man art thou</body></message>",
        );
        let c = copy(
            &m,
            &Jid::new("romeo@montague.example").unwrap(),
            &Jid::new("romeo@montague.example/home").unwrap(),
            false,
        );
        assert_eq!(c.attr("from"), Some("romeo@montague.example"));
        assert_eq!(c.attr("to"), Some("romeo@montague.example/home"));
        assert_eq!(c.attr("type"), Some("chat"));
        let r = Received::from_element(c.get_child("received", NS).unwrap().clone()).unwrap();
        assert_eq!(r.forwarded.message, m);
    }
}
