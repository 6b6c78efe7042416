//! # lithos-tuxp-concentrator
//!
//! Concentrators (Lithosphere reference §3.5), `urn:leps:tuxp:concentrator`: a gateway is an
//! edge thing whose model is a concentrator; the LAN nodes behind it (LoRa or BLE devices,
//! LAN ids 1 to 255) are things too, each with an id, a model and an owner, reached at
//! `<gateway>@<domain>/<lan-id>` through the gateway's edge session.
//!
//! ## Wire form
//!
//! The gateway adds a node an operator authorized (the node's registration code is the key
//! the operator gave; the operator becomes the node's owner):
//!
//! ```xml
//! <iq type="set" to="example.com" id="a1">
//!   <add-node xmlns="urn:leps:tuxp:concentrator" thing-id="SL-01-0B0B0B05"
//!             registration-code="…" lan-id="5" communication-net="LORA"
//!             address="la$0,5:23"/>
//! </iq>
//!
//! <iq type="result" id="a1">
//!   <node-added xmlns="urn:leps:tuxp:concentrator" concentrator-thing-name="lgw-01-0a0a0a0a"
//!               node-thing-id="SL-01-0B0B0B05" lan-id="5" model="SL-01"
//!               addition-time="2026-12-07T15:00:00.000Z"/>
//! </iq>
//! ```
//!
//! Refused, in the reference's order: the sender is no registered thing (`item-not-found`)
//! or not a concentrator (`service-unavailable`); a LAN id out of 1–255 or another net than
//! `LORA`/`BLE` (`bad-request`); the LAN id or the node's thing id taken (`conflict`); a
//! thing id of no known model, or no valid authorization for it with that registration
//! code (`not-acceptable`). `<pull-nodes/>` (get) answers the gateway's nodes as
//! `<node lan-id thing-id model communication-net address/>` children, which a gateway
//! restarting syncs from; `<remove-node lan-id="5"/>` (set) removes one (`item-not-found`
//! if there is none).
//!
//! Executions for `gateway/<lan-id>` are checked against **the node's** owner, grants and
//! model (`lithos-tuxp-execution`).
//!
//! ## Follows between nodes
//!
//! A node may follow an event of another node behind the same gateway (a light following
//! a switch): the gateway asks for it (`lithos-tuxp-friends`, `follower-lan-id`), an
//! operator approves it, and from then on the gateway passes the event from one node to
//! the other on its LAN, with no round trip to the server (which does not send it again).
//! The gateway learns its follows with a get, and the server sets them on it when one is
//! approved or ended:
//!
//! ```xml
//! <iq type="get" to="example.com" id="f1"><lan-follows xmlns="urn:leps:tuxp:concentrator"/></iq>
//!
//! <iq type="result" id="f1">
//!   <lan-follows xmlns="urn:leps:tuxp:concentrator">
//!     <lan-follow friend-lan-id="3" event="{urn:leps:things:switch}switched" follower-lan-id="5"/>
//!   </lan-follows>
//! </iq>
//! ```
//!
//! Lithosphere also writes `follower-lan-id="0"` for "up to the server"; a Lithos gateway
//! sends every event up (its owner hears it), so the server lists only node-to-node follows.

#![forbid(unsafe_code)]

use lithos_core::{AttrValue, Payload};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{ConcentratorError, ConcentratorExt};

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:concentrator";

/// BXMPP table: Lithosphere's `F8 05` codes (00–0A), then Lithos's (0B–19) for the names the
/// reference's protocol uses and its tables lack.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-concentrator.props");

#[cfg(feature = "server")]
lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }
#[cfg(not(feature = "server"))]
lithos_core::extension! { table: BXMPP_TABLE }

/// How a node is reached from its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AttrValue)]
pub enum CommunicationNet {
    /// LoRa (an AS32-style radio address, `la$<high>,<low>:<channel>`).
    #[payload(value = "LORA")]
    Lora,
    /// Bluetooth Low Energy.
    #[payload(value = "BLE")]
    Ble,
}

impl CommunicationNet {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            CommunicationNet::Lora => "LORA",
            CommunicationNet::Ble => "BLE",
        }
    }
}

fn lan_id_ok(id: &u8) -> bool {
    *id >= 1
}

fn not_empty(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64
}

/// `<add-node/>`: the gateway adds a node.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "add-node")]
pub struct AddNode {
    /// The node's thing id.
    #[payload(attr, check = not_empty)]
    pub thing_id: String,
    /// The key the operator authorized the node with.
    #[payload(attr, check = not_empty)]
    pub registration_code: String,
    /// Its LAN id behind the gateway, 1 to 255.
    #[payload(attr, check = lan_id_ok)]
    pub lan_id: u8,
    /// How the gateway reaches it.
    #[payload(attr)]
    pub communication_net: CommunicationNet,
    /// Its address on that net.
    #[payload(attr, check = not_empty)]
    pub address: String,
}

