//! # lithos-presence
//!
//! Presence (RFC 6121 §3–4), as a server module: the subscription state machine (requests
//! stored until answered, pre-approval, cancellation, each change pushed to the roster),
//! broadcast of available and unavailable presence to subscribers and to the account's own
//! resources, probes on initial presence and their answers, directed presence, and
//! unavailable presence on disconnect.

#[cfg(feature = "server")]
mod server;

lithos_core::extension! { server: [server::MODULE] }
