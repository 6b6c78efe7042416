//! # lithos-tuxp-lora-dac
//!
//! LoRa-DAC, dynamic address configuration (Lithosphere reference §3.6),
//! `urn:leps:tuxp:lora-dac`: how a new LoRa node gets its LAN address from a gateway, over
//! the radio only (the server never sees these frames). This crate holds the protocol's
//! payloads, addresses and frames, byte-compatible with mud; the gateway's DAC service and
//! the node's state machine build on it.
//!
//! ## The exchange
//!
//! 1. The node, at [`DAC_CLIENT`], sends [`Introduction`] to the gateway's service at
//!    [`DAC_SERVICE`]: its thing id, its own address, and its registration code as text.
//! 2. The gateway answers [`Allocation`]: the uplink channel range and address it listens on,
//!    and the node's [`allocated_address`] (`00 <lan-id> 17`).
//! 3. The node stores it and answers [`Allocated`] (its thing id as text); the gateway adds
//!    the node to the server (`add-node`, `lithos-tuxp-concentrator`).
//! 4. The gateway sends [`Configured`], a bare 5-byte frame `FF F8 03 09 FF`; the node moves
//!    to its allocated address: it is a thing now.
//!
//! After a reboot in the allocated state, the node asks [`IsConfigured`]; the gateway answers
//! [`Configured`] or [`NotConfigured`] (the node then starts over).
//!
//! Frames are LAN frames (`lithos_core::binary::lan::LanFrame`): at most 64 bytes on the air,
//! attribute values at most 16 bytes and text at most 32 in mud.

#![forbid(unsafe_code)]

use lithos_core::Payload;
use lithos_core::binary::lan::{LoraAddress, RawBytes};

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:lora-dac";

/// BXMPP table: Lithosphere's `F8 03` codes.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-lora-dac.props");

lithos_core::extension! { table: BXMPP_TABLE }

/// The gateway's DAC service: `EF EF 1F` (channel 31).
pub const DAC_SERVICE: LoraAddress = LoraAddress::new(0xEF, 0xEF, 0x1F);
/// A new node's address while it asks for one: `EF EE 1F`.
pub const DAC_CLIENT: LoraAddress = LoraAddress::new(0xEF, 0xEE, 0x1F);
/// The channel things use once configured: `0x17` (23).
pub const THING_CHANNEL: u8 = 0x17;

/// The address a node with LAN id `lan_id` is given: `00 <lan-id> 17`.
pub const fn allocated_address(lan_id: u8) -> LoraAddress {
    LoraAddress::new(0x00, lan_id, THING_CHANNEL)
}

/// Most bytes mud puts in an attribute value.
pub const MAX_ATTRIBUTE: usize = 16;
/// Most bytes of text mud puts in a protocol.
pub const MAX_TEXT: usize = 32;

fn thing_id_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_ATTRIBUTE
}

fn text_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_TEXT
}

fn three_bytes(v: &RawBytes) -> bool {
    v.0.len() == 3
}

fn two_bytes(v: &RawBytes) -> bool {
    v.0.len() == 2
}

/// 1: the node introduces itself to the gateway's DAC service.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "introduction")]
pub struct Introduction {
    /// The node's thing id.
    #[payload(attr, check = thing_id_ok)]
    pub thing_id: String,
    /// Its address now (the DAC client address, three bytes).
    #[payload(attr, check = three_bytes)]
    pub address: RawBytes,
    /// Its registration code (the key an operator authorized it with).
    #[payload(text, check = text_ok)]
    pub registration_code: String,
}

/// 2: the gateway allocates the node an address.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "allocation")]
pub struct Allocation {
    /// The first channel the node may send uplink frames on.
    #[payload(attr)]
    pub uplink_channel_begin: u8,
    /// The last one.
    #[payload(attr)]
    pub uplink_channel_end: u8,
    /// The gateway's uplink address (two bytes; the channel is picked in the range).
    #[payload(attr, check = two_bytes)]
    pub uplink_address: RawBytes,
    /// The node's address from now on (three bytes).
    #[payload(attr, check = three_bytes)]
    pub allocated_address: RawBytes,
}

/// 3: the node took the allocation.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "allocated")]
pub struct Allocated {
    /// The node's thing id.
    #[payload(text, check = text_ok)]
    pub thing_id: String,
}

/// 4: the gateway confirms; the node moves to its allocated address. Bare: `FF F8 03 09 FF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "configured")]
pub struct Configured;

/// After a reboot: is the node still configured?
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "is-configured")]
pub struct IsConfigured {
    /// The node's address now (the DAC client address).
    #[payload(attr, check = three_bytes)]
    pub address: RawBytes,
    /// The node's thing id.
    #[payload(text, check = text_ok)]
    pub thing_id: String,
}

