//! # lithos-tuxp-operator
//!
//! Who may bring a thing in and who may command it.
//!
//! - `urn:leps:tuxp:operator` (Lithosphere reference §3.0, §3.8): an operator authorizes a
//!   thing id to register, `<auth-thing thing-id="SL-01-0A1B2C3D"
//!   registration-key="…"/>`, for a limited time (300 s by default); `canceled="true"`
//!   withdraws it. The operator becomes the owner of the thing that registers with it.
//!   Lithos names its operators in the configuration (Lithosphere let any account
//!   authorize), makes cancellation work (Lithosphere's server ignored it), and checks the
//!   registration key the device presents against the one its operator gave
//!   (`registration-key`, a Lithos attribute: Lithosphere never checked the key, so anyone
//!   who knew a pending thing id could register as that thing).
//! - `urn:lithos:tuxp:grant` (a Lithos addition): the owner allows another account to
//!   command the thing, `<grant thing-id="…" account="bob@example.com"/>`, or withdraws it,
//!   `<revoke …/>`. Only the owner and the accounts it granted may execute actions on a thing.
//! - **Concentration** (reference §3.5): where the server requires it (`[modules.concentrator]
//!   confirmation = true`), a gateway's `add-node` waits until an operator confirms the node,
//!   `<confirm-concentration concentrator-thing-id="LGW-01-0A1B2C3E"
//!   node-thing-id="SL-01-0A1B2C41"/>` (the attribute names of Lithosphere's BXMPP table;
//!   the gateway's thing id or name). Operators see what waits in `<pending/>`.

use lithos_core::{Element, Jid, Payload, PayloadError};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::OperatorExt;

/// The operator namespace.
pub const NS: &str = "urn:leps:tuxp:operator";
/// The grants namespace.
pub const NS_GRANT: &str = "urn:lithos:tuxp:grant";

/// Lithos's operator queries: `<pending/>` (get, operators only) lists the authorizations
/// still waiting for their thing: `<authorization thing-id="…" authorizer="…"
/// authorized="…" expires="…" key="true"?/>` (XEP-0082 timestamps), the newest first.
pub const NS_PENDING: &str = "urn:lithos:tuxp:operator";

/// Pending authorizations one `<pending/>` lists at most.
pub const MAX_PENDING_LISTED: usize = 500;

/// BXMPP tables: Lithosphere's sectioned operator codes (`F8 06`, which its table filed
/// under `urn:leps:operator`) plus `canceled`, and `F0 12` for grants.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-operator.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

fn not_empty(v: &str) -> bool {
    !v.is_empty()
}

/// `{ns}name`.
fn event_name(v: &str) -> bool {
    v.starts_with('{') && v.contains('}')
}

/// `<auth-thing thing-id="…" registration-key="…"? canceled="true"?/>`.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "auth-thing")]
pub struct AuthThing {
    /// The thing allowed to register.
    #[payload(attr, check = not_empty)]
    pub thing_id: String,
    /// The registration key the thing must present (printed on the device, or given to it
    /// when it was made).
    #[payload(attr, check = not_empty)]
    pub registration_key: Option<String>,
    /// Withdraw the authorization instead.
    #[payload(attr, default, skip_default)]
    pub canceled: bool,
}

/// `<approve-follow friend="…" event="{ns}name" follower="…" canceled="true"?/>`: an
/// operator lets `follower` receive the `event` notifications of the thing `friend`
/// (reference §3.8), or (`canceled`) refuses or ends it.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "approve-follow")]
pub struct ApproveFollow {
    /// The followed thing (its bare JID; a LAN node as `<gateway>@<domain>/<lan-id>`).
    #[payload(attr)]
    pub friend: Jid,
    /// The event, `{ns}name`.
    #[payload(attr, check = event_name)]
    pub event: String,
    /// Who follows (a bare JID; a LAN node as `<gateway>@<domain>/<lan-id>`).
    #[payload(attr)]
    pub follower: Jid,
    /// Refuse or end the follow instead.
    #[payload(attr, default, skip_default)]
    pub canceled: bool,
}

/// `<confirm-concentration/>`: an operator lets a gateway add a node that waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "confirm-concentration")]
pub struct ConfirmConcentration {
    /// The gateway (its thing id, or its thing name).
    #[payload(attr, check = not_empty)]
    pub concentrator_thing_id: String,
    /// The node's thing id.
    #[payload(attr, check = not_empty)]
    pub node_thing_id: String,
}

