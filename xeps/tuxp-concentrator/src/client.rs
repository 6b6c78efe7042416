//! The gateway's side: add, list and remove its nodes, and learn their follows.

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Jid, Payload};

use crate::{AddNode, LanFollow, LanFollows, Node, NodeAdded, PullNodes, RemoveNode};

/// Why a concentrator request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcentratorError {
    /// Refused (`item-not-found`, `service-unavailable`, `bad-request`, `conflict`,
    /// `not-acceptable`), timed out, or disconnected.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The server answered something else than the protocol's answer.
    #[error("unexpected answer: {0}")]
    Answer(String),
}

/// Concentrator requests, for a gateway's client.
pub trait ConcentratorExt {
    /// Adds a node an operator authorized; the answer says when and with which model.
    fn add_node(
        &self,
        node: AddNode,
        timeout: Duration,
    ) -> impl Future<Output = Result<NodeAdded, ConcentratorError>> + Send;
    /// The nodes the server knows behind this gateway (to sync from after a restart).
    fn pull_nodes(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Node>, ConcentratorError>> + Send;
    /// The follows between this gateway's nodes, to route on its LAN.
    fn lan_follows(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<LanFollow>, ConcentratorError>> + Send;
    /// Removes the node `lan_id`.
    fn remove_node(
        &self,
        lan_id: u8,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

fn server(c: &Client) -> Result<Jid, RequestError> {
    Jid::new(c.jid().domain()).map_err(|_| RequestError::Disconnected)
}

/// The answer's payload read as `P`.
fn answer<P: Payload>(iq: Iq) -> Result<P, ConcentratorError> {
    match iq.payload {
        IqPayload::Result(Some(p)) => {
            P::from_element(p).map_err(|e| ConcentratorError::Answer(e.to_string()))
        }
        other => Err(ConcentratorError::Answer(format!("{other:?}"))),
    }
}

impl ConcentratorExt for Client {
    async fn add_node(
        &self,
        node: AddNode,
        timeout: Duration,
    ) -> Result<NodeAdded, ConcentratorError> {
        let iq = Iq::set("", node.into_element()).with_to(server(self)?);
        answer(self.request(iq, timeout).await?)
    }

    async fn pull_nodes(&self, timeout: Duration) -> Result<Vec<Node>, ConcentratorError> {
        let iq = Iq::get("", PullNodes::default().into_element()).with_to(server(self)?);
        answer::<PullNodes>(self.request(iq, timeout).await?).map(|p| p.nodes)
    }

    async fn lan_follows(&self, timeout: Duration) -> Result<Vec<LanFollow>, ConcentratorError> {
        let iq = Iq::get("", LanFollows::default().into_element()).with_to(server(self)?);
        answer::<LanFollows>(self.request(iq, timeout).await?).map(|f| f.follows)
    }

    async fn remove_node(&self, lan_id: u8, timeout: Duration) -> Result<(), RequestError> {
        let iq = Iq::set("", RemoveNode { lan_id }.into_element()).with_to(server(self)?);
        self.request(iq, timeout).await.map(|_| ())
    }
}
