//! The `pep` module.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use lithos_caps::server::CapsCache;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};
use lithos_pubsub::config::AccessModel;
use lithos_pubsub::engine::{Ctx, Engine, Event, Limits, Profile, deliver};
use lithos_pubsub::{Affiliation, NS, NS_OWNER};
use lithos_roster::store::Rosters;
use lithos_server::module::{IqClaim, IqRequest, IqResponse, ModuleContext, ModuleError};
use lithos_server::session::SessionInfo;
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle,
};

/// PEP's default bounds.
const DEFAULT_LIMITS: Limits = Limits {
    max_nodes: 256,
    max_items: 1_000,
    max_payload_bytes: 262_144,
    max_subscriptions: 1_000,
    max_retrieve: 1_000,
};

/// What XEP-0163 §9 and XEP-0060 §10 ask an account to advertise.
const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#rsm",
];

struct Pep {
    engine: Arc<Engine>,
    /// The `ver` each available local resource last got the last items for (a presence
    /// update with the same capabilities sends nothing again).
    seen: Mutex<HashMap<Jid, String>>,
}

impl Pep {
    fn seen(&self) -> MutexGuard<'_, HashMap<Jid, String>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The full JIDs beyond the explicit subscribers that `event` of `owner`'s node goes to:
/// available resources of the owner and of its contacts with a presence subscription,
/// whose verified capabilities ask for `node+notify`, within the node's access model.
async fn interested(server: &ServerHandle, owner: &Jid, event: &Event) -> Vec<String> {
    let caps = CapsCache::of(server);
    let mut accounts = vec![owner.to_string()];
    let model = event.config.access_model;
    if let Some(user) = owner.local() {
        match Rosters::of(server).roster(user).await {
            Ok((_, items)) => {
                for item in items {
                    let allowed = match model {
                        AccessModel::Open | AccessModel::Presence => item.subscription.has_from(),
                        AccessModel::Roster => {
                            item.subscription.has_from()
                                && item
                                    .groups
                                    .iter()
                                    .any(|g| event.config.roster_groups_allowed.contains(g))
                        }
                        AccessModel::Whitelist => false,
                    };
                    if allowed {
                        accounts.push(item.jid);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading a roster for PEP failed"),
        }
    }
    let explicit: BTreeSet<&str> = event.subscribers.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for account in accounts {
        if explicit.contains(account.as_str()) {
            continue;
        }
        for (session, presence) in server.sessions().resources(&account) {
            if !presence.available || explicit.contains(session.jid.as_str()) {
                continue;
            }
            if caps
                .known(&session.jid)
                .is_some_and(|f| f.wants_notify(&event.node))
            {
                out.push(session.jid.to_string());
            }
        }
    }
    out
}

impl Pep {
    async fn deliver_all(&self, server: &ServerHandle, owner: &Jid, events: &[Event]) {
        for e in events {
            let mut to = e.subscribers.clone();
            if e.broadcast {
                to.extend(interested(server, owner, e).await);
            }
            deliver(server, owner, e, &to).await;
        }
    }

    /// A resource became available (or changed capabilities): the last items it wants, of
    /// its own account and of every account whose presence it receives.
    async fn send_last_items(server: ServerHandle, engine: Arc<Engine>, jid: Jid) {
        let Some(features) = CapsCache::of(&server).features(&jid).await else {
            return;
        };
        let bare = jid.to_bare();
        let mut accounts = vec![bare.clone()];
        if let Some(user) = jid.local() {
            match Rosters::of(&server).roster(user).await {
                Ok((_, items)) => accounts.extend(
                    items
                        .into_iter()
                        .filter(|i| i.subscription.has_to())
                        .filter_map(|i| Jid::new(&i.jid).ok())
                        .filter(|j| server.is_local(j) && j.local().is_some()),
                ),
                Err(e) => tracing::error!(error = %e, "reading a roster for PEP failed"),
            }
        }
        let to = [jid.to_string()];
        for account in accounts {
            for event in engine.presence_items(account.as_str()) {
                if !features.wants_notify(&event.node) {
                    continue;
                }
                let cx = Ctx {
                    server: &server,
                    service: &account,
                    from: &jid,
                    profile: Profile::Pep,
                };
                let Some(node) = engine.node(account.as_str(), &event.node) else {
                    continue;
                };
                // Whitelist nodes reach the owner's own resources and affiliates only.
                if node.config.access_model == AccessModel::Whitelist
                    && Engine::affiliation(&cx, &node, bare.as_str()) < Affiliation::Member
                {
                    continue;
                }
                if engine.check_access(&cx, &node, bare.as_str()).await.is_ok() {
                    deliver(&server, &account, &event, &to).await;
                }
            }
        }
    }

    async fn presence(&self, server: &ServerHandle, from: &Jid, stanza: &Element) -> Flow {
        match stanza.attr("type") {
            None => {
                let ver = lithos_caps::Caps::of_presence(stanza).map(|c| c.ver);
                let Some(ver) = ver else {
                    self.seen().remove(from);
                    return Flow::Continue;
                };
                let fresh = self.seen().insert(from.clone(), ver.clone()).as_ref() != Some(&ver);
                if fresh {
                    // Not awaited here: the capabilities may first need the client's answer
                    // to the server's question, which this very stream carries.
                    tokio::spawn(Self::send_last_items(
                        server.clone(),
                        self.engine.clone(),
                        from.clone(),
                    ));
                }
            }
            Some("unavailable") => {
                self.seen().remove(from);
            }
            _ => {}
        }
        Flow::Continue
    }
}

#[async_trait]
impl Module for Pep {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS), IqClaim::account(NS_OWNER)]
    }

    fn account_disco_features(&self) -> Vec<&'static str> {
        FEATURES.to_vec()
    }

