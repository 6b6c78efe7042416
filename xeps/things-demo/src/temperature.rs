//! `urn:leps:things:simple-temperature-reporter`: degrees Celsius.

use lithos_core::Payload;

/// The namespace (spelled right; one Lithosphere table spells it "temprature").
pub const NS: &str = "urn:leps:things:simple-temperature-reporter";

/// BXMPP table (`F7 03`).
pub const BXMPP_TABLE: &str = include_str!("../tables/things-demo-temperature.props");

fn finite(v: &f32) -> bool {
    v.is_finite()
}

/// `<celsius-degree value="23.5"/>`.
#[derive(Debug, Clone, Copy, PartialEq, Payload)]
#[payload(ns = NS, name = "celsius-degree")]
pub struct CelsiusDegree {
    /// Degrees Celsius.
    #[payload(attr, check = finite)]
    pub value: f32,
}
