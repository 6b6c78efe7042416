//! The HTTP API's kernel half (`/api/...` on the `[http]` listener): who is asking
//! ([`ApiUser`], from an account's password or an API token an administrator issued), JSON
//! errors ([`ApiError`]), and the kernel's own routes (the caller, sessions, accounts,
//! tokens). Modules add theirs with [`crate::Module::http_routes`]; `docs/http-api.md`
//! documents them all.
//!
//! Authentication is HTTP Basic with an account's credentials (checked like SASL PLAIN,
//! against the stored SCRAM keys) or `Authorization: Bearer <token>`. The API answers over
//! HTTPS, or plain HTTP from loopback (`[http] loopback_is_secure`), unless
//! `[http] plain_api = true` (a TLS-terminating proxy elsewhere); a failed
//! password counts toward the address's authentication ban, as on the XMPP listeners.
//! Administrators are the accounts of `[http] admins`.

use std::net::SocketAddr;

use crate::params;
use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::ServerHandle;
use crate::storage::{ModuleSchema, StorageError};

/// The API tokens' table: only a token's SHA-256 is kept.
const SCHEMA: ModuleSchema = ModuleSchema {
    module: "http_api",
    migrations: &["CREATE TABLE http_api_tokens (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL,
        label TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    )"],
    postgres: Some(&["CREATE TABLE http_api_tokens (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL,
        label TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    )"]),
    account_deleted: &["DELETE FROM http_api_tokens WHERE account = ?1"],
};

inventory::submit! { SCHEMA }

/// Tokens an administrator may issue at most, in all. Beyond: `409`.
pub const MAX_TOKENS: i64 = 10_000;

/// Sessions `GET /api/sessions` lists at most (`truncated: true` beyond).
pub const MAX_LISTED_SESSIONS: usize = 10_000;

/// An API error: its status and a JSON body `{"error": <code>, "text": <words>}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short machine-readable code (`unauthorized`, `forbidden`, `not-found`, ...).
    pub error: &'static str,
    /// What went wrong, for a person.
    pub text: String,
}

impl ApiError {
    /// An error with this status, code and text.
    pub fn new(status: StatusCode, error: &'static str, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            text: text.into(),
        }
    }

    /// `400 bad-request`.
    pub fn bad_request(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", text)
    }

    /// `403 forbidden`.
    pub fn forbidden(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", text)
    }

    /// `404 not-found`.
    pub fn not_found(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", text)
    }

    /// `500 internal`, logged; the caller sees no detail.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "HTTP API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; see its log",
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({ "error": self.error, "text": self.text })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"lithos\", Bearer realm=\"lithos\""),
            );
        }
        r
    }
}

/// The account an API request acts as, and whether it is an administrator
/// (`[http] admins`). Extracting it answers `401` without valid credentials, `403` over
/// plain HTTP from elsewhere than loopback unless `[http] plain_api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUser {
    /// The account's name (localpart).
    pub account: String,
    /// Whether the account is one of `[http] admins`.
    pub admin: bool,
}

impl ApiUser {
    /// `Ok` for an administrator, `403` otherwise.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this needs an administrator ([http] admins)",
            ))
        }
    }

    /// The account's bare JID on `server`.
    pub fn bare_jid(&self, server: &ServerHandle) -> String {
        format!("{}@{}", self.account, server.domain().domain())
    }
}

/// The server a request reached (the API router carries it as an extension).
pub fn server_of(parts: &Parts) -> Result<ServerHandle, ApiError> {
    parts
        .extensions
        .get::<ServerHandle>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no server on the API router"))
}

