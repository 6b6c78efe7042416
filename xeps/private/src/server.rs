//! The `private` module: each account's fragments, for that account only.

#![cfg(feature = "server")]

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Payload};
use lithos_server::module::{ModuleContext, ModuleError, internal_error};
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};

use crate::store::{PrivateStore, Refused};
use crate::{NS, Query, reserved};

struct Private {
    max_item_bytes: usize,
    max_account_bytes: usize,
}

fn refuse(condition: DefinedCondition, why: &str) -> StanzaError {
    StanzaError::explained(condition, why.to_string())
}

impl Private {
    async fn get(&self, server: &ServerHandle, user: &str, q: Query) -> IqResponse {
        let [wanted] = <[Element; 1]>::try_from(q.fragments).map_err(|_| {
            refuse(
                DefinedCondition::BadRequest,
                "a get names exactly one fragment",
            )
        })?;
        if reserved(wanted.ns()) {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "a reserved namespace",
            ));
        }
        let stored = PrivateStore::of(server)
            .get(user, wanted.ns(), wanted.name())
            .await
            .map_err(internal_error)?;
        let fragment = match stored {
            Some(xml) => Element::parse(&xml).map_err(internal_error)?,
            None => Element::bare(wanted.name().to_string(), wanted.ns().to_string()),
        };
        Ok(Some(
            Query {
                fragments: vec![fragment],
            }
            .into_element(),
        ))
    }

    async fn set(&self, server: &ServerHandle, user: &str, q: Query) -> IqResponse {
        if q.fragments.is_empty() {
            return Err(refuse(DefinedCondition::NotAcceptable, "nothing to store"));
        }
        let mut rows = Vec::with_capacity(q.fragments.len());
        for f in &q.fragments {
            if reserved(f.ns()) {
                return Err(refuse(
                    DefinedCondition::NotAcceptable,
                    "a reserved namespace",
                ));
            }
            let xml = f.to_xml();
            if xml.len() > self.max_item_bytes {
                return Err(refuse(
                    DefinedCondition::NotAcceptable,
                    "the fragment is too large",
                ));
            }
            rows.push((f.ns().to_string(), f.name().to_string(), xml));
        }
        match PrivateStore::of(server)
            .put(user, rows, self.max_account_bytes)
            .await
            .map_err(internal_error)?
        {
            Ok(()) => Ok(None),
            Err(Refused::AccountFull) => Err(refuse(
                DefinedCondition::ResourceConstraint,
                "the account's private storage is full",
            )),
        }
    }
}

#[async_trait]
impl Module for Private {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        // XEP-0049 §2: only the account itself, and `forbidden` is the preferable answer.
        if !req.from.bare_eq(&req.to) {
            return Err(StanzaError::new(DefinedCondition::Forbidden));
        }
        let Some(user) = req.to.local() else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let q = Query::from_element(req.payload)?;
        if req.is_set {
            self.set(server, user, q).await
        } else {
            self.get(server, user, q).await
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<std::sync::Arc<dyn Module>, ModuleError> {
    let mut m = Private {
        max_item_bytes: 64 * 1024,
        max_account_bytes: 1024 * 1024,
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_item_bytes" => m.max_item_bytes = ModuleError::integer(k, v, 1)? as usize,
            "max_account_bytes" => m.max_account_bytes = ModuleError::integer(k, v, 1)? as usize,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(std::sync::Arc::new(m))
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "private",
    "XEP-0049: private XML storage for each account",
    build,
);
