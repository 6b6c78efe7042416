//! The thing's side: notify, retransmitting until acknowledged; and reading notifications
//! out of the messages an owner receives.

use std::future::Future;
use std::time::Duration;

use lithos_client::Client;
use lithos_core::stanza::{Iq, Message, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_qos::{Retry, RetryError, until_answered};

use crate::Notification;

/// Lithosphere's retransmission strategy (`TimeBasedRexStrategy`): the same iq again after
/// `initial`, then after doubling intervals, until `give_up` has passed since the first try.
/// Its rules hold here: `initial` > 100 ms, `give_up` > 1 s and > `initial`. The default is
/// the LPWAN gateway's: 200 ms and 2 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rex {
    /// The first wait for the acknowledgement.
    pub initial: Duration,
    /// When to stop and report failure.
    pub give_up: Duration,
}

impl Default for Rex {
    fn default() -> Rex {
        Rex {
            initial: Duration::from_millis(200),
            give_up: Duration::from_secs(2),
        }
    }
}

/// Why a notification was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    /// The retransmission settings break Lithosphere's rules.
    #[error("retransmission: {0}")]
    BadRex(&'static str),
    /// The server refused it (not a thing, undeclared event, malformed).
    #[error("refused: {0}")]
    Refused(Box<StanzaError>),
    /// No acknowledgement in time ("noAck").
    #[error("no acknowledgement after {0:?}")]
    NoAck(Duration),
    /// Without acknowledgement: the client is not connected.
    #[error("not connected")]
    NotConnected,
}

/// Notifying from a thing's [`Client`].
pub trait NotifierExt {
    /// Sends `event`; with `ack`, retransmits it (same id) with the default [`Rex`] until the
    /// server acknowledges it: delivered to the owner, or stored for them.
    fn notify(
        &self,
        event: Element,
        ack: bool,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send {
        self.notify_with(event, ack, Rex::default())
    }

    /// [`notify`](Self::notify) with a retransmission strategy.
    fn notify_with(
        &self,
        event: Element,
        ack: bool,
        rex: Rex,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;

    /// A gateway notifies for its LAN node `lan_id` (1–255): the notification comes from
    /// `<gateway>/<lan-id>`, and the server checks it against the node's model and owner.
    fn notify_for_node(
        &self,
        lan_id: u8,
        event: Element,
        ack: bool,
        rex: Rex,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

impl NotifierExt for Client {
    async fn notify_with(&self, event: Element, ack: bool, rex: Rex) -> Result<(), NotifyError> {
        notify_as(self, None, event, ack, rex).await
    }

    async fn notify_for_node(
        &self,
        lan_id: u8,
        event: Element,
        ack: bool,
        rex: Rex,
    ) -> Result<(), NotifyError> {
        let node = self.jid().to_bare().with_resource(&lan_id.to_string()).ok();
        notify_as(self, node, event, ack, rex).await
    }
}

async fn notify_as(
    client: &Client,
    from: Option<Jid>,
    event: Element,
    ack: bool,
    rex: Rex,
) -> Result<(), NotifyError> {
    if rex.initial <= Duration::from_millis(100) {
        return Err(NotifyError::BadRex("the first interval must exceed 100 ms"));
    }
    if rex.give_up <= Duration::from_secs(1) || rex.give_up <= rex.initial {
        return Err(NotifyError::BadRex(
            "the time-out must exceed 1 s and the first interval",
        ));
    }
    let mut iq = Iq::set(
        client.next_id(),
        Notification {
            ack_required: ack,
            event,
        }
        .into_element(),
    );
    iq.from = from;
    if !ack {
        return client.send(iq).await.map_err(|_| NotifyError::NotConnected);
    }
    // Doubling without a ceiling of its own: the time-out bounds every wait.
    let retry = Retry {
        initial: rex.initial,
        max_interval: rex.give_up,
        give_up: rex.give_up,
    };
    match until_answered(client, iq, retry).await {
        Ok(_) => Ok(()),
        Err(RetryError::Refused(e)) => Err(NotifyError::Refused(e)),
        Err(RetryError::GaveUp(after)) => Err(NotifyError::NoAck(after)),
    }
}

/// The notification in a message an owner received: the notifying address and the event.
pub fn notification_of(message: &Message) -> Option<(Jid, Element)> {
    let from = message.from.clone()?;
    let el = message.payloads.iter().find(|p| Notification::matches(p))?;
    Some((from, Notification::from_element(el.clone()).ok()?.event))
}
