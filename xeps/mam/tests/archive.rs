//! The message archive against a real server: what is archived, stanza ids, queries by
//! peer and time, paging both ways, preferences, offline recipients and refusals.

use std::time::Duration;

use lithos_core::{Element, Payload};
use lithos_mam::{ArchivedMessage, Fin, NS};
use lithos_rsm::ResultSet;
use lithos_testkit::{RawClient, TestServer, WireFormat, error_condition, stanza};

use lithos_blocking as _;
use lithos_disco as _;
use lithos_offline as _;
use lithos_presence as _;

/// The module is off by default.
const MAM: &str = "[modules.mam]\nenabled = true\n";

/// A query with `fields` (var, value) and `set`; returns the results' message ids (of the
/// archived messages) and the `<fin/>`.
async fn query(
    c: &mut RawClient,
    fields: &[(&str, &str)],
    set: ResultSet,
) -> (Vec<String>, Vec<String>, Fin) {
    let mut form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{NS}</value></field>"
    );
    for (k, v) in fields {
        form.push_str(&format!("<field var='{k}'><value>{v}</value></field>"));
    }
    form.push_str("</x>");
    let mut q =
        Element::parse(&format!("<query xmlns='{NS}' queryid='q1'>{form}</query>")).unwrap();
    q.append_child(set.into_element());
    let r = c.iq("set", None, q).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let fin = Fin::from_element(r.get_child("fin", NS).unwrap().clone()).unwrap();
    // The results came before the answer; they wait among the pending stanzas.
    let mut ids = Vec::new();
    let mut archive_ids = Vec::new();
    let results: Vec<Element> = c
        .pending
        .iter()
        .filter(|e| e.has_child("result", NS))
        .cloned()
        .collect();
    c.pending.retain(|e| !e.has_child("result", NS));
    for m in results {
        assert_eq!(m.attr("from"), Some(c.jid.split('/').next().unwrap()));
        let r = ArchivedMessage::from_element(m.get_child("result", NS).unwrap().clone()).unwrap();
        assert_eq!(r.queryid.as_deref(), Some("q1"));
        assert!(r.forwarded.delay.is_some(), "each result says when");
        ids.push(
            r.forwarded
                .message
                .attr("id")
                .unwrap_or_default()
                .to_string(),
        );
        archive_ids.push(r.id);
    }
    (ids, archive_ids, fin)
}

