//! XEP-0163 against a real server: notifications by `+notify` from verified capabilities,
//! last items on presence, publish-options, access models.

use lithos_caps::{Algorithm, NS as NS_CAPS, NS_DISCO_INFO, ver_of};
use lithos_core::Element;
use lithos_pep::{NS, NS_EVENT};
use lithos_testkit::{RawClient, TestServer, error_condition, stanza};

use lithos_caps as _;
use lithos_disco as _;
use lithos_pep as _;
use lithos_ping as _;
use lithos_presence as _;

fn disco_info(features: &[&str]) -> Element {
    let mut q = Element::builder("query", NS_DISCO_INFO)
        .child(
            Element::builder("identity", NS_DISCO_INFO)
                .attr("category", "client")
                .attr("type", "pc")
                .attr("name", "tester")
                .build(),
        )
        .build();
    for f in features {
        q.append_child(
            Element::builder("feature", NS_DISCO_INFO)
                .attr("var", *f)
                .build(),
        );
    }
    q
}

/// Sends available presence with capabilities for `features` and, when the server does not
/// know them yet (`asked`), answers its disco#info question with `answer` (the same
/// features, unless a test lies).
async fn announce(c: &mut RawClient, features: &[&str], answer: &[&str], asked: bool) {
    let ver = ver_of(&disco_info(features), Algorithm::Sha1).unwrap();
    c.send(stanza(&format!(
        "<presence><c xmlns='{NS_CAPS}' hash='sha-1' node='urn:lithos:test' ver='{ver}'/></presence>"
    )))
    .await;
    if !asked {
        return;
    }
    let q = c
        .recv_where(|e| {
            e.name() == "iq" && e.attr("type") == Some("get") && e.has_child("query", NS_DISCO_INFO)
        })
        .await;
    let node = q
        .get_child("query", NS_DISCO_INFO)
        .and_then(|x| x.attr("node"))
        .unwrap_or_default();
    assert_eq!(node, format!("urn:lithos:test#{ver}"));
    let mut reply = disco_info(answer);
    reply.set_attr("node", node.to_string());
    c.send(
        Element::builder("iq", "jabber:client")
            .attr("type", "result")
            .attr("id", q.attr("id").unwrap().to_string())
            .attr("to", q.attr("from").unwrap().to_string())
            .child(reply)
            .build(),
    )
    .await;
    // The server reads this stream in order: once it answers a ping sent after the
    // answer, the capabilities are verified (no guessing how long that takes).
    let pong = c
        .iq(
            "get",
            Some("localhost"),
            Element::bare("ping", "urn:xmpp:ping"),
        )
        .await;
    assert_eq!(pong.attr("type"), Some("result"), "{pong}");
}

async fn pep(c: &mut RawClient, to: Option<&str>, kind: &str, inner: &str) -> Element {
    c.iq(
        kind,
        to,
        Element::parse(&format!("<pubsub xmlns='{NS}'>{inner}</pubsub>")).unwrap(),
    )
    .await
}

