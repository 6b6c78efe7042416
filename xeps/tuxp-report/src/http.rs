//! The report routes of the HTTP API (`docs/http-api.md`): a thing's latest values and its
//! history, for its owner and the accounts it granted.

use std::collections::HashMap;

use lithos_core::Element;
use lithos_rsm::ResultSet;
use lithos_server::ServerHandle;
use lithos_server::api::{ApiError, ApiUser};
use lithos_server::axum::extract::{Path, Query};
use lithos_server::axum::routing::get;
use lithos_server::axum::{Extension, Json, Router};
use lithos_server::serde_json::{Map, Value, json};
use lithos_tuxp_things::{Registry, ThingRecord};

use crate::Item;
use crate::store::{MAX_PAGE, ReportStore};

/// The routes, on `store`.
pub(crate) fn routes(store: ReportStore) -> Router {
    let s2 = store.clone();
    Router::new()
        .route(
            "/api/things/{name}/latest",
            get(move |user, server, name| latest(store.clone(), user, server, name)),
        )
        .route(
            "/api/things/{name}/history",
            get(move |user, server, name, q| history(s2.clone(), user, server, name, q)),
        )
}

/// The thing `name`, if `user` owns it or was granted it (others: 404, as for no thing).
async fn thing_of(
    server: &ServerHandle,
    user: &ApiUser,
    name: &str,
) -> Result<ThingRecord, ApiError> {
    let registry = Registry::of(server);
    let missing = || ApiError::not_found("no such thing among yours");
    let thing = registry
        .by_name(name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(missing)?;
    if registry
        .may_execute(&thing, &user.account)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(thing)
    } else {
        Err(missing())
    }
}

/// A data element as JSON: its namespace, name, attributes and text.
pub(crate) fn data_json(el: &Element) -> Value {
    let attrs: Map<String, Value> = el
        .attrs()
        .iter()
        .map(|a| (a.name().to_string(), Value::String(a.value().to_string())))
        .collect();
    let mut v = json!({ "ns": el.ns(), "name": el.name(), "attributes": attrs });
    let text = el.text();
    if !text.trim().is_empty() {
        v["text"] = Value::String(text);
    }
    v
}

fn item_json(i: &Item) -> Value {
    json!({
        "id": i.id.to_string(),
        "node": i.node,
        "stamp": lithos_core::datetime::format(i.stamp_ms),
        "stamp_ms": i.stamp_ms,
        "data": data_json(&i.data),
    })
}

async fn latest(
    store: ReportStore,
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thing = thing_of(&server, &user, &name).await?;
    let items = store
        .latest(&thing.thing_name)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<Value> = items.iter().map(item_json).collect();
    Ok(Json(json!({ "thing": thing.thing_name, "latest": items })))
}

/// A time from the query: XEP-0082 or milliseconds since the Unix epoch.
fn time_param(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .or_else(|| lithos_core::datetime::parse(v))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{key}: an XEP-0082 time or milliseconds since the epoch"
                ))
            }),
    }
}

async fn history(
    store: ReportStore,
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let thing = thing_of(&server, &user, &name).await?;
    for k in q.keys() {
        if !matches!(
            k.as_str(),
            "node" | "start" | "end" | "max" | "after" | "before"
        ) {
            return Err(ApiError::bad_request(format!("unknown parameter {k}")));
        }
    }
    let max = match q.get("max") {
        None => MAX_PAGE,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| (1..=MAX_PAGE).contains(m))
            .ok_or_else(|| ApiError::bad_request(format!("max: 1 to {MAX_PAGE}")))?,
    };
    let id_param = |k: &str| -> Result<Option<String>, ApiError> {
        match q.get(k) {
            Some(v) if !v.is_empty() && v.parse::<i64>().is_err() => {
                Err(ApiError::bad_request(format!("{k}: an item id")))
            }
            v => Ok(v.cloned()),
        }
    };
    let set = ResultSet {
        max: Some(max),
        after: id_param("after")?,
        before: id_param("before")?,
        ..ResultSet::default()
    };
    let (items, page) = store
        .history(
            &thing.thing_name,
            q.get("node").cloned(),
            time_param(&q, "start")?,
            time_param(&q, "end")?,
            Some(set),
        )
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<Value> = items.iter().map(item_json).collect();
    Ok(Json(json!({
        "thing": thing.thing_name,
        "items": items,
        "count": page.count,
        "first": page.first.map(|f| f.0),
        "last": page.last,
    })))
}
