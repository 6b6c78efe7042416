//! The client side: every client answers disco#info with the features of the plugins linked
//! into the program, and can ask others ([`DiscoExt::disco_info`]).

use std::future::Future;
use std::time::Duration;

use lithos_client::handler::{ClientPlugin, Handlers, fn_handler};
use lithos_client::{Client, RequestError};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Element, Jid};

use crate::NS_INFO;

/// An identity (XEP-0030 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Category, such as `server`, `client`, `component`.
    pub category: String,
    /// Type within the category.
    pub type_: String,
    /// Human-readable name.
    pub name: Option<String>,
}

/// What an entity says it is and supports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoInfo {
    /// Its identities.
    pub identities: Vec<Identity>,
    /// Its features (namespaces), in the order given.
    pub features: Vec<String>,
}

impl DiscoInfo {
    /// Reads a disco#info `<query/>`.
    pub fn from_query(q: &Element) -> DiscoInfo {
        DiscoInfo {
            identities: q
                .children()
                .filter(|c| c.is("identity", NS_INFO))
                .map(|i| Identity {
                    category: i.attr("category").unwrap_or_default().to_string(),
                    type_: i.attr("type").unwrap_or_default().to_string(),
                    name: i.attr("name").map(str::to_string),
                })
                .collect(),
            features: q
                .children()
                .filter(|c| c.is("feature", NS_INFO))
                .filter_map(|f| f.attr("var").map(str::to_string))
                .collect(),
        }
    }

    /// Whether `feature` is listed.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

/// Service discovery from a [`Client`].
pub trait DiscoExt {
    /// Asks `to` what it is and supports.
    fn disco_info(
        &self,
        to: Jid,
        timeout: Duration,
    ) -> impl Future<Output = Result<DiscoInfo, RequestError>> + Send;
}

impl DiscoExt for Client {
    async fn disco_info(&self, to: Jid, timeout: Duration) -> Result<DiscoInfo, RequestError> {
        let r = self
            .request(
                Iq::get("", Element::bare("query", NS_INFO)).with_to(to),
                timeout,
            )
            .await?;
        Ok(match &r.payload {
            IqPayload::Result(Some(q)) => DiscoInfo::from_query(q),
            _ => DiscoInfo::default(),
        })
    }
}

/// This client's own disco#info: a `client/bot` identity and the linked plugins' features.
fn own_info() -> Element {
    let mut q = Element::builder("query", NS_INFO)
        .child(
            Element::builder("identity", NS_INFO)
                .attr("category", "client")
                .attr("type", "bot")
                .attr("name", "Lithos")
                .build(),
        )
        .build();
    let mut features = lithos_client::handler::features();
    features.push(NS_INFO);
    features.sort_unstable();
    features.dedup();
    for f in features {
        q.append_child(Element::builder("feature", NS_INFO).attr("var", f).build());
    }
    q
}

fn handlers() -> Handlers {
    vec![(
        NS_INFO,
        fn_handler(|_ctx, iq| async move {
            match &iq.payload {
                // Nodes (XEP-0115 hashes and the like) are not served.
                IqPayload::Get(q) if q.attr("node").is_none() => Ok(Some(own_info())),
                IqPayload::Get(_) => Err(StanzaError::new(DefinedCondition::ItemNotFound)),
                _ => Err(StanzaError::new(DefinedCondition::BadRequest)),
            }
        }),
    )]
}

/// This crate's client plugin, registered by `extension!` in `lib.rs`.
pub(crate) const PLUGIN: ClientPlugin = ClientPlugin {
    name: "disco",
    features: &[NS_INFO],
    handlers,
};
