//! # lithos-testkit
//!
//! What every Lithos test needs, in one dev-dependency:
//!
//! - [`TestServer`]: a server in this process, on loopback ports chosen by the system, in a
//!   temporary directory, with the modules of the crates the test links (name a crate with
//!   `use lithos_roster as _;` to link it) and whatever configuration the test adds;
//!   accounts made directly in its storage; a restart on the same data.
//! - Clients: [`TestServer::client`] builds a `lithos_client::Client`; [`RawClient`] takes
//!   every step of a stream by hand, in XML or BXMPP, for input no library would write.
//! - [`databases`]: a store test's databases, SQLite and PostgreSQL, to run it on both.
//! - Helpers: [`stanza`], [`error_condition`], [`chat_burst`], [`bxmpp_message`], [`flood`].
//! - [`Proxy`]: a TCP proxy in front of the server whose link stalls, breaks, or stays down.
//! - With the `things` feature, the `things` module: a thing runtime pointed at the server, the demo
//!   light, and an operator who authorizes things.
//!
//! ```no_run
//! # async fn example() {
//! use lithos_testkit::TestServer;
//! let server = TestServer::start("").await;
//! server.add_user("alice", "alice-password").await;
//! let mut raw = server.login("alice", "alice-password", "tests").await;
//! let answer = raw.ping().await;
//! assert_eq!(answer.attr("type"), Some("result"));
//! # }
//! ```

use std::time::Duration;

mod helpers;
mod proxy;
mod raw;
mod server;
#[cfg(feature = "things")]
pub mod things;

pub use helpers::{
    befriend, buf, bxmpp_message, chat_burst, error_condition, flood, next_event, roster_items,
    roster_push, roster_query, stanza, subscribe,
};
pub use proxy::Proxy;
pub use raw::{RawClient, connector_for};
pub use server::TestServer;

/// The wire formats, re-exported for [`in_both_formats!`].
pub use lithos_core::codec::WireFormat;

/// Runs each `async fn name(format: WireFormat)` of the test file as two tests, `name::xml`
/// and `name::bxmpp`: a behaviour holds in both formats.
///
/// ```ignore
/// async fn outcomes(format: WireFormat) { /* ... */ }
/// lithos_testkit::in_both_formats!(outcomes);
/// ```
#[macro_export]
macro_rules! in_both_formats {
    ($($f:ident),* $(,)?) => {$(
        mod $f {
            #[tokio::test]
            async fn xml() {
                super::$f($crate::WireFormat::Xml).await
            }
            #[tokio::test]
            async fn bxmpp() {
                super::$f($crate::WireFormat::Bxmpp).await
            }
        }
    )*};
}

/// How long a test waits for what should come.
pub const WAIT: Duration = Duration::from_secs(5);

/// The databases a store's test runs on, so that it checks the same code on both engines:
/// an in-memory SQLite database, and a fresh PostgreSQL database when a server can start
/// (see `lithos-testservices`: otherwise the test prints that it skipped PostgreSQL, or
/// fails when `LITHOS_REQUIRE_POSTGRES=1`).
pub async fn databases(test: &str) -> Vec<lithos_server::storage::Database> {
    let mut all = vec![
        lithos_server::storage::SqliteStore::in_memory()
            .unwrap()
            .into(),
    ];
    if let Some(url) = lithos_testservices::postgres_or_skip(test) {
        let pg = lithos_server::storage::PgStore::connect(&url, 4)
            .await
            .unwrap_or_else(|e| panic!("{test}: PostgreSQL at {url}: {e}"));
        all.push(pg.into());
    }
    all
}
