//! The two counts of XEP-0198: what a side sent and the peer has not yet acknowledged
//! ([`Unacked`]), and what a side handled from its peer ([`Handled`]). Both wrap at 2^32
//! (XEP-0198 §4: "the value of h … MUST be reset to zero" past 2^32 − 1).

use std::collections::VecDeque;

/// The peer acknowledged more stanzas than were sent to it (a protocol violation: XEP-0198
/// §4 answers it with an `undefined-condition` stream error carrying
/// [`HandledCountTooHigh`](crate::HandledCountTooHigh)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer acknowledged {h} stanzas, but {sent} were sent")]
pub struct TooHigh {
    /// The count the peer claimed.
    pub h: u32,
    /// How many were sent (modulo 2^32).
    pub sent: u32,
}

/// What one side sent, in order, kept until the peer acknowledges it: on a resumption the
/// rest is sent again; when the session ends without one, the rest is handled as undelivered.
#[derive(Debug, Clone)]
pub struct Unacked<T> {
    /// Stanzas sent since counting started, modulo 2^32.
    sent: u32,
    /// The last count the peer acknowledged.
    acked: u32,
    /// `sent - acked` items, oldest first.
    queue: VecDeque<T>,
}

impl<T> Default for Unacked<T> {
    fn default() -> Self {
        Unacked {
            sent: 0,
            acked: 0,
            queue: VecDeque::new(),
        }
    }
}

impl<T> Unacked<T> {
    /// Nothing sent yet.
    pub fn new() -> Unacked<T> {
        Unacked::default()
    }

    /// Records a stanza as sent.
    pub fn push(&mut self, item: T) {
        self.sent = self.sent.wrapping_add(1);
        self.queue.push_back(item);
    }

    /// The peer handled `h` stanzas in all: forgets those, and returns how many that newly
    /// acknowledged. `h` may be lower than a previous acknowledgement only by wrapping
    /// (2^32 stanzas later); one that would acknowledge more than is outstanding is refused
    /// and changes nothing.
    pub fn ack(&mut self, h: u32) -> Result<usize, TooHigh> {
        let newly = h.wrapping_sub(self.acked) as usize;
        if newly > self.queue.len() {
            return Err(TooHigh { h, sent: self.sent });
        }
        self.queue.drain(..newly);
        self.acked = h;
        if self.queue.is_empty() && self.queue.capacity() > 64 {
            self.queue = VecDeque::new();
        }
        Ok(newly)
    }

    /// How many sent stanzas await acknowledgement.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when everything sent was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many were sent, modulo 2^32.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// The last count the peer acknowledged.
    pub fn acked(&self) -> u32 {
        self.acked
    }

    /// The unacknowledged stanzas, oldest first (what a resumption sends again: they keep
    /// their place in the count, so sending them again does not [`push`](Self::push)).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> {
        self.queue.iter()
    }

    /// Takes the unacknowledged stanzas out and counts them as never sent: after a
    /// resumption, a side that sends again only some of them (dropping a request its
    /// caller stopped waiting for) [`push`](Self::push)es those again, and the counts still
    /// match the peer's.
    pub fn rewind(&mut self) -> Vec<T> {
        self.sent = self.acked;
        std::mem::take(&mut self.queue).into()
    }

    /// Takes the unacknowledged stanzas out, oldest first (the session ends: they are
    /// handled as undelivered).
    pub fn take_all(&mut self) -> Vec<T> {
        self.acked = self.sent;
        std::mem::take(&mut self.queue).into()
    }
}

/// How many stanzas this side handled from its peer, modulo 2^32: the `h` of its `<a/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handled(u32);

impl Handled {
    /// One more stanza handled.
    pub fn count(&mut self) {
        self.0 = self.0.wrapping_add(1);
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn acknowledgements_forget_in_order_and_refuse_too_high() {
        let mut u = Unacked::new();
        (1..=5).for_each(|i| u.push(i));
        assert_eq!(u.ack(0), Ok(0));
        assert_eq!(u.ack(2), Ok(2));
        assert_eq!(u.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
        // The same count again acknowledges nothing new.
        assert_eq!(u.ack(2), Ok(0));
        assert_eq!(u.ack(6), Err(TooHigh { h: 6, sent: 5 }));
        // A count below the last one would mean 2^32 more: refused too.
        assert_eq!(u.ack(1), Err(TooHigh { h: 1, sent: 5 }));
        assert_eq!(u.len(), 3, "a refused count changes nothing");
        assert_eq!(u.take_all(), [3, 4, 5]);
        assert!(u.is_empty());
        assert_eq!(u.ack(5), Ok(0));
        // Rewound: the unacknowledged count as unsent, and pushing them again counts anew.
        (6..=8).for_each(|i| u.push(i));
        assert_eq!(u.ack(6), Ok(1));
        assert_eq!(u.rewind(), [7, 8]);
        assert_eq!(u.sent(), 6);
        u.push(8);
        assert_eq!(u.ack(7), Ok(1));
        assert_eq!(u.ack(8), Err(TooHigh { h: 8, sent: 7 }));
    }

    #[test]
    fn counts_wrap_at_two_to_the_32() {
        let mut u = Unacked {
            sent: u32::MAX - 1,
            acked: u32::MAX - 1,
            queue: VecDeque::new(),
        };
        (0..4).for_each(|i| u.push(i));
        assert_eq!(u.sent(), 2);
        assert_eq!(u.ack(u32::MAX), Ok(1));
        assert_eq!(u.ack(1), Ok(2));
        assert_eq!(u.iter().copied().collect::<Vec<_>>(), [3]);
        let mut h = Handled(u32::MAX);
        h.count();
        assert_eq!(h.get(), 0);
    }

    proptest! {
        /// Whatever the acknowledgements, what is kept is exactly the sent stanzas after the
        /// last accepted count, in order.
        #[test]
        fn kept_is_the_unacknowledged_tail(start in any::<u32>(), n in 0usize..200, acks in proptest::collection::vec(0u32..250, 0..20)) {
            let mut u = Unacked { sent: start, acked: start, queue: VecDeque::new() };
            (0..n).for_each(|i| u.push(i));
            let mut acked = 0usize;
            for a in acks {
                let h = start.wrapping_add(a);
                match u.ack(h) {
                    Ok(newly) => { prop_assert!(a as usize >= acked); acked += newly; prop_assert_eq!(acked, a as usize); }
                    Err(_) => prop_assert!(a as usize > n || (a as usize) < acked),
                }
            }
            prop_assert_eq!(u.iter().copied().collect::<Vec<_>>(), (acked..n).collect::<Vec<_>>());
        }
    }
}
