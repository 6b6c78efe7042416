//! # lithos-version
//!
//! XEP-0092 (Software Version). With the `server` feature, the server answers
//! `jabber:iq:version` with its name and version; `[modules.version] os = true` adds the
//! operating system (off by default: it helps attackers more than users).

/// The namespace.
pub const NS: &str = "jabber:iq:version";

#[cfg(feature = "server")]
mod server;

lithos_core::extension! { server: [server::MODULE] }
