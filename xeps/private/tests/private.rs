//! Private XML storage against a real server: store and read back, the account only,
//! reserved namespaces, limits, across a restart, forgotten with the account; and the
//! client API.

use std::time::Duration;

use lithos_core::Element;
use lithos_core::codec::WireFormat;
use lithos_private::client::PrivateExt;
use lithos_testkit::{TestServer, error_condition};

const NS: &str = "jabber:iq:private";
const LIMITS: &str = "[modules.private]\nmax_item_bytes = 200\nmax_account_bytes = 300";

fn query(inner: &str) -> Element {
    Element::parse(&format!("<query xmlns='{NS}'>{inner}</query>")).unwrap()
}

fn fragment(answer: &Element) -> Element {
    answer
        .get_child("query", NS)
        .and_then(|q| q.children().next())
        .cloned()
        .unwrap_or_else(|| panic!("no fragment in {}", answer.to_xml()))
}

#[tokio::test]
async fn store_read_back_and_refusals() {
    let s = TestServer::with_users(LIMITS, &["hamlet", "macbeth"]).await;
    let mut h = s.login_as("hamlet", "denmark").await;
    let prefs = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>";
    let r = h.iq("set", None, query(prefs)).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let r = h
        .iq("get", None, query("<exodus xmlns='exodus:prefs'/>"))
        .await;
    assert_eq!(fragment(&r), Element::parse(prefs).unwrap());
    // Addressed to the own bare JID: the same.
    let r = h
        .iq(
            "get",
            Some("hamlet@localhost"),
            query("<exodus xmlns='exodus:prefs'/>"),
        )
        .await;
    assert_eq!(fragment(&r), Element::parse(prefs).unwrap());
    // Nothing stored: the empty element back.
    let r = h.iq("get", None, query("<other xmlns='urn:other'/>")).await;
    assert_eq!(fragment(&r), Element::bare("other", "urn:other"));

    // Another account's: forbidden, both ways.
    let mut m = s.login_as("macbeth", "castle").await;
    for t in ["get", "set"] {
        let e = m
            .iq(
                t,
                Some("hamlet@localhost"),
                query("<exodus xmlns='exodus:prefs'/>"),
            )
            .await;
        assert_eq!(error_condition(&e).as_deref(), Some("forbidden"), "{t}");
    }
    let r = m
        .iq("get", None, query("<exodus xmlns='exodus:prefs'/>"))
        .await;
    assert_eq!(fragment(&r), Element::bare("exodus", "exodus:prefs"));

    // Reserved namespaces, nothing to store, two fragments in a get, too large, too much.
    let cases = [
        (
            "set",
            "<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>",
            "not-acceptable",
        ),
        ("set", "<q xmlns='jabber:iq:roster'/>", "not-acceptable"),
        (
            "get",
            "<q xmlns='http://jabber.org/protocol/disco#info'/>",
            "not-acceptable",
        ),
        ("set", "", "not-acceptable"),
        ("get", "<a xmlns='urn:a'/><b xmlns='urn:b'/>", "bad-request"),
        (
            "set",
            &format!("<big xmlns='urn:big'>{}</big>", "x".repeat(200)),
            "not-acceptable",
        ),
    ];
    for (t, inner, cond) in cases {
        let e = h.iq(t, None, query(inner)).await;
        assert_eq!(error_condition(&e).as_deref(), Some(cond), "{t} {inner}");
    }
    let fill = |n: usize| format!("<f{n} xmlns='urn:fill'>{}</f{n}>", "y".repeat(100));
    let r = h.iq("set", None, query(&fill(1))).await;
    assert_eq!(r.attr("type"), Some("result"));
    let e = h.iq("set", None, query(&fill(2))).await;
    assert_eq!(error_condition(&e).as_deref(), Some("resource-constraint"));
    // The refused set stored nothing.
    let r = h.iq("get", None, query("<f2 xmlns='urn:fill'/>")).await;
    assert_eq!(fragment(&r), Element::bare("f2", "urn:fill"));

    // Durable, and forgotten with the account.
    drop((h, m));
    let s = s.restart().await;
    let mut h = s.login_as("hamlet", "denmark").await;
    let r = h
        .iq("get", None, query("<exodus xmlns='exodus:prefs'/>"))
        .await;
    assert_eq!(fragment(&r), Element::parse(prefs).unwrap());
    h.close().await;
    s.handle()
        .storage()
        .accounts
        .delete_account("hamlet", "localhost")
        .await
        .unwrap();
    let left: i64 = s
        .handle()
        .storage()
        .db()
        .run(|c| {
            c.query_value(
                "SELECT COUNT(*) FROM private_fragments WHERE username = 'hamlet'",
                lithos_server::params![],
            )
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn through_the_client_api() {
    let s = TestServer::with_users("", &["hamlet"]).await;
    let (c, _events) = s.user("hamlet", WireFormat::Xml).await;
    let t = Duration::from_secs(5);
    assert_eq!(
        c.private_get("storage", "storage:bookmarks", t)
            .await
            .unwrap(),
        None
    );
    let bookmarks = Element::parse(
        "<storage xmlns='storage:bookmarks'><conference jid='council@conference.localhost' \
         autojoin='true' name='Council'/></storage>",
    )
    .unwrap();
    c.private_set(vec![bookmarks.clone()], t).await.unwrap();
    assert_eq!(
        c.private_get("storage", "storage:bookmarks", t)
            .await
            .unwrap(),
        Some(bookmarks)
    );
}
