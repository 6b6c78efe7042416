//! The executions a gateway sent to its LAN and waits for, by trace id: each ends once, in
//! the node's answer or at its deadline, never both, and a late answer finds nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lithos_core::binary::lan::{TraceId, TraceKind};

/// The deadline of a LAN execution without `lan-timeout` (Lithosphere's
/// `defaultLanExecutionTimeout`).
pub const DEFAULT_LAN_TIMEOUT: Duration = Duration::from_secs(10);

/// Executions waiting at once, at most; past it a new one is refused (`resource-constraint`
/// for its requester) rather than pushing out one in flight.
pub const MAX_PENDING: usize = 1_024;

/// Milliseconds in a day: trace ids carry the time of day.
const DAY_MS: u32 = 86_400_000;

/// Why an execution was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One execution in flight: what the requester must hear back about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<T> {
    /// The request's trace id.
    pub trace_id: TraceId,
    /// Who asked and how to answer them (the iq's `from`, `to` and `id`, say).
    pub request: T,
    /// When it stops waiting.
    pub deadline: Instant,
}

/// The executions in flight.
#[derive(Debug)]
pub struct Traces<T> {
    /// By the trace id's bytes with the kind bits cleared (a request's and its answers'
    /// common part).
    pending: HashMap<[u8; 5], Pending<T>>,
}

impl<T> Default for Traces<T> {
    fn default() -> Self {
        Traces {
            pending: HashMap::new(),
        }
    }
}

fn key(t: &TraceId) -> [u8; 5] {
    t.answer(TraceKind::Request).0
}

impl<T> Traces<T> {
    /// How many wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts waiting for an execution until `now + timeout`, whose deadline is the time of
    /// day `deadline_ms`; its trace id is the gateway's (LAN 0), a request, carrying that
    /// time or the first free millisecond before it (two requests with one deadline get
    /// different ids, and neither a later deadline). A node with a clock refuses an
    /// execution that reaches it after the time its trace id carries; mud only echoes it.
    pub fn start(
        &mut self,
        request: T,
        deadline_ms: u32,
        now: Instant,
        timeout: Duration,
    ) -> Result<TraceId, Full> {
        if self.pending.len() >= MAX_PENDING {
            return Err(Full);
        }
        let mut ms = deadline_ms % DAY_MS;
        let trace_id = loop {
            let t = TraceId::new(0, TraceKind::Request, ms);
            if !self.pending.contains_key(&key(&t)) {
                break t;
            }
            ms = (ms + DAY_MS - 1) % DAY_MS;
        };
        self.pending.insert(
            key(&trace_id),
            Pending {
                trace_id,
                request,
                deadline: now + timeout,
            },
        );
        Ok(trace_id)
    }

    /// The execution an answer with `trace_id` ends, if it still waits (and the answer came
    /// before its deadline: a late one is dropped, as the requester was told of a timeout or
    /// is about to be).
    pub fn answered(&mut self, trace_id: &TraceId, now: Instant) -> Option<Pending<T>> {
        let k = key(trace_id);
        match self.pending.get(&k) {
            Some(p) if p.deadline > now => self.pending.remove(&k),
            _ => None,
        }
    }

    /// Stops waiting for `trace_id`, whether or not its deadline passed (its waiter gave up).
    pub fn remove(&mut self, trace_id: &TraceId) {
        self.pending.remove(&key(trace_id));
    }

    /// The executions whose deadline passed by `now`, ended: their requesters get
    /// `remote-server-timeout`.
    pub fn expired(&mut self, now: Instant) -> Vec<Pending<T>> {
        let keys: Vec<[u8; 5]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut out: Vec<Pending<T>> = keys
            .into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .collect();
        out.sort_by_key(|p| p.deadline);
        out
    }

    /// The earliest deadline, to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_execution_ends_once() {
        let mut t: Traces<&str> = Traces::default();
        let now = Instant::now();
        let a = t.start("a", 41_032_997, now, DEFAULT_LAN_TIMEOUT).unwrap();
        let b = t
            .start("b", 41_032_997, now, Duration::from_millis(50))
            .unwrap();
        assert_ne!(a, b, "the same millisecond, two ids");
        assert_eq!(a.0, [0x00, 0x0B, 0x17, 0xD3, 0xE5]);
        assert_eq!((b.lan_id(), b.kind()), (0, TraceKind::Request));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(50)));

        // The node answers a: its response id matches the request's.
        let got = t.answered(&a.answer(TraceKind::Response), now).unwrap();
        assert_eq!(got.request, "a");
        assert!(
            t.answered(&a.answer(TraceKind::Response), now).is_none(),
            "once"
        );

        // b's deadline passes: it expires, and its late answer finds nothing.
        let later = now + Duration::from_millis(60);
        assert!(
            t.answered(&b.answer(TraceKind::Error), later).is_none(),
            "late"
        );
        let gone = t.expired(later);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].request, "b");
        assert!(t.is_empty());
    }

    #[test]
    fn ids_wrap_at_midnight_and_the_table_is_bounded() {
        let mut t: Traces<usize> = Traces::default();
        let now = Instant::now();
        let first = t.start(0, 0, now, DEFAULT_LAN_TIMEOUT).unwrap();
        let before = t.start(1, 0, now, DEFAULT_LAN_TIMEOUT).unwrap();
        assert_eq!(first.time_of_day_ms(), 0);
        assert_eq!(
            before.time_of_day_ms(),
            DAY_MS - 1,
            "the millisecond before midnight"
        );
        for i in 2..MAX_PENDING {
            t.start(i, 5, now, DEFAULT_LAN_TIMEOUT).unwrap();
        }
        assert_eq!(t.start(0, 5, now, DEFAULT_LAN_TIMEOUT), Err(Full));
    }
}
