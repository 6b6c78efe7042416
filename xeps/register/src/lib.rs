//! # lithos-register
//!
//! XEP-0077 (In-Band Registration): `jabber:iq:register`. The payload types are here; with
//! the `server` feature, a module (off by default: `[modules.register] enabled = true`) lets
//!
//! - a client that has not authenticated create an account, on an encrypted stream, at most
//!   once per `min_seconds_between` from one address;
//! - an authenticated user change their password;
//! - an authenticated user remove their account: its presence subscriptions are cancelled,
//!   everything stored for it is deleted, and every session of the account ends with
//!   `<not-authorized/>` after the result.
//!
//! An error never echoes the request (it may hold a password).
//!
//! ```
//! use lithos_core::Element;
//! use lithos_register::Request;
//!
//! let q = Element::parse("<query xmlns='jabber:iq:register'>\
//!     <username>bill</username><password>Calliope</password></query>").unwrap();
//! assert_eq!(
//!     Request::parse(&q),
//!     Ok(Request::Register { username: "bill".into(), password: "Calliope".into() })
//! );
//! ```

use lithos_core::Element;

#[cfg(feature = "server")]
mod server;

/// The registration namespace.
pub const NS: &str = "jabber:iq:register";
/// The stream feature announcing in-band registration.
pub const NS_FEATURE: &str = "http://jabber.org/features/iq-register";

/// BXMPP table. `F9 00` and its codes 00–05 are Basalt's; `query`, `registered` and
/// `remove` (which Basalt's table lacks, so it could not carry a whole request) take free
/// codes. The stream feature's namespace (`F0 11`) is in the core tables, like every
/// stream feature's.
pub const BXMPP_TABLE: &str = include_str!("../tables/register.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

/// A `jabber:iq:register` set, as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Create an account (before authentication) or change the password (after).
    Register {
        /// The user name (the JID's local part).
        username: String,
        /// The password; may be empty, which the server refuses.
        password: String,
    },
    /// `<remove/>`: cancel the registration.
    Remove,
}

/// Why a `jabber:iq:register` set cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not `<query xmlns='jabber:iq:register'/>`.
    #[error("the payload is not a jabber:iq:register query")]
    NotAQuery,
    /// `<remove/>` with other fields (XEP-0077 §3.2: bad-request).
    #[error("<remove/> must be the only child of the query")]
    RemoveWithOtherFields,
    /// No `<username/>` or no `<password/>`.
    #[error("the <{0}/> field is missing")]
    MissingField(&'static str),
}

impl Request {
    /// Reads a set's `<query/>`.
    pub fn parse(query: &Element) -> Result<Request, RequestError> {
        if !query.is("query", NS) {
            return Err(RequestError::NotAQuery);
        }
        if query.has_child("remove", NS) {
            return if query.children().count() == 1 {
                Ok(Request::Remove)
            } else {
                Err(RequestError::RemoveWithOtherFields)
            };
        }
        let field = |name: &'static str| {
            query
                .get_child(name, NS)
                .map(|e| e.text().to_string())
                .ok_or(RequestError::MissingField(name))
        };
        Ok(Request::Register {
            username: field("username")?,
            password: field("password")?,
        })
    }
}

/// The form a client gets before registering: instructions and the two fields.
pub fn form(instructions: &str) -> Element {
    Element::builder("query", NS)
        .child(
            Element::builder("instructions", NS)
                .text(instructions)
                .build(),
        )
        .child(Element::bare("username", NS))
        .child(Element::bare("password", NS))
        .build()
}

/// What an authenticated user gets: `<registered/>` and their user name.
pub fn registered(username: &str) -> Element {
    Element::builder("query", NS)
        .child(Element::bare("registered", NS))
        .child(Element::builder("username", NS).text(username).build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(inner: &str) -> Element {
        Element::parse(&format!("<query xmlns='{NS}'>{inner}</query>")).unwrap()
    }

    #[test]
    fn reads_each_request() {
        assert_eq!(Request::parse(&q("<remove/>")), Ok(Request::Remove));
        assert_eq!(
            Request::parse(&q("<remove/><username>a</username>")),
            Err(RequestError::RemoveWithOtherFields)
        );
        assert_eq!(
            Request::parse(&q("<username>a</username>")),
            Err(RequestError::MissingField("password"))
        );
        assert_eq!(
            Request::parse(&q("<password>p</password>")),
            Err(RequestError::MissingField("username"))
        );
        assert_eq!(
            Request::parse(&q("<username>a</username><password/>")),
            Ok(Request::Register {
                username: "a".into(),
                password: String::new()
            })
        );
        let other = Element::parse("<query xmlns='jabber:iq:roster'/>").unwrap();
        assert_eq!(Request::parse(&other), Err(RequestError::NotAQuery));
    }

    #[test]
    fn the_table_loads_and_carries_a_whole_exchange() {
        use lithos_core::binary::{Vocabulary, decode_document, encode_document};
        // This crate's table on top of the core tables (which hold the feature's namespace).
        let v = Vocabulary::linked().unwrap();
        assert!(v.extension_for_ns(NS).is_some());
        for el in [
            form("Choose a user name and password."),
            registered("bill"),
            q("<username>bill</username><password>Calliope</password>"),
            q("<remove/>"),
            Element::bare("register", NS_FEATURE),
        ] {
            let bytes = encode_document(&v, &el).unwrap();
            assert_eq!(decode_document(&v, bytes).unwrap(), el);
        }
    }
}
