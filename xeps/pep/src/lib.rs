//! # lithos-pep
//!
//! XEP-0163 (Personal Eventing Protocol): every account is a publish-subscribe service at
//! its bare JID, on `lithos-pubsub`'s engine with PEP's defaults (access model `presence`,
//! one item, the last item sent on presence).
//!
//! - **Publishing** to a node of one's own account creates it (`auto-create`, with the
//!   `publish-options` as its configuration: what XEP-0402 bookmarks and XEP-0084 avatars
//!   ask for); another account's nodes are read only.
//! - **Notifications** go to explicit subscribers and, as XEP-0163 §4.3 says, to every
//!   available resource, of the account and of its contacts with a presence subscription
//!   (`from` or `both`), whose client asked for the node with `<node>+notify` in its
//!   XEP-0115 capabilities, verified by the `caps` module. The node's access model holds:
//!   `roster` limits them to the allowed groups, `whitelist` to the account and its
//!   affiliated entities.
//! - **Last items**: when a contact's resource becomes available (or announces new
//!   capabilities), it gets the latest item of every node it wants notifications of, from
//!   every account whose presence it receives, and from its own.
//! - The account's disco#info shows the `pubsub/pep` identity and the features.
//!
//! `[modules.pep]`: `max_nodes` (per account, 256), `max_items` (1,000: what `max` means),
//! `max_payload_bytes` (262,144: an avatar's data), `max_subscriptions` (1,000 per node),
//! `max_retrieve` (1,000).

#![forbid(unsafe_code)]

lithos_core::extension! { server: [server::MODULE] }

mod server;

pub use lithos_pubsub::{NS, NS_EVENT, NS_OWNER};
