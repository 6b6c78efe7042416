//! The `ibtr` module: registration before SASL on the things port.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Payload};
use lithos_server::module::internal_error;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::session::Listener;
use lithos_server::storage::StorageError;
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_tuxp_things::{Registry, RegistryError, ThingId, ThingRecord};

use crate::{NS, ThingRegister};

struct Ibtr {
    require_authorization: bool,
}

/// The one answer to every refused registration: whether the id is unknown, malformed,
/// registered, not authorized, or the key is wrong, a stranger learns nothing.
fn refused() -> StanzaError {
    StanzaError::explained(
        DefinedCondition::NotAuthorized,
        "this thing is not authorized to register, or its registration key is wrong",
    )
}

/// Random credentials for a thing: 128 bits, as 32 hex digits.
fn new_credentials() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    b.iter().map(|x| format!("{x:02X}")).collect()
}

impl Ibtr {
    async fn register(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.listener != Listener::Thing {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "things register on the things port",
            ));
        }
        // A set holding one well-formed unregistered thing.
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "registration is a set",
            ));
        }
        let (thing_id, key) = match ThingRegister::from_element(req.payload.clone()) {
            Ok(ThingRegister::Unregistered {
                thing_id,
                registration_key,
            }) => (thing_id, registration_key),
            Ok(ThingRegister::Registered { .. }) => {
                return Err(StanzaError::explained(
                    DefinedCondition::BadRequest,
                    "send an unregistered thing",
                ));
            }
            Err(e) => {
                return Err(StanzaError::explained(
                    DefinedCondition::BadRequest,
                    e.to_string(),
                ));
            }
        };
        let ip = req.peer.map(|p| p.ip());
        if ip.is_some_and(|ip| server.is_banned(ip)) {
            return Err(refused());
        }
        match self.admit(server, &thing_id, &key).await {
            Ok(Some(ok)) => self.complete(server, ok).await,
            Ok(None) => {
                // Counted as a failed authentication of the address: delayed, and past
                // [limits] auth_ban_failures the address is banned.
                if let Some(ip) = ip {
                    tokio::time::sleep(server.authentication_failed(ip)).await;
                }
                Err(refused())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `thing_id` may register with `key`, and as what; `None` for every reason
    /// it may not (logged here, answered alike).
    async fn admit(
        &self,
        server: &ServerHandle,
        thing_id: &str,
        key: &str,
    ) -> Result<Option<Admitted>, StanzaError> {
        let registry = Registry::of(server);
        let Ok(id) = ThingId::parse(thing_id) else {
            tracing::info!(thing = %thing_id, "registration refused: not a thing id of a known model");
            return Ok(None);
        };
        let existing = registry.by_id(thing_id).await.map_err(internal_error)?;
        if existing.as_ref().is_some_and(|t| !t.owner.is_empty()) {
            tracing::info!(thing = %thing_id, "registration refused: already registered");
            return Ok(None);
        }
        // Another thing's account name (ids differing only in case share one), or a person's.
        let name = id.thing_name();
        let name_taken = match registry.by_name(&name).await.map_err(internal_error)? {
            Some(other) => other.thing_id != thing_id,
            None => {
                existing.is_none()
                    && server
                        .storage()
                        .accounts
                        .account_exists(&name)
                        .await
                        .map_err(internal_error)?
            }
        };
        if name_taken {
            tracing::info!(thing = %thing_id, "registration refused: its account name is taken");
            return Ok(None);
        }
        let authorization = registry
            .valid_authorization(thing_id)
            .await
            .map_err(internal_error)?;
        let (owner, authorization) = match authorization {
            Some(a) if a.accepts_key(key) => (a.authorizer.clone(), Some(a.id)),
            Some(_) => {
                tracing::info!(thing = %thing_id, "registration refused: wrong registration key");
                return Ok(None);
            }
            // Open registration (closed test networks only): unowned, and never over a thing
            // registered already.
            None if !self.require_authorization && existing.is_none() => (String::new(), None),
            None => {
                tracing::info!(thing = %thing_id, "registration refused: no valid authorization");
                return Ok(None);
            }
        };
        Ok(Some(Admitted {
            id,
            owner,
            authorization,
            again: existing.is_some(),
        }))
    }

    /// Records the thing (or, for an unowned thing registering again, renews its record) and
    /// gives its account new credentials; answers them.
    async fn complete(&self, server: &ServerHandle, a: Admitted) -> IqResponse {
        let registry = Registry::of(server);
        let credentials = new_credentials();
        let mut security_key = vec![0u8; 16];
        rand::fill(&mut security_key[..]);
        let creds = server
            .derive_credentials(credentials.clone())
            .await
            .map_err(internal_error)?;
        let name = a.id.thing_name();
        let record = ThingRecord {
            thing_id: a.id.to_string(),
            thing_name: name.clone(),
            model: a.id.model().name.to_string(),
            owner: a.owner.clone(),
            registered_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            security_key: security_key.clone(),
        };
        // The record first: it is what can conflict (id or name taken meanwhile), and it is
        // undone alone, without touching any account.
        match registry.register(record, a.authorization).await {
            Ok(()) => {}
            Err(RegistryError::AlreadyRegistered) => return Err(refused()),
            Err(e) => return Err(internal_error(e)),
        }
        let accounts = &server.storage().accounts;
        let account = if a.again {
            // An unowned thing keeps its account (its credentials were revoked): new ones.
            match accounts.set_credentials(&name, &creds).await {
                Err(StorageError::NotFound) => accounts.create_account(&name, &creds).await,
                other => other,
            }
        } else {
            accounts.create_account(&name, &creds).await
        };
        if let Err(e) = account {
            if !a.again {
                let _ = registry.unregister(&a.id.to_string()).await;
            }
            return Err(match e {
                StorageError::AlreadyExists => {
                    tracing::info!(thing = %a.id, "registration refused: an account took the thing's name meanwhile");
                    refused()
                }
                other => internal_error(other),
            });
        }
        if a.again {
            // Sessions of the thing under its old credentials end.
            server.sessions().close_account(
                &format!("{name}@{}", server.domain().domain()),
                &lithos_core::StreamError::new(lithos_core::StreamErrorCondition::NotAuthorized)
                    .with_text("the thing registered again"),
            );
        }
        tracing::info!(thing = %a.id, owner = %a.owner, again = a.again, "thing registered");
        Ok(Some(
            ThingRegister::Registered {
                thing_name: name,
                credentials,
                security_key,
            }
            .into_element(),
        ))
    }
}

/// A registration that may go ahead.
struct Admitted {
    id: ThingId,
    /// The authorizing operator (empty: open registration).
    owner: String,
    /// The authorization to consume.
    authorization: Option<i64>,
    /// The thing is registered already, without an owner: it registers again.
    again: bool,
}

#[async_trait]
impl Module for Ibtr {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::pre_auth(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        self.register(server, req).await
    }

    fn pre_auth_features(&self, listener: Listener) -> Vec<Element> {
        match listener {
            Listener::Thing => vec![Element::bare("register", NS)],
            Listener::Client => Vec::new(),
        }
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut m = Ibtr {
        require_authorization: true,
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "require_authorization" => {
                m.require_authorization = ModuleError::boolean(k, v)?;
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(m))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "ibtr",
    "TUXP in-band thing registration on the things port, after an operator's authorization",
    build,
);
