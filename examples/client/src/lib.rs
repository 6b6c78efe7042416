//! What the example programs share: the connection options and how they become a client.

use std::time::Duration;

use clap::Args;
use lithos_client::{ClientBuilder, ConnectError, TlsMode, Trust, WireFormat};

/// Connection options common to the examples.
#[derive(Debug, Args)]
pub struct Connection {
    /// The account to log in as (`name@domain`, optionally `/resource`).
    #[arg(long)]
    pub jid: String,
    /// `host:port` of the server (default: the JID's domain, port 5222).
    #[arg(long)]
    pub address: Option<String>,
    /// Trust exactly this server certificate (PEM), e.g. `lithos-data/tls/cert.pem` of a
    /// development server with a self-signed certificate.
    #[arg(long, value_name = "PEM")]
    pub pinned_cert: Option<std::path::PathBuf>,
    /// Trust certificates issued by this CA (PEM) instead of the system's roots.
    #[arg(long, value_name = "PEM", conflicts_with = "pinned_cert")]
    pub ca: Option<std::path::PathBuf>,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    pub direct_tls: bool,
    /// Speak binary XMPP (BXMPP) instead of XML.
    #[arg(long)]
    pub bxmpp: bool,
}

impl Connection {
    /// A builder for these options. The password comes from the `LITHOS_PASSWORD`
    /// environment variable, or else the first line of standard input: never the command
    /// line, where other users of the machine can read it.
    pub fn builder(&self) -> Result<ClientBuilder, String> {
        let password = match std::env::var("LITHOS_PASSWORD") {
            Ok(p) => p,
            Err(_) => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("reading the password: {e}"))?;
                line.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        let mut b = ClientBuilder::new(&self.jid, &password).map_err(|e| e.to_string())?;
        if let Some(a) = &self.address {
            b = b.address(a.clone());
        }
        if let Some(p) = &self.pinned_cert {
            b = b.trust(Trust::pinned_file(p).map_err(|e| e.to_string())?);
        }
        if let Some(p) = &self.ca {
            b = b.trust(Trust::ca_file(p).map_err(|e| e.to_string())?);
        }
        if self.direct_tls {
            b = b.tls(TlsMode::Direct);
        }
        if self.bxmpp {
            b = b.format(WireFormat::Bxmpp);
        }
        Ok(b.connect_timeout(Duration::from_secs(15)))
    }
}

/// Logs to standard error, `RUST_LOG` deciding how much (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A connection error, as a person reads it.
pub fn explain(e: &ConnectError) -> String {
    match e {
        ConnectError::Tls(t) => format!(
            "{e}\n(a development server with a self-signed certificate: pass --pinned-cert <its cert.pem>; {t})"
        ),
        _ => e.to_string(),
    }
}
