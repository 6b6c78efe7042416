//! # lithos-tuxp-location
//!
//! Location (Lithosphere reference §3.8), `urn:leps:tuxp:location`: which address commands
//! a thing, given its id.
//!
//! ```xml
//! <iq type="get" id="l1" to="example.com">
//!   <locate-things xmlns="urn:leps:tuxp:location"><thing-id>SL-01-0A1B2C3D</thing-id></locate-things>
//! </iq>
//! <iq type="result" id="l1" from="example.com">
//!   <locate-things xmlns="urn:leps:tuxp:location">
//!     <thing-location thing-id="SL-01-0A1B2C3D" location="sl-01-0a1b2c3d@example.com"/>
//!   </locate-things>
//! </iq>
//! ```
//!
//! A get (`bad-request` otherwise) naming at least one thing; each must be registered
//! (`item-not-found`) and the asker its owner or granted by it (`forbidden`). Lithosphere
//! answered the thing name without the domain; Lithos answers the bare JID, which is what an
//! execution is addressed to.

use lithos_core::Element;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::LocationExt;

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:location";

/// BXMPP table (Lithosphere's sectioned codes, `F8 07`, which its table filed under
/// `urn:leps:location`).
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-location.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

/// A request for the locations of `ids`.
pub fn request(ids: &[&str]) -> Element {
    let mut q = Element::bare("locate-things", NS);
    for id in ids {
        q.append_child(
            Element::builder("thing-id", NS)
                .text(id.to_string())
                .build(),
        );
    }
    q
}

/// The (thing id, location) pairs of an answer.
pub fn locations(answer: &Element) -> Vec<(String, String)> {
    answer
        .children()
        .filter(|c| c.is("thing-location", NS))
        .filter_map(|c| {
            Some((
                c.attr("thing-id")?.to_string(),
                c.attr("location")?.to_string(),
            ))
        })
        .collect()
}
