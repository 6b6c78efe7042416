//! The `concentrator` module: gateways add, list and remove their LAN nodes.

use std::time::Duration;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, IqClaim, IqRequest, IqResponse, Module,
    ModuleRegistration, ServerHandle,
};
use lithos_tuxp_things::confirmations::{Confirmations, WaitError, Waiting};
use lithos_tuxp_things::{
    Authorization, NodeRecord, Registry, RegistryError, ThingId, ThingRecord,
};

use crate::{
    AddNode, CommunicationNet, LanFollow, LanFollows, MAX_LAN_FOLLOWS, NS, Node, NodeAdded,
    PullNodes, RemoveNode,
};

/// How long a node waits for an operator's confirmation by default (Lithosphere's
/// `node.confirmation.validity.time`).
pub const DEFAULT_CONFIRMATION: Duration = Duration::from_secs(300);

struct Concentrator {
    /// With confirmation: how long an `add-node` waits for an operator.
    confirmation: Option<Duration>,
}

fn refused(condition: DefinedCondition, text: impl Into<String>) -> StanzaError {
    StanzaError::explained(condition, text.into())
}

/// The sender's registered thing, if it is a concentrator.
async fn gateway(server: &ServerHandle, req: &IqRequest) -> Result<ThingRecord, StanzaError> {
    gateway_of(server, &req.from).await
}

