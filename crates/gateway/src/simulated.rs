//! A whole gateway on a simulated radio network (`lithos-lora-sim`), for tests, examples
//! and benchmarks: its radios (commands out from `EF EF 16`; answers, notifications and
//! reports in on the uplink `EF EF 17`; new nodes at the DAC service `EF EF 1F`), its LAN
//! router, its DAC service and working modes, and its session, with the nodes and the
//! follows between them it has learnt back from the server. A gateway on a real LoRa module wires the same pieces to its
//! module instead.

use std::sync::Arc;
use std::time::Duration;

use lithos_client::{Client, Events};
use lithos_lora_sim::{Address, RadioNetwork};
use lithos_tuxp_concentrator::ConcentratorError;
use lithos_tuxp_execution::thing::{ThingError, ThingRuntime};
use tokio::sync::broadcast;

use crate::dac::{DAC_SERVICE, Dac, DacControl, DacService, Uplink};
use crate::router::LanRouter;

/// Why a simulated gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its session did not start (registration, login).
    #[error(transparent)]
    Session(#[from] ThingError),
    /// The server did not list its nodes (`pull-nodes`) or their follows (`lan-follows`).
    #[error("pull-nodes or lan-follows: {0}")]
    Sync(#[from] ConcentratorError),
}

/// A gateway running on a simulated network.
#[derive(Debug)]
pub struct SimulatedGateway {
    /// Its session (`<gateway>@<domain>/0`).
    pub client: Client,
    /// Its session's events.
    pub events: Events,
    /// Its LAN router.
    pub router: Arc<LanRouter>,
    /// Its working mode.
    pub control: Arc<DacControl>,
    /// The nodes the server listed at start.
    pub synced: usize,
}

/// Starts the gateway `runtime` (its id, key and server set) on `net`; `on_dac` hears what
/// the DAC service did (to print it, say; [`DacService::outcomes`]).
pub async fn start(
    net: &RadioNetwork,
    runtime: ThingRuntime,
    on_dac: impl Fn(Dac, &LanRouter) + Send + Sync + 'static,
) -> Result<SimulatedGateway, StartError> {
    let router = LanRouter::new(Arc::new(net.radio(Address::new(0xEF, 0xEF, 0x16))));
    let mut uplink = net.radio(Address::new(
        0xEF,
        0xEF,
        lithos_tuxp_lora_dac::THING_CHANNEL,
    ));
    let r = router.clone();
    tokio::spawn(async move {
        while let Some(frame) = uplink.recv().await {
            r.received(&frame);
        }
    });
    let control = DacControl::new();
    let runtime = router.actions(control.actions(runtime.lan_nodes(router.clone())));
    let (client, events) = runtime.start().await?;
    let synced = router.sync_nodes(&client, Duration::from_secs(10)).await?;
    router
        .pull_lan_follows(&client, Duration::from_secs(10))
        .await?;
    router.uplink(client.clone());
    let dac = DacService::new(
        router.clone(),
        client.clone(),
        Arc::new(net.radio(Address::new(0xEF, 0xEF, 0x15))),
        Uplink::default(),
        control.clone(),
    );
    let mut outcomes = dac.outcomes();
    let r = router.clone();
    tokio::spawn(async move {
        loop {
            match outcomes.recv().await {
                Ok(d) => on_dac(d, &r),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut dac_radio = net.radio(DAC_SERVICE);
    tokio::spawn(async move {
        while let Some(frame) = dac_radio.recv().await {
            dac.received(&frame).await;
        }
    });
    Ok(SimulatedGateway {
        client,
        events,
        router,
        control,
        synced,
    })
}
