//! # lithos-tuxp-edge
//!
//! The edge built-ins (`urn:leps:edge`, Lithosphere reference §3.3): every edge thing
//! executes `<stop/>` (end the thing program) and `<shutdown-system/>` (with `<restart/>`:
//! reboot). They arrive inside an execution like any action; a thing answers *before* it
//! acts, since it is about to go away.
//!
//! ```
//! use lithos_core::Payload;
//! use lithos_tuxp_edge::ShutdownSystem;
//! let el = ShutdownSystem { restart: true }.into_element();
//! assert_eq!(el.to_xml(), "<shutdown-system xmlns=\"urn:leps:edge\"><restart/></shutdown-system>");
//! assert_eq!(ShutdownSystem::from_element(el), Ok(ShutdownSystem { restart: true }));
//! ```

use lithos_core::Payload;
use lithos_tuxp_things::Protocol;

/// The namespace.
pub const NS: &str = "urn:leps:edge";

/// The built-in actions, for model descriptors of edge things.
pub const ACTIONS: &[Protocol] = &[
    Protocol::new(NS, "stop"),
    Protocol::new(NS, "shutdown-system"),
];

/// BXMPP table: Lithosphere's `F8 01` codes, plus `shutdown-system` (the element's real
/// name; Lithosphere's table lists `shutdown`, so it could not encode the action).
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-edge.props");

lithos_core::extension! { table: BXMPP_TABLE }

/// `<stop/>`: end the thing program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "stop")]
pub struct Stop;

/// `<shutdown-system/>`: shut the device down, or reboot it with `restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "shutdown-system")]
pub struct ShutdownSystem {
    /// Reboot rather than power off.
    #[payload(flag = "restart")]
    pub restart: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Element;
    use lithos_core::binary::{Vocabulary, decode_document, encode_document};

    #[test]
    fn both_actions_travel_as_bxmpp() {
        let mut v = Vocabulary::empty();
        v.load("edge", BXMPP_TABLE).unwrap();
        for el in [
            Stop.into_element(),
            ShutdownSystem { restart: false }.into_element(),
            ShutdownSystem { restart: true }.into_element(),
        ] {
            let b = encode_document(&v, &el).unwrap();
            assert_eq!(decode_document(&v, b).unwrap(), el);
        }
        assert!(Stop::from_element(Element::bare("stop", "urn:other")).is_err());
    }
}
