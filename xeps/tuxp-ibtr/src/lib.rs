//! # lithos-tuxp-ibtr
//!
//! In-band thing registration (Lithosphere reference §3.1), `urn:leps:tuxp:ibtr`. A thing
//! that an operator authorized (see `lithos-tuxp-operator`) connects to the things port,
//! and before SASL sends its id and registration key:
//!
//! ```xml
//! <iq type="set" id="r1">
//!   <thing-register xmlns="urn:leps:tuxp:ibtr">
//!     <unregistered-edge-thing><thing-id>SL-01-0A1B2C3D</thing-id><registration-key>ABCDEF123456</registration-key></unregistered-edge-thing>
//!   </thing-register>
//! </iq>
//! ```
//!
//! The result carries its name (the JID local part), credentials (a password for SCRAM,
//! stored by the server as salted keys only) and a 16-byte security key. The thing then
//! logs in as `<thing-name>@<domain>/0` like any account.
//!
//! The server checks, in Lithosphere's order: a set with one well-formed request
//! (`bad-request`), not registered yet (`conflict`), a valid id of a known model
//! (`not-acceptable`), and a pending authorization that is neither cancelled nor expired
//! (`not-authorized`). The operator who authorized it becomes its owner.

use base64::Engine;
use lithos_core::{Element, Payload, PayloadError};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{RegisterError, Registered, register_thing};

/// The namespace (also the stream feature's).
pub const NS: &str = "urn:leps:tuxp:ibtr";

/// BXMPP table. Lithosphere's tables cannot encode IBTR (one names another namespace, the
/// other `unregistered-thing` where the protocol says `unregistered-edge-thing`); this one
/// keeps the sectioned table's codes and adds the element names the protocol uses.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-ibtr.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A registration request or its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThingRegister {
    /// What the thing sends.
    Unregistered {
        /// Its id.
        thing_id: String,
        /// The registration key it holds.
        registration_key: String,
    },
    /// What the server answers.
    Registered {
        /// The JID local part to log in with.
        thing_name: String,
        /// The password to log in with.
        credentials: String,
        /// 16 bytes for the thing's own use (its LAN).
        security_key: Vec<u8>,
    },
}

fn text_child(
    el: &Element,
    name: &'static str,
    parent: &'static str,
) -> Result<String, PayloadError> {
    el.get_child(name, NS)
        .map(|c| c.text().trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or(PayloadError::MissingChild {
            element: parent,
            child: name,
        })
}

fn leaf(name: &'static str, text: impl Into<String>) -> Element {
    Element::builder(name, NS).text(text.into()).build()
}

impl Payload for ThingRegister {
    const NS: &'static str = NS;
    const NAME: &'static str = "thing-register";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let mut children = el.children();
        let (Some(inner), None) = (children.next(), children.next()) else {
            return Err(PayloadError::Invalid(
                "thing-register holds exactly one thing".into(),
            ));
        };
        if inner.is("unregistered-edge-thing", NS) {
            Ok(ThingRegister::Unregistered {
                thing_id: text_child(inner, "thing-id", "unregistered-edge-thing")?,
                registration_key: text_child(inner, "registration-key", "unregistered-edge-thing")?,
            })
        } else if inner.is("registered-edge-thing", NS) {
            let key = text_child(inner, "security-key", "registered-edge-thing")?;
            let b64 = key
                .strip_prefix("$B[")
                .and_then(|k| k.strip_suffix(']'))
                .ok_or_else(|| PayloadError::Invalid("security-key is not $B[base64]".into()))?;
            Ok(ThingRegister::Registered {
                thing_name: text_child(inner, "thing-name", "registered-edge-thing")?,
                credentials: text_child(inner, "credentials", "registered-edge-thing")?,
                security_key: B64
                    .decode(b64)
                    .map_err(|_| PayloadError::Invalid("security-key is not base64".into()))?,
            })
        } else {
            Err(PayloadError::Invalid(format!(
                "unexpected <{}/> in thing-register",
                inner.name()
            )))
        }
    }

    fn into_element(self) -> Element {
        let inner = match self {
            ThingRegister::Unregistered {
                thing_id,
                registration_key,
            } => Element::builder("unregistered-edge-thing", NS)
                .child(leaf("thing-id", thing_id))
                .child(leaf("registration-key", registration_key))
                .build(),
            ThingRegister::Registered {
                thing_name,
                credentials,
                security_key,
            } => Element::builder("registered-edge-thing", NS)
                .child(leaf("thing-name", thing_name))
                .child(leaf("credentials", credentials))
                .child(leaf(
                    "security-key",
                    format!("$B[{}]", B64.encode(security_key)),
                ))
                .build(),
        };
        Element::builder(Self::NAME, NS).child(inner).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_examples_read_and_write() {
        let req = Element::parse(
            r#"<thing-register xmlns="urn:leps:tuxp:ibtr"><unregistered-edge-thing><thing-id>HLG-3A7F19C2</thing-id><registration-key>ABCDEF123456</registration-key></unregistered-edge-thing></thing-register>"#,
        )
        .unwrap();
        let parsed = ThingRegister::from_element(req.clone()).unwrap();
        assert_eq!(
            parsed,
            ThingRegister::Unregistered {
                thing_id: "HLG-3A7F19C2".into(),
                registration_key: "ABCDEF123456".into()
            }
        );
        assert_eq!(parsed.into_element(), req);
        let res = ThingRegister::Registered {
            thing_name: "hlg-3a7f19c2".into(),
            credentials: "9F3A01BC".into(),
            security_key: (0u8..16).collect(),
        };
        let el = res.clone().into_element();
        assert!(
            el.to_xml()
                .contains("<security-key>$B[AAECAwQFBgcICQoLDA0ODw==]</security-key>")
        );
        assert_eq!(ThingRegister::from_element(el.clone()).unwrap(), res);

        let mut v = lithos_core::binary::Vocabulary::empty();
        v.load("ibtr", BXMPP_TABLE).unwrap();
        for e in [req, el] {
            let b = lithos_core::binary::encode_document(&v, &e).unwrap();
            assert_eq!(lithos_core::binary::decode_document(&v, b).unwrap(), e);
        }
    }

    #[test]
    fn malformed_requests() {
        for bad in [
            "<thing-register xmlns='urn:leps:tuxp:ibtr'/>",
            "<thing-register xmlns='urn:leps:tuxp:ibtr'><unregistered-edge-thing><thing-id>X</thing-id></unregistered-edge-thing></thing-register>",
            "<thing-register xmlns='urn:leps:tuxp:ibtr'><unregistered-edge-thing><registration-key>k</registration-key></unregistered-edge-thing></thing-register>",
            "<thing-register xmlns='urn:leps:tuxp:ibtr'><other/></thing-register>",
            "<thing-register xmlns='urn:leps:tuxp:ibtr'><registered-edge-thing><thing-name>a</thing-name><credentials>b</credentials><security-key>AAAA</security-key></registered-edge-thing></thing-register>",
        ] {
            let el = Element::parse(bad).unwrap();
            assert!(ThingRegister::from_element(el).is_err(), "{bad}");
        }
    }
}