/// Waits until the archive's writer has caught up (it writes a few milliseconds late).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn archive_and_page(format: WireFormat) {
    let s = TestServer::with_users(MAM, &["alice", "bob", "carol"]).await;
    let raw = RawClient::connect_with(s.addr(), format).await;
    let mut alice = s.login_on(raw, "alice", "alice-password", "phone").await;
    alice.send(stanza("<presence/>")).await;
    let mut bob = s.login_as("bob", "desk").await;
    let mut carol = s.login_as("carol", "x").await;
    for i in 0..7 {
        bob.send(stanza(&format!(
            "<message to='alice@localhost/phone' type='chat' id='b{i}'><body>from bob {i}</body></message>"
        )))
        .await;
    }
    // In order: each sender's messages reach alice before the next sender's go out.
    alice.recv_where(|e| e.attr("id") == Some("b6")).await;
    carol
        .send(stanza(
            "<message to='alice@localhost' type='chat' id='c0'><body>from carol</body></message>",
        ))
        .await;
    alice.recv_where(|e| e.attr("id") == Some("c0")).await;
    alice
        .send(stanza(
            "<message to='bob@localhost/desk' type='chat' id='a0'><body>to bob</body></message>",
        ))
        .await;
    bob.recv_where(|e| e.attr("id") == Some("a0")).await;
    // Not archived: typing, headlines, no-store.
    bob.send(stanza("<message to='alice@localhost/phone' type='chat' id='t'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='headline' id='h'><body>news</body></message>",
    ))
    .await;
    bob.send(stanza("<message to='alice@localhost/phone' type='chat' id='n'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>")).await;
    // Delivered with the archive's stanza-id.
    let m = alice.recv_where(|e| e.attr("id") == Some("b0")).await;
    let sid = m.get_child("stanza-id", "urn:xmpp:sid:0").expect("stamped");
    assert_eq!(sid.attr("by"), Some("alice@localhost"));
    alice.recv_where(|e| e.attr("id") == Some("n")).await;
    // No waiting: a query finds what was delivered before it (the writer catches up first).
    alice.pending.clear();

    // Everything, oldest first.
    let (ids, aids, fin) = query(&mut alice, &[], ResultSet::page(50)).await;
    assert_eq!(ids, ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "c0", "a0"]);
    assert!(fin.complete);
    assert_eq!(fin.set.count, Some(9));
    assert_eq!(
        aids[0],
        sid.attr("id").unwrap(),
        "the stanza-id pages the archive"
    );

    // With bob, in pages of 3, forwards...
    let (p1, a1, f1) = query(&mut alice, &[("with", "bob@localhost")], ResultSet::page(3)).await;
    assert_eq!(p1, ["b0", "b1", "b2"]);
    assert!(!f1.complete);
    assert_eq!(f1.set.count, Some(8));
    assert_eq!(f1.set.first.as_ref().map(|f| f.1), Some(Some(0)));
    let (p2, _, _) = query(
        &mut alice,
        &[("with", "bob@localhost")],
        ResultSet::page(3).after(a1[2].clone()),
    )
    .await;
    assert_eq!(p2, ["b3", "b4", "b5"]);
    // ...and the last page, then the one before it.
    let (last, al, fl) = query(
        &mut alice,
        &[("with", "bob@localhost")],
        ResultSet::page(3).before(""),
    )
    .await;
    assert_eq!(last, ["b5", "b6", "a0"]);
    assert!(!fl.complete);
    let (prev, _, fp) = query(
        &mut alice,
        &[("with", "bob@localhost")],
        ResultSet::page(3).before(al[0].clone()),
    )
    .await;
    assert_eq!(prev, ["b2", "b3", "b4"]);
    assert!(!fp.complete);
    let mut at = ResultSet::page(2);
    at.index = Some(6);
    let (by_index, _, fi) = query(&mut alice, &[("with", "bob@localhost")], at).await;
    assert_eq!(by_index, ["b6", "a0"]);
    assert!(fi.complete);
    // A full JID matches that resource only; a time window.
    let (full, _, _) = query(
        &mut alice,
        &[("with", "carol@localhost/x")],
        ResultSet::page(50),
    )
    .await;
    assert_eq!(full, ["c0"]);
    let (none, _, f) = query(
        &mut alice,
        &[
            ("start", "2000-01-01T00:00:00Z"),
            ("end", "2000-01-02T00:00:00Z"),
        ],
        ResultSet::page(50),
    )
    .await;
    assert!(none.is_empty() && f.complete && f.set.count == Some(0));

    // Bob's own archive holds what he sent and received.
    let (b_ids, _, _) = query(
        &mut bob,
        &[("with", "alice@localhost")],
        ResultSet::page(50),
    )
    .await;
    assert_eq!(b_ids, ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "a0"]);
}

lithos_testkit::in_both_formats!(archive_and_page);

