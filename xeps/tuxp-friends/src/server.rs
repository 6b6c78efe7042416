//! The `friends` module: records follow requests for operators to approve.

use async_trait::async_trait;
use lithos_core::Payload;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::module::internal_error;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::Registry;

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
        // A follower follows one event (notifications) or one kind of report data: what
        // it is approved for is all it receives of the thing.
        if lithos_tuxp_things::model(&thing.model)
            .filter(|m| m.event_by_key(&f.event).is_some() || m.data_by_key(&f.event).is_some())
            .is_none()
        {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                format!(
                    "model {} has no event or report data {}",
                    thing.model, f.event
                ),
            ));
        }
        let follower = req.from.to_bare().to_string();
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

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "friends",
    "TUXP friends/follow: requests to follow a thing's events, for operators to approve",
    |ctx| ctx.no_settings(Friends),
);
