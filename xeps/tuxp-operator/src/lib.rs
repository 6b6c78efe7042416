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

/// BXMPP tables: Lithosphere's sectioned operator codes (`F8 06`, which its table filed
/// under `urn:leps:operator`) plus `canceled`, and `F0 12` for grants.
pub const BXMPP_TABLE: &str = "\
0xf80x06=urn:leps:tuxp:operator
0x00=auth-thing
0x01=thing-id
0x02=cancel-id
0x03=confirm-concentration
0x04=concentrator-thing-id
0x05=node-thing-id
0x06=approve-follow
0x07=friend
0x08=event
0x09=follower
0x0a=canceled
0x0b=true
0x0c=false
0x0d=registration-key
[urn:lithos:tuxp:grant]
0xf00x12=urn:lithos:tuxp:grant
0x00=grant
0x01=revoke
0x02=thing-id
0x03=account
";

lithos_core::inventory::submit! {
    lithos_core::binary::TableRegistration { name: "lithos-tuxp-operator", properties: BXMPP_TABLE }
}

/// `<auth-thing thing-id="…" registration-key="…"? canceled="true"?/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthThing {
    /// The thing allowed to register.
    pub thing_id: String,
    /// The registration key the thing must present (printed on the device, or given to it
    /// when it was made).
    pub registration_key: Option<String>,
    /// Withdraw the authorization instead.
    pub canceled: bool,
}

impl Payload for AuthThing {
    const NS: &'static str = NS;
    const NAME: &'static str = "auth-thing";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let thing_id = el
            .attr("thing-id")
            .filter(|v| !v.is_empty())
            .ok_or(PayloadError::MissingAttribute {
                element: "auth-thing",
                attribute: "thing-id",
            })?
            .to_string();
        let canceled = canceled_attr(&el, "auth-thing")?;
        let registration_key = match el.attr("registration-key") {
            None => None,
            Some("") => {
                return Err(PayloadError::InvalidAttribute {
                    element: "auth-thing",
                    attribute: "registration-key",
                    value: String::new(),
                });
            }
            Some(k) => Some(k.to_string()),
        };
        Ok(AuthThing {
            thing_id,
            registration_key,
            canceled,
        })
    }
    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .attr("thing-id", self.thing_id)
            .opt_attr("registration-key", self.registration_key)
            .opt_attr("canceled", self.canceled.then_some("true"))
            .build()
    }
}

fn canceled_attr(el: &Element, element: &'static str) -> Result<bool, PayloadError> {
    match el.attr("canceled") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(PayloadError::InvalidAttribute {
            element,
            attribute: "canceled",
            value: v.to_string(),
        }),
    }
}

/// `<approve-follow friend="…" event="{ns}name" follower="…" canceled="true"?/>`: an
/// operator lets `follower` receive the `event` notifications of the thing `friend`
/// (reference §3.8), or (`canceled`) refuses or ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveFollow {
    /// The followed thing (its bare JID).
    pub friend: Jid,
    /// The event, `{ns}name`.
    pub event: String,
    /// Who follows (a bare JID).
    pub follower: Jid,
    /// Refuse or end the follow instead.
    pub canceled: bool,
}

impl Payload for ApproveFollow {
    const NS: &'static str = NS;
    const NAME: &'static str = "approve-follow";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let jid = |attribute: &'static str| -> Result<Jid, PayloadError> {
            let v = el.attr(attribute).ok_or(PayloadError::MissingAttribute {
                element: "approve-follow",
                attribute,
            })?;
            Jid::new(v).map_err(|_| PayloadError::InvalidAttribute {
                element: "approve-follow",
                attribute,
                value: v.to_string(),
            })
        };
        let event = el
            .attr("event")
            .filter(|e| e.starts_with('{') && e.contains('}'))
            .ok_or(PayloadError::MissingAttribute {
                element: "approve-follow",
                attribute: "event",
            })?
            .to_string();
        Ok(ApproveFollow {
            friend: jid("friend")?,
            follower: jid("follower")?,
            event,
            canceled: canceled_attr(&el, "approve-follow")?,
        })
    }
    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .attr("friend", self.friend.as_shared().clone())
            .attr("event", self.event)
            .attr("follower", self.follower.as_shared().clone())
            .opt_attr("canceled", self.canceled.then_some("true"))
            .build()
    }
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

/// Links this crate's registrations into the program.
#[inline(never)]
pub fn link() {
    #[cfg(feature = "server")]
    server::link();
    std::hint::black_box(BXMPP_TABLE);
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
