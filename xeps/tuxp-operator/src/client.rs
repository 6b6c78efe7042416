//! The operator's and owner's side.

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::Iq;
use lithos_core::{Jid, Payload};

use crate::{
    ApproveFollow, AuthThing, ConfirmConcentration, Grant, NS_PENDING, PendingConfirmation,
};

/// Operator and owner requests from a [`Client`] (to its own server).
pub trait OperatorExt {
    /// Allows `thing_id` to register for the server's validity time, presenting
    /// `registration_key` (the device's key); the caller will own it.
    fn authorize_thing(
        &self,
        thing_id: &str,
        registration_key: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// Withdraws the caller's pending authorization.
    fn cancel_authorization(
        &self,
        thing_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// Allows `account` to command the caller's thing (`revoke`: no longer).
    fn set_grant(
        &self,
        thing_id: &str,
        account: Jid,
        revoke: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// As an operator: lets `follower` receive the `event` (`{ns}name`) notifications of
    /// the thing `friend`, which `follower` asked for (`canceled`: refuses or ends it).
    fn approve_follow(
        &self,
        approval: ApproveFollow,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// As an operator: lets the gateway `concentrator` (its thing id) add the node
    /// `node_thing_id`, which waits for it.
    fn confirm_concentration(
        &self,
        concentrator: &str,
        node_thing_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// As an operator: the nodes waiting for confirmation.
    fn pending_confirmations(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<PendingConfirmation>, RequestError>> + Send;
}

impl OperatorExt for Client {
    async fn confirm_concentration(
        &self,
        concentrator: &str,
        node_thing_id: &str,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        let c = ConfirmConcentration {
            concentrator_thing_id: concentrator.to_string(),
            node_thing_id: node_thing_id.to_string(),
        };
        self.request(Iq::set("", c.into_element()).with_to(server), timeout)
            .await
            .map(drop)
    }

    async fn pending_confirmations(
        &self,
        timeout: Duration,
    ) -> Result<Vec<PendingConfirmation>, RequestError> {
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        let q = lithos_core::Element::bare("pending", NS_PENDING);
        let answer = self
            .request(Iq::get("", q).with_to(server), timeout)
            .await?;
        Ok(match answer.payload {
            lithos_core::stanza::IqPayload::Result(Some(p)) => p
                .children()
                .filter(|c| PendingConfirmation::matches(c))
                .filter_map(|c| PendingConfirmation::from_element(c.clone()).ok())
                .collect(),
            _ => Vec::new(),
        })
    }

    async fn approve_follow(
        &self,
        approval: ApproveFollow,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        self.request(
            Iq::set("", approval.into_element()).with_to(server),
            timeout,
        )
        .await
        .map(drop)
    }
    fn authorize_thing(
        &self,
        thing_id: &str,
        registration_key: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send {
        let a = AuthThing {
            thing_id: thing_id.to_string(),
            registration_key: Some(registration_key.to_string()),
            canceled: false,
        };
        auth(self.clone(), a, timeout)
    }
    fn cancel_authorization(
        &self,
        thing_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send {
        let a = AuthThing {
            thing_id: thing_id.to_string(),
            registration_key: None,
            canceled: true,
        };
        auth(self.clone(), a, timeout)
    }
    async fn set_grant(
        &self,
        thing_id: &str,
        account: Jid,
        revoke: bool,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let g = Grant {
            thing_id: thing_id.to_string(),
            account,
            revoke,
        };
        let server = Jid::new(self.jid().domain()).map_err(|_| RequestError::Disconnected)?;
        self.request(Iq::set("", g.into_element()).with_to(server), timeout)
            .await
            .map(drop)
    }
}

async fn auth(c: Client, a: AuthThing, timeout: Duration) -> Result<(), RequestError> {
    let server = Jid::new(c.jid().domain()).map_err(|_| RequestError::Disconnected)?;
    let p = a.into_element();
    c.request(Iq::set("", p).with_to(server), timeout)
        .await
        .map(drop)
}
