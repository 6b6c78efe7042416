//! # lithos-tuxp-friends
//!
//! Friends and follow (Lithosphere reference §3.8), `urn:leps:tacp:friends`: an account (a
//! person, or another thing such as a gateway that reacts to a light switch) asks to follow
//! one event of a thing; an operator approves it with `approve-follow`
//! (`lithos-tuxp-operator`); from then on the thing's notifications of that event reach the
//! follower as they reach the owner (`lithos-tuxp-notification`), and the follower may
//! subscribe to the thing's live reports (`lithos-tuxp-report`).
//!
//! ```xml
//! <iq type="set" id="f1" to="example.com">
//!   <follow xmlns="urn:leps:tacp:friends" friend="sl-01-0a1b2c3d@example.com"
//!           event="{urn:leps:things:simple-light}switch-state-changed"/>
//! </iq>
//! <!-- answer: the same element with approved="false" until an operator approves -->
//! ```
//!
//! Events are written `{namespace}name`. `canceled="true"` withdraws the request or ends the
//! follow. The follower is the sender's bare JID, with one exception: a gateway asks for
//! its nodes. With `follower-lan-id="5"` the follower is its node 5
//! (`<gateway>@<domain>/5`), and the friend must be another node behind the same gateway
//! (`friend="<gateway>@<domain>/3"`): approved, the gateway passes the event from node 3 to
//! node 5 on its LAN (`lithos-tuxp-concentrator`'s `<lan-follows/>`). A friend may be any
//! LAN node (`<gateway>@<domain>/<lan-id>`): its own model and owner count, not the gateway's.

#![forbid(unsafe_code)]

use lithos_core::{Jid, Payload};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::FriendsExt;

/// The namespace.
pub const NS: &str = "urn:leps:tacp:friends";

/// BXMPP table (Lithos's `F0 15`: Lithosphere has no table for this namespace).
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-friends.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

/// `{ns}name`.
fn event_name(v: &str) -> bool {
    v.starts_with('{') && v.contains('}')
}

/// `<follow/>`: a request (or, in the answer, its state).
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "follow")]
pub struct Follow {
    /// The thing followed (its bare JID).
    #[payload(attr)]
    pub friend: Jid,
    /// The event, `{ns}name`.
    #[payload(attr, check = event_name)]
    pub event: String,
    /// Withdraw or end the follow.
    #[payload(attr, default, skip_default)]
    pub canceled: bool,
    /// In the answer: whether an operator approved it.
    #[payload(attr)]
    pub approved: Option<bool>,
    /// From a gateway: the follower is its node with this LAN id (`<gateway>/<lan-id>`),
    /// and `friend` another node behind it (`<gateway>/<lan-id>`); the gateway passes the
    /// event between them on its LAN.
    #[payload(attr, check = lan_id_ok)]
    pub follower_lan_id: Option<u8>,
}

fn lan_id_ok(id: &u8) -> bool {
    *id >= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let f = Follow {
            friend: Jid::new("sl-01-0a1b2c3d@example.com").unwrap(),
            event: "{urn:leps:things:simple-light}switch-state-changed".into(),
            canceled: false,
            approved: Some(false),
            follower_lan_id: None,
        };
        assert_eq!(Follow::from_element(f.clone().into_element()).unwrap(), f);
        let node = Follow {
            friend: Jid::new("lgw-01-0a1b2c3e@example.com/3").unwrap(),
            follower_lan_id: Some(5),
            ..f.clone()
        };
        assert_eq!(
            Follow::from_element(node.clone().into_element()).unwrap(),
            node
        );
        assert_eq!(Follow::from_element(f.clone().into_element()).unwrap(), f);
        for bad in [
            r#"<follow xmlns="urn:leps:tacp:friends" event="{x}y"/>"#,
            r#"<follow xmlns="urn:leps:tacp:friends" friend="a@b"/>"#,
            r#"<follow xmlns="urn:leps:tacp:friends" friend="a@b" event="y"/>"#,
            r#"<follow xmlns="urn:leps:tacp:friends" friend="a@b" event="{x}y" canceled="yes"/>"#,
        ] {
            assert!(
                Follow::from_element(lithos_core::Element::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
