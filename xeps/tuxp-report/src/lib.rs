//! # lithos-tuxp-report
//!
//! Sensor reports (Lithosphere reference §3.4), `urn:leps:tuxp:sensor`, with the three
//! delivery guarantees of MQTT: a thing sends data, the server stores it (the latest value per
//! node and data type, and a history kept for a configured time), and the thing's owner (or
//! an account it granted) queries it or follows it live.
//!
//! ## Wire form
//!
//! A report is an iq set from the thing to its own account, holding one data element its
//! model declares:
//!
//! ```xml
//! <iq type="set" id="r9">
//!   <report xmlns="urn:leps:tuxp:sensor" qos="1">
//!     <celsius-degree xmlns="urn:leps:things:simple-temperature-reporter" value="23.5"/>
//!   </report>
//! </iq>
//! ```
//!
//! - **QoS 0** (at most once): no answer, as in Lithosphere (an answer would cost the radio
//!   link what QoS 0 saves). Stored like the others; a thing that sends faster than the
//!   disk takes reports is slowed down by TCP back-pressure rather than dropped.
//! - **QoS 1** (at least once): the empty result comes once the report is **durably stored**
//!   (group commit: many reports share one `fsync`). The thing re-sends until it sees it, so
//!   the history may hold a report twice, never zero times once acknowledged.
//! - **QoS 2** (exactly once), which Lithosphere rejected: a two-phase exchange shaped like
//!   the `urn:xmpp:qos` protoXEP's assured delivery, on a `report-id` the thing chooses
//!   (unique per thing while the history keeps it):
//!   1. `<report qos="2" report-id="R">data</report>`: the server stores it **pending**
//!      (not yet visible) and answers `<received xmlns="urn:leps:tuxp:sensor"
//!      report-id="R"/>`. A repeated report with the same id is answered the same way and
//!      stored once.
//!   2. `<deliver xmlns="urn:leps:tuxp:sensor" report-id="R"/>` (the element Lithosphere's
//!      table already names): the server moves the report into the history in one
//!      transaction and answers an empty result. Every repeated deliver is answered; only
//!      the first one delivers.
//!
//!   Both steps survive server crashes (they are acknowledged after commit), and the history
//!   remembers delivered ids, so a report re-sent after its delivery is not stored again.
//!
//! A gateway reports for its LAN node `n` with `from="<gateway>@<domain>/n"` (the
//! reference's rule: same bare JID, sent by the edge resource `0`).
//!
//! ## Owner side
//!
//! Iqs to the thing's bare JID, from its owner or an account it granted:
//! `<latest/>` (get: the newest value of every node and data type), `<history/>` (get: a
//! time range, oldest first, paged with [XEP-0059](lithos_rsm)), and `<subscribe/>` /
//! `<unsubscribe/>` (set: live reports arrive as messages from the reporting JID holding a
//! `<report/>` with its `stamp`).

#![forbid(unsafe_code)]

use lithos_core::{AttrValue, Element, Payload, PayloadError};
use lithos_rsm::ResultSet;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
mod tail;

#[cfg(feature = "client")]
pub use client::{ReportError, ReporterExt, ReportsExt, Retry, live_report};

/// The namespace.
pub const NS: &str = "urn:leps:tuxp:sensor";

/// BXMPP table: Lithosphere's `F8 0A` codes, then Lithos's additions (QoS 2, queries).
/// Lithosphere devices write the new names as literals, which decode the same.
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-report.props");

lithos_core::extension! { table: BXMPP_TABLE, server: [store::SCHEMA, server::MODULE] }

/// A delivery guarantee (the ordinals are Lithosphere's and MQTT's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AttrValue)]
pub enum Qos {
    /// 0: fire and forget.
    #[payload(value = "0")]
    AtMostOnce,
    /// 1: acknowledged once stored; may be stored twice.
    #[payload(value = "1")]
    AtLeastOnce,
    /// 2: stored exactly once (two phases).
    #[payload(value = "2")]
    ExactlyOnce,
}

impl Qos {
    /// The wire ordinal.
    pub fn ordinal(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }

    /// From the wire ordinal.
    pub fn from_ordinal(n: u8) -> Option<Qos> {
        match n {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
}

/// A report id: 1 to 64 bytes.
fn report_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64
}

/// A report: one data element, with its guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "report", validate = Report::validate)]
pub struct Report {
    /// The guarantee (`qos`, 0 when absent, as in Lithosphere).
    #[payload(attr, default = Qos::AtMostOnce)]
    pub qos: Qos,
    /// The thing's id for a QoS 2 report.
    #[payload(attr = "report-id", check = report_id_ok)]
    pub report_id: Option<String>,
    /// When the server stored it (set on live reports to subscribers).
    #[payload(attr = "stamp", with = lithos_core::datetime)]
    pub stamp_ms: Option<i64>,
    /// The data (such as `<celsius-degree value="23.5"/>`).
    #[payload(element)]
    pub data: Element,
}

impl Report {
    /// A report of `data` at `qos`.
    pub fn new(data: Element, qos: Qos) -> Report {
        Report {
            qos,
            report_id: None,
            stamp_ms: None,
            data,
        }
    }

