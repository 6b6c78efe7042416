//! Asking to follow.

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Jid, Payload};

use crate::Follow;

/// Follow requests from a [`Client`].
pub trait FriendsExt {
    /// Asks to follow `event` (`{ns}name`) of the thing `friend` (`canceled`: stop);
    /// `Ok(approved)` says whether an operator approved it already.
    fn follow(
        &self,
        friend: Jid,
        event: &str,
        canceled: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, RequestError>> + Send;
}

impl FriendsExt for Client {
    async fn follow(
        &self,
        friend: Jid,
        event: &str,
        canceled: bool,
        timeout: Duration,
    ) -> Result<bool, RequestError> {
        let f = Follow {
            friend,
            event: event.to_string(),
            canceled,
            approved: None,
        };
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        let answer = self
            .request(Iq::set("", f.into_element()).with_to(server), timeout)
            .await?;
        Ok(match answer.payload {
            IqPayload::Result(Some(p)) => Follow::from_element(p)
                .ok()
                .and_then(|f| f.approved)
                .unwrap_or(false),
            _ => false,
        })
    }
}
