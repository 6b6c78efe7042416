//! vCards from a client.

#![cfg(feature = "client")]

use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Jid, Payload};

use crate::VCard;

/// vcard-temp (XEP-0054) on a [`Client`].
pub trait VCardExt {
    /// The vCard of `of` (an account's bare JID; `None` for one's own). An account without a
    /// vCard has an empty one.
    fn vcard(
        &self,
        of: Option<Jid>,
        timeout: Duration,
    ) -> impl Future<Output = Result<VCard, RequestError>> + Send;

    /// Replaces one's own vCard.
    fn set_vcard(
        &self,
        card: VCard,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
}

impl VCardExt for Client {
    async fn vcard(&self, of: Option<Jid>, timeout: Duration) -> Result<VCard, RequestError> {
        let mut iq = Iq::get("", VCard::default().into_element());
        if let Some(to) = of {
            iq = iq.with_to(to);
        }
        let r = self.request(iq, timeout).await?;
        Ok(match r.payload {
            IqPayload::Result(Some(p)) => VCard::from_element(p).unwrap_or_default(),
            _ => VCard::default(),
        })
    }

    async fn set_vcard(&self, card: VCard, timeout: Duration) -> Result<(), RequestError> {
        self.request(Iq::set("", card.into_element()), timeout)
            .await
            .map(drop)
    }
}