    fn validate(&self) -> Result<(), PayloadError> {
        if self.qos == Qos::ExactlyOnce && self.report_id.is_none() {
            return Err(PayloadError::Invalid(
                "a QoS 2 report needs a report-id".into(),
            ));
        }
        Ok(())
    }
}

/// A LAN node's data, sent to its gateway (reference §3.4, LAN form): the node's trace id
/// and, with `ack-required`, a `lan-answer` wanted back. The gateway reports on the node's
/// behalf (`<gateway>/<lan-id>`) at the QoS it gives the data's type.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "lan-report")]
pub struct LanReport {
    /// The node's id for this report; also the gateway's de-duplication key.
    #[payload(attr)]
    pub trace_id: lithos_core::binary::lan::TraceId,
    /// Whether the node wants an acknowledgement.
    #[payload(attr, with = lithos_core::payload::value::java_boolean, default, skip_default)]
    pub ack_required: bool,
    /// The data.
    #[payload(element)]
    pub data: Element,
}

/// QoS 2, phase 1 answer: the report is stored, pending its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "received")]
pub struct Received {
    /// The report's id.
    #[payload(attr = "report-id", check = report_id_ok)]
    pub report_id: String,
}

/// QoS 2, phase 2: release the pending report.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "deliver")]
pub struct Deliver {
    /// The report's id.
    #[payload(attr = "report-id", check = report_id_ok)]
    pub report_id: String,
}

/// A stored report, in query answers.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "item")]
pub struct Item {
    /// Its position in the history (for paging).
    #[payload(attr)]
    pub id: i64,
    /// The node that reported: `0` for the thing itself, a LAN id behind a gateway.
    #[payload(attr)]
    pub node: String,
    /// When the server stored it.
    #[payload(attr = "stamp", with = lithos_core::datetime)]
    pub stamp_ms: i64,
    /// The data.
    #[payload(element)]
    pub data: Element,
}

/// `<latest/>`: the newest value of every node and data type (the request is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "latest")]
pub struct Latest {
    /// Only this node's (a LAN id behind a gateway; its owner may ask with it).
    #[payload(attr)]
    pub node: Option<String>,
    /// In the answer: one item per node and data type.
    #[payload(child)]
    pub items: Vec<Item>,
}

/// `<history/>`: the reports stored in `[start, end)`, oldest first, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "history")]
pub struct History {
    /// Only this node's reports.
    #[payload(attr)]
    pub node: Option<String>,
    /// From this time on (inclusive).
    #[payload(attr = "start", with = lithos_core::datetime)]
    pub start_ms: Option<i64>,
    /// Up to this time (exclusive).
    #[payload(attr = "end", with = lithos_core::datetime)]
    pub end_ms: Option<i64>,
    /// In the answer: the page.
    #[payload(child)]
    pub items: Vec<Item>,
    /// The page asked for, or where the answer's page sits.
    #[payload(child)]
    pub set: Option<ResultSet>,
}

pub use lithos_tuxp_things::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Element {
        Element::parse(s).unwrap()
    }

    #[test]
    fn reference_example() {
        // §3.4: `qos` is always written; absent means 0.
        let el = parse(
            r#"<report xmlns="urn:leps:tuxp:sensor" qos="0"><celsius-degree xmlns="urn:leps:things:simple-temperature-reporter" value="23.5"/></report>"#,
        );
        let r = Report::from_element(el.clone()).unwrap();
        assert_eq!(r.qos, Qos::AtMostOnce);
        assert_eq!(r.data.attr("value"), Some("23.5"));
        assert_eq!(r.into_element(), el);
        let bare = parse(r#"<report xmlns="urn:leps:tuxp:sensor"><d xmlns="x"/></report>"#);
        assert_eq!(Report::from_element(bare).unwrap().qos, Qos::AtMostOnce);
    }

    #[test]
    fn qos2_round_trip() {
        let mut r = Report::new(Element::bare("d", "x"), Qos::ExactlyOnce);
        r.report_id = Some("a-1".into());
        r.stamp_ms = Some(1_764_322_200_500);
        assert_eq!(Report::from_element(r.clone().into_element()).unwrap(), r);
        let rc = Received {
            report_id: "a-1".into(),
        };
        assert_eq!(
            Received::from_element(rc.clone().into_element()).unwrap(),
            rc
        );
        let d = Deliver {
            report_id: "a-1".into(),
        };
        assert_eq!(Deliver::from_element(d.clone().into_element()).unwrap(), d);
    }

    #[test]
    fn malformed_reports() {
        for bad in [
            r#"<report xmlns="urn:leps:tuxp:sensor" qos="3"><d xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor" qos="one"><d xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor" qos="2"><d xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor" qos="2" report-id=""><d xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor" colour="red"><d xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor"/>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor"><d xmlns="x"/><e xmlns="x"/></report>"#,
            r#"<report xmlns="urn:leps:tuxp:sensor" stamp="yesterday"><d xmlns="x"/></report>"#,
        ] {
            assert!(Report::from_element(parse(bad)).is_err(), "{bad}");
        }
        for bad in [
            r#"<deliver xmlns="urn:leps:tuxp:sensor"/>"#,
            r#"<deliver xmlns="urn:leps:tuxp:sensor" report-id="a" x="y"/>"#,
        ] {
            assert!(Deliver::from_element(parse(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn history_round_trip() {
        let h = History {
            node: Some("0".into()),
            start_ms: Some(1_000),
            end_ms: Some(2_000),
            set: Some(ResultSet {
                first: Some(("4".into(), None)),
                last: Some("5".into()),
                count: Some(9),
                ..ResultSet::default()
            }),
            items: vec![
                Item {
                    id: 4,
                    node: "0".into(),
                    stamp_ms: 1_500,
                    data: Element::bare("d", "x"),
                },
                Item {
                    id: 5,
                    node: "0".into(),
                    stamp_ms: 1_600,
                    data: Element::bare("d", "x"),
                },
            ],
        };
        assert_eq!(History::from_element(h.clone().into_element()).unwrap(), h);
    }
}
