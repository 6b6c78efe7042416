//! XEP-0045 against a real server, through raw streams: what each occupant sees.

use std::time::Duration;

use lithos_core::Element;
use lithos_muc::{NS_ADMIN, NS_OWNER, NS_USER};
use lithos_testkit::{RawClient, TestServer, error_condition};

use lithos_disco as _;
use lithos_muc as _;
use lithos_ping as _;
use lithos_presence as _;
use lithos_roster as _;

const ROOM: &str = "council@conference.localhost";

async fn server() -> TestServer {
    TestServer::with_users("", &["alice", "bob", "carol", "dave"]).await
}

/// The next unavailable presence (someone left, or was made to).
async fn unavailable(c: &mut RawClient) -> Element {
    c.recv_where(|e| e.name() == "presence" && e.attr("type") == Some("unavailable"))
        .await
}

/// The status codes of a room presence, sorted.
fn codes(p: &Element) -> Vec<String> {
    p.get_child("x", NS_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(str::to_string))
                .collect()
        })
        .map(|mut v: Vec<String>| {
            v.sort();
            v
        })
        .unwrap_or_default()
}

fn item(p: &Element) -> Element {
    p.get_child("x", NS_USER)
        .and_then(|x| x.get_child("item", NS_USER))
        .cloned()
        .unwrap_or_else(|| panic!("no item in {p}"))
}

/// Sends a join and waits for the own presence (status 110), skipping the others'.
async fn join(c: &mut RawClient, nick: &str, x: &str) -> Element {
    c.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{ROOM}/{nick}'>\
         <x xmlns='http://jabber.org/protocol/muc'>{x}</x></presence>"
    ))
    .await;
    c.recv_where(|e| {
        e.name() == "presence"
            && (codes(e).contains(&"110".to_string()) || e.attr("type") == Some("error"))
    })
    .await
}

async fn subject_message(c: &mut RawClient) -> Element {
    c.recv_where(|e| e.name() == "message" && e.has_child("subject", "jabber:client"))
        .await
}

async fn groupchat(c: &mut RawClient, body: &str, id: &str) {
    c.send_xml(&format!(
        "<message xmlns='jabber:client' to='{ROOM}' type='groupchat' id='{id}'><body>{body}</body></message>"
    ))
    .await;
}

async fn next_groupchat(c: &mut RawClient) -> Element {
    c.recv_where(|e| {
        e.name() == "message"
            && e.attr("type") == Some("groupchat")
            && e.has_child("body", "jabber:client")
    })
    .await
}

fn body(m: &Element) -> String {
    m.get_child("body", "jabber:client")
        .map(Element::text)
        .unwrap_or_default()
}

/// An iq of `kind` to `to` holding `payload` (XML); gives the answer.
async fn ask(c: &mut RawClient, kind: &str, to: &str, payload: &str) -> Element {
    c.iq(kind, Some(to), Element::parse(payload).unwrap()).await
}

/// A disco#info or disco#items query (`which`) to `to`.
async fn disco(c: &mut RawClient, to: &str, which: &str) -> Element {
    let ns = format!("http://jabber.org/protocol/disco#{which}");
    ask(c, "get", to, &format!("<query xmlns='{ns}'/>")).await
}

async fn admin(c: &mut RawClient, item: &str) -> Element {
    ask(
        c,
        "set",
        ROOM,
        &format!("<query xmlns='{NS_ADMIN}'>{item}</query>"),
    )
    .await
}

