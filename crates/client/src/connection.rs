//! The task that owns a connection: writes what the handles queue, reads and dispatches what
//! the server sends, keeps the connection alive, and reconnects when asked to.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lithos_core::stanza::{DefinedCondition, Iq, Stanza, StanzaError};
use lithos_core::{Element, Jid, Payload, StreamEvent};
use lithos_sm::{Ack, Handled, Request, Unacked};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::{Command, Event, Shared, WeakClient};
use crate::config::Config;
use crate::handler::{HandlerContext, IqHandler};
use crate::negotiate::{Connected, ResumeFrom, SmStart, Transport, codec_error, stream_error};

/// How long a write may wait for the socket before the connection counts as lost.
const WRITE_LIMIT: Duration = Duration::from_secs(30);

/// With stream management: ask the server for an acknowledgement once this many stanzas
/// are unacknowledged (one request outstanding at a time).
const REQUEST_EVERY: usize = 5;
/// With stream management: a server that leaves this many stanzas unacknowledged is taken
/// for lost (the copies kept for a resumption are bounded).
const MAX_UNACKED: usize = 4096;

/// A session's stream management (XEP-0198), kept across a resumption.
struct Sm {
    /// The resumption id, when the session is resumable.
    id: Option<String>,
    /// Stanzas handled from the server.
    handled: Handled,
    /// Stanzas written and not acknowledged, to send again on a resumption.
    sent: Unacked<Element>,
    /// An `<r/>` is outstanding.
    requested: bool,
}

impl Sm {
    fn new(id: Option<String>) -> Sm {
        Sm {
            id,
            handled: Handled::default(),
            sent: Unacked::new(),
            requested: false,
        }
    }
}

/// Why a session ended.
enum Ended {
    /// The application closed it (or dropped every handle).
    Closed(Option<oneshot::Sender<()>>),
    /// Lost: the reason.
    Lost(String),
}

pub(crate) struct Driver {
    config: Config,
    shared: Arc<Shared>,
    client: WeakClient,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    handlers: HashMap<String, Arc<dyn IqHandler>>,
    /// Stream management, when the server gave it.
    sm: Option<Sm>,
    /// What a resumption sends again first.
    resend: Vec<Element>,
}