#[tokio::test]
async fn offline_preferences_and_refusals() {
    let s = TestServer::with_users(MAM, &["alice", "bob", "mallory"]).await;
    let mut bob = s.login_as("bob", "desk").await;
    // Alice is offline: archived all the same.
    bob.send(stanza(
        "<message to='alice@localhost' type='chat' id='o1'><body>while away</body></message>",
    ))
    .await;
    let mut alice = s.login_as("alice", "phone").await;
    settle().await;
    let (ids, _, _) = query(&mut alice, &[], ResultSet::page(50)).await;
    assert_eq!(ids, ["o1"]);

    // Preferences: never bob; then roster (bob is not in alice's roster).
    let r = alice
        .iq("set", None, Element::parse(&format!("<prefs xmlns='{NS}' default='always'><never><jid>bob@localhost</jid></never></prefs>")).unwrap())
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat' id='o2'><body>not kept</body></message>",
    ))
    .await;
    let r = alice
        .iq(
            "set",
            None,
            Element::parse(&format!("<prefs xmlns='{NS}' default='roster'/>")).unwrap(),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    bob.send(stanza("<message to='alice@localhost/phone' type='chat' id='o3'><body>not in the roster</body></message>")).await;
    settle().await;
    let (ids, _, _) = query(&mut alice, &[], ResultSet::page(50)).await;
    assert_eq!(ids, ["o1"]);
    let got = alice.iq("get", None, Element::bare("prefs", NS)).await;
    assert_eq!(
        got.get_child("prefs", NS).and_then(|p| p.attr("default")),
        Some("roster")
    );

    // Refusals: another's archive, an unknown page id, an unknown field.
    let mut mallory = s.login_as("mallory", "x").await;
    let r = mallory
        .iq("set", Some("alice@localhost"), Element::bare("query", NS))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));
    let mut q = Element::bare("query", NS);
    q.append_child(ResultSet::page(5).after("nope").into_element());
    let r = alice.iq("set", None, q).await;
    assert_eq!(error_condition(&r).as_deref(), Some("item-not-found"));
    let q = Element::parse(&format!("<query xmlns='{NS}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{NS}</value></field><field var='fulltext'><value>x</value></field></x></query>")).unwrap();
    let r = alice.iq("set", None, q).await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("feature-not-implemented")
    );
    // Advertised on the account's bare JID (XEP-0313 §7).
    let info = alice
        .iq(
            "get",
            Some("alice@localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert!(q.children().any(|f| f.attr("var") == Some(NS)), "{info}");
    // The form.
    let r = alice.iq("get", None, Element::bare("query", NS)).await;
    assert!(
        r.get_child("query", NS)
            .and_then(|q| q.get_child("x", "jabber:x:data"))
            .is_some(),
        "{r}"
    );
    // A client cannot forge the archive's stanza-id.
    bob.send(stanza("<message to='alice@localhost/phone' type='chat' id='f'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='forged'/></message>")).await;
    let m = alice.recv_where(|e| e.attr("id") == Some("f")).await;
    assert!(m.children().all(|c| c.attr("id") != Some("forged")), "{m}");
}

#[tokio::test]
async fn what_a_blocklist_refuses_is_not_archived() {
    let s = TestServer::with_users(MAM, &["alice", "bob"]).await;
    let mut alice = s.login_as("alice", "phone").await;
    let mut bob = s.login_as("bob", "desk").await;
    let block =
        Element::parse("<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>")
            .unwrap();
    assert_eq!(
        alice.iq("set", None, block).await.attr("type"),
        Some("result")
    );
    bob.send(stanza(
        "<message to='alice@localhost/phone' type='chat' id='x1'><body>in</body></message>",
    ))
    .await;
    alice
        .send(stanza(
            "<message to='bob@localhost/desk' type='chat' id='x2'><body>out</body></message>",
        ))
        .await;
    bob.recv_where(|e| e.attr("id") == Some("x1")).await;
    alice.recv_where(|e| e.attr("id") == Some("x2")).await;
    // And one that goes through, to know the writer has run.
    bob.send(stanza(
        "<message to='bob@localhost/desk' type='chat' id='self'><body>note</body></message>",
    ))
    .await;
    settle().await;
    let (a, _, _) = query(&mut alice, &[], ResultSet::page(50)).await;
    assert!(a.is_empty(), "{a:?}");
    let (b, _, _) = query(&mut bob, &[], ResultSet::page(50)).await;
    assert_eq!(b, ["self"], "only the note bob wrote to himself");
}
