//! The client side: every client of the program answers pings, and gets [`PingExt::ping`].

use std::time::{Duration, Instant};

use lithos_client::{Client, RequestError, handler::ClientPlugin, handler::fn_handler};
use lithos_core::{Jid, Payload, stanza::Iq};

use crate::{NS, Ping};

/// Pinging from a [`Client`].
pub trait PingExt {
    /// Pings `to` (a server, an account, a device); `Ok` holds the round-trip time. A peer
    /// that does not support pings answers `service-unavailable`, which is still an answer.
    fn ping(&self, to: Jid, timeout: Duration) -> impl Future<Output = PingResult> + Send;
}

/// A round-trip time, or why there is none.
pub type PingResult = Result<Duration, RequestError>;

impl PingExt for Client {
    async fn ping(&self, to: Jid, timeout: Duration) -> PingResult {
        let start = Instant::now();
        self.request(Iq::get("", Ping.into_element()).with_to(to), timeout)
            .await?;
        Ok(start.elapsed())
    }
}

/// The plugin, registered in `lib.rs`: a ping is answered with an empty result.
pub(crate) const PLUGIN: ClientPlugin = ClientPlugin {
    name: "ping",
    features: &[NS],
    handlers: || vec![(NS, fn_handler(|_ctx, _iq| async { Ok(None) }))],
};
