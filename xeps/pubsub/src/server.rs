//! The `pubsub` module: a publish-subscribe service on its own domain (`pubsub.<domain>`).

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};
use lithos_server::module::{IqRequest, ModuleContext, ModuleError};
use lithos_server::session::Listener;
use lithos_server::{Module, ModuleRegistration, ServerHandle};

use crate::engine::{Ctx, Engine, Limits, Profile, deliver};
use crate::{NS, NS_OWNER};

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The features the service advertises (XEP-0060 §10).
pub const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#rsm",
];

/// Reads the engine's bounds from a module's settings; other keys go to `other`.
pub fn limits(
    section: &lithos_server::toml::Table,
    mut limits: Limits,
    mut other: impl FnMut(&str, &lithos_server::toml::Value) -> Result<(), ModuleError>,
) -> Result<Limits, ModuleError> {
    for (k, v) in section {
        match k.as_str() {
            "max_nodes" => limits.max_nodes = ModuleError::integer(k, v, 1)? as usize,
            "max_items" => limits.max_items = ModuleError::integer(k, v, 1)? as usize,
            "max_payload_bytes" => {
                limits.max_payload_bytes = ModuleError::integer(k, v, 64)? as usize
            }
            "max_subscriptions" => {
                limits.max_subscriptions = ModuleError::integer(k, v, 1)? as usize
            }
            "max_retrieve" => limits.max_retrieve = ModuleError::integer(k, v, 1)? as usize,
            _ => other(k, v)?,
        }
    }
    Ok(limits)
}

struct PubsubService {
    domain: Jid,
    engine: Arc<Engine>,
}

/// The running service, for other modules ([`publish_as`]).
#[derive(Default)]
struct Running(std::sync::OnceLock<(Jid, Arc<Engine>)>);

/// Publishes `payload` to `node` of the server's pubsub service (`pubsub.<domain>`) as
/// `publisher` (a local bare JID), creating the node first when it does not exist: owned by
/// `owner` (a local account), configured by `config` over the defaults, with `publisher` as
/// a publisher. Subscribers are notified as for any publication. `service-unavailable` when
/// the `pubsub` module does not run.
pub async fn publish_as(
    server: &ServerHandle,
    owner: &Jid,
    publisher: &Jid,
    node: &str,
    payload: Element,
    config: Option<&lithos_xdata::Form>,
) -> Result<(), StanzaError> {
    let running = server.shared::<Running>();
    let Some((domain, engine)) = running.0.get() else {
        return Err(StanzaError::explained(
            DefinedCondition::ServiceUnavailable,
            "the pubsub module does not run",
        ));
    };
    let as_owner = Ctx {
        server,
        service: domain,
        from: owner,
        profile: Profile::Service,
    };
    engine
        .ensure_node(&as_owner, node, config, &[publisher.to_bare().to_string()])
        .await?;
    let cx = Ctx {
        from: publisher,
        ..as_owner
    };
    let (_, events) = engine
        .publish_item(&cx, node.to_string(), true, Some(payload), None, None)
        .await?;
    for e in &events {
        deliver(server, domain, e, &e.subscribers).await;
    }
    Ok(())
}

