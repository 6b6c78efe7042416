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

    /// From a gateway: asks that its node `follower_lan_id` follow `event` of `friend`,
    /// another node behind it (`<gateway>@<domain>/<lan-id>`); as [`FriendsExt::follow`].
    fn follow_for_node(
        &self,
        friend: Jid,
        event: &str,
        follower_lan_id: u8,
        canceled: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, RequestError>> + Send;
}

/// Asks to follow (`follower_lan_id`: for that node of the sender, a gateway); whether the
/// answer says it is approved.
async fn request(
    c: &Client,
    friend: Jid,
    event: &str,
    follower_lan_id: Option<u8>,
    canceled: bool,
    timeout: Duration,
) -> Result<bool, RequestError> {
    let f = Follow {
        friend,
        event: event.to_string(),
        canceled,
        approved: None,
        follower_lan_id,
    };
    let server = Jid::new(c.jid().domain()).map_err(|_| RequestError::Disconnected)?;
    let answer = c
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

impl FriendsExt for Client {
    async fn follow(
        &self,
        friend: Jid,
        event: &str,
        canceled: bool,
        timeout: Duration,
    ) -> Result<bool, RequestError> {
        request(self, friend, event, None, canceled, timeout).await
    }

    async fn follow_for_node(
        &self,
        friend: Jid,
        event: &str,
        follower_lan_id: u8,
        canceled: bool,
        timeout: Duration,
    ) -> Result<bool, RequestError> {
        request(
            self,
            friend,
            event,
            Some(follower_lan_id),
            canceled,
            timeout,
        )
        .await
    }
}
