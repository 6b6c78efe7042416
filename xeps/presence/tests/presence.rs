//! Presence against a real server: the subscription handshake, requests waiting for an
//! offline contact, pre-approval, broadcast, probes, directed presence.

use std::time::Duration;

// Subscriptions live in the roster.
use lithos_presence as _;
use lithos_testkit::{TestServer, roster_items, roster_push, roster_query, stanza};

#[tokio::test]
async fn subscription_handshake_and_presence() {
    let s = TestServer::with_users("", &["juliet", "romeo"]).await;
    let mut j = s.login_as("juliet", "balcony").await;
    let mut r = s.login_as("romeo", "orchard").await;
    j.iq("get", None, roster_query(None)).await;
    r.iq("get", None, roster_query(None)).await;
    j.send(stanza("<presence/>")).await;
    r.send(stanza("<presence/>")).await;

    // Romeo asks to see Juliet's presence.
    r.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    let p = roster_push(&mut r).await;
    assert_eq!(
        roster_items(&p),
        [(
            "juliet@localhost".into(),
            "none".into(),
            Some("subscribe".into())
        )]
    );
    let req = j
        .recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(req.attr("from"), Some("romeo@localhost"));

    // Juliet approves: both rosters change, Romeo learns, and gets Juliet's presence.
    j.send(stanza("<presence to='romeo@localhost' type='subscribed'/>"))
        .await;
    assert_eq!(roster_items(&roster_push(&mut j).await)[0].1, "from");
    assert_eq!(
        roster_items(&roster_push(&mut r).await),
        [("juliet@localhost".into(), "to".into(), None)]
    );
    r.recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribed"))
        .await;
    let p = r.presence_from("juliet@localhost/balcony").await;
    assert!(p.attr("type").is_none());

    // Juliet's later presence reaches Romeo; Romeo's does not reach Juliet (one-way).
    j.send(stanza("<presence><show>away</show></presence>"))
        .await;
    let p = r.presence_from("juliet@localhost/balcony").await;
    assert_eq!(p.get_child("show", "jabber:client").unwrap().text(), "away");
    j.recv_where(|e| e.name() == "presence" && e.has_child("show", "jabber:client"))
        .await;
    j.pending.clear();
    r.send(stanza("<presence><show>dnd</show></presence>"))
        .await;
    j.expect_silence(Duration::from_millis(300)).await;

    // Romeo's later session probes on initial presence and learns Juliet is here.
    let mut r2 = s.login_as("romeo", "phone").await;
    r2.send(stanza("<presence/>")).await;
    let p = r2.presence_from("juliet@localhost/balcony").await;
    assert!(p.attr("type").is_none());

    // Juliet leaves: Romeo's sessions get unavailable.
    j.close().await;
    let p = r.presence_from("juliet@localhost/balcony").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
}

#[tokio::test]
async fn requests_wait_for_an_offline_contact_and_pre_approval() {
    let s = TestServer::with_users("", &["juliet", "romeo", "nurse"]).await;
    let mut r = s.login_as("romeo", "orchard").await;
    r.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    r.expect_silence(Duration::from_millis(200)).await;
    // Juliet logs in later and gets the request on her initial presence.
    let mut j = s.login_as("juliet", "balcony").await;
    j.send(stanza("<presence/>")).await;
    let req = j
        .recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(req.attr("from"), Some("romeo@localhost"));

    // Pre-approval: the nurse's later request is approved without asking Juliet.
    j.send(stanza("<presence to='nurse@localhost' type='subscribed'/>"))
        .await;
    let mut n = s.login_as("nurse", "home").await;
    n.send(stanza("<presence/>")).await;
    n.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    n.recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribed"))
        .await;
}

#[tokio::test]
async fn directed_presence_and_its_end() {
    let s = TestServer::with_users("", &["juliet", "romeo"]).await;
    let mut j = s.login_as("juliet", "balcony").await;
    let r = s.login_as("romeo", "orchard").await;
    j.send(stanza("<presence/>")).await;
    let mut r = r;
    r.send(stanza("<presence to='juliet@localhost/balcony'/>"))
        .await;
    let p = j.presence_from("romeo@localhost/orchard").await;
    assert!(p.attr("type").is_none());
    r.close().await;
    let p = j.presence_from("romeo@localhost/orchard").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
}
