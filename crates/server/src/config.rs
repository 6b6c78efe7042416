//! Server configuration, read from TOML. Every key has a default, so an empty file (or none)
//! gives a working server for `localhost`; `docs/configuration.md` documents each key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The XMPP domain served. Default `localhost`.
    pub domain: String,
    /// Where the database, certificates and other state live. Default `lithos-data`.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// Client connections.
    pub c2s: C2sConfig,
    /// Thing connections (IoT devices and gateways).
    pub things: ThingsConfig,
    /// TLS certificate and key.
    pub tls: TlsConfig,
    /// What one address, connection, account or session may use.
    pub limits: LimitsConfig,
    /// Accounts: password hashing, deleted names.
    pub accounts: AccountsConfig,
    /// XEP-0198 stream management: acknowledgements and resumption.
    pub stream_management: StreamManagementConfig,
    /// XEP-0352 client state indication.
    pub csi: CsiConfig,
    /// XEP-0114 external components.
    pub components: ComponentsConfig,
    /// The HTTP listener: health and Prometheus metrics.
    pub http: HttpConfig,
    /// Where accounts and modules' data are kept: the embedded SQLite file or PostgreSQL.
    pub storage: StorageConfig,
    /// Per-module sections, `[modules.<name>]`, each with `enabled` and the module's own keys.
    pub modules: BTreeMap<String, toml::Table>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("lithos-data"),
            log: LogConfig::default(),
            c2s: C2sConfig::default(),
            things: ThingsConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            accounts: AccountsConfig::default(),
            stream_management: StreamManagementConfig::default(),
            csi: CsiConfig::default(),
            components: ComponentsConfig::default(),
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
            modules: BTreeMap::new(),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `lithos_server=debug,info`. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Client-to-server listeners and session limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct C2sConfig {
    /// Addresses for STARTTLS connections (XML or BXMPP, told apart by the first byte).
    /// Default `["127.0.0.1:5222"]`.
    pub listen: Vec<SocketAddr>,
    /// Addresses for direct TLS (XEP-0368). Default `["127.0.0.1:5223"]`.
    pub direct_tls: Vec<SocketAddr>,
    /// Refuse to authenticate streams that have not negotiated TLS. Default `true`.
    pub require_tls: bool,
    /// Offer SASL PLAIN on streams without TLS (only for benchmarks and tests on loopback).
    /// Default `false`.
    pub allow_plain_without_tls: bool,
    /// Largest stanza accepted, in bytes. Default 262144.
    pub max_stanza_size: usize,
    /// Close a connection that sends nothing for this many seconds. Default 300.
    pub idle_timeout_secs: u64,
    /// Time allowed from connecting to binding a resource, in seconds. Default 30.
    pub negotiation_timeout_secs: u64,
    /// Stanzas queued for a session; past it, stanzas for the session are refused
    /// (`resource-constraint` to the sender) and the session goes on. Default 1024.
    pub outbound_queue: usize,
    /// Failed SASL attempts allowed on one connection before it is closed. Default 3.
    pub max_auth_failures: u32,
    /// Close a connection whose socket accepts nothing for this many seconds (a peer that
    /// stopped reading). Default 30.
    pub write_timeout_secs: u64,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            listen: vec!["127.0.0.1:5222".parse().expect("literal address")],
            direct_tls: vec!["127.0.0.1:5223".parse().expect("literal address")],
            require_tls: true,
            allow_plain_without_tls: false,
            max_stanza_size: 256 * 1024,
            idle_timeout_secs: 300,
            negotiation_timeout_secs: 30,
            outbound_queue: 1024,
            max_auth_failures: 3,
            write_timeout_secs: 30,
        }
    }
}

/// XEP-0198 stream management, offered on both listeners after authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamManagementConfig {
    /// Offer stream management. Default `true`.
    pub enabled: bool,
    /// How long a resumable session is kept after its connection breaks, in seconds; a
    /// client asking for less (`max`) gets less. Past it, what the session was sent and did not
    /// acknowledge is handled as for an unavailable resource (RFC 6121 §8.5: messages to
    /// another resource or offline storage, iqs answered with an error). Default 300;
    /// 0 offers acknowledgements without resumption.
    pub resume_timeout_secs: u64,
    /// Stanzas written to a session and not yet acknowledged; past it, the server asks for an
    /// acknowledgement and writes nothing more until one comes (its queue, `[c2s]
    /// outbound_queue`, then fills and refuses as usual). Default 1024.
    pub max_unacked: usize,
    /// Ask the client for an acknowledgement once this many stanzas are unacknowledged (one
    /// request outstanding at a time). Default 5.
    pub request_every: usize,
}

