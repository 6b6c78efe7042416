//! The client side: a thing reports ([`ReporterExt`]); an owner reads and follows
//! ([`ReportsExt`]).

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload, Message, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_qos::RetryError;
use lithos_rsm::ResultSet;

use crate::{Deliver, History, Item, Latest, Qos, Received, Report};

/// How a thing retransmits a QoS 1 or 2 report (the generic QoS crate's policy: 1 s first,
/// doubling to 5 s, for 30 s). Lithosphere's LAN gateways use 200 ms and 2 s for
/// notifications: fine on an idle server, but too eager for one under load, where every
/// early retransmission adds work (and, at QoS 1, a stored duplicate).
pub use lithos_qos::Retry;

/// Why a report was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// The server refused it for good (not a thing, undeclared data, malformed).
    #[error("refused: {0}")]
    Refused(Box<StanzaError>),
    /// No acknowledgement within the retry policy's time.
    #[error("no acknowledgement after {0:?}")]
    GaveUp(Duration),
    /// QoS 0 only: the client is not connected.
    #[error("not connected")]
    NotConnected,
}

/// Reporting from a thing's [`Client`].
pub trait ReporterExt {
    /// Reports `data` at `qos` with the default [`Retry`]: returns once the server sent
    /// it on (QoS 0) or durably stored it (QoS 1), or stored it exactly once (QoS 2).
    fn report(
        &self,
        data: Element,
        qos: Qos,
    ) -> impl Future<Output = Result<(), ReportError>> + Send {
        self.report_with(data, qos, Retry::default())
    }

    /// [`report`](Self::report) with a retry policy.
    fn report_with(
        &self,
        data: Element,
        qos: Qos,
        retry: Retry,
    ) -> impl Future<Output = Result<(), ReportError>> + Send;

    /// A gateway reports for its LAN node `lan_id` (1–255): the report comes from
    /// `<gateway>/<lan-id>`, checked against the node's model, stored under the node.
    fn report_for_node(
        &self,
        lan_id: u8,
        data: Element,
        qos: Qos,
        retry: Retry,
    ) -> impl Future<Output = Result<(), ReportError>> + Send;
}

async fn until_answered(client: &Client, iq: Iq, retry: Retry) -> Result<Iq, ReportError> {
    lithos_qos::until_answered(client, iq, retry)
        .await
        .map_err(|e| match e {
            RetryError::Refused(e) => ReportError::Refused(e),
            RetryError::GaveUp(d) => ReportError::GaveUp(d),
        })
}

impl ReporterExt for Client {
    async fn report_with(&self, data: Element, qos: Qos, retry: Retry) -> Result<(), ReportError> {
        report_as(self, None, data, qos, retry).await
    }

    async fn report_for_node(
        &self,
        lan_id: u8,
        data: Element,
        qos: Qos,
        retry: Retry,
    ) -> Result<(), ReportError> {
        let node = self.jid().to_bare().with_resource(&lan_id.to_string()).ok();
        report_as(self, node, data, qos, retry).await
    }
}

async fn report_as(
    client: &Client,
    from: Option<Jid>,
    data: Element,
    qos: Qos,
    retry: Retry,
) -> Result<(), ReportError> {
    let iq_of = |report: Report| {
        let mut iq = Iq::set(client.next_id(), report.into_element());
        iq.from = from.clone();
        iq
    };
    let mut report = Report::new(data, qos);
    match qos {
        Qos::AtMostOnce => {
            let iq = iq_of(report);
            client.send(iq).await.map_err(|_| ReportError::NotConnected)
        }
        Qos::AtLeastOnce => {
            let iq = iq_of(report);
            until_answered(client, iq, retry).await.map(|_| ())
        }
        Qos::ExactlyOnce => {
            let report_id = lithos_qos::next_message_id();
            report.report_id = Some(report_id.clone());
            let iq = iq_of(report);
            let answer = until_answered(client, iq, retry).await?;
            let received = match answer.payload {
                IqPayload::Result(Some(p)) => Received::from_element(p).ok(),
                _ => None,
            };
            if received.is_none_or(|r| r.report_id != report_id) {
                return Err(ReportError::Refused(Box::new(
                    StanzaError::new(lithos_core::stanza::DefinedCondition::UndefinedCondition)
                        .with_text("the server did not confirm the report's reception"),
                )));
            }
            let mut deliver = Iq::set(client.next_id(), Deliver { report_id }.into_element());
            deliver.from = from.clone();
            until_answered(client, deliver, retry).await.map(|_| ())
        }
    }
}

