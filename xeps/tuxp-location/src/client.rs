//! Locating things from a client.

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::Jid;
use lithos_core::stanza::{Iq, IqPayload};

/// Location requests from a [`Client`].
pub trait LocationExt {
    /// The addresses of the things `ids`, as (id, JID) pairs.
    fn locate_things(
        &self,
        ids: &[&str],
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<(String, Jid)>, RequestError>> + Send;
}

impl LocationExt for Client {
    async fn locate_things(
        &self,
        ids: &[&str],
        timeout: Duration,
    ) -> Result<Vec<(String, Jid)>, RequestError> {
        let q = crate::request(ids);
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        let r = self
            .request(Iq::get("", q).with_to(server), timeout)
            .await?;
        let IqPayload::Result(Some(p)) = r.payload else {
            return Ok(Vec::new());
        };
        Ok(crate::locations(&p)
            .into_iter()
            .filter_map(|(id, loc)| Some((id, Jid::new(&loc).ok()?)))
            .collect())
    }
}
