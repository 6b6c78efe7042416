//! A session's outbound queue and its control signal, shared by the session table (which
//! fills it) and the connection task (which drains it).
//!
//! It replaces a bounded channel and an unbounded control channel, which each allocated a
//! block of 32 slots up front: an idle session held about 8 KiB of empty queue. This queue
//! allocates when a stanza arrives and gives the memory back once a burst has drained.
//!
//! Nothing queued is lost when the session ends: [`Outbox::close`] hands back what was not
//! written, and the connection task re-routes it (RFC 6121 §8.5: to the account's other
//! resources, to offline storage, or back to the sender as an error). Stanzas queued on
//! behalf of a store ([`Outbox::push_stored`]) are the exception: they are still in their
//! store, which deletes them only once the batch's [`Receipt`] says they were written.

use std::collections::VecDeque;
use std::sync::Mutex;

use lithos_core::Element;
use tokio::sync::{Notify, oneshot};

use crate::session::Control;

/// Queue capacity kept after a burst drains; more is released.
const KEEP: usize = 16;

/// The most stored stanzas (from offline storage, for example) a session holds at once, on top
/// of its live queue: a store hands over its backlog in batches and waits for each to be
/// written, so its backlog never fills the live queue.
pub const MAX_STORED_IN_FLIGHT: usize = 256;

/// Why a stanza was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The queue holds `cap` stanzas: the client reads slower than stanzas arrive.
    Full(Element),
    /// The session ended.
    Closed(Element),
}

/// Where a queued stanza came from, which decides what happens if it is never written.
#[derive(Debug)]
pub(crate) enum Origin {
    /// Routed live: re-routed if the session ends before writing it.
    Live,
    /// Still held by a store: dropped if the session ends, since the store keeps it.
    Stored,
    /// The last stanza of a stored batch: once it is written, the whole batch is.
    StoredLast(oneshot::Sender<()>),
}

/// A stanza waiting to be written.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) el: Element,
    pub(crate) origin: Origin,
}

impl Item {
    /// A stanza routed live.
    pub(crate) fn live(el: Element) -> Item {
        Item {
            el,
            origin: Origin::Live,
        }
    }

    /// Whether it was routed live (not handed over by a store).
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.origin, Origin::Live)
    }

    /// Called once the item is on the socket: tells a waiting store, and gives the stanza
    /// back (stream management keeps it until the client acknowledges it).
    pub(crate) fn written(self) -> Element {
        if let Origin::StoredLast(tx) = self.origin {
            let _ = tx.send(());
        }
        self.el
    }
}

/// Why a stored batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredRefused {
    /// The session ended (or never was).
    Gone,
    /// The session holds [`MAX_STORED_IN_FLIGHT`] stored stanzas already (or the batch was
    /// empty or larger than that): wait for some to be written.
    Busy,
}

/// Resolves once a stored batch has been written to the session's socket; fails if the
/// session ended first (the batch is then still in its store, whole).
#[derive(Debug)]
pub struct Receipt(oneshot::Receiver<()>);

impl Receipt {
    /// Waits for the batch: `true` when written, `false` when the session ended first.
    pub async fn written(self) -> bool {
        self.0.await.is_ok()
    }
}

struct State {
    queue: VecDeque<Item>,
    /// Stored stanzas among `queue` (they do not count against the cap).
    stored: usize,
    control: Option<Control>,
    closed: bool,
}

/// See the module docs.
pub(crate) struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    cap: usize,
}

/// What the connection task takes out.
pub(crate) enum Taken {
    /// Stanzas to write (possibly none).
    Stanzas(Vec<Item>),
    /// Close now with this error.
    Close(lithos_core::StreamError),
    /// Write these, then close with this error.
    CloseAfter(Vec<Item>, lithos_core::StreamError),
    /// Leave the session to the connection resuming it.
    Detach,
}

