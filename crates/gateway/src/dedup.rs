//! What a gateway remembers of its nodes' notifications and reports, by trace id, so that a
//! frame the radio duplicated, or a node retransmitted because the acknowledgement was lost,
//! is forwarded once (reference §3.2: LRU, 512 entries).
//!
//! A trace id is *in flight* from its first frame until the server has answered the
//! forwarded stanza; a copy arriving meanwhile is dropped, and the node hears back once the
//! server has. It is then *done*, with the answer the node got, for the last
//! [`WINDOW`] done ids: a copy of one of those is answered again without forwarding. A
//! forward that failed (the server did not acknowledge in time) is forgotten, so that the
//! node's next retransmission tries again: nothing the gateway acknowledged to a node was
//! left unacknowledged by the server.

use std::collections::{HashMap, HashSet, VecDeque};

use lithos_core::binary::lan::{TraceId, TraceKind};

/// Done trace ids remembered (Lithosphere's LRU size).
pub const WINDOW: usize = 512;

/// What the node was answered: a response, or an error number.
pub type Answer = Option<i32>;

/// What a frame's trace id is to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First seen: now in flight; forward it.
    New,
    /// A copy of one being forwarded: drop it.
    InFlight,
    /// A copy of one forwarded: answer the node again, as before.
    Done(Answer),
}

/// The de-duplication state.
#[derive(Debug, Default)]
pub struct Dedup {
    in_flight: HashSet<[u8; 5]>,
    done: HashMap<[u8; 5], Answer>,
    order: VecDeque<[u8; 5]>,
}

fn key(t: &TraceId) -> [u8; 5] {
    t.answer(TraceKind::Request).0
}

impl Dedup {
    /// A frame with trace id `t` arrived.
    pub fn arrived(&mut self, t: &TraceId) -> Seen {
        let k = key(t);
        if let Some(a) = self.done.get(&k) {
            return Seen::Done(*a);
        }
        if !self.in_flight.insert(k) {
            return Seen::InFlight;
        }
        Seen::New
    }

    /// The forward of `t` ended: with the node's answer, or `None` when it failed and a
    /// retransmission should be forwarded again.
    pub fn finished(&mut self, t: &TraceId, answer: Option<Answer>) {
        let k = key(t);
        self.in_flight.remove(&k);
        let Some(answer) = answer else { return };
        if self.done.insert(k, answer).is_none() {
            self.order.push_back(k);
            if self.order.len() > WINDOW
                && let Some(old) = self.order.pop_front()
            {
                self.done.remove(&old);
            }
        }
    }

    /// Trace ids being forwarded.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Done trace ids remembered.
    pub fn remembered(&self) -> usize {
        self.done.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(lan: u8, ms: u32) -> TraceId {
        TraceId::new(lan, TraceKind::Request, ms)
    }

    #[test]
    fn once_in_flight_then_answered_again() {
        let mut d = Dedup::default();
        assert_eq!(d.arrived(&t(5, 1)), Seen::New);
        assert_eq!(d.arrived(&t(5, 1)), Seen::InFlight);
        // Another node, the same time: another event.
        assert_eq!(d.arrived(&t(6, 1)), Seen::New);
        d.finished(&t(5, 1), Some(None));
        assert_eq!(d.arrived(&t(5, 1)), Seen::Done(None));
        d.finished(&t(6, 1), Some(Some(403)));
        assert_eq!(d.arrived(&t(6, 1)), Seen::Done(Some(403)));
        assert_eq!(d.in_flight(), 0);
    }

    #[test]
    fn a_failed_forward_is_tried_again() {
        let mut d = Dedup::default();
        assert_eq!(d.arrived(&t(5, 2)), Seen::New);
        d.finished(&t(5, 2), None);
        assert_eq!(d.arrived(&t(5, 2)), Seen::New);
    }

    #[test]
    fn the_window_holds_the_last_512() {
        let mut d = Dedup::default();
        for ms in 0..(WINDOW as u32 + 10) {
            assert_eq!(d.arrived(&t(1, ms)), Seen::New);
            d.finished(&t(1, ms), Some(None));
        }
        assert_eq!(d.remembered(), WINDOW);
        // The oldest ten were forgotten; the newest are still known.
        assert_eq!(d.arrived(&t(1, 0)), Seen::New);
        assert_eq!(d.arrived(&t(1, WINDOW as u32 + 9)), Seen::Done(None));
    }
}