async fn configure(c: &mut RawClient, fields: &[(&str, &str)]) -> Element {
    let mut x = String::from(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>\
         <value>http://jabber.org/protocol/muc#roomconfig</value></field>",
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x.push_str("</x>");
    ask(
        c,
        "set",
        ROOM,
        &format!("<query xmlns='{NS_OWNER}'>{x}</query>"),
    )
    .await
}

#[tokio::test]
async fn create_join_talk_history_and_leave() {
    let s = server().await;
    let mut alice = s.login_as("alice", "home").await;
    let me = join(&mut alice, "Alice", "").await;
    assert_eq!(me.attr("from"), Some("council@conference.localhost/Alice"));
    assert_eq!(codes(&me), ["110", "201"], "created: {me}");
    assert_eq!(item(&me).attr("affiliation"), Some("owner"));
    assert_eq!(item(&me).attr("role"), Some("moderator"));
    let subject = subject_message(&mut alice).await;
    assert_eq!(
        subject.attr("from"),
        Some(ROOM),
        "no subject yet: from the room"
    );

    groupchat(&mut alice, "first", "m1").await;
    let m = next_groupchat(&mut alice).await;
    assert_eq!(m.attr("from"), Some("council@conference.localhost/Alice"));
    assert_eq!(m.attr("id"), Some("m1"), "the sender's id is kept");
    groupchat(&mut alice, "second", "m2").await;
    next_groupchat(&mut alice).await;

    // Bob enters: Alice's presence first, then his own; he gets the last message only.
    let mut bob = s.login_as("bob", "phone").await;
    bob.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='1'/></x></presence>"
    ))
    .await;
    let first = bob.recv_where(|e| e.name() == "presence").await;
    assert_eq!(
        first.attr("from"),
        Some("council@conference.localhost/Alice")
    );
    assert_eq!(
        item(&first).attr("jid"),
        None,
        "semi-anonymous: Bob is no moderator"
    );
    let own = bob.recv_where(|e| e.name() == "presence").await;
    assert_eq!(codes(&own), ["110"]);
    assert_eq!(item(&own).attr("role"), Some("participant"));
    let old = next_groupchat(&mut bob).await;
    assert_eq!(body(&old), "second");
    assert!(
        old.has_child("delay", "urn:xmpp:delay"),
        "history has its delay: {old}"
    );
    subject_message(&mut bob).await;
    // Alice, a moderator, sees Bob's real address.
    let seen = alice
        .presence_from("council@conference.localhost/Bob")
        .await;
    assert_eq!(item(&seen).attr("jid"), Some("bob@localhost/phone"));

    // Both get each groupchat message.
    groupchat(&mut bob, "hello all", "b1").await;
    for c in [&mut alice, &mut bob] {
        let m = next_groupchat(c).await;
        assert_eq!(body(&m), "hello all");
        assert_eq!(m.attr("from"), Some("council@conference.localhost/Bob"));
    }

    // A private message between occupants.
    bob.send_xml(&format!(
        "<message xmlns='jabber:client' to='{ROOM}/Alice' type='chat'><body>psst</body></message>"
    ))
    .await;
    let pm = alice
        .recv_where(|e| e.name() == "message" && e.attr("type") == Some("chat"))
        .await;
    assert_eq!(pm.attr("from"), Some("council@conference.localhost/Bob"));
    assert_eq!(body(&pm), "psst");

    // The same nick from someone else: conflict.
    let mut carol = s.login_as("carol", "desk").await;
    let e = join(&mut carol, "Bob", "").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_condition(&e).as_deref(), Some("conflict"));

    // A participant may not change the subject; the owner may.
    bob.send_xml(&format!(
        "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><subject>mine</subject></message>"
    ))
    .await;
    let e = bob
        .recv_where(|e| e.name() == "message" && e.attr("type") == Some("error"))
        .await;
    assert_eq!(error_condition(&e).as_deref(), Some("forbidden"));
    alice
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><subject>Verona</subject></message>"
        ))
        .await;
    let s2 = subject_message(&mut bob).await;
    assert_eq!(
        s2.get_child("subject", "jabber:client").unwrap().text(),
        "Verona"
    );

    // Bob leaves: Alice sees him go.
    bob.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{ROOM}/Bob' type='unavailable'/>"
    ))
    .await;
    let gone = unavailable(&mut alice).await;
    assert_eq!(gone.attr("from"), Some("council@conference.localhost/Bob"));

    // XEP-0410: Alice pings herself in the room; Bob, outside, is told he is not there.
    let pong = ask(
        &mut alice,
        "get",
        "council@conference.localhost/Alice",
        &format!("<ping xmlns='{}'/>", "urn:xmpp:ping"),
    )
    .await;
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
    let not_in = ask(
        &mut bob,
        "get",
        "council@conference.localhost/Bob",
        &format!("<ping xmlns='{}'/>", "urn:xmpp:ping"),
    )
    .await;
    assert_eq!(error_condition(&not_in).as_deref(), Some("not-acceptable"));

    // The room is listed; once the last occupant's session ends, the temporary room goes.
    let items = disco(&mut alice, "conference.localhost", "items").await;
    assert!(items.to_xml().contains(ROOM), "{items}");
    alice.close().await;
    let mut tries = 0;
    loop {
        let items = disco(&mut bob, "conference.localhost", "items").await;
        if !items.to_xml().contains(ROOM) {
            break;
        }
        tries += 1;
        assert!(tries < 50, "the empty temporary room stays: {items}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn moderation_kick_ban_and_voice() {
    let s = server().await;
    let mut alice = s.login_as("alice", "home").await;
    join(&mut alice, "Alice", "").await;
    let mut bob = s.login_as("bob", "phone").await;
    join(&mut bob, "Bob", "").await;
    let mut carol = s.login_as("carol", "desk").await;
    join(&mut carol, "Carol", "").await;

    // Bob, a participant, may not kick.
    let r = admin(&mut bob, "<item nick='Carol' role='none'/>").await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));

    // Alice takes Bob's voice: he may not speak.
    let r = admin(&mut alice, "<item nick='Bob' role='visitor'/>").await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    groupchat(&mut bob, "can I?", "v1").await;
    let e = bob
        .recv_where(|e| e.name() == "message" && e.attr("type") == Some("error"))
        .await;
    assert_eq!(error_condition(&e).as_deref(), Some("forbidden"));

    // Alice kicks Bob: 307 to everyone, 110 to him.
    let r = admin(
        &mut alice,
        "<item nick='Bob' role='none'><reason>noise</reason></item>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let kicked = unavailable(&mut bob).await;
    assert_eq!(codes(&kicked), ["110", "307"]);
    let seen = unavailable(&mut carol).await;
    assert_eq!(codes(&seen), ["307"]);

    // Alice bans Carol: out with 301, and she cannot come back.
    let r = admin(
        &mut alice,
        "<item jid='carol@localhost' affiliation='outcast'/>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let banned = unavailable(&mut carol).await;
    assert!(codes(&banned).contains(&"301".to_string()), "{banned}");
    let e = join(&mut carol, "Carol", "").await;
    assert_eq!(error_condition(&e).as_deref(), Some("forbidden"));
    // The ban list says so.
    let list = ask(
        &mut alice,
        "get",
        ROOM,
        &format!("<query xmlns='{NS_ADMIN}'><item affiliation='outcast'/></query>"),
    )
    .await;
    assert!(list.to_xml().contains("carol@localhost"), "{list}");
}

#[tokio::test]
async fn members_only_password_invitations_and_persistence() {
    let s = server().await;
    let mut alice = s.login_as("alice", "home").await;
    join(&mut alice, "Alice", "").await;
    // The configuration form, then a persistent, members-only, password-protected room.
    let form = alice
        .iq("get", Some(ROOM), Element::bare("query", NS_OWNER))
        .await;
    assert!(
        form.to_xml().contains("muc#roomconfig_membersonly"),
        "{form}"
    );
    let r = configure(
        &mut alice,
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_membersonly", "1"),
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "sesame"),
            ("muc#roomconfig_roomname", "The Council"),
        ],
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    // Only the owner configures.
    let mut bob = s.login_as("bob", "phone").await;
    let r = bob
        .iq("get", Some(ROOM), Element::bare("query", NS_OWNER))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));

    // Bob is no member.
    let e = join(&mut bob, "Bob", "<password>sesame</password>").await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("registration-required")
    );
    // An invitation makes him one (with the password, and XEP-0249's element beside it); it
    // goes to his bare JID, so to his available resource.
    bob.send_xml("<presence xmlns='jabber:client'/>").await;
    alice
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{ROOM}'><x xmlns='{NS_USER}'>\
             <invite to='bob@localhost'><reason>join us</reason></invite></x></message>"
        ))
        .await;
    let inv = bob
        .recv_where(|e| e.name() == "message" && e.attr("from") == Some(ROOM))
        .await;
    let x = inv.get_child("x", NS_USER).expect("invite");
    assert_eq!(
        x.get_child("invite", NS_USER).and_then(|i| i.attr("from")),
        Some("alice@localhost")
    );
    assert_eq!(
        x.get_child("password", NS_USER)
            .map(Element::text)
            .as_deref(),
        Some("sesame")
    );
    assert!(inv.has_child("x", "jabber:x:conference"));
    // Without the password: not authorized; with it, in.
    let e = join(&mut bob, "Bob", "").await;
    assert_eq!(error_condition(&e).as_deref(), Some("not-authorized"));
    let me = join(&mut bob, "Bob", "<password>sesame</password>").await;
    assert_eq!(item(&me).attr("affiliation"), Some("member"));
    alice
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><subject>Kept</subject></message>"
        ))
        .await;
    subject_message(&mut bob).await;
    subject_message(&mut bob).await;

    // The room info shows what it is.
    let info = disco(&mut bob, ROOM, "info").await;
    let xml = info.to_xml();
    for f in [
        "muc_persistent",
        "muc_membersonly",
        "muc_passwordprotected",
        "The Council",
    ] {
        assert!(xml.contains(f), "{f} in {xml}");
    }

    // After a restart: the room, its subject and Bob's membership are there.
    drop((alice, bob));
    let s = s.restart().await;
    let mut bob = s.login_as("bob", "phone").await;
    let me = join(&mut bob, "Bob", "<password>sesame</password>").await;
    assert_eq!(item(&me).attr("affiliation"), Some("member"), "{me}");
    let subject = subject_message(&mut bob).await;
    assert_eq!(
        subject
            .get_child("subject", "jabber:client")
            .unwrap()
            .text(),
        "Kept"
    );
    let mut carol = s.login_as("carol", "desk").await;
    let e = join(&mut carol, "Carol", "<password>sesame</password>").await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("registration-required")
    );

    // Alice destroys it: Bob is told, and it is gone after another restart.
    let mut alice = s.login_as("alice", "home").await;
    let r = ask(
        &mut alice,
        "set",
        ROOM,
        &format!("<query xmlns='{NS_OWNER}'><destroy><reason>done</reason></destroy></query>"),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let out = unavailable(&mut bob).await;
    assert!(out.to_xml().contains("destroy"), "{out}");
    drop((alice, bob, carol));
    let s = s.restart().await;
    let mut dave = s.login_as("dave", "x").await;
    let me = join(&mut dave, "Dave", "").await;
    assert_eq!(
        codes(&me),
        ["110", "201"],
        "a new room, not the old one: {me}"
    );
}

