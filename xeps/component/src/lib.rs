//! # lithos-component
//!
//! XEP-0114 (Jabber Component Protocol): an external program, given a domain and a shared
//! secret, connects to the server, proves it knows the secret and then sends and receives
//! the stanzas of that domain: a gateway to another network, a bot farm, a bridge.
//!
//! The exchange, on its own listener (`[components]` in the server's configuration):
//!
//! 1. The component opens a stream in the `jabber:component:accept` namespace, `to` its
//!    domain; the server answers with a header `from` that domain and a fresh stream `id`.
//! 2. The component sends `<handshake>` holding the lowercase hex SHA-1 of the stream id
//!    followed by the secret ([`digest`]); the server answers an empty `<handshake/>`, or a
//!    `not-authorized` stream error.
//! 3. Stanzas flow both ways in `jabber:component:accept`; every stanza the component
//!    sends carries `from` (an address of its domain) and `to`.
//!
//! This crate holds the element and the proof; the server's kernel runs the listener,
//! because a component's stream is a stream of its own, as a client's is.
//!
//! ```
//! use lithos_component::{digest, verify};
//! // XEP-0114's example: stream id 3BF96D32, secret "sometext".
//! let proof = digest("3BF96D32", "sometext");
//! assert!(verify("3BF96D32", "sometext", &proof.to_uppercase()));
//! assert!(!verify("3BF96D32", "othertext", &proof));
//! ```

use lithos_core::Payload;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// The content namespace of component streams.
pub const NS_ACCEPT: &str = "jabber:component:accept";

lithos_core::extension! {}

/// `<handshake/>`: from the component, the proof ([`digest`]); from the server, empty, to
/// say the component is in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS_ACCEPT, name = "handshake")]
pub struct Handshake {
    /// The proof (empty in the server's answer).
    #[payload(text)]
    pub digest: String,
}

/// The proof a component sends: the lowercase hex SHA-1 of the stream id followed by the
/// shared secret.
pub fn digest(stream_id: &str, secret: &str) -> String {
    let mut h = Sha1::new();
    h.update(stream_id.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `offered` proves knowledge of `secret` on the stream `stream_id` (hex in either
/// case, surrounding white space ignored; compared in constant time).
pub fn verify(stream_id: &str, secret: &str, offered: &str) -> bool {
    let want = digest(stream_id, secret);
    let offered = offered.trim().to_ascii_lowercase();
    offered.len() == want.len() && bool::from(offered.as_bytes().ct_eq(want.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Element;

    #[test]
    fn the_proof_is_the_hex_sha1_of_id_and_secret() {
        // sha1("3BF96D32sometext"), computed independently.
        assert_eq!(
            digest("3BF96D32", "sometext"),
            "99d2642e709180aa6d63d12dd69fd2f539fe01f9"
        );
        assert_eq!(digest("", "").len(), 40);
        assert_eq!(digest("", ""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert!(verify("id", "s", &format!("  {}\n", digest("id", "s"))));
        assert!(!verify("id", "s", ""));
        assert!(!verify("id", "s", &digest("id", "s")[..39]));
        assert!(!verify("id2", "s", &digest("id", "s")));
    }

    #[test]
    fn handshakes_parse_and_write() {
        let h = Handshake::from_element(
            Element::parse("<handshake xmlns='jabber:component:accept'>abc</handshake>").unwrap(),
        )
        .unwrap();
        assert_eq!(h.digest, "abc");
        let empty = Handshake::default().into_element();
        assert_eq!(
            empty.to_xml(),
            r#"<handshake xmlns="jabber:component:accept"/>"#
        );
    }
}
