//! The node: DAC until configured, then its runtime (see the crate's notes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lithos_core::binary::Vocabulary;
use lithos_core::binary::lan::{LanFrame, LoraAddress, RawBytes, TraceId, TraceKind};
use lithos_core::{Element, Payload};
use lithos_lora_sim::MAX_FRAME;
use lithos_tuxp_execution::LanExecution;
use lithos_tuxp_lora_dac as dac;
use lithos_tuxp_notification::{LanAnswer, LanNotification, ResetThing};
use lithos_tuxp_report::LanReport;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::air::Air;
use crate::state::{Allocation, State};

/// An action's handler: `0` when it ran, otherwise the error number the gateway maps to a
/// stanza error (HTTP-like codes, or the model's own).
pub type ActionFn = Arc<dyn Fn(&Element) -> i32 + Send + Sync>;

/// A followed event's handler (a light switching when the switch it follows does).
pub type EventFn = Arc<dyn Fn(&Element) + Send + Sync>;

/// Followed events remembered by trace id, so that a copy or a retransmission (its
/// acknowledgement lost) is handled once.
const FOLLOWED_WINDOW: usize = 32;

/// Error number for an action the node has no handler for (`feature-not-implemented`).
pub const UNKNOWN_ACTION: i32 = 501;
/// Error number for an execution that reached the node after its deadline
/// (`remote-server-timeout`); it did not run.
pub const TOO_LATE: i32 = 504;

/// Milliseconds in a day: trace ids carry the time of day.
const DAY_MS: u32 = 86_400_000;

/// How a node retransmits what wants an acknowledgement: after `initial`, then doubling
/// intervals up to `max_interval`, until `give_up` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rex {
    /// The first wait (Lithosphere's gateways: 200 ms).
    pub initial: Duration,
    /// The longest wait between two sends.
    pub max_interval: Duration,
    /// When to stop.
    pub give_up: Duration,
}

impl Default for Rex {
    /// 200 ms, doubling to 3.2 s, for 30 s: on a lossy radio a few early retries, then
    /// patience (a node's frames cost air time).
    fn default() -> Rex {
        Rex {
            initial: Duration::from_millis(200),
            max_interval: Duration::from_millis(3_200),
            give_up: Duration::from_secs(30),
        }
    }
}

/// Why a notification or report was not acknowledged, or a node did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanError {
    /// No `lan-answer` in time.
    #[error("no acknowledgement after {0:?}")]
    NoAck(Duration),
    /// The gateway (or the server behind it) refused it: the error number.
    #[error("refused with error {0}")]
    Refused(i32),
    /// It cannot be a frame of at most 64 bytes.
    #[error("not a LAN frame: {0}")]
    Frame(String),
    /// The node's runtime stopped (its radio is gone).
    #[error("the node stopped")]
    Stopped,
    /// DAC did not configure the node in time.
    #[error("LoRa-DAC: {0}")]
    Dac(String),
    /// The state file could not be read or written.
    #[error("node state: {0}")]
    State(String),
}

/// How to build a node.
pub struct NodeBuilder {
    thing_id: String,
    registration_code: String,
    actions: HashMap<(String, String), ActionFn>,
    followed: HashMap<(String, String), EventFn>,
    rex: Rex,
    dac_retry: Duration,
    dac_timeout: Duration,
    state_file: Option<PathBuf>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("thing_id", &self.thing_id)
            .field("actions", &self.actions.len())
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// A node with `thing_id` and the `registration_code` its owner's operator authorized.
    pub fn new(thing_id: &str, registration_code: &str) -> NodeBuilder {
        NodeBuilder {
            thing_id: thing_id.to_string(),
            registration_code: registration_code.to_string(),
            actions: HashMap::new(),
            followed: HashMap::new(),
            rex: Rex::default(),
            dac_retry: Duration::from_secs(1),
            dac_timeout: Duration::from_secs(600),
            state_file: None,
        }
    }

    /// Runs `f` for actions `<name xmlns="ns"/>`.
    pub fn on_action(
        mut self,
        ns: &str,
        name: &str,
        f: impl Fn(&Element) -> i32 + Send + Sync + 'static,
    ) -> Self {
        self.actions
            .insert((ns.to_string(), name.to_string()), Arc::new(f));
        self
    }