#[tokio::test]
async fn a_closed_session_leaves_its_rooms_and_the_service_is_discovered() {
    let s = server().await;
    let mut alice = s.login_as("alice", "home").await;
    let items = disco(&mut alice, "localhost", "items").await;
    assert!(items.to_xml().contains("conference.localhost"), "{items}");
    let info = disco(&mut alice, "conference.localhost", "info").await;
    assert!(info.to_xml().contains("category=\"conference\""), "{info}");
    assert!(
        info.to_xml().contains("http://jabber.org/protocol/muc"),
        "{info}"
    );

    join(&mut alice, "Alice", "").await;
    let mut bob = s.login_as("bob", "phone").await;
    join(&mut bob, "Bob", "").await;
    // Bob's connection ends without a word: Alice sees him leave.
    drop(bob);
    let gone = unavailable(&mut alice).await;
    assert_eq!(gone.attr("from"), Some("council@conference.localhost/Bob"));
    // A nick change: 303 under the old nick, then the new one.
    alice
        .send_xml(&format!(
            "<presence xmlns='jabber:client' to='{ROOM}/Alicia'/>"
        ))
        .await;
    let old = unavailable(&mut alice).await;
    assert!(codes(&old).contains(&"303".to_string()), "{old}");
    assert_eq!(item(&old).attr("nick"), Some("Alicia"));
    let new = alice
        .presence_from("council@conference.localhost/Alicia")
        .await;
    assert!(codes(&new).contains(&"110".to_string()));
}