impl Default for StreamManagementConfig {
    fn default() -> Self {
        StreamManagementConfig {
            enabled: true,
            resume_timeout_secs: 300,
            max_unacked: 1024,
            request_every: 5,
        }
    }
}

/// XEP-0352 client state indication, offered on both listeners after authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsiConfig {
    /// Offer it. Default `true`.
    pub enabled: bool,
    /// Senders whose latest presence an inactive client's session holds; past it, what
    /// was held is written. Default 1024.
    pub max_held: usize,
}

impl Default for CsiConfig {
    fn default() -> Self {
        CsiConfig {
            enabled: true,
            max_held: 1024,
        }
    }
}

/// The listener for things: the same streams and limits as `[c2s]`, on its own port, so that
/// thing-only features (thing registration before SASL) are offered there alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThingsConfig {
    /// Addresses for thing connections (STARTTLS, XML or BXMPP). Default `["127.0.0.1:6222"]`.
    pub listen: Vec<SocketAddr>,
}

impl Default for ThingsConfig {
    fn default() -> Self {
        ThingsConfig {
            listen: vec!["127.0.0.1:6222".parse().expect("literal address")],
        }
    }
}

/// XEP-0114 external components: programs that serve a domain of their own (a gateway, a
/// bridge, a bot), connecting with a shared secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentsConfig {
    /// Addresses components connect to. Plaintext, as XEP-0114 is: bind it to loopback or a
    /// private network. Default none.
    pub listen: Vec<SocketAddr>,
    /// Each component's domain and its shared secret (`"bridge.example.org" = "..."`). A
    /// domain is a bare domain name other than the server's, usually a subdomain of it.
    pub secrets: BTreeMap<String, String>,
}

/// The HTTP listener (`[http]`): `/health`, `/metrics` (Prometheus text format), XMPP over
/// WebSocket, the web console at `/` and the HTTP API under `/api` (`docs/http-api.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses to serve HTTP on. Default `["127.0.0.1:5280"]`; `[]` for none.
    pub listen: Vec<SocketAddr>,
    /// Serve HTTPS with the server's certificate (`[tls]`) instead of plain HTTP. Default
    /// false. WebSocket clients over HTTPS count as encrypted (`[c2s] require_tls`).
    pub tls: bool,
    /// Connections from a loopback address count as encrypted even over plain HTTP (they
    /// never leave the machine: a browser on it, or a TLS-terminating proxy beside the
    /// server), for WebSocket clients and the API alike. Default true.
    pub loopback_is_secure: bool,
    /// Accounts (localparts) that may use the API's administrative routes (accounts, every
    /// session, tokens). Default none.
    pub admins: Vec<String>,
    /// Answer the API over plain HTTP from any address (a TLS-terminating proxy elsewhere).
    /// Default false: credentials travel only over HTTPS or loopback.
    pub plain_api: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5280))],
            tls: false,
            loopback_is_secure: true,
            admins: Vec::new(),
            plain_api: false,
        }
    }
}

/// TLS material.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Default: `<data_dir>/tls/cert.pem`, generated (self-signed for the
    /// domain) on first start if missing.
    pub cert: Option<PathBuf>,
    /// PEM private key. Default: `<data_dir>/tls/key.pem`, generated with the certificate.
    pub key: Option<PathBuf>,
}

/// Limits on what one address, connection, account or session may use. Every bound has an
/// answer when reached, documented in `docs/configuration.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Networks exempt from the per-address limits, authentication bans and traffic shaping
    /// (benchmarks, local gateways, a reverse proxy). Default loopback (`127.0.0.0/8`,
    /// `::1/128`).
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// Open connections from one address (outside trusted networks). Default 300.
    pub max_connections_per_address: usize,
    /// Connections that have not authenticated yet, from all addresses. Default 5000.
    pub max_unauthenticated_connections: usize,
    /// Sessions one account may have at once. Default 10.
    pub max_resources_per_account: usize,
    /// Addresses one session may send directed available presence to. Default 1000.
    pub max_directed_presences: usize,
    /// Failed authentications (SASL failures and aborts) from one address within
    /// `auth_ban_window_secs` that ban it. Default 10.
    pub auth_ban_failures: u32,
    /// The window in which failures are counted, in seconds. Default 600.
    pub auth_ban_window_secs: u64,
    /// How long a banned address is refused, in seconds. Default 900.
    pub auth_ban_secs: u64,
    /// What a client connection may send, in bytes per second; a faster client is read more
    /// slowly, not disconnected. 0: unlimited. Default 262144 (256 KiB/s).
    pub c2s_rate: u64,
    /// How many bytes a client may send at once above the rate. Default 1048576.
    pub c2s_burst: u64,
    /// As `c2s_rate`, for connections on the things listener. Default 65536.
    pub things_rate: u64,
    /// As `c2s_burst`, for things. Default 262144.
    pub things_burst: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            trusted_networks: vec![
                "127.0.0.0/8".parse().expect("literal network"),
                "::1/128".parse().expect("literal network"),
            ],
            max_connections_per_address: 300,
            max_unauthenticated_connections: 5000,
            max_resources_per_account: 10,
            max_directed_presences: 1000,
            auth_ban_failures: 10,
            auth_ban_window_secs: 600,
            auth_ban_secs: 900,
            c2s_rate: 256 * 1024,
            c2s_burst: 1024 * 1024,
            things_rate: 64 * 1024,
            things_burst: 256 * 1024,
        }
    }
}

