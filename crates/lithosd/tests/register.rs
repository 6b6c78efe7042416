//! XEP-0077 in-band registration against the real server: off by default, account creation
//! only on encrypted streams and throttled per address, password change, account removal.

mod common;

use common::{Client, TestServer, error_condition};
use lithos_core::{Element, StreamErrorCondition};
use lithos_roster::store::{RosterItem, Rosters, Subscription};
use lithos_server::sasl::ScramHash;

const NS: &str = "jabber:iq:register";
const ENABLED: &str = "[modules.register]\nenabled = true\nmin_seconds_between = 0\n";

fn query(fields: &[(&str, &str)]) -> Element {
    let mut q = Element::bare("query", NS);
    for (k, v) in fields {
        let mut f = Element::bare(k.to_string(), NS);
        if !v.is_empty() {
            f.append_text(v.to_string());
        }
        q.append_child(f);
    }
    q
}

fn offers_registration(c: &Client) -> bool {
    c.features
        .as_ref()
        .is_some_and(|f| f.has_child("register", "http://jabber.org/features/iq-register"))
}

/// A client on an encrypted, unauthenticated stream.
async fn unauthenticated(s: &TestServer) -> Client {
    let mut c = Client::connect(s.addr()).await;
    c.open().await;
    c.starttls(&s.tls_connector()).await;
    c
}

#[tokio::test]
async fn off_by_default() {
    let s = TestServer::start("").await;
    let mut c = unauthenticated(&s).await;
    assert!(!offers_registration(&c));
    c.send(
        Element::builder("iq", "jabber:client")
            .attr("type", "get")
            .attr("id", "r1")
            .child(Element::bare("query", NS))
            .build(),
    )
    .await;
    assert_eq!(
        c.expect_stream_error().await,
        StreamErrorCondition::NotAuthorized
    );
}

