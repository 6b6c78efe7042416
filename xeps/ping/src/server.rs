//! The server module: answers pings to the server.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_server::ServerHandle;
use lithos_server::module::{IqClaim, IqRequest, IqResponse, IqTarget, Module, ModuleRegistration};

struct PingModule;

#[async_trait]
impl Module for PingModule {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim {
            ns: crate::NS,
            target: IqTarget::Server,
        }]
    }
    async fn handle_iq(&self, _server: &ServerHandle, _req: IqRequest) -> IqResponse {
        Ok(None)
    }
    fn disco_features(&self) -> Vec<&'static str> {
        vec![crate::NS]
    }
}

fn build(
    _: &lithos_server::module::ModuleContext<'_>,
) -> Result<Arc<dyn Module>, lithos_server::module::ModuleError> {
    Ok(Arc::new(PingModule))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration {
    name: "ping",
    description: "XEP-0199: answers pings to the server",
    depends_on: &[],
    enabled_by_default: true,
    build,
};
