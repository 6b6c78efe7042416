//! `urn:leps:things:simple-temperature-reporter`: degrees Celsius.

use lithos_core::{Element, Payload, PayloadError};

/// The namespace (spelled right; one Lithosphere table spells it "temprature").
pub const NS: &str = "urn:leps:things:simple-temperature-reporter";

/// BXMPP table (`F7 03`).
pub const BXMPP_TABLE: &str = "\
0xf70x03=urn:leps:things:simple-temperature-reporter
0x00=celsius-degree
0x01=value
";

lithos_core::inventory::submit! {
    lithos_core::binary::TableRegistration { name: "lithos-things-demo/temperature", properties: BXMPP_TABLE }
}

/// `<celsius-degree value="23.5"/>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CelsiusDegree {
    /// Degrees Celsius.
    pub value: f32,
}

impl Payload for CelsiusDegree {
    const NS: &'static str = NS;
    const NAME: &'static str = "celsius-degree";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let v = el.attr("value").ok_or(PayloadError::MissingAttribute {
            element: "celsius-degree",
            attribute: "value",
        })?;
        let value = v
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| PayloadError::InvalidAttribute {
                element: "celsius-degree",
                attribute: "value",
                value: v.to_string(),
            })?;
        Ok(CelsiusDegree { value })
    }
    fn into_element(self) -> Element {
        Element::builder(Self::NAME, Self::NS)
            .attr("value", self.value.to_string())
            .build()
    }
}
