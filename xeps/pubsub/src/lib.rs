//! # lithos-pubsub
//!
//! XEP-0060 publish-subscribe: a service at `pubsub.<domain>` (unless `[modules.pubsub]
//! domain` says otherwise), and the engine the personal eventing service of every account
//! (XEP-0163, `lithos-pep`) runs on.
//!
//! - **Nodes** (leaf nodes) are created by a local account (`create`, instant nodes with a
//!   generated name, or on first publish: `auto-create`), configured through the
//!   `pubsub#node_config` data form (XEP-0004), purged and deleted by their owners.
//! - **Publishing** stores the item (persistent nodes keep the latest `max_items`; an item
//!   published again under its id replaces it), answers once it is written, then notifies
//!   every subscriber (`<event/>` in a `headline` message, payload included unless
//!   `deliver_payloads` is off). `publish-options` (XEP-0060 §7.1.5, XEP-0223) are
//!   preconditions on an existing node and the configuration of a new one. Retraction
//!   notifies when the node or the request asks.
//! - **Subscribing** is checked against the node's access model: `open`, `presence` (the
//!   owner's contacts with a presence subscription), `roster` (in the allowed roster
//!   groups), `whitelist` (affiliated entities); outcasts never. The last item goes to a new
//!   subscriber when `send_last_published_item` says so.
//! - **Retrieval**: all items (the latest first kept), the latest `max_items`, chosen ids, or
//!   pages with XEP-0059 result set management.
//! - **Owners** read and change subscriptions and affiliations (`owner`, `publisher`,
//!   `member`, `outcast`).
//!
//! Every bound is configured and answered as XEP-0060 says: nodes per service
//! (`max-nodes-exceeded`), items per node (the oldest go), payload size
//! (`payload-too-big`), subscriptions per node (`too-many-subscriptions`).

#![forbid(unsafe_code)]

/// The namespace of requests and their answers.
pub const NS: &str = "http://jabber.org/protocol/pubsub";
/// Notifications.
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// Owners' requests.
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// Application-specific error conditions.
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
/// The node configuration form's `FORM_TYPE`.
pub const NS_NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// The publish-options form's `FORM_TYPE`.
pub const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// The node metadata form's `FORM_TYPE` (disco#info of a node).
pub const NS_META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";

#[cfg(feature = "server")]
lithos_core::extension! { table_file: "pubsub.props", server: [store::SCHEMA, server::MODULE] }
#[cfg(not(feature = "server"))]
lithos_core::extension! { table_file: "pubsub.props" }

pub mod config;
#[cfg(feature = "server")]
pub mod engine;
pub mod error;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;

pub use config::{AccessModel, NodeConfig, PublishModel, SendLastPublished};
pub use error::{PubsubError, pubsub_error};

/// An entity's standing on a node (XEP-0060 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    /// Banned.
    Outcast,
    /// None.
    None,
    /// May subscribe and retrieve under the `whitelist` model.
    Member,
    /// May publish.
    Publisher,
    /// Manages the node.
    Owner,
}

impl Affiliation {
    /// XEP-0060's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Publisher => "publisher",
            Affiliation::Owner => "owner",
        }
    }

    /// From XEP-0060's name (`publish-only` is not offered).
    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "publisher" => Affiliation::Publisher,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affiliations_round_trip_and_order() {
        for a in [
            Affiliation::Outcast,
            Affiliation::None,
            Affiliation::Member,
            Affiliation::Publisher,
            Affiliation::Owner,
        ] {
            assert_eq!(Affiliation::parse(a.as_str()), Some(a));
        }
        assert_eq!(Affiliation::parse("publish-only"), None);
        assert!(Affiliation::Owner > Affiliation::Publisher);
        assert!(Affiliation::Publisher > Affiliation::Member);
    }
}