/// No: the node starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "not-configured")]
pub struct NotConfigured;

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::binary::lan::LanFrame;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn bytes<P: Payload>(p: P) -> Vec<u8> {
        LanFrame::of(p).unwrap().as_bytes().to_vec()
    }

    fn read<P: Payload>(b: &[u8]) -> P {
        LanFrame::from_bytes(b.to_vec()).read().unwrap()
    }

    /// The frames the reference's oracle (`tools/bxmpp_oracle.py`) writes, byte for byte,
    /// and read back.
    #[test]
    fn frames_match_the_oracle() {
        let intro = Introduction {
            thing_id: "HLT-12345678".into(),
            address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
            registration_code: "ABCDEF123456".into(),
        };
        let want = hex(
            "FF F8 03 00 02 80 01 48 4C 54 2D 31 32 33 34 35 36 37 38 FE 02 FB EF EE 1F FE \
             41 42 43 44 45 46 31 32 33 34 35 36 FF",
        );
        assert_eq!(bytes(intro.clone()), want);
        assert_eq!(read::<Introduction>(&want), intro);

        let alloc = Allocation {
            uplink_channel_begin: 23,
            uplink_channel_end: 25,
            uplink_address: RawBytes(vec![0xEF, 0xEF]),
            allocated_address: RawBytes(allocated_address(5).to_bytes().to_vec()),
        };
        let want =
            hex("FF F8 03 03 04 00 04 32 33 FE 05 32 35 FE 06 FB EF EF FE 07 FB 00 05 17 FF");
        assert_eq!(bytes(alloc.clone()), want);
        assert_eq!(read::<Allocation>(&want), alloc);

        let allocated = Allocated {
            thing_id: "HLT-12345678".into(),
        };
        let want = hex("FF F8 03 08 00 80 48 4C 54 2D 31 32 33 34 35 36 37 38 FF");
        assert_eq!(bytes(allocated.clone()), want);
        assert_eq!(read::<Allocated>(&want), allocated);

        assert_eq!(bytes(Configured), hex("FF F8 03 09 FF"));
        assert_eq!(bytes(NotConfigured), hex("FF F8 03 0B FF"));
        let is = IsConfigured {
            address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
            thing_id: "HLT-12345678".into(),
        };
        let want =
            hex("FF F8 03 0A 01 80 02 FB EF EE 1F FE 48 4C 54 2D 31 32 33 34 35 36 37 38 FF");
        assert_eq!(bytes(is.clone()), want);
        assert_eq!(read::<IsConfigured>(&want), is);
    }

    /// A whole registration as Lithosphere's LoRa tutorial sizes it: four frames, each the
    /// oracle's byte for byte. The tutorial (§2.6.2) says "a 13-byte thing id and a 12-byte
    /// registration code, 4 exchanges, 94 bytes" and publishes no frames; its own gateway
    /// code makes 12-byte ids (`HLT-` and 8 characters). Under the reference's rules, which
    /// match mud's vectors, the thing id is in two of the four frames and nothing else
    /// varies with a two-digit channel range: a 13-byte id gives 90 bytes, and the tutorial's
    /// 94 is the total for a 15-byte id, both checked here against the oracle.
    #[test]
    fn a_registration_in_four_frames() {
        a_registration_of("HLT-123456789", 90);
        a_registration_of("HLT-12345678901", 94);
    }

    fn a_registration_of(id: &str, total: usize) {
        let frames = [
            bytes(Introduction {
                thing_id: id.into(),
                address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
                registration_code: "ABCDEF123456".into(),
            }),
            bytes(Allocation {
                uplink_channel_begin: 23,
                uplink_channel_end: 25,
                uplink_address: RawBytes(vec![0xEF, 0xEF]),
                allocated_address: RawBytes(allocated_address(5).to_bytes().to_vec()),
            }),
            bytes(Allocated {
                thing_id: id.into(),
            }),
            bytes(Configured),
        ];
        // bxmpp_oracle.py, for these four documents: the id's bytes where the oracle has
        // "<id>".
        let id_hex: Vec<String> = id.bytes().map(|b| format!("{b:02X}")).collect();
        let id_hex = id_hex.join(" ");
        let oracle = [
            "FF F8 03 00 02 80 01 <id> FE 02 FB EF EE 1F FE \
             41 42 43 44 45 46 31 32 33 34 35 36 FF",
            "FF F8 03 03 04 00 04 32 33 FE 05 32 35 FE 06 FB EF EF FE 07 FB 00 05 17 FF",
            "FF F8 03 08 00 80 <id> FF",
            "FF F8 03 09 FF",
        ];
        for (f, o) in frames.iter().zip(oracle) {
            assert_eq!(*f, hex(&o.replace("<id>", &id_hex)), "{id}");
        }
        assert_eq!(frames.iter().map(Vec::len).sum::<usize>(), total, "{id}");
    }

    /// With mud's largest values (16-byte thing ids, 32-byte texts), every frame fits the
    /// radio's 64 bytes.
    #[test]
    fn frames_fit_the_radio() {
        let id = "ABCDEFGHIJKLMNOP".to_string();
        let text = "0123456789ABCDEF0123456789ABCDEF".to_string();
        let frames = [
            bytes(Introduction {
                thing_id: id.clone(),
                address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
                registration_code: text.clone(),
            }),
            bytes(Allocation {
                uplink_channel_begin: 200,
                uplink_channel_end: 255,
                uplink_address: RawBytes(vec![0xFF, 0xFF]),
                allocated_address: RawBytes(vec![0xFF, 0xFF, 0xFF]),
            }),
            bytes(Allocated {
                thing_id: text.clone(),
            }),
            bytes(IsConfigured {
                address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
                thing_id: text,
            }),
        ];
        for f in frames {
            assert!(f.len() <= 64, "{} bytes: {f:02X?}", f.len());
        }
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let el = Introduction {
            thing_id: "HLT-12345678".into(),
            address: RawBytes(vec![0xEF, 0xEE]),
            registration_code: "X".into(),
        }
        .into_element();
        assert!(
            Introduction::from_element(el).is_err(),
            "a two-byte address"
        );
        let el = Allocated {
            thing_id: "A".repeat(33),
        }
        .into_element();
        assert!(
            Allocated::from_element(el).is_err(),
            "text past mud's 32 bytes"
        );
        assert_eq!(allocated_address(7), LoraAddress::new(0, 7, 0x17));
    }
}
