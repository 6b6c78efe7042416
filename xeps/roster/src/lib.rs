//! # lithos-roster
//!
//! Rosters (RFC 6121 §2): the `jabber:iq:roster` payload, and with the `server` feature the
//! module that answers roster gets and sets, keeps versions (§2.6), and pushes every change to
//! the account's sessions that asked for the roster. With the `client` feature, a client gets
//! [`RosterExt`] and answers the server's pushes.

use lithos_core::{Element, Jid};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "client")]
pub use client::{RosterEntry, RosterExt};

#[cfg(feature = "server")]
pub use server::push;

/// The roster namespace.
pub const NS: &str = "jabber:iq:roster";
/// The stream feature announcing roster versioning.
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// The session mark of sessions that asked for the roster (and so get pushes).
pub const INTERESTED: &str = "roster-interested";

/// An item as a client sends it in a roster set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRequest {
    /// The contact.
    pub jid: Jid,
    /// Display name.
    pub name: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// `subscription="remove"`.
    pub remove: bool,
}

/// Why a roster set is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemError {
    /// Malformed (RFC 6121 §2.3.3: bad-request).
    BadRequest(&'static str),
    /// Acceptable XML, unacceptable content (not-acceptable).
    NotAcceptable(&'static str),
}

/// Reads the one `<item/>` of a roster set (RFC 6121 §2.3.3).
pub fn parse_set(query: &Element) -> Result<ItemRequest, ItemError> {
    let mut items = query.children().filter(|c| c.is("item", NS));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(ItemError::BadRequest(
            "a roster set carries exactly one item",
        ));
    };
    let jid = item
        .attr("jid")
        .and_then(|j| Jid::new(j).ok())
        .ok_or(ItemError::BadRequest("the item needs a valid jid"))?;
    if !jid.is_bare() {
        return Err(ItemError::BadRequest("roster items are bare JIDs"));
    }
    let remove = match item.attr("subscription") {
        None => false,
        Some("remove") => true,
        Some(_) => {
            return Err(ItemError::BadRequest(
                "a client may only set subscription=\"remove\"",
            ));
        }
    };
    let mut groups: Vec<String> = Vec::new();
    for g in item.children().filter(|c| c.is("group", NS)) {
        let name = g.text();
        if name.is_empty() {
            return Err(ItemError::NotAcceptable("empty group name"));
        }
        if name.len() > 1023 {
            return Err(ItemError::NotAcceptable("group name too long"));
        }
        if groups.contains(&name) {
            return Err(ItemError::BadRequest("duplicate group"));
        }
        groups.push(name);
    }
    let name = item.attr("name").map(str::to_string);
    if name.as_deref().is_some_and(|n| n.len() > 1023) {
        return Err(ItemError::NotAcceptable("name too long"));
    }
    Ok(ItemRequest {
        jid,
        name,
        groups,
        remove,
    })
}

/// Writes an item as the server sends it (in results and pushes).
pub fn item_element(
    jid: &str,
    name: Option<&str>,
    subscription: &str,
    ask: bool,
    approved: bool,
    groups: &[String],
) -> Element {
    let mut b = Element::builder("item", NS)
        .attr("jid", jid.to_string())
        .opt_attr("name", name.map(str::to_string))
        .attr("subscription", subscription.to_string())
        .opt_attr("ask", ask.then_some("subscribe"))
        .opt_attr("approved", approved.then_some("true"));
    for g in groups {
        b = b.child(Element::builder("group", NS).text(g.clone()).build());
    }
    b.build()
}

lithos_core::extension! { server: [store::SCHEMA, server::MODULE], client: [client::PLUGIN] }

#[cfg(test)]
mod tests {
    use super::*;

    fn q(items: &str) -> Element {
        Element::parse(&format!("<query xmlns='jabber:iq:roster'>{items}</query>")).unwrap()
    }

    #[test]
    fn roster_sets() {
        let r = parse_set(&q(
            "<item jid='a@b' name='A'><group>x</group><group>y</group></item>",
        ))
        .unwrap();
        assert_eq!(r.jid.as_str(), "a@b");
        assert_eq!(r.groups, ["x", "y"]);
        assert!(!r.remove);
        assert!(
            parse_set(&q("<item jid='a@b' subscription='remove'/>"))
                .unwrap()
                .remove
        );
        for (bad, want) in [
            (
                "",
                ItemError::BadRequest("a roster set carries exactly one item"),
            ),
            (
                "<item jid='a@b'/><item jid='c@d'/>",
                ItemError::BadRequest("a roster set carries exactly one item"),
            ),
            (
                "<item/>",
                ItemError::BadRequest("the item needs a valid jid"),
            ),
            (
                "<item jid='a@b/r'/>",
                ItemError::BadRequest("roster items are bare JIDs"),
            ),
            (
                "<item jid='a@b' subscription='both'/>",
                ItemError::BadRequest("a client may only set subscription=\"remove\""),
            ),
            (
                "<item jid='a@b'><group/></item>",
                ItemError::NotAcceptable("empty group name"),
            ),
            (
                "<item jid='a@b'><group>x</group><group>x</group></item>",
                ItemError::BadRequest("duplicate group"),
            ),
        ] {
            assert_eq!(parse_set(&q(bad)), Err(want), "{bad}");
        }
    }

    #[test]
    fn items_are_written_with_optional_attributes() {
        let el = item_element("a@b", None, "to", true, false, &["g".to_string()]);
        assert_eq!(
            el.to_xml(),
            "<item xmlns=\"jabber:iq:roster\" jid=\"a@b\" subscription=\"to\" ask=\"subscribe\"><group>g</group></item>"
        );
    }
}
