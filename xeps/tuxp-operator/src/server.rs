//! The `operator` module: authorizations to register, and execution grants.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload, StreamError, StreamErrorCondition};
use lithos_server::module::internal_error;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::confirmations::Confirmations;
use lithos_tuxp_things::{Registry, RegistryError, ThingId};

use crate::{
    ApproveFollow, AuthThing, ConfirmConcentration, Grant, NS, NS_GRANT, NS_PENDING,
    PendingConfirmation,
};

struct Operator {
    /// Account names (local parts) allowed to authorize things.
    operators: Vec<String>,
    validity: Duration,
    /// Refuse authorizations without a registration key (Lithosphere's clients send none).
    require_registration_key: bool,
    /// Things of accounts being deleted, by account: their sessions end once the deletion
    /// has revoked their credentials.
    orphaned: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
}

impl Operator {
    /// The sender's account name, if the sender is a local account.
    fn sender(server: &ServerHandle, req: &IqRequest) -> Option<String> {
        (req.session.is_some() && req.from.domain() == server.domain().domain())
            .then(|| req.from.local().map(str::to_string))
            .flatten()
    }

    /// The sender, if it is one of the configured operators; `forbidden` otherwise, saying
    /// that only operators `may` ("authorize things", say).
    fn operator(
        &self,
        server: &ServerHandle,
        req: &IqRequest,
        may: &str,
    ) -> Result<String, Box<StanzaError>> {
        match Self::sender(server, req) {
            Some(who) if self.operators.contains(&who) => Ok(who),
            Some(_) => Err(Box::new(StanzaError::explained(
                DefinedCondition::Forbidden,
                format!("only the operators the configuration names {may}"),
            ))),
            None => Err(Box::new(StanzaError::new(DefinedCondition::Forbidden))),
        }
    }

