//! The `friends` module: records follow requests for operators to approve.

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::{MAX_LAN_FOLLOWS, NodeCache, Registry};

use crate::{Follow, NS};

struct Friends;

#[async_trait]
impl Module for Friends {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "follow is a set",
            ));
        }
        if req.session.is_none() {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        }
        let f = Follow::from_element(req.payload.clone())?;
        let registry = Registry::of(server);
        let thing = match f.friend.local() {
            Some(name) if f.friend.domain() == server.domain().domain() => {
                registry.by_name(name).await.map_err(internal_error)?
            }
            _ => None,
        };
        let Some(thing) = thing else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such thing",
            ));
        };
        // The thing, or the LAN node behind it that `friend` names: the node's own id and
        // model.
        let node = f
            .friend
            .resource()
            .filter(|r| lithos_tuxp_things::lan_id(r).is_some());
        let subject = server
            .shared::<NodeCache>()
            .subject(server, &thing, node)
            .await?;
        // A follower follows one event (notifications) or one kind of report data: what
        // it is approved for is all it receives of the thing.
        if subject
            .model()
            .filter(|m| m.event_by_key(&f.event).is_some() || m.data_by_key(&f.event).is_some())
            .is_none()
        {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                format!(
                    "model {} has no event or report data {}",
                    subject.model, f.event
                ),
            ));
        }
        // A node's report data goes to its owner and the history, not to followers yet
        // (the report module's live subscriptions are by thing, not by node).
        let is_event = subject
            .model()
            .is_some_and(|m| m.event_by_key(&f.event).is_some());
        if subject.lan_id.is_some() && !is_event && !f.canceled {
            return Err(StanzaError::explained(
                DefinedCondition::FeatureNotImplemented,
                "a LAN node's events are followed, not its report data",
            ));
        }
        let follower = match f.follower_lan_id {
            None => req.from.to_bare().to_string(),
            Some(lan_id) => {
                node_follower(
                    server,
                    &req.from,
                    &f.friend,
                    subject.lan_id,
                    lan_id,
                    &f.event,
                    f.canceled,
                )
                .await?
            }
        };
        let thing = subject;
        let approved = if f.canceled {
            registry
                .unfollow(&thing.thing_id, &f.event, &follower)
                .await
                .map_err(internal_error)?;
            false
        } else {
            registry
                .request_follow(&thing.thing_id, &f.event, &follower)
                .await
                .map_err(internal_error)?
        };
        tracing::info!(thing = %thing.thing_id, event = %f.event, %follower, canceled = f.canceled, approved, "follow request");
        Ok(Some(
            Follow {
                approved: Some(approved),
                ..f
            }
            .into_element(),
        ))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

/// The follower `<gateway>/<lan_id>` a gateway (`from`) asks for: its node `lan_id`,
/// following `friend`, another node behind it (`friend_lan_id`), both on its LoRa radio
/// (what the gateway routes itself), within [`MAX_LAN_FOLLOWS`] follows per gateway.
async fn node_follower(
    server: &ServerHandle,
    from: &Jid,
    friend: &Jid,
    friend_lan_id: Option<u8>,
    lan_id: u8,
    event: &str,
    canceled: bool,
) -> Result<String, StanzaError> {
    let gateway = from.local().unwrap_or_default();
    let registry = Registry::of(server);
    let Some(node) = registry
        .node(gateway, lan_id)
        .await
        .map_err(internal_error)?
    else {
        return Err(StanzaError::explained(
            DefinedCondition::ItemNotFound,
            format!("the sender has no LAN node {lan_id} (only a gateway asks for its nodes)"),
        ));
    };
    let bare = from.to_bare();
    let friend_lan_id = match friend_lan_id {
        Some(f) if friend.to_bare() == bare && f == lan_id => {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "a node does not follow itself",
            ));
        }
        Some(f) if friend.to_bare() == bare => f,
        _ => {
            return Err(StanzaError::explained(
                DefinedCondition::FeatureNotImplemented,
                "a LAN node follows only another node behind its own gateway",
            ));
        }
    };
    let friend_node = registry
        .node(gateway, friend_lan_id)
        .await
        .map_err(internal_error)?;
    let on_the_radio = |n: &lithos_tuxp_things::NodeRecord| n.net == "LORA";
    // Withdrawing is always possible; asking only for what the gateway routes.
    if !canceled && (!on_the_radio(&node) || !friend_node.as_ref().is_some_and(on_the_radio)) {
        return Err(StanzaError::explained(
            DefinedCondition::FeatureNotImplemented,
            "only nodes on the gateway's LoRa radio follow each other",
        ));
    }
    let follower = format!("{bare}/{lan_id}");
    if !canceled
        && let Some(friend_node) = &friend_node
        && !registry
            .lan_follow_fits(
                gateway,
                bare.as_ref(),
                &friend_node.thing_id,
                event,
                &follower,
            )
            .await
            .map_err(internal_error)?
    {
        return Err(StanzaError::explained(
            DefinedCondition::ResourceConstraint,
            format!("a gateway's nodes have at most {MAX_LAN_FOLLOWS} follows"),
        ));
    }
    Ok(follower)
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "friends",
    "TUXP friends/follow: requests to follow a thing's events, for operators to approve",
    |ctx| ctx.no_settings(Friends),
);
