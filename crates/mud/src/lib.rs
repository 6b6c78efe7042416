//! # lithos-mud
//!
//! A LoRa node's side of Lithosphere's LAN (reference §6, mud's role), in Rust: what a
//! simulated node in a test, an example or a benchmark runs, and the model a firmware
//! follows. Over any [`Air`] (a simulated radio, `lithos-lora-sim`; a LoRa module):
//!
//! - **LoRa-DAC** until configured (reference §3.6; [`NodeBuilder::start`]): introduction to
//!   the gateway's DAC service from `EF EE 1F`, allocation, allocated, configured; the node
//!   then moves to its allocated address. The allocation is kept ([`NodeBuilder::state_file`]):
//!   a node restarted *allocated* asks `is-configured`, one restarted *configured* goes on.
//! - **Executions**: a `lan-execution` runs the action's handler ([`NodeBuilder::on_action`])
//!   and is answered with a `lan-answer` on the uplink (a response, or the handler's error
//!   number); a bare action runs with no answer, as mud does.
//! - **Notifications and reports** ([`Node::notify`], [`Node::report`]): a `lan-notification`
//!   or `lan-report` with the node's own trace id; with `ack-required`, sent again after
//!   200 ms, then doubling intervals, until the gateway's `lan-answer` arrives or the
//!   retransmission gives up ([`Rex`]). Frames are at most 64 bytes; a larger one is refused
//!   before it is sent.
//! - **Followed events** ([`NodeBuilder::on_event`]): another node's event this one follows,
//!   passed on by the gateway as a `lan-notification` from LAN id 0; handled once (copies
//!   by trace id), acknowledged, refused past the deadline its trace id carries.
//! - **Reset**: a `reset-thing` from the gateway (its owner's `reset-node`) puts the node back
//!   to its initial state and stops it ([`Node::reset`]).
//!
//! Unlike mud, the acknowledged forms work (mud writes `ack-required` wrongly, reference
//! §3.2), and trace ids are unique per node even within one millisecond.

#![forbid(unsafe_code)]

pub mod air;
pub mod node;
pub mod state;

pub use air::Air;
pub use node::{LanError, Node, NodeBuilder, Rex};
pub use state::{Allocation, State};
