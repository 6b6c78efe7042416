//! The roster module against a real server: get, set, pushes to every resource, versions.

use lithos_core::Element;
use lithos_roster as _;
use lithos_testkit::{TestServer, roster_items, roster_push, roster_query};

const ROSTER: &str = "jabber:iq:roster";

#[tokio::test]
async fn roster_get_set_push_versions() {
    let s = TestServer::with_users("", &["juliet"]).await;
    let mut a = s.login_as("juliet", "a").await;
    let mut b = s.login_as("juliet", "b").await;
    let r = a.iq("get", None, roster_query(Some(""))).await;
    assert_eq!(r.attr("type"), Some("result"));
    let v0 = r
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_string();
    assert!(roster_items(&r).is_empty());
    b.iq("get", None, roster_query(None)).await;

    let set = Element::parse(
        "<query xmlns='jabber:iq:roster'><item jid='Romeo@Localhost' name='Romeo'><group>Friends</group></item></query>",
    )
    .unwrap();
    let ok = a.iq("set", None, set).await;
    assert_eq!(ok.attr("type"), Some("result"));
    // Both resources that asked for the roster get the push.
    for c in [&mut a, &mut b] {
        let p = roster_push(c).await;
        assert_eq!(
            roster_items(&p),
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
    assert_eq!(roster_items(&roster_push(&mut b).await)[0].1, "remove");
}