impl LimitsConfig {
    /// Whether `ip` is in a trusted network.
    pub fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted_networks.iter().any(|n| n.contains(&ip))
    }
}

/// Which database engine holds accounts and modules' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// The embedded SQLite file `<data_dir>/lithos.sqlite`: no set-up, one node.
    #[default]
    Sqlite,
    /// A PostgreSQL server (`url`): what several nodes of a cluster share.
    Postgres,
}

/// `[storage]`: the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `"sqlite"` (default) or `"postgres"`.
    pub backend: StorageBackend,
    /// PostgreSQL: the connection URL (`postgresql://user:password@host:port/database`) or
    /// `key=value` settings. The database must use the `C` collation (ordering of names
    /// and paging depend on it), e.g. `CREATE DATABASE lithos TEMPLATE template0 ENCODING
    /// 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`.
    pub url: String,
    /// PostgreSQL: at most this many connections. Default 16.
    pub pool_size: u32,
    /// PostgreSQL: CA certificates (PEM) trusted for the server's TLS certificate, besides
    /// the system's roots. TLS itself follows the URL's `sslmode` (`require` to insist).
    pub ca_file: Option<PathBuf>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Sqlite,
            url: String::new(),
            pool_size: 16,
            ca_file: None,
        }
    }
}

/// Accounts: how passwords are hashed, and how long a deleted account's name stays taken.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// PBKDF2 iterations for new SCRAM credentials (existing ones keep theirs). Default
    /// 10000; at least 4096 (RFC 7677).
    pub pbkdf2_iterations: u32,
    /// How long the name of a deleted account cannot be registered again, in seconds, so
    /// that nobody inherits what others granted the old account. Default 2592000 (30 days);
    /// 0 frees it at once.
    pub tombstone_secs: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            pbkdf2_iterations: 10_000,
            tombstone_secs: 30 * 24 * 3600,
        }
    }
}

