//! The `vcard` module: each account's vCard, set by the account, read by anyone.

#![cfg(feature = "server")]

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Payload};
use lithos_server::module::{ModuleContext, ModuleError, internal_error};
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};

use crate::store::VCardStore;
use crate::{NS, VCard};

struct VCardModule {
    max_bytes: usize,
}

#[async_trait]
impl Module for VCardModule {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let Some(user) = req.to.local() else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let card = VCard::from_element(req.payload)?;
        let store = VCardStore::of(server);
        if req.is_set {
            if !req.from.bare_eq(&req.to) {
                return Err(StanzaError::new(DefinedCondition::Forbidden));
            }
            let xml = card.into_element().to_xml();
            if xml.len() > self.max_bytes {
                return Err(StanzaError::explained(
                    DefinedCondition::NotAcceptable,
                    format!("a vCard may hold {} bytes", self.max_bytes),
                ));
            }
            store.put(user, xml).await.map_err(internal_error)?;
            return Ok(None);
        }
        match store.get(user).await.map_err(internal_error)? {
            Some(xml) => Ok(Some(Element::parse(&xml).map_err(internal_error)?)),
            None if server
                .storage()
                .accounts
                .account_exists(user)
                .await
                .map_err(internal_error)? =>
            {
                Ok(Some(Element::bare("vCard", NS)))
            }
            None => Err(StanzaError::new(DefinedCondition::ItemNotFound)),
        }
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<std::sync::Arc<dyn Module>, ModuleError> {
    let mut max_bytes = 128 * 1024;
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_bytes" => max_bytes = ModuleError::integer(k, v, 1)? as usize,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(std::sync::Arc::new(VCardModule { max_bytes }))
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "vcard",
    "XEP-0054: each account's vCard, set by the account, read by anyone",
    build,
);
