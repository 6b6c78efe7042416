//! The `ibtr` module: registration before SASL on the things port.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Payload};
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::session::Listener;
use lithos_server::storage::StorageError;
use lithos_server::{
    IqClaim, IqRequest, IqResponse, IqTarget, Module, ModuleRegistration, ServerHandle,
};
use lithos_tuxp_things::{Registry, RegistryError, ThingId, ThingRecord};

use crate::{NS, ThingRegister};

struct Ibtr {
    require_authorization: bool,
}

fn internal(e: impl std::fmt::Display) -> StanzaError {
    tracing::error!(error = %e, "thing registration failed");
    StanzaError::new(DefinedCondition::InternalServerError)
}

impl Ibtr {
    async fn register(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.listener != Listener::Thing {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "things register on the things port",
            ));
        }
        // 1-4: a set holding one well-formed unregistered thing.
        if !req.is_set {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "registration is a set",
            ));
        }
        let (thing_id, _key) = match ThingRegister::from_element(req.payload.clone()) {
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
        let registry = Registry::of(server).map_err(internal)?;
        // 5: not registered yet.
        if registry.by_id(&thing_id).await.map_err(internal)?.is_some() {
            return Err(StanzaError::explained(
                DefinedCondition::Conflict,
                "the thing is already registered",
            ));
        }
        // 6: a valid id of a model this server knows.
        let id = ThingId::parse(&thing_id)
            .map_err(|e| StanzaError::explained(DefinedCondition::NotAcceptable, e.to_string()))?;
        // 7: an operator authorized it, and the authorization is still pending.
        let owner = match registry
            .valid_authorization(&thing_id)
            .await
            .map_err(internal)?
        {
            Some(a) => a.authorizer,
            None if !self.require_authorization => String::new(),
            None => {
                tracing::info!(thing = %thing_id, peer = ?req.peer, "registration without a valid authorization");
                return Err(StanzaError::explained(
                    DefinedCondition::NotAuthorized,
                    "no operator authorized this thing, or the authorization expired",
                ));
            }
        };
        // 8: credentials (stored as salted keys only), the account, the record.
        let credentials = format!("{:08X}", rand::random::<u32>());
        let mut security_key = vec![0u8; 16];
        rand::fill(&mut security_key[..]);
        let creds = server
            .derive_credentials(credentials.clone())
            .await
            .map_err(internal)?;
        let name = id.thing_name();
        match server
            .storage()
            .accounts
            .create_account(&name, &creds)
            .await
        {
            Ok(()) => {}
            Err(StorageError::AlreadyExists) => {
                return Err(StanzaError::explained(
                    DefinedCondition::Conflict,
                    "the thing's name is taken",
                ));
            }
            Err(e) => return Err(internal(e)),
        }
        let record = ThingRecord {
            thing_id: thing_id.clone(),
            thing_name: name.clone(),
            model: id.model().name.to_string(),
            owner: owner.clone(),
            registered_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            security_key: security_key.clone(),
        };
        if let Err(e) = registry.register(record).await {
            // Undo the account, so that a retry can succeed.
            let _ = server.storage().accounts.delete_account(&name).await;
            return Err(match e {
                RegistryError::AlreadyRegistered => StanzaError::explained(
                    DefinedCondition::Conflict,
                    "the thing is already registered",
                ),
                other => internal(other),
            });
        }
        tracing::info!(thing = %thing_id, %owner, "thing registered");
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

#[async_trait]
impl Module for Ibtr {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim {
            ns: NS,
            target: IqTarget::PreAuth,
        }]
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
                m.require_authorization = v.as_bool().ok_or_else(|| {
                    ModuleError("require_authorization must be true or false".into())
                })?;
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(m))
}

lithos_server::inventory::submit! {
    ModuleRegistration {
        name: "ibtr",
        description: "TUXP in-band thing registration on the things port, after an operator's authorization",
        depends_on: &[],
        enabled_by_default: true,
        build,
    }
}

#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(_) -> _);
}
