//! The gateway's LoRa-DAC service (reference §3.6): it gives new nodes their LAN addresses
//! and adds them to the server.
//!
//! A node introduces itself (thing id, registration code) to [`DAC_SERVICE`]; the service
//! picks the lowest free LAN id (or the one the node already has) and answers an
//! `allocation` to [`DAC_CLIENT`]; when the node says `allocated`, the service sends the
//! server `add-node` (the registration code is the key an operator authorized the node
//! with) and, once the server agreed, tells the node `configured` and routes to it; if the
//! server refused, `not-configured` (the node starts over). A node asking `is-configured`
//! after a restart gets `configured` if the gateway knows it (from DAC, or the server's
//! `pull-nodes` after the gateway's own restart), `not-configured` otherwise.
//!
//! Every new node shares the address `EF EE 1F` and nothing in an `allocation` names whom
//! it is for, so the service allocates to **one node at a time**: another introduction is
//! not answered until the one served is added, refused, or 30 s old (its node retries). Bring
//! new nodes up one after another; a node that took someone else's allocation (both were
//! listening) says `allocated` with its own thing id, which the service ignores.
//!
//! The gateway's owner switches it between DAC (new nodes taken, the default) and ROUTER (only
//! known nodes answered) with `change-working-mode`, and drops a half-served introduction with
//! `reset-dac-service` (`urn:leps:lora-gateway`; [`DacControl::actions`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use lithos_client::Client;
use lithos_core::Payload;
use lithos_core::binary::lan::{LanFrame, RawBytes};
use lithos_tuxp_concentrator::{AddNode, CommunicationNet, ConcentratorExt};
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_lora_dac::{
    Allocated, Allocation, Configured, DAC_CLIENT, Introduction, IsConfigured, NotConfigured,
    allocated_address,
};
pub use lithos_tuxp_lora_dac::{DAC_SERVICE, THING_CHANNEL};
pub use lithos_tuxp_lora_gateway::WorkingMode;
use lithos_tuxp_lora_gateway::{ChangeWorkingMode, NS};

use crate::router::{LanRouter, Link, Node};

/// How long one introduction holds the service before another may take it (while the
/// server is asked, it holds it until the answer).
pub const SERVING_FOR: Duration = Duration::from_secs(30);

/// How long `add-node` may take: the server may hold it until an operator confirms the node
/// (`[modules.concentrator] confirmation`, 300 s by default), and a little more.
pub const ADD_NODE_TIMEOUT: Duration = Duration::from_secs(310);

/// Where the nodes send uplink frames: the gateway's uplink address and channel range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uplink {
    /// The address's two bytes (`EF EF`).
    pub address: [u8; 2],
    /// The first channel.
    pub first_channel: u8,
    /// The last channel (the gateway listens on each).
    pub last_channel: u8,
}

impl Default for Uplink {
    /// `EF EF`, channel `0x17` only.
    fn default() -> Uplink {
        Uplink {
            address: [0xEF, 0xEF],
            first_channel: THING_CHANNEL,
            last_channel: THING_CHANNEL,
        }
    }
}

#[derive(Debug, Clone)]
struct Serving {
    thing_id: String,
    registration_code: String,
    lan_id: u8,
    adding: bool,
    since: Instant,
}

/// What the service did with a frame (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dac {
    /// Allocated LAN id `n` to an introduced node.
    Allocated(u8),
    /// Adding the node to the server (its answer follows).
    Adding,
    /// Told a node `configured`.
    Configured,
    /// Told a node `not-configured`.
    NotConfigured,
    /// Nothing to do (another node is being served, no LAN id is free, not a DAC frame,
    /// not accepting new nodes).
    Ignored,
}

/// The gateway's working mode and DAC resets, as its owner sets them
/// (`urn:leps:lora-gateway`, [`DacControl::actions`]); the service reads them on each frame.
/// DAC (new nodes taken) by default.
#[derive(Debug)]
pub struct DacControl {
    accepting: AtomicBool,
    resets: AtomicU64,
}

impl Default for DacControl {
    fn default() -> DacControl {
        DacControl {
            accepting: AtomicBool::new(true),
            resets: AtomicU64::new(0),
        }
    }
}

