//! How to connect: the account, the address, TLS, SASL, codec, keep-alives and reconnection.

use std::sync::Arc;
use std::time::Duration;

use lithos_core::Jid;
use lithos_core::codec::WireFormat;
use lithos_sasl::Mechanism;

use crate::handler::IqHandler;
use crate::tls::Trust;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Connect in the clear, then upgrade with STARTTLS (RFC 6120 §5); a server that does not
    /// offer it is refused.
    #[default]
    StartTls,
    /// TLS from the first byte (XEP-0368), usually port 5223.
    Direct,
    /// No TLS at all. Only for tests and benchmarks on loopback; SCRAM still protects the
    /// password, and PLAIN is refused unless also allowed.
    Plaintext,
}

/// Reconnection after the connection is lost: delays double from `initial` up to `max`
/// (with up to 25 % random jitter) until a connection succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Reconnect {
        Reconnect {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// Everything a connection needs; built with [`ClientBuilder`](crate::ClientBuilder).
#[derive(Clone)]
pub struct Config {
    /// The account (bare JID), with the resource to ask for if it has one.
    pub jid: Jid,
    /// The password.
    pub password: String,
    /// `host:port` to connect to; default the JID's domain, port 5222 (5223 for direct TLS),
    /// or, with the `srv` feature, what the domain's SRV records name.
    pub address: Option<String>,
    /// TLS mode.
    pub tls: TlsMode,
    /// Trusted certificates.
    pub trust: Trust,
    /// The name the certificate must hold; default the JID's domain.
    pub server_name: Option<String>,
    /// Mechanisms in order of preference; the first one the server offers is used.
    pub mechanisms: Vec<Mechanism>,
    /// Allow PLAIN on a connection without TLS (never by default).
    pub allow_plain_without_tls: bool,
    /// XML or BXMPP.
    pub format: WireFormat,
    /// Send a white-space keep-alive after this long without writing anything.
    pub keepalive: Option<Duration>,
    /// Reconnect after a lost connection (off by default).
    pub reconnect: Option<Reconnect>,
    /// Use XEP-0198 stream management when the server offers it (on by default): the
    /// server acknowledges what the client sends, and, with [`reconnect`](Self::reconnect)
    /// on, a lost connection is resumed where it broke instead of starting a new session.
    pub stream_management: bool,
    /// Limit for connecting, TLS, authentication and binding together.
    pub connect_timeout: Duration,
    /// Stanzas waiting to be written before senders wait.
    pub send_queue: usize,
    /// Events waiting to be read before the connection stops reading.
    pub event_queue: usize,
    /// Answers to incoming iqs, by payload namespace (added to the linked plugins').
    pub(crate) handlers: Vec<(String, Arc<dyn IqHandler>)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("jid", &self.jid)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("format", &self.format)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The configuration with defaults for an account.
    pub fn new(jid: Jid, password: impl Into<String>) -> Config {
        Config {
            jid,
            password: password.into(),
            address: None,
            tls: TlsMode::default(),
            trust: Trust::default(),
            server_name: None,
            mechanisms: vec![
                Mechanism::ScramSha256,
                Mechanism::ScramSha1,
                Mechanism::Plain,
            ],
            allow_plain_without_tls: false,
            format: WireFormat::Xml,
            keepalive: Some(Duration::from_secs(60)),
            reconnect: None,
            stream_management: true,
            connect_timeout: Duration::from_secs(30),
            send_queue: 256,
            event_queue: 1024,
            handlers: Vec::new(),
        }
    }

    /// The address to connect to.
    pub(crate) fn address(&self) -> String {
        match &self.address {
            Some(a) => a.clone(),
            None => {
                let port = if self.tls == TlsMode::Direct {
                    5223
                } else {
                    5222
                };
                format!("{}:{port}", self.jid.domain())
            }
        }
    }

    /// The name to check the certificate against.
    pub(crate) fn server_name(&self) -> String {
        self.server_name
            .clone()
            .unwrap_or_else(|| self.jid.domain().to_string())
    }
}
