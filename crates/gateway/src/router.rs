//! The gateway's LAN router, both ways.
//!
//! **Down**: it answers the executions the server forwards for `<gateway>/<lan-id>` by
//! sending the node a `lan-execution` frame and waiting for its `lan-answer`, within the
//! execution's deadline. Plugged into the gateway's thing runtime
//! (`ThingRuntime::lan_nodes`); frames go out through a [`Link`] (a simulated radio in tests,
//! a LoRa module in a gateway) and come back through [`LanRouter::received`].
//!
//! **Up**: a node's `lan-notification` or `lan-report` is forwarded to the server from
//! `<gateway>/<lan-id>` (once [`LanRouter::uplink`] gave it the gateway's client): a
//! notification with the node's `ack-required`, a report at the QoS its data type is given
//! ([`LanRouter::set_report_qos`]; otherwise QoS 1 when the node wants an acknowledgement,
//! 0 when not). With `ack-required` the node is answered **after** the server acknowledged
//! (Lithosphere answered first, and lost what the server then never took): a response, or
//! the server's refusal as an error number ([`crate::lan::number_of`]). Copies are dropped
//! by trace id ([`crate::dedup`]). At most [`MAX_FORWARDS`] forwards run at once; a frame
//! past that, or before the uplink is connected, is dropped unanswered, and the node's
//! retransmission brings it again.
//!
//! **Across**: a node's event that other nodes behind the gateway follow
//! ([`crate::follows`]) is also passed on to them on the LAN, as a `lan-notification` from
//! LAN id 0 that each acknowledges (retransmitted from 200 ms, doubling, within
//! [`FOLLOW_WAIT`]; its trace id carries that deadline, as an execution's does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lithos_client::Client;
use lithos_client::handler::{HandlerContext, IqAnswer, IqHandler};
use lithos_core::binary::lan::{LoraAddress, TraceKind};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Element, Payload};
use lithos_tuxp_concentrator::ResetNode;
use lithos_tuxp_execution::Execution;
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_notification::ResetThing;
use lithos_tuxp_notification::{NotifierExt, NotifyError, Rex};
use lithos_tuxp_report::{Qos, ReportError, ReporterExt, Retry};
use tokio::sync::{Semaphore, oneshot};

use crate::dedup::{Dedup, Seen};
use crate::follows::Follows;
use crate::lan::{
    LanAnswer, LanExecution, LanNotification, LanReport, error_of, from_frame, number_of, to_frame,
};
use crate::traces::{DEFAULT_LAN_TIMEOUT, Traces};

/// The longest `lan-timeout` the gateway waits for a node.
pub const MAX_LAN_TIMEOUT: Duration = Duration::from_secs(60);

/// Forwards to the server running at once, at most.
pub const MAX_FORWARDS: usize = 256;

/// How the gateway retransmits a node's acknowledged notification to the server: from
/// 200 ms, doubling, for 5 s (the node retransmits to the gateway meanwhile; a copy is not
/// forwarded twice).
pub const NOTIFY_REX: Rex = Rex {
    initial: Duration::from_millis(200),
    give_up: Duration::from_secs(5),
};

/// How long the gateway tries to pass a followed event on to a node (then it is dropped:
/// events are real time, and a node hearing of one late would act on the past).
pub const FOLLOW_WAIT: Duration = Duration::from_secs(5);

/// What [`LanRouter::received`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// A node's answer to an execution still waiting.
    Answer,
    /// A notification or report, now forwarded to the server.
    Forwarded,
    /// A copy of one forwarded or being forwarded (answered again if it was done).
    Duplicate,
    /// Not taken now (no uplink yet, or too many forwards): the node retransmits.
    Busy,
    /// Nothing for this gateway: not a LAN frame it reads, a late answer, a node it does not
    /// know, a trace id not a node's request.
    Ignored,
}

/// A node behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Where it listens.
    pub address: LoraAddress,
    /// Its thing id, when known.
    pub thing_id: Option<String>,
}

