//! A lithosd in-process with operators, and helpers to bring things in.

#![allow(dead_code)]

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lithos_client::{Client, ClientBuilder, Events, Trust, WireFormat};
use lithos_core::Element;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_server::{Config, RunningServer};
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_operator::OperatorExt;

/// The registration key every test thing has (operators authorize it with this key).
pub const KEY: &str = "REGISTRATION-KEY";

pub const T: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server whose operator is `alice`; `extra` goes into `[modules.operator]`.
    pub async fn start(operator_extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n\
             [c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n\
             [modules.operator]\noperators = ['alice']\n{operator_extra}\n",
            dir.path().display()
        );
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let server = RunningServer::start(config).await.unwrap();
        let s = TestServer { server, dir };
        for u in ["alice", "bob"] {
            s.add_user(u, &format!("{u}-password")).await;
        }
        s
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

    pub fn trust(&self) -> Trust {
        Trust::pinned_file(self.dir.path().join("tls/cert.pem")).unwrap()
    }

    pub fn things_addr(&self) -> String {
        self.server.thing_addrs[0].to_string()
    }

    /// A user logged in on the client port.
    pub async fn user(&self, name: &str, format: WireFormat) -> (Client, Events) {
        ClientBuilder::new(
            &format!("{name}@localhost/app"),
            &format!("{name}-password"),
        )
        .unwrap()
        .address(self.server.c2s_addrs[0].to_string())
        .trust(self.trust())
        .format(format)
        .connect()
        .await
        .unwrap()
    }

    /// A thing runtime for `id`, pointed at the things port.
    pub fn runtime(&self, id: &str, format: WireFormat) -> ThingRuntime {
        ThingRuntime::new(id, KEY, "localhost")
            .address(self.things_addr())
            .trust(self.trust())
            .format(format)
    }

    /// `SL-01-<serial>` authorized by alice, registered and online, counting its flashes;
    /// its `flash` with `repeat="99"` fails with `resource-constraint`, and `turn-on` never
    /// answers.
    pub async fn light(
        &self,
        alice: &Client,
        serial: &str,
        format: WireFormat,
    ) -> (String, Client, Arc<AtomicUsize>) {
        let id = format!("SL-01-{serial}");
        alice.authorize_thing(&id, KEY, T).await.unwrap();
        let flashes = Arc::new(AtomicUsize::new(0));
        let counter = flashes.clone();
        let (thing, _events) = self
            .runtime(&id, format)
            .on_action(
                lithos_things_demo::light::NS,
                "flash",
                action_handler(move |action: Element| {
                    let counter = counter.clone();
                    async move {
                        if action.attr("repeat") == Some("99") {
                            return Err(StanzaError::new(DefinedCondition::ResourceConstraint)
                                .with_text("the bulb would burn out"));
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok(None)
                    }
                }),
            )
            .on_action(
                lithos_things_demo::light::NS,
                "turn-on",
                action_handler(|_| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(None)
                }),
            )
            .start()
            .await
            .unwrap();
        (id, thing, flashes)
    }
}

pub fn condition(e: &lithos_client::RequestError) -> Option<DefinedCondition> {
    match e {
        lithos_client::RequestError::Stanza(s) => Some(s.condition),
        _ => None,
    }
}