/// Reading a thing's reports from an owner's (or a granted account's) [`Client`].
pub trait ReportsExt {
    /// The newest value of every node and data type of `thing` (its bare JID).
    fn latest_reports(
        &self,
        thing: Jid,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Item>, RequestError>> + Send;

    /// The newest value of every data type of LAN node `lan_id` behind `gateway` (its bare
    /// JID): what a node's owner (or grantee) may read, as the gateway's owner may.
    fn node_latest_reports(
        &self,
        gateway: Jid,
        lan_id: u8,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Item>, RequestError>> + Send;

    /// A page of `thing`'s history: fill `query`'s node, time range and page (`set`); the
    /// answer holds the items and where the page sits (`first`, `last`, `count`).
    fn report_history(
        &self,
        thing: Jid,
        query: History,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Item>, ResultSet), RequestError>> + Send;

    /// Starts (`true`) or stops live reports from `thing` to this session: they arrive as
    /// messages; read them with [`live_report`].
    fn follow_reports(
        &self,
        thing: Jid,
        on: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

async fn latest(
    client: &Client,
    thing: Jid,
    q: Latest,
    timeout: Duration,
) -> Result<Vec<Item>, RequestError> {
    let iq = Iq::get("", q.into_element()).with_to(thing);
    match client.request(iq, timeout).await?.payload {
        IqPayload::Result(Some(p)) => Latest::from_element(p).map(|l| l.items).map_err(malformed),
        _ => Err(malformed("no <latest/>")),
    }
}

fn malformed(e: impl std::fmt::Display) -> RequestError {
    RequestError::Stanza(Box::new(
        StanzaError::new(lithos_core::stanza::DefinedCondition::UndefinedCondition)
            .with_text(format!("malformed answer: {e}")),
    ))
}

impl ReportsExt for Client {
    async fn latest_reports(
        &self,
        thing: Jid,
        timeout: Duration,
    ) -> Result<Vec<Item>, RequestError> {
        latest(self, thing, Latest::default(), timeout).await
    }

    async fn node_latest_reports(
        &self,
        gateway: Jid,
        lan_id: u8,
        timeout: Duration,
    ) -> Result<Vec<Item>, RequestError> {
        let q = Latest {
            node: Some(lan_id.to_string()),
            items: Vec::new(),
        };
        latest(self, gateway, q, timeout).await
    }

    async fn report_history(
        &self,
        thing: Jid,
        mut query: History,
        timeout: Duration,
    ) -> Result<(Vec<Item>, ResultSet), RequestError> {
        query.items.clear();
        let iq = Iq::get("", query.into_element()).with_to(thing);
        match self.request(iq, timeout).await?.payload {
            IqPayload::Result(Some(p)) => {
                let h = History::from_element(p).map_err(malformed)?;
                Ok((h.items, h.set.unwrap_or_default()))
            }
            _ => Err(malformed("no <history/>")),
        }
    }

    async fn follow_reports(
        &self,
        thing: Jid,
        on: bool,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let name = if on { "subscribe" } else { "unsubscribe" };
        let iq = Iq::set("", Element::bare(name, crate::NS)).with_to(thing);
        self.request(iq, timeout).await.map(|_| ())
    }
}

/// A live report in a message: the reporting address and the report (with its `stamp`).
pub fn live_report(message: &Message) -> Option<(Jid, Report)> {
    let from = message.from.clone()?;
    let el = message.payloads.iter().find(|p| Report::matches(p))?;
    Some((from, Report::from_element(el.clone()).ok()?))
}