/// Counters of what went up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Notifications and reports forwarded and acknowledged by the server.
    pub forwarded: u64,
    /// Copies dropped.
    pub duplicates: u64,
    /// Forwards the server refused (the node got the error number).
    pub refused: u64,
    /// Forwards that failed (no acknowledgement in time): the node's retransmission retries.
    pub failed: u64,
    /// Events passed on to a following node and acknowledged by it.
    pub passed_on: u64,
    /// Events not passed on to a following node (no acknowledgement within
    /// [`FOLLOW_WAIT`], an error, or the table of waits full).
    pub not_passed_on: u64,
}

/// Where frames go: the radio.
#[async_trait]
pub trait Link: Send + Sync + 'static {
    /// Sends one frame to `to`.
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String>;
}

/// A simulated radio as a link.
#[async_trait]
impl Link for lithos_lora_sim::Radio {
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String> {
        lithos_lora_sim::Radio::send(self, to, frame)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Executions for LAN nodes, answered over the LAN; their events and data, forwarded up.
pub struct LanRouter {
    link: Arc<dyn Link>,
    nodes: Mutex<HashMap<u8, Node>>,
    /// LAN ids the server lists that this radio does not route (BLE, unreadable addresses).
    others: Mutex<std::collections::HashSet<u8>>,
    traces: Mutex<Traces<oneshot::Sender<LanAnswer>>>,
    upstream: Mutex<Option<Client>>,
    dedup: Mutex<Dedup>,
    forwards: Arc<Semaphore>,
    report_qos: Mutex<HashMap<(String, String), Qos>>,
    stats: Mutex<UplinkStats>,
    follows: Mutex<Follows>,
}

impl std::fmt::Debug for LanRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanRouter")
            .field("nodes", &self.lock_nodes().len())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since midnight (UTC), the time trace ids carry.
fn ms_since_midnight() -> u32 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    (ms % 86_400_000) as u32
}

impl LanRouter {
    /// A router sending through `link`.
    pub fn new(link: Arc<dyn Link>) -> Arc<LanRouter> {
        Arc::new(LanRouter {
            link,
            nodes: Mutex::new(HashMap::new()),
            others: Mutex::new(std::collections::HashSet::new()),
            traces: Mutex::new(Traces::default()),
            upstream: Mutex::new(None),
            dedup: Mutex::new(Dedup::default()),
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
            report_qos: Mutex::new(HashMap::new()),
            stats: Mutex::new(UplinkStats::default()),
            follows: Mutex::new(Follows::default()),
        })
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, HashMap<u8, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_dedup(&self) -> std::sync::MutexGuard<'_, Dedup> {
        self.dedup.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut UplinkStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// What went up so far.
    pub fn uplink_stats(&self) -> UplinkStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway's client, through which nodes' notifications and reports go up. Until
    /// it is given, they are not taken (the nodes retransmit).
    pub fn uplink(&self, gateway: Client) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = Some(gateway);
    }

    /// Reports of `<name xmlns="ns"/>` go up at `qos` (at least 1 when the node wants an
    /// acknowledgement).
    pub fn set_report_qos(&self, ns: &str, name: &str, qos: Qos) {
        self.report_qos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((ns.to_string(), name.to_string()), qos);
    }

    fn qos_of(&self, data: &Element, ack: bool) -> Qos {
        let given = self
            .report_qos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(data.ns().to_string(), data.name().to_string()))
            .copied();
        match given {
            // A node that wants an acknowledgement gets one only for what the server
            // acknowledged: at least QoS 1, whatever its data type is given.
            Some(Qos::AtMostOnce) | None if ack => Qos::AtLeastOnce,
            Some(q) => q,
            None => Qos::AtMostOnce,
        }
    }

    /// The node at `lan_id`, if known.
    pub fn node(&self, lan_id: u8) -> Option<Node> {
        self.lock_nodes().get(&lan_id).cloned()
    }

    /// The LAN id of the node with `thing_id`, if known.
    pub fn lan_id_of(&self, thing_id: &str) -> Option<u8> {
        self.lock_nodes()
            .iter()
            .find(|(_, n)| n.thing_id.as_deref() == Some(thing_id))
            .map(|(id, _)| *id)
    }

