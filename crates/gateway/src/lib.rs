//! # lithos-gateway
//!
//! What a LoRa gateway does between XMPP and its LAN (Lithosphere reference §3.3, §6): an
//! execution for `gateway/<lan-id>` becomes a `lan-execution` frame carrying a fresh trace id
//! ([`lan::LanExecution`]), remembered with its deadline ([`traces::Traces`]); the node's
//! `lan-answer` ([`lan::LanAnswer`]) becomes the iq result, or the stanza error its error
//! number maps to ([`lan::condition_of`]); a deadline that passes first becomes
//! `remote-server-timeout`, and a late answer is dropped. [`router::LanRouter`] does this for
//! a gateway's thing runtime (`ThingRuntime::lan_nodes`) over any [`router::Link`]: a
//! simulated radio (`lithos-lora-sim`) in tests, a LoRa module in a gateway. The other way,
//! it forwards nodes' `lan-notification`s and `lan-report`s to the server, acknowledging a
//! node only once the server did and forwarding each trace id once ([`dedup`]); an event
//! another of its nodes follows it passes on over the LAN itself ([`follows`]).
//! [`dac::DacService`] gives new nodes their addresses (LoRa-DAC) and adds them to the
//! server (`add-node`). [`simulated::start`] runs the lot on a simulated radio network. The
//! node's side is `lithos-mud`.

#![forbid(unsafe_code)]

pub mod dac;
pub mod dedup;
pub mod follows;
pub mod lan;
pub mod router;
pub mod serial;
pub mod simulated;
pub mod traces;
