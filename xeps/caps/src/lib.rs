//! # lithos-caps
//!
//! XEP-0115 (Entity Capabilities, `http://jabber.org/protocol/caps`): a client's presence
//! carries `<c hash='sha-1' node='…' ver='…'/>`, the hash of what it supports, so that whoever
//! receives the presence can learn its features once per client version rather than ask
//! every client.
//!
//! This crate holds the verification string of §5.1 ([`verification_string`]), its hashes
//! ([`Algorithm`], [`ver_of`]), the check of §5.4 that a disco#info answer really hashes to
//! the `ver` it claims ([`verify`]), and, with the `server` feature, the `caps` module: it
//! reads the `<c/>` of every local client's broadcast presence, asks a client whose `ver`
//! it does not know for its disco#info (`node#ver`), verifies the answer and keeps it
//! ([`server::CapsCache`]), so that the personal eventing service (`lithos-pep`) knows who
//! asked for which `+notify`.

#![forbid(unsafe_code)]

use base64::Engine;
use lithos_core::{Element, Payload};
use lithos_xdata::Form;

/// The namespace of `<c/>`.
pub const NS: &str = "http://jabber.org/protocol/caps";
/// Service discovery information.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

// Its BXMPP codes (`F0 28`) are in the core tables: `<c/>` is a stream feature too, read
// before a peer knows what the other links.
lithos_core::extension! { server: [server::MODULE] }

#[cfg(feature = "server")]
pub mod server;

/// A hash function of the IANA registry that XEP-0115 §5.2 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `sha-1`, which every implementation supports.
    Sha1,
    /// `sha-256`.
    Sha256,
}

impl Algorithm {
    /// From the `hash` attribute (`None` for one this crate does not compute).
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "sha-1" => Some(Algorithm::Sha1),
            "sha-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// The registry's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha-1",
            Algorithm::Sha256 => "sha-256",
        }
    }

    /// The base64 of the hash of `s`.
    pub fn hash(self, s: &[u8]) -> String {
        use sha2::Digest;
        let digest = match self {
            Algorithm::Sha1 => sha1::Sha1::digest(s).to_vec(),
            Algorithm::Sha256 => sha2::Sha256::digest(s).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

/// A `<c/>` element: what an entity's presence says of its capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caps {
    /// The hash function (`None`: the legacy format of XEP-0115 before 1.5, or an unknown
    /// function; such a `ver` cannot be verified).
    pub hash: Option<Algorithm>,
    /// The software's URI.
    pub node: String,
    /// The verification string's hash.
    pub ver: String,
}

impl Caps {
    /// Reads `<c xmlns='http://jabber.org/protocol/caps'/>` (`None` without `node` or `ver`).
    pub fn from_element(c: &Element) -> Option<Caps> {
        if !c.is("c", NS) {
            return None;
        }
        Some(Caps {
            hash: c.attr("hash").and_then(Algorithm::parse),
            node: c.attr("node")?.to_string(),
            ver: c.attr("ver")?.to_string(),
        })
    }

    /// The `<c/>` child of a presence, if it has one that can be read.
    pub fn of_presence(presence: &Element) -> Option<Caps> {
        presence.get_child("c", NS).and_then(Caps::from_element)
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        Element::builder("c", NS)
            .opt_attr("hash", self.hash.map(Algorithm::as_str))
            .attr("node", self.node.clone())
            .attr("ver", self.ver.clone())
            .build()
    }

    /// The node to ask disco#info about (§6.2): `node#ver`.
    pub fn disco_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }
}

/// Why a disco#info answer does not match the `ver` it was asked for (§5.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a disco#info `<query/>`.
    #[error("not a disco#info query")]
    NotDiscoInfo,
    /// Two identities with the same category, type, language and name.
    #[error("an identity appears twice")]
    DuplicateIdentity,
    /// A feature listed twice.
    #[error("a feature appears twice")]
    DuplicateFeature,
    /// Two extended forms with the same `FORM_TYPE`.
    #[error("two forms have the same FORM_TYPE")]
    DuplicateForm,
    /// The hash of the answer differs from `ver`.
    #[error("the answer hashes to {computed}, not to the ver it was asked for")]
    Mismatch {
        /// What the answer hashes to.
        computed: String,
    },
}

