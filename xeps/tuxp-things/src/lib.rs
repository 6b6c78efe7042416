//! # lithos-tuxp-things
//!
//! What the TUXP protocols share about things (Lithosphere reference §3.0):
//!
//! - [`ThingId`]: `<MODEL>-<8 characters>`, where `MODEL` is a registered model name (which
//!   may itself contain dashes, as in `SL-01-0A1B2C3D`).
//! - [`ThingModel`]: what a model supports (actions, events, data), registered by the crate
//!   that defines it through `inventory`; the server refuses what a model does not declare.
//! - With the `server` feature, [`Registry`]: registered things, their owners (the operator
//!   who authorized each registration), pending authorizations, and execution grants, in the
//!   server's database; and the LAN nodes behind concentrators ([`NodeRecord`]), each a
//!   thing with an owner, reached at `<gateway>/<lan-id>`.

#[cfg(feature = "server")]
pub mod confirmations;
mod id;
mod model;
#[cfg(feature = "server")]
mod node;
#[cfg(feature = "server")]
mod nodes;
#[cfg(feature = "server")]
mod registry;

pub use id::{ThingId, ThingIdError};
pub use model::{Protocol, ThingModel, key_of, model, models};
#[cfg(feature = "server")]
pub use node::{is_lan_node, refuse, speaker};
#[cfg(feature = "server")]
pub use nodes::{MAX_LAN_FOLLOWS, MAX_NODES_PER_GATEWAY, NodeCache, NodeRecord, Subject};
#[cfg(feature = "server")]
pub use registry::{
    AccessChange, Authorization, PendingAuthorization, Registry, RegistryError, ThingCache,
    ThingRecord, access_changed, access_changes, access_generation, on_access_changes,
};

#[doc(hidden)]
pub use inventory;

/// The resource an edge thing binds (Lithosphere's `RegisteredEdgeThing.DEFAULT_RESOURCE_NAME`):
/// a thing's commands go to `<thing-name>@<domain>/0`.
pub const EDGE_RESOURCE: &str = "0";

/// The LAN id a resource names: `1` to `255`, written plainly (`5`, not `05`), Lithosphere's
/// rule for the nodes behind a gateway; `None` for the edge resource `0` and anything else.
pub fn lan_id(resource: &str) -> Option<u8> {
    resource
        .parse::<u8>()
        .ok()
        .filter(|n| *n >= 1 && n.to_string() == resource)
}

/// Milliseconds since the Unix epoch, now (the time base of expiries and stamps in the
/// TUXP crates).
pub use lithos_core::datetime::now_ms;

lithos_core::extension! { server: [registry::SCHEMA] }
