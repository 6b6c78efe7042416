//! IM core against the real server: rosters, subscriptions, presence, offline messages,
//! service discovery, version, ping.

mod common;

use std::time::Duration;

use common::{Client, TestServer, stanza};
use lithos_core::Element;

const ROSTER: &str = "jabber:iq:roster";

fn roster_query(ver: Option<&str>) -> Element {
    Element::builder("query", ROSTER)
        .opt_attr("ver", ver.map(str::to_string))
        .build()
}

fn items(iq: &Element) -> Vec<(String, String, Option<String>)> {
    iq.get_child("query", ROSTER)
        .map(|q| {
            q.children()
                .map(|i| {
                    (
                        i.attr("jid").unwrap_or_default().to_string(),
                        i.attr("subscription").unwrap_or_default().to_string(),
                        i.attr("ask").map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn push(c: &mut Client) -> Element {
    let p = c
        .recv_where(|e| {
            e.name() == "iq" && e.attr("type") == Some("set") && e.has_child("query", ROSTER)
        })
        .await;
    // Acknowledge it, as clients must.
    c.send(
        Element::builder("iq", "jabber:client")
            .attr("type", "result")
            .attr("id", p.attr("id").unwrap().to_string())
            .build(),
    )
    .await;
    p
}

#[tokio::test]
async fn roster_get_set_push_versions() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    let mut a = s.login("juliet", "j", "a").await;
    let mut b = s.login("juliet", "j", "b").await;
    let r = a.iq("get", None, roster_query(Some(""))).await;
    assert_eq!(r.attr("type"), Some("result"));
    let v0 = r
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_string();
    assert!(items(&r).is_empty());
    b.iq("get", None, roster_query(None)).await;

    let set = Element::parse(
        "<query xmlns='jabber:iq:roster'><item jid='Romeo@Localhost' name='Romeo'><group>Friends</group></item></query>",
    )
    .unwrap();
    let ok = a.iq("set", None, set).await;
    assert_eq!(ok.attr("type"), Some("result"));
    // Both resources that asked for the roster get the push.
    for c in [&mut a, &mut b] {
        let p = push(c).await;
        assert_eq!(
            items(&p),
            [("romeo@localhost".to_string(), "none".to_string(), None)]
        );
    }
    // Unchanged since v1: empty result.
    let r = a.iq("get", None, roster_query(None)).await;
    let v1 = r
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_string();
    assert_ne!(v0, v1);
    let same = a.iq("get", None, roster_query(Some(&v1))).await;
    assert_eq!(same.attr("type"), Some("result"));
    assert!(same.get_child("query", ROSTER).is_none());

    // Bad sets are refused.
    for bad in [
        "<query xmlns='jabber:iq:roster'/>",
        "<query xmlns='jabber:iq:roster'><item jid='x@localhost' subscription='both'/></query>",
        "<query xmlns='jabber:iq:roster'><item jid='juliet@localhost'/></query>",
    ] {
        let e = a.iq("set", None, Element::parse(bad).unwrap()).await;
        assert_eq!(e.attr("type"), Some("error"), "{bad}");
    }
    // Someone else's roster is not ours to read.
    s.add_user("romeo", "r").await;
    let mut r = s.login("romeo", "r", "o").await;
    let e = r
        .iq("get", Some("juliet@localhost"), roster_query(None))
        .await;
    assert_eq!(e.attr("type"), Some("error"));

    // Removal pushes subscription="remove".
    let rm = Element::parse("<query xmlns='jabber:iq:roster'><item jid='romeo@localhost' subscription='remove'/></query>").unwrap();
    assert_eq!(a.iq("set", None, rm).await.attr("type"), Some("result"));
    assert_eq!(items(&push(&mut b).await)[0].1, "remove");
}

#[tokio::test]
async fn subscription_handshake_and_presence() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    j.iq("get", None, roster_query(None)).await;
    r.iq("get", None, roster_query(None)).await;
    j.send(stanza("<presence/>")).await;
    r.send(stanza("<presence/>")).await;

    // Romeo asks to see Juliet's presence.
    r.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    let p = push(&mut r).await;
    assert_eq!(
        items(&p),
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
    assert_eq!(items(&push(&mut j).await)[0].1, "from");
    assert_eq!(
        items(&push(&mut r).await),
        [("juliet@localhost".into(), "to".into(), None)]
    );
    r.recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribed"))
        .await;
    let p = r
        .recv_where(|e| {
            e.name() == "presence" && e.attr("from") == Some("juliet@localhost/balcony")
        })
        .await;
    assert!(p.attr("type").is_none());

    // Juliet's later presence reaches Romeo; Romeo's does not reach Juliet (one-way).
    j.send(stanza("<presence><show>away</show></presence>"))
        .await;
    let p = r
        .recv_where(|e| {
            e.name() == "presence" && e.attr("from") == Some("juliet@localhost/balcony")
        })
        .await;
    assert_eq!(p.get_child("show", "jabber:client").unwrap().text(), "away");
    j.recv_where(|e| e.name() == "presence" && e.has_child("show", "jabber:client"))
        .await;
    j.pending.clear();
    r.send(stanza("<presence><show>dnd</show></presence>"))
        .await;
    j.expect_silence(Duration::from_millis(300)).await;

    // Romeo's later session probes on initial presence and learns Juliet is here.
    let mut r2 = s.login("romeo", "r", "phone").await;
    r2.send(stanza("<presence/>")).await;
    let p = r2
        .recv_where(|e| {
            e.name() == "presence" && e.attr("from") == Some("juliet@localhost/balcony")
        })
        .await;
    assert!(p.attr("type").is_none());

    // Juliet leaves: Romeo's sessions get unavailable.
    j.close().await;
    let p = r
        .recv_where(|e| {
            e.name() == "presence" && e.attr("from") == Some("juliet@localhost/balcony")
        })
        .await;
    assert_eq!(p.attr("type"), Some("unavailable"));
}

#[tokio::test]
async fn requests_wait_for_an_offline_contact_and_pre_approval() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    s.add_user("nurse", "n").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    r.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    r.expect_silence(Duration::from_millis(200)).await;
    // Juliet logs in later and gets the request on her initial presence.
    let mut j = s.login("juliet", "j", "balcony").await;
    j.send(stanza("<presence/>")).await;
    let req = j
        .recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(req.attr("from"), Some("romeo@localhost"));

    // Pre-approval: the nurse's later request is approved without asking Juliet.
    j.send(stanza("<presence to='nurse@localhost' type='subscribed'/>"))
        .await;
    let mut n = s.login("nurse", "n", "home").await;
    n.send(stanza("<presence/>")).await;
    n.send(stanza("<presence to='juliet@localhost' type='subscribe'/>"))
        .await;
    n.recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribed"))
        .await;
}

#[tokio::test]
async fn directed_presence_and_its_end() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    let r = s.login("romeo", "r", "orchard").await;
    j.send(stanza("<presence/>")).await;
    let mut r = r;
    r.send(stanza("<presence to='juliet@localhost/balcony'/>"))
        .await;
    let p = j
        .recv_where(|e| e.name() == "presence" && e.attr("from") == Some("romeo@localhost/orchard"))
        .await;
    assert!(p.attr("type").is_none());
    r.close().await;
    let p = j
        .recv_where(|e| e.name() == "presence" && e.attr("from") == Some("romeo@localhost/orchard"))
        .await;
    assert_eq!(p.attr("type"), Some("unavailable"));
}

#[tokio::test]
async fn offline_messages_survive_a_restart() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    r.send(stanza("<message to='juliet@localhost' type='chat' id='o1'><body>Wherefore art thou?</body></message>")).await;
    // A chat-state notification alone is not kept (and is not an error).
    r.send(stanza("<message to='juliet@localhost' type='chat' id='o2'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
    r.expect_silence(Duration::from_millis(300)).await;
    r.close().await;
    let s = s.restart().await;
    let mut j = s.login("juliet", "j", "balcony").await;
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
    let mut j2 = s.login("juliet", "j", "phone").await;
    j2.send(stanza("<presence/>")).await;
    j2.recv_where(|e| e.name() == "presence").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    j2.pending.retain(|e| e.name() != "presence");
    j2.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn offline_storage_has_a_cap() {
    let s = TestServer::start("[modules.offline]\nmax_per_account = 2").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    for i in 0..3 {
        r.send(stanza(&format!(
            "<message to='juliet@localhost' id='c{i}'><body>{i}</body></message>"
        )))
        .await;
    }
    let e = r.recv_where(|e| e.attr("id") == Some("c2")).await;
    assert_eq!(e.attr("type"), Some("error"));
}

#[tokio::test]
async fn disco_version_ping() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    let mut j = s.login("juliet", "j", "balcony").await;
    let info = j
        .iq(
            "get",
            Some("localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let id = q
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        (id.attr("category"), id.attr("type")),
        (Some("server"), Some("im"))
    );
    let features: Vec<_> = q.children().filter_map(|f| f.attr("var")).collect();
    for f in [
        "http://jabber.org/protocol/disco#info",
        "urn:xmpp:ping",
        "jabber:iq:version",
        "msgoffline",
    ] {
        assert!(features.contains(&f), "{f} missing from {features:?}");
    }
    let v = j
        .iq(
            "get",
            Some("localhost"),
            Element::bare("query", "jabber:iq:version"),
        )
        .await;
    let vq = v.get_child("query", "jabber:iq:version").unwrap();
    assert_eq!(
        vq.get_child("name", "jabber:iq:version").unwrap().text(),
        "Lithos"
    );
    assert!(vq.get_child("os", "jabber:iq:version").is_none());
    let p = j.ping().await;
    assert_eq!(p.attr("type"), Some("result"));
    // Without a `to`, a ping is answered by the server too.
    let p = j
        .iq("get", None, Element::bare("ping", "urn:xmpp:ping"))
        .await;
    assert_eq!(p.attr("type"), Some("result"));
    // Account info.
    let a = j
        .iq(
            "get",
            Some("juliet@localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    assert_eq!(a.attr("type"), Some("result"));
    let none = j
        .iq(
            "get",
            Some("nobody@localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    assert_eq!(none.attr("type"), Some("error"));
}
