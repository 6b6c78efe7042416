//! The gateway's LAN router: it answers the executions the server forwards for
//! `<gateway>/<lan-id>` by sending the node a `lan-execution` frame and waiting for its
//! `lan-answer`, within the execution's deadline. Plugged into the gateway's thing runtime
//! (`ThingRuntime::lan_nodes`); frames go out through a [`Link`] (a simulated radio in tests,
//! a LoRa module in a gateway) and come back through [`LanRouter::received`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lithos_client::handler::{HandlerContext, IqAnswer, IqHandler};
use lithos_core::Payload;
use lithos_core::binary::lan::LoraAddress;
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_tuxp_execution::Execution;
use tokio::sync::oneshot;

use crate::lan::{LanAnswer, LanExecution, error_of, from_frame, to_frame};
use crate::traces::{DEFAULT_LAN_TIMEOUT, Traces};

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

/// Executions for LAN nodes, answered over the LAN.
pub struct LanRouter {
    link: Arc<dyn Link>,
    nodes: Mutex<HashMap<u8, LoraAddress>>,
    traces: Mutex<Traces<oneshot::Sender<LanAnswer>>>,
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
            traces: Mutex::new(Traces::default()),
        })
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, HashMap<u8, LoraAddress>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_traces(&self) -> std::sync::MutexGuard<'_, Traces<oneshot::Sender<LanAnswer>>> {
        self.traces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where node `lan_id` listens (from DAC's allocation, or `pull-nodes` after a restart).
    pub fn set_node(&self, lan_id: u8, address: LoraAddress) {
        self.lock_nodes().insert(lan_id, address);
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
        for n in nodes {
            if n.communication_net != CommunicationNet::Lora {
                continue;
            }
            if let Ok(a) = n.address.parse::<LoraAddress>() {
                known.insert(n.lan_id, a);
            }
        }
        Ok(known.len())
    }

    /// Forgets node `lan_id`.
    pub fn remove_node(&self, lan_id: u8) {
        self.lock_nodes().remove(&lan_id);
    }

    /// A frame the radio received: a `lan-answer` ends the execution it answers (if it still
    /// waits); `true` if it was one.
    pub fn received(&self, frame: &[u8]) -> bool {
        let Some(answer) = from_frame::<LanAnswer>(frame) else {
            return false;
        };
        let pending = self
            .lock_traces()
            .answered(&answer.trace_id, Instant::now());
        match pending {
            Some(p) => {
                let _ = p.request.send(answer);
                true
            }
            // Late, or answering nothing this gateway sent: dropped.
            None => false,
        }
    }

    /// Executions waiting for their nodes.
    pub fn in_flight(&self) -> usize {
        self.lock_traces().len()
    }
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
        let address = lan_id.and_then(|id| self.lock_nodes().get(&id).copied());
        let Some(address) = address else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "this gateway has no such node",
            ));
        };
        // The node's deadline: lan-timeout (10 s when absent), never past the execution's
        // own expiry.
        let mut wait = exec
            .lan_timeout
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(DEFAULT_LAN_TIMEOUT);
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
            .start(tx, ms_since_midnight(), Instant::now(), wait)
            .map_err(|_| {
                StanzaError::explained(
                    DefinedCondition::ResourceConstraint,
                    "too many executions wait for LAN nodes",
                )
            })?;
        let frame = to_frame(LanExecution {
            trace_id,
            action: exec.action,
        })
        .map_err(|e| {
            StanzaError::explained(
                DefinedCondition::NotAcceptable,
                format!("the action cannot be a LAN frame: {e}"),
            )
        })?;
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
