//! # lithos-tuxp-lora-gateway
//!
//! A LoRa gateway's own actions (`urn:leps:lora-gateway`, Lithosphere reference §3.3 and §6),
//! executed on the gateway (`<gateway>@<domain>/0`) by its owner like any action:
//!
//! - `<change-working-mode working-mode="1"/>`: `0` ROUTER (route the nodes it has; new
//!   nodes get no address), `1` DAC (also give new nodes addresses by LoRa-DAC);
//! - `<reset-dac-service/>`: drop the introduction the DAC service is serving (a node that
//!   went silent halfway), so the next new node is served at once.
//!
//! ```
//! use lithos_core::Payload;
//! use lithos_tuxp_lora_gateway::{ChangeWorkingMode, WorkingMode};
//! let el = ChangeWorkingMode { working_mode: WorkingMode::Dac }.into_element();
//! assert_eq!(el.to_xml(), r#"<change-working-mode xmlns="urn:leps:lora-gateway" working-mode="1"/>"#);
//! ```

#![forbid(unsafe_code)]

use lithos_core::{AttrValue, Payload};

/// The namespace.
pub const NS: &str = "urn:leps:lora-gateway";

/// BXMPP table: Lithosphere's `F8 08` codes.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-lora-gateway.props");

lithos_core::extension! { table: BXMPP_TABLE }

/// What the gateway does with new nodes (the ordinal is Lithosphere's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AttrValue)]
pub enum WorkingMode {
    /// 0: only the nodes it has.
    #[payload(value = "0")]
    Router,
    /// 1: new nodes get addresses too.
    #[payload(value = "1")]
    Dac,
}

/// `<change-working-mode working-mode="…"/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "change-working-mode")]
pub struct ChangeWorkingMode {
    /// The mode from now on.
    #[payload(attr)]
    pub working_mode: WorkingMode,
}

/// `<reset-dac-service/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "reset-dac-service")]
pub struct ResetDacService;

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::binary::{Vocabulary, decode_document, encode_document};

    #[test]
    fn actions_travel_as_bxmpp() {
        let mut v = Vocabulary::empty();
        v.load("lora-gateway", BXMPP_TABLE).unwrap();
        for el in [
            ChangeWorkingMode {
                working_mode: WorkingMode::Router,
            }
            .into_element(),
            ResetDacService.into_element(),
        ] {
            let bytes = encode_document(&v, &el).unwrap();
            // Lithosphere's namespace code.
            assert_eq!(&bytes[1..3], &[0xF8, 0x08]);
            assert_eq!(decode_document(&v, bytes).unwrap(), el);
        }
        let el = lithos_core::Element::parse(
            r#"<change-working-mode xmlns="urn:leps:lora-gateway" working-mode="2"/>"#,
        )
        .unwrap();
        assert!(ChangeWorkingMode::from_element(el).is_err(), "no mode 2");
    }
}
