//! The server module: answers pings to the server.

use async_trait::async_trait;
use lithos_server::ServerHandle;
use lithos_server::module::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration};

struct PingModule;

#[async_trait]
impl Module for PingModule {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(crate::NS)]
    }
    async fn handle_iq(&self, _server: &ServerHandle, _req: IqRequest) -> IqResponse {
        Ok(None)
    }
    fn disco_features(&self) -> Vec<&'static str> {
        vec![crate::NS]
    }
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration =
    ModuleRegistration::new("ping", "XEP-0199: answers pings to the server", |_| {
        Ok(std::sync::Arc::new(PingModule))
    });