    fn account_disco_identities(&self) -> Vec<(&'static str, &'static str)> {
        vec![("pubsub", "pep")]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let owner = req.to.to_bare();
        if owner.local().is_none() {
            return Err(StanzaError::new(DefinedCondition::ServiceUnavailable));
        }
        let cx = Ctx {
            server,
            service: &owner,
            from: &req.from,
            profile: Profile::Pep,
        };
        let (answer, events) = self.engine.handle(&cx, &req).await?;
        self.deliver_all(server, &owner, &events).await;
        Ok(answer)
    }

    async fn started(&self, server: &ServerHandle) {
        // Personal nodes belong to accounts: services with a local part.
        match self
            .engine
            .load(server.storage().db(), |s| s.contains('@'))
            .await
        {
            Ok(n) => tracing::info!(nodes = n, "personal eventing ready"),
            Err(e) => tracing::error!(error = %e, "loading personal eventing nodes failed"),
        }
    }

    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let (server, session, stanza) = cx.parts();
        (stanza.name() == "presence" && stanza.attr("to").is_none())
            .then(|| Box::pin(self.presence(server, &session.jid, stanza)) as _)
    }

    async fn session_closed(&self, _server: &ServerHandle, session: &SessionInfo, _: bool) {
        self.seen().remove(&session.jid);
    }

    async fn account_deleted(&self, _server: &ServerHandle, account: &Jid) {
        self.engine.forget_account(account.bare_str());
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let limits = lithos_pubsub::server::limits(&ctx.section, DEFAULT_LIMITS, |k, _| {
        Err(ModuleError::unknown_key(k))
    })?;
    Ok(Arc::new(Pep {
        engine: Arc::new(Engine::new(limits)),
        seen: Mutex::new(HashMap::new()),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "pep",
    "XEP-0163: every account a publish-subscribe service, notifications by +notify",
    build,
)
// `caps` sorts before `presence`, so it reads a presence before the presence module takes it.
.depends_on(&["roster", "caps"]);
