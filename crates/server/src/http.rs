//! The HTTP listener (`[http]`), on axum: `/health` for liveness checks and `/metrics` in
//! the Prometheus text format (OpenMetrics). Served by the server's own runtime; stopped
//! with it.

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

/// Serves HTTP on `listener` until the server shuts down.
pub(crate) async fn serve(server: ServerHandle, listener: TcpListener) {
    let mut stop = server.shutdown_signal();
    let app = router(server);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the HTTP listener failed");
    }
}
