//! # lithos-blocking
//!
//! XEP-0191 (Blocking Command, `urn:xmpp:blocking`): an account keeps a list of addresses it
//! blocks. The server delivers nothing from them to the account (presence dropped, messages
//! and requests answered `service-unavailable`, as if the account were offline), sends the
//! account's presence to none of them, refuses what the account sends them (`not-acceptable`
//! with `<blocked xmlns='urn:xmpp:blocking:errors'/>`), and — for a thing's owner — refuses
//! their executions to the owner's things (`forbidden`).
//!
//! An item matches as XEP-0016 says: `user@domain/resource` that address only,
//! `user@domain` any of its resources, `domain/resource` that resource of any account of the
//! domain, `domain` everyone there ([`blocks`]).
//!
//! With the `server` feature, the `blocking` module keeps the lists in the database (its own
//! table) and in memory ([`Blocklists`], shared through
//! [`ServerHandle::shared`](lithos_server::ServerHandle::shared)), answers `<blocklist/>`,
//! `<block/>` and `<unblock/>` from the account itself, and pushes changes to the account's
//! resources that asked for the list. With the `client` feature, [`BlockingExt`].

use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod lists;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "client")]
pub use client::BlockingExt;
#[cfg(feature = "server")]
pub use lists::Blocklists;

/// The namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// The namespace of the `<blocked/>` error condition.
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

// Codes `F0 1D` (the commands) and `F0 1E` (the error condition).
lithos_core::extension! { table_file: "blocking.props", server: [store::SCHEMA, server::MODULE] }

/// One blocked address.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "item")]
pub struct Item {
    /// The address (a full or bare JID, or a domain).
    #[payload(attr)]
    pub jid: Jid,
}

/// `<blocklist/>`: the request for the list (empty) and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "blocklist")]
pub struct Blocklist {
    /// The blocked addresses.
    #[payload(child)]
    pub items: Vec<Item>,
}

/// `<block/>`: block these addresses (at least one).
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "block", validate = Block::check)]
pub struct Block {
    /// The addresses.
    #[payload(child)]
    pub items: Vec<Item>,
}

impl Block {
    fn check(&self) -> Result<(), lithos_core::PayloadError> {
        if self.items.is_empty() {
            return Err(lithos_core::PayloadError::Invalid(
                "<block/> names at least one <item/>".into(),
            ));
        }
        Ok(())
    }
}

/// `<unblock/>`: unblock these addresses, or everyone when it names none.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "unblock")]
pub struct Unblock {
    /// The addresses; none: all.
    #[payload(child)]
    pub items: Vec<Item>,
}

/// Whether the item `item` blocks `sender` (XEP-0016's matching of JIDs).
pub fn blocks(item: &Jid, sender: &Jid) -> bool {
    match (item.local(), item.resource()) {
        (Some(_), Some(_)) => item == sender,
        (Some(_), None) => item.bare_eq(sender),
        (None, Some(r)) => item.domain() == sender.domain() && sender.resource() == Some(r),
        (None, None) => item.domain() == sender.domain(),
    }
}

/// The error for a stanza the account sends to an address it blocks (XEP-0191 §3.3).
pub fn blocked_error() -> StanzaError {
    StanzaError::new(DefinedCondition::NotAcceptable)
        .with_application(Element::bare("blocked", NS_ERRORS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn matching() {
        let romeo = j("romeo@montague.net/orchard");
        assert!(blocks(&j("romeo@montague.net/orchard"), &romeo));
        assert!(!blocks(&j("romeo@montague.net/garden"), &romeo));
        assert!(blocks(&j("romeo@montague.net"), &romeo));
        assert!(blocks(&j("romeo@montague.net"), &j("romeo@montague.net")));
        assert!(!blocks(&j("benvolio@montague.net"), &romeo));
        assert!(blocks(&j("montague.net/orchard"), &romeo));
        assert!(!blocks(&j("montague.net/garden"), &romeo));
        assert!(blocks(&j("montague.net"), &romeo));
        assert!(!blocks(&j("capulet.com"), &romeo));
        assert!(!blocks(&j("montague.net/orchard"), &j("montague.net")));
    }

    #[test]
    fn payloads() {
        let el = |x: &str| Element::parse(x).unwrap();
        let b = Block::from_element(el(
            "<block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block>",
        ))
        .unwrap();
        assert_eq!(b.items[0].jid, j("romeo@montague.net"));
        assert!(Block::from_element(el("<block xmlns='urn:xmpp:blocking'/>")).is_err());
        assert!(
            Block::from_element(el("<block xmlns='urn:xmpp:blocking'><item/></block>")).is_err()
        );
        assert!(
            Block::from_element(el(
                "<block xmlns='urn:xmpp:blocking'><item jid='@@'/></block>"
            ))
            .is_err()
        );
        assert_eq!(
            Unblock::from_element(el("<unblock xmlns='urn:xmpp:blocking'/>")).unwrap(),
            Unblock::default()
        );
        let e = blocked_error().to_element();
        assert!(e.has_child("blocked", NS_ERRORS), "{e}");
    }
}
