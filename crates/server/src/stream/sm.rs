//! XEP-0198 stream management on a client connection: `<enable/>` after binding, counting
//! what is handled and what is written, acknowledgements both ways, and `<resume/>` in place
//! of binding. Where a held session waits between connections: [`crate::resumption`].

use std::time::Duration;

use futures_util::SinkExt;
use lithos_core::stanza::DefinedCondition;
use lithos_core::{Element, Payload, StreamError, StreamErrorCondition};
use lithos_sm::{
    Ack, Enable, Enabled, Failed, Handled, HandledCountTooHigh, Resume, Resumed, Unacked,
};

use super::{Bound, Conn, ConnError, codec_io};
use crate::resumption::Refused;

/// Answers kept in the write buffer at most, while a client's input keeps coming.
pub(crate) const MAX_UNFLUSHED: u8 = 16;

/// A session's stream management state; it moves with the session from one connection to
/// the next on resumption.
#[derive(Debug)]
pub(crate) struct SmState {
    /// The resumption id, when the session is resumable.
    pub(crate) id: Option<String>,
    /// How long the session is held after its connection breaks.
    pub(crate) window: Duration,
    /// Stanzas handled from the client.
    pub(crate) handled: Handled,
    /// Stanzas written to the client and not acknowledged, oldest first.
    pub(crate) sent: Unacked<Element>,
    /// An `<r/>` is outstanding.
    pub(crate) requested: bool,
}

impl SmState {
    /// How many more stanzas may be written before an acknowledgement.
    pub(crate) fn room(&self, max_unacked: usize) -> usize {
        max_unacked.saturating_sub(self.sent.len())
    }

    /// Whether to ask for an acknowledgement after writing `more` stanzas.
    pub(crate) fn should_request(&self, more: usize, every: usize) -> bool {
        !self.requested && more > 0 && self.sent.len() + more >= every
    }
}

fn stream_error(e: StreamError) -> ConnError {
    ConnError::Stream(Box::new(e))
}

/// The stream error for an acknowledgement of more than was sent (XEP-0198 §4).
fn too_high(e: lithos_sm::TooHigh) -> ConnError {
    let mut se =
        StreamError::new(StreamErrorCondition::UndefinedCondition).with_text(e.to_string());
    se.application = Some(HandledCountTooHigh::from(e).into_element());
    stream_error(se)
}

/// A fresh resumption id: 128 random bits, in hex. It is not a credential on its own: only
/// the account that owns the session may resume it, after authenticating.
fn new_id() -> String {
    crate::ids::random_hex::<16>()
}

/// `f` within `limit`; a peer that takes nothing for that long counts as gone.
async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, ConnError>>,
) -> Result<T, ConnError> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(ConnError::Eof))
}

impl Conn {
    /// Writes one element outside the stanza flow (a stream management answer), within the
    /// session's write deadline.
    pub(crate) async fn write_nonza(&mut self, el: Element) -> Result<(), ConnError> {
        within(self.write_limit(), self.send(&el)).await
    }

    /// How long a write may wait for the peer (`[c2s] write_timeout_secs`).
    fn write_limit(&self) -> Duration {
        Duration::from_secs(self.server.config().c2s.write_timeout_secs)
    }

    /// Puts one element in the write buffer (within the write deadline), for the session
    /// loop to flush.
    async fn feed_nonza(&mut self, el: Element) -> Result<(), ConnError> {
        let limit = self.write_limit();
        let feed = SinkExt::<&Element>::feed(&mut self.framed, &el);
        within(limit, async { feed.await.map_err(codec_io) }).await?;
        self.unflushed += 1;
        if self.unflushed >= MAX_UNFLUSHED {
            self.unflushed = 0;
            self.flush_timed().await?;
        }
        Ok(())
    }

    /// Flushes the write buffer within the write deadline.
    pub(crate) async fn flush_timed(&mut self) -> Result<(), ConnError> {
        let limit = self.write_limit();
        let flush = SinkExt::<&Element>::flush(&mut self.framed);
        within(limit, async { flush.await.map_err(codec_io) }).await
    }

    async fn sm_failed(&mut self, c: DefinedCondition, h: Option<u32>) -> Result<(), ConnError> {
        self.write_nonza(Failed::new(c, h).into_element()).await
    }

