//! The client side: roster get, set and remove ([`RosterExt`]), and answering the server's
//! roster pushes (each passed to the application as `Event::Iq`).

use std::future::Future;
use std::time::Duration;

use lithos_client::handler::{ClientPlugin, Handlers, fn_handler};
use lithos_client::{Client, RequestError};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Element, Jid};

use crate::NS;

/// A contact as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The contact.
    pub jid: Jid,
    /// The user's name for the contact.
    pub name: Option<String>,
    /// `none`, `to`, `from` or `both` (`remove` in a push of a removal).
    pub subscription: String,
    /// A subscription request is waiting for the contact's answer.
    pub ask: bool,
    /// Groups.
    pub groups: Vec<String>,
}

impl RosterEntry {
    /// Reads an `<item/>`; `None` if its address is missing or invalid.
    pub fn from_element(item: &Element) -> Option<RosterEntry> {
        Some(RosterEntry {
            jid: Jid::new(item.attr("jid")?).ok()?,
            name: item.attr("name").map(str::to_string),
            subscription: item.attr("subscription").unwrap_or("none").to_string(),
            ask: item.attr("ask") == Some("subscribe"),
            groups: item
                .children()
                .filter(|g| g.is("group", NS))
                .map(|g| g.text().to_string())
                .collect(),
        })
    }

    /// The entries of a roster result or push.
    pub fn all_in(iq: &Iq) -> Vec<RosterEntry> {
        let query = match &iq.payload {
            IqPayload::Result(Some(q)) | IqPayload::Set(q) => q,
            _ => return Vec::new(),
        };
        query
            .children()
            .filter(|i| i.is("item", NS))
            .filter_map(RosterEntry::from_element)
            .collect()
    }
}

/// Roster operations on a [`Client`].
pub trait RosterExt {
    /// The whole roster.
    fn roster(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<RosterEntry>, RequestError>> + Send;
    /// Adds or updates a contact.
    fn roster_set(
        &self,
        jid: Jid,
        name: Option<String>,
        groups: Vec<String>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// Removes a contact (and cancels subscriptions both ways).
    fn roster_remove(
        &self,
        jid: Jid,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

fn set(item: Element) -> Iq {
    Iq::set("", Element::builder("query", NS).child(item).build())
}

impl RosterExt for Client {
    async fn roster(&self, timeout: Duration) -> Result<Vec<RosterEntry>, RequestError> {
        let r = self
            .request(Iq::get("", Element::bare("query", NS)), timeout)
            .await?;
        Ok(RosterEntry::all_in(&r))
    }

    async fn roster_set(
        &self,
        jid: Jid,
        name: Option<String>,
        groups: Vec<String>,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let mut b = Element::builder("item", NS)
            .attr("jid", jid.to_string())
            .opt_attr("name", name);
        for g in groups {
            b = b.child(Element::builder("group", NS).text(g).build());
        }
        self.request(set(b.build()), timeout).await.map(drop)
    }

    async fn roster_remove(&self, jid: Jid, timeout: Duration) -> Result<(), RequestError> {
        let item = Element::builder("item", NS)
            .attr("jid", jid.to_string())
            .attr("subscription", "remove")
            .build();
        self.request(set(item), timeout).await.map(drop)
    }
}

/// A push is accepted only from the user's own account (RFC 6121 §2.1.6), answered, and
/// handed to the application.
fn handlers() -> Handlers {
    vec![(
        NS,
        fn_handler(|ctx, iq| async move {
            let own = ctx.client().jid();
            let from_own = iq
                .from
                .as_ref()
                .is_none_or(|f| f.is_bare() && f.bare_eq(&own));
            if !from_own || !matches!(iq.payload, IqPayload::Set(_)) {
                return Err(StanzaError::new(DefinedCondition::ServiceUnavailable));
            }
            ctx.notify(iq).await;
            Ok(None)
        }),
    )]
}

/// This crate's client plugin, registered by `extension!` in `lib.rs`.
pub(crate) const PLUGIN: ClientPlugin = ClientPlugin {
    name: "roster",
    features: &[],
    handlers,
};
