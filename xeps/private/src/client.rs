//! Private storage from a client.

#![cfg(feature = "client")]

use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Element, Payload};

use crate::Query;

/// Private XML storage (XEP-0049) on a [`Client`]: the account's own fragments.
pub trait PrivateExt {
    /// The fragment named by `name` and `ns`, `None` when the server holds none (it answers
    /// with the empty element).
    fn private_get(
        &self,
        name: &str,
        ns: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Element>, RequestError>> + Send;

    /// Stores `fragments` (each an element in its own namespace), replacing those of the
    /// same name and namespace.
    fn private_set(
        &self,
        fragments: Vec<Element>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

impl PrivateExt for Client {
    async fn private_get(
        &self,
        name: &str,
        ns: &str,
        timeout: Duration,
    ) -> Result<Option<Element>, RequestError> {
        let q = Query {
            fragments: vec![Element::bare(name.to_string(), ns.to_string())],
        };
        let r = self.request(Iq::get("", q.into_element()), timeout).await?;
        let IqPayload::Result(Some(p)) = r.payload else {
            return Ok(None);
        };
        let Ok(q) = Query::from_element(p) else {
            return Ok(None);
        };
        Ok(q.fragments
            .into_iter()
            .find(|f| f.is(name, ns) && (!f.nodes().is_empty() || !f.attrs().is_empty())))
    }

    async fn private_set(
        &self,
        fragments: Vec<Element>,
        timeout: Duration,
    ) -> Result<(), RequestError> {
        let q = Query { fragments };
        self.request(Iq::set("", q.into_element()), timeout)
            .await
            .map(drop)
    }
}
