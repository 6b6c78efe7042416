//! The client side: every client of the program answers pings, and gets [`PingExt::ping`].

use std::future::Future;
use std::time::{Duration, Instant};

use lithos_client::handler::{ClientPlugin, Handlers, fn_handler};
use lithos_client::{Client, RequestError};
use lithos_core::Jid;
use lithos_core::stanza::Iq;

use crate::{NS, Ping};

/// Pinging from a [`Client`].
pub trait PingExt {
    /// Pings `to` (a server, an account, a device); `Ok` holds the round-trip time. A peer
    /// that does not support pings answers `service-unavailable`, which is still an answer.
    fn ping(
        &self,
        to: Jid,
        timeout: Duration,
    ) -> impl Future<Output = Result<Duration, RequestError>> + Send;
}

impl PingExt for Client {
    fn ping(
        &self,
        to: Jid,
        timeout: Duration,
    ) -> impl Future<Output = Result<Duration, RequestError>> + Send {
        let client = self.clone();
        async move {
            let start = Instant::now();
            let iq = Iq::get("", lithos_core::Payload::into_element(Ping)).with_to(to);
            client.request(iq, timeout).await?;
            Ok(start.elapsed())
        }
    }
}

/// A ping is answered with an empty result.
fn handlers() -> Handlers {
    vec![(NS, fn_handler(|_ctx, _iq| async { Ok(None) }))]
}

/// This crate's client plugin, registered by `extension!` in `lib.rs`.
pub(crate) const PLUGIN: ClientPlugin = ClientPlugin {
    name: "ping",
    features: &[NS],
    handlers,
};
