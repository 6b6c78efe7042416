//! The controller's side: `execute` ends in executed, error or timeout.

use std::future::Future;
use std::time::Duration;

use lithos_client::{Client, RequestError};
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Element, Jid, Payload};

use crate::{Execution, now_ms};

/// Commanding things from a [`Client`].
pub trait ControllerExt {
    /// Executes `action` on `thing` (its bare JID, or `…/<lan-id>` for a node behind a
    /// gateway) and waits until `deadline`. `Ok` holds the thing's result payload, if any;
    /// the errors are [`RequestError::Stanza`] (the server or the thing refused: not
    /// registered, forbidden, unsupported, offline, expired, or the action failed),
    /// [`RequestError::Timeout`] and [`RequestError::Disconnected`].
    ///
    /// The execution carries the deadline as its expiry, so a thing that receives it late
    /// refuses it: a timeout here means the action did not and will not run, unless the
    /// thing ran it and its answer was lost on the way back.
    fn execute(
        &self,
        thing: Jid,
        action: Element,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<Element>, RequestError>> + Send;
}

impl ControllerExt for Client {
    async fn execute(
        &self,
        thing: Jid,
        action: Element,
        deadline: Duration,
    ) -> Result<Option<Element>, RequestError> {
        let mut e = Execution::new(action);
        e.expires_ms = Some(now_ms() + deadline.as_millis() as i64);
        // A LAN node answers only when asked to (Lithosphere's Remoting does the same).
        if thing
            .resource()
            .is_some_and(|r| r != lithos_tuxp_things::EDGE_RESOURCE)
        {
            e.lan_traceable = true;
        }
        let answer = self
            .request(Iq::set("", e.into_element()).with_to(thing), deadline)
            .await?;
        Ok(match answer.payload {
            IqPayload::Result(p) => p,
            _ => None,
        })
    }
}