impl Driver {
    pub(crate) fn new(
        config: Config,
        shared: Arc<Shared>,
        client: WeakClient,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
    ) -> Driver {
        let handlers = crate::handler::table(&config.handlers);
        Driver {
            config,
            shared,
            client,
            commands,
            events,
            handlers,
            sm: None,
            resend: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self, first: Connected) {
        let mut conn = first;
        self.sm = match &conn.sm {
            SmStart::Enabled { id } => Some(Sm::new(id.clone())),
            _ => None,
        };
        loop {
            for el in std::mem::take(&mut conn.early) {
                self.dispatch_and_reply(&mut conn.framed, el).await;
            }
            let ended = self.session(&mut conn.framed).await;
            self.shared.connected.store(false, Ordering::Release);
            // A resumable session keeps its requests in flight: the answers come on the
            // next connection. Otherwise they end now.
            let resumable = self.config.reconnect.is_some()
                && matches!(ended, Ended::Lost(_))
                && self.sm.as_ref().is_some_and(|s| s.id.is_some());
            if !resumable {
                self.shared.fail_pending();
                self.sm = None;
            }
            // Nothing queued for the old connection is sent on a new one: a command
            // delayed by a reconnection must not run late.
            while self.commands.try_recv().is_ok() {}
            let reason = match ended {
                Ended::Closed(done) => {
                    let _ = self
                        .events
                        .send(Event::Disconnected {
                            reason: None,
                            reconnecting: false,
                        })
                        .await;
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                    return;
                }
                Ended::Lost(reason) => reason,
            };
            tracing::info!(%reason, "connection lost");
            let reconnecting = self.config.reconnect.is_some();
            let _ = self
                .events
                .send(Event::Disconnected {
                    reason: Some(reason),
                    reconnecting,
                })
                .await;
            match self.reconnect().await {
                Some(c) => conn = c,
                None => {
                    self.shared.fail_pending();
                    return;
                }
            }
        }
    }

    /// A stanza to dispatch outside the session loop (one read before `<enabled/>`).
    async fn dispatch_and_reply(&mut self, framed: &mut Transport, el: Element) {
        if let Some(reply) = self.dispatch(el).await {
            let _ = self.write_stanza(framed, reply).await;
        }
    }

    /// Tries to connect again with growing delays (resuming the session when it can); `None`
    /// when reconnection is off or the application closed the client meanwhile.
    async fn reconnect(&mut self) -> Option<Connected> {
        let policy = self.config.reconnect?;
        let mut delay = policy.initial;
        loop {
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.25);
            let wake = Instant::now() + delay + jitter;
            // Wait, but stop if the application closes (or drops) the client.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    cmd = self.commands.recv() => match cmd {
                        None => return None,
                        Some(Command::Close(done)) => {
                            let _ = done.send(());
                            return None;
                        }
                        Some(Command::Send(_)) => {} // not connected: dropped (senders were told)
                    },
                }
            }
            let resume = self.sm.as_ref().and_then(|s| {
                Some(ResumeFrom {
                    id: s.id.clone()?,
                    h: s.handled.get(),
                    jid: self
                        .shared
                        .jid
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                })
            });
            match crate::negotiate::connect(&self.config, resume.as_ref()).await {
                Ok(c) => {
                    let event = match &c.sm {
                        SmStart::Resumed { h } => match self.resumed(*h) {
                            Ok(()) => {
                                tracing::info!(jid = %c.jid, resent = self.resend.len(), "resumed");
                                Event::Resumed { jid: c.jid.clone() }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "inconsistent acknowledgement on resumption");
                                self.shared.fail_pending();
                                self.sm = None;
                                Event::Reconnected { jid: c.jid.clone() }
                            }
                        },
                        fresh => {
                            // A new session: what was in flight in the old one ends.
                            self.shared.fail_pending();
                            self.sm = match fresh {
                                SmStart::Enabled { id } => Some(Sm::new(id.clone())),
                                _ => None,
                            };
                            tracing::info!(jid = %c.jid, "reconnected");
                            Event::Reconnected { jid: c.jid.clone() }
                        }
                    };
                    *self.shared.jid.write().unwrap_or_else(|e| e.into_inner()) = c.jid.clone();
                    self.shared.csi.store(c.csi, Ordering::Release);
                    self.shared.connected.store(true, Ordering::Release);
                    let _ = self.events.send(event).await;
                    return Some(c);
                }
                Err(e) => {
                    tracing::info!(error = %e, ?delay, "reconnection failed");
                    delay = (delay * 2).min(policy.max);
                }
            }
        }
    }

    /// The server took the session back, having handled `h` of the client's stanzas: the
    /// rest is sent again first, except requests nobody waits for any more (their caller got
    /// its timeout: they must not run late).
    fn resumed(&mut self, h: u32) -> Result<(), lithos_sm::TooHigh> {
        let Some(sm) = self.sm.as_mut() else {
            return Ok(());
        };
        sm.sent.ack(h)?;
        sm.requested = false;
        let pending = self.shared.lock_pending();
        self.resend = sm
            .sent
            .rewind()
            .into_iter()
            .filter(|el| {
                let request = el.name() == "iq" && matches!(el.attr("type"), Some("get" | "set"));
                !request || el.attr("id").is_some_and(|id| pending.contains_key(id))
            })
            .collect();
        Ok(())
    }

    /// Runs one connection until it ends.
    async fn session(&mut self, framed: &mut Transport) -> Ended {
        let keepalive = self.config.keepalive;
        let mut last_write = Instant::now();
        if let Err(e) = self.write_resend(framed).await {
            return e;
        }
        loop {
            let idle_until = keepalive.map(|k| last_write + k);
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    match cmd {
                        None => return close(framed, self.last_ack(), None).await,
                        Some(Command::Close(done)) => return close(framed, self.last_ack(), Some(done)).await,
                        Some(Command::Send(el)) => {
                            if let Err(e) = self.write_batch(framed, el).await {
                                return e;
                            }
                            last_write = Instant::now();
                        }
                    }
                }
                ev = framed.next() => match ev {
                    Some(Ok(StreamEvent::Element(el))) => {
                        if let Some(e) = stream_error(&el) {
                            return Ended::Lost(format!("stream error: {e}"));
                        }
                        if lithos_sm::is_sm(&el) {
                            if let Err(e) = self.on_sm(framed, el).await {
                                return e;
                            }
                            continue;
                        }
                        if let Some(sm) = self.sm.as_mut()
                            && lithos_sm::is_counted(&el)
                        {
                            sm.handled.count();
                        }
                        if let Some(reply) = self.dispatch(el).await {
                            if let Err(e) = self.write_stanza(framed, reply).await {
                                return e;
                            }
                            last_write = Instant::now();
                        }
                    }
                    Some(Ok(StreamEvent::KeepAlive)) => {}
                    Some(Ok(StreamEvent::Close)) => {
                        let _ = framed.send(StreamEvent::Close).await;
                        return Ended::Lost("the server closed the stream".into());
                    }
                    Some(Ok(StreamEvent::Header(_))) => {
                        return Ended::Lost("the server restarted the stream".into());
                    }
                    Some(Err(e)) => return Ended::Lost(codec_error(e).to_string()),
                    None => return Ended::Lost("the server closed the connection".into()),
                },
                _ = sleep_until(idle_until) => {
                    if let Err(e) = timed(framed.send(StreamEvent::KeepAlive)).await {
                        return e;
                    }
                    last_write = Instant::now();
                }
            }
        }
    }

    /// Queues one stanza for writing. A stanza the wire format cannot carry (BXMPP without
    /// a code for one of its namespaces) is refused alone: the request waiting for it ends
    /// with `not-acceptable`, and the connection goes on.
    async fn feed(&mut self, framed: &mut Transport, el: Element) -> Result<(), Ended> {
        let id = (el.name() == "iq" && matches!(el.attr("type"), Some("get" | "set")))
            .then(|| el.attr("id").map(str::to_string))
            .flatten();
        let written =
            tokio::time::timeout(WRITE_LIMIT, SinkExt::<&Element>::feed(framed, &el)).await;
        // With stream management, a stanza is kept until the server acknowledges it; one
        // whose write failed midway too (the server's count on resumption tells).
        if let Some(sm) = self.sm.as_mut()
            && lithos_sm::is_counted(&el)
            && !matches!(written, Ok(Err(lithos_core::CodecError::Bxmpp(_))))
        {
            sm.sent.push(el);
        }
        match written {
            Ok(Err(lithos_core::CodecError::Bxmpp(e))) => {
                tracing::warn!(error = %e, "a stanza that BXMPP cannot carry was not sent");
                if let Some(p) = id.and_then(|id| self.shared.lock_pending().remove(&id)) {
                    let _ = p.tx.send(Err(crate::RequestError::Stanza(Box::new(
                        StanzaError::new(DefinedCondition::NotAcceptable)
                            .with_text(format!("not sent: BXMPP cannot carry it ({e})")),
                    ))));
                }
                Ok(())
            }
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Ended::Lost(codec_error(e).to_string())),
            Err(_) => Err(Ended::Lost("the server does not read".into())),
        }
    }

    /// The acknowledgement of everything handled, to write before closing.
    fn last_ack(&self) -> Option<Element> {
        let h = self.sm.as_ref()?.handled.get();
        Some(Ack { h }.into_element())
    }

    /// Writes one stanza now (counted by stream management, as every stanza is).
    async fn write_stanza(&mut self, framed: &mut Transport, el: Element) -> Result<(), Ended> {
        self.feed(framed, el).await?;
        timed(SinkExt::<StreamEvent>::flush(framed)).await
    }

    /// Writes what a resumption sends again, before anything newer.
    async fn write_resend(&mut self, framed: &mut Transport) -> Result<(), Ended> {
        let resend = std::mem::take(&mut self.resend);
        if resend.is_empty() {
            return Ok(());
        }
        for el in resend {
            self.feed(framed, el).await?;
        }
        self.request_ack(framed).await?;
        timed(SinkExt::<StreamEvent>::flush(framed)).await
    }

    /// A stream management element from the server.
    async fn on_sm(&mut self, framed: &mut Transport, el: Element) -> Result<(), Ended> {
        let Some(sm) = self.sm.as_mut() else {
            tracing::debug!(element = %el, "stream management element without stream management");
            return Ok(());
        };
        if Request::matches(&el) {
            return write(
                framed,
                Ack {
                    h: sm.handled.get(),
                }
                .into_element(),
            )
            .await;
        }
        if Ack::matches(&el) {
            let ack = Ack::from_element(el)
                .map_err(|e| Ended::Lost(format!("invalid acknowledgement: {e}")))?;
            sm.sent
                .ack(ack.h)
                .map_err(|e| Ended::Lost(format!("stream management: {e}")))?;
            sm.requested = false;
            return Ok(());
        }
        tracing::debug!(element = %el, "unexpected stream management element; ignored");
        Ok(())
    }

    /// Feeds an `<r/>` when enough is unacknowledged (flushed with the batch).
    async fn request_ack(&mut self, framed: &mut Transport) -> Result<(), Ended> {
        let Some(sm) = self.sm.as_mut() else {
            return Ok(());
        };
        if sm.sent.len() > MAX_UNACKED {
            return Err(Ended::Lost(format!(
                "the server left {} stanzas unacknowledged",
                sm.sent.len()
            )));
        }
        if sm.requested || sm.sent.len() < REQUEST_EVERY {
            return Ok(());
        }
        sm.requested = true;
        timed(SinkExt::<StreamEvent>::feed(
            framed,
            StreamEvent::Element(Request.into_element()),
        ))
        .await
    }

    /// Writes `first` and whatever else is already queued, then flushes once.
    async fn write_batch(&mut self, framed: &mut Transport, first: Element) -> Result<(), Ended> {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(el) = next.take() {
            self.feed(framed, el).await?;
            n += 1;
            if n < 64 {
                next = match self.commands.try_recv() {
                    Ok(Command::Send(el)) => Some(el),
                    Ok(Command::Close(done)) => {
                        timed(SinkExt::<StreamEvent>::flush(framed)).await?;
                        return Err(close(framed, self.last_ack(), Some(done)).await);
                    }
                    Err(_) => None,
                };
            }
        }
        self.request_ack(framed).await?;
        timed(SinkExt::<StreamEvent>::flush(framed)).await
    }

    /// Hands a stanza to whoever waits for it; returns an immediate reply to write, if any.
    async fn dispatch(&mut self, el: Element) -> Option<Element> {
        let stanza = match Stanza::try_from(el) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring an invalid stanza");
                return None;
            }
        };
        match stanza {
            Stanza::Iq(iq) if iq.payload.is_request() => self.request(iq),
            Stanza::Iq(iq) => {
                self.answer(iq);
                None
            }
            Stanza::Message(m) => {
                let _ = self.events.send(Event::Message(m)).await;
                None
            }
            Stanza::Presence(p) => {
                let _ = self.events.send(Event::Presence(p)).await;
                None
            }
        }
    }

    /// A result or error: to the request waiting for it, if it comes from whom was asked.
    fn answer(&self, iq: Iq) {
        let mut pending = self.shared.lock_pending();
        let id: &str = &iq.id;
        let Some(p) = pending.get(id) else {
            tracing::debug!(id = %iq.id, "an answer nobody waits for (late or unknown)");
            return;
        };
        let own = self
            .shared
            .jid
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !answered_by(p.to.as_ref(), iq.from.as_ref(), &own) {
            tracing::warn!(id = %iq.id, from = ?iq.from, "an answer from someone not asked; ignored");
            return;
        }
        if let Some(p) = pending.remove(id) {
            let _ = p.tx.send(Ok(iq));
        }
    }

    /// A get or set: to its handler in a task of its own, or `service-unavailable` at once.
    fn request(&self, iq: Iq) -> Option<Element> {
        let ns = iq.payload_ns().unwrap_or_default().to_string();
        let Some(handler) = self.handlers.get(&ns).cloned() else {
            return Some(
                iq.error_reply(StanzaError::new(DefinedCondition::ServiceUnavailable))
                    .into(),
            );
        };
        let client = self.client.upgrade()?;
        let ctx = HandlerContext {
            client: client.clone(),
            events: self.events.clone(),
        };
        tokio::spawn(async move {
            let reply = match handler.handle(&ctx, iq.clone()).await {
                Ok(payload) => iq.result_reply(payload),
                Err(e) => iq.error_reply(e),
            };
            let _ = client.send(reply).await;
        });
        None
    }
}