/// `<node-added/>`: the answer to an added node.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "node-added")]
pub struct NodeAdded {
    /// The gateway's thing name.
    #[payload(attr)]
    pub concentrator_thing_name: String,
    /// The node's thing id.
    #[payload(attr)]
    pub node_thing_id: String,
    /// Its LAN id.
    #[payload(attr)]
    pub lan_id: u8,
    /// Its model.
    #[payload(attr)]
    pub model: String,
    /// When it was added.
    #[payload(attr = "addition-time", with = lithos_core::datetime)]
    pub addition_ms: i64,
}

/// A node, in `<pull-nodes/>` answers.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "node")]
pub struct Node {
    /// Its LAN id.
    #[payload(attr, check = lan_id_ok)]
    pub lan_id: u8,
    /// Its thing id.
    #[payload(attr)]
    pub thing_id: String,
    /// Its model.
    #[payload(attr)]
    pub model: String,
    /// How the gateway reaches it.
    #[payload(attr)]
    pub communication_net: CommunicationNet,
    /// Its address on that net.
    #[payload(attr)]
    pub address: String,
}

/// `<pull-nodes/>` (get): the gateway's nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "pull-nodes")]
pub struct PullNodes {
    /// In the answer: the nodes, by LAN id.
    #[payload(child)]
    pub nodes: Vec<Node>,
}

/// `<remove-node/>` (set): the gateway removes a node.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "remove-node")]
pub struct RemoveNode {
    /// Its LAN id.
    #[payload(attr, check = lan_id_ok)]
    pub lan_id: u8,
}

/// `<reset-node lan-id="5"/>`: an action on the gateway (its owner executes it): the node
/// forgets its address and starts over (LoRa-DAC), and the gateway removes it.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "reset-node")]
pub struct ResetNode {
    /// Its LAN id.
    #[payload(attr, check = lan_id_ok)]
    pub lan_id: u8,
}

/// `<sync-nodes/>`: an action on the gateway: it learns its nodes from the server again
/// (`pull-nodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "sync-nodes")]
pub struct SyncNodes;

/// `{ns}name`, as follows name events.
fn event_name(v: &str) -> bool {
    v.starts_with('{') && v.contains('}') && v.len() <= 256
}

/// One follow between two nodes of a gateway: when the node `friend_lan_id` tells of
/// `event`, the gateway passes it on to the node `follower_lan_id` over the LAN itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Payload)]
#[payload(ns = NS, name = "lan-follow")]
pub struct LanFollow {
    /// The node followed.
    #[payload(attr, check = lan_id_ok)]
    pub friend_lan_id: u8,
    /// The event, `{ns}name`.
    #[payload(attr, check = event_name)]
    pub event: String,
    /// The node that follows it.
    #[payload(attr, check = lan_id_ok)]
    pub follower_lan_id: u8,
}

pub use lithos_tuxp_things::MAX_LAN_FOLLOWS;

/// `<lan-follows/>`: the follows between a gateway's nodes, which the gateway routes on
/// its LAN. A get from the gateway answers them; the server sets them on the gateway
/// (`to` its `/0`) when one is approved or ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "lan-follows")]
pub struct LanFollows {
    /// The follows (all of them: a set replaces what the gateway had).
    #[payload(child)]
    pub follows: Vec<LanFollow>,
}

/// `<pull-lan-follows/>`: an action on the gateway: it asks the server for its
/// `<lan-follows/>` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "pull-lan-follows")]
pub struct PullLanFollows;

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Element;

    #[test]
    fn add_node_reads_strictly() {
        let ok = Element::parse(
            "<add-node xmlns='urn:leps:tuxp:concentrator' thing-id='SL-01-0B0B0B05' \
             registration-code='K' lan-id='5' communication-net='LORA' address='la$0,5:23'/>",
        )
        .unwrap();
        let a = AddNode::from_element(ok.clone()).unwrap();
        assert_eq!((a.lan_id, a.communication_net), (5, CommunicationNet::Lora));
        assert_eq!(AddNode::from_element(a.clone().into_element()).unwrap(), a);
        for (attr, bad) in [
            ("lan-id", "0"),
            ("lan-id", "256"),
            ("communication-net", "WIFI"),
        ] {
            let mut el = ok.clone();
            el.set_attr(attr, bad);
            assert!(AddNode::from_element(el).is_err(), "{attr}={bad}");
        }
        let mut el = ok;
        el.remove_attr("registration-code");
        assert!(AddNode::from_element(el).is_err());
    }
}