impl<S: Send + Sync> FromRequestParts<S> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ApiUser, ApiError> {
        let server = server_of(parts)?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let https = parts.extensions.get::<crate::http::Secure>().is_some();
        if !crate::http::counts_as_secure(&server, https, peer) && !server.config().http.plain_api {
            return Err(ApiError::forbidden(
                "the API answers over HTTPS ([http] tls = true) or from loopback only, unless [http] plain_api = true",
            ));
        }
        if peer.is_some_and(|ip| server.is_banned(ip)) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "banned",
                "too many failed authentications from this address; try later",
            ));
        }
        let unauthorized =
            |text: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", text.to_string());
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                unauthorized("credentials needed: Basic (account, password) or Bearer (token)")
            })?;
        let account = if let Some(b) = auth.strip_prefix("Basic ") {
            let (user, password) = B64
                .decode(b.trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
                .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            match verify_password(&server, &user, password).await? {
                Some(account) => account,
                None => {
                    if let Some(ip) = peer {
                        server.authentication_failed(ip);
                    }
                    return Err(unauthorized("wrong account or password"));
                }
            }
        } else if let Some(t) = auth.strip_prefix("Bearer ") {
            match token_account(&server, t.trim()).await? {
                Some(account) => account,
                None => {
                    if let Some(ip) = peer {
                        server.authentication_failed(ip);
                    }
                    return Err(unauthorized("unknown or expired token"));
                }
            }
        } else {
            return Err(unauthorized("unsupported authorization scheme"));
        };
        let admin = server.config().http.admins.contains(&account);
        Ok(ApiUser { account, admin })
    }
}

/// The account `user` names (a localpart or a bare JID of this server), if `password` is
/// its password (checked as SASL PLAIN is, unknown names costing the same time).
async fn verify_password(
    server: &ServerHandle,
    user: &str,
    password: String,
) -> Result<Option<String>, ApiError> {
    let local = match user.split_once('@') {
        Some((l, d)) if d == server.domain().domain() => l,
        Some(_) => return Ok(None),
        None => user,
    };
    let Ok(jid) = lithos_core::Jid::from_parts(Some(local), server.domain().domain(), None) else {
        return Ok(None);
    };
    let Some(name) = jid.local().map(str::to_string) else {
        return Ok(None);
    };
    let ok = crate::stream::password_matches(server, &name, password).await?;
    Ok(ok.then_some(name))
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The account a token acts for, if it exists and has not expired.
async fn token_account(server: &ServerHandle, token: &str) -> Result<Option<String>, ApiError> {
    let hash = sha256_hex(token);
    let account = server
        .storage()
        .db()
        .run(move |c| {
            c.query_opt(
                "SELECT account FROM http_api_tokens WHERE token_sha256 = ?1 AND expires_ms > ?2",
                params![hash, lithos_core::datetime::now_ms()],
                |r| r.get::<String>(0),
            )
        })
        .await?;
    Ok(account)
}

/// The kernel's routes, before the modules' are merged in.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/sessions", get(sessions))
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route("/api/accounts/{user}", delete(delete_account))
        .route("/api/tokens", get(list_tokens).post(issue_token))
        .route("/api/tokens/{id}", delete(revoke_token))
}

async fn me(user: ApiUser) -> Json<Value> {
    Json(json!({ "account": user.account, "admin": user.admin }))
}

async fn sessions(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
) -> Result<Json<Value>, ApiError> {
    let list = if user.admin {
        server.sessions().all(MAX_LISTED_SESSIONS + 1)
    } else {
        server.sessions().resources(&user.bare_jid(&server))
    };
    let truncated = list.len() > MAX_LISTED_SESSIONS;
    let sessions: Vec<Value> = list
        .into_iter()
        .take(MAX_LISTED_SESSIONS)
        .map(|(info, presence)| {
            json!({
                "jid": info.jid.as_str(),
                "listener": format!("{:?}", info.listener).to_lowercase(),
                "format": format!("{:?}", info.format).to_lowercase(),
                "tls": info.tls,
                "peer": info.peer.to_string(),
                "available": presence.available,
                "priority": presence.priority,
            })
        })
        .collect();
    Ok(Json(
        json!({ "sessions": sessions, "truncated": truncated }),
    ))
}

async fn list_accounts(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let accounts = server.storage().accounts.list_accounts().await?;
    Ok(Json(json!({ "accounts": accounts })))
}

/// `POST /api/accounts`.
#[derive(Deserialize)]
struct NewAccount {
    user: String,
    password: String,
}

