//! Carbons from a client: turning them on and off, and reading a copy.

use lithos_core::stanza::Message;
use lithos_core::{Element, Jid, Payload};

use crate::{Received, Sent};

/// A carbon copy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carbon {
    /// Another resource of the account sent this message.
    Sent(Element),
    /// Another resource of the account received this message.
    Received(Element),
}

/// The copy `message` carries, if it is one and comes from `own` account (its bare JID, as
/// XEP-0280 §11 requires; a copy from anyone else is forged and ignored).
pub fn carbon_of(message: &Message, own: &Jid) -> Option<Carbon> {
    let from = message.from.as_ref()?;
    if !(from.is_bare() && from.bare_eq(own)) {
        return None;
    }
    message.payloads.iter().find_map(|p| {
        if Sent::matches(p) {
            Sent::from_element(p.clone())
                .ok()
                .map(|s| Carbon::Sent(s.forwarded.message))
        } else if Received::matches(p) {
            Received::from_element(p.clone())
                .ok()
                .map(|r| Carbon::Received(r.forwarded.message))
        } else {
            None
        }
    })
}

#[cfg(feature = "client")]
pub use ext::CarbonsExt;

#[cfg(feature = "client")]
mod ext {
    use std::time::Duration;

    use lithos_client::{Client, RequestError};
    use lithos_core::Payload;
    use lithos_core::stanza::Iq;

    use crate::{Disable, Enable};

    /// Message carbons (XEP-0280) on a [`Client`].
    pub trait CarbonsExt {
        /// Turns carbons on (`true`) or off for this resource.
        fn carbons(
            &self,
            on: bool,
            timeout: Duration,
        ) -> impl Future<Output = Result<(), RequestError>> + Send;
    }

    impl CarbonsExt for Client {
        async fn carbons(&self, on: bool, timeout: Duration) -> Result<(), RequestError> {
            let payload = if on {
                Enable.into_element()
            } else {
                Disable.into_element()
            };
            self.request(Iq::set("", payload), timeout).await.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_copies_from_the_own_account_count() {
        let own = Jid::new("romeo@montague.example/home").unwrap();
        let inner = Element::parse("<message xmlns='jabber:client' to='juliet@capulet.example' type='chat'><body>b</body></message>").unwrap();
        let c = crate::copy(&inner, &own.to_bare(), &own, true);
        let m = Message::try_from(c.clone()).unwrap();
        assert_eq!(carbon_of(&m, &own), Some(Carbon::Sent(inner.clone())));
        let mut forged = m.clone();
        forged.from = Some(Jid::new("mallory@evil.example").unwrap());
        assert_eq!(carbon_of(&forged, &own), None);
        let mut from_resource = m;
        from_resource.from = Some(Jid::new("romeo@montague.example/other").unwrap());
        assert_eq!(carbon_of(&from_resource, &own), None);
    }
}