/// `from`'s registered thing, if it is a concentrator.
async fn gateway_of(server: &ServerHandle, from: &Jid) -> Result<ThingRecord, StanzaError> {
    let thing = match from.local() {
        Some(name) if from.domain() == server.domain().domain() => Registry::of(server)
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
    /// The checks of an `add-node`, in the reference's order: the authorization it spends.
    async fn checked(
        server: &ServerHandle,
        gw: &ThingRecord,
        a: &AddNode,
    ) -> Result<Authorization, StanzaError> {
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
        Ok(auth)
    }

    /// Adds the node the checks passed, spending `auth`.
    async fn commit(
        server: &ServerHandle,
        gw: ThingRecord,
        a: AddNode,
        auth: Authorization,
    ) -> IqResponse {
        let model = ThingId::parse(&a.thing_id)
            .map(|id| id.model().name.to_string())
            .map_err(|_| refused(DefinedCondition::NotAcceptable, "not a thing id"))?;
        let record = NodeRecord {
            gateway: gw.thing_name.clone(),
            lan_id: a.lan_id,
            thing_id: a.thing_id.clone(),
            model,
            net: a.communication_net.as_str().to_string(),
            address: a.address,
            owner: auth.authorizer.clone(),
            added_ms: 0,
        };
        let added = match Registry::of(server).add_node(record, auth.id).await {
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

    /// With confirmation on, an `add-node` from the gateway's session: checked now, then
    /// answered from a task of its own once an operator confirmed (or the wait ended), so
    /// the gateway's session goes on meanwhile (commands to its other nodes, their reports).
    async fn add_when_confirmed(&self, cx: ClientStanza<'_>, validity: Duration) -> Flow {
        let (server, session, stanza) = cx.parts();
        let req = (|| {
            let payload = stanza.children().next()?.clone();
            let to = stanza.attr("to").unwrap_or(server.domain().domain());
            Some((AddNode::from_element(payload), Jid::new(to).ok()?))
        })();
        let Some((parsed, to)) = req else {
            return Flow::Continue;
        };
        let checked = async {
            let a = parsed?;
            let gw = gateway_of(server, &session.jid).await?;
            let auth = Self::checked(server, &gw, &a).await?;
            let rx =
                Self::wait(server, &gw, &a, &auth.authorizer, validity).map_err(wait_refused)?;
            Ok::<_, StanzaError>((gw, a, auth, rx))
        }
        .await;
        let (gw, a, auth, rx) = match checked {
            Ok(x) => x,
            Err(e) => {
                lithos_tuxp_things::refuse(server, session, stanza, e);
                return Flow::Handled;
            }
        };
        let (server, session, stanza) = (server.clone(), session.clone(), stanza.clone());
        tokio::spawn(async move {
            let answer =
                match Self::confirmed(&server, &gw, &a, rx, validity, Some(&session.jid)).await {
                    Ok(()) => Self::commit(&server, gw, a, auth).await,
                    Err(e) => Err(e),
                };
            match answer {
                Ok(payload) => {
                    let mut reply = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
                        .attr("type", "result")
                        .attr("id", stanza.attr("id").unwrap_or_default().to_string())
                        .attr("to", session.jid.as_shared().clone())
                        .attr("from", to.as_shared().clone())
                        .build();
                    if let Some(p) = payload {
                        reply.append_child(p);
                    }
                    server.sessions().send(&session.jid, reply);
                }
                Err(e) => lithos_tuxp_things::refuse(&server, &session, &stanza, e),
            }
        });
        Flow::Handled
    }
}

impl Concentrator {
    /// Starts the wait for an operator's confirmation of the node `a`.
    fn wait(
        server: &ServerHandle,
        gw: &ThingRecord,
        a: &AddNode,
        owner: &str,
        validity: Duration,
    ) -> Result<tokio::sync::oneshot::Receiver<String>, WaitError> {
        let rx = Confirmations::of(server).wait(Waiting {
            gateway: gw.thing_name.clone(),
            node_thing_id: a.thing_id.clone(),
            lan_id: a.lan_id,
            owner: owner.to_string(),
            expires_ms: lithos_tuxp_things::now_ms() + validity.as_millis() as i64,
        })?;
        tracing::info!(gateway = %gw.thing_name, node = %a.thing_id, lan_id = a.lan_id, "node waits for an operator's confirmation");
        Ok(rx)
    }

    /// Waits for the confirmation until `validity` has passed, or (from a session) until
    /// `asker`'s session ends.
    async fn confirmed(
        server: &ServerHandle,
        gw: &ThingRecord,
        a: &AddNode,
        mut rx: tokio::sync::oneshot::Receiver<String>,
        validity: Duration,
        asker: Option<&lithos_core::Jid>,
    ) -> Result<(), StanzaError> {
        let deadline = tokio::time::Instant::now() + validity;
        let operator = loop {
            // Checked every second: a gateway session that ended asks no more, and its node
            // is not added behind its back (its next add-node starts a new wait).
            let tick = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            match tokio::time::timeout_at(tick, &mut rx).await {
                Ok(Ok(operator)) => break Some(operator),
                Ok(Err(_)) => break None,
                Err(_) if tokio::time::Instant::now() >= deadline => break None,
                Err(_) => {
                    if asker.is_some_and(|j| server.sessions().get(j).is_none()) {
                        break None;
                    }
                }
            }
        };
        match operator {
            Some(operator) => {
                tracing::info!(gateway = %gw.thing_name, node = %a.thing_id, operator = %operator, "node confirmed");
                Ok(())
            }
            None => {
                Confirmations::of(server).withdraw(&gw.thing_name, &a.thing_id);
                Err(refused(
                    DefinedCondition::NotAuthorized,
                    format!(
                        "no operator confirmed the node within {} s",
                        validity.as_secs()
                    ),
                ))
            }
        }
    }
}

/// The stanza error of a wait that could not start.
fn wait_refused(e: WaitError) -> StanzaError {
    match e {
        WaitError::Full => refused(
            DefinedCondition::ResourceConstraint,
            "too many nodes wait for confirmation",
        ),
        WaitError::Already => refused(
            DefinedCondition::Conflict,
            "this node already waits for confirmation",
        ),
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

    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let validity = self.confirmation?;
        let s = cx.stanza;
        // To the server (or with no `to`, which the server answers too).
        let to_server = s
            .attr("to")
            .is_none_or(|t| t == cx.server.domain().domain());
        (s.name() == "iq"
            && s.attr("type") == Some("set")
            && to_server
            && s.children().next().is_some_and(|p| p.is("add-node", NS)))
        .then(|| Box::pin(self.add_when_confirmed(cx, validity)) as _)
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let gw = gateway(server, &req).await?;
        match (req.is_set, req.payload.name()) {
            (true, "add-node") => {
                let a = AddNode::from_element(req.payload.clone())?;
                let auth = Self::checked(server, &gw, &a).await?;
                // Not from a client session (the hook takes those): waits here.
                if let Some(validity) = self.confirmation {
                    let rx = Self::wait(server, &gw, &a, &auth.authorizer, validity)
                        .map_err(wait_refused)?;
                    Self::confirmed(server, &gw, &a, rx, validity, None).await?;
                }
                Self::commit(server, gw, a, auth).await
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
            (false, "lan-follows") => Ok(Some(
                lan_follows(server, &gw.thing_name)
                    .await
                    .map_err(internal_error)?
                    .into_element(),
            )),
            _ => Err(refused(
                DefinedCondition::BadRequest,
                "expected add-node or remove-node (set), pull-nodes or lan-follows (get)",
            )),
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn started(&self, server: &ServerHandle) {
        watch_follows(server);
    }

    async fn session_bound(&self, server: &ServerHandle, session: &lithos_server::SessionInfo) {
        // A gateway's edge session (a new one, or after a reconnection): what changed while
        // it was away is set on it now.
        if session.jid.resource() != Some(lithos_tuxp_things::EDGE_RESOURCE) {
            return;
        }
        let Some(name) = session.jid.local().map(str::to_string) else {
            return;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let has_nodes = Registry::of(&server)
                .nodes_of(&name)
                .await
                .is_ok_and(|n| !n.is_empty());
            if has_nodes {
                push_follows(&server, &name).await;
            }
        });
    }

    async fn account_deleted(&self, _server: &ServerHandle, _account: &lithos_core::Jid) {
        // The deleted account's nodes are unowned now, a deleted gateway's nodes gone: what
        // is cached of any node (`NodeCache`) is read again.
        lithos_tuxp_things::access_changed(lithos_tuxp_things::AccessChange::All);
    }
}

/// The follows between the nodes of the gateway named `gateway`.
async fn lan_follows(server: &ServerHandle, gateway: &str) -> Result<LanFollows, RegistryError> {
    let jid = format!("{gateway}@{}", server.domain().domain());
    let follows = Registry::of(server)
        .lan_follows(gateway, &jid, MAX_LAN_FOLLOWS)
        .await?
        .into_iter()
        .map(|(friend_lan_id, event, follower_lan_id)| LanFollow {
            friend_lan_id,
            event,
            follower_lan_id,
        })
        .collect();
    Ok(LanFollows { follows })
}

/// Sets a gateway's follows on it again whenever a follow on one of its nodes is approved
/// or ended (a gateway offline then asks for them when it starts).
fn watch_follows(server: &ServerHandle) {
    let s = server.clone();
    lithos_tuxp_things::on_access_changes(server, move |thing_id| {
        let server = s.clone();
        async move {
            let registry = Registry::of(&server);
            match thing_id {
                Some(id) => {
                    if let Ok(Some(node)) = registry.node_by_id(&id).await {
                        push_follows(&server, &node.gateway).await;
                    }
                }
                // Changes missed, or many at once (an account deleted): every gateway with
                // nodes is set again.
                None => {
                    if let Ok(gateways) = registry.gateways_with_nodes().await {
                        for g in gateways {
                            push_follows(&server, &g).await;
                        }
                    }
                }
            }
        }
    });
}

/// Sets the gateway's follows on its edge session, if it is online (a gateway's next
/// session is set when it binds).
async fn push_follows(server: &ServerHandle, gateway: &str) {
    let domain = server.domain().domain().to_string();
    let Ok(to) = Jid::new(&format!(
        "{gateway}@{domain}/{}",
        lithos_tuxp_things::EDGE_RESOURCE
    )) else {
        return;
    };
    if server.sessions().get(&to).is_none() {
        return;
    }
    let follows = match lan_follows(server, gateway).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(%gateway, error = %e, "the gateway's follows could not be read");
            return;
        }
    };
    tracing::debug!(%gateway, follows = follows.follows.len(), "follows set on the gateway");
    let iq = Element::builder("iq", "jabber:client")
        .attr("type", "set")
        .attr(
            "id",
            format!("lan-follows-{}", lithos_tuxp_things::now_ms()),
        )
        .attr("from", domain)
        .attr("to", to.to_string())
        .child(follows.into_element())
        .build();
    server.route(iq).await;
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "concentrator",
    "TUXP concentrator: gateways add, list and remove the LAN nodes behind them",
    build,
);

fn build(
    ctx: &lithos_server::module::ModuleContext<'_>,
) -> Result<std::sync::Arc<dyn Module>, lithos_server::module::ModuleError> {
    use lithos_server::module::ModuleError;
    let mut confirmation = false;
    let mut validity = DEFAULT_CONFIRMATION;
    for (k, v) in &ctx.section {
        match k.as_str() {
            "confirmation" => confirmation = ModuleError::boolean(k, v)?,
            "confirmation_seconds" => {
                validity = Duration::from_secs(ModuleError::integer(k, v, 1)?);
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(std::sync::Arc::new(Concentrator {
        confirmation: confirmation.then_some(validity),
    }))
}
