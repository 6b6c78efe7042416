//! The disco module.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use lithos_core::Element;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::ServerHandle;
use lithos_server::module::internal_error;
use lithos_server::module::{
    IqClaim, IqRequest, IqResponse, Module, ModuleContext, ModuleError, ModuleRegistration,
};

use crate::{NS_INFO, NS_ITEMS};

/// The node of the server's own capabilities (XEP-0115 §6.3, in its stream features).
pub const CAPS_NODE: &str = "https://lithos.invalid/server";

#[derive(Default)]
struct Disco {
    /// The server's `<c/>` and the node it names (`CAPS_NODE#ver`), from `started`.
    caps: OnceLock<(Element, String)>,
}

/// Entity capabilities (XEP-0115).
const NS_CAPS: &str = "http://jabber.org/protocol/caps";

/// The `ver` of the server's disco#info (XEP-0115 §5.1, for one identity and no forms:
/// `category/type/lang/name<`, then each feature sorted, `feature<`), SHA-1, base64. The
/// test checks it against `lithos-caps`'s general verification.
fn own_ver(features: &[&str]) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut sorted = features.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut s = String::from("server/im//Lithos<");
    for f in sorted {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(s.as_bytes()))
}

/// The server's disco#info: its identity and every enabled module's features.
fn server_info(server: &ServerHandle) -> Element {
    let mut q = Element::bare("query", NS_INFO);
    q.append_child(identity("server", "im", Some("Lithos")));
    for f in server.modules().disco_features() {
        q.append_child(feature(f));
    }
    q
}

fn identity(category: &str, type_: &str, name: Option<&str>) -> Element {
    Element::builder("identity", NS_INFO)
        .attr("category", category.to_string())
        .attr("type", type_.to_string())
        .opt_attr("name", name.map(str::to_string))
        .build()
}

fn feature(var: &str) -> Element {
    Element::builder("feature", NS_INFO)
        .attr("var", var.to_string())
        .build()
}

#[async_trait]
impl Module for Disco {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![
            IqClaim::server(NS_INFO),
            IqClaim::server(NS_ITEMS),
            IqClaim::account(NS_INFO),
            IqClaim::account(NS_ITEMS),
        ]
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS_INFO, NS_ITEMS]
    }

    /// XEP-0115 §6.3: the server's own capabilities, hashed once the modules are known.
    async fn started(&self, server: &ServerHandle) {
        let ver = own_ver(&server.modules().disco_features());
        let c = Element::builder("c", NS_CAPS)
            .attr("hash", "sha-1")
            .attr("node", CAPS_NODE)
            .attr("ver", ver.clone())
            .build();
        let _ = self.caps.set((c, format!("{CAPS_NODE}#{ver}")));
    }

    fn stream_features(&self) -> Vec<Element> {
        self.caps
            .get()
            .map(|(c, _)| vec![c.clone()])
            .unwrap_or_default()
    }

    fn pre_auth_features(&self, _listener: lithos_server::session::Listener) -> Vec<Element> {
        self.stream_features()
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.is_set || req.payload.name() != "query" {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        }
        if let Some(node) = req.payload.attr("node") {
            // The node the server's capabilities name (§6.2): its disco#info, as hashed.
            return match self.caps.get() {
                Some((_, ours))
                    if node == ours && req.payload.ns() == NS_INFO && req.to.local().is_none() =>
                {
                    let mut q = server_info(server);
                    q.set_attr("node", node.to_string());
                    Ok(Some(q))
                }
                _ => Err(StanzaError::new(DefinedCondition::ItemNotFound)),
            };
        }
        let ns = req.payload.ns().to_string();
        let account = req.to.local().map(str::to_string);
        if let Some(user) = &account {
            let exists = server
                .storage()
                .accounts
                .account_exists(user)
                .await
                .map_err(internal_error)?;
            if !exists {
                return Err(StanzaError::new(DefinedCondition::ServiceUnavailable));
            }
        }
        let mut q = Element::bare("query", ns.clone());
        if ns == NS_ITEMS && account.is_none() {
            // The services beside the server (XEP-0114 components).
            for domain in server.service_domains() {
                q.append_child(
                    Element::builder("item", NS_ITEMS)
                        .attr("jid", domain)
                        .build(),
                );
            }
        }
        if ns == NS_INFO {
            match account {
                None => q = server_info(server),
                Some(_) => {
                    q.append_child(identity("account", "registered", None));
                    for (category, type_) in server.modules().account_disco_identities() {
                        q.append_child(identity(category, type_, None));
                    }
                    q.append_child(feature(NS_INFO));
                    q.append_child(feature(NS_ITEMS));
                    for f in server.modules().account_disco_features() {
                        q.append_child(feature(f));
                    }
                }
            }
        }
        Ok(Some(q))
    }
}

fn build(_: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    Ok(Arc::new(Disco::default()))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "disco",
    "XEP-0030: service discovery for the server and accounts",
    build,
);