/// What a disco#info answer says an entity supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    features: std::collections::BTreeSet<String>,
}

impl Features {
    /// The features of a disco#info `<query/>`.
    pub fn from_query(query: &Element) -> Features {
        Features {
            features: query
                .children()
                .filter(|c| c.is("feature", NS_DISCO_INFO))
                .filter_map(|c| c.attr("var").map(str::to_string))
                .collect(),
        }
    }

    /// Whether `var` is supported.
    pub fn has(&self, var: &str) -> bool {
        self.features.contains(var)
    }

    /// Whether the entity asked for notifications of `node` (XEP-0163 §4: `node+notify`).
    pub fn wants_notify(&self, node: &str) -> bool {
        // One allocation-free probe per candidate: `node` followed by `+notify`.
        self.features
            .range(node.to_string()..)
            .take_while(|f| f.starts_with(node))
            .any(|f| &f[node.len()..] == "+notify")
    }

    /// How many features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}

/// The verification string of XEP-0115 §5.1 for a disco#info `<query/>`, after checking
/// §5.4's rules on duplicates. Forms without a hidden `FORM_TYPE` are left out, as §5.4 says.
pub fn verification_string(query: &Element) -> Result<String, VerifyError> {
    if !query.is("query", NS_DISCO_INFO) {
        return Err(VerifyError::NotDiscoInfo);
    }
    let mut identities: Vec<String> = query
        .children()
        .filter(|c| c.is("identity", NS_DISCO_INFO))
        .map(|i| {
            let lang = i.lang().unwrap_or("");
            format!(
                "{}/{}/{}/{}",
                i.attr("category").unwrap_or(""),
                i.attr("type").unwrap_or(""),
                lang,
                i.attr("name").unwrap_or("")
            )
        })
        .collect();
    identities.sort();
    if identities.windows(2).any(|w| w[0] == w[1]) {
        return Err(VerifyError::DuplicateIdentity);
    }
    let mut features: Vec<&str> = query
        .children()
        .filter(|c| c.is("feature", NS_DISCO_INFO))
        .filter_map(|c| c.attr("var"))
        .collect();
    features.sort_unstable();
    if features.windows(2).any(|w| w[0] == w[1]) {
        return Err(VerifyError::DuplicateFeature);
    }
    let mut forms: Vec<(String, Form)> = query
        .children()
        .filter(|c| c.is("x", lithos_xdata::NS))
        .filter_map(|x| Form::from_element(x.clone()).ok())
        .filter_map(|f| {
            let ft = f.field("FORM_TYPE")?;
            let form_type = ft.first()?.to_string();
            (ft.type_.as_deref() == Some("hidden")).then_some((form_type, f.clone()))
        })
        .collect();
    forms.sort_by(|a, b| a.0.cmp(&b.0));
    if forms.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(VerifyError::DuplicateForm);
    }
    let mut s = String::new();
    for i in &identities {
        s.push_str(i);
        s.push('<');
    }
    for f in &features {
        s.push_str(f);
        s.push('<');
    }
    for (form_type, form) in &forms {
        s.push_str(form_type);
        s.push('<');
        let mut fields: Vec<_> = form
            .fields
            .iter()
            .filter(|f| f.var.as_deref() != Some("FORM_TYPE"))
            .collect();
        fields.sort_by(|a, b| a.var.cmp(&b.var));
        for field in fields {
            s.push_str(field.var.as_deref().unwrap_or(""));
            s.push('<');
            let mut values: Vec<&str> = field.values.iter().map(|v| v.text.as_str()).collect();
            values.sort_unstable();
            for v in values {
                s.push_str(v);
                s.push('<');
            }
        }
    }
    Ok(s)
}

/// The `ver` of a disco#info `<query/>` under `algorithm`.
pub fn ver_of(query: &Element, algorithm: Algorithm) -> Result<String, VerifyError> {
    Ok(algorithm.hash(verification_string(query)?.as_bytes()))
}

