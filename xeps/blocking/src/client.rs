//! The blocklist from a client.

use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Jid, Payload};

use crate::{Block, Blocklist, Item, Unblock};

/// The blocking command (XEP-0191) on a [`Client`].
pub trait BlockingExt {
    /// The addresses this account blocks (the server then pushes changes to this resource).
    fn blocklist(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Jid>, RequestError>> + Send;

    /// Blocks `jids` (at least one).
    fn block(
        &self,
        jids: Vec<Jid>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;

    /// Unblocks `jids`; everyone when empty.
    fn unblock(
        &self,
        jids: Vec<Jid>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

fn items(jids: Vec<Jid>) -> Vec<Item> {
    jids.into_iter().map(|jid| Item { jid }).collect()
}

impl BlockingExt for Client {
    async fn blocklist(&self, timeout: Duration) -> Result<Vec<Jid>, RequestError> {
        let r = self
            .request(Iq::get("", Blocklist::default().into_element()), timeout)
            .await?;
        Ok(match r.payload {
            IqPayload::Result(Some(p)) => Blocklist::from_element(p)
                .map(|b| b.items.into_iter().map(|i| i.jid).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    async fn block(&self, jids: Vec<Jid>, timeout: Duration) -> Result<(), RequestError> {
        let b = Block { items: items(jids) };
        self.request(Iq::set("", b.into_element()), timeout)
            .await
            .map(drop)
    }

    async fn unblock(&self, jids: Vec<Jid>, timeout: Duration) -> Result<(), RequestError> {
        let u = Unblock { items: items(jids) };
        self.request(Iq::set("", u.into_element()), timeout)
            .await
            .map(drop)
    }
}
