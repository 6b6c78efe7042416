//! `POST /api/things/{name}/commands` (`docs/http-api.md`): an execution sent for an API
//! caller, with the same checks as one an XMPP client sends, answered with how it ended:
//! executed (and in how many milliseconds), the thing's or the server's stanza error, or a
//! timeout. The execution carries its deadline (`expires`), so a thing that gets it late
//! never runs it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lithos_core::stanza::StanzaError;
use lithos_core::{Element, Jid, Payload};
use lithos_server::ServerHandle;
use lithos_server::api::{ApiError, ApiUser};
use lithos_server::axum::extract::Path;
use lithos_server::axum::http::StatusCode;
use lithos_server::axum::response::{IntoResponse, Response};
use lithos_server::axum::routing::post;
use lithos_server::axum::{Extension, Json, Router};
use lithos_server::serde_json::{Value, json};
use lithos_server::session::Delivery;
use tokio::sync::oneshot;

use crate::{Execution, NS, now_ms};

/// The resource API executions come from (`<account>@<domain>/lithos-api`).
pub const API_RESOURCE: &str = "lithos-api";

/// Commands the API waits for at once, in all. Beyond: `503`.
pub const MAX_IN_FLIGHT: usize = 1_024;

/// The default and largest deadline of a command, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The largest deadline a caller may ask for.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The iq ids of API commands start with this.
pub(crate) const ID_PREFIX: &str = "lithos-api-";

/// API commands waiting for the thing's answer, by iq id: whom it went to, and who waits.
#[derive(Default)]
pub(crate) struct Waiting {
    map: Mutex<HashMap<String, (Jid, oneshot::Sender<Element>)>>,
    next: std::sync::atomic::AtomicU64,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Jid, oneshot::Sender<Element>)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the answer `stanza` from `from` to the command waiting for it; `false` if none
    /// waits (late, or not an API command's).
    pub(crate) fn answered(&self, from: &Jid, stanza: &Element) -> bool {
        let Some(id) = stanza.attr("id").filter(|i| i.starts_with(ID_PREFIX)) else {
            return false;
        };
        let mut map = self.lock();
        match map.get(id) {
            Some((to, _)) if to == from => {}
            _ => return false,
        }
        if let Some((_, tx)) = map.remove(id) {
            let _ = tx.send(stanza.clone());
        }
        true
    }
}

/// The route.
pub(crate) fn routes() -> Router {
    Router::new().route("/api/things/{name}/commands", post(command))
}

fn outcome(status: StatusCode, v: Value) -> Response {
    (status, Json(v)).into_response()
}

fn refused(e: &StanzaError) -> Value {
    json!({
        "outcome": "error",
        "condition": e.condition.as_str(),
        "text": e.text.as_ref().map(|t| t.1.to_string()),
    })
}

async fn command(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(name): Path<String>,
    body: Result<Json<Value>, lithos_server::axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("action: the action's element name"))?;
    let ns = body.get("ns").and_then(Value::as_str);
    let timeout_ms = match body.get("timeout_ms") {
        None => DEFAULT_TIMEOUT_MS,
        Some(v) => v
            .as_u64()
            .filter(|t| (1..=MAX_TIMEOUT_MS).contains(t))
            .ok_or_else(|| ApiError::bad_request(format!("timeout_ms: 1 to {MAX_TIMEOUT_MS}")))?,
    };
    let attrs = match body.get("attributes") {
        None => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(ApiError::bad_request(format!(
                    "attributes.{k}: a string, number or boolean"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("attributes: an object")),
    };
    let to = Jid::from_parts(Some(&name), server.domain().domain(), None)
        .map_err(|e| ApiError::bad_request(format!("thing {name:?}: {e}")))?;
    // The action's namespace: given, or the one the thing's model declares for the name.
    let ns = match ns {
        Some(ns) => ns.to_string(),
        None => {
            let thing = lithos_tuxp_things::Registry::of(&server)
                .by_name(to.local().unwrap_or_default())
                .await
                .map_err(ApiError::internal)?;
            let model = thing.and_then(|t| lithos_tuxp_things::model(&t.model));
            let found: Vec<&str> = model
                .map(|m| {
                    m.actions
                        .iter()
                        .filter(|p| p.name == action)
                        .map(|p| p.ns)
                        .collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [one] => one.to_string(),
                [] => NS.to_string(), // the checks answer (no such thing, or unsupported)
                _ => {
                    return Err(ApiError::bad_request(
                        "the model declares that action in several namespaces: give ns",
                    ));
                }
            }
        }
    };
    let mut act = Element::bare(action.to_string(), ns);
    for (k, v) in attrs {
        act.set_attr(k, v);
    }
    let mut exec = Execution::new(act);
    exec.expires_ms = Some(now_ms().saturating_add(timeout_ms as i64));
    let waiting = server.shared::<Waiting>();
    let id = format!(
        "{ID_PREFIX}{}",
        waiting
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let from = Jid::from_parts(
        Some(&user.account),
        server.domain().domain(),
        Some(API_RESOURCE),
    )
    .map_err(ApiError::internal)?;
    let iq = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
        .attr("type", "set")
        .attr("id", id.clone())
        .attr("from", from.as_str())
        .attr("to", to.as_str())
        .child(exec.into_element())
        .build();
    let started = Instant::now();
    let target = match crate::server::check(&server, &from, &iq, &to).await {
        Ok(t) => t,
        Err(e) => {
            crate::server::count(&server, e.condition.as_str());
            return Ok(outcome(StatusCode::OK, refused(&e)));
        }
    };
    let rx = {
        let mut map = waiting.lock();
        if map.len() >= MAX_IN_FLIGHT {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{MAX_IN_FLIGHT} API commands are waiting for their things; retry"),
            ));
        }
        let (tx, rx) = oneshot::channel();
        map.insert(id.clone(), (target.clone(), tx));
        rx
    };
    let iq = {
        let mut iq = iq;
        iq.set_attr("to", target.as_str());
        iq
    };
    if server.sessions().send(&target, iq) != Delivery::Queued {
        waiting.lock().remove(&id);
        crate::server::count(&server, "recipient-unavailable");
        return Ok(outcome(
            StatusCode::OK,
            json!({ "outcome": "error", "condition": "recipient-unavailable",
                    "text": "the thing is offline" }),
        ));
    }
    crate::server::count(&server, "forwarded");
    let answer = tokio::time::timeout(Duration::from_millis(timeout_ms), rx).await;
    let took = started.elapsed();
    let ms = took.as_millis() as u64;
    if matches!(answer, Ok(Ok(_))) {
        server.shared::<crate::server::RoundTrips>().observe(took);
    }
    match answer {
        Ok(Ok(a)) if a.attr("type") == Some("result") => Ok(outcome(
            StatusCode::OK,
            json!({ "outcome": "executed", "ms": ms }),
        )),
        Ok(Ok(a)) => {
            let e = a
                .get_child("error", lithos_core::ns::JABBER_CLIENT.as_ref())
                .and_then(|e| StanzaError::from_element(e).ok())
                .unwrap_or_else(|| {
                    StanzaError::new(lithos_core::stanza::DefinedCondition::UndefinedCondition)
                });
            let mut v = refused(&e);
            v["ms"] = json!(ms);
            Ok(outcome(StatusCode::OK, v))
        }
        _ => {
            waiting.lock().remove(&id);
            Ok(outcome(
                StatusCode::GATEWAY_TIMEOUT,
                json!({ "outcome": "timeout", "ms": ms,
                        "text": "no answer before the deadline; the thing will not run it late" }),
            ))
        }
    }
}
