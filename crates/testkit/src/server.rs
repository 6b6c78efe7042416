//! [`TestServer`]: a server in the test's process.

use std::net::SocketAddr;
use std::time::Duration;

use lithos_client::{ClientBuilder, Trust};
use lithos_core::codec::WireFormat;
use lithos_server::sasl::scram::ScramHash;
use lithos_server::{Config, RunningServer, ServerHandle};

use crate::{RawClient, connector_for};

/// A server on loopback ports (client, direct TLS and things listeners) in a temporary
/// directory, stopped when dropped.
pub struct TestServer {
    /// The server (`None` only inside [`restart`](Self::restart)).
    pub server: Option<RunningServer>,
    /// Its data directory (the generated certificate is in `tls/cert.pem`).
    pub dir: tempfile::TempDir,
    /// The configuration the test added.
    pub extra: String,
    /// The `[storage]` section chosen for it (empty: the embedded SQLite file), kept across
    /// [`restart`](Self::restart)s.
    storage: String,
}

/// The `[storage]` section for a new test server: empty (SQLite) unless
/// `LITHOS_TEST_STORAGE=postgres`, which puts every test server on a fresh PostgreSQL
/// database (and fails the test when no PostgreSQL server can start).
fn storage_section(extra: &str) -> String {
    if extra.contains("[storage]") {
        return String::new();
    }
    match std::env::var("LITHOS_TEST_STORAGE").as_deref() {
        Ok("postgres") => {
            let url = lithos_testservices::postgres().unwrap_or_else(|e| {
                panic!("LITHOS_TEST_STORAGE=postgres, but PostgreSQL did not start: {e}")
            });
            format!("[storage]\nbackend = 'postgres'\nurl = '{url}'\npool_size = 8\n")
        }
        _ => String::new(),
    }
}

impl TestServer {
    /// A server for `localhost`. `extra` is TOML added to the configuration: top-level keys
    /// and sections; keys after a `[c2s]` line go into the client listener's section.
    /// `LITHOS_TEST_LOG=1` logs at debug level.
    pub async fn start(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra).await
    }

    /// A server on an existing data directory (one a test prepared, or an older release
    /// wrote); see [`start`](Self::start) for `extra`.
    pub async fn start_in(dir: tempfile::TempDir, extra: &str) -> TestServer {
        let storage = storage_section(extra);
        Self::start_with(dir, extra, storage).await
    }

    async fn start_with(dir: tempfile::TempDir, extra: &str, storage: String) -> TestServer {
        if std::env::var_os("LITHOS_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
        let (head, c2s_extra) = extra.split_once("[c2s]").unwrap_or((extra, ""));
        // An `[http]` section of the test's own replaces the default one.
        let http = if head.contains("[http]") {
            ""
        } else {
            "[http]\nlisten = ['127.0.0.1:0']\n"
        };
        let text = format!(
            "domain = 'localhost'\ndata_dir = '{}'\n{head}\n[things]\nlisten = ['127.0.0.1:0']\n\
             {http}{storage}[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = ['127.0.0.1:0']\n{c2s_extra}\n",
            dir.path().display()
        );
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let server = RunningServer::start(config)
            .await
            .unwrap_or_else(|e| panic!("the test server does not start: {e}\n{text}"));
        TestServer {
            server: Some(server),
            dir,
            extra: extra.to_string(),
            storage,
        }
    }

    /// A server (see [`start`](Self::start)) with these accounts, each with the password
    /// `<name>-password`.
    pub async fn with_users(extra: &str, names: &[&str]) -> TestServer {
        let s = Self::start(extra).await;
        s.add_users(names).await;
        s
    }

    /// The running server.
    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("running")
    }

    /// The client (STARTTLS) listener.
    pub fn addr(&self) -> SocketAddr {
        self.running().c2s_addrs[0]
    }

    /// The direct TLS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.running().direct_tls_addrs[0]
    }

    /// The things listener.
    pub fn things_addr(&self) -> SocketAddr {
        self.running().thing_addrs[0]
    }

    /// The HTTP listener (`/health`, `/metrics`).
    pub fn http_addr(&self) -> SocketAddr {
        self.running().http_addrs[0]
    }

    /// The server's handle (storage, sessions, routing).
    pub fn handle(&self) -> &ServerHandle {
        self.running().handle()
    }

    /// Creates an account (4,096 PBKDF2 iterations: tests log in often).
    pub async fn add_user(&self, name: &str, password: &str) {
        let creds = lithos_server::sasl::Credentials::new(password, 4096).unwrap();
        self.handle()
            .storage()
            .accounts
            .create_account(name, &creds)
            .await
            .unwrap();
    }

    /// Creates each account, its password `<name>-password`.
    pub async fn add_users(&self, names: &[&str]) {
        for name in names {
            self.add_user(name, &format!("{name}-password")).await;
        }
    }

    /// Stops the server (as on SIGTERM) and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        self.server
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await;
        let extra = self.extra.clone();
        let storage = std::mem::take(&mut self.storage);
        Self::start_with(self.dir, &extra, storage).await
    }

    /// Trust for the server's generated certificate.
    pub fn trust(&self) -> Trust {
        Trust::pinned_file(self.dir.path().join("tls/cert.pem")).unwrap()
    }

    /// A TLS connector trusting the server's generated certificate.
    pub fn tls_connector(&self) -> tokio_rustls::TlsConnector {
        connector_for(&self.dir.path().join("tls/cert.pem"))
    }

    /// A `lithos_client` builder for `jid` over STARTTLS, trusting the server.
    pub fn client(&self, jid: &str, password: &str) -> ClientBuilder {
        ClientBuilder::new(jid, password)
            .unwrap()
            .address(self.addr().to_string())
            .trust(self.trust())
    }

    /// `name@localhost/app` connected with `lithos_client` in `format`, its password
    /// `<name>-password` (as [`add_users`](Self::add_users) makes it).
    pub async fn user(
        &self,
        name: &str,
        format: WireFormat,
    ) -> (lithos_client::Client, lithos_client::Events) {
        self.client(
            &format!("{name}@localhost/app"),
            &format!("{name}-password"),
        )
        .format(format)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"))
    }

    /// A raw client logged in over STARTTLS with SCRAM-SHA-256, with `resource` bound.
    pub async fn login(&self, user: &str, password: &str, resource: &str) -> RawClient {
        self.login_on(
            RawClient::connect(self.addr()).await,
            user,
            password,
            resource,
        )
        .await
    }

    /// A raw client logged in as `name` (password `<name>-password`), `resource` bound.
    pub async fn login_as(&self, name: &str, resource: &str) -> RawClient {
        self.login(name, &format!("{name}-password"), resource)
            .await
    }

    /// As [`login`](Self::login), on a connection whose receive buffer is a few kilobytes:
    /// when it stops reading, the server's writes stall at once instead of filling megabytes
    /// of socket buffers first.
    pub async fn login_small_window(
        &self,
        user: &str,
        password: &str,
        resource: &str,
    ) -> RawClient {
        self.login_on(
            RawClient::connect_small_window(self.addr()).await,
            user,
            password,
            resource,
        )
        .await
    }

    /// Logs in on a connected raw client.
    pub async fn login_on(
        &self,
        mut c: RawClient,
        user: &str,
        password: &str,
        resource: &str,
    ) -> RawClient {
        c.open().await;
        c.starttls(&self.tls_connector()).await;
        c.auth_scram(ScramHash::Sha256, user, password)
            .await
            .unwrap();
        c.bind(Some(resource)).await;
        c
    }
}