impl Outbox {
    /// An empty queue for at most `cap` live stanzas.
    pub(crate) fn new(cap: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                stored: 0,
                control: None,
                closed: false,
            }),
            notify: Notify::new(),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a live stanza.
    pub(crate) fn push(&self, el: Element) -> Result<(), Refused> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Closed(el));
        }
        if s.queue.len() - s.stored >= self.cap {
            return Err(Refused::Full(el));
        }
        s.queue.push_back(Item::live(el));
        drop(s);
        self.notify.notify_one();
        Ok(())
    }

    /// Queues a batch that a store still holds; the receipt tells when all of it is written.
    /// Refused whole, and handed back, when the session ended ([`StoredRefused::Gone`]), or
    /// when more than [`MAX_STORED_IN_FLIGHT`] stored stanzas would be waiting
    /// ([`StoredRefused::Busy`]: try again once some are written).
    pub(crate) fn push_stored(
        &self,
        mut batch: Vec<Element>,
    ) -> Result<Receipt, (StoredRefused, Vec<Element>)> {
        let mut s = self.lock();
        let n = batch.len();
        if s.closed {
            return Err((StoredRefused::Gone, batch));
        }
        if n == 0 || s.stored + n > MAX_STORED_IN_FLIGHT {
            return Err((StoredRefused::Busy, batch));
        }
        let Some(last) = batch.pop() else {
            return Err((StoredRefused::Busy, batch));
        };
        let (tx, rx) = oneshot::channel();
        s.queue.extend(batch.into_iter().map(|el| Item {
            el,
            origin: Origin::Stored,
        }));
        s.queue.push_back(Item {
            el: last,
            origin: Origin::StoredLast(tx),
        });
        s.stored += n;
        drop(s);
        self.notify.notify_one();
        Ok(Receipt(rx))
    }

    /// Puts items the connection could not write back at the front, in order, so that
    /// [`close`](Self::close) hands them back.
    pub(crate) fn unshift(&self, items: Vec<Item>) {
        let mut s = self.lock();
        s.stored += items
            .iter()
            .filter(|i| !matches!(i.origin, Origin::Live))
            .count();
        for item in items.into_iter().rev() {
            s.queue.push_front(item);
        }
    }

    /// Gives the queue's memory back when it is empty (the session has been quiet a while).
    pub(crate) fn release(&self) {
        let mut s = self.lock();
        if s.queue.is_empty() && s.queue.capacity() > 0 {
            s.queue = VecDeque::new();
        }
    }

    /// Asks the connection task to close; the first request wins.
    pub(crate) fn control(&self, c: Control) {
        let mut s = self.lock();
        if s.control.is_none() && !s.closed {
            s.control = Some(c);
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Refuses everything from now on (the session ended) and hands back the live stanzas
    /// that were never written, in order, for re-routing. Stored ones are dropped: their
    /// receipts fail, and their store keeps them.
    pub(crate) fn close(&self) -> Vec<Element> {
        let mut s = self.lock();
        s.closed = true;
        s.stored = 0;
        let queue = std::mem::take(&mut s.queue);
        drop(s);
        queue
            .into_iter()
            .filter(|i| matches!(i.origin, Origin::Live))
            .map(|i| i.el)
            .collect()
    }

    /// Waits until there is something to take: a control request, or (when `stanzas`) a
    /// stanza. A connection that may not write more for now (stream management waits for an
    /// acknowledgement) waits for control requests alone.
    pub(crate) async fn ready(&self, stanzas: bool) {
        loop {
            {
                let s = self.lock();
                if (stanzas && !s.queue.is_empty()) || s.control.is_some() {
                    return;
                }
            }
            // `notify_one` leaves a permit when nobody waits, so nothing is missed between
            // the check above and this wait.
            self.notify.notified().await;
        }
    }

    /// Takes at most `max` stanzas, or the close request.
    pub(crate) fn take(&self, max: usize) -> Taken {
        let mut s = self.lock();
        match s.control.take() {
            Some(Control::Close(e)) => Taken::Close(e),
            Some(Control::Detach) => Taken::Detach,
            Some(Control::CloseAfterQueued(e)) => {
                let all: Vec<Item> = s.queue.drain(..).collect();
                s.stored = 0;
                Taken::CloseAfter(all, e)
            }
            None => {
                let n = s.queue.len().min(max);
                let batch: Vec<Item> = s.queue.drain(..n).collect();
                if s.stored > 0 {
                    s.stored -= batch
                        .iter()
                        .filter(|i| !matches!(i.origin, Origin::Live))
                        .count();
                }
                if s.queue.is_empty() && s.queue.capacity() > KEEP {
                    s.queue = VecDeque::new();
                }
                Taken::Stanzas(batch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::{StreamError, StreamErrorCondition};

    fn el(i: usize) -> Element {
        Element::builder("message", "jabber:client")
            .attr("id", i.to_string())
            .build()
    }

    fn ids<'a>(items: impl IntoIterator<Item = &'a Element>) -> Vec<String> {
        items
            .into_iter()
            .map(|e| e.attr("id").unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn order_capacity_control_and_close() {
        let o = Outbox::new(3);
        for i in 0..3 {
            assert!(o.push(el(i)).is_ok());
        }
        // Full: the stanza comes back to the caller, the session is not told to close.
        assert!(matches!(o.push(el(9)), Err(Refused::Full(e)) if e.attr("id") == Some("9")));
        o.ready(true).await;
        let Taken::Stanzas(b) = o.take(2) else {
            panic!()
        };
        assert_eq!(ids(b.iter().map(|i| &i.el)), ["0", "1"]);
        // A close request wins over the queue; a later one is ignored.
        o.control(Control::CloseAfterQueued(StreamError::new(
            StreamErrorCondition::Reset,
        )));
        o.control(Control::Close(StreamError::new(
            StreamErrorCondition::Conflict,
        )));
        o.ready(true).await;
        let Taken::CloseAfter(rest, e) = o.take(10) else {
            panic!()
        };
        assert_eq!(rest.len(), 1);
        assert_eq!(e.condition, StreamErrorCondition::Reset);
        o.close();
        assert!(matches!(o.push(el(1)), Err(Refused::Closed(_))));
    }

    #[tokio::test]
    async fn close_hands_back_live_stanzas_not_stored_ones() {
        let o = Outbox::new(2);
        o.push(el(0)).unwrap();
        let receipt = o.push_stored(vec![el(10), el(11)]).unwrap();
        o.push(el(1)).unwrap();
        // Stored stanzas do not take the live queue's room...
        assert!(matches!(o.push(el(2)), Err(Refused::Full(_))));
        // ...and a batch the connection could not write goes back in front.
        let Taken::Stanzas(first) = o.take(2) else {
            panic!()
        };
        assert_eq!(ids(first.iter().map(|i| &i.el)), ["0", "10"]);
        o.unshift(first);
        assert_eq!(ids(&o.close()), ["0", "1"]);
        assert!(
            !receipt.written().await,
            "the session ended before the batch"
        );
    }

    #[tokio::test]
    async fn a_stored_batch_is_written_when_its_last_stanza_is() {
        let o = Outbox::new(4);
        let receipt = o.push_stored(vec![el(1), el(2), el(3)]).unwrap();
        let Taken::Stanzas(b) = o.take(2) else {
            panic!()
        };
        b.into_iter().for_each(|i| drop(i.written()));
        let Taken::Stanzas(b) = o.take(2) else {
            panic!()
        };
        assert_eq!(b.len(), 1);
        b.into_iter().for_each(|i| drop(i.written()));
        assert!(receipt.written().await);
        // Stored stanzas in flight are bounded.
        assert!(
            o.push_stored((0..MAX_STORED_IN_FLIGHT).map(el).collect())
                .is_ok()
        );
        assert_eq!(
            o.push_stored(vec![el(0)]).unwrap_err().0,
            StoredRefused::Busy
        );
        o.close();
        assert_eq!(
            o.push_stored(vec![el(0)]).unwrap_err().0,
            StoredRefused::Gone
        );
    }

    #[tokio::test]
    async fn a_push_wakes_a_waiting_task() {
        let o = std::sync::Arc::new(Outbox::new(8));
        let o2 = o.clone();
        let waiter = tokio::spawn(async move {
            o2.ready(true).await;
            matches!(o2.take(8), Taken::Stanzas(v) if v.len() == 1)
        });
        tokio::task::yield_now().await;
        assert!(o.push(el(1)).is_ok());
        assert!(waiter.await.unwrap());
    }
}