#[tokio::test]
async fn registration_needs_tls_then_creates_an_account() {
    let s = TestServer::start(ENABLED).await;

    // In the clear (TLS required): neither offered nor served.
    let mut plain = Client::connect(s.addr()).await;
    plain.open().await;
    assert!(!offers_registration(&plain));
    plain
        .send(
            Element::builder("iq", "jabber:client")
                .attr("type", "get")
                .attr("id", "r1")
                .child(Element::bare("query", NS))
                .build(),
        )
        .await;
    assert_eq!(
        plain.expect_stream_error().await,
        StreamErrorCondition::NotAuthorized
    );

    let mut c = unauthenticated(&s).await;
    assert!(offers_registration(&c));
    let form = c.iq("get", None, Element::bare("query", NS)).await;
    let q = form.get_child("query", NS).expect("the form");
    assert!(
        q.has_child("username", NS) && q.has_child("password", NS),
        "{form}"
    );

    // Refusals: missing field, short password (not echoed back), malformed user name.
    let r = c.iq("set", None, query(&[("username", "romeo")])).await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{r}"
    );
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "romeo"), ("password", "short")]),
        )
        .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{r}"
    );
    assert!(
        !r.to_string().contains("short"),
        "the password is echoed: {r}"
    );
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "ro@meo"), ("password", "long enough")]),
        )
        .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{r}"
    );

    // Success, then the same name again is a conflict (also with other case: names fold).
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "Romeo"), ("password", "montague!")]),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "romeo"), ("password", "montague!")]),
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("conflict"), "{r}");

    // The same stream then authenticates with the new account.
    c.auth_scram(ScramHash::Sha256, "romeo", "montague!")
        .await
        .unwrap();
    assert_eq!(c.bind(Some("r")).await, "romeo@localhost/r");
    assert!(
        s.handle()
            .storage()
            .accounts
            .account_exists("romeo")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn registrations_from_one_address_are_throttled() {
    let s =
        TestServer::start("[modules.register]\nenabled = true\nmin_seconds_between = 600\n").await;
    let mut c = unauthenticated(&s).await;
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "a1"), ("password", "password-1")]),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let mut d = unauthenticated(&s).await;
    let r = d
        .iq(
            "set",
            None,
            query(&[("username", "a2"), ("password", "password-2")]),
        )
        .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("resource-constraint"),
        "{r}"
    );
    assert!(
        !s.handle()
            .storage()
            .accounts
            .account_exists("a2")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn parallel_registrations_from_one_address_cannot_all_pass() {
    // Issue 14: the per-address check and its record were apart, with PBKDF2 between them:
    // requests sent together all passed.
    let s =
        TestServer::start("[modules.register]\nenabled = true\nmin_seconds_between = 600\n").await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(unauthenticated(&s).await);
    }
    // Every request is on the wire before any is answered.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(
            Element::builder("iq", "jabber:client")
                .attr("type", "set")
                .attr("id", "reg")
                .child(query(&[
                    ("username", &format!("p{i}")),
                    ("password", "password-p"),
                ]))
                .build(),
        )
        .await;
    }
    let mut created = 0;
    for c in clients.iter_mut() {
        let r = c.recv_where(|e| e.attr("id") == Some("reg")).await;
        match r.attr("type") {
            Some("result") => created += 1,
            _ => assert_eq!(
                error_condition(&r).as_deref(),
                Some("resource-constraint"),
                "{r}"
            ),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        s.handle()
            .storage()
            .accounts
            .list_accounts()
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_user_changes_their_password() {
    let s = TestServer::start(ENABLED).await;
    s.add_user("juliet", "capulet-1").await;
    s.add_user("nurse", "nurse-123").await;
    let mut c = s.login("juliet", "capulet-1", "balcony").await;

    let r = c.iq("get", None, Element::bare("query", NS)).await;
    let q = r.get_child("query", NS).expect("registration info");
    assert!(q.has_child("registered", NS), "{r}");
    assert_eq!(
        q.get_child("username", NS).map(|u| u.text()).as_deref(),
        Some("juliet")
    );

    // Someone else's password, or an empty one: refused, nothing changes.
    let r = c
        .iq(
            "set",
            Some("localhost"),
            query(&[("username", "nurse"), ("password", "stolen-pw")]),
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("not-allowed"), "{r}");
    let r = c
        .iq(
            "set",
            None,
            query(&[("username", "juliet"), ("password", "")]),
        )
        .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{r}"
    );
    let r = c
        .iq("set", Some("nurse@localhost"), Element::bare("query", NS))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"), "{r}");

    let r = c
        .iq(
            "set",
            Some("localhost"),
            query(&[("username", "juliet"), ("password", "capulet-2")]),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    assert!(!r.to_string().contains("capulet-2"));

    let mut old = Client::connect(s.addr()).await;
    old.open().await;
    old.starttls(&s.tls_connector()).await;
    assert!(
        old.auth_scram(ScramHash::Sha256, "juliet", "capulet-1")
            .await
            .is_err()
    );
    s.login("juliet", "capulet-2", "garden").await;
    s.login("nurse", "nurse-123", "n").await;
}

#[tokio::test]
async fn removing_an_account_ends_its_sessions_and_subscriptions() {
    let s = TestServer::start(ENABLED).await;
    s.add_user("romeo", "montague!").await;
    s.add_user("juliet", "capulet!").await;
    let both = |jid: &str| RosterItem {
        jid: jid.to_string(),
        name: None,
        subscription: Subscription::Both,
        ask: false,
        approved: false,
        groups: Vec::new(),
    };
    let roster = Rosters::of(s.handle());
    roster
        .put_roster_item("romeo", &both("juliet@localhost"))
        .await
        .unwrap();
    roster
        .put_roster_item("juliet", &both("romeo@localhost"))
        .await
        .unwrap();

    let mut juliet = s.login("juliet", "capulet!", "balcony").await;
    juliet
        .iq("get", None, Element::bare("query", "jabber:iq:roster"))
        .await;
    let mut r1 = s.login("romeo", "montague!", "one").await;
    let mut r2 = s.login("romeo", "montague!", "two").await;

    // <remove/> with anything else is a bad request.
    let r = r1
        .iq("set", None, query(&[("remove", ""), ("username", "romeo")]))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"), "{r}");

    let r = r1.iq("set", None, query(&[("remove", "")])).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    assert_eq!(
        r1.expect_stream_error().await,
        StreamErrorCondition::NotAuthorized
    );
    assert_eq!(
        r2.expect_stream_error().await,
        StreamErrorCondition::NotAuthorized
    );

    // Juliet's roster no longer holds a subscription with the removed account.
    let push = juliet
        .recv_where(|e| {
            e.name() == "iq"
                && e.get_child("query", "jabber:iq:roster")
                    .and_then(|q| q.children().next())
                    .is_some_and(|i| i.attr("subscription") == Some("none"))
        })
        .await;
    assert!(push.to_string().contains("romeo@localhost"), "{push}");

    let store = &s.handle().storage();
    assert!(!store.accounts.account_exists("romeo").await.unwrap());
    assert!(
        Rosters::of(s.handle())
            .roster("romeo")
            .await
            .unwrap()
            .1
            .is_empty()
    );
    let mut again = Client::connect(s.addr()).await;
    again.open().await;
    again.starttls(&s.tls_connector()).await;
    assert!(
        again
            .auth_scram(ScramHash::Sha256, "romeo", "montague!")
            .await
            .is_err()
    );
}