async fn publish_tune(c: &mut RawClient, id: &str, title: &str) {
    let r = pep(
        c,
        None,
        "set",
        &format!("<publish node='http://jabber.org/protocol/tune'><item id='{id}'><tune xmlns='http://jabber.org/protocol/tune'><title>{title}</title></tune></item></publish>"),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
}

async fn tune_event(c: &mut RawClient) -> Element {
    c.recv_where(|e| {
        e.name() == "message"
            && e.get_child("event", NS_EVENT)
                .and_then(|ev| ev.get_child("items", NS_EVENT))
                .is_some_and(|i| i.attr("node") == Some("http://jabber.org/protocol/tune"))
    })
    .await
}

fn title(m: &Element) -> String {
    m.get_child("event", NS_EVENT)
        .and_then(|e| e.get_child("items", NS_EVENT))
        .and_then(|i| i.get_child("item", NS_EVENT))
        .and_then(|i| i.children().next())
        .and_then(|t| t.children().next())
        .map(Element::text)
        .unwrap_or_default()
}

const TUNE_NOTIFY: &str = "http://jabber.org/protocol/tune+notify";

#[tokio::test]
async fn notifications_follow_notify_caps_and_presence_subscriptions() {
    let server = TestServer::with_users("", &["alice", "bob", "carol"]).await;
    let mut alice = server.login_as("alice", "a").await;
    let mut bob = server.login_as("bob", "b").await;
    lithos_testkit::befriend(&mut alice, &mut bob).await;
    // bob's client wants tunes; carol's too, but she is no contact of alice's.
    announce(&mut bob, &[TUNE_NOTIFY], &[TUNE_NOTIFY], true).await;
    let mut carol = server.login_as("carol", "c").await;
    // The same capabilities: the server knows them, and does not ask.
    announce(&mut carol, &[TUNE_NOTIFY], &[TUNE_NOTIFY], false).await;
    // A second resource of bob's without +notify.
    let mut bob2 = server.login_as("bob", "b2").await;
    announce(&mut bob2, &["urn:xmpp:other"], &["urn:xmpp:other"], true).await;

    // The account says it is a PEP service.
    let info = alice
        .iq(
            "get",
            Some("alice@localhost"),
            Element::parse(&format!("<query xmlns='{NS_DISCO_INFO}'/>")).unwrap(),
        )
        .await;
    assert!(
        info.to_xml().contains("type=\"pep\"") && info.to_xml().contains("pubsub#publish-options"),
        "{info}"
    );

    // A first publication creates the node and reaches bob's interested resource.
    publish_tune(&mut alice, "current", "Yesterday").await;
    let m = tune_event(&mut bob).await;
    assert_eq!(m.attr("from"), Some("alice@localhost"));
    assert_eq!(title(&m), "Yesterday");
    carol
        .expect_none_of("message", std::time::Duration::from_millis(300))
        .await;
    bob2.expect_none_of("message", std::time::Duration::from_millis(100))
        .await;

    // bob may read it (presence access); carol may not.
    let items = pep(
        &mut bob,
        Some("alice@localhost"),
        "get",
        "<items node='http://jabber.org/protocol/tune'/>",
    )
    .await;
    assert!(items.to_xml().contains("Yesterday"), "{items}");
    let refused = pep(
        &mut carol,
        Some("alice@localhost"),
        "get",
        "<items node='http://jabber.org/protocol/tune'/>",
    )
    .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("not-authorized"));
    // Only the account publishes to its nodes.
    let refused = pep(
        &mut bob,
        Some("alice@localhost"),
        "set",
        "<publish node='x'><item><a xmlns='urn:a'/></item></publish>",
    )
    .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("forbidden"));

    // A resource of bob's that comes later gets the last item when its presence says +notify.
    let mut bob3 = server.login_as("bob", "b3").await;
    announce(
        &mut bob3,
        &[TUNE_NOTIFY, "urn:xmpp:x"],
        &[TUNE_NOTIFY, "urn:xmpp:x"],
        true,
    )
    .await;
    let m = tune_event(&mut bob3).await;
    assert_eq!(title(&m), "Yesterday");
    assert_eq!(m.attr("to"), Some("bob@localhost/b3"));

    // A client whose disco#info does not hash to its ver is not believed.
    let mut bob4 = server.login_as("bob", "b4").await;
    announce(
        &mut bob4,
        &[TUNE_NOTIFY, "urn:xmpp:y"],
        &[TUNE_NOTIFY],
        true,
    )
    .await;
    bob4.expect_none_of("message", std::time::Duration::from_millis(300))
        .await;
    publish_tune(&mut alice, "current", "Help").await;
    assert_eq!(title(&tune_event(&mut bob).await), "Help");
    assert_eq!(title(&tune_event(&mut bob3).await), "Help");
    bob4.expect_none_of("message", std::time::Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn publish_options_make_private_nodes_like_bookmarks() {
    let server = TestServer::with_users("", &["alice", "bob"]).await;
    let mut alice = server.login_as("alice", "a").await;
    let mut bob = server.login_as("bob", "b").await;
    lithos_testkit::befriend(&mut alice, &mut bob).await;
    let bm_notify = "urn:xmpp:bookmarks:1+notify";
    announce(&mut bob, &[bm_notify], &[bm_notify], true).await;
    announce(&mut alice, &[bm_notify], &[bm_notify], false).await;
    // XEP-0402 §3's publication.
    let options = "<publish-options><x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
        <field var='pubsub#persist_items'><value>true</value></field>\
        <field var='pubsub#max_items'><value>max</value></field>\
        <field var='pubsub#send_last_published_item'><value>never</value></field>\
        <field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>";
    for room in ["council", "garden"] {
        let r = pep(
            &mut alice,
            None,
            "set",
            &format!("<publish node='urn:xmpp:bookmarks:1'><item id='{room}@conference.localhost'>\
              <conference xmlns='urn:xmpp:bookmarks:1' name='{room}' autojoin='true'><nick>Al</nick></conference></item></publish>{options}"),
        )
        .await;
        assert_eq!(r.attr("type"), Some("result"), "{r}");
        // The account's own interested resource is told; bob never.
        let m = alice
            .recv_where(|e| e.name() == "message" && e.has_child("event", NS_EVENT))
            .await;
        assert!(m.to_xml().contains(room), "{m}");
    }
    bob.expect_none_of("message", std::time::Duration::from_millis(300))
        .await;
    // Both bookmarks kept (max_items = max).
    let all = pep(
        &mut alice,
        None,
        "get",
        "<items node='urn:xmpp:bookmarks:1'/>",
    )
    .await;
    assert!(
        all.to_xml().contains("council") && all.to_xml().contains("garden"),
        "{all}"
    );
    let refused = pep(
        &mut bob,
        Some("alice@localhost"),
        "get",
        "<items node='urn:xmpp:bookmarks:1'/>",
    )
    .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("not-allowed"));
    // Options that contradict the node: precondition-not-met.
    let open = options.replace("<value>whitelist</value>", "<value>open</value>");
    let r = pep(
        &mut alice,
        None,
        "set",
        &format!("<publish node='urn:xmpp:bookmarks:1'><item id='x'><conference xmlns='urn:xmpp:bookmarks:1'/></item></publish>{open}"),
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("conflict"));
    assert!(r.to_xml().contains("precondition-not-met"), "{r}");
}
