//! # lithos-sid
//!
//! XEP-0359 (Unique and Stable Stanza IDs, `urn:xmpp:sid:0`): an archive stamps each message
//! it stores with `<stanza-id by='<archive>' id='…'/>` before delivering it, so a client can
//! later page the archive from that message; a sender may add its own `<origin-id/>`. A
//! stanza-id claims to come from the entity named in `by`, so a server removes any that
//! names it from what others send ([`strip_claims`]).
//!
//! ```
//! use lithos_core::{Element, Jid};
//! use lithos_sid::{StanzaId, strip_claims};
//! let by = Jid::new("romeo@montague.lit")?;
//! let mut m = Element::parse("<message xmlns='jabber:client'><stanza-id xmlns='urn:xmpp:sid:0' by='romeo@montague.lit' id='forged'/></message>")?;
//! strip_claims(&mut m, &by);
//! assert!(StanzaId::of(&m, &by).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lithos_core::{Element, Jid, Payload};

/// The namespace.
pub const NS: &str = "urn:xmpp:sid:0";

// Code `F0 21`.
lithos_core::extension! { table_file: "sid.props" }

/// `<stanza-id/>`: the id `by` gave the stanza.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "stanza-id")]
pub struct StanzaId {
    /// The id, unique within `by`'s archive.
    #[payload(attr)]
    pub id: String,
    /// Who gave it.
    #[payload(attr)]
    pub by: Jid,
}

impl StanzaId {
    /// The stanza-id `by` gave `stanza`, if it carries one.
    pub fn of(stanza: &Element, by: &Jid) -> Option<StanzaId> {
        stanza
            .children()
            .filter(|c| StanzaId::matches(c))
            .filter_map(|c| StanzaId::from_element(c.clone()).ok())
            .find(|s| s.by == *by)
    }
}

/// `<origin-id/>`: the id the sender gave the stanza.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "origin-id")]
pub struct OriginId {
    /// The id.
    #[payload(attr)]
    pub id: String,
}

/// Removes the stanza-ids that claim to come from `by` (a sender cannot speak for the
/// archive; XEP-0359 §5).
pub fn strip_claims(stanza: &mut Element, by: &Jid) {
    let by = by.as_str();
    stanza.retain_children(|c| !(c.is("stanza-id", NS) && c.attr("by") == Some(by)));
}
