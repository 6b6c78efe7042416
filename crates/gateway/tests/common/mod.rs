//! What the gateway's integration tests share.

use std::time::Duration;

use lithos_client::{Event, Events};
use lithos_core::{Element, Jid};
use lithos_lora_sim::RadioNetwork;
use lithos_mud::{Node, NodeBuilder};
use lithos_tuxp_notification::notification_of;

/// The demo light's namespace.
pub const LIGHT: &str = lithos_things_demo::light::NS;

/// Notifications `events` received within `quiet` of the last.
pub async fn notifications(events: &mut Events, quiet: Duration) -> Vec<(Jid, Element)> {
    let mut got = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(quiet, events.recv()).await {
        if let Event::Message(m) = e
            && let Some(n) = notification_of(&m)
        {
            got.push(n);
        }
    }
    got
}

/// The light's `switch-state-changed` event.
pub fn switched(previous: u8, current: u8) -> Element {
    Element::builder("switch-state-changed", LIGHT)
        .attr("previous", previous.to_string())
        .attr("current", current.to_string())
        .build()
}

/// Starts a node on `net` from the DAC client address (it runs LoRa-DAC first).
pub async fn start_node(builder: NodeBuilder, net: &RadioNetwork) -> Node {
    builder
        .start(net.radio(lithos_tuxp_lora_dac::DAC_CLIENT))
        .await
        .unwrap()
}