impl DacControl {
    /// A control in DAC mode.
    pub fn new() -> Arc<DacControl> {
        Arc::new(DacControl::default())
    }

    /// Sets the working mode.
    pub fn set_mode(&self, mode: WorkingMode) {
        self.accepting
            .store(mode == WorkingMode::Dac, Ordering::SeqCst);
        tracing::info!(?mode, "gateway working mode");
    }

    /// The working mode.
    pub fn mode(&self) -> WorkingMode {
        if self.accepting.load(Ordering::SeqCst) {
            WorkingMode::Dac
        } else {
            WorkingMode::Router
        }
    }

    /// Drops the introduction being served.
    pub fn reset(&self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }

    /// `runtime` executing `change-working-mode` and `reset-dac-service` on this control.
    pub fn actions(self: &Arc<Self>, runtime: ThingRuntime) -> ThingRuntime {
        let (mode, reset) = (self.clone(), self.clone());
        runtime
            .on_action(
                NS,
                "change-working-mode",
                action_handler(move |action| {
                    let mode = mode.clone();
                    async move {
                        let c = ChangeWorkingMode::from_element(action)?;
                        mode.set_mode(c.working_mode);
                        Ok(None)
                    }
                }),
            )
            .on_action(
                NS,
                "reset-dac-service",
                action_handler(move |_| {
                    let reset = reset.clone();
                    async move {
                        reset.reset();
                        Ok(None)
                    }
                }),
            )
    }
}

/// The DAC service.
pub struct DacService {
    router: Arc<LanRouter>,
    gateway: Client,
    link: Arc<dyn Link>,
    uplink: Uplink,
    serving: Mutex<Option<Serving>>,
    control: Arc<DacControl>,
    resets_seen: AtomicU64,
    outcomes: broadcast::Sender<Dac>,
}

impl std::fmt::Debug for DacService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DacService")
            .field("uplink", &self.uplink)
            .finish_non_exhaustive()
    }
}

impl DacService {
    /// A service adding nodes through `gateway`'s session, routing them with `router`,
    /// answering through `link`, in the mode `control` holds.
    pub fn new(
        router: Arc<LanRouter>,
        gateway: Client,
        link: Arc<dyn Link>,
        uplink: Uplink,
        control: Arc<DacControl>,
    ) -> Arc<DacService> {
        Arc::new(DacService {
            router,
            gateway,
            link,
            uplink,
            serving: Mutex::new(None),
            resets_seen: AtomicU64::new(control.resets.load(Ordering::SeqCst)),
            control,
            outcomes: broadcast::channel(64).0,
        })
    }

