//! Pings against a real server, raw and through the client's `PingExt`.

use std::time::Duration;

use lithos_core::{Element, Jid};
use lithos_ping::PingExt;
use lithos_testkit::TestServer;

#[tokio::test]
async fn the_server_answers_pings() {
    let s = TestServer::with_users("", &["juliet"]).await;
    let mut j = s.login_as("juliet", "balcony").await;
    let p = j.ping().await;
    assert_eq!(p.attr("type"), Some("result"));
    // Without a `to`, a ping is answered by the server too.
    let p = j
        .iq("get", None, Element::bare("ping", "urn:xmpp:ping"))
        .await;
    assert_eq!(p.attr("type"), Some("result"));
}

#[tokio::test]
async fn clients_ping_the_server_and_answer_each_other() {
    let s = TestServer::start("").await;
    s.add_users(&["alice", "bob"]).await;
    let (alice, _ae) = s.user("alice", lithos_core::codec::WireFormat::Xml).await;
    let (_bob, _be) = s.user("bob", lithos_core::codec::WireFormat::Bxmpp).await;
    let t = Duration::from_secs(5);
    alice.ping(Jid::new("localhost").unwrap(), t).await.unwrap();
    // Every client of the program answers pings (the plugin), in BXMPP too.
    alice
        .ping(Jid::new("bob@localhost/app").unwrap(), t)
        .await
        .unwrap();
}
