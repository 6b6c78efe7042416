//! # lithos-offline
//!
//! XEP-0160 (Best Practices for Handling Offline Messages). With the `server` feature, a
//! message of type `normal` or `chat` for an account with no available resource is stored
//! (with a XEP-0203 `<delay/>` stamp) and delivered when the account next sends available
//! presence with a non-negative priority. `[modules.offline] max_per_account` caps what one
//! account may hold (default 1000); past it the sender gets `service-unavailable`.

/// XEP-0203 delayed delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0160's disco feature.
pub const NS_OFFLINE: &str = "msgoffline";

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod store;

/// BXMPP table (Lithos's `F0 14`): without it, a stored message could not be delivered to a
/// client speaking BXMPP, since its `<delay/>` would have no code.
pub const BXMPP_TABLE: &str = include_str!("../tables/offline.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [store::SCHEMA, server::MODULE] }