impl Config {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Config::parse(&text)
    }

    /// Checks values that TOML types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = lithos_core::Jid::new(&self.domain)
            .map_err(|e| ConfigError::Invalid(format!("domain {:?}: {e}", self.domain)))?;
        if !d.is_domain() {
            return Err(ConfigError::Invalid(format!(
                "domain {:?} must be a bare domain name",
                self.domain
            )));
        }
        if self.c2s.listen.is_empty() && self.c2s.direct_tls.is_empty() {
            return Err(ConfigError::Invalid("no c2s listener configured".into()));
        }
        if self.c2s.max_stanza_size < 1024 {
            return Err(ConfigError::Invalid(
                "c2s.max_stanza_size must be at least 1024".into(),
            ));
        }
        if self.c2s.outbound_queue == 0 {
            return Err(ConfigError::Invalid(
                "c2s.outbound_queue must be at least 1".into(),
            ));
        }
        let sm = &self.stream_management;
        if sm.max_unacked == 0 || sm.request_every == 0 || sm.request_every > sm.max_unacked {
            return Err(ConfigError::Invalid(
                "stream_management.max_unacked and request_every must be at least 1, and request_every at most max_unacked".into(),
            ));
        }
        if self.accounts.pbkdf2_iterations < 4096 {
            return Err(ConfigError::Invalid(
                "accounts.pbkdf2_iterations must be at least 4096".into(),
            ));
        }
        let l = &self.limits;
        if l.max_connections_per_address == 0
            || l.max_unauthenticated_connections == 0
            || l.max_resources_per_account == 0
            || l.auth_ban_failures == 0
        {
            return Err(ConfigError::Invalid(
                "limits.max_connections_per_address, max_unauthenticated_connections, max_resources_per_account and auth_ban_failures must be at least 1".into(),
            ));
        }
        for (rate, burst, name) in [
            (l.c2s_rate, l.c2s_burst, "c2s"),
            (l.things_rate, l.things_burst, "things"),
        ] {
            if rate > 0 && burst < 4096 {
                return Err(ConfigError::Invalid(format!(
                    "limits.{name}_burst must be at least 4096 (one read) when {name}_rate is set"
                )));
            }
        }
        for (domain, secret) in &self.components.secrets {
            let ok = lithos_core::Jid::new(domain)
                .is_ok_and(|j| j.is_domain() && j.domain() == domain.as_str());
            if !ok || domain.eq_ignore_ascii_case(&self.domain) {
                return Err(ConfigError::Invalid(format!(
                    "components.secrets: {domain:?} must be a bare domain name (lower case) other than the server's"
                )));
            }
            if secret.len() < 8 {
                return Err(ConfigError::Invalid(format!(
                    "components.secrets: the secret of {domain:?} must have at least 8 characters"
                )));
            }
        }
        if !self.components.listen.is_empty() && self.components.secrets.is_empty() {
            return Err(ConfigError::Invalid(
                "components.listen is set but no component is configured (components.secrets)"
                    .into(),
            ));
        }
        if self.storage.backend == StorageBackend::Postgres && self.storage.url.is_empty() {
            return Err(ConfigError::Invalid(
                "storage.url is needed when storage.backend is \"postgres\"".into(),
            ));
        }
        if self.storage.pool_size == 0 {
            return Err(ConfigError::Invalid(
                "storage.pool_size must be at least 1".into(),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key go together".into(),
            ));
        }
        Ok(())
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("lithos.sqlite")
    }

    /// Opens the configured database (`[storage]`), bringing its schema up to date.
    pub async fn open_database(
        &self,
    ) -> Result<crate::storage::Database, crate::storage::StorageError> {
        let db: crate::storage::Database = match self.storage.backend {
            StorageBackend::Sqlite => {
                crate::storage::SqliteStore::open(&self.database_path())?.into()
            }
            StorageBackend::Postgres => crate::storage::PgStore::connect_with(
                &self.storage.url,
                self.storage.pool_size,
                self.storage.ca_file.as_deref(),
            )
            .await?
            .into(),
        };
        db.set_tombstone_secs(self.accounts.tombstone_secs);
        Ok(db)
    }

    /// Whether a module is enabled: its `enabled` key, else its default.
    pub fn module_enabled(&self, name: &str, default: bool) -> bool {
        self.modules
            .get(name)
            .and_then(|t| t.get("enabled"))
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }

    /// A module's section without its `enabled` key (empty if absent).
    pub fn module_section(&self, name: &str) -> toml::Table {
        let mut t = self.modules.get(name).cloned().unwrap_or_default();
        t.remove("enabled");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.domain, "localhost");
        assert_eq!(c.c2s.listen, vec!["127.0.0.1:5222".parse().unwrap()]);
        assert!(c.c2s.require_tls);
        assert_eq!(
            c.database_path(),
            PathBuf::from("lithos-data/lithos.sqlite")
        );
    }

    #[test]
    fn values_and_modules() {
        let c = Config::parse(
            r#"
            domain = "example.com"
            [c2s]
            listen = ["0.0.0.0:5222"]
            require_tls = false
            [modules.register]
            enabled = true
            allow = "anyone"
            "#,
        )
        .unwrap();
        assert_eq!(c.domain, "example.com");
        assert!(!c.c2s.require_tls);
        assert!(c.module_enabled("register", false));
        assert!(!c.module_enabled("other", false));
        assert_eq!(
            c.module_section("register").get("allow").unwrap().as_str(),
            Some("anyone")
        );
        assert!(c.module_section("register").get("enabled").is_none());
    }

    #[test]
    fn components() {
        let c = Config::parse(
            "[components]\nlisten = ['127.0.0.1:5347']\n\
             [components.secrets]\n'bridge.localhost' = 'long-enough'\n",
        )
        .unwrap();
        assert_eq!(c.components.listen.len(), 1);
        assert_eq!(c.components.secrets["bridge.localhost"], "long-enough");
        assert!(Config::parse("").unwrap().components.secrets.is_empty());
    }

    #[test]
    fn rejections() {
        for bad in [
            "domian = 'x'",
            "domain = 'a@b'",
            "domain = 'bad domain'",
            "[c2s]\nlisten = []\ndirect_tls = []",
            "[c2s]\nmax_stanza_size = 10",
            "[tls]\ncert = 'x.pem'",
            "[c2s]\nlisten = ['not an address']",
            // Components: a domain that is no bare domain, the server's own, upper case, a
            // short secret, a listener with nothing to serve.
            "[components.secrets]\n'a@bridge.localhost' = 'long-enough'",
            "[components.secrets]\n'localhost' = 'long-enough'",
            "[components.secrets]\n'Bridge.localhost' = 'long-enough'",
            "[components.secrets]\n'bridge.localhost' = 'short'",
            "[components]\nlisten = ['127.0.0.1:5347']",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }
}
