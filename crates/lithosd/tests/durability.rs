//! What the server acknowledged survives `kill -9`: the `lithosd` binary is killed with
//! SIGKILL right after its answers, and a new process on the same data directory has it all.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;

use common::{Client, connector_for, process};
use lithos_core::Element;
use lithos_server::sasl::ScramHash;

struct Lithosd {
    child: Child,
    addr: SocketAddr,
}

impl Lithosd {
    /// Starts the binary and waits until it accepts connections.
    async fn start(dir: &Path, config: &Path, addr: SocketAddr) -> Lithosd {
        let log = dir.join("lithosd.log");
        let child = process::spawn(config, &log);
        process::wait_listening(addr.port(), &log).await;
        Lithosd { child, addr }
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix: no shutdown code runs.
        self.child.wait().unwrap();
    }

    async fn client(&self, dir: &Path) -> Client {
        let mut c = Client::connect(self.addr).await;
        c.open().await;
        c.starttls(&connector_for(&dir.join("data/tls/cert.pem")))
            .await;
        c
    }

    async fn login(&self, dir: &Path, user: &str, password: &str) -> Client {
        let mut c = self.client(dir).await;
        c.auth_scram(ScramHash::Sha256, user, password)
            .await
            .unwrap();
        c.bind(Some("r")).await;
        c
    }
}

impl Drop for Lithosd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn register(user: &str, password: &str) -> Element {
    Element::builder("query", "jabber:iq:register")
        .child(
            Element::builder("username", "jabber:iq:register")
                .text(user)
                .build(),
        )
        .child(
            Element::builder("password", "jabber:iq:register")
                .text(password)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let addr: SocketAddr = format!("127.0.0.1:{}", process::free_port())
        .parse()
        .unwrap();
    let config = dir.join("lithos.toml");
    std::fs::write(
        &config,
        format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n[http]\nlisten = []\n[c2s]\nlisten = ['{addr}']\ndirect_tls = ['127.0.0.1:{}']\n\
             [modules.register]\nenabled = true\nmin_seconds_between = 0\n",
            dir.join("data").display(),
            process::free_port()
        ),
    )
    .unwrap();

    let server = Lithosd::start(dir, &config, addr).await;
    // Two accounts created in-band: acknowledged by their results.
    for (user, pw) in [("romeo", "montague!"), ("juliet", "capulet!")] {
        let mut c = server.client(dir).await;
        let r = c.iq("set", None, register(user, pw)).await;
        assert_eq!(r.attr("type"), Some("result"), "{r}");
    }
    let mut romeo = server.login(dir, "romeo", "montague!").await;
    // A roster item, acknowledged by the result.
    let set = Element::builder("query", "jabber:iq:roster")
        .child(
            Element::builder("item", "jabber:iq:roster")
                .attr("jid", "juliet@localhost")
                .attr("name", "Juliet")
                .build(),
        )
        .build();
    let r = romeo.iq("set", None, set).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    // A message for an offline account; the ping answered after it proves it was handled
    // (a session's stanzas are processed in order).
    romeo
        .send(
            Element::builder("message", "jabber:client")
                .attr("to", "juliet@localhost")
                .attr("type", "chat")
                .child(
                    Element::builder("body", "jabber:client")
                        .text("wherefore art thou")
                        .build(),
                )
                .build(),
        )
        .await;
    let r = romeo.ping().await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    server.kill_9();

    let server = Lithosd::start(dir, &config, addr).await;
    let mut romeo = server.login(dir, "romeo", "montague!").await;
    let r = romeo
        .iq("get", None, Element::bare("query", "jabber:iq:roster"))
        .await;
    let item = r
        .get_child("query", "jabber:iq:roster")
        .and_then(|q| q.children().next())
        .unwrap_or_else(|| panic!("the roster item is lost: {r}"));
    assert_eq!(item.attr("jid"), Some("juliet@localhost"));
    assert_eq!(item.attr("name"), Some("Juliet"));

    let mut juliet = server.login(dir, "juliet", "capulet!").await;
    juliet
        .send(Element::bare("presence", "jabber:client"))
        .await;
    let m = juliet.recv_where(|e| e.name() == "message").await;
    assert_eq!(
        m.get_child("body", "jabber:client")
            .map(|b| b.text())
            .as_deref(),
        Some("wherefore art thou")
    );
    assert!(m.has_child("delay", "urn:xmpp:delay"), "{m}");
}