impl PubsubService {
    async fn iq(&self, server: &ServerHandle, from: Jid, stanza: Element) {
        let kind = stanza.attr("type").unwrap_or_default();
        if !matches!(kind, "get" | "set") {
            return;
        }
        let Some(payload) = stanza.children().next().cloned() else {
            return server
                .bounce(
                    &stanza,
                    StanzaError::explained(DefinedCondition::BadRequest, "an empty request"),
                )
                .await;
        };
        let cx = Ctx {
            server,
            service: &self.domain,
            from: &from,
            profile: Profile::Service,
        };
        let answer = match (kind, payload.name(), payload.ns()) {
            ("get", "query", DISCO_INFO) => match payload.attr("node") {
                Some(node) => self.engine.node_info(&cx, node).map(Some),
                None => Ok(Some(service_info())),
            },
            ("get", "query", DISCO_ITEMS) => match payload.attr("node") {
                Some(node) => self.engine.node_items(&cx, node).await.map(Some),
                None => {
                    let mut names = self.engine.node_names(self.domain.as_str());
                    names.sort();
                    let mut q = Element::bare("query", DISCO_ITEMS);
                    for n in names {
                        q.append_child(
                            Element::builder("item", DISCO_ITEMS)
                                .attr("jid", self.domain.to_string())
                                .attr("node", n)
                                .build(),
                        );
                    }
                    Ok(Some(q))
                }
            },
            (_, "pubsub", NS | NS_OWNER) => {
                let req = IqRequest {
                    is_set: kind == "set",
                    id: stanza.attr("id").unwrap_or_default().to_string(),
                    from: from.clone(),
                    to: self.domain.clone(),
                    payload,
                    session: None,
                    peer: None,
                    listener: Listener::Client,
                };
                match self.engine.handle(&cx, &req).await {
                    Ok((answer, events)) => {
                        for e in &events {
                            deliver(server, &self.domain, e, &e.subscribers).await;
                        }
                        Ok(answer)
                    }
                    Err(e) => Err(e),
                }
            }
            ("get", "ping", "urn:xmpp:ping") => Ok(None),
            _ => Err(StanzaError::new(DefinedCondition::ServiceUnavailable)),
        };
        server.reply(&stanza, &self.domain, answer).await;
    }
}

fn service_info() -> Element {
    let mut q = Element::builder("query", DISCO_INFO)
        .child(
            Element::builder("identity", DISCO_INFO)
                .attr("category", "pubsub")
                .attr("type", "service")
                .attr("name", "Publish-subscribe")
                .build(),
        )
        .build();
    for f in [DISCO_INFO, DISCO_ITEMS, NS, "urn:xmpp:ping"]
        .iter()
        .chain(FEATURES)
    {
        q.append_child(
            Element::builder("feature", DISCO_INFO)
                .attr("var", *f)
                .build(),
        );
    }
    q
}

#[async_trait]
impl Module for PubsubService {
    async fn started(&self, server: &ServerHandle) {
        let domain = self.domain.to_string();
        match self
            .engine
            .load(server.storage().db(), |s| s == domain)
            .await
        {
            Ok(n) => tracing::info!(nodes = n, domain = %domain, "pubsub service ready"),
            Err(e) => tracing::error!(error = %e, "loading pubsub nodes failed"),
        }
        let _ = server
            .shared::<Running>()
            .0
            .set((self.domain.clone(), self.engine.clone()));
    }

    fn service_domain(&self) -> Option<String> {
        Some(self.domain.to_string())
    }

    async fn service_stanza(&self, server: &ServerHandle, stanza: Element) {
        let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
            return;
        };
        match stanza.name() {
            "iq" => self.iq(server, from, stanza).await,
            // Messages (and presence) to the service are not for it: errors bounce back.
            "message" if stanza.attr("type") != Some("error") => {
                server
                    .bounce(
                        &stanza,
                        StanzaError::new(DefinedCondition::ServiceUnavailable),
                    )
                    .await
            }
            _ => {}
        }
    }

    async fn account_deleted(&self, _server: &ServerHandle, account: &Jid) {
        self.engine.forget_account(account.bare_str());
    }
}

/// The service's default bounds.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_nodes: 10_000,
    max_items: 1_000,
    max_payload_bytes: 65_536,
    max_subscriptions: 10_000,
    max_retrieve: 1_000,
};

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut domain = format!("pubsub.{}", ctx.config.domain.to_ascii_lowercase());
    let limits = limits(&ctx.section, DEFAULT_LIMITS, |k, v| match k {
        "domain" => {
            let d = v.as_str().unwrap_or_default().to_ascii_lowercase();
            if !Jid::new(&d).is_ok_and(|j| j.is_domain()) {
                return Err(ModuleError::new(format!(
                    "domain: {d:?} is not a domain name"
                )));
            }
            domain = d;
            Ok(())
        }
        other => Err(ModuleError::unknown_key(other)),
    })?;
    let domain = Jid::new(&domain).map_err(|e| ModuleError::new(format!("domain: {e}")))?;
    Ok(Arc::new(PubsubService {
        domain,
        engine: Arc::new(Engine::new(limits)),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "pubsub",
    "XEP-0060: a publish-subscribe service on its own domain (pubsub.<domain>)",
    build,
)
.depends_on(&["roster"]);
