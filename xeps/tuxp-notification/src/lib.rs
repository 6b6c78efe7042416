//! # lithos-tuxp-notification
//!
//! Notifications (Lithosphere reference §3.2), `urn:leps:tuxp:thing`: a thing tells of an
//! event its model declares.
//!
//! ```xml
//! <iq type="set" id="n1">
//!   <notification xmlns="urn:leps:tuxp:thing" ack-required="true">
//!     <switch-state-changed xmlns="urn:leps:things:simple-light" previous="0" current="2"/>
//!   </notification>
//! </iq>
//! ```
//!
//! The server checks it (a set, only `ack-required`, one event, from a registered thing
//! whose model declares the event), then delivers it to the thing's owner as a message from
//! the thing holding the same `<notification/>`: to the owner's available sessions, or, when
//! none is, into the offline store (delivered at the next login). With `ack-required` it
//! answers an empty result **after** that: an acknowledged notification has reached the
//! owner and followers, or is durably stored for them (Lithosphere answered before, and kept its
//! de-duplication in memory only).
//!
//! De-duplication is by the iq id per thing and node, in the database for a day, so a
//! thing that retransmits (the same iq, the same id) across a reconnect or a server restart
//! is delivered once. The thing side ([`NotifierExt::notify`]) retransmits as Lithosphere's
//! gateways do: doubling intervals from 200 ms, giving up after a configurable time.

#![forbid(unsafe_code)]

use lithos_core::binary::lan::{TraceId, TraceKind};
use lithos_core::payload::value::java_boolean;
use lithos_core::{Element, Payload};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{NotifierExt, NotifyError, Rex, notification_of};

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:thing";

/// BXMPP table: Lithosphere's `F8 02` codes.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-notification.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::SCHEMA, server::MODULE] }

/// A notification: one event.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "notification")]
pub struct Notification {
    /// Whether the thing wants an acknowledgement.
    #[payload(attr, with = java_boolean, default, skip_default)]
    pub ack_required: bool,
    /// The event (such as `<switch-state-changed/>`).
    #[payload(element)]
    pub event: Element,
}

/// A LAN node's event, sent to its gateway (reference §3.2, LAN form): the node's trace id
/// (its LAN id, a request) and, with `ack-required`, a `lan-answer` wanted back. The gateway
/// notifies on the node's behalf (`<gateway>/<lan-id>`).
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "lan-notification")]
pub struct LanNotification {
    /// The node's id for this event; also the gateway's de-duplication key.
    #[payload(attr)]
    pub trace_id: TraceId,
    /// Whether the node wants an acknowledgement.
    #[payload(attr, with = java_boolean, default, skip_default)]
    pub ack_required: bool,
    /// The event.
    #[payload(element)]
    pub event: Element,
}

/// An answer on the LAN (reference §3.3, §3.2): a node's to a `lan-execution`, or a
/// gateway's acknowledgement of a `lan-notification` or `lan-report`: the request's trace
/// id with the kind bits of a response or an error, and an error's number.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "lan-answer")]
pub struct LanAnswer {
    /// The request's trace id with the answer's kind bits.
    #[payload(attr)]
    pub trace_id: TraceId,
    /// For an error, its number (mud's `int8_t`, or an HTTP-like code).
    #[payload(attr)]
    pub error_number: Option<i32>,
}

impl LanAnswer {
    /// The response to `request`.
    pub fn response(request: &TraceId) -> LanAnswer {
        LanAnswer {
            trace_id: request.answer(TraceKind::Response),
            error_number: None,
        }
    }

    /// The error `number` answering `request`.
    pub fn error(request: &TraceId, number: i32) -> LanAnswer {
        LanAnswer {
            trace_id: request.answer(TraceKind::Error),
            error_number: Some(number),
        }
    }
}

/// `<reset-thing/>`: from a gateway to a LAN node, forget the address and start over
/// (LoRa-DAC). Bare on the radio: `FF F8 02 09 FF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Payload)]
#[payload(ns = NS, name = "reset-thing")]
pub struct ResetThing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example() {
        let el = Element::parse(
            r#"<notification xmlns="urn:leps:tuxp:thing" ack-required="true"><switch-state-changed xmlns="urn:leps:things:simple-light" previous="0" current="2"/></notification>"#,
        )
        .unwrap();
        let n = Notification::from_element(el.clone()).unwrap();
        assert!(n.ack_required);
        assert_eq!(n.event.attr("current"), Some("2"));
        assert_eq!(n.into_element(), el);
    }

    #[test]
    fn malformed_notifications() {
        for bad in [
            r#"<notification xmlns="urn:leps:tuxp:thing"/>"#,
            r#"<notification xmlns="urn:leps:tuxp:thing"><a xmlns="x"/><b xmlns="x"/></notification>"#,
            // §3.2: the only attribute allowed is ack-required.
            r#"<notification xmlns="urn:leps:tuxp:thing" qos="1"><a xmlns="x"/></notification>"#,
        ] {
            assert!(
                Notification::from_element(Element::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