/// An occupant in `format` (the MUC payloads in BXMPP: tables `F0 23`–`F0 26`) talks with
/// one in XML: join with history asked, groupchat both ways, a private message, a kick.
async fn talk(format: lithos_testkit::WireFormat) {
    use lithos_testkit::stanza;
    let s = server().await;
    let raw = RawClient::connect_with(s.addr(), format).await;
    let mut alice = s.login_on(raw, "alice", "alice-password", "home").await;
    let mut bob = s.login_as("bob", "phone").await;
    for (c, nick) in [(&mut alice, "Alice"), (&mut bob, "Bob")] {
        c.send(stanza(&format!(
            "<presence to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='5'/><password>unused</password></x></presence>"
        )))
        .await;
        c.recv_where(|e| e.name() == "presence" && codes(e).contains(&"110".to_string()))
            .await;
    }
    alice
        .send(stanza(&format!(
            "<message to='{ROOM}' type='groupchat' id='a1'><body>from a binary stream</body></message>"
        )))
        .await;
    bob.send(stanza(&format!(
        "<message to='{ROOM}' type='groupchat' id='b1'><body>from XML</body></message>"
    )))
    .await;
    for c in [&mut alice, &mut bob] {
        let mut bodies = vec![
            body(&next_groupchat(c).await),
            body(&next_groupchat(c).await),
        ];
        bodies.sort();
        assert_eq!(bodies, ["from XML", "from a binary stream"]);
    }
    bob.send(stanza(&format!(
        "<message to='{ROOM}/Alice' type='chat'><body>just you</body></message>"
    )))
    .await;
    let pm = alice
        .recv_where(|e| e.name() == "message" && e.attr("type") == Some("chat"))
        .await;
    assert_eq!(pm.attr("from"), Some("council@conference.localhost/Bob"));
    assert!(pm.has_child("x", NS_USER), "{pm}");
    alice
        .send(stanza(&format!(
            "<iq type='set' id='k1' to='{ROOM}'><query xmlns='{NS_ADMIN}'>\
             <item nick='Bob' role='none'><reason>enough</reason></item></query></iq>"
        )))
        .await;
    let r = alice
        .recv_where(|e| e.name() == "iq" && e.attr("id") == Some("k1"))
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let out = unavailable(&mut alice).await;
    assert_eq!(codes(&out), ["307"]);
    assert_eq!(
        item(&out)
            .get_child("reason", NS_USER)
            .map(Element::text)
            .as_deref(),
        Some("enough")
    );
    // An invitation from this stream, the configuration form to it, and the room's end.
    alice
        .send(stanza(&format!(
            "<message to='{ROOM}'><x xmlns='{NS_USER}'><invite to='bob@localhost/phone'>\
             <reason>come back</reason></invite></x></message>"
        )))
        .await;
    let inv = bob
        .recv_where(|e| e.name() == "message" && e.has_child("x", "jabber:x:conference"))
        .await;
    assert!(inv.to_xml().contains("come back"), "{inv}");
    alice
        .send(stanza(&format!(
            "<iq type='get' id='c1' to='{ROOM}'><query xmlns='{NS_OWNER}'/></iq>"
        )))
        .await;
    let form = alice
        .recv_where(|e| e.name() == "iq" && e.attr("id") == Some("c1"))
        .await;
    assert!(form.to_xml().contains("muc#roomconfig_whois"), "{form}");
    alice
        .send(stanza(&format!(
            "<iq type='set' id='d1' to='{ROOM}'><query xmlns='{NS_OWNER}'>\
             <destroy jid='other@conference.localhost'><reason>bye</reason></destroy></query></iq>"
        )))
        .await;
    let out = unavailable(&mut alice).await;
    let x = out.get_child("x", NS_USER).expect("x");
    assert_eq!(
        x.get_child("destroy", NS_USER).and_then(|d| d.attr("jid")),
        Some("other@conference.localhost")
    );
}

