//! The LAN side's protocols, each from its protocol's crate: `lan-execution` (to a node),
//! `lan-answer` (both ways), `lan-notification` and `lan-report` (from a node); and how an
//! error number reads as a stanza error, and a stanza error as a number.

use lithos_core::Payload;
use lithos_core::binary::lan::LanFrame;
use lithos_core::stanza::{DefinedCondition, StanzaError};

pub use lithos_tuxp_execution::LanExecution;
pub use lithos_tuxp_notification::{LanAnswer, LanNotification};
pub use lithos_tuxp_report::LanReport;

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

/// The number a stanza error travels as on the LAN (the inverse of [`condition_of`]; a
/// condition without a number of its own is 500).
pub fn number_of(condition: DefinedCondition) -> i32 {
    use DefinedCondition::*;
    match condition {
        Redirect => 302,
        BadRequest => 400,
        NotAuthorized => 401,
        Forbidden => 403,
        ItemNotFound => 404,
        NotAllowed => 405,
        NotAcceptable => 406,
        RegistrationRequired => 407,
        Conflict => 409,
        FeatureNotImplemented => 501,
        ServiceUnavailable => 503,
        RemoteServerTimeout => 504,
        _ => 500,
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
    use lithos_core::Element;
    use lithos_core::binary::lan::{TraceId, TraceKind};
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

    /// A node's notification and report and the gateway's acknowledgement, as the
    /// reference's oracle (`tools/bxmpp_oracle.py`) writes them.
    #[test]
    fn uplink_frames_match_the_oracle() {
        let trace = TraceId::from_bytes([0x05, 0x0B, 0x17, 0xD3, 0xE5]).unwrap();
        let event = Element::builder("switch-state-changed", "urn:leps:things:simple-light")
            .attr("previous", "0")
            .attr("current", "2")
            .build();
        let n = LanNotification {
            trace_id: trace,
            ack_required: true,
            event: event.clone(),
        };
        let want = hex(
            "FF F8 02 05 02 01 06 FB 05 0B 17 D3 E5 FE 01 02 FE F7 01 04 02 00 05 FC 30 FE 06 FC 32 FF",
        );
        assert_eq!(to_frame(n.clone()).unwrap().as_bytes(), want);
        assert_eq!(from_frame::<LanNotification>(&want), Some(n));
        let r = LanReport {
            trace_id: trace,
            ack_required: false,
            data: event,
        };
        let want =
            hex("FF F8 0A 05 01 01 06 FB 05 0B 17 D3 E5 FE F7 01 04 02 00 05 FC 30 FE 06 FC 32 FF");
        assert_eq!(to_frame(r.clone()).unwrap().as_bytes(), want);
        assert_eq!(from_frame::<LanReport>(&want), Some(r));
        assert_eq!(
            to_frame(LanAnswer::response(&trace)).unwrap().as_bytes(),
            hex("FF F8 02 07 01 00 06 FB 05 4B 17 D3 E5 FF")
        );
        assert_eq!(
            from_frame::<LanAnswer>(to_frame(LanAnswer::error(&trace, 403)).unwrap().as_bytes()),
            Some(LanAnswer::error(&trace, 403))
        );
    }

    #[test]
    fn conditions_travel_as_numbers() {
        for n in [
            302, 400, 401, 403, 404, 405, 406, 407, 409, 500, 501, 503, 504,
        ] {
            assert_eq!(number_of(condition_of(n)), n);
        }
        assert_eq!(number_of(DefinedCondition::PolicyViolation), 500);
    }

    #[test]
    fn error_numbers_read_as_conditions() {
        assert_eq!(condition_of(503), DefinedCondition::ServiceUnavailable);
        assert_eq!(condition_of(404), DefinedCondition::ItemNotFound);
        assert_eq!(condition_of(-3), DefinedCondition::UndefinedCondition);
        assert!(error_of(-3).text.unwrap().1.contains("-3"));
    }
}