    /// A stream management element in a bound session.
    pub(crate) async fn on_sm(&mut self, el: Element, b: &mut Bound) -> Result<(), ConnError> {
        let cfg = self.server.config().stream_management.clone();
        match (el.name(), b.sm.as_deref_mut()) {
            ("enable", _) if !cfg.enabled => {
                self.sm_failed(DefinedCondition::FeatureNotImplemented, None)
                    .await
            }
            ("enable", Some(_)) => {
                self.sm_failed(DefinedCondition::UnexpectedRequest, None)
                    .await
            }
            ("enable", None) => {
                let Ok(enable) = Enable::from_element(el) else {
                    return self.sm_failed(DefinedCondition::BadRequest, None).await;
                };
                let secs = match enable.max {
                    Some(m) => cfg.resume_timeout_secs.min(u64::from(m)),
                    None => cfg.resume_timeout_secs,
                };
                let id = (enable.resume && secs > 0).then(new_id);
                let answer = Enabled {
                    id: id.clone(),
                    resume: id.is_some(),
                    max: id.as_ref().map(|_| secs.try_into().unwrap_or(u32::MAX)),
                    location: None,
                };
                b.sm = Some(Box::new(SmState {
                    id: id.clone(),
                    window: Duration::from_secs(secs),
                    handled: Handled::default(),
                    sent: Unacked::new(),
                    requested: false,
                }));
                if let Some(id) = &id {
                    self.server.0.resumable.register(id, b);
                }
                tracing::debug!(resumable = id.is_some(), "stream management enabled");
                self.write_nonza(answer.into_element()).await
            }
            ("r", Some(sm)) => {
                // Buffered, and flushed by the session loop once no input waits: a client
                // that asks often (every few stanzas) costs one write per burst, not per ask.
                let h = sm.handled.get();
                self.feed_nonza(Ack { h }.into_element()).await
            }
            ("a", Some(sm)) => {
                let a = Ack::from_element(el).map_err(|e| {
                    stream_error(
                        StreamError::new(StreamErrorCondition::InvalidXml).with_text(e.to_string()),
                    )
                })?;
                sm.sent.ack(a.h).map_err(too_high)?;
                sm.requested = false;
                Ok(())
            }
            ("r" | "a" | "resume", _) => {
                self.sm_failed(DefinedCondition::UnexpectedRequest, None)
                    .await
            }
            (other, _) => Err(stream_error(
                StreamError::new(StreamErrorCondition::UnsupportedStanzaType).with_text(format!(
                    "<{other}/> in urn:xmpp:sm:3 is not sent by clients"
                )),
            )),
        }
    }

    /// Tells a resuming client its session is back, and writes again what it had not
    /// acknowledged (XEP-0198 §5), before anything newer.
    pub(crate) async fn resumed(&mut self, b: &mut Bound) -> Result<(), ConnError> {
        let Some(sm) = b.sm.as_deref() else {
            return Ok(());
        };
        let resumed = Resumed {
            previd: sm.id.clone().unwrap_or_default(),
            h: sm.handled.get(),
        }
        .into_element();
        let limit = self.write_limit();
        let framed = &mut self.framed;
        let write = async {
            SinkExt::<&Element>::feed(framed, &resumed)
                .await
                .map_err(codec_io)?;
            for el in sm.sent.iter() {
                SinkExt::<&Element>::feed(framed, el)
                    .await
                    .map_err(codec_io)?;
            }
            SinkExt::<&Element>::flush(framed).await.map_err(codec_io)
        };
        within(limit, write).await?;
        tracing::info!(
            jid = %b.info.jid,
            resent = sm.sent.len(),
            "session resumed"
        );
        Ok(())
    }

    /// `<resume/>` after authentication: the session back, or `<failed/>` and `None` (the
    /// client may then bind a new one).
    pub(crate) async fn resume(
        &mut self,
        el: Element,
        account: &str,
    ) -> Result<Option<Bound>, ConnError> {
        if !self.server.config().stream_management.enabled {
            self.sm_failed(DefinedCondition::FeatureNotImplemented, None)
                .await?;
            return Ok(None);
        }
        let Ok(r) = Resume::from_element(el) else {
            self.sm_failed(DefinedCondition::BadRequest, None).await?;
            return Ok(None);
        };
        let server = self.server.clone();
        let taken = server
            .0
            .resumable
            .take(&r.previd, account, self.listener, self.format())
            .await;
        let mut b = match taken {
            Ok(b) => b,
            Err(why) => {
                tracing::debug!(?why, "resumption refused");
                let c = match why {
                    Refused::Unknown => DefinedCondition::ItemNotFound,
                    Refused::OtherStream => DefinedCondition::NotAcceptable,
                };
                self.sm_failed(c, None).await?;
                return Ok(None);
            }
        };
        // Replaced in the meantime by a session bound to the same resource: that one wins
        // (RFC 6120 §7.7.2.2), and this one ends now.
        if !server.sessions().is_bound(&b.info) {
            let h = b.sm.as_ref().map(|s| s.handled.get());
            super::end_session(&server, b).await;
            self.sm_failed(DefinedCondition::ItemNotFound, h).await?;
            return Ok(None);
        }
        let acked = match b.sm.as_deref_mut() {
            Some(sm) => sm.sent.ack(r.h).map(|_| sm.requested = false),
            None => Ok(()),
        };
        if let Err(e) = acked {
            super::end_session(&server, b).await;
            return Err(too_high(e));
        }
        b.resuming = true;
        Ok(Some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_room() {
        let mut sm = SmState {
            id: None,
            window: Duration::ZERO,
            handled: Handled::default(),
            sent: Unacked::new(),
            requested: false,
        };
        assert!(!sm.should_request(0, 5));
        assert!(!sm.should_request(4, 5));
        assert!(sm.should_request(5, 5));
        (0..3).for_each(|_| sm.sent.push(Element::bare("message", "jabber:client")));
        assert!(sm.should_request(2, 5));
        assert_eq!(sm.room(4), 1);
        assert_eq!(sm.room(2), 0);
        sm.requested = true;
        assert!(
            !sm.should_request(10, 5),
            "one request outstanding at a time"
        );
    }
}