    async fn auth_thing(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "auth-thing is a set",
            ));
        }
        let a = AuthThing::from_element(req.payload.clone())?;
        let who = self
            .operator(server, &req, "authorize things")
            .map_err(|e| *e)?;
        ThingId::parse(&a.thing_id)
            .map_err(|e| StanzaError::explained(DefinedCondition::BadRequest, e.to_string()))?;
        let registry = Registry::of(server);
        if a.canceled {
            return if registry
                .cancel_authorization(&a.thing_id, &who)
                .await
                .map_err(internal_error)?
            {
                tracing::info!(thing = %a.thing_id, operator = %who, "authorization cancelled");
                Ok(None)
            } else {
                Err(StanzaError::explained(
                    DefinedCondition::ItemNotFound,
                    "no pending authorization of yours for this thing",
                ))
            };
        }
        if a.registration_key.is_none() && self.require_registration_key {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "give the thing's registration key (registration-key): the thing must present it to register",
            ));
        }
        match registry
            .authorize(
                &a.thing_id,
                &who,
                self.validity,
                a.registration_key.as_deref(),
            )
            .await
        {
            Ok(()) => {
                tracing::info!(thing = %a.thing_id, operator = %who, validity = ?self.validity, "thing authorized");
                Ok(None)
            }
            Err(RegistryError::AlreadyRegistered) => Err(StanzaError::explained(
                DefinedCondition::Conflict,
                "the thing is already registered",
            )),
            Err(e) => Err(internal_error(e)),
        }
    }

    async fn approve_follow(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "approve-follow is a set",
            ));
        }
        let a = ApproveFollow::from_element(req.payload.clone())?;
        let who = self
            .operator(server, &req, "approve follows")
            .map_err(|e| *e)?;
        let registry = Registry::of(server);
        let thing = match local_account(server, &a.friend) {
            Some(name) => registry.by_name(&name).await.map_err(internal_error)?,
            None => None,
        };
        let Some(thing) = thing else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such thing",
            ));
        };
        // A LAN node as the friend (`<gateway>/<lan-id>`): the node's follows.
        let node = a
            .friend
            .resource()
            .filter(|r| lithos_tuxp_things::lan_id(r).is_some());
        let thing = server
            .shared::<lithos_tuxp_things::NodeCache>()
            .subject(server, &thing, node)
            .await?;
        // A LAN node as the follower (`<gateway>/<lan-id>`, asked by its gateway) keeps its
        // resource; anyone else follows as a bare JID.
        let follower_node = match (
            local_account(server, &a.follower),
            a.follower.resource().and_then(lithos_tuxp_things::lan_id),
        ) {
            (Some(gateway), Some(lan_id)) => registry
                .node(&gateway, lan_id)
                .await
                .map_err(internal_error)?
                .is_some(),
            _ => false,
        };
        let follower = if follower_node {
            a.follower.to_string()
        } else {
            a.follower.to_bare().to_string()
        };
        // Follows between a gateway's nodes are bounded (one `<lan-follows/>` each).
        if follower_node
            && !a.canceled
            && let Some(gateway) = local_account(server, &a.follower)
            && !registry
                .lan_follow_fits(
                    &gateway,
                    a.follower.to_bare().as_ref(),
                    &thing.thing_id,
                    &a.event,
                    &follower,
                )
                .await
                .map_err(internal_error)?
        {
            return Err(StanzaError::explained(
                DefinedCondition::ResourceConstraint,
                format!(
                    "the gateway's nodes have {} follows already",
                    lithos_tuxp_things::MAX_LAN_FOLLOWS
                ),
            ));
        }
        let done = if a.canceled {
            registry
                .unfollow(&thing.thing_id, &a.event, &follower)
                .await
        } else {
            registry
                .approve_follow(&thing.thing_id, &a.event, &follower)
                .await
        }
        .map_err(internal_error)?;
        if !done {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "nobody asked to follow that event of that thing",
            ));
        }
        tracing::info!(thing = %thing.thing_id, event = %a.event, %follower, operator = %who, canceled = a.canceled, "follow decided");
        Ok(None)
    }

    /// `<pending/>`: the authorizations still waiting for their thing, for operators.
    /// An operator confirms a node a gateway waits to add.
    async fn confirm_concentration(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "confirm-concentration is a set",
            ));
        }
        let c = ConfirmConcentration::from_element(req.payload.clone())?;
        let who = self
            .operator(server, &req, "confirm nodes")
            .map_err(|e| *e)?;
        let gateway = c.concentrator_thing_id.to_ascii_lowercase();
        if Confirmations::of(server).confirm(&gateway, &c.node_thing_id, &who) {
            tracing::info!(gateway = %gateway, node = %c.node_thing_id, operator = %who, "node confirmed");
            Ok(None)
        } else {
            Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such node waits for confirmation",
            ))
        }
    }

    async fn pending(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.is_set || !req.payload.is("pending", NS_PENDING) {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "pending is a get",
            ));
        }
        self.operator(server, &req, "see authorizations")
            .map_err(|e| *e)?;
        let list = Registry::of(server)
            .pending_authorizations(crate::MAX_PENDING_LISTED)
            .await
            .map_err(internal_error)?;
        let mut answer = Element::bare("pending", NS_PENDING);
        for a in list {
            let mut b = Element::builder("authorization", NS_PENDING)
                .attr("thing-id", a.thing_id)
                .attr("authorizer", a.authorizer)
                .attr("authorized", lithos_core::datetime::format(a.authorized_ms))
                .attr("expires", lithos_core::datetime::format(a.expires_ms));
            if a.with_key {
                b = b.attr("key", "true");
            }
            answer.append_child(b.build());
        }
        for w in Confirmations::of(server).list() {
            answer.append_child(
                PendingConfirmation {
                    concentrator_thing_id: w.gateway,
                    node_thing_id: w.node_thing_id,
                    lan_id: w.lan_id,
                    owner: w.owner,
                    expires_ms: w.expires_ms,
                }
                .into_element(),
            );
        }
        Ok(Some(answer))
    }

    async fn grant(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "grant and revoke are sets",
            ));
        }
        let g = Grant::from_element(&req.payload)?;
        let Some(who) = Self::sender(server, &req) else {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        };
        let registry = Registry::of(server);
        // A registered thing, or a LAN node behind a gateway: each has its owner.
        let owner = match registry.by_id(&g.thing_id).await.map_err(internal_error)? {
            Some(thing) => Some(thing.owner),
            None => registry
                .node_by_id(&g.thing_id)
                .await
                .map_err(internal_error)?
                .map(|n| n.owner),
        };
        let Some(owner) = owner else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such thing",
            ));
        };
        if owner != who {
            return Err(StanzaError::explained(
                DefinedCondition::Forbidden,
                "only the thing's owner grants or revokes",
            ));
        }
        let account = local_account(server, &g.account).ok_or_else(|| {
            StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such account on this server",
            )
        })?;
        if !server
            .storage()
            .accounts
            .account_exists(&account)
            .await
            .map_err(internal_error)?
        {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such account on this server",
            ));
        }
        if g.revoke {
            registry
                .revoke(&g.thing_id, &account)
                .await
                .map_err(internal_error)?;
        } else {
            registry
                .grant(&g.thing_id, &account)
                .await
                .map_err(internal_error)?;
        }
        tracing::info!(thing = %g.thing_id, %account, revoke = g.revoke, "execution grant changed");
        Ok(None)
    }
}

