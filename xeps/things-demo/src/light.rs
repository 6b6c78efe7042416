//! `urn:leps:things:simple-light`: flash, turn on, turn off; the switch's state changes.

use lithos_core::Payload;

/// The namespace.
pub const NS: &str = "urn:leps:things:simple-light";

/// BXMPP table (Lithosphere's `ext_light.props`, `F7 01`).
pub const BXMPP_TABLE: &str = include_str!("../tables/things-demo-light.props");

fn at_least_once(n: &u32) -> bool {
    *n >= 1
}

/// `<flash repeat="n"/>`: flash `repeat` times (at least once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "flash")]
pub struct Flash {
    /// How many times; absent means once.
    #[payload(attr, default = 1, check = at_least_once)]
    pub repeat: u32,
}

/// `<turn-on/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "turn-on")]
pub struct TurnOn;

/// `<turn-off/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "turn-off")]
pub struct TurnOff;

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Element;

    #[test]
    fn flash_repeat_is_checked() {
        let f =
            Element::parse(r#"<flash xmlns="urn:leps:things:simple-light" repeat="3"/>"#).unwrap();
        assert_eq!(Flash::from_element(f), Ok(Flash { repeat: 3 }));
        let once = Element::bare("flash", NS);
        assert_eq!(Flash::from_element(once), Ok(Flash { repeat: 1 }));
        for bad in ["0", "-1", "x"] {
            let f = Element::builder("flash", NS).attr("repeat", bad).build();
            assert!(Flash::from_element(f).is_err(), "{bad}");
        }
    }
}