    fn serving(&self) -> std::sync::MutexGuard<'_, Option<Serving>> {
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        let resets = self.control.resets.load(Ordering::SeqCst);
        if self.resets_seen.swap(resets, Ordering::SeqCst) != resets
            && serving.as_ref().is_some_and(|s| !s.adding)
        {
            *serving = None;
        }
        serving
    }

    /// Whether a node other than `thing_id` is being served.
    fn serving_other(&self, thing_id: &str) -> bool {
        self.serving()
            .as_ref()
            .is_some_and(|s| s.thing_id != thing_id)
    }

    /// A frame the DAC radio received.
    pub async fn received(self: &Arc<Self>, frame: &[u8]) -> Dac {
        let frame = LanFrame::from_bytes(frame.to_vec());
        if let Some(intro) = frame.read::<Introduction>() {
            return self.introduced(intro).await;
        }
        if let Some(allocated) = frame.read::<Allocated>() {
            return self.allocated(allocated).await;
        }
        if let Some(is) = frame.read::<IsConfigured>() {
            // Every node in DAC hears the answer (it names nobody): not while another is
            // being served, whom it would mislead; the asker asks again.
            if self.serving_other(&is.thing_id) {
                return Dac::Ignored;
            }
            return match self.router.lan_id_of(&is.thing_id) {
                Some(_) => self.tell(Configured, Dac::Configured).await,
                None => self.tell(NotConfigured, Dac::NotConfigured).await,
            };
        }
        Dac::Ignored
    }

    async fn introduced(&self, intro: Introduction) -> Dac {
        let known = self.router.lan_id_of(&intro.thing_id);
        if known.is_none() && self.control.mode() == WorkingMode::Router {
            return Dac::Ignored;
        }
        let lan_id = {
            let mut serving = self.serving();
            match serving.as_ref() {
                Some(s) if s.thing_id == intro.thing_id => s.lan_id,
                // Being added (the server may take minutes), or recently allocated: busy.
                Some(s) if s.adding || s.since.elapsed() < SERVING_FOR => return Dac::Ignored,
                _ => {
                    let used = self.router.taken_lan_ids();
                    let Some(lan_id) = known.or_else(|| (1..=255).find(|i| !used.contains(i)))
                    else {
                        tracing::warn!(thing = %intro.thing_id, "DAC: no LAN id is free");
                        return Dac::Ignored;
                    };
                    *serving = Some(Serving {
                        thing_id: intro.thing_id.clone(),
                        registration_code: intro.registration_code.clone(),
                        lan_id,
                        adding: false,
                        since: Instant::now(),
                    });
                    lan_id
                }
            }
        };
        let allocation = Allocation {
            uplink_channel_begin: self.uplink.first_channel,
            uplink_channel_end: self.uplink.last_channel,
            uplink_address: RawBytes(self.uplink.address.to_vec()),
            allocated_address: RawBytes(allocated_address(lan_id).to_bytes().to_vec()),
        };
        self.tell(allocation, Dac::Allocated(lan_id)).await
    }

    async fn allocated(self: &Arc<Self>, allocated: Allocated) -> Dac {
        // A node the gateway has (its `configured` was lost): tell it again, unless another
        // is being served (it would take the answer for its own).
        if self.router.lan_id_of(&allocated.thing_id).is_some() {
            if self.serving_other(&allocated.thing_id) {
                return Dac::Ignored;
            }
            return self.tell(Configured, Dac::Configured).await;
        }
        let serving = {
            let mut serving = self.serving();
            match serving.as_mut() {
                Some(s) if s.thing_id == allocated.thing_id && !s.adding => {
                    s.adding = true;
                    s.clone()
                }
                // Being added, or someone else's allocation taken by this node.
                _ => return Dac::Ignored,
            }
        };
        // The server may hold add-node for minutes (an operator's confirmation): meanwhile
        // the service goes on answering (is-configured from rebooted nodes, the node's own
        // repeated `allocated`), and the outcome reaches the node from this task.
        let this = self.clone();
        tokio::spawn(async move { this.add(serving).await });
        Dac::Adding
    }

    /// Adds the node being served to the server, then tells it how that went.
    async fn add(&self, serving: Serving) {
        let address = allocated_address(serving.lan_id);
        let added = self
            .gateway
            .add_node(
                AddNode {
                    thing_id: serving.thing_id.clone(),
                    registration_code: serving.registration_code.clone(),
                    lan_id: serving.lan_id,
                    communication_net: CommunicationNet::Lora,
                    address: address.to_string(),
                },
                ADD_NODE_TIMEOUT,
            )
            .await;
        {
            let mut serving_now = self.serving();
            if serving_now
                .as_ref()
                .is_some_and(|s| s.thing_id == serving.thing_id)
            {
                *serving_now = None;
            }
        }
        match added {
            Ok(_) => {
                self.router.add_node(
                    serving.lan_id,
                    Node {
                        address,
                        thing_id: Some(serving.thing_id),
                    },
                );
                self.tell(Configured, Dac::Configured).await;
            }
            Err(e) => {
                tracing::warn!(thing = %serving.thing_id, error = %e, "DAC: the server did not add the node");
                self.tell(NotConfigured, Dac::NotConfigured).await;
            }
        }
    }

    /// What the service did, as it happens (from the frames, and from the adds that end
    /// later): for a program that shows it. Missed when the receiver lags.
    pub fn outcomes(&self) -> broadcast::Receiver<Dac> {
        self.outcomes.subscribe()
    }

    /// Sends `p` to the DAC client address.
    async fn tell<P: Payload>(&self, p: P, done: Dac) -> Dac {
        let Ok(frame) = LanFrame::of(p) else {
            return Dac::Ignored;
        };
        if let Err(e) = self.link.send(DAC_CLIENT, frame.as_bytes()).await {
            tracing::debug!(error = %e, "DAC: the radio did not send");
        }
        let _ = self.outcomes.send(done);
        done
    }
}
