//! The LAN side's protocols: `lan-execution` (to a node) and `lan-answer` (from it), and how
//! an answer's error number reads as a stanza error.

use lithos_core::binary::lan::{LanFrame, TraceId};
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Payload};

/// The actuator namespace (`lan-execution`).
pub const NS_ACTUATOR: &str = lithos_tuxp_execution::NS;
/// The thing namespace (`lan-answer`, `lan-notification`).
pub const NS_THING: &str = lithos_tuxp_notification::NS;

/// An execution for a LAN node, with the gateway's trace id (LAN 0, a request).
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS_ACTUATOR, name = "lan-execution")]
pub struct LanExecution {
    /// The gateway's id for this request; the node's answer carries it back.
    #[payload(attr)]
    pub trace_id: TraceId,
    /// The action (`<flash repeat="3"/>`).
    #[payload(element)]
    pub action: Element,
}

/// A node's answer: a response, or an error with its number.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS_THING, name = "lan-answer")]
pub struct LanAnswer {
    /// The request's trace id with the answer's kind bits.
    #[payload(attr)]
    pub trace_id: TraceId,
    /// For an error, its number (mud's `int8_t`, or an HTTP-like code).
    #[payload(attr)]
    pub error_number: Option<i32>,
}

/// The stanza error condition of a node's error number, as Lithosphere's
/// `StandardErrorCodeMapping` reads them (HTTP-like codes); anything else is
/// `undefined-condition`.
pub fn condition_of(error_number: i32) -> DefinedCondition {
    use DefinedCondition::*;
    match error_number {
        302 => Redirect,
        400 => BadRequest,
        401 => NotAuthorized,
        // RFC 3920's payment-required, gone from RFC 6120: the nearest auth error.
        402 => NotAuthorized,
        403 => Forbidden,
        404 => ItemNotFound,
        405 => NotAllowed,
        406 => NotAcceptable,
        407 => RegistrationRequired,
        409 => Conflict,
        500 => InternalServerError,
        501 => FeatureNotImplemented,
        503 => ServiceUnavailable,
        504 => RemoteServerTimeout,
        _ => UndefinedCondition,
    }
}

/// The stanza error for a node's error number, its text naming the number (mud's own
/// numbers are model-specific).
pub fn error_of(error_number: i32) -> StanzaError {
    StanzaError::explained(
        condition_of(error_number),
        format!("the LAN node answered error {error_number}"),
    )
}

/// A payload as the LAN frame the radio carries ([`LanFrame::of`]).
pub fn to_frame<P: Payload>(p: P) -> Result<LanFrame, lithos_core::binary::BxmppError> {
    LanFrame::of(p)
}

/// A LAN frame read as `P`, if it is one ([`LanFrame::read`]).
pub fn from_frame<P: Payload>(frame: &[u8]) -> Option<P> {
    LanFrame::from_bytes(frame.to_vec()).read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::binary::lan::TraceKind;
    // The light's table (F7 01: flash, repeat), for the execution's action.
    use lithos_things_demo as _;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// The reference's worked examples (d) and (e), byte for byte.
    #[test]
    fn frames_of_the_reference() {
        let trace = TraceId::new(
            0,
            TraceKind::Request,
            (11 * 3600 + 23 * 60 + 52) * 1000 + 997,
        );
        let exec = LanExecution {
            trace_id: trace,
            action: Element::builder("flash", "urn:leps:things:simple-light")
                .attr("repeat", "3")
                .build(),
        };
        let want = hex("FF F8 04 05 01 01 06 FB 00 0B 17 D3 E5 FE F7 01 00 01 00 01 FC 33 FF");
        assert_eq!(to_frame(exec.clone()).unwrap().as_bytes(), want);
        assert_eq!(from_frame::<LanExecution>(&want), Some(exec.clone()));
        let answer = LanAnswer {
            trace_id: trace.answer(TraceKind::Response),
            error_number: None,
        };
        assert_eq!(
            to_frame(answer.clone()).unwrap().as_bytes(),
            hex("FF F8 02 07 01 00 06 FB 00 4B 17 D3 E5 FF")
        );
        assert_eq!(
            from_frame::<LanAnswer>(&hex("FF F8 02 07 01 00 06 FB 00 4B 17 D3 E5 FF")),
            Some(answer)
        );
        let error = LanAnswer {
            trace_id: trace.answer(TraceKind::Error),
            error_number: Some(503),
        };
        let back = from_frame::<LanAnswer>(to_frame(error.clone()).unwrap().as_bytes());
        assert_eq!(back, Some(error));
        assert_eq!(exec.trace_id.lan_id(), 0);
    }

    #[test]
    fn error_numbers_read_as_conditions() {
        assert_eq!(condition_of(503), DefinedCondition::ServiceUnavailable);
        assert_eq!(condition_of(404), DefinedCondition::ItemNotFound);
        assert_eq!(condition_of(-3), DefinedCondition::UndefinedCondition);
        assert!(error_of(-3).text.unwrap().1.contains("-3"));
    }
}
