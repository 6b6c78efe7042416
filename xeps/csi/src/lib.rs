//! # lithos-csi
//!
//! XEP-0352 (Client State Indication, `urn:xmpp:csi:0`): a client tells its server when its
//! user is not looking (`<inactive/>`) and when they are again (`<active/>`), so the server
//! can hold back what can wait. Like stream management, these elements sit on the stream
//! between stanzas: the server's kernel reads them (`[csi]` in its configuration), and
//! `lithos-client` sends them (`Client::set_active`). This crate holds the elements and the
//! rule for what can wait ([`Urgency`]); their BXMPP codes (`F0 1F`) are in `lithos-core`'s
//! tables, with the other stream features'.
//!
//! What Lithos holds while a client is inactive, following XEP-0352 §3's suggestions:
//! presence updates (available and unavailable) are held, the latest per sender replacing
//! the older; messages that carry only a XEP-0085 chat state are dropped (they say nothing
//! once newer ones came); everything else is written at once, after what was held, so the
//! order of what arrives is kept. `<active/>` writes what was held before anything else.
//!
//! ```
//! use lithos_core::Element;
//! use lithos_csi::{Urgency, urgency};
//! let typing = Element::parse("<message xmlns='jabber:client' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")?;
//! assert_eq!(urgency(&typing), Urgency::Droppable);
//! let presence = Element::parse("<presence xmlns='jabber:client' from='a@x/r'><show>away</show></presence>")?;
//! assert_eq!(urgency(&presence), Urgency::Latest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lithos_core::Element;

/// The namespace.
pub const NS: &str = "urn:xmpp:csi:0";
/// XEP-0085 chat states.
pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

lithos_core::extension! {}

/// `<csi/>`: the stream feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "csi")]
pub struct Feature;

/// `<active/>`: the user is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "active")]
pub struct Active;

/// `<inactive/>`: the user is not looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "inactive")]
pub struct Inactive;

/// How soon an inactive client needs a stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Now (messages with content, iqs, subscription requests, errors).
    Now,
    /// Only the latest one per sender matters, and it can wait (presence updates).
    Latest,
    /// It can be dropped (chat-state-only messages).
    Droppable,
}

/// The urgency of `stanza` for an inactive client.
pub fn urgency(stanza: &Element) -> Urgency {
    match stanza.name() {
        "presence" if matches!(stanza.attr("type"), None | Some("unavailable")) => Urgency::Latest,
        "message" if only_chat_state(stanza) => Urgency::Droppable,
        _ => Urgency::Now,
    }
}

/// A message with a chat state and nothing a user would read (no body, subject or other
/// payload besides a thread and hints).
fn only_chat_state(message: &Element) -> bool {
    if message.attr("type") == Some("error") {
        return false;
    }
    let mut state = false;
    for c in message.children() {
        if c.ns() == NS_CHATSTATES {
            state = true;
        } else if !(c.name() == "thread" || c.ns() == "urn:xmpp:hints") {
            return false;
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x).unwrap()
    }

    #[test]
    fn what_can_wait() {
        for (xml, u) in [
            ("<presence xmlns='jabber:client'/>", Urgency::Latest),
            (
                "<presence xmlns='jabber:client' type='unavailable'/>",
                Urgency::Latest,
            ),
            (
                "<presence xmlns='jabber:client' type='subscribe'/>",
                Urgency::Now,
            ),
            (
                "<message xmlns='jabber:client' type='chat'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
                Urgency::Now,
            ),
            (
                "<message xmlns='jabber:client' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>",
                Urgency::Droppable,
            ),
            ("<message xmlns='jabber:client' type='chat'/>", Urgency::Now),
            (
                "<message xmlns='jabber:client' type='error'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
                Urgency::Now,
            ),
            ("<iq xmlns='jabber:client' type='get'/>", Urgency::Now),
        ] {
            assert_eq!(urgency(&el(xml)), u, "{xml}");
        }
    }
}
