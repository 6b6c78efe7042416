//! Errors: why a connection could not be made, why a request did not end in a result, why a
//! stanza could not be sent.

use lithos_core::StreamError;
use lithos_core::stanza::StanzaError;

/// Why connecting (or reconnecting) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address could not be reached or the connection broke.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting and negotiating took longer than the configured limit.
    #[error("the connection was not ready within {0:?}")]
    Timeout(std::time::Duration),
    /// TLS could not be set up: no certificate trusted, a handshake failure, or a server that
    /// does not offer STARTTLS when TLS is required.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused the credentials or the mechanism.
    #[error("authentication failed: {condition}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Auth {
        /// The SASL failure condition (`not-authorized`, ...).
        condition: String,
        /// The server's text, if any.
        text: Option<String>,
    },
    /// No mechanism the configuration allows is offered (PLAIN without TLS is never tried
    /// unless allowed).
    #[error("no acceptable SASL mechanism (offered: {0:?})")]
    NoMechanism(Vec<String>),
    /// The server sent a stream error.
    #[error("stream error: {0}")]
    Stream(Box<StreamError>),
    /// The server did not follow the protocol (a bad SCRAM message, a missing feature, bytes
    /// the codec cannot read).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The configured address is not an XMPP address or has no local part.
    #[error("invalid account address {0:?}")]
    InvalidJid(String),
}

/// How a request ended when it did not end in a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The recipient (or the server) answered with an error.
    #[error("error: {0}")]
    Stanza(Box<StanzaError>),
    /// No answer before the deadline. A late answer is dropped, never reported.
    #[error("no answer before the deadline")]
    Timeout,
    /// The connection was lost (or closed) before an answer came; reported at once.
    #[error("disconnected")]
    Disconnected,
}

/// A stanza could not be handed to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not connected (closed, or waiting to reconnect). Nothing is queued for later: a
    /// command sent now must not run minutes later.
    #[error("not connected")]
    Disconnected,
}
