//! The version module.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::Element;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::ServerHandle;
use lithos_server::module::{
    IqClaim, IqRequest, IqResponse, Module, ModuleContext, ModuleError, ModuleRegistration,
};

use crate::NS;

struct Version {
    os: bool,
}

#[async_trait]
impl Module for Version {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
    async fn handle_iq(&self, _server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.is_set {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        }
        let mut q = Element::builder("query", NS)
            .child(Element::builder("name", NS).text("Lithos").build())
            .child(
                Element::builder("version", NS)
                    .text(env!("CARGO_PKG_VERSION"))
                    .build(),
            )
            .build();
        if self.os {
            q.append_child(
                Element::builder("os", NS)
                    .text(std::env::consts::OS)
                    .build(),
            );
        }
        Ok(Some(q))
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let os = match ctx.section.get("os") {
        None => false,
        Some(v) => ModuleError::boolean("os", v)?,
    };
    if let Some(k) = ctx.section.keys().find(|k| k.as_str() != "os") {
        return Err(ModuleError::unknown_key(k));
    }
    Ok(Arc::new(Version { os }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration =
    ModuleRegistration::new("version", "XEP-0092: the server's name and version", build);
