//! # lithos-webrtc-signaling
//!
//! WebRTC signaling (Lithosphere reference §3.7), `urn:leps:webrtc:signaling`: an account
//! and a thing (a webcam, say) exchange what WebRTC needs to connect them directly (offer,
//! answer, ICE candidates), and the server carries it only between an account and the
//! things it may command.
//!
//! ```xml
//! <iq type="set" id="s1" to="sc-01-0a1b2c3d@example.com">
//!   <signal xmlns="urn:leps:webrtc:signaling" id="offer">v=0&#10;o=- 4611 2 IN IP4 127.0.0.1&#10;…</signal>
//! </iq>
//! ```
//!
//! `id` is one of `open`, `opened`, `close`, `closed`, `offer`, `answer`,
//! `ice-candidate-found`, `error`; the text is the data (SDP for an offer or an answer, which
//! ends with a newline: one is added if it is missing, as Lithosphere did).
//!
//! The server (`signaling` module) relays a `set` (a `get` is `bad-request`; no `to` too),
//! with `from` the sender's session:
//!
//! - from an account to a thing (its bare JID means the thing's `/0`): the thing must exist
//!   (`item-not-found`) and, unlike Lithosphere, the account must be its owner or granted
//!   by it (`forbidden`: seeing through a camera is commanding it);
//! - from a thing to an account's full JID: the account must exist (`item-not-found`) and be
//!   the thing's owner or granted (`forbidden`);
//! - the peer must be online (`recipient-unavailable`); anything else (account to account,
//!   thing to thing, a component) is `not-allowed` or `item-not-found` as in Lithosphere.
//!
//! The peer answers the iq (a result, or an error) and the answer comes back by the usual
//! routing. [`SignalingExt`] sends, [`incoming`] receives.

#![forbid(unsafe_code)]

use lithos_core::{AttrValue, Payload};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{Incoming, SignalingExt, incoming};

/// The namespace.
pub const NS: &str = "urn:leps:webrtc:signaling";

/// BXMPP table: Lithosphere's `F8 09` codes (`signal`, `id`, `data`), then the kinds.
pub const BXMPP_TABLE: &str = include_str!("../tables/webrtc-signaling.props");

#[cfg(feature = "server")]
lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }
#[cfg(not(feature = "server"))]
lithos_core::extension! { table: BXMPP_TABLE }

/// What a signal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AttrValue)]
pub enum SignalKind {
    /// The watcher asks for a session.
    #[payload(value = "open")]
    Open,
    /// The thing agrees.
    #[payload(value = "opened")]
    Opened,
    /// Either side ends it.
    #[payload(value = "close")]
    Close,
    /// The other side took the end.
    #[payload(value = "closed")]
    Closed,
    /// An SDP offer.
    #[payload(value = "offer")]
    Offer,
    /// An SDP answer.
    #[payload(value = "answer")]
    Answer,
    /// An ICE candidate (`candidate:…`).
    #[payload(value = "ice-candidate-found")]
    IceCandidateFound,
    /// Something failed; the text says what.
    #[payload(value = "error")]
    Error,
}

/// `<signal id="…">data</signal>`.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "signal")]
pub struct Signal {
    /// What it says.
    #[payload(attr = "id")]
    pub kind: SignalKind,
    /// Its data (an SDP, a candidate, a reason), possibly empty.
    #[payload(text, default)]
    pub data: String,
}

impl Signal {
    /// A signal, with Lithosphere's newline rule applied ([`Signal::normalized`]).
    pub fn new(kind: SignalKind, data: impl Into<String>) -> Signal {
        Signal {
            kind,
            data: data.into(),
        }
        .normalized()
    }

    /// An offer's or answer's SDP ends with a newline: one is added when missing.
    pub fn normalized(mut self) -> Signal {
        if matches!(self.kind, SignalKind::Offer | SignalKind::Answer)
            && !self.data.is_empty()
            && !self.data.ends_with('\n')
        {
            self.data.push('\n');
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Element;
    use lithos_core::binary::{Vocabulary, decode_document, encode_document};

    #[test]
    fn reads_writes_and_normalizes() {
        let el = Element::parse(
            r#"<signal xmlns="urn:leps:webrtc:signaling" id="offer">v=0&#13;&#10;s=-</signal>"#,
        )
        .unwrap();
        let s = Signal::from_element(el).unwrap();
        assert_eq!(s.kind, SignalKind::Offer);
        assert_eq!(s.clone().normalized().data, "v=0\r\ns=-\n");
        assert_eq!(Signal::new(SignalKind::Answer, "x\n").data, "x\n");
        assert_eq!(
            Signal::new(SignalKind::IceCandidateFound, "candidate:1").data,
            "candidate:1",
            "only SDPs"
        );
        let open = Signal::new(SignalKind::Open, "");
        assert_eq!(
            open.clone().into_element().to_xml(),
            r#"<signal xmlns="urn:leps:webrtc:signaling" id="open"/>"#
        );
        let bad =
            Element::parse(r#"<signal xmlns="urn:leps:webrtc:signaling" id="hello"/>"#).unwrap();
        assert!(Signal::from_element(bad).is_err());
    }

    #[test]
    fn travels_as_bxmpp_in_lithospheres_codes() {
        let mut v = Vocabulary::empty();
        v.load("webrtc-signaling", BXMPP_TABLE).unwrap();
        let el = Signal::new(SignalKind::Offer, "v=0").into_element();
        let bytes = encode_document(&v, &el).unwrap();
        assert_eq!(&bytes[1..4], &[0xF8, 0x09, 0x00], "signal");
        assert_eq!(decode_document(&v, bytes).unwrap(), el);
    }
}
