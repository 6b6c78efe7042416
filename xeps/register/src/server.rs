//! The `register` module: XEP-0077 for the server's own accounts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};
use lithos_server::module::internal_error;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::sasl::Credentials;
use lithos_server::session::Listener;
use lithos_server::storage::StorageError;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};

use crate::{NS, NS_FEATURE, Request, RequestError};

/// What the configuration allows.
#[derive(Debug, Clone)]
struct Settings {
    allow_registration: bool,
    allow_password_change: bool,
    allow_removal: bool,
    min_between: Duration,
    min_password_length: usize,
    instructions: String,
}

struct Register {
    settings: Settings,
    /// When each address last created an account.
    last_by_addr: Mutex<HashMap<IpAddr, Instant>>,
}

/// A result whose error (a stanza error, which is large) is boxed.
type IqResult<T> = Result<T, Box<StanzaError>>;

/// An address's turn to create an account, given back when dropped unless kept.
struct Turn<'a> {
    map: &'a Mutex<HashMap<IpAddr, Instant>>,
    ip: Option<IpAddr>,
    kept: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let (Some(ip), false) = (self.ip, self.kept) {
            lock(self.map).remove(&ip);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Register {
    /// Why `password` is not acceptable, if it is not.
    fn weak_password(&self, password: &str) -> Option<String> {
        if password.is_empty() {
            return Some("the password is empty".into());
        }
        let min = self.settings.min_password_length;
        (password.chars().count() < min)
            .then(|| format!("the password must have at least {min} characters"))
    }

    /// Salted keys for `password`, computed off the async threads (PBKDF2 is slow on purpose).
    async fn credentials(server: &ServerHandle, password: String) -> IqResult<Credentials> {
        server.derive_credentials(password).await.map_err(|e| {
            Box::new(StanzaError::explained(
                DefinedCondition::NotAcceptable,
                e.to_string(),
            ))
        })
    }

    /// An unauthenticated client asks for the form or creates an account.
    async fn pre_auth(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.listener != Listener::Client {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "accounts are registered on the client port",
            ));
        }
        if !req.is_set {
            return Ok(Some(crate::form(&self.settings.instructions)));
        }
        let (username, password) = match Request::parse(&req.payload) {
            Ok(Request::Register { username, password }) => (username, password),
            Ok(Request::Remove) => {
                return Err(StanzaError::explained(
                    DefinedCondition::UnexpectedRequest,
                    "authenticate before removing an account",
                ));
            }
            Err(RequestError::MissingField(_)) => {
                return Err(StanzaError::explained(
                    DefinedCondition::NotAcceptable,
                    "a user name and a password are required",
                ));
            }
            Err(e) => {
                return Err(StanzaError::explained(
                    DefinedCondition::BadRequest,
                    e.to_string(),
                ));
            }
        };
        let account = Jid::from_parts(Some(&username), server.domain().domain(), None)
            .ok()
            .and_then(|j| j.local().map(str::to_string))
            .ok_or_else(|| {
                StanzaError::explained(
                    DefinedCondition::NotAcceptable,
                    "the user name is not a valid JID local part",
                )
            })?;
        if let Some(why) = self.weak_password(&password) {
            return Err(StanzaError::explained(DefinedCondition::NotAcceptable, why));
        }
        // The address's turn is taken here, under the lock, before anything is awaited:
        // parallel requests from one address cannot all pass. A request that fails gives
        // the turn back.
        let mut turn = Turn {
            map: &self.last_by_addr,
            ip: None,
            kept: false,
        };
        if let Some(ip) = req.peer.map(|p| p.ip()) {
            let mut last = lock(&self.last_by_addr);
            last.retain(|_, t| t.elapsed() < self.settings.min_between);
            if last.contains_key(&ip) {
                return Err(StanzaError::explained(
                    DefinedCondition::ResourceConstraint,
                    "an account was created from this address a short while ago; try again later",
                ));
            }
            last.insert(ip, Instant::now());
            turn.ip = Some(ip);
        }
        let accounts = &server.storage().accounts;
        if accounts
            .account_exists(&account)
            .await
            .map_err(internal_error)?
        {
            return Err(StanzaError::explained(
                DefinedCondition::Conflict,
                "the user name is taken",
            ));
        }
        let creds = Self::credentials(server, password).await.map_err(|e| *e)?;
        match accounts.create_account(&account, &creds).await {
            Ok(()) => {}
            Err(StorageError::AlreadyExists) => {
                return Err(StanzaError::explained(
                    DefinedCondition::Conflict,
                    "the user name is taken",
                ));
            }
            Err(e) => return Err(internal_error(e)),
        }
        turn.kept = true;
        tracing::info!(account = %account, peer = ?req.peer, "account registered in-band");
        Ok(None)
    }

    /// An authenticated user reads their registration, changes the password, or removes the
    /// account.
    async fn registered(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let Some(session) = req.session.as_ref() else {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        };
        // Only the account itself: `to` is absent, the domain, or the sender's own bare JID.
        let own = req.from.to_bare();
        if req.to.local().is_some() && !req.to.bare_eq(&own) {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        }
        let Some(user) = own.local().map(str::to_string) else {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        };
        if !req.is_set {
            return Ok(Some(crate::registered(&user)));
        }
        match Request::parse(&req.payload) {
            Ok(Request::Remove) => {
                if !self.settings.allow_removal {
                    return Err(StanzaError::explained(
                        DefinedCondition::NotAllowed,
                        "accounts are not removed in-band here",
                    ));
                }
                // XEP-0077 §3.2: the result, then every session of the account ends
                // (delete_account asks them to write what is queued first).
                match server.delete_account(&own).await {
                    Ok(()) | Err(StorageError::NotFound) => {}
                    Err(e) => return Err(internal_error(e)),
                }
                tracing::info!(account = %own, "account removed in-band");
                Ok(None)
            }
            Ok(Request::Register { username, password }) => {
                if !self.settings.allow_password_change {
                    return Err(StanzaError::explained(
                        DefinedCondition::NotAllowed,
                        "passwords are not changed in-band here",
                    ));
                }
                if !session.tls && server.config().c2s.require_tls {
                    return Err(StanzaError::explained(
                        DefinedCondition::NotAuthorized,
                        "passwords are changed only over TLS",
                    ));
                }
                let same = Jid::from_parts(Some(&username), server.domain().domain(), None)
                    .is_ok_and(|j| j.local() == Some(user.as_str()));
                if !same {
                    return Err(StanzaError::explained(
                        DefinedCondition::NotAllowed,
                        "a user changes only their own password",
                    ));
                }
                if let Some(why) = self.weak_password(&password) {
                    return Err(StanzaError::explained(DefinedCondition::NotAcceptable, why));
                }
                let creds = Self::credentials(server, password).await.map_err(|e| *e)?;
                server
                    .storage()
                    .accounts
                    .set_credentials(&user, &creds)
                    .await
                    .map_err(internal_error)?;
                tracing::info!(account = %own, "password changed in-band");
                Ok(None)
            }
            Err(RequestError::MissingField(_)) => Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "a user name and a password are required",
            )),
            Err(e) => Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                e.to_string(),
            )),
        }
    }
}

