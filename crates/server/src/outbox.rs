//! A session's outbound queue and its control signal, shared by the session table (which
//! fills it) and the connection task (which drains it).
//!
//! It replaces a bounded channel and an unbounded control channel, which each allocated a
//! block of 32 slots up front: an idle session held about 8 KiB of empty queue. This queue
//! allocates when a stanza arrives and gives the memory back once a burst has drained.

use std::collections::VecDeque;
use std::sync::Mutex;

use lithos_core::Element;
use tokio::sync::Notify;

use crate::session::Control;

/// Queue capacity kept after a burst drains; more is released.
const KEEP: usize = 16;

/// Why a stanza was not queued.
pub(crate) enum Refused {
    /// The queue holds `cap` stanzas: the client does not read.
    Full,
    /// The session ended.
    Closed(Element),
}

struct State {
    queue: VecDeque<Element>,
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
    Stanzas(Vec<Element>),
    /// Close now with this error.
    Close(lithos_core::StreamError),
    /// Write these, then close with this error.
    CloseAfter(Vec<Element>, lithos_core::StreamError),
}

impl Outbox {
    /// An empty queue for at most `cap` stanzas.
    pub(crate) fn new(cap: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
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

    /// Queues a stanza.
    pub(crate) fn push(&self, el: Element) -> Result<(), Refused> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Closed(el));
        }
        if s.queue.len() >= self.cap {
            return Err(Refused::Full);
        }
        s.queue.push_back(el);
        drop(s);
        self.notify.notify_one();
        Ok(())
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

    /// Refuses everything from now on (the session ended).
    pub(crate) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.queue = VecDeque::new();
    }

    /// Waits until there is something to take.
    pub(crate) async fn ready(&self) {
        loop {
            {
                let s = self.lock();
                if !s.queue.is_empty() || s.control.is_some() {
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
            Some(Control::CloseAfterQueued(e)) => {
                let all: Vec<Element> = s.queue.drain(..).collect();
                Taken::CloseAfter(all, e)
            }
            None => {
                let n = s.queue.len().min(max);
                let batch: Vec<Element> = s.queue.drain(..n).collect();
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

    #[tokio::test]
    async fn order_capacity_control_and_close() {
        let o = Outbox::new(3);
        for i in 0..3 {
            assert!(o.push(el(i)).is_ok());
        }
        assert!(matches!(o.push(el(9)), Err(Refused::Full)));
        o.ready().await;
        let Taken::Stanzas(b) = o.take(2) else {
            panic!()
        };
        assert_eq!(
            b.iter()
                .map(|e| e.attr("id").unwrap().to_string())
                .collect::<Vec<_>>(),
            ["0", "1"]
        );
        // A close request wins over the queue; a later one is ignored.
        o.control(Control::CloseAfterQueued(StreamError::new(
            StreamErrorCondition::Reset,
        )));
        o.control(Control::Close(StreamError::new(
            StreamErrorCondition::Conflict,
        )));
        o.ready().await;
        let Taken::CloseAfter(rest, e) = o.take(10) else {
            panic!()
        };
        assert_eq!(rest.len(), 1);
        assert_eq!(e.condition, StreamErrorCondition::Reset);
        o.close();
        assert!(matches!(o.push(el(1)), Err(Refused::Closed(_))));
    }

    #[tokio::test]
    async fn a_push_wakes_a_waiting_task() {
        let o = std::sync::Arc::new(Outbox::new(8));
        let o2 = o.clone();
        let waiter = tokio::spawn(async move {
            o2.ready().await;
            matches!(o2.take(8), Taken::Stanzas(v) if v.len() == 1)
        });
        tokio::task::yield_now().await;
        assert!(o.push(el(1)).is_ok());
        assert!(waiter.await.unwrap());
    }
}
