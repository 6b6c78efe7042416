//! The client side: sending at a level ([`QosExt`]), retransmitting ([`until_answered`]),
//! and the plugin that receives acknowledged and assured messages for every client.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use lithos_client::handler::{ClientPlugin, HandlerContext, Handlers, IqAnswer, IqHandler};
use lithos_client::{Client, Event, RequestError};
use lithos_core::stanza::{DefinedCondition, ErrorType, Iq, IqPayload, Message, StanzaError};
use lithos_core::{Element, Jid, Payload};

use crate::{Acknowledged, Assured, Deliver, Level, NS, Received, stamp_message};

/// How a request is retransmitted: the same iq (same id) after `initial`, then after
/// doubling intervals (at most `max_interval`), until `give_up` has passed since the first
/// try. The default waits 1 s first, then 2, 4 and 5 s, for 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The first wait for an answer.
    pub initial: Duration,
    /// The longest wait between two tries.
    pub max_interval: Duration,
    /// When to stop trying and report failure.
    pub give_up: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            give_up: Duration::from_secs(30),
        }
    }
}

/// Why [`until_answered`] stopped without an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryError {
    /// The recipient refused for good (an error whose type is not `wait`).
    #[error("refused: {0}")]
    Refused(Box<StanzaError>),
    /// No answer within the retry policy's time.
    #[error("no answer after {0:?}")]
    GaveUp(Duration),
}

/// Sends `iq` (the same id every time) until an answer that is not a `wait` error: across
/// time-outs, lost connections (with the client's reconnection on) and "try again later".
pub async fn until_answered(client: &Client, iq: Iq, retry: Retry) -> Result<Iq, RetryError> {
    let start = tokio::time::Instant::now();
    let mut interval = retry.initial;
    loop {
        let tried = tokio::time::Instant::now();
        let left = retry.give_up.saturating_sub(start.elapsed());
        match client.request(iq.clone(), interval.min(left)).await {
            Ok(answer) => return Ok(answer),
            Err(RequestError::Stanza(e)) if e.type_ != ErrorType::Wait => {
                return Err(RetryError::Refused(e));
            }
            Err(_) => {}
        }
        if start.elapsed() >= retry.give_up {
            return Err(RetryError::GaveUp(start.elapsed()));
        }
        // A lost connection answers at once: wait out the interval before the next try.
        tokio::time::sleep_until((tried + interval).min(start + retry.give_up)).await;
        interval = (interval * 2).min(retry.max_interval);
    }
}

