//! `urn:leps:things:simple-light`: flash, turn on, turn off; the switch's state changes.

use lithos_core::{Element, Payload, PayloadError};

/// The namespace.
pub const NS: &str = "urn:leps:things:simple-light";

/// BXMPP table (Lithosphere's `ext_light.props`, `F7 01`).
pub const BXMPP_TABLE: &str = "\
0xf70x01=urn:leps:things:simple-light
0x00=flash
0x01=repeat
0x02=turn-on
0x03=turn-off
0x04=switch-state-changed
0x05=previous
0x06=current
";

lithos_core::inventory::submit! {
    lithos_core::binary::TableRegistration { name: "lithos-things-demo/light", properties: BXMPP_TABLE }
}

/// `<flash repeat="n"/>`: flash `repeat` times (at least once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flash {
    /// How many times; absent means once.
    pub repeat: u32,
}

impl Payload for Flash {
    const NS: &'static str = NS;
    const NAME: &'static str = "flash";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let repeat = match el.attr("repeat") {
            None => 1,
            Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                PayloadError::InvalidAttribute {
                    element: "flash",
                    attribute: "repeat",
                    value: v.to_string(),
                }
            })?,
        };
        Ok(Flash { repeat })
    }
    fn into_element(self) -> Element {
        Element::builder(Self::NAME, Self::NS)
            .attr("repeat", self.repeat.to_string())
            .build()
    }
}

/// `<turn-on/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnOn;

impl Payload for TurnOn {
    const NS: &'static str = NS;
    const NAME: &'static str = "turn-on";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        Ok(TurnOn)
    }
    fn into_element(self) -> Element {
        Element::bare(Self::NAME, Self::NS)
    }
}

/// `<turn-off/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnOff;

impl Payload for TurnOff {
    const NS: &'static str = NS;
    const NAME: &'static str = "turn-off";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        Ok(TurnOff)
    }
    fn into_element(self) -> Element {
        Element::bare(Self::NAME, Self::NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