fn local_account(server: &ServerHandle, j: &Jid) -> Option<String> {
    (j.domain() == server.domain().domain())
        .then(|| j.local().map(str::to_string))
        .flatten()
}

#[async_trait]
impl Module for Operator {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![
            IqClaim::server(NS),
            IqClaim::server(NS_GRANT),
            IqClaim::server(NS_PENDING),
        ]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.payload.is("approve-follow", NS) {
            self.approve_follow(server, req).await
        } else if req.payload.is("confirm-concentration", NS) {
            self.confirm_concentration(server, req).await
        } else if req.payload.ns() == NS_PENDING {
            self.pending(server, req).await
        } else if req.payload.ns() == NS {
            self.auth_thing(server, req).await
        } else {
            self.grant(server, req).await
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS, NS_GRANT, NS_PENDING]
    }

    async fn account_deleting(&self, server: &ServerHandle, account: &Jid) {
        let Some(user) = account.local() else { return };
        match Registry::of(server).owned_by(user).await {
            Ok(things) if !things.is_empty() => {
                self.orphans().insert(user.to_string(), things);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "listing the things of a deleted account failed")
            }
        }
    }

    async fn account_deleted(&self, server: &ServerHandle, account: &Jid) {
        let Some(user) = account.local() else { return };
        let Some(things) = self.orphans().remove(user) else {
            return;
        };
        // The deletion revoked their credentials; their sessions end now, not at their next
        // login.
        let end = StreamError::new(StreamErrorCondition::NotAuthorized)
            .with_text("the thing's owner was deleted; its credentials are revoked");
        for name in things {
            if let Ok(j) = Jid::from_parts(Some(&name), server.domain().domain(), None) {
                server.sessions().close_account(j.bare_str(), &end);
            }
        }
    }
}

impl Operator {
    fn orphans(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<String>>> {
        self.orphaned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut m = Operator {
        operators: Vec::new(),
        validity: Duration::from_secs(300),
        require_registration_key: true,
        orphaned: Default::default(),
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "operators" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| ModuleError::new("operators must be a list of accounts"))?;
                for o in list {
                    let s = o
                        .as_str()
                        .ok_or_else(|| ModuleError::new("operators must be a list of accounts"))?;
                    let full = if s.contains('@') {
                        s.to_string()
                    } else {
                        format!("{s}@{}", ctx.config.domain)
                    };
                    let j = Jid::new(&full)
                        .map_err(|e| ModuleError::caused_by(format!("operator {s:?}"), e))?;
                    if j.domain() != ctx.config.domain || j.local().is_none() || !j.is_bare() {
                        return Err(ModuleError::new(format!(
                            "operator {s:?} is not an account of {}",
                            ctx.config.domain
                        )));
                    }
                    m.operators.push(j.local().unwrap_or_default().to_string());
                }
            }
            "authorization_validity_secs" => {
                m.validity = Duration::from_secs(ModuleError::integer(k, v, 1)?);
            }
            "require_registration_key" => {
                m.require_registration_key = ModuleError::boolean(k, v)?;
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(m))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "operator",
    "TUXP operators authorize things to register (and own them); owners grant execution",
    build,
);
