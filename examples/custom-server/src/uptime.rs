//! A module of this server's own: XEP-0012 (Last Activity) sent to the server answers how
//! long the server has been running. Registering it takes one `lithos_core::extension!`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lithos_core::Element;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};

/// XEP-0012's namespace.
pub const NS: &str = "jabber:iq:last";

struct Uptime {
    started: Instant,
}

#[async_trait]
impl Module for Uptime {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::server(NS)]
    }

    async fn handle_iq(&self, _server: &ServerHandle, _req: IqRequest) -> IqResponse {
        let seconds = self.started.elapsed().as_secs();
        Ok(Some(
            Element::builder("query", NS)
                .attr("seconds", seconds.to_string())
                .build(),
        ))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

fn build(_: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    Ok(Arc::new(Uptime {
        started: Instant::now(),
    }))
}

/// The module, registered below.
const MODULE: ModuleRegistration = ModuleRegistration::new(
    "uptime",
    "XEP-0012 to the server: seconds since it started",
    build,
);

// A module in the binary itself is always linked; it registers like any extension crate.
lithos_core::extension! {
    module: MODULE,
}