/// Checks that `query` is what `caps` describes and returns its features.
pub fn verify(caps: &Caps, query: &Element) -> Result<Features, VerifyError> {
    let algorithm = caps.hash.unwrap_or(Algorithm::Sha1);
    let computed = ver_of(query, algorithm)?;
    if computed != caps.ver {
        return Err(VerifyError::Mismatch { computed });
    }
    Ok(Features::from_query(query))
}

#[cfg(test)]
mod tests {
    use super::*;

    // XEP-0115 §5.2's simple example and §5.3's complex one.
    const SIMPLE: &str = "<query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>\
        <identity category='client' name='Exodus 0.9.1' type='pc'/>\
        <feature var='http://jabber.org/protocol/caps'/>\
        <feature var='http://jabber.org/protocol/disco#info'/>\
        <feature var='http://jabber.org/protocol/disco#items'/>\
        <feature var='http://jabber.org/protocol/muc'/></query>";

    const COMPLEX: &str = "<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\
        <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
        <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>\
        <feature var='http://jabber.org/protocol/caps'/>\
        <feature var='http://jabber.org/protocol/disco#info'/>\
        <feature var='http://jabber.org/protocol/disco#items'/>\
        <feature var='http://jabber.org/protocol/muc'/>\
        <x xmlns='jabber:x:data' type='result'>\
          <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
          <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>\
          <field var='os'><value>Mac</value></field>\
          <field var='os_version'><value>10.5.1</value></field>\
          <field var='software'><value>Psi</value></field>\
          <field var='software_version'><value>0.11</value></field>\
        </x></query>";

    #[test]
    fn the_xeps_examples_hash_to_their_ver() {
        let q = Element::parse(SIMPLE).unwrap();
        assert_eq!(
            verification_string(&q).unwrap(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
        );
        assert_eq!(
            ver_of(&q, Algorithm::Sha1).unwrap(),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
        let q = Element::parse(COMPLEX).unwrap();
        assert_eq!(
            ver_of(&q, Algorithm::Sha1).unwrap(),
            "q07IKJEyjvHSyhy//CH0CxmKi8w="
        );
    }

    #[test]
    fn verify_accepts_the_right_ver_and_refuses_others() {
        let q = Element::parse(SIMPLE).unwrap();
        let caps = Caps::from_element(
            &Element::parse("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>").unwrap(),
        )
        .unwrap();
        let f = verify(&caps, &q).unwrap();
        assert!(f.has("http://jabber.org/protocol/muc"));
        assert_eq!(f.len(), 4);
        let wrong = Caps {
            ver: "AAAA".into(),
            ..caps.clone()
        };
        assert!(matches!(
            verify(&wrong, &q),
            Err(VerifyError::Mismatch { .. })
        ));
        // Poisoning with a duplicate feature (§5.4 3.b) is refused before hashing.
        let dup = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <feature var='a'/><feature var='a'/></query>",
        )
        .unwrap();
        assert_eq!(verify(&caps, &dup), Err(VerifyError::DuplicateFeature));
        let dup = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='client' type='pc'/><identity category='client' type='pc'/></query>",
        )
        .unwrap();
        assert_eq!(verify(&caps, &dup), Err(VerifyError::DuplicateIdentity));
        assert_eq!(
            caps.disco_node(),
            "http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0="
        );
        assert_eq!(Caps::from_element(&caps.to_element()), Some(caps));
    }

    #[test]
    fn notify_features_are_found_by_node() {
        let q = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <feature var='urn:xmpp:avatar:metadata+notify'/>\
             <feature var='urn:xmpp:avatar:metadata:extra'/>\
             <feature var='urn:xmpp:avatar'/></query>",
        )
        .unwrap();
        let f = Features::from_query(&q);
        assert!(f.wants_notify("urn:xmpp:avatar:metadata"));
        assert!(!f.wants_notify("urn:xmpp:avatar"));
        assert!(!f.wants_notify("urn:xmpp:avatar:data"));
        assert!(!f.wants_notify("urn:xmpp"));
    }
}