#[async_trait]
impl Module for Register {
    fn iq_claims(&self) -> Vec<IqClaim> {
        let mut v = vec![IqClaim::server(NS), IqClaim::account(NS)];
        if self.settings.allow_registration {
            v.push(IqClaim::pre_auth(NS));
        }
        v
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.session.is_none() && req.peer.is_some() {
            self.pre_auth(server, req).await
        } else {
            self.registered(server, req).await
        }
    }

    fn pre_auth_features(&self, listener: Listener) -> Vec<Element> {
        // Accounts for people; things register on their own listener (IBTR).
        if self.settings.allow_registration && listener == Listener::Client {
            vec![Element::bare("register", NS_FEATURE)]
        } else {
            Vec::new()
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut s = Settings {
        allow_registration: true,
        allow_password_change: true,
        allow_removal: true,
        min_between: Duration::from_secs(300),
        min_password_length: 8,
        instructions: "Choose a user name and a password.".to_string(),
    };
    let boolean = ModuleError::boolean;
    let count = |k: &str, v: &lithos_server::toml::Value| ModuleError::integer(k, v, 0);
    for (k, v) in &ctx.section {
        match k.as_str() {
            "allow_registration" => s.allow_registration = boolean(k, v)?,
            "allow_password_change" => s.allow_password_change = boolean(k, v)?,
            "allow_removal" => s.allow_removal = boolean(k, v)?,
            "min_seconds_between" => s.min_between = Duration::from_secs(count(k, v)?),
            "min_password_length" => s.min_password_length = count(k, v)? as usize,
            "instructions" => {
                s.instructions = v
                    .as_str()
                    .ok_or_else(|| ModuleError::new("instructions must be a string"))?
                    .to_string();
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(Register {
        settings: s,
        last_by_addr: Mutex::new(HashMap::new()),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "register",
    "XEP-0077: in-band account creation, password change and removal (off by default)",
    build,
)
.disabled_by_default();
