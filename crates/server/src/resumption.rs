//! Resumable sessions (XEP-0198 §5): which session each resumption id names, and where the
//! session is — served by a live connection, or held after its connection broke, waiting for
//! a new one to take it back.
//!
//! A held session stays bound in the session table: stanzas for it keep queueing in its
//! outbox (bounded as always), its presence stands. The task of the connection that broke
//! holds it ([`Conn::session`](crate::stream)): it waits for the resumption window to pass or
//! the server to stop, then ends the session as any other (RFC 6121 §8.5 for what was queued
//! or sent without acknowledgement). A connection that resumes takes the session out of the
//! table here first, so exactly one of the two owns it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::outbox::Outbox;
use crate::session::{Control, Listener};
use crate::stream::Bound;

/// How long a resuming connection waits for the live connection it replaces to let go of the
/// session.
const HANDOVER: Duration = Duration::from_secs(5);

enum State {
    /// A connection serves the session; a resuming connection may be waiting for it.
    Attached {
        outbox: Arc<Outbox>,
        waiting: Option<oneshot::Sender<Bound>>,
    },
    /// The connection broke; the session waits here.
    Held { bound: Box<Bound>, generation: u64 },
}

struct Slot {
    /// The account (bare JID) whose session it is: only it may resume it.
    account: String,
    listener: Listener,
    format: lithos_core::WireFormat,
    state: State,
}

impl Slot {
    /// The slot of a session a connection serves.
    fn attached(b: &Bound) -> Slot {
        Slot {
            account: b.info.jid.bare_str().to_string(),
            listener: b.info.listener,
            format: b.info.format,
            state: State::Attached {
                outbox: b.outbox.clone(),
                waiting: None,
            },
        }
    }
}

/// Why a resumption was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No session by that id for this account (never was, ended, or its window passed).
    Unknown,
    /// The session was started on another listener or in another wire format.
    OtherStream,
}

/// The resumable sessions by id.
#[derive(Default)]
pub(crate) struct Resumable {
    slots: Mutex<HashMap<String, Slot>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Resumable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection made its session resumable under `id`.
    pub(crate) fn register(&self, id: &str, b: &Bound) {
        self.lock().insert(id.to_string(), Slot::attached(b));
    }

    /// The session ended for good: its id names nothing any more.
    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The connection serving `id` broke (or let go for a resumption). Hands the session to
    /// a connection waiting for it, or holds it: `Some(generation)` then, which the holder
    /// gives [`expire`](Self::expire) when the window passes.
    pub(crate) fn hold(&self, id: &str, bound: Bound) -> Result<Option<u64>, Bound> {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(id) else {
            return Err(bound);
        };
        let bound = match &mut slot.state {
            State::Attached { waiting, .. } => match waiting.take() {
                Some(tx) => match tx.send(bound) {
                    Ok(()) => return Ok(None),
                    // The resuming connection gave up: hold it after all.
                    Err(bound) => bound,
                },
                None => bound,
            },
            State::Held { .. } => return Err(bound),
        };
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        slot.state = State::Held {
            bound: Box::new(bound),
            generation,
        };
        Ok(Some(generation))
    }

    /// The window of a held session passed: takes it out (to be ended), unless a resumption
    /// took it first.
    pub(crate) fn expire(&self, id: &str, generation: u64) -> Option<Bound> {
        let mut slots = self.lock();
        match slots.get(id).map(|s| &s.state) {
            Some(State::Held { generation: g, .. }) if *g == generation => {}
            _ => return None,
        }
        match slots.remove(id).map(|s| s.state) {
            Some(State::Held { bound, .. }) => Some(*bound),
            _ => None,
        }
    }

    /// A new connection of `account` resumes `id`: takes a held session at once, or asks the
    /// live connection serving it to let go and waits (at most [`HANDOVER`]).
    pub(crate) async fn take(
        &self,
        id: &str,
        account: &str,
        listener: Listener,
        format: lithos_core::WireFormat,
    ) -> Result<Bound, Refused> {
        let rx = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(id).filter(|s| s.account == account) else {
                return Err(Refused::Unknown);
            };
            if slot.listener != listener || slot.format != format {
                return Err(Refused::OtherStream);
            }
            match &mut slot.state {
                State::Attached { outbox, waiting } => {
                    let (tx, rx) = oneshot::channel();
                    // A second resumption racing the first: the later one waits instead.
                    *waiting = Some(tx);
                    outbox.control(Control::Detach);
                    rx
                }
                State::Held { .. } => {
                    let Some(Slot {
                        state: State::Held { bound, .. },
                        ..
                    }) = slots.remove(id)
                    else {
                        return Err(Refused::Unknown);
                    };
                    slots.insert(id.to_string(), Slot::attached(&bound));
                    return Ok(*bound);
                }
            }
        };
        match tokio::time::timeout(HANDOVER, rx).await {
            Ok(Ok(bound)) => Ok(bound),
            _ => Err(Refused::Unknown),
        }
    }

    /// How many sessions are held without a connection.
    pub(crate) fn held(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s.state, State::Held { .. }))
            .count()
    }
}

impl std::fmt::Debug for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumable")
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}
