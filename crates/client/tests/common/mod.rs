//! A `lithosd` in-process (every module of the workspace) for the client's tests.

#![allow(dead_code)]

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::net::SocketAddr;

use lithos_client::{ClientBuilder, Trust};
use lithos_server::{Config, RunningServer};

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// `extra` is added to the configuration (top-level keys and sections; `[c2s]` keys go
    /// in `c2s`).
    pub async fn start(c2s: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = ['127.0.0.1:0']\n{c2s}\n",
            dir.path().display()
        );
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let server = RunningServer::start(config).await.unwrap();
        TestServer { server, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.c2s_addrs[0]
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.server.direct_tls_addrs[0]
    }

    pub fn trust(&self) -> Trust {
        Trust::pinned_file(self.dir.path().join("tls/cert.pem")).unwrap()
    }

    pub async fn add_user(&self, name: &str, password: &str) {
        let creds = lithos_server::sasl::Credentials::new(password, 4096).unwrap();
        self.server
            .handle()
            .storage()
            .accounts
            .create_account(name, &creds)
            .await
            .unwrap();
    }

    /// A builder for `jid` at this server over STARTTLS, trusting its certificate.
    pub fn builder(&self, jid: &str, password: &str) -> ClientBuilder {
        ClientBuilder::new(jid, password)
            .unwrap()
            .address(self.addr().to_string())
            .trust(self.trust())
    }
}
