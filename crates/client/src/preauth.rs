//! Streams that do not log in: for what a server offers before authentication, such as
//! registering an account (XEP-0077) or a thing (IBTR).

use std::time::Duration;

use lithos_core::Element;
use lithos_core::stanza::{Iq, IqPayload};

use crate::config::Config;
use crate::error::{ConnectError, RequestError};
use crate::negotiate::{Transport, close_stream, pre_auth_request, secure};

/// A connection that stopped before authentication: TLS is up (unless the configuration
/// says plaintext) and the server's features are known. The account in the configuration
/// only gives the domain; its password is not used.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use lithos_client::{ClientBuilder, Trust, Unauthenticated};
/// use lithos_core::{Element, stanza::Iq};
/// let config = ClientBuilder::new("anyone@localhost", "")?
///     .trust(Trust::pinned_file("lithos-data/tls/cert.pem")?)
///     .config()
///     .clone();
/// let mut c = Unauthenticated::connect(&config).await?;
/// let form = c.request(Iq::get("r1", Element::bare("query", "jabber:iq:register")), Duration::from_secs(5)).await?;
/// c.close().await;
/// # Ok(()) }
/// ```
pub struct Unauthenticated {
    framed: Transport,
    features: Element,
    tls: bool,
    next: u64,
}

impl std::fmt::Debug for Unauthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unauthenticated")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Unauthenticated {
    /// Connects and secures the stream as `config` says, within its time limit.
    pub async fn connect(config: &Config) -> Result<Unauthenticated, ConnectError> {
        let s = tokio::time::timeout(config.connect_timeout, secure(config))
            .await
            .map_err(|_| ConnectError::Timeout(config.connect_timeout))??;
        Ok(Unauthenticated {
            framed: s.framed,
            features: s.features,
            tls: s.tls,
            next: 1,
        })
    }

    /// The server's `<stream:features/>` at this point.
    pub fn features(&self) -> &Element {
        &self.features
    }

    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Sends a get or set and waits for its answer until `timeout`, with the same outcomes
    /// as [`Client::request`](crate::Client::request). The stream is unusable after
    /// `Timeout` or `Disconnected`.
    pub async fn request(&mut self, mut iq: Iq, timeout: Duration) -> Result<Iq, RequestError> {
        if iq.id.is_empty() {
            iq.id = format!("pre-{}", self.next).into();
            self.next += 1;
        }
        match tokio::time::timeout(timeout, pre_auth_request(&mut self.framed, iq)).await {
            Err(_) => Err(RequestError::Timeout),
            Ok(Err(_)) => Err(RequestError::Disconnected),
            Ok(Ok(answer)) => match answer.payload {
                IqPayload::Error { error, .. } => Err(RequestError::Stanza(error)),
                _ => Ok(answer),
            },
        }
    }

    /// Closes the stream.
    pub async fn close(mut self) {
        close_stream(&mut self.framed).await;
    }
}