    /// Runs `f` for the event `<name xmlns="ns"/>` of another node it follows, which the
    /// gateway passes on (a `lan-notification` from LAN id 0, acknowledged; one past its
    /// deadline is refused with [`TOO_LATE`], one with no handler with [`UNKNOWN_ACTION`]).
    pub fn on_event(
        mut self,
        ns: &str,
        name: &str,
        f: impl Fn(&Element) + Send + Sync + 'static,
    ) -> Self {
        self.followed
            .insert((ns.to_string(), name.to_string()), Arc::new(f));
        self
    }

    /// The retransmission of acknowledged notifications and reports.
    pub fn retransmission(mut self, rex: Rex) -> Self {
        self.rex = rex;
        self
    }

    /// How long a DAC step waits before it sends again (1 s), and how long DAC may take in
    /// all before [`start`](Self::start) fails (10 minutes: the gateway may wait for an
    /// operator to confirm the node, 5 minutes by default).
    pub fn dac_timing(mut self, retry: Duration, timeout: Duration) -> Self {
        self.dac_retry = retry;
        self.dac_timeout = timeout;
        self
    }

    /// Keeps the DAC state in `path` (mud's `saveThingInfo`).
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Runs LoRa-DAC until the gateway configures the node (or from its saved state), moves
    /// the radio to its address, and starts its runtime.
    pub async fn start<A: Air>(self, mut air: A) -> Result<Node, LanError> {
        let mut state = match &self.state_file {
            Some(p) => State::load(p)
                .await
                .map_err(|e| LanError::State(e.to_string()))?,
            None => State::Initial,
        };
        let allocation = tokio::time::timeout(self.dac_timeout, self.dac(&mut air, &mut state))
            .await
            .map_err(|_| {
                LanError::Dac(format!("not configured within {:?}", self.dac_timeout))
            })??;
        // Answering only once the radio listens at its address: a command sent as soon as
        // the node says it is configured must reach it.
        air.tune(allocation.address)
            .await
            .map_err(LanError::Frame)?;
        let inner = Arc::new(Inner {
            allocation,
            pending: Mutex::new(HashMap::new()),
            last_ms: Mutex::new(None),
            executed: AtomicU64::new(0),
            state_file: self.state_file.clone(),
            reset: tokio::sync::watch::channel(false).0,
        });
        let (out, out_rx) = mpsc::channel(64);
        let handlers = Handlers {
            actions: self.actions,
            followed: self.followed,
        };
        let task = tokio::spawn(run(air, inner.clone(), handlers, out_rx));
        Ok(Node {
            inner,
            out,
            rex: self.rex,
            task,
        })
    }

    async fn save(&self, state: &State) -> Result<(), LanError> {
        match &self.state_file {
            Some(p) => state
                .save(p)
                .await
                .map_err(|e| LanError::State(e.to_string())),
            None => Ok(()),
        }
    }

