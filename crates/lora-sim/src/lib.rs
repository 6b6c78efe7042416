//! # lithos-lora-sim
//!
//! A simulated LoRa radio network, for the tests, examples and benchmarks of gateways and
//! nodes: no hardware, and the same run twice gives the same losses.
//!
//! It models what the LAN side of Lithosphere relies on (reference §6): radios such as the
//! AS32-TTL-100 in *fixed transmission* mode, each tuned to a three-byte [`Address`]
//! (address high, address low, channel, as `EF EE 1F`), where a sender names the receiver's
//! address and channel and the module carries the payload; a receiver gets the payload only
//! (no sender address: LAN frames carry their own ids). `FF FF` on a channel reaches every
//! radio on it. Payloads are at most [`MAX_FRAME`] bytes (mud's `MAX_SIZE_PROTOCOL_DATA`).
//!
//! The air has [`Conditions`]: a delay with jitter, an air data rate (a frame's time on air
//! adds to its delay), loss and duplication probabilities, and a duty-cycle limit (a radio
//! that used its share of air time waits before it sends again, as a regulated device
//! must). Every random decision comes from the network's seed and the frame's place in its
//! sender's sequence, so a test that sends the same frames sees the same fate for each.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use lithos_lora_sim::{Address, Conditions, RadioNetwork};
//! let net = RadioNetwork::new(7, Conditions::perfect());
//! let gateway = net.radio(Address::new(0xEF, 0xEF, 0x1F));
//! let mut node = net.radio(Address::new(0xEF, 0xEE, 0x1F));
//! gateway.send(Address::new(0xEF, 0xEE, 0x1F), &[0xFF, 0xF8, 0x03, 0x09, 0xFF]).await.unwrap();
//! assert_eq!(&node.recv().await.unwrap()[..], &[0xFF, 0xF8, 0x03, 0x09, 0xFF]);
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod air;
mod conditions;
mod network;
mod seed;

pub use conditions::{Conditions, DutyCycle};
/// A radio's address: address high and low bytes and channel (`lithos-core`'s LAN type).
pub use lithos_core::binary::lan::LoraAddress as Address;
pub use network::{Radio, RadioError, RadioNetwork, Stats};

/// The largest payload a radio carries, in bytes (mud's 64-byte protocol data).
pub const MAX_FRAME: usize = 64;

/// Frames waiting in a radio's receive buffer at most; more are lost (counted as overruns),
/// as a module's buffer overflows when its host does not read.
pub const RECEIVE_BUFFER: usize = 256;
