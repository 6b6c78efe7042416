//! XEP-0313 on rooms: groupchat archived with the room's stanza-id, queried at the room's
//! address by those who may enter, forgotten with the room.

use lithos_core::Element;
use lithos_testkit::{RawClient, TestServer, error_condition};

use lithos_disco as _;
use lithos_mam as _;
use lithos_muc as _;
use lithos_presence as _;
use lithos_roster as _;

const ROOM: &str = "archive@conference.localhost";
const MAM: &str = "urn:xmpp:mam:2";
const SID: &str = "urn:xmpp:sid:0";

async fn join(c: &mut RawClient, nick: &str) {
    c.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ))
    .await;
    let me = format!("{ROOM}/{nick}");
    c.recv_where(|e| {
        e.name() == "presence"
            && e.attr("from") == Some(me.as_str())
            && e.to_xml().contains("code=\"110\"")
    })
    .await;
}

async fn say(c: &mut RawClient, body: &str) -> Element {
    c.send_xml(&format!(
        "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><body>{body}</body></message>"
    ))
    .await;
    let body = body.to_string();
    c.recv_where(move |e| {
        e.name() == "message"
            && e.get_child("body", "jabber:client")
                .is_some_and(|b| b.text() == body)
    })
    .await
}

/// Queries the room's archive: the archived bodies (with their senders) and the `<fin/>`.
async fn query(
    c: &mut RawClient,
    fields: &str,
) -> Result<(Vec<(String, String)>, Element), String> {
    let qid = format!("q{}", rand_id());
    let form = if fields.is_empty() {
        String::new()
    } else {
        format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>{fields}</x>"
        )
    };
    let answer = c
        .iq(
            "set",
            Some(ROOM),
            Element::parse(&format!(
                "<query xmlns='{MAM}' queryid='{qid}'>{form}</query>"
            ))
            .unwrap(),
        )
        .await;
    if answer.attr("type") != Some("result") {
        return Err(error_condition(&answer).unwrap_or_default());
    }
    let got = c
        .pending
        .iter()
        .filter(|m| m.name() == "message")
        .filter_map(|m| m.get_child("result", MAM))
        .filter(|r| r.attr("queryid") == Some(qid.as_str()))
        .filter_map(|r| {
            let fwd = r.get_child("forwarded", "urn:xmpp:forward:0")?;
            let msg = fwd.get_child("message", "jabber:client")?;
            Some((
                msg.attr("from")?.to_string(),
                msg.get_child("body", "jabber:client")?.text(),
            ))
        })
        .collect();
    Ok((got, answer.get_child("fin", MAM).cloned().expect("fin")))
}

fn rand_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn rooms_archive_their_groupchat_for_those_who_may_enter() {
    let s = TestServer::with_users(
        "[modules.mam]\nenabled = true\n",
        &["alice", "bob", "carol"],
    )
    .await;
    let mut alice = s.login_as("alice", "a").await;
    let mut bob = s.login_as("bob", "b").await;
    let mut carol = s.login_as("carol", "c").await;
    join(&mut alice, "Alice").await;
    join(&mut bob, "Bob").await;

    // Each message carries the room's stanza-id, the same for every occupant.
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        let mine = say(&mut alice, body).await;
        let sid = mine.get_child("stanza-id", SID).expect("a stanza-id");
        assert_eq!(sid.attr("by"), Some(ROOM));
        ids.push(sid.attr("id").unwrap().to_string());
    }
    let theirs = bob
        .recv_where(|e| e.name() == "message" && e.to_xml().contains(">three<"))
        .await;
    assert_eq!(
        theirs
            .get_child("stanza-id", SID)
            .and_then(|s| s.attr("id")),
        Some(ids[2].as_str())
    );
    // A stanza-id a client claims for the room is not passed on.
    bob.send_xml(&format!(
        "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><body>four</body><stanza-id xmlns='{SID}' id='forged' by='{ROOM}'/></message>"
    ))
    .await;
    let four = alice
        .recv_where(|e| e.name() == "message" && e.to_xml().contains(">four<"))
        .await;
    assert!(!four.to_xml().contains("forged"), "{four}");

    // The room says it archives; an occupant reads it back, oldest first, without waiting.
    let info = bob
        .iq(
            "get",
            Some(ROOM),
            Element::parse("<query xmlns='http://jabber.org/protocol/disco#info'/>").unwrap(),
        )
        .await;
    assert!(info.to_xml().contains(MAM), "{info}");
    bob.pending.clear();
    let (got, fin) = query(&mut bob, "").await.unwrap();
    assert_eq!(
        got,
        [
            (format!("{ROOM}/Alice"), "one".to_string()),
            (format!("{ROOM}/Alice"), "two".to_string()),
            (format!("{ROOM}/Alice"), "three".to_string()),
            (format!("{ROOM}/Bob"), "four".to_string()),
        ]
    );
    assert_eq!(fin.attr("complete"), Some("true"), "{fin}");
    // `with` names an occupant.
    bob.pending.clear();
    let (got, _) = query(
        &mut bob,
        &format!("<field var='with'><value>{ROOM}/Bob</value></field>"),
    )
    .await
    .unwrap();
    assert_eq!(got, [(format!("{ROOM}/Bob"), "four".to_string())]);
    // Someone outside an open room may read it (he may enter).
    let (got, _) = query(&mut carol, "").await.unwrap();
    assert_eq!(got.len(), 4);

    // Members-only: carol, not a member, may not; nor bob, whom the change removed from the
    // room (321); alice, its owner, may.
    let r = alice
        .iq(
            "set",
            Some(ROOM),
            Element::parse(
                "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
                 <field var='muc#roomconfig_membersonly'><value>1</value></field></x></query>",
            )
            .unwrap(),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    assert_eq!(query(&mut carol, "").await.unwrap_err(), "forbidden");
    assert_eq!(query(&mut bob, "").await.unwrap_err(), "forbidden");
    alice.pending.clear();
    assert_eq!(query(&mut alice, "").await.unwrap().0.len(), 4);

    // Destroyed: the archive goes with the room; a new room of that name starts empty.
    let r = alice
        .iq(
            "set",
            Some(ROOM),
            Element::parse(
                "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query>",
            )
            .unwrap(),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    join(&mut carol, "Carol").await;
    carol.pending.clear();
    let (got, _) = query(&mut carol, "").await.unwrap();
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn without_the_archive_module_rooms_say_so() {
    let s = TestServer::with_users("", &["alice"]).await;
    let mut alice = s.login_as("alice", "a").await;
    join(&mut alice, "Alice").await;
    let m = say(&mut alice, "hello").await;
    assert!(m.get_child("stanza-id", SID).is_none(), "{m}");
    assert_eq!(
        query(&mut alice, "").await.unwrap_err(),
        "service-unavailable"
    );
}
