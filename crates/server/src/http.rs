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

/// The routes: the kernel's, then the API routes of every running module.
pub(crate) fn router(server: ServerHandle) -> Router {
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/xmpp-websocket", get(crate::websocket::upgrade))
        .route("/.well-known/host-meta", get(host_meta))
        .route("/.well-known/host-meta.json", get(host_meta_json))
        .with_state(server.clone())
        .merge(crate::api::routes());
    for module in server.modules().iter() {
        if let Some(routes) = module.http_routes(&server) {
            app = app.merge(routes);
        }
    }
    app.fallback(|| async { crate::api::ApiError::not_found("no such route") })
        .layer(axum::Extension(server))
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

/// The WebSocket endpoint's URL, as the client reached this listener (its `Host`), `wss`
/// over HTTPS.
fn websocket_url(headers: &axum::http::HeaderMap, secure: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if secure { "wss" } else { "ws" };
    format!("{scheme}://{host}/xmpp-websocket")
}

/// XEP-0156: where the WebSocket endpoint is (XRD).
async fn host_meta(
    headers: axum::http::HeaderMap,
    secure: Option<axum::Extension<Secure>>,
) -> impl IntoResponse {
    let body = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  \
         <Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"{}\"/>\n</XRD>\n",
        websocket_url(&headers, secure.is_some())
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
async fn host_meta_json(
    headers: axum::http::HeaderMap,
    secure: Option<axum::Extension<Secure>>,
) -> impl IntoResponse {
    let body = format!(
        "{{\"links\":[{{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"{}\"}}]}}\n",
        websocket_url(&headers, secure.is_some())
    );
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
}

/// Whether the connection a request came on is HTTPS (an extension the HTTPS listener sets
/// per connection; absent on plain HTTP).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secure;

/// Whether a request counts as encrypted: it came over HTTPS, or from a loopback address
/// while `[http] loopback_is_secure` holds.
pub(crate) fn counts_as_secure(
    server: &ServerHandle,
    https: bool,
    peer: Option<std::net::IpAddr>,
) -> bool {
    https || (server.config().http.loopback_is_secure && peer.is_some_and(|ip| ip.is_loopback()))
}

/// Serves HTTPS on `listener` until the server shuts down: TLS with the server's certificate
/// (ALPN `http/1.1`), then hyper's HTTP/1.1 with upgrades (WebSockets) for the same routes.
pub(crate) async fn serve_tls(server: ServerHandle, listener: TcpListener) {
    let Some(base) = server.0.tls.clone() else {
        tracing::error!("[http] tls is set, but the server has no TLS configuration");
        return;
    };
    let mut cfg = (*base).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let app = router(server.clone());
    let handshake = std::time::Duration::from_secs(server.config().c2s.negotiation_timeout_secs);
    let stop = server.shutdown_signal();
    crate::server::accept_until_shutdown(&server, listener, |tcp, peer, conns| {
        let (acceptor, app, mut stop) = (acceptor.clone(), app.clone(), stop.clone());
        conns.spawn(async move {
            let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                _ => return,
            };
            let svc = app
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
                .layer(axum::Extension(Secure));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    hyper_util::rt::TokioIo::new(tls),
                    hyper_util::service::TowerToHyperService::new(svc),
                )
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "HTTPS connection ended");
                    }
                }
                _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
        });
    })
    .await;
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
