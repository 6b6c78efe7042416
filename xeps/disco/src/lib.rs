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
pub const BXMPP_TABLE: &str = "\
0xf90x03=http://jabber.org/protocol/disco#info
0x00=query
0x01=identity
0x02=category
0x03=type
0x04=feature
0x05=var
0x06=node
0x07=name
0xf90x04=http://jabber.org/protocol/disco#items
0x00=query
0x01=item
0x02=name
0x03=node
0x04=jid
";

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{DiscoExt, DiscoInfo, Identity};

lithos_core::extension! {
    table: BXMPP_TABLE,
    #[cfg(feature = "server")]
    module: server::MODULE,
    #[cfg(feature = "client")]
    client: client::PLUGIN,
}
