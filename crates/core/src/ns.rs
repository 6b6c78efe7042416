//! Namespace names used by the core protocol.
//!
//! Each constant is a [`ByteString`] backed by static memory, so cloning one costs nothing.
//! [`intern`] maps a parsed namespace onto the matching constant, so the thousands of stanzas a
//! server parses share these instead of each holding a copy.

use bytestring::ByteString;

/// The client stream namespace (RFC 6120).
pub const JABBER_CLIENT: ByteString = ByteString::from_static("jabber:client");
/// The server-to-server stream namespace (RFC 6120).
pub const JABBER_SERVER: ByteString = ByteString::from_static("jabber:server");
/// The component namespace (XEP-0114).
pub const JABBER_COMPONENT_ACCEPT: ByteString = ByteString::from_static("jabber:component:accept");
/// The stream namespace (`stream:` prefix).
pub const STREAMS: ByteString = ByteString::from_static("http://etherx.jabber.org/streams");
/// The namespace the `xml:` prefix is bound to.
pub const XML: ByteString = ByteString::from_static("http://www.w3.org/XML/1998/namespace");
/// Stream error conditions.
pub const XMPP_STREAMS: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-streams");
/// Stanza error conditions.
pub const XMPP_STANZAS: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-stanzas");
/// STARTTLS negotiation.
pub const XMPP_TLS: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-tls");
/// SASL negotiation.
pub const XMPP_SASL: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-sasl");
/// Resource binding.
pub const XMPP_BIND: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-bind");
/// Legacy session establishment (RFC 3921).
pub const XMPP_SESSION: ByteString = ByteString::from_static("urn:ietf:params:xml:ns:xmpp-session");
/// Delayed delivery (XEP-0203).
pub const DELAY: ByteString = ByteString::from_static("urn:xmpp:delay");
/// Ping (XEP-0199).
pub const PING: ByteString = ByteString::from_static("urn:xmpp:ping");
/// Roster (RFC 6121).
pub const ROSTER: ByteString = ByteString::from_static("jabber:iq:roster");
/// Service discovery, info (XEP-0030).
pub const DISCO_INFO: ByteString = ByteString::from_static("http://jabber.org/protocol/disco#info");
/// Service discovery, items (XEP-0030).
pub const DISCO_ITEMS: ByteString =
    ByteString::from_static("http://jabber.org/protocol/disco#items");
/// Entity capabilities (XEP-0115).
pub const CAPS: ByteString = ByteString::from_static("http://jabber.org/protocol/caps");
/// Multi-user chat (XEP-0045), user namespace.
pub const MUC_USER: ByteString = ByteString::from_static("http://jabber.org/protocol/muc#user");

static WELL_KNOWN: [ByteString; 18] = [
    JABBER_CLIENT,
    JABBER_SERVER,
    JABBER_COMPONENT_ACCEPT,
    STREAMS,
    XML,
    XMPP_STREAMS,
    XMPP_STANZAS,
    XMPP_TLS,
    XMPP_SASL,
    XMPP_BIND,
    XMPP_SESSION,
    DELAY,
    PING,
    ROSTER,
    DISCO_INFO,
    DISCO_ITEMS,
    CAPS,
    MUC_USER,
];

/// Returns the static constant equal to `s` if there is one, else `None`.
///
/// ```
/// # use lithos_core::ns;
/// assert!(ns::intern("jabber:client").is_some());
/// assert!(ns::intern("urn:example:private").is_none());
/// ```
pub fn intern(s: &str) -> Option<ByteString> {
    intern_bytes(s.as_bytes())
}

/// [`intern`] on bytes.
pub fn intern_bytes(s: &[u8]) -> Option<ByteString> {
    WELL_KNOWN
        .iter()
        .find(|n| n.len() == s.len() && n.as_bytes()[..] == *s)
        .cloned()
}