lithos_testkit::in_both_formats!(talk);

#[tokio::test]
async fn resync_ghosts_errors_and_configuration_notices() {
    let s = server().await;
    let mut alice = s.login_as("alice", "home").await;
    join(&mut alice, "Alice", "").await;
    subject_message(&mut alice).await;
    let mut bob = s.login_as("bob", "phone").await;
    join(&mut bob, "Bob", "").await;
    alice
        .presence_from("council@conference.localhost/Bob")
        .await;

    // A join sent again (a client that lost track): everything again, to it alone.
    join(&mut bob, "Bob", "").await;
    subject_message(&mut bob).await;
    alice
        .expect_none_of("presence", Duration::from_millis(300))
        .await;

    // Presence without <x/> from someone not in the room: told it is not in it, and no room
    // is created for it.
    let mut carol = s.login_as("carol", "desk").await;
    carol
        .send_xml("<presence xmlns='jabber:client' to='ghost@conference.localhost/Carol'/>")
        .await;
    let out = unavailable(&mut carol).await;
    assert_eq!(codes(&out), ["110", "307", "333"]);
    let info = disco(&mut carol, "ghost@conference.localhost", "info").await;
    assert_eq!(error_condition(&info).as_deref(), Some("item-not-found"));
    // XEP-0410: pinging oneself in a room that does not exist says "not joined".
    let pong = ask(
        &mut carol,
        "get",
        "ghost@conference.localhost/Carol",
        "<ping xmlns='urn:xmpp:ping'/>",
    )
    .await;
    assert_eq!(error_condition(&pong).as_deref(), Some("not-acceptable"));

    // The owner makes the room members-only: a notice to all, and Bob, no member, out (322).
    let r = configure(&mut alice, &[("muc#roomconfig_membersonly", "1")]).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let out = unavailable(&mut bob).await;
    assert!(codes(&out).contains(&"322".to_string()), "{out}");
    let notice = alice
        .recv_where(|e| e.name() == "message" && e.has_child("x", NS_USER))
        .await;
    assert_eq!(codes(&notice), ["104"]);
    // Real addresses shown to all: 172.
    configure(&mut alice, &[("muc#roomconfig_whois", "anyone")]).await;
    let notice = alice
        .recv_where(|e| e.name() == "message" && e.has_child("x", NS_USER))
        .await;
    assert_eq!(codes(&notice), ["172"]);

    // An occupant whose client answers with an error is removed (333).
    let r = configure(&mut alice, &[("muc#roomconfig_membersonly", "0")]).await;
    assert_eq!(r.attr("type"), Some("result"));
    join(&mut carol, "Carol", "").await;
    carol
        .send_xml(&format!(
            "<presence xmlns='jabber:client' to='{ROOM}/Carol' type='error'>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        ))
        .await;
    let gone = alice
        .recv_where(|e| {
            e.name() == "presence"
                && e.attr("from") == Some("council@conference.localhost/Carol")
                && e.attr("type") == Some("unavailable")
        })
        .await;
    assert!(codes(&gone).contains(&"333".to_string()), "{gone}");
}

/// Requests to an occupant's room address reach the occupant as from the asker's room
/// address, and the answer comes back the same way; a vCard goes to the account, whose
/// server answers it.
#[tokio::test]
async fn requests_to_occupants_are_passed_on_between_room_addresses() {
    use lithos_vcard as _;
    let s = server().await;
    let mut alice = s.login_as("alice", "a").await;
    let mut bob = s.login_as("bob", "b").await;
    let mut carol = s.login_as("carol", "c").await;
    let r = bob
        .iq(
            "set",
            None,
            Element::parse("<vCard xmlns='vcard-temp'><FN>Bob Smith</FN></vCard>").unwrap(),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    join(&mut alice, "Alice", "").await;
    join(&mut bob, "Bob", "").await;

    // A ping to bob's room address: bob's client gets it from alice's room address.
    alice
        .send_xml(&format!(
            "<iq xmlns='jabber:client' type='get' id='p1' to='{ROOM}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
    let asked = bob
        .recv_where(|e| e.name() == "iq" && e.has_child("ping", "urn:xmpp:ping"))
        .await;
    assert_eq!(asked.attr("from"), Some(format!("{ROOM}/Alice").as_str()));
    assert!(!asked.to_xml().contains("alice@"), "{asked}");
    bob.send_xml(&format!(
        "<iq xmlns='jabber:client' type='result' id='{}' to='{ROOM}/Alice'/>",
        asked.attr("id").unwrap()
    ))
    .await;
    let back = alice.recv_where(|e| e.attr("id") == Some("p1")).await;
    assert_eq!(back.attr("type"), Some("result"), "{back}");
    assert_eq!(back.attr("from"), Some(format!("{ROOM}/Bob").as_str()));

    // A vCard: answered by bob's server, from bob's room address.
    let v = ask(
        &mut alice,
        "get",
        &format!("{ROOM}/Bob"),
        "<vCard xmlns='vcard-temp'/>",
    )
    .await;
    assert_eq!(v.attr("type"), Some("result"), "{v}");
    assert!(v.to_xml().contains("Bob Smith"), "{v}");
    assert_eq!(v.attr("from"), Some(format!("{ROOM}/Bob").as_str()));

    // No such occupant; not an occupant; an answer forged by someone else is not passed on.
    let e = ask(
        &mut alice,
        "get",
        &format!("{ROOM}/Nobody"),
        "<ping xmlns='urn:xmpp:ping'/>",
    )
    .await;
    assert_eq!(error_condition(&e).as_deref(), Some("item-not-found"));
    let e = ask(
        &mut carol,
        "get",
        &format!("{ROOM}/Bob"),
        "<ping xmlns='urn:xmpp:ping'/>",
    )
    .await;
    assert_eq!(error_condition(&e).as_deref(), Some("not-acceptable"));
    alice
        .send_xml(&format!(
            "<iq xmlns='jabber:client' type='get' id='p2' to='{ROOM}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
    let asked = bob
        .recv_where(|e| e.name() == "iq" && e.has_child("ping", "urn:xmpp:ping"))
        .await;
    carol
        .send_xml(&format!(
            "<iq xmlns='jabber:client' type='result' id='{}' to='{ROOM}/Alice'/>",
            asked.attr("id").unwrap()
        ))
        .await;
    alice.expect_none_of("iq", Duration::from_millis(300)).await;
}
