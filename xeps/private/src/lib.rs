//! # lithos-private
//!
//! XEP-0049 (Private XML Storage): an account keeps XML fragments on its server, each under
//! its own element name and namespace, and reads them back; nobody else may read or write
//! them. Clients store preferences and, through XEP-0048, bookmarks this way.
//!
//! ```xml
//! <iq type="set" id="p1">
//!   <query xmlns="jabber:iq:private">
//!     <exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus>
//!   </query>
//! </iq>
//! ```
//!
//! A get names one fragment by an empty element (`<exodus xmlns="exodus:prefs"/>`) and gets
//! it back stored, or empty when nothing is stored. The server refuses fragments in the
//! namespaces XMPP reserves (`jabber:*`, `http://jabber.org/*`, `vcard-temp`) with
//! `not-acceptable`, a request to another account with `forbidden`, and what passes the limits
//! (`[modules.private] max_item_bytes`, default 65,536, and `max_account_bytes`, default
//! 1,048,576) with `not-acceptable` (one fragment too large) or `resource-constraint` (the
//! account's total).

use lithos_core::Element;

pub mod client;
mod server;
pub mod store;

/// The namespace.
pub const NS: &str = "jabber:iq:private";

// The table has code `F0 17` (Lithosphere has none for the namespace).
lithos_core::extension! { table_file: "private.props", server: [store::SCHEMA, server::MODULE] }

/// Whether XMPP reserves `ns`, so that no private fragment may use it (XEP-0049 §2).
pub fn reserved(ns: &str) -> bool {
    ns.is_empty()
        || ns.starts_with("jabber:")
        || ns.starts_with("http://jabber.org/")
        || ns == "vcard-temp"
}

/// `<query xmlns="jabber:iq:private">`: the fragments stored (set, result) or the one asked
/// for (get).
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "query")]
pub struct Query {
    /// The fragments, each an element in its own namespace.
    #[payload(element)]
    pub fragments: Vec<Element>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    #[test]
    fn reads_the_xep_examples() {
        let el = Element::parse(
            "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>\
             <defaultnick>Hamlet</defaultnick></exodus></query>",
        )
        .unwrap();
        let q = Query::from_element(el.clone()).unwrap();
        assert_eq!(q.fragments.len(), 1);
        assert_eq!(q.fragments[0].ns(), "exodus:prefs");
        assert_eq!(q.into_element(), el);
        assert!(
            Query::from_element(
                Element::parse("<query xmlns='jabber:iq:private'>x</query>").unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn reserved_namespaces() {
        for ns in [
            "",
            "jabber:client",
            "jabber:iq:roster",
            "http://jabber.org/protocol/disco#info",
            "vcard-temp",
        ] {
            assert!(reserved(ns), "{ns}");
        }
        for ns in ["exodus:prefs", "storage:bookmarks", "urn:xmpp:bookmarks:1"] {
            assert!(!reserved(ns), "{ns}");
        }
    }
}