/// A fresh message id: unique per process (random start), increasing.
pub fn next_message_id() -> String {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let p = PREFIX.get_or_init(rand::random::<u64>);
    format!("{p:016x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Why a message sent with QoS was not confirmed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QosError {
    /// The recipient (or the server) refused it: `not-allowed` (untrusted sender),
    /// `resource-constraint` (too many pending), `service-unavailable` (no QoS support)...
    #[error("refused: {0}")]
    Refused(Box<StanzaError>),
    /// No confirmation within the retry policy's time.
    #[error("no confirmation after {0:?}")]
    GaveUp(Duration),
    /// At most once: the client is not connected.
    #[error("not connected")]
    NotConnected,
    /// The recipient answered the assured message without `<received/>` for it.
    #[error("the recipient did not confirm the reception")]
    NotReceived,
}

impl From<RetryError> for QosError {
    fn from(e: RetryError) -> QosError {
        match e {
            RetryError::Refused(e) => QosError::Refused(e),
            RetryError::GaveUp(d) => QosError::GaveUp(d),
        }
    }
}

/// Sending with a delivery level from a [`Client`].
pub trait QosExt {
    /// Sends `message` to `to` at `level`, retrying by `retry`. `Ok` means: sent (at most
    /// once), acknowledged by the recipient (at least once), or received and then delivered
    /// exactly once.
    fn send_with_qos(
        &self,
        to: Jid,
        message: Message,
        level: Level,
        retry: Retry,
    ) -> impl Future<Output = Result<(), QosError>> + Send;
}

impl QosExt for Client {
    async fn send_with_qos(
        &self,
        to: Jid,
        mut message: Message,
        level: Level,
        retry: Retry,
    ) -> Result<(), QosError> {
        message.from = None;
        if level == Level::AtMostOnce {
            message.to = Some(to);
            return self.send(message).await.map_err(|_| QosError::NotConnected);
        }
        message.to = None;
        let body = Element::from(message);
        if level == Level::AtLeastOnce {
            let iq = Iq::set(
                self.next_id(),
                Acknowledged { message: body }.into_element(),
            )
            .with_to(to);
            return until_answered(self, iq, retry)
                .await
                .map(drop)
                .map_err(Into::into);
        }
        let msg_id = next_message_id();
        let iq = Iq::set(
            self.next_id(),
            Assured {
                msg_id: msg_id.clone(),
                message: body,
            }
            .into_element(),
        )
        .with_to(to.clone());
        let answer = until_answered(self, iq, retry).await?;
        let received = match answer.payload {
            IqPayload::Result(Some(p)) => Received::from_element(p).ok(),
            _ => None,
        };
        if received.is_none_or(|r| r.msg_id != msg_id) {
            return Err(QosError::NotReceived);
        }
        let iq = Iq::set(self.next_id(), Deliver { msg_id }.into_element()).with_to(to);
        until_answered(self, iq, retry)
            .await
            .map(drop)
            .map_err(Into::into)
    }
}

/// Most assured messages one sender may leave pending in a client.
const PER_SENDER: usize = 64;
/// Most assured messages pending in a client in all.
const TOTAL: usize = 4096;
/// How many delivered ids a client remembers (to answer late duplicates without delivering).
const REMEMBERED: usize = 4096;

#[derive(Default)]
struct State {
    /// (sender full JID, msgId) → the stamped message.
    pending: HashMap<(String, String), Element>,
    per_sender: HashMap<String, usize>,
    delivered: HashSet<(String, String)>,
    delivered_order: VecDeque<(String, String)>,
}

/// The receiving side, one per client.
#[derive(Default)]
struct Receiver {
    state: Mutex<State>,
}

fn constraint(text: &str) -> StanzaError {
    StanzaError::new(DefinedCondition::ResourceConstraint).with_text(text.to_string())
}

impl Receiver {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn emit(ctx: &HandlerContext, message: Element) {
        if let Ok(m) = Message::try_from(message) {
            ctx.emit(Event::Message(m)).await;
        }
    }
}

#[async_trait]
impl IqHandler for Receiver {
    async fn handle(&self, ctx: &HandlerContext, request: Iq) -> IqAnswer {
        let IqPayload::Set(payload) = request.payload else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let from = request.from.map(|j| j.to_string()).unwrap_or_default();
        let to = ctx.client().jid().to_string();
        match payload.name() {
            "acknowledged" => {
                let a = Acknowledged::from_element(payload)?;
                Self::emit(ctx, stamp_message(a.message, &from, &to)).await;
                Ok(None)
            }
            "assured" => {
                let a = Assured::from_element(payload)?;
                let key = (from.clone(), a.msg_id.clone());
                let answer = Received {
                    msg_id: a.msg_id.clone(),
                }
                .into_element();
                let mut s = self.lock();
                if s.delivered.contains(&key) || s.pending.contains_key(&key) {
                    return Ok(Some(answer));
                }
                if s.per_sender.get(&from).copied().unwrap_or(0) >= PER_SENDER {
                    return Err(constraint("too many assured messages pending from you"));
                }
                if s.pending.len() >= TOTAL {
                    return Err(constraint("too many assured messages pending"));
                }
                *s.per_sender.entry(from.clone()).or_default() += 1;
                s.pending.insert(key, stamp_message(a.message, &from, &to));
                Ok(Some(answer))
            }
            "deliver" => {
                let d = Deliver::from_element(payload)?;
                let key = (from.clone(), d.msg_id);
                let message = {
                    let mut s = self.lock();
                    let m = s.pending.remove(&key);
                    if m.is_some() {
                        if let Some(n) = s.per_sender.get_mut(&from) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                s.per_sender.remove(&from);
                            }
                        }
                        s.delivered.insert(key.clone());
                        s.delivered_order.push_back(key);
                        if s.delivered_order.len() > REMEMBERED
                            && let Some(old) = s.delivered_order.pop_front()
                        {
                            s.delivered.remove(&old);
                        }
                    }
                    m
                };
                if let Some(m) = message {
                    Self::emit(ctx, m).await;
                }
                Ok(None)
            }
            other => Err(StanzaError::new(DefinedCondition::FeatureNotImplemented)
                .with_text(format!("<{other}/> is not a QoS request"))),
        }
    }
}

fn handlers() -> Handlers {
    vec![(NS, std::sync::Arc::new(Receiver::default()))]
}

/// This crate's client plugin, registered by `extension!` in `lib.rs`.
pub(crate) const PLUGIN: ClientPlugin = ClientPlugin {
    name: "qos",
    features: &[NS],
    handlers,
};
