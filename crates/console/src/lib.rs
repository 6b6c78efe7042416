//! # lithos-console
//!
//! The web console `lithosd` serves at `/` on its `[http]` listener (module `console`,
//! enabled by default): log in with an XMPP account (over the server's own WebSocket,
//! RFC 7395, with the `@xmpp/client` library), see the account's things and whether they are
//! online, live (`lithos-tuxp-directory`); press one of a thing's actions and see how it
//! ended (*executed in N ms*, the stanza error, or *timeout*); watch each reported value
//! plotted (uPlot), from its history and then live; read notifications as they arrive; as an
//! operator, see the authorizations waiting for their thing and authorize a new thing id.
//!
//! The page's scripts come from npm (`web/package.json` and its lockfile) and are bundled by
//! `build.rs` at build time, then embedded here: nothing third-party is in the repository,
//! and a machine that only runs `lithosd` needs no Node.js.

#![forbid(unsafe_code)]

use std::sync::Arc;

use lithos_server::axum::Router;
use lithos_server::axum::http::header;
use lithos_server::axum::response::{Html, IntoResponse};
use lithos_server::axum::routing::get;
use lithos_server::{Module, ModuleRegistration, ServerHandle};

/// The bundled script (`@xmpp/client`, uPlot and `web/src/main.js`).
pub const SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/console/console.js"));
/// The bundled styles.
pub const STYLES: &str = include_str!(concat!(env!("OUT_DIR"), "/console/console.css"));
/// The page, `{{DOMAIN}}` standing for the served domain.
pub const PAGE: &str = include_str!("../web/index.html");

/// What the page may load and connect to: only this server.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// `<`, `>`, `&`, quotes escaped for HTML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `domain`.
pub fn page(domain: &str) -> String {
    PAGE.replace("{{DOMAIN}}", &escape(domain))
}

struct Console;

#[async_trait::async_trait]
impl Module for Console {
    fn http_routes(&self, server: &ServerHandle) -> Option<Router> {
        let html = Arc::new(page(server.domain().domain()));
        Some(
            Router::new()
                .route(
                    "/",
                    get(move || {
                        let html = html.clone();
                        async move {
                            (
                                [
                                    (header::CONTENT_SECURITY_POLICY, CSP),
                                    (header::CACHE_CONTROL, "no-cache"),
                                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                                ],
                                Html(html.as_str().to_string()),
                            )
                                .into_response()
                        }
                    }),
                )
                .route(
                    "/console/console.js",
                    get(|| async {
                        (
                            [
                                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                                (header::CACHE_CONTROL, "no-cache"),
                            ],
                            SCRIPT,
                        )
                    }),
                )
                .route(
                    "/console/console.css",
                    get(|| async {
                        (
                            [
                                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                                (header::CACHE_CONTROL, "no-cache"),
                            ],
                            STYLES,
                        )
                    }),
                ),
        )
    }
}

/// The module, registered by `extension!`.
const MODULE: ModuleRegistration = ModuleRegistration::new(
    "console",
    "The web console at / on the [http] listener (things, commands, reports, authorizations)",
    |ctx| ctx.no_settings(Console),
);

lithos_core::extension! { server: [MODULE] }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_escaped_into_the_page() {
        let p = page("a<b>&\"c");
        assert!(p.contains("content=\"a&lt;b&gt;&amp;&quot;c\""), "{p}");
        assert!(!p.contains("{{DOMAIN}}"));
    }

    #[test]
    fn the_bundle_is_the_console_not_the_placeholder() {
        // CI builds with npm: a placeholder here means the bundling failed silently.
        if std::env::var_os("LITHOS_CONSOLE_OPTIONAL").is_none() {
            assert!(
                SCRIPT.len() > 20_000,
                "console.js is {} bytes",
                SCRIPT.len()
            );
            assert!(SCRIPT.contains("urn:lithos:tuxp:directory"));
            assert!(STYLES.contains(".uplot"), "uPlot's styles are bundled");
        }
    }
}