    /// The DAC client's state machine (reference §3.6).
    async fn dac<A: Air>(&self, air: &mut A, state: &mut State) -> Result<Allocation, LanError> {
        // Allocated in an earlier run: ask whether the gateway finished; allocated in this
        // one: say so (`allocated`) until it answers.
        let mut fresh = false;
        loop {
            match *state {
                State::Configured(a) => return Ok(a),
                State::Initial => {
                    air.set_address(dac::DAC_CLIENT);
                    let intro = dac::Introduction {
                        thing_id: self.thing_id.clone(),
                        address: RawBytes(dac::DAC_CLIENT.to_bytes().to_vec()),
                        registration_code: self.registration_code.clone(),
                    };
                    send(air, dac::DAC_SERVICE, intro).await?;
                    if let Some(alloc) = wait_for::<_, dac::Allocation>(air, self.dac_retry).await
                        && let Some(a) = self.allocation_of(&alloc)
                    {
                        *state = State::Allocated(a);
                        self.save(state).await?;
                        fresh = true;
                    }
                }
                State::Allocated(a) => {
                    air.set_address(dac::DAC_CLIENT);
                    if fresh {
                        let allocated = dac::Allocated {
                            thing_id: self.thing_id.clone(),
                        };
                        send(air, dac::DAC_SERVICE, allocated).await?;
                    } else {
                        let is = dac::IsConfigured {
                            address: RawBytes(dac::DAC_CLIENT.to_bytes().to_vec()),
                            thing_id: self.thing_id.clone(),
                        };
                        send(air, dac::DAC_SERVICE, is).await?;
                    }
                    match wait_configured(air, self.dac_retry).await {
                        Some(true) => {
                            *state = State::Configured(a);
                            self.save(state).await?;
                        }
                        Some(false) => {
                            *state = State::Initial;
                            self.save(state).await?;
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// The allocation a node takes: its address, and an uplink on a channel of the range
    /// picked by its thing id (mud picks at random; a spread either way).
    fn allocation_of(&self, alloc: &dac::Allocation) -> Option<Allocation> {
        let a: [u8; 3] = alloc.allocated_address.0.as_slice().try_into().ok()?;
        let address = LoraAddress::from_bytes(a).ok()?;
        let u: [u8; 2] = alloc.uplink_address.0.as_slice().try_into().ok()?;
        let (begin, end) = (alloc.uplink_channel_begin, alloc.uplink_channel_end);
        if end < begin || address.to_bytes()[1] == 0 {
            return None;
        }
        let span = u32::from(end - begin) + 1;
        let pick = self
            .thing_id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let channel = begin + (pick % span) as u8;
        Some(Allocation {
            lan_id: address.to_bytes()[1],
            address,
            uplink: LoraAddress::new(u[0], u[1], channel),
        })
    }
}

/// Sends `p` as a frame to `to`.
async fn send<A: Air, P: Payload>(air: &A, to: LoraAddress, p: P) -> Result<(), LanError> {
    let frame = LanFrame::of(p).map_err(|e| LanError::Frame(e.to_string()))?;
    air.send(to, frame.as_bytes())
        .await
        .map_err(LanError::Frame)
}

/// The first frame that reads as `P` within `within`.
async fn wait_for<A: Air, P: Payload>(air: &mut A, within: Duration) -> Option<P> {
    let until = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(until, air.recv()).await.ok()??;
        if let Some(p) = LanFrame::from_bytes(frame).read::<P>() {
            return Some(p);
        }
    }
}

/// `configured` (true) or `not-configured` (false) within `within`.
async fn wait_configured<A: Air>(air: &mut A, within: Duration) -> Option<bool> {
    let until = tokio::time::Instant::now() + within;
    loop {
        let frame = LanFrame::from_bytes(tokio::time::timeout_at(until, air.recv()).await.ok()??);
        if frame.read::<dac::Configured>().is_some() {
            return Some(true);
        }
        if frame.read::<dac::NotConfigured>().is_some() {
            return Some(false);
        }
    }
}

struct Inner {
    allocation: Allocation,
    pending: Mutex<HashMap<[u8; 5], oneshot::Sender<LanAnswer>>>,
    last_ms: Mutex<Option<u32>>,
    executed: AtomicU64,
    state_file: Option<PathBuf>,
    /// Set once the gateway reset the node (`reset-thing`).
    reset: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 5], oneshot::Sender<LanAnswer>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh trace id: this node's LAN id, a request, the time of day, never the same
    /// twice in a row (two events in one millisecond take the next).
    fn next_trace(&self) -> TraceId {
        let mut last = self.last_ms.lock().unwrap_or_else(|e| e.into_inner());
        let now = time_of_day_ms();
        let next = next_time(*last, now);
        *last = Some(next);
        TraceId::new(self.allocation.lan_id, TraceKind::Request, next)
    }
}

/// The time of day a new trace id carries: `now`, unless that is the last id's millisecond
/// or behind it (two ids in one millisecond, a clock stepped back), then the millisecond just
/// after the last one. Midnight wraps.
fn next_time(last: Option<u32>, now: u32) -> u32 {
    match last {
        Some(l) => {
            let ahead = (now + DAY_MS - l) % DAY_MS;
            if ahead == 0 || ahead > DAY_MS / 2 {
                (l + 1) % DAY_MS
            } else {
                now
            }
        }
        None => now,
    }
}

/// Milliseconds since midnight, UTC.
fn time_of_day_ms() -> u32 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    (ms % u128::from(DAY_MS)) as u32
}

/// Whether the time of day `deadline` has passed (within the last twelve hours).
fn past(deadline: u32, now: u32) -> bool {
    let behind = (now + DAY_MS - deadline) % DAY_MS;
    behind > 0 && behind < DAY_MS / 2
}

/// What a node runs for the gateway's frames.
struct Handlers {
    actions: HashMap<(String, String), ActionFn>,
    followed: HashMap<(String, String), EventFn>,
}

/// A configured node's runtime: answers executions, hands answers to their waiters, takes
/// followed events, sends what [`Node`] queues.
async fn run<A: Air>(
    mut air: A,
    inner: Arc<Inner>,
    handlers: Handlers,
    mut out: mpsc::Receiver<(LoraAddress, Bytes)>,
) {
    let vocab = Vocabulary::global();
    let actions = &handlers.actions;
    let mut seen: std::collections::VecDeque<[u8; 5]> = std::collections::VecDeque::new();
    loop {
        tokio::select! {
            frame = air.recv() => {
                let Some(frame) = frame else { break };
                let frame = LanFrame::from_bytes(frame);
                if frame.read::<ResetThing>().is_some() {
                    // The gateway let it go: it forgets its address (mud resets and
                    // reboots into LoRa-DAC) and this runtime ends.
                    if let Some(p) = &inner.state_file
                        && let Err(e) = State::Initial.save(p).await
                    {
                        tracing::warn!(error = %e, "the node's state could not be reset");
                    }
                    inner.reset.send_replace(true);
                    break;
                }
                if let Some(answer) = frame.read::<LanAnswer>() {
                    let key = answer.trace_id.answer(TraceKind::Request).0;
                    if let Some(tx) = inner.pending().remove(&key) {
                        let _ = tx.send(answer);
                    }
                    continue;
                }
                if let Some(exec) = frame.read::<LanExecution>() {
                    let number = if past(exec.trace_id.time_of_day_ms(), time_of_day_ms()) {
                        tracing::debug!(trace = ?exec.trace_id, "an execution past its deadline: not run");
                        TOO_LATE
                    } else {
                        run_action(actions, &inner, &exec.action).unwrap_or(UNKNOWN_ACTION)
                    };
                    let answer = if number == 0 {
                        LanAnswer::response(&exec.trace_id)
                    } else {
                        LanAnswer::error(&exec.trace_id, number)
                    };
                    let _ = send(&air, inner.allocation.uplink, answer).await;
                    continue;
                }
                if let Some(n) = frame.read::<LanNotification>() {
                    // Only the gateway's (LAN id 0): another node's event it follows.
                    if n.trace_id.lan_id() != 0 || n.trace_id.kind() != TraceKind::Request {
                        continue;
                    }
                    let number = if seen.contains(&n.trace_id.0) {
                        0
                    } else if past(n.trace_id.time_of_day_ms(), time_of_day_ms()) {
                        TOO_LATE
                    } else if let Some(f) = handlers
                        .followed
                        .get(&(n.event.ns().to_string(), n.event.name().to_string()))
                    {
                        f(&n.event);
                        if seen.len() == FOLLOWED_WINDOW {
                            seen.pop_front();
                        }
                        seen.push_back(n.trace_id.0);
                        0
                    } else {
                        UNKNOWN_ACTION
                    };
                    if n.ack_required {
                        let answer = if number == 0 {
                            LanAnswer::response(&n.trace_id)
                        } else {
                            LanAnswer::error(&n.trace_id, number)
                        };
                        let _ = send(&air, inner.allocation.uplink, answer).await;
                    }
                    continue;
                }
                // A bare action: run, no answer (mud's rule).
                if let Ok(action) = frame.decode(&vocab) {
                    let _ = run_action(actions, &inner, &action);
                }
            }
            next = out.recv() => {
                let Some((to, frame)) = next else { break };
                if let Err(e) = air.send(to, &frame).await {
                    tracing::debug!(error = %e, "the radio did not send a frame");
                }
            }
        }
    }
}

fn run_action(
    actions: &HashMap<(String, String), ActionFn>,
    inner: &Inner,
    action: &Element,
) -> Option<i32> {
    let f = actions.get(&(action.ns().to_string(), action.name().to_string()))?;
    let n = f(action);
    if n == 0 {
        inner.executed.fetch_add(1, Ordering::Relaxed);
    }
    Some(n)
}

/// A configured node.
pub struct Node {
    inner: Arc<Inner>,
    out: mpsc::Sender<(LoraAddress, Bytes)>,
    rex: Rex,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("allocation", &self.inner.allocation)
            .finish_non_exhaustive()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Node {
    /// Where DAC put it.
    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }

    /// Returns once the gateway has reset the node (`reset-thing`): its state is initial
    /// again and its runtime stopped; a new [`NodeBuilder::start`] runs LoRa-DAC again.
    pub async fn reset(&self) {
        let mut rx = self.inner.reset.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Actions run successfully so far.
    pub fn executed(&self) -> u64 {
        self.inner.executed.load(Ordering::Relaxed)
    }

    /// Tells of `event`; with `ack`, until the gateway acknowledges it.
    pub async fn notify(&self, event: Element, ack: bool) -> Result<(), LanError> {
        let trace_id = self.inner.next_trace();
        self.up(
            trace_id,
            ack,
            LanNotification {
                trace_id,
                ack_required: ack,
                event,
            },
        )
        .await
    }

    /// Reports `data`; with `ack`, until the gateway acknowledges it.
    pub async fn report(&self, data: Element, ack: bool) -> Result<(), LanError> {
        let trace_id = self.inner.next_trace();
        self.up(
            trace_id,
            ack,
            LanReport {
                trace_id,
                ack_required: ack,
                data,
            },
        )
        .await
    }

    async fn up<P: Payload>(&self, trace: TraceId, ack: bool, p: P) -> Result<(), LanError> {
        let frame = LanFrame::of(p).map_err(|e| LanError::Frame(e.to_string()))?;
        if frame.as_bytes().len() > MAX_FRAME {
            return Err(LanError::Frame(format!(
                "{} bytes; the radio carries {MAX_FRAME}",
                frame.as_bytes().len()
            )));
        }
        let bytes = Bytes::copy_from_slice(frame.as_bytes());
        let uplink = self.inner.allocation.uplink;
        if !ack {
            return self
                .out
                .send((uplink, bytes))
                .await
                .map_err(|_| LanError::Stopped);
        }
        let (tx, mut rx) = oneshot::channel();
        self.inner.pending().insert(trace.0, tx);
        let started = tokio::time::Instant::now();
        let mut wait = self.rex.initial;
        let outcome = loop {
            if self.out.send((uplink, bytes.clone())).await.is_err() {
                break Err(LanError::Stopped);
            }
            let left = self.rex.give_up.saturating_sub(started.elapsed());
            if left.is_zero() {
                break Err(LanError::NoAck(self.rex.give_up));
            }
            match tokio::time::timeout(wait.min(left), &mut rx).await {
                Ok(Ok(answer)) => {
                    break match answer.error_number {
                        Some(n) if answer.trace_id.kind() == TraceKind::Error => {
                            Err(LanError::Refused(n))
                        }
                        _ => Ok(()),
                    };
                }
                Ok(Err(_)) => break Err(LanError::Stopped),
                Err(_) => wait = (wait * 2).min(self.rex.max_interval),
            }
        };
        self.inner.pending().remove(&trace.0);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_times_follow_the_clock_and_never_repeat() {
        // The first id: the time, whatever the hour (the old rule turned the afternoon into
        // a counter from 1, repeated after every restart).
        assert_eq!(next_time(None, 50_000_000), 50_000_000);
        assert_eq!(next_time(Some(50_000_000), 50_000_007), 50_000_007);
        assert_eq!(
            next_time(Some(50_000_000), 50_000_000),
            50_000_001,
            "same ms"
        );
        assert_eq!(
            next_time(Some(50_000_000), 49_999_990),
            50_000_001,
            "clock back"
        );
        assert_eq!(next_time(Some(DAY_MS - 1), 3), 3, "past midnight");
        assert_eq!(next_time(Some(DAY_MS - 1), DAY_MS - 1), 0);
    }

    #[test]
    fn deadlines_by_time_of_day() {
        assert!(past(1_000, 1_001));
        assert!(!past(1_000, 1_000));
        assert!(!past(1_001, 1_000));
        // Across midnight: a deadline at 23:59:59.900 has passed at 00:00:00.100.
        assert!(past(DAY_MS - 100, 100));
        assert!(!past(100, DAY_MS - 100));
    }
}
