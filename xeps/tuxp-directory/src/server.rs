//! The `directory` module: an account's things over XMPP (`<things/>`, `<watch/>`) and the
//! HTTP API (`/api/things`).

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};
use lithos_server::api::{ApiError, ApiUser};
use lithos_server::axum::extract::Path;
use lithos_server::axum::routing::get;
use lithos_server::axum::{Extension, Json, Router};
use lithos_server::module::internal_error;
use lithos_server::serde_json::{Value, json};
use lithos_server::{
    IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle, SessionInfo,
};
use lithos_tuxp_things::Protocol;
use lithos_tuxp_things::{EDGE_RESOURCE, Registry, ThingRecord};

use crate::{MAX_LISTED, NS};

/// The session mark of a watching session.
const WATCH: &str = "directory-watch";

struct Directory;

/// One thing as a list shows it.
struct Entry {
    thing: ThingRecord,
    owned: bool,
    online: bool,
}

impl Entry {
    fn jid(&self, server: &ServerHandle) -> String {
        format!("{}@{}", self.thing.thing_name, server.domain().domain())
    }

    fn model(&self) -> Option<&'static lithos_tuxp_things::ThingModel> {
        lithos_tuxp_things::model(&self.thing.model)
    }

    fn element(&self, server: &ServerHandle) -> Element {
        let mut el = Element::builder("thing", NS)
            .attr("id", self.thing.thing_id.clone())
            .attr("name", self.thing.thing_name.clone())
            .attr("jid", self.jid(server))
            .attr("model", self.thing.model.clone())
            .attr("online", bool_str(self.online))
            .attr("owned", bool_str(self.owned))
            .build();
        if let Some(m) = self.model() {
            for (kind, list) in [("action", m.actions), ("event", m.events), ("data", m.data)] {
                for p in list {
                    el.append_child(
                        Element::builder(kind, NS)
                            .attr("ns", p.ns)
                            .attr("name", p.name)
                            .build(),
                    );
                }
            }
        }
        el
    }

    fn json(&self, server: &ServerHandle) -> Value {
        let list = |l: &[Protocol]| -> Vec<Value> {
            l.iter()
                .map(|p| json!({ "ns": p.ns, "name": p.name }))
                .collect()
        };
        let m = self.model();
        json!({
            "id": self.thing.thing_id,
            "name": self.thing.thing_name,
            "jid": self.jid(server),
            "model": self.thing.model,
            "owned": self.owned,
            "online": self.online,
            "actions": m.map(|m| list(m.actions)).unwrap_or_default(),
            "events": m.map(|m| list(m.events)).unwrap_or_default(),
            "data": m.map(|m| list(m.data)).unwrap_or_default(),
        })
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Whether the thing named `name` has its edge session.
fn online(server: &ServerHandle, name: &str) -> bool {
    Jid::from_parts(Some(name), server.domain().domain(), Some(EDGE_RESOURCE))
        .is_ok_and(|j| server.sessions().get(&j).is_some())
}

/// The things `account` commands, the first [`MAX_LISTED`] by name.
async fn entries(server: &ServerHandle, account: &str) -> Result<Vec<Entry>, StanzaError> {
    let list = Registry::of(server)
        .commanded_by(account)
        .await
        .map_err(internal_error)?;
    Ok(list
        .into_iter()
        .take(MAX_LISTED)
        .map(|(thing, owned)| {
            let online = online(server, &thing.thing_name);
            Entry {
                thing,
                owned,
                online,
            }
        })
        .collect())
}

impl Directory {
    /// Tells the watching sessions of the thing's commanders its state now.
    async fn changed(server: &ServerHandle, session: &SessionInfo) {
        if session.jid.resource() != Some(EDGE_RESOURCE) {
            return;
        }
        let Some(name) = session.jid.local() else {
            return;
        };
        let registry = Registry::of(server);
        let thing = match registry.by_name(name).await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "thing state not sent: the registry failed");
                return;
            }
        };
        let commanders = match registry.commanders(&thing.thing_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "thing state not sent: the registry failed");
                return;
            }
        };
        let domain = server.domain().domain();
        let bare = session.jid.bare_str();
        for account in commanders {
            let owner = format!("{account}@{domain}");
            for watcher in server.sessions().marked(&owner, WATCH) {
                let state = Element::builder("thing-state", NS)
                    .attr("id", thing.thing_id.clone())
                    .attr("online", bool_str(online(server, name)))
                    .build();
                let msg = Element::builder("message", lithos_core::ns::JABBER_CLIENT)
                    .attr("from", bare)
                    .attr("to", watcher.jid.as_str())
                    .attr("type", "headline")
                    .child(state)
                    .build();
                server.sessions().send_to_id(&watcher, msg);
            }
        }
    }
}

#[async_trait]
impl Module for Directory {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let (Some(session), Some(account)) = (req.session.as_ref(), req.from.local()) else {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        };
        let p = &req.payload;
        match (req.is_set, p.name()) {
            (false, "things") => {}
            (true, "watch") => server.sessions().mark(session, WATCH),
            (true, "unwatch") => {
                server.sessions().unmark(session, WATCH);
                return Ok(None);
            }
            _ => {
                return Err(StanzaError::explained(
                    DefinedCondition::BadRequest,
                    "expected <things/> (get), <watch/> or <unwatch/> (set)",
                ));
            }
        }
        let mut answer = Element::bare("things", NS);
        for e in entries(server, account).await? {
            answer.append_child(e.element(server));
        }
        Ok(Some(answer))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn session_bound(&self, server: &ServerHandle, session: &SessionInfo) {
        Self::changed(server, session).await;
    }

    async fn session_closed(&self, server: &ServerHandle, session: &SessionInfo, _: bool) {
        Self::changed(server, session).await;
    }

    fn http_routes(&self, _server: &ServerHandle) -> Option<Router> {
        Some(
            Router::new()
                .route("/api/things", get(api_things))
                .route("/api/things/{name}", get(api_thing)),
        )
    }
}

fn api_error(e: StanzaError) -> ApiError {
    ApiError::internal(e)
}

async fn api_things(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
) -> Result<Json<Value>, ApiError> {
    let list = entries(&server, &user.account).await.map_err(api_error)?;
    let things: Vec<Value> = list.iter().map(|e| e.json(&server)).collect();
    Ok(Json(json!({ "things": things })))
}

async fn api_thing(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let registry = Registry::of(&server);
    let thing = registry.by_name(&name).await.map_err(ApiError::internal)?;
    // Someone else's thing is as absent as no thing: the API does not tell which exist.
    let Some(thing) = thing else {
        return Err(ApiError::not_found("no such thing among yours"));
    };
    if !registry
        .may_execute(&thing, &user.account)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found("no such thing among yours"));
    }
    let online = online(&server, &thing.thing_name);
    let owned = thing.owner == user.account;
    Ok(Json(
        Entry {
            thing,
            owned,
            online,
        }
        .json(&server),
    ))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "directory",
    "An account's things, their models and online state, live (and /api/things)",
    |ctx| ctx.no_settings(Directory),
);
