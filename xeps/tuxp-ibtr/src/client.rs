//! The thing's side: register once, keep what the server answers.

use std::time::Duration;

use lithos_client::{ClientBuilder, ConnectError, RequestError, Unauthenticated};
use lithos_core::Payload;
use lithos_core::stanza::{Iq, IqPayload};

use crate::{NS, ThingRegister};

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Connecting or securing the stream failed.
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The server does not offer thing registration here (not its things port?).
    #[error("the server offers no thing registration on this port")]
    NotOffered,
    /// The server refused (`not-authorized`: no operator authorized the thing; `conflict`:
    /// already registered; `not-acceptable`: an id the server does not know) or did not answer.
    #[error("registration refused: {0}")]
    Refused(#[from] RequestError),
    /// The answer was not a registration result.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// What a registered thing keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Its JID local part.
    pub thing_name: String,
    /// Its password.
    pub credentials: String,
    /// Its 16-byte security key.
    pub security_key: Vec<u8>,
}

/// Registers `thing_id` with `registration_key` on the server that `builder` points to
/// (its address should be the things port; its account is only used for the domain).
pub async fn register_thing(
    builder: &ClientBuilder,
    thing_id: &str,
    registration_key: &str,
    timeout: Duration,
) -> Result<Registered, RegisterError> {
    let mut c = Unauthenticated::connect(builder.config()).await?;
    if !c.features().has_child("register", NS) {
        c.close().await;
        return Err(RegisterError::NotOffered);
    }
    let request = ThingRegister::Unregistered {
        thing_id: thing_id.to_string(),
        registration_key: registration_key.to_string(),
    };
    let answer = c
        .request(Iq::set("", request.into_element()), timeout)
        .await;
    c.close().await;
    let answer = answer?;
    let IqPayload::Result(Some(p)) = answer.payload else {
        return Err(RegisterError::Protocol("an empty result".into()));
    };
    match ThingRegister::from_element(p) {
        Ok(ThingRegister::Registered {
            thing_name,
            credentials,
            security_key,
        }) => Ok(Registered {
            thing_name,
            credentials,
            security_key,
        }),
        Ok(_) => Err(RegisterError::Protocol("not a registered thing".into())),
        Err(e) => Err(RegisterError::Protocol(e.to_string())),
    }
}
