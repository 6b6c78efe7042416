//! The `concentrator` module: gateways add, list and remove their LAN nodes.

use async_trait::async_trait;
use lithos_core::Payload;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::module::internal_error;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::{NodeRecord, Registry, RegistryError, ThingId, ThingRecord};

use crate::{AddNode, CommunicationNet, NS, Node, NodeAdded, PullNodes, RemoveNode};

struct Concentrator;

fn refused(condition: DefinedCondition, text: impl Into<String>) -> StanzaError {
    StanzaError::explained(condition, text.into())
}

/// The sender's registered thing, if it is a concentrator.
async fn gateway(server: &ServerHandle, req: &IqRequest) -> Result<ThingRecord, StanzaError> {
    let thing = match req.from.local() {
        Some(name) if req.from.domain() == server.domain().domain() => Registry::of(server)
            .by_name(name)
            .await
            .map_err(internal_error)?,
        _ => None,
    };
    let Some(thing) = thing else {
        return Err(refused(
            DefinedCondition::ItemNotFound,
            "only a registered thing has nodes",
        ));
    };
    if !lithos_tuxp_things::model(&thing.model).is_some_and(|m| m.concentrator) {
        return Err(refused(
            DefinedCondition::ServiceUnavailable,
            format!("model {} is not a concentrator", thing.model),
        ));
    }
    Ok(thing)
}

impl Concentrator {
    async fn add(&self, server: &ServerHandle, gw: ThingRecord, a: AddNode) -> IqResponse {
        let registry = Registry::of(server);
        let not_acceptable = |text: &str| refused(DefinedCondition::NotAcceptable, text);
        let Ok(id) = ThingId::parse(&a.thing_id) else {
            return Err(not_acceptable(
                "not the thing id of a model this server knows",
            ));
        };
        if id.model().concentrator {
            return Err(not_acceptable("a concentrator is not a LAN node"));
        }
        // Not already a node or a registered thing: conflict, before spending the
        // authorization's check.
        if registry
            .node(&gw.thing_name, a.lan_id)
            .await
            .map_err(internal_error)?
            .is_some()
        {
            return Err(refused(
                DefinedCondition::Conflict,
                format!("LAN id {} is taken", a.lan_id),
            ));
        }
        let authorization = registry
            .valid_authorization(&a.thing_id)
            .await
            .map_err(internal_error)?;
        let Some(auth) = authorization.filter(|x| x.accepts_key(&a.registration_code)) else {
            tracing::info!(gateway = %gw.thing_name, node = %a.thing_id, "node refused: not authorized, or a wrong registration code");
            return Err(not_acceptable(
                "this node is not authorized to be added, or its registration code is wrong",
            ));
        };
        let record = NodeRecord {
            gateway: gw.thing_name.clone(),
            lan_id: a.lan_id,
            thing_id: a.thing_id.clone(),
            model: id.model().name.to_string(),
            net: a.communication_net.as_str().to_string(),
            address: a.address,
            owner: auth.authorizer.clone(),
            added_ms: 0,
        };
        let added = match registry.add_node(record, auth.id).await {
            Ok(n) => n,
            Err(RegistryError::LanIdTaken) => {
                return Err(refused(
                    DefinedCondition::Conflict,
                    format!("LAN id {} is taken", a.lan_id),
                ));
            }
            Err(RegistryError::AlreadyRegistered) => {
                return Err(refused(
                    DefinedCondition::Conflict,
                    "that thing is already a node or a registered thing",
                ));
            }
            Err(e) => return Err(internal_error(e)),
        };
        tracing::info!(gateway = %gw.thing_name, node = %added.thing_id, lan_id = added.lan_id, owner = %added.owner, "node added");
        Ok(Some(
            NodeAdded {
                concentrator_thing_name: gw.thing_name,
                node_thing_id: added.thing_id,
                lan_id: added.lan_id,
                model: added.model,
                addition_ms: added.added_ms,
            }
            .into_element(),
        ))
    }
}

fn net(s: &str) -> CommunicationNet {
    if s == "BLE" {
        CommunicationNet::Ble
    } else {
        CommunicationNet::Lora
    }
}

#[async_trait]
impl Module for Concentrator {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let gw = gateway(server, &req).await?;
        match (req.is_set, req.payload.name()) {
            (true, "add-node") => {
                let a = AddNode::from_element(req.payload.clone())?;
                self.add(server, gw, a).await
            }
            (false, "pull-nodes") => {
                let nodes = Registry::of(server)
                    .nodes_of(&gw.thing_name)
                    .await
                    .map_err(internal_error)?
                    .into_iter()
                    .map(|n| Node {
                        lan_id: n.lan_id,
                        thing_id: n.thing_id,
                        model: n.model,
                        communication_net: net(&n.net),
                        address: n.address,
                    })
                    .collect();
                Ok(Some(PullNodes { nodes }.into_element()))
            }
            (true, "remove-node") => {
                let r = RemoveNode::from_element(req.payload.clone())?;
                match Registry::of(server)
                    .remove_node(&gw.thing_name, r.lan_id)
                    .await
                    .map_err(internal_error)?
                {
                    Some(n) => {
                        tracing::info!(gateway = %gw.thing_name, node = %n.thing_id, lan_id = n.lan_id, "node removed");
                        Ok(None)
                    }
                    None => Err(refused(
                        DefinedCondition::ItemNotFound,
                        format!("no node {}", r.lan_id),
                    )),
                }
            }
            _ => Err(refused(
                DefinedCondition::BadRequest,
                "expected add-node or remove-node (set), pull-nodes (get)",
            )),
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "concentrator",
    "TUXP concentrator: gateways add, list and remove the LAN nodes behind them",
    |ctx| ctx.no_settings(Concentrator),
);