/// Whether an answer from `from` may answer a request sent to `to` (RFC 6120 §8.1.2.1): the
/// same address, any resource of a bare address, or, for a request to the server or the own
/// account, the server itself (which may leave `from` out).
fn answered_by(to: Option<&Jid>, from: Option<&Jid>, own: &Jid) -> bool {
    let Some(from) = from else {
        // Only the server writes stanzas without `from` to a client.
        return true;
    };
    match to {
        Some(to) => {
            // A request to a bare JID may be answered by the account or any of its
            // resources (a thing answers from `/0` what was sent to its bare address).
            from == to
                || (to.is_bare() && from.bare_eq(to))
                || (to.is_bare()
                    && to.bare_eq(own)
                    && from.is_domain()
                    && from.domain() == own.domain())
        }
        None => {
            (from.is_bare() && from.bare_eq(own))
                || (from.is_domain() && from.domain() == own.domain())
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn timed<F>(f: F) -> Result<(), Ended>
where
    F: std::future::Future<Output = Result<(), lithos_core::CodecError>>,
{
    match tokio::time::timeout(WRITE_LIMIT, f).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ended::Lost(codec_error(e).to_string())),
        Err(_) => Err(Ended::Lost("the server does not read".into())),
    }
}

async fn write(framed: &mut Transport, el: Element) -> Result<(), Ended> {
    timed(framed.send(StreamEvent::Element(el))).await
}

/// Closes the stream (after `ack`, the last acknowledgement with stream management, so the
/// server does not route again what the client already handled) and waits a little for the
/// server's close.
async fn close(
    framed: &mut Transport,
    ack: Option<Element>,
    done: Option<oneshot::Sender<()>>,
) -> Ended {
    if let Some(a) = ack {
        let _ = timed(framed.feed(StreamEvent::Element(a))).await;
    }
    if timed(framed.send(StreamEvent::Close)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(ev)) = framed.next().await {
                if ev == StreamEvent::Close {
                    break;
                }
            }
        })
        .await;
    }
    let _ = SinkExt::<StreamEvent>::close(framed).await;
    Ended::Closed(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn who_may_answer() {
        let own = j("juliet@capulet.lit/balcony");
        // No `from`: the server.
        assert!(answered_by(
            Some(&j("romeo@montague.lit/orchard")),
            None,
            &own
        ));
        // The full JID asked, and nobody else.
        let romeo = j("romeo@montague.lit/orchard");
        assert!(answered_by(Some(&romeo), Some(&romeo), &own));
        assert!(!answered_by(
            Some(&romeo),
            Some(&j("romeo@montague.lit/other")),
            &own
        ));
        assert!(!answered_by(
            Some(&romeo),
            Some(&j("mallory@evil.lit/x")),
            &own
        ));
        // A bare JID: that bare JID.
        let bare = j("romeo@montague.lit");
        assert!(answered_by(Some(&bare), Some(&bare), &own));
        assert!(answered_by(Some(&bare), Some(&romeo), &own));
        assert!(!answered_by(
            Some(&bare),
            Some(&j("mallory@montague.lit/orchard")),
            &own
        ));
        // The own account or no `to`: the own bare JID or the server.
        assert!(answered_by(None, Some(&j("juliet@capulet.lit")), &own));
        assert!(answered_by(None, Some(&j("capulet.lit")), &own));
        assert!(!answered_by(None, Some(&romeo), &own));
        assert!(answered_by(
            Some(&j("juliet@capulet.lit")),
            Some(&j("capulet.lit")),
            &own
        ));
        // The server asked: the server.
        let server = j("capulet.lit");
        assert!(answered_by(Some(&server), Some(&server), &own));
        assert!(!answered_by(Some(&server), Some(&romeo), &own));
    }
}