/// In `<pending/>`'s answer: a node waiting for an operator's confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS_PENDING, name = "confirmation")]
pub struct PendingConfirmation {
    /// The gateway's thing name.
    #[payload(attr)]
    pub concentrator_thing_id: String,
    /// The node's thing id.
    #[payload(attr)]
    pub node_thing_id: String,
    /// The LAN id the gateway asks for.
    #[payload(attr)]
    pub lan_id: u8,
    /// Who authorized the node (its owner once added).
    #[payload(attr)]
    pub owner: String,
    /// When the wait ends.
    #[payload(attr = "expires", with = lithos_core::datetime)]
    pub expires_ms: i64,
}

/// `<grant/>` or `<revoke/>`: who else may command a thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The thing.
    pub thing_id: String,
    /// The account (a bare JID).
    pub account: Jid,
    /// `true` for `<revoke/>`.
    pub revoke: bool,
}

impl Grant {
    /// Reads a `<grant/>` or `<revoke/>`.
    pub fn from_element(el: &Element) -> Result<Grant, PayloadError> {
        let revoke = match (el.ns(), el.name()) {
            (NS_GRANT, "grant") => false,
            (NS_GRANT, "revoke") => true,
            _ => {
                return Err(PayloadError::Invalid(format!(
                    "expected <grant/> or <revoke/> in {NS_GRANT}"
                )));
            }
        };
        let attr = |a: &'static str| {
            el.attr(a)
                .filter(|v| !v.is_empty())
                .ok_or(PayloadError::MissingAttribute {
                    element: "grant",
                    attribute: a,
                })
        };
        let account = Jid::new(attr("account")?)
            .ok()
            .filter(|j| j.is_bare() && j.local().is_some())
            .ok_or_else(|| PayloadError::InvalidAttribute {
                element: "grant",
                attribute: "account",
                value: el.attr("account").unwrap_or_default().to_string(),
            })?;
        Ok(Grant {
            thing_id: attr("thing-id")?.to_string(),
            account,
            revoke,
        })
    }

    /// Writes it.
    pub fn into_element(self) -> Element {
        Element::builder(if self.revoke { "revoke" } else { "grant" }, NS_GRANT)
            .attr("thing-id", self.thing_id)
            .attr("account", self.account.to_string())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_and_write() {
        let a = Element::parse(
            r#"<auth-thing xmlns="urn:leps:tuxp:operator" thing-id="SL-01-0A1B2C3D"/>"#,
        )
        .unwrap();
        let p = AuthThing::from_element(a.clone()).unwrap();
        assert!(!p.canceled);
        assert_eq!(p.into_element(), a);
        let c = AuthThing {
            thing_id: "SL-01-0A1B2C3D".into(),
            registration_key: None,
            canceled: true,
        };
        let k = AuthThing {
            thing_id: "SL-01-0A1B2C3D".into(),
            registration_key: Some("HELLO-THING-KEY".into()),
            canceled: false,
        };
        assert_eq!(AuthThing::from_element(k.clone().into_element()), Ok(k));
        let empty = Element::parse(
            r#"<auth-thing xmlns="urn:leps:tuxp:operator" thing-id="SL-01-0A1B2C3D" registration-key=""/>"#,
        )
        .unwrap();
        assert!(AuthThing::from_element(empty).is_err());
        assert_eq!(AuthThing::from_element(c.clone().into_element()), Ok(c));
        assert!(AuthThing::from_element(Element::bare("auth-thing", NS)).is_err());
        let g = Grant {
            thing_id: "SL-01-0A1B2C3D".into(),
            account: Jid::new("bob@example.com").unwrap(),
            revoke: false,
        };
        assert_eq!(Grant::from_element(&g.clone().into_element()), Ok(g));
        let full = Element::parse(r#"<grant xmlns="urn:lithos:tuxp:grant" thing-id="x" account="bob@example.com/phone"/>"#).unwrap();
        assert!(
            Grant::from_element(&full).is_err(),
            "accounts are bare JIDs"
        );
        let mut v = lithos_core::binary::Vocabulary::empty();
        v.load("op", BXMPP_TABLE).unwrap();
        for e in [
            a,
            Grant::from_element(&full.clone())
                .map(|g| g.into_element())
                .unwrap_or(full),
        ] {
            let b = lithos_core::binary::encode_document(&v, &e).unwrap();
            assert_eq!(lithos_core::binary::decode_document(&v, b).unwrap(), e);
        }
    }
}
