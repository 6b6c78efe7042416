//! # lithos-client
//!
//! An async XMPP client (the Chalk of the Lithos stack): STARTTLS or direct TLS with rustls,
//! SASL SCRAM-SHA-256 / SCRAM-SHA-1 / PLAIN, resource binding, XML or BXMPP on the wire. Its
//! central promise: a request ends promptly in exactly one of **executed** (the result),
//! **error** (the stanza error answered), or **timeout** (at its deadline); a lost
//! connection ends every request in flight at once, and nothing queued is sent late.
//!
//! ```no_run
//! use std::time::Duration;
//! use lithos_client::{Client, Trust};
//! use lithos_core::{Element, Jid, stanza::Iq};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, mut events) = Client::builder("juliet@localhost", "r0m30")?
//!     .trust(Trust::pinned_file("lithos-data/tls/cert.pem")?)
//!     .connect().await?;
//! let ping = Iq::get("", Element::bare("ping", "urn:xmpp:ping")).with_to(Jid::new("localhost")?);
//! match client.request(ping, Duration::from_secs(2)).await {
//!     Ok(_) => println!("executed"),
//!     Err(e) => println!("not executed: {e}"), // error, timeout or disconnected
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! Incoming messages and presences arrive as [`Event`]s. Incoming iq requests go to
//! handlers by payload namespace ([`ClientBuilder::handle_iq`], or a linked crate's
//! [`handler::ClientPlugin`]); one nobody handles is answered `service-unavailable`.
//! Extension crates add typed APIs as extension traits on [`Client`] (for example
//! `lithos_ping::PingExt::ping`).

mod client;
mod config;
mod connection;
mod error;
pub mod handler;
mod negotiate;
mod preauth;
#[cfg(feature = "srv")]
mod srv;
mod tls;

pub use client::{Client, ClientBuilder, Event, Events};
pub use config::{Config, Reconnect, TlsMode};
pub use error::{ConnectError, RequestError, SendError};
pub use lithos_core::codec::WireFormat;
pub use lithos_sasl::Mechanism;
pub use preauth::Unauthenticated;
pub use tls::Trust;

#[doc(hidden)]
pub use inventory;