    /// The LAN ids routed here.
    pub fn lan_ids(&self) -> Vec<u8> {
        let mut ids: Vec<u8> = self.lock_nodes().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The LAN ids taken: routed here, or the server's nodes this radio does not reach
    /// (BLE, an address it cannot read). A new node gets none of them.
    pub fn taken_lan_ids(&self) -> std::collections::HashSet<u8> {
        let mut ids = self.lock_others().clone();
        ids.extend(self.lock_nodes().keys().copied());
        ids
    }

    fn lock_others(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<u8>> {
        self.others.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_traces(&self) -> std::sync::MutexGuard<'_, Traces<oneshot::Sender<LanAnswer>>> {
        self.traces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where node `lan_id` listens (from DAC's allocation, or `pull-nodes` after a restart).
    pub fn set_node(&self, lan_id: u8, address: LoraAddress) {
        self.lock_nodes().insert(
            lan_id,
            Node {
                address,
                thing_id: None,
            },
        );
    }

    /// Node `lan_id`, with its thing id.
    pub fn add_node(&self, lan_id: u8, node: Node) {
        self.lock_nodes().insert(lan_id, node);
    }

    /// Learns its nodes' addresses from the server (`pull-nodes`), after a restart: every
    /// LoRa node whose address reads as one (`la$<high>,<low>:<channel>`). Returns how many.
    pub async fn sync_nodes(
        &self,
        gateway: &lithos_client::Client,
        timeout: Duration,
    ) -> Result<usize, lithos_tuxp_concentrator::ConcentratorError> {
        use lithos_tuxp_concentrator::{CommunicationNet, ConcentratorExt};
        let nodes = gateway.pull_nodes(timeout).await?;
        let mut known = self.lock_nodes();
        known.clear();
        let mut others = self.lock_others();
        others.clear();
        for n in nodes {
            // Not routed over this radio, but its LAN id is taken all the same.
            others.insert(n.lan_id);
            if n.communication_net != CommunicationNet::Lora {
                continue;
            }
            if let Ok(address) = n.address.parse::<LoraAddress>() {
                known.insert(
                    n.lan_id,
                    Node {
                        address,
                        thing_id: Some(n.thing_id),
                    },
                );
            }
        }
        Ok(known.len())
    }

    /// Forgets node `lan_id`, and the follows of and by it.
    pub fn remove_node(&self, lan_id: u8) {
        self.lock_nodes().remove(&lan_id);
        self.lock_others().remove(&lan_id);
        self.lock_follows().remove_node(lan_id);
    }

    fn lock_follows(&self) -> std::sync::MutexGuard<'_, Follows> {
        self.follows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes `follows` between its nodes from now on (replacing those it had); how many.
    pub fn set_lan_follows(&self, follows: Vec<lithos_tuxp_concentrator::LanFollow>) -> usize {
        let n = self.lock_follows().set(follows);
        tracing::info!(follows = n, "follows between nodes set");
        n
    }

    /// The follows between its nodes it routes.
    pub fn lan_follows(&self) -> Vec<lithos_tuxp_concentrator::LanFollow> {
        self.lock_follows().all()
    }

    /// Learns the follows between its nodes from the server (`<lan-follows/>`); how many.
    pub async fn pull_lan_follows(
        &self,
        gateway: &Client,
        timeout: Duration,
    ) -> Result<usize, lithos_tuxp_concentrator::ConcentratorError> {
        use lithos_tuxp_concentrator::ConcentratorExt;
        let follows = gateway.lan_follows(timeout).await?;
        Ok(self.set_lan_follows(follows))
    }

    /// Passes node `friend`'s `event` (its trace id `trace`) on to the nodes following it,
    /// the first time it is seen.
    fn pass_on(
        self: &Arc<Self>,
        friend: u8,
        trace: &lithos_core::binary::lan::TraceId,
        event: &Element,
    ) {
        // No follows (most gateways): no event key built for every notification.
        if self.lock_follows().is_empty() {
            return;
        }
        let key = lithos_tuxp_things::key_of(event);
        let followers = {
            let mut f = self.lock_follows();
            let followers = f.followers(friend, &key).to_vec();
            if followers.is_empty() || !f.first_time(trace) {
                return;
            }
            followers
        };
        for lan_id in followers {
            let Some(node) = self.node(lan_id) else {
                self.count(|s| s.not_passed_on += 1);
                tracing::debug!(
                    friend,
                    follower = lan_id,
                    "a follower this radio does not route"
                );
                continue;
            };
            let (router, event) = (self.clone(), event.clone());
            tokio::spawn(async move {
                let passed = router.pass_to(node.address, event).await;
                match passed {
                    Ok(()) => router.count(|s| s.passed_on += 1),
                    Err(why) => {
                        router.count(|s| s.not_passed_on += 1);
                        tracing::debug!(friend, follower = lan_id, %why, "a followed event was not passed on");
                    }
                }
            });
        }
    }

    /// Sends `event` to the node at `to` until it acknowledges, within [`FOLLOW_WAIT`].
    async fn pass_to(&self, to: LoraAddress, event: Element) -> Result<(), String> {
        let (tx, mut rx) = oneshot::channel();
        let trace_id = self
            .lock_traces()
            .start(
                tx,
                ms_since_midnight().wrapping_add(FOLLOW_WAIT.as_millis() as u32),
                Instant::now(),
                FOLLOW_WAIT,
            )
            .map_err(|_| "too many waits for LAN nodes".to_string())?;
        let frame = to_frame(LanNotification {
            trace_id,
            ack_required: true,
            event,
        })
        .map_err(|e| e.to_string())
        .and_then(|f| {
            if f.as_bytes().len() > lithos_lora_sim::MAX_FRAME {
                Err(format!("a frame of {} bytes", f.as_bytes().len()))
            } else {
                Ok(f)
            }
        });
        let outcome = match frame {
            Err(e) => Err(e),
            Ok(frame) => {
                let started = Instant::now();
                let mut every = Duration::from_millis(200);
                loop {
                    let left = FOLLOW_WAIT.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break Err("no acknowledgement in time".to_string());
                    }
                    if let Err(e) = self.link.send(to, frame.as_bytes()).await {
                        tracing::debug!(error = %e, "the radio did not send a followed event");
                    }
                    match tokio::time::timeout(every.min(left), &mut rx).await {
                        Ok(Ok(answer)) => {
                            break match answer.error_number {
                                None => Ok(()),
                                Some(n) => Err(format!("the node answered error {n}")),
                            };
                        }
                        Ok(Err(_)) => break Err("no acknowledgement in time".to_string()),
                        Err(_) => every = (every * 2).min(Duration::from_millis(3_200)),
                    }
                }
            }
        };
        // Whatever the outcome, it waits no more (past its deadline `answered` would keep it,
        // and unacknowledged passes would fill the table executions share).
        self.lock_traces().remove(&trace_id);
        outcome
    }

    /// A frame the radio received: a `lan-answer` ends the execution it answers (if it still
    /// waits); a `lan-notification` or `lan-report` goes up (see the module's notes).
    pub fn received(self: &Arc<Self>, frame: &[u8]) -> Inbound {
        if let Some(answer) = from_frame::<LanAnswer>(frame) {
            let pending = self
                .lock_traces()
                .answered(&answer.trace_id, Instant::now());
            return match pending {
                Some(p) => {
                    let _ = p.request.send(answer);
                    Inbound::Answer
                }
                // Late, or answering nothing this gateway sent: dropped.
                None => Inbound::Ignored,
            };
        }
        if let Some(n) = from_frame::<LanNotification>(frame) {
            return self.up(n.trace_id, n.ack_required, Up::Event(n.event));
        }
        if let Some(r) = from_frame::<LanReport>(frame) {
            return self.up(r.trace_id, r.ack_required, Up::Data(r.data));
        }
        Inbound::Ignored
    }

    fn up(
        self: &Arc<Self>,
        trace: lithos_core::binary::lan::TraceId,
        ack: bool,
        up: Up,
    ) -> Inbound {
        let lan_id = trace.lan_id();
        // A node's own request; LAN id 0 is the gateway itself (reference §3.2).
        if lan_id == 0 || trace.kind() != TraceKind::Request {
            return Inbound::Ignored;
        }
        let Some(node) = self.node(lan_id) else {
            return Inbound::Ignored;
        };
        match self.lock_dedup().arrived(&trace) {
            Seen::New => {}
            Seen::InFlight => {
                self.count(|s| s.duplicates += 1);
                return Inbound::Duplicate;
            }
            Seen::Done(answer) => {
                self.count(|s| s.duplicates += 1);
                if ack {
                    self.answer_node(node.address, &trace, answer);
                }
                return Inbound::Duplicate;
            }
        }
        if let Up::Event(event) = &up {
            self.pass_on(lan_id, &trace, event);
        }
        let client = self
            .upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (Some(client), Ok(permit)) = (client, self.forwards.clone().try_acquire_owned()) else {
            self.lock_dedup().finished(&trace, None);
            return Inbound::Busy;
        };
        let router = self.clone();
        tokio::spawn(async move {
            let outcome = match up {
                Up::Event(event) => client
                    .notify_for_node(lan_id, event, ack, NOTIFY_REX)
                    .await
                    .map_err(|e| match e {
                        NotifyError::Refused(e) => Some(number_of(e.condition)),
                        _ => None,
                    }),
                Up::Data(data) => {
                    let qos = router.qos_of(&data, ack);
                    client
                        .report_for_node(lan_id, data, qos, Retry::default())
                        .await
                        .map_err(|e| match e {
                            ReportError::Refused(e) => Some(number_of(e.condition)),
                            _ => None,
                        })
                }
            };
            let answer = match outcome {
                Ok(()) => {
                    router.count(|s| s.forwarded += 1);
                    Some(None)
                }
                Err(Some(number)) => {
                    router.count(|s| s.refused += 1);
                    Some(Some(number))
                }
                Err(None) => {
                    router.count(|s| s.failed += 1);
                    None
                }
            };
            router.lock_dedup().finished(&trace, answer);
            if ack && let Some(answer) = answer {
                router.answer_node(node.address, &trace, answer);
            }
            drop(permit);
        });
        Inbound::Forwarded
    }

    /// Sends node `to` the answer to its request `trace`.
    fn answer_node(
        self: &Arc<Self>,
        to: LoraAddress,
        trace: &lithos_core::binary::lan::TraceId,
        answer: Option<i32>,
    ) {
        let answer = match answer {
            None => LanAnswer::response(trace),
            Some(n) => LanAnswer::error(trace, n),
        };
        let Ok(frame) = to_frame(answer) else { return };
        let link = self.link.clone();
        tokio::spawn(async move {
            // Lost or refused by the radio: the node retransmits, and is answered again.
            let _ = link.send(to, frame.as_bytes()).await;
        });
    }

    /// Executions waiting for their nodes.
    pub fn in_flight(&self) -> usize {
        self.lock_traces().len()
    }
}

impl LanRouter {
    /// `runtime` executing the concentrator's actions on the gateway: `sync-nodes` (learn
    /// the nodes from the server again), `reset-node` (tell the node to start over, and
    /// remove it here and on the server) and `pull-lan-follows` (learn the follows between
    /// its nodes again); and taking the follows the server sets (`<lan-follows/>`).
    pub fn actions(self: &Arc<Self>, runtime: ThingRuntime) -> ThingRuntime {
        let (sync, reset, pull) = (self.clone(), self.clone(), self.clone());
        runtime
            .handle_iq(
                lithos_tuxp_concentrator::NS,
                Arc::new(FollowsSet(self.clone())),
            )
            .on_action(
                lithos_tuxp_concentrator::NS,
                "pull-lan-follows",
                action_handler(move |_| {
                    let r = pull.clone();
                    async move {
                        let client = r.upstream_client().ok_or_else(not_connected)?;
                        r.pull_lan_follows(&client, ACTION_TIMEOUT)
                            .await
                            .map(|_| None)
                            .map_err(|e| {
                                StanzaError::explained(
                                    DefinedCondition::RemoteServerTimeout,
                                    format!("lan-follows: {e}"),
                                )
                            })
                    }
                }),
            )
            .on_action(
                lithos_tuxp_concentrator::NS,
                "sync-nodes",
                action_handler(move |_| {
                    let r = sync.clone();
                    async move {
                        let client = r.upstream_client().ok_or_else(not_connected)?;
                        r.sync_nodes(&client, ACTION_TIMEOUT)
                            .await
                            .map(|_| None)
                            .map_err(|e| {
                                StanzaError::explained(
                                    DefinedCondition::RemoteServerTimeout,
                                    format!("pull-nodes: {e}"),
                                )
                            })
                    }
                }),
            )
            .on_action(
                lithos_tuxp_concentrator::NS,
                "reset-node",
                action_handler(move |action| {
                    let r = reset.clone();
                    async move {
                        let n = ResetNode::from_element(action)?;
                        r.reset_node(n.lan_id).await.map(|_| None)
                    }
                }),
            )
    }

    fn upstream_client(&self) -> Option<Client> {
        self.upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resets node `lan_id`: the node is told `reset-thing` (it forgets its address and
    /// starts LoRa-DAC over), the server removes it (`remove-node`), and so does the router.
    pub async fn reset_node(&self, lan_id: u8) -> Result<(), StanzaError> {
        let Some(node) = self.node(lan_id) else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "this gateway has no such node",
            ));
        };
        let client = self.upstream_client().ok_or_else(not_connected)?;
        if let Ok(frame) = to_frame(ResetThing) {
            // Lost on the air, the node keeps its old address and is no longer answered:
            // its next is-configured (after a reboot) gets not-configured.
            let _ = self.link.send(node.address, frame.as_bytes()).await;
        }
        use lithos_tuxp_concentrator::ConcentratorExt;
        client
            .remove_node(lan_id, ACTION_TIMEOUT)
            .await
            .map_err(|e| match e {
                lithos_client::RequestError::Stanza(e) => *e,
                other => StanzaError::explained(
                    DefinedCondition::RemoteServerTimeout,
                    format!("remove-node: {other}"),
                ),
            })?;
        self.remove_node(lan_id);
        tracing::info!(lan_id, "node reset");
        Ok(())
    }
}

/// Before [`LanRouter::uplink`]: no session to ask the server with.
fn not_connected() -> StanzaError {
    StanzaError::explained(
        DefinedCondition::ServiceUnavailable,
        "the gateway's uplink is not connected yet",
    )
}

/// How long the gateway's actions wait for the server.
const ACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The server setting the follows between the gateway's nodes.
struct FollowsSet(Arc<LanRouter>);

#[async_trait]
impl IqHandler for FollowsSet {
    async fn handle(&self, ctx: &HandlerContext, request: Iq) -> IqAnswer {
        // Only the server sets them (its domain, or no `from`: the server itself).
        let domain = ctx.client().jid().domain().to_string();
        if request
            .from
            .as_ref()
            .is_some_and(|f| f.local().is_some() || f.resource().is_some() || f.domain() != domain)
        {
            return Err(StanzaError::explained(
                DefinedCondition::Forbidden,
                "only the server sets a gateway's follows",
            ));
        }
        let IqPayload::Set(payload) = request.payload else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let follows = lithos_tuxp_concentrator::LanFollows::from_element(payload)?;
        self.0.set_lan_follows(follows.follows);
        Ok(None)
    }
}

/// What goes up.
enum Up {
    Event(Element),
    Data(Element),
}

#[async_trait]
impl IqHandler for LanRouter {
    async fn handle(&self, _ctx: &HandlerContext, request: Iq) -> IqAnswer {
        let IqPayload::Set(payload) = request.payload else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let exec = Execution::from_element(payload)?;
        let lan_id = request
            .to
            .as_ref()
            .and_then(|t| t.resource())
            .and_then(lithos_tuxp_things::lan_id);
        let address = lan_id.and_then(|id| self.lock_nodes().get(&id).map(|n| n.address));
        let Some(address) = address else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "this gateway has no such node",
            ));
        };
        // The node's deadline: lan-timeout (10 s when absent, at most a minute: one owner's
        // long waits must not fill the table every node shares), never past the execution's
        // own expiry.
        let mut wait = exec
            .lan_timeout
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(DEFAULT_LAN_TIMEOUT)
            .min(MAX_LAN_TIMEOUT);
        // Waits whose deadline passed and whose handler is gone (answered nowhere) go first.
        let _ = self.lock_traces().expired(Instant::now());
        if let Some(expires) = exec.expires_ms {
            let left = expires - lithos_core::datetime::now_ms();
            if left <= 0 {
                return Err(StanzaError::explained(
                    DefinedCondition::RemoteServerTimeout,
                    "the execution expired before it reached the gateway; not sent",
                ));
            }
            wait = wait.min(Duration::from_millis(left as u64));
        }
        let (tx, rx) = oneshot::channel();
        let trace_id = self
            .lock_traces()
            .start(
                tx,
                ms_since_midnight().wrapping_add(wait.as_millis() as u32),
                Instant::now(),
                wait,
            )
            .map_err(|_| {
                StanzaError::explained(
                    DefinedCondition::ResourceConstraint,
                    "too many executions wait for LAN nodes",
                )
            })?;
        let frame = match to_frame(LanExecution {
            trace_id,
            action: exec.action,
        }) {
            Ok(f) => f,
            Err(e) => {
                self.lock_traces().answered(&trace_id, Instant::now());
                return Err(StanzaError::explained(
                    DefinedCondition::NotAcceptable,
                    format!("the action cannot be a LAN frame: {e}"),
                ));
            }
        };
        if frame.as_bytes().len() > lithos_lora_sim::MAX_FRAME {
            self.lock_traces().answered(&trace_id, Instant::now());
            return Err(StanzaError::explained(
                DefinedCondition::NotAcceptable,
                format!(
                    "the action's frame is {} bytes; the radio carries {}",
                    frame.as_bytes().len(),
                    lithos_lora_sim::MAX_FRAME
                ),
            ));
        }
        if let Err(e) = self.link.send(address, frame.as_bytes()).await {
            self.lock_traces().answered(&trace_id, Instant::now());
            return Err(StanzaError::explained(
                DefinedCondition::RecipientUnavailable,
                format!("the radio did not send it: {e}"),
            ));
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => match answer.error_number {
                None => Ok(None),
                Some(n) => Err(error_of(n)),
            },
            _ => {
                // Ends it here if the sweep has not: a late answer finds nothing.
                self.lock_traces().answered(&trace_id, Instant::now());
                let _ = self.lock_traces().expired(Instant::now());
                Err(StanzaError::explained(
                    DefinedCondition::RemoteServerTimeout,
                    "the LAN node did not answer in time",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nowhere;

    #[async_trait]
    impl Link for Nowhere {
        async fn send(&self, _to: LoraAddress, _frame: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn a_node_wanting_an_acknowledgement_gets_one_only_for_what_the_server_took() {
        let r = LanRouter::new(Arc::new(Nowhere));
        let data = |name: &str| Element::builder(name, "urn:x").build();
        // Nothing given: QoS 1 with an acknowledgement, 0 without.
        assert_eq!(r.qos_of(&data("a"), true), Qos::AtLeastOnce);
        assert_eq!(r.qos_of(&data("a"), false), Qos::AtMostOnce);
        // QoS 0 given: still 1 for a node that wants an acknowledgement (QoS 0 is never
        // acknowledged by the server, and the node would be told it was stored).
        r.set_report_qos("urn:x", "a", Qos::AtMostOnce);
        assert_eq!(r.qos_of(&data("a"), true), Qos::AtLeastOnce);
        assert_eq!(r.qos_of(&data("a"), false), Qos::AtMostOnce);
        // Higher levels given hold either way.
        r.set_report_qos("urn:x", "b", Qos::ExactlyOnce);
        assert_eq!(r.qos_of(&data("b"), true), Qos::ExactlyOnce);
        assert_eq!(r.qos_of(&data("b"), false), Qos::ExactlyOnce);
    }
}
