//! The `location` module.

use async_trait::async_trait;
use lithos_core::Element;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::module::internal_error;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::Registry;

use crate::NS;

struct Location;

#[async_trait]
impl Module for Location {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.is_set || !req.payload.is("locate-things", NS) {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "locate-things is a get",
            ));
        }
        if req.payload.has_child("thing-location", NS) {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "a request names thing ids only",
            ));
        }
        let ids: Vec<String> = req
            .payload
            .children()
            .filter(|c| c.is("thing-id", NS))
            .map(|c| c.text().trim().to_string())
            .collect();
        if ids.is_empty() {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "name at least one thing",
            ));
        }
        let (Some(_), Some(asker)) = (req.session.as_ref(), req.from.local()) else {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        };
        let registry = Registry::of(server);
        let mut answer = Element::bare("locate-things", NS);
        for id in ids {
            let Some(thing) = registry.by_id(&id).await.map_err(internal_error)? else {
                return Err(StanzaError::explained(
                    DefinedCondition::ItemNotFound,
                    format!("no thing {id}"),
                ));
            };
            if !registry
                .may_execute(&thing, asker)
                .await
                .map_err(internal_error)?
            {
                return Err(StanzaError::explained(
                    DefinedCondition::Forbidden,
                    format!("not yours: {id}"),
                ));
            }
            answer.append_child(
                Element::builder("thing-location", NS)
                    .attr("thing-id", id)
                    .attr(
                        "location",
                        format!("{}@{}", thing.thing_name, server.domain()),
                    )
                    .build(),
            );
        }
        Ok(Some(answer))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "location",
    "TUXP location: the address of each thing, for its owner and grantees",
    |ctx| ctx.no_settings(Location),
);
