//! The report payloads as they were written by hand before `#[derive(Payload)]` (release
//! 0.1.0's `lithos-tuxp-report`), kept as the reference the derived code is measured against.

#![allow(dead_code)]

use lithos_core::{Element, Payload, PayloadError};
use lithos_tuxp_report::Qos;

const NS: &str = lithos_tuxp_report::NS;

fn invalid(what: impl Into<String>) -> PayloadError {
    PayloadError::Invalid(what.into())
}

fn bad_attr(element: &'static str, attribute: &'static str, value: &str) -> PayloadError {
    PayloadError::InvalidAttribute {
        element,
        attribute,
        value: value.to_string(),
    }
}

fn stamp_attr(element: &'static str, name: &'static str, v: &str) -> Result<i64, PayloadError> {
    lithos_core::datetime::parse(v).ok_or_else(|| bad_attr(element, name, v))
}

/// A report: one data element, with its guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// The guarantee (`qos`, 0 when absent, as in Lithosphere).
    pub(crate) qos: Qos,
    /// The thing's id for a QoS 2 report.
    pub(crate) report_id: Option<String>,
    /// When the server stored it (set on live reports to subscribers).
    pub(crate) stamp_ms: Option<i64>,
    /// The data (such as `<celsius-degree value="23.5"/>`).
    pub(crate) data: Element,
}

impl Report {
    /// A report of `data` at `qos`.
    pub(crate) fn new(data: Element, qos: Qos) -> Report {
        Report {
            qos,
            report_id: None,
            stamp_ms: None,
            data,
        }
    }
}

impl Payload for Report {
    const NS: &'static str = NS;
    const NAME: &'static str = "report";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let mut qos = Qos::AtMostOnce;
        let mut report_id = None;
        let mut stamp_ms = None;
        for a in el.attrs() {
            if !a.ns().is_empty() {
                return Err(invalid("report takes no namespaced attributes"));
            }
            match a.name() {
                "qos" => {
                    qos = a
                        .value()
                        .parse()
                        .ok()
                        .and_then(Qos::from_ordinal)
                        .ok_or_else(|| bad_attr("report", "qos", a.value()))?
                }
                "report-id" if !a.value().is_empty() && a.value().len() <= 64 => {
                    report_id = Some(a.value().to_string())
                }
                "report-id" => return Err(bad_attr("report", "report-id", a.value())),
                "stamp" => stamp_ms = Some(stamp_attr("report", "stamp", a.value())?),
                other => return Err(invalid(format!("report takes no attribute {other}"))),
            }
        }
        if qos == Qos::ExactlyOnce && report_id.is_none() {
            return Err(invalid("a QoS 2 report needs a report-id"));
        }
        let mut children = el.children();
        let data = match (children.next(), children.next()) {
            (Some(d), None) => d.clone(),
            _ => return Err(invalid("a report holds exactly one data element")),
        };
        Ok(Report {
            qos,
            report_id,
            stamp_ms,
            data,
        })
    }

    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .attr("qos", self.qos.ordinal().to_string())
            .opt_attr("report-id", self.report_id)
            .opt_attr("stamp", self.stamp_ms.map(lithos_core::datetime::format))
            .child(self.data)
            .build()
    }
}

/// A stored report, in query answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Its position in the history (for paging).
    pub(crate) id: i64,
    /// The node that reported: `0` for the thing itself, a LAN id behind a gateway.
    pub(crate) node: String,
    /// When the server stored it.
    pub(crate) stamp_ms: i64,
    /// The data.
    pub(crate) data: Element,
}

impl Payload for Item {
    const NS: &'static str = NS;
    const NAME: &'static str = "item";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let id = el.attr("id").unwrap_or("");
        let id = id.parse().map_err(|_| bad_attr("item", "id", id))?;
        let node = el
            .attr("node")
            .ok_or_else(|| invalid("item needs a node"))?
            .to_string();
        let stamp_ms = stamp_attr("item", "stamp", el.attr("stamp").unwrap_or(""))?;
        let mut children = el.children();
        let data = match (children.next(), children.next()) {
            (Some(d), None) => d.clone(),
            _ => return Err(invalid("an item holds exactly one data element")),
        };
        Ok(Item {
            id,
            node,
            stamp_ms,
            data,
        })
    }

    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .attr("id", self.id.to_string())
            .attr("node", self.node)
            .attr("stamp", lithos_core::datetime::format(self.stamp_ms))
            .child(self.data)
            .build()
    }
}

fn items(el: &Element) -> Result<Vec<Item>, PayloadError> {
    el.children()
        .filter(|c| c.is("item", NS))
        .map(|c| Item::from_element(c.clone()))
        .collect()
}

/// `<latest/>`: the newest value of every node and data type (the request is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Latest {
    /// In the answer: one item per node and data type.
    pub(crate) items: Vec<Item>,
}

impl Payload for Latest {
    const NS: &'static str = NS;
    const NAME: &'static str = "latest";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        Ok(Latest { items: items(&el)? })
    }

    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .children(self.items.into_iter().map(Item::into_element))
            .build()
    }
}

/// `<history/>`: the reports stored in `[start, end)`, oldest first, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// Only this node's reports.
    pub(crate) node: Option<String>,
    /// From this time on (inclusive).
    pub(crate) start_ms: Option<i64>,
    /// Up to this time (exclusive).
    pub(crate) end_ms: Option<i64>,
    /// The page asked for, or where the answer's page sits.
    pub(crate) set: Option<lithos_rsm::ResultSet>,
    /// In the answer: the page.
    pub(crate) items: Vec<Item>,
}

impl Payload for History {
    const NS: &'static str = NS;
    const NAME: &'static str = "history";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let mut h = History {
            node: el.attr("node").map(str::to_string),
            ..History::default()
        };
        if let Some(v) = el.attr("start") {
            h.start_ms = Some(stamp_attr("history", "start", v)?);
        }
        if let Some(v) = el.attr("end") {
            h.end_ms = Some(stamp_attr("history", "end", v)?);
        }
        if let Some(s) = el.get_child("set", lithos_rsm::NS) {
            h.set = Some(lithos_rsm::ResultSet::from_element(s.clone())?);
        }
        h.items = items(&el)?;
        Ok(h)
    }

    fn into_element(self) -> Element {
        Element::builder(Self::NAME, NS)
            .opt_attr("node", self.node)
            .opt_attr("start", self.start_ms.map(lithos_core::datetime::format))
            .opt_attr("end", self.end_ms.map(lithos_core::datetime::format))
            .children(self.items.into_iter().map(Item::into_element))
            .children(self.set.map(lithos_rsm::ResultSet::into_element))
            .build()
    }
}
