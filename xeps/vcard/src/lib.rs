//! # lithos-vcard
//!
//! XEP-0054 (vcard-temp): each account keeps one vCard on its server. The account sets it
//! (`<iq type="set"><vCard xmlns="vcard-temp">…</vCard></iq>`, no `to` or its own bare JID)
//! and anyone reads it with a get to the account's bare JID (or, for one's own, no `to`). An
//! account with no vCard answers an empty `<vCard/>`; a set for another account is
//! `forbidden`, one larger than `[modules.vcard] max_bytes` (default 131,072: room for a
//! photo) `not-acceptable`, and a get for an account that does not exist `item-not-found`.

use lithos_core::Element;

pub mod client;
mod server;
pub mod store;

/// The namespace.
pub const NS: &str = "vcard-temp";

// The table has code `F0 18` and the element names of the usual fields.
lithos_core::extension! { table_file: "vcard.props", server: [store::SCHEMA, server::MODULE] }

/// A `<vCard xmlns="vcard-temp"/>`: its fields as they are (vcard-temp defines many, and
/// clients add their own); the attributes old clients write (`version`, `prodid`) are
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "vCard", ignore_unknown_attrs)]
pub struct VCard {
    /// The fields (`<FN/>`, `<NICKNAME/>`, `<PHOTO/>`...).
    #[payload(element)]
    pub fields: Vec<Element>,
}

impl VCard {
    /// The text of the field `name` (such as `FN` or `NICKNAME`), if there is one.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|f| f.is(name, NS))
            .map(Element::text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    #[test]
    fn reads_fields_and_round_trips() {
        let el = Element::parse(
            "<vCard xmlns='vcard-temp' version='2.0'><FN>Peter Saint-Andre</FN>\
             <N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN></N><NICKNAME>stpeter</NICKNAME></vCard>",
        )
        .unwrap();
        let v = VCard::from_element(el).unwrap();
        assert_eq!(v.field("NICKNAME").as_deref(), Some("stpeter"));
        assert_eq!(v.fields.len(), 3);
        assert_eq!(VCard::from_element(v.clone().into_element()).unwrap(), v);
        assert!(
            VCard::from_element(Element::parse("<vCard xmlns='vcard-temp'>text</vCard>").unwrap())
                .is_err()
        );
    }
}
