//! Both sides: send a signal, receive them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lithos_client::handler::{HandlerContext, IqAnswer, IqHandler};
use lithos_client::{Client, RequestError};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Jid, Payload};
use tokio::sync::mpsc;

use crate::Signal;

/// Signals waiting for the application, at most; past it a signal is refused
/// (`resource-constraint`) and its sender may try again.
pub const INCOMING_QUEUE: usize = 256;

/// Sending signals from a [`Client`].
pub trait SignalingExt {
    /// Sends `signal` to `to` (a thing's bare JID means its edge session; an account's full
    /// JID); returns once the peer accepted it.
    fn signal(
        &self,
        to: Jid,
        signal: Signal,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

impl SignalingExt for Client {
    async fn signal(&self, to: Jid, signal: Signal, timeout: Duration) -> Result<(), RequestError> {
        let iq = Iq::set("", signal.normalized().into_element()).with_to(to);
        self.request(iq, timeout).await.map(drop)
    }
}

/// A signal received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Who sent it (the server checked it).
    pub from: Jid,
    /// What it says.
    pub signal: Signal,
}

struct Handler(mpsc::Sender<Incoming>);

#[async_trait::async_trait]
impl IqHandler for Handler {
    async fn handle(&self, _ctx: &HandlerContext, request: Iq) -> IqAnswer {
        let IqPayload::Set(payload) = request.payload else {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "a signal is a set",
            ));
        };
        let signal = Signal::from_element(payload)?;
        let Some(from) = request.from else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        self.0.try_send(Incoming { from, signal }).map_err(|_| {
            StanzaError::explained(
                DefinedCondition::ResourceConstraint,
                "too many signals wait for the application",
            )
        })?;
        Ok(None)
    }
}

/// A handler for the namespace (`ClientBuilder::handle_iq(NS, …)`, or a thing runtime's
/// `handle_iq`) that accepts every signal and hands it to the receiver.
pub fn incoming() -> (Arc<dyn IqHandler>, mpsc::Receiver<Incoming>) {
    let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
    (Arc::new(Handler(tx)), rx)
}
