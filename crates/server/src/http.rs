//! The HTTP listener (`[http]`), on axum: `/health` for liveness checks, `/metrics` in the
//! Prometheus text format (OpenMetrics), XMPP over WebSocket at `/xmpp-websocket`
//! (RFC 7395, [`crate::websocket`]) and its discovery (XEP-0156 `host-meta`). Served by the
//! server's own runtime; stopped with it.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::ServerHandle;

/// The content type of the OpenMetrics text exposition `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes.
pub(crate) fn router(server: ServerHandle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/xmpp-websocket", get(crate::websocket::upgrade))
        .route("/.well-known/host-meta", get(host_meta))
        .route("/.well-known/host-meta.json", get(host_meta_json))
        .with_state(server)
}

/// `200` with a few figures while the server runs, `503` once it is shutting down.
async fn health(State(server): State<ServerHandle>) -> impl IntoResponse {
    let stopping = *server.shutdown_signal().borrow();
    let counts = server.connection_counts();
    let body = format!(
        "{{\"status\":\"{}\",\"connections\":{},\"sessions\":{}}}\n",
        if stopping { "stopping" } else { "ok" },
        counts.open,
        server.sessions().count()
    );
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(State(server): State<ServerHandle>) -> impl IntoResponse {
    let body = server.metrics().encode(&server);
    ([(header::CONTENT_TYPE, OPENMETRICS)], body)
}

/// The WebSocket endpoint's URL, as the client reached this listener (its `Host`).
fn websocket_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("ws://{host}/xmpp-websocket")
}

/// XEP-0156: where the WebSocket endpoint is (XRD).
async fn host_meta(headers: axum::http::HeaderMap) -> impl IntoResponse {
    let body = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  \
         <Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"{}\"/>\n</XRD>\n",
        websocket_url(&headers)
    );
    (
        [
            (header::CONTENT_TYPE, "application/xrd+xml"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
}

/// XEP-0156: where the WebSocket endpoint is (JRD).
async fn host_meta_json(headers: axum::http::HeaderMap) -> impl IntoResponse {
    let body = format!(
        "{{\"links\":[{{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"{}\"}}]}}\n",
        websocket_url(&headers)
    );
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
}

/// Serves HTTP on `listener` until the server shuts down.
pub(crate) async fn serve(server: ServerHandle, listener: TcpListener) {
    let mut stop = server.shutdown_signal();
    let app = router(server);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the HTTP listener failed");
    }
}
