//! # lithos-qos
//!
//! Quality of Service for any message, as the `urn:xmpp:qos` protoXEP (Peter Waher, 0.0.1)
//! defines it, with MQTT's three levels:
//!
//! - **at most once**: a plain `<message/>`;
//! - **at least once**: `<iq type="set"><acknowledged xmlns="urn:xmpp:qos"><message/>
//!   </acknowledged></iq>`, answered with an empty result, re-sent until answered;
//! - **exactly once**: `<assured msgId="…"><message/></assured>` is stored, not processed,
//!   and answered `<received msgId="…"/>`; then `<deliver msgId="…"/>` processes it once
//!   and is answered with an empty result. Every repeated `assured` or `deliver` is
//!   answered; one delivery happens.
//!
//! The embedded message's `to` and `from` are always overwritten with the iq's (the
//! protoXEP's security rule), so nobody injects a message under another identity.
//!
//! **Who receives.** Sent to a client's full JID, the receiving client does the work (the
//! client plugin of this crate, in every `lithos-client` that links it: the message then
//! arrives as an ordinary [`Event::Message`](lithos_client::Event)). Sent to an account's
//! bare JID, the **server** receives on the account's behalf (the `qos` module): an
//! acknowledged message is acknowledged once delivered to the account's available sessions
//! or committed to its offline store; an assured message is kept in the database until its
//! deliver, so it survives restarts, and its id is remembered for a day after delivery, so
//! a late duplicate is not delivered again. That is the broker's part of MQTT's QoS 2.
//!
//! **Limits.** The server refuses assured messages from senders the recipient has not put in
//! its roster (`not-allowed`; the account's own resources are trusted). Undelivered assured
//! messages are bounded per sending account (all its resources together) and per recipient,
//! in messages and in bytes, and expire (`[modules.qos]`: `max_pending_per_sender` 100,
//! `max_pending_bytes_per_sender` 1 MiB, `max_pending_per_recipient` 1000,
//! `max_pending_bytes_per_recipient` 4 MiB, `expire_after_secs` one day); past a bound the
//! sender gets `resource-constraint`. A deliver for a message that expired (or never came)
//! gets `item-not-found`; a repeated deliver, an empty result. The client plugin keeps at
//! most 64 per sender and 4,096 in all.

#![forbid(unsafe_code)]

use lithos_core::{Element, Payload};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{QosError, QosExt, Retry, RetryError, next_message_id, until_answered};

/// The namespace.
pub const NS: &str = "urn:xmpp:qos";

/// BXMPP table (Lithos's `F0 16`).
pub const BXMPP_TABLE: &str = include_str!("../tables/qos.props");

lithos_core::extension! {
    table: BXMPP_TABLE,
    server: [server::SCHEMA, server::MODULE],
    client: [client::PLUGIN],
}

/// A delivery level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// A plain message.
    AtMostOnce,
    /// `acknowledged`.
    AtLeastOnce,
    /// `assured`, then `deliver`.
    ExactlyOnce,
}

/// A message id: 1 to 128 bytes.
fn msg_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128
}

/// `<acknowledged/>`: a message delivered at least once.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "acknowledged")]
pub struct Acknowledged {
    /// The message (its `to` and `from` are ignored).
    #[payload(element, name = "message")]
    pub message: Element,
}

/// `<assured msgId="…"/>`: a message delivered exactly once, phase 1.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "assured")]
pub struct Assured {
    /// Unique per sender (full JID) while outstanding.
    #[payload(attr = "msgId", check = msg_id_ok)]
    pub msg_id: String,
    /// The message (its `to` and `from` are ignored).
    #[payload(element, name = "message")]
    pub message: Element,
}

/// `<received msgId="…"/>`: the answer to [`Assured`].
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "received")]
pub struct Received {
    /// The message id.
    #[payload(attr = "msgId", check = msg_id_ok)]
    pub msg_id: String,
}

/// `<deliver msgId="…"/>`: phase 2 of exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "deliver")]
pub struct Deliver {
    /// The message id.
    #[payload(attr = "msgId", check = msg_id_ok)]
    pub msg_id: String,
}

/// The embedded message made safe: `to` and `from` taken from the iq that carried it.
pub fn stamp_message(mut message: Element, from: &str, to: &str) -> Element {
    message.set_attr("from", from.to_string());
    message.set_attr("to", to.to_string());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Element {
        Element::parse(s).unwrap()
    }

    #[test]
    fn protoxep_examples() {
        // "Setting light level" and "Counting cars" (the payloads, in the default namespace).
        let ack = parse(
            "<acknowledged xmlns='urn:xmpp:qos'><message xmlns='jabber:client'>\
             <set xmlns='urn:xmpp:iot:control'><int name='Light' value='80'/></set>\
             </message></acknowledged>",
        );
        let a = Acknowledged::from_element(ack.clone()).unwrap();
        assert_eq!(a.message.children().count(), 1);
        assert_eq!(a.into_element(), ack);
        let assured = parse(
            "<assured xmlns='urn:xmpp:qos' msgId='984232334'><message xmlns='jabber:client'>\
             <log xmlns='urn:xmpp:eventlog' id='Entered'/></message></assured>",
        );
        let a = Assured::from_element(assured.clone()).unwrap();
        assert_eq!(a.msg_id, "984232334");
        assert_eq!(a.into_element(), assured);
        let r = Received {
            msg_id: "984232334".into(),
        };
        assert_eq!(Received::from_element(r.clone().into_element()).unwrap(), r);
        let d = Deliver {
            msg_id: "984232334".into(),
        };
        assert_eq!(Deliver::from_element(d.clone().into_element()).unwrap(), d);
    }

    #[test]
    fn malformed() {
        for bad in [
            "<acknowledged xmlns='urn:xmpp:qos'/>",
            "<acknowledged xmlns='urn:xmpp:qos'><presence xmlns='jabber:client'/></acknowledged>",
            "<assured xmlns='urn:xmpp:qos'><message xmlns='jabber:client'/></assured>",
            "<assured xmlns='urn:xmpp:qos' msgId=''><message xmlns='jabber:client'/></assured>",
        ] {
            let el = parse(bad);
            let r = if el.name() == "assured" {
                Assured::from_element(el).map(drop)
            } else {
                Acknowledged::from_element(el).map(drop)
            };
            assert!(r.is_err(), "{bad}");
        }
        assert!(Deliver::from_element(parse("<deliver xmlns='urn:xmpp:qos'/>")).is_err());
    }

    #[test]
    fn to_and_from_are_overwritten() {
        let m = parse(
            "<message xmlns='jabber:client' from='mallory@evil.example' to='x@y'><body>hi</body></message>",
        );
        let m = stamp_message(m, "alice@example.com/a", "bob@example.com");
        assert_eq!(m.attr("from"), Some("alice@example.com/a"));
        assert_eq!(m.attr("to"), Some("bob@example.com"));
    }
}
#[cfg(test)]
mod bxmpp {
    use super::*;

    #[test]
    fn an_embedded_message_round_trips() {
        let v = lithos_core::binary::Vocabulary::linked().unwrap();
        let iq = Element::parse(
            "<iq xmlns='jabber:client' type='set' id='x' to='bob@localhost/app'>\
             <assured xmlns='urn:xmpp:qos' msgId='m-1'><message xmlns='jabber:client' type='chat'>\
             <body>one</body></message></assured></iq>",
        )
        .unwrap();
        let bytes = lithos_core::binary::encode_document(&v, &iq).unwrap();
        assert_eq!(lithos_core::binary::decode_document(&v, bytes).unwrap(), iq);
    }
}
