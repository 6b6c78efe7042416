//! # lithos-disco
//!
//! XEP-0030 (Service Discovery). With the `server` feature, a module answers disco#info and
//! disco#items for the server (identity `server/im`, and the features every running module
//! declares) and for accounts (identity `account/registered`). With the `client` feature, a
//! client answers disco#info with its linked plugins' features and gets [`DiscoExt`].
//!
//! The BXMPP table resolves Basalt's double use of code 0x04 in disco#info: `feature` keeps
//! 0x04 (the value Java's `Properties` ended up with), `name` moves to 0x07.

/// disco#info.
pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
/// disco#items.
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// BXMPP tables for both namespaces (Basalt's codes, with `name` in disco#info moved to 0x07).
pub const BXMPP_TABLE: &str = include_str!("../tables/disco.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE], client: [client::PLUGIN] }

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{DiscoExt, DiscoInfo, Identity};
