//! # lithos-ping
//!
//! XEP-0199 (XMPP Ping): `<ping xmlns='urn:xmpp:ping'/>` in an iq get, answered by an empty
//! result. With the `server` feature, a module answers pings addressed to the server; with
//! the `client` feature, every `lithos_client::Client` answers pings and can send them
//! ([`PingExt`]).
//!
//! ```
//! use lithos_core::Payload;
//! use lithos_ping::Ping;
//! let el = Ping.into_element();
//! assert_eq!(el.to_xml(), "<ping xmlns=\"urn:xmpp:ping\"/>");
//! assert_eq!(Ping::from_element(el), Ok(Ping));
//! ```

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{PingExt, PingResult};

/// The ping namespace.
pub const NS: &str = "urn:xmpp:ping";

/// The BXMPP keyword table (the code Basalt gives the namespace).
pub const BXMPP_TABLE: &str = include_str!("../tables/ping.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE], client: [client::PLUGIN] }

/// A ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "ping")]
pub struct Ping;

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::{Element, Payload};

    #[test]
    fn strict() {
        let el = |xml: &str| Element::parse(xml).unwrap();
        assert!(Ping::from_element(el("<ping xmlns='urn:xmpp:ping' a='1'/>")).is_err());
        assert!(Ping::from_element(el("<ping xmlns='urn:xmpp:ping'><x/></ping>")).is_err());
        assert!(Ping::from_element(el("<ping xmlns='urn:xmpp:ping'>\n </ping>")).is_ok());
    }

    #[test]
    fn wrong_element() {
        assert!(Ping::from_element(Element::bare("pong", NS)).is_err());
        assert!(Ping::from_element(Element::bare("ping", "urn:other")).is_err());
    }
}
