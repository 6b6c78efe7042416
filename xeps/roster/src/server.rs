//! The roster module.

use std::sync::Arc;

use crate::store::{RosterItem, Rosters};
use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, ns};
use lithos_server::ServerHandle;
use lithos_server::module::internal_error;
use lithos_server::module::{
    IqClaim, IqRequest, IqResponse, Module, ModuleContext, ModuleError, ModuleRegistration,
};

use crate::{INTERESTED, ItemError, NS, NS_ROSTERVER, item_element, parse_set};

fn to_element(item: &RosterItem) -> Element {
    item_element(
        &item.jid,
        item.name.as_deref(),
        item.subscription.as_str(),
        item.ask,
        item.approved,
        &item.groups,
    )
}

/// Sends a roster push (RFC 6121 §2.1.6) for `item` to every session of `username` that asked
/// for the roster. `removed` sends the item with `subscription="remove"`.
pub async fn push(
    server: &ServerHandle,
    username: &str,
    version: u64,
    item: &RosterItem,
    removed: bool,
) {
    let Ok(bare) = Jid::from_parts(Some(username), server.domain().domain(), None) else {
        return;
    };
    let el = if removed {
        item_element(&item.jid, None, "remove", false, false, &[])
    } else {
        to_element(item)
    };
    for s in server.sessions().marked(bare.bare_str(), INTERESTED) {
        let push = Element::builder("iq", ns::JABBER_CLIENT)
            .attr("type", "set")
            .attr("id", format!("push{}-{}", version, s.id))
            .attr("to", s.jid.as_shared().clone())
            .child(
                Element::builder("query", NS)
                    .attr("ver", version.to_string())
                    .child(el.clone())
                    .build(),
            )
            .build();
        server.sessions().send_to_id(&s, push);
    }
}

struct Roster;

#[async_trait]
impl Module for Roster {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    fn stream_features(&self) -> Vec<Element> {
        vec![Element::bare("ver", NS_ROSTERVER)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        // Only the account itself may see or change its roster.
        if !req.from.bare_eq(&req.to) {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        }
        let Some(user) = req.to.local() else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        if req.payload.name() != "query" {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        }
        let store = Rosters::of(server);
        if !req.is_set {
            if let Some(s) = &req.session {
                server.sessions().mark(s, INTERESTED);
            }
            let (version, items) = store.roster(user).await.map_err(internal_error)?;
            let ver = version.to_string();
            if req.payload.attr("ver") == Some(ver.as_str()) {
                // Unchanged since the client's copy: an empty result, pushes follow.
                return Ok(None);
            }
            let mut q = Element::builder("query", NS).attr("ver", ver).build();
            for item in &items {
                q.append_child(to_element(item));
            }
            return Ok(Some(q));
        }
        let request = parse_set(&req.payload).map_err(|e| match e {
            ItemError::BadRequest(t) => StanzaError::new(DefinedCondition::BadRequest).with_text(t),
            ItemError::NotAcceptable(t) => {
                StanzaError::new(DefinedCondition::NotAcceptable).with_text(t)
            }
        })?;
        let contact = request.jid.as_str().to_string();
        if request.jid.bare_eq(&req.to) {
            return Err(StanzaError::new(DefinedCondition::BadRequest)
                .with_text("an account cannot be on its own roster"));
        }
        let existing = store
            .roster_item(user, &contact)
            .await
            .map_err(internal_error)?;
        if request.remove {
            let Some(old) = existing else {
                return Err(StanzaError::new(DefinedCondition::ItemNotFound));
            };
            let version = store
                .delete_roster_item(user, &contact)
                .await
                .map_err(internal_error)?;
            let pending = store
                .pending_subscriptions(user)
                .await
                .map_err(internal_error)?
                .into_iter()
                .any(|(c, _)| c == contact);
            if pending {
                store
                    .delete_pending_subscription(user, &contact)
                    .await
                    .map_err(internal_error)?;
            }
            push(server, user, version, &old, true).await;
            // Removing an item cancels the subscriptions both ways (RFC 6121 §2.5.2).
            let from = req.to.to_bare();
            let presence = |t: &'static str| {
                Element::builder("presence", ns::JABBER_CLIENT)
                    .attr("type", t)
                    .attr("from", from.as_shared().clone())
                    .attr("to", contact.clone())
                    .build()
            };
            if old.subscription.has_to() || old.ask {
                server.route(presence("unsubscribe")).await;
            }
            if old.subscription.has_from() || pending {
                server.route(presence("unsubscribed")).await;
            }
            return Ok(None);
        }
        let mut item = existing.unwrap_or_else(|| RosterItem {
            jid: contact.clone(),
            ..RosterItem::default()
        });
        item.name = request.name;
        item.groups = request.groups;
        let version = store
            .put_roster_item(user, &item)
            .await
            .map_err(internal_error)?;
        push(server, user, version, &item, false).await;
        Ok(None)
    }
}

fn build(_: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    Ok(Arc::new(Roster))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "roster",
    "RFC 6121: rosters with versions and pushes",
    build,
);
