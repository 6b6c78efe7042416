//! # lithos-server
//!
//! The Lithos XMPP server kernel: listeners (STARTTLS and direct TLS, XML or BXMPP told apart by
//! the first byte), stream negotiation (TLS, SASL SCRAM-SHA-256/SCRAM-SHA-1/PLAIN, resource
//! binding), sessions and routing (RFC 6121 §8), the module host, and storage with an embedded
//! SQLite default.
//!
//! Everything above the kernel is a module discovered through `inventory`: this crate names
//! none. A server is this crate plus the extension crates it links:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = lithos_server::Config::parse("domain = 'example.com'")?;
//! let server = lithos_server::RunningServer::start(config).await?;
//! server.run_until_signal().await;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod api;
pub mod cli;
pub mod component;
pub mod config;
mod http;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod module;
mod outbox;
mod resumption;
mod router;
mod server;
pub mod session;
pub mod shaper;
pub mod storage;
mod stream;
pub mod tls;
pub mod websocket;

/// SASL mechanisms and stored credentials (the `lithos-sasl` crate).
pub use lithos_sasl as sasl;

pub use config::Config;
pub use module::{
    ClientStanza, ClientStanzaHook, Flow, IqClaim, IqRequest, IqResponse, IqTarget, Module,
    ModuleRegistration, Verdict,
};
pub use server::{RunningServer, ServerHandle, StartError};
pub use session::SessionInfo;

/// The HTTP stack modules add routes with ([`Module::http_routes`]).
pub use axum;
#[doc(hidden)]
pub use inventory;
/// Links every `lithos-*` crate the calling package depends on (see `lithos_core::extension`).
pub use lithos_core::link_extensions;
/// JSON values, for HTTP API handlers.
pub use serde_json;
/// The TOML crate, whose `Table` holds a module's configuration section.
pub use toml;
