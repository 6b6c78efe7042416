//! # lithos-tuxp-execution
//!
//! Remote execution (Lithosphere reference §3.3), `urn:leps:tuxp:actuator`: a controller
//! sends an action to a thing's address and gets exactly one of **executed** (the result),
//! **error**, or **timeout**.
//!
//! ```xml
//! <iq type="set" id="exec1" to="sl-01-0a1b2c3d@example.com">
//!   <execution xmlns="urn:leps:tuxp:actuator" expires="2026-11-28T09:30:00.500Z">
//!     <flash xmlns="urn:leps:things:simple-light" repeat="3"/>
//!   </execution>
//! </iq>
//! ```
//!
//! The server checks, in Lithosphere's order: a set holding one action (`bad-request`), a
//! registered thing (`item-not-found`); then what Lithosphere lacked: the sender is the
//! thing's owner or granted by it (`forbidden`) and the execution has not expired
//! (`remote-server-timeout`); then the thing's model declares the action
//! (`service-unavailable`) and the thing is online (`recipient-unavailable`, at once: an
//! execution is never queued). Only then does it forward the execution to the thing
//! (`<thing>@<domain>/0`), whose answer comes back like any iq answer.
//!
//! **Expiry** (a Lithos addition): `expires` is the UTC time after which the action must
//! not run. The controller API sets it to the request's deadline; the server refuses to
//! forward an expired execution, and the thing runtime refuses to run one that arrives late
//! (`remote-server-timeout`). A command delayed by a stalled link therefore ends in timeout
//! for the controller and never runs on the thing: the lock that opens two minutes later
//! cannot happen. It assumes the controller's and the thing's clocks agree (NTP); a thing
//! without a clock should not set `max_skew` below its drift.

use lithos_core::payload::value::java_boolean;
use lithos_core::{Element, Payload};

#[cfg(feature = "client")]
mod controller;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "client")]
pub mod thing;

#[cfg(feature = "client")]
pub use controller::ControllerExt;

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:actuator";

/// BXMPP table: Lithosphere's `F8 04` codes, plus `expires`.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-execution.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }

/// An execution: one action, with how to carry it.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "execution")]
pub struct Execution {
    /// The action (an element of the thing's protocol, such as `<flash/>`).
    #[payload(element)]
    pub action: Element,
    /// Ask a gateway for an answer from the LAN node it relays to.
    #[payload(attr, with = java_boolean, default, skip_default)]
    pub lan_traceable: bool,
    /// How long a gateway waits for the LAN node, in milliseconds.
    #[payload(attr)]
    pub lan_timeout: Option<u32>,
    /// After this time (milliseconds since the Unix epoch, UTC) the action must not run.
    #[payload(attr = "expires", with = lithos_core::datetime)]
    pub expires_ms: Option<i64>,
}

impl Execution {
    /// An execution of `action`, without a deadline.
    pub fn new(action: Element) -> Execution {
        Execution {
            action,
            lan_traceable: false,
            lan_timeout: None,
            expires_ms: None,
        }
    }

    /// Whether it expired by `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|e| now_ms >= e)
    }
}

pub use lithos_tuxp_things::now_ms;

/// An execution as a gateway sends it to a LAN node (reference §3.3): the action with the
/// gateway's trace id (LAN 0, a request); the node's `lan-answer` carries it back. Flat, as
/// mud reads it: `FF F8 04 05 01 01 06 FB <trace id> FE <action> FF`.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "lan-execution")]
pub struct LanExecution {
    /// The gateway's id for this request.
    #[payload(attr)]
    pub trace_id: lithos_core::binary::lan::TraceId,
    /// The action (`<flash repeat="3"/>`).
    #[payload(element)]
    pub action: Element,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example_and_expiry() {
        let el = Element::parse(
            r#"<execution xmlns="urn:leps:tuxp:actuator" lan-traceable="true" lan-timeout="5000"><flash xmlns="urn:leps:things:simple-light" repeat="3"/></execution>"#,
        )
        .unwrap();
        let e = Execution::from_element(el.clone()).unwrap();
        assert!(e.lan_traceable);
        assert_eq!(e.lan_timeout, Some(5000));
        assert_eq!(e.action.attr("repeat"), Some("3"));
        assert_eq!(e.clone().into_element(), el);
        let mut d = e;
        d.expires_ms = Some(1_764_322_200_500);
        let back = Execution::from_element(d.clone().into_element()).unwrap();
        assert_eq!(back, d);
        assert!(!back.expired(1_764_322_200_499));
        assert!(back.expired(1_764_322_200_500));
    }

    #[test]
    fn malformed_executions() {
        for bad in [
            r#"<execution xmlns="urn:leps:tuxp:actuator"/>"#,
            r#"<execution xmlns="urn:leps:tuxp:actuator"><a xmlns="x"/><b xmlns="x"/></execution>"#,
            r#"<execution xmlns="urn:leps:tuxp:actuator" colour="red"><a xmlns="x"/></execution>"#,
            r#"<execution xmlns="urn:leps:tuxp:actuator" lan-timeout="soon"><a xmlns="x"/></execution>"#,
            r#"<execution xmlns="urn:leps:tuxp:actuator" expires="tomorrow"><a xmlns="x"/></execution>"#,
        ] {
            assert!(
                Execution::from_element(Element::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