async fn create_account(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    body: Result<Json<NewAccount>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let Json(new) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let jid = lithos_core::Jid::from_parts(Some(&new.user), server.domain().domain(), None)
        .map_err(|e| ApiError::bad_request(format!("user {:?}: {e}", new.user)))?;
    let name = jid.local().unwrap_or_default().to_string();
    let creds = server
        .derive_credentials(new.password)
        .await
        .map_err(|e| ApiError::bad_request(format!("password: {e}")))?;
    match server
        .storage()
        .accounts
        .create_account(&name, &creds)
        .await
    {
        Ok(()) => {
            tracing::info!(account = %name, by = %user.account, "account created over the HTTP API");
            Ok((
                StatusCode::CREATED,
                Json(json!({ "account": name, "jid": jid.as_str() })),
            )
                .into_response())
        }
        Err(StorageError::AlreadyExists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the account exists, or was deleted too recently",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn delete_account(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let jid = lithos_core::Jid::from_parts(Some(&name), server.domain().domain(), None)
        .map_err(|e| ApiError::bad_request(format!("user {name:?}: {e}")))?;
    match server.delete_account(&jid).await {
        Ok(()) => {
            tracing::info!(account = %jid, by = %user.account, "account deleted over the HTTP API");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StorageError::NotFound) => Err(ApiError::not_found("no such account")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/tokens`.
#[derive(Deserialize)]
struct NewToken {
    account: String,
    #[serde(default)]
    label: String,
    #[serde(default = "default_token_days")]
    valid_days: u32,
}

fn default_token_days() -> u32 {
    365
}

async fn issue_token(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let Json(new) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if new.valid_days == 0 || new.valid_days > 3650 {
        return Err(ApiError::bad_request("valid_days must be 1 to 3650"));
    }
    if new.label.len() > 200 {
        return Err(ApiError::bad_request("label: 200 bytes at most"));
    }
    if !server
        .storage()
        .accounts
        .account_exists(&new.account)
        .await?
    {
        return Err(ApiError::not_found("no such account"));
    }
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let token = format!("lithos_{}", B64URL.encode(raw));
    let id = sha256_hex(&token)[..12].to_string();
    let created = lithos_core::datetime::now_ms();
    let expires = created.saturating_add(i64::from(new.valid_days) * 86_400_000);
    let (hash, account, label, tid) = (
        sha256_hex(&token),
        new.account.clone(),
        new.label.clone(),
        id.clone(),
    );
    let stored = server
        .storage()
        .db()
        .run(move |c| {
            let mut tx = c.transaction()?;
            let n: i64 = tx.query_value("SELECT COUNT(*) FROM http_api_tokens", params![])?;
            if n >= MAX_TOKENS {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO http_api_tokens (id, token_sha256, account, label, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tid, hash, account, label, created, expires],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if !stored {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too-many-tokens",
            format!("{MAX_TOKENS} tokens exist; revoke some first"),
        ));
    }
    tracing::info!(token = %id, account = %new.account, by = %user.account, "API token issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "token": token, "account": new.account, "label": new.label,
            "expires_ms": expires,
        })),
    )
        .into_response())
}

async fn list_tokens(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let tokens = server
        .storage()
        .db()
        .run(|c| {
            c.query_map(
                "SELECT id, account, label, created_ms, expires_ms FROM http_api_tokens
                 ORDER BY created_ms, id",
                params![],
                |r| {
                    Ok(json!({
                        "id": r.get::<String>(0)?, "account": r.get::<String>(1)?,
                        "label": r.get::<String>(2)?, "created_ms": r.get::<i64>(3)?,
                        "expires_ms": r.get::<i64>(4)?,
                    }))
                },
            )
        })
        .await?;
    Ok(Json(json!({ "tokens": tokens })))
}

async fn revoke_token(
    user: ApiUser,
    Extension(server): Extension<ServerHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let n = server
        .storage()
        .db()
        .run(move |c| c.execute("DELETE FROM http_api_tokens WHERE id = ?1", params![id]))
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("no such token"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_and_401_names_the_schemes() {
        let r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "no").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let h = r.headers().get(header::WWW_AUTHENTICATE).unwrap();
        assert!(h.to_str().unwrap().contains("Basic"));
        let r = ApiError::forbidden("no").into_response();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn token_hashes_are_hex_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
