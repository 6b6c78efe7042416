//! Offline messages against a real server: kept across a restart, delivered once with a
//! delay stamp on the next available presence, capped per account.

use std::time::Duration;

use lithos_offline as _;
// Availability comes with presence.
use lithos_presence as _;
use lithos_testkit::{TestServer, stanza};

#[tokio::test]
async fn offline_messages_survive_a_restart() {
    let s = TestServer::with_users("", &["juliet", "romeo"]).await;
    let mut r = s.login_as("romeo", "orchard").await;
    r.send(stanza("<message to='juliet@localhost' type='chat' id='o1'><body>Wherefore art thou?</body></message>")).await;
    // A chat-state notification alone is not kept (and is not an error).
    r.send(stanza("<message to='juliet@localhost' type='chat' id='o2'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
    r.expect_silence(Duration::from_millis(300)).await;
    r.close().await;
    let s = s.restart().await;
    let mut j = s.login_as("juliet", "balcony").await;
    j.send(stanza("<presence/>")).await;
    let m = j.recv_where(|e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("o1"));
    assert_eq!(m.attr("from"), Some("romeo@localhost/orchard"));
    let delay = m.get_child("delay", "urn:xmpp:delay").unwrap();
    assert_eq!(delay.attr("from"), Some("localhost"));
    assert!(lithos_core::datetime::parse(delay.attr("stamp").unwrap()).is_some());
    j.pending.retain(|e| e.name() != "presence");
    j.expect_silence(Duration::from_millis(300)).await;
    // Delivered once: a new session gets nothing more.
    let mut j2 = s.login_as("juliet", "phone").await;
    j2.send(stanza("<presence/>")).await;
    j2.recv_where(|e| e.name() == "presence").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    j2.pending.retain(|e| e.name() != "presence");
    j2.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn offline_storage_has_a_cap() {
    let s = TestServer::with_users(
        "[modules.offline]\nmax_per_account = 2",
        &["juliet", "romeo"],
    )
    .await;
    let mut r = s.login_as("romeo", "orchard").await;
    for i in 0..3 {
        r.send(stanza(&format!(
            "<message to='juliet@localhost' id='c{i}'><body>{i}</body></message>"
        )))
        .await;
    }
    let e = r.recv_where(|e| e.attr("id") == Some("c2")).await;
    assert_eq!(e.attr("type"), Some("error"));
}
