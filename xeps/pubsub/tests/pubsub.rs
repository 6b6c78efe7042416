//! XEP-0060 against a real server at `pubsub.localhost`, through raw streams.

use lithos_core::Element;
use lithos_pubsub::{NS, NS_ERRORS, NS_EVENT, NS_OWNER};
use lithos_testkit::{RawClient, TestServer, error_condition, stanza};

use lithos_disco as _;
use lithos_presence as _;
use lithos_pubsub as _;

const SERVICE: &str = "pubsub.localhost";

async fn ask(c: &mut RawClient, kind: &str, payload: &str) -> Element {
    c.iq(kind, Some(SERVICE), Element::parse(payload).unwrap())
        .await
}

async fn ps(c: &mut RawClient, kind: &str, inner: &str) -> Element {
    ask(c, kind, &format!("<pubsub xmlns='{NS}'>{inner}</pubsub>")).await
}

async fn owner(c: &mut RawClient, kind: &str, inner: &str) -> Element {
    ask(
        c,
        kind,
        &format!("<pubsub xmlns='{NS_OWNER}'>{inner}</pubsub>"),
    )
    .await
}

fn ok(iq: &Element) -> &Element {
    assert_eq!(iq.attr("type"), Some("result"), "{iq}");
    iq
}

/// The error's defined condition and its pubsub#errors element, if any.
fn err(iq: &Element) -> (String, Option<String>) {
    assert_eq!(iq.attr("type"), Some("error"), "{iq}");
    let app = iq
        .get_child("error", "jabber:client")
        .and_then(|e| e.children().find(|c| c.ns() == NS_ERRORS))
        .map(|c| c.name().to_string());
    (error_condition(iq).unwrap_or_default(), app)
}

fn config(fields: &[(&str, &str)]) -> String {
    let mut x = String::from(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#node_config</value></field>",
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x + "</x>"
}

async fn publish(c: &mut RawClient, node: &str, id: &str, text: &str) -> Element {
    ps(
        c,
        "set",
        &format!("<publish node='{node}'><item id='{id}'><entry xmlns='urn:test'>{text}</entry></item></publish>"),
    )
    .await
}

/// The next notification about `node` and the ids of its items (or retractions).
async fn event(c: &mut RawClient, node: &str) -> Element {
    let node = node.to_string();
    c.recv_where(move |e| {
        e.name() == "message"
            && e.get_child("event", NS_EVENT)
                .and_then(|ev| ev.children().next())
                .is_some_and(|b| b.attr("node") == Some(node.as_str()))
    })
    .await
}

fn event_items(m: &Element) -> Vec<(String, String)> {
    let items = m
        .get_child("event", NS_EVENT)
        .unwrap()
        .children()
        .next()
        .unwrap();
    items
        .children()
        .map(|i| {
            (
                format!("{}:{}", i.name(), i.attr("id").unwrap_or_default()),
                i.children().next().map(Element::text).unwrap_or_default(),
            )
        })
        .collect()
}

fn item_ids(iq: &Element) -> Vec<String> {
    iq.get_child("pubsub", NS)
        .and_then(|p| p.get_child("items", NS))
        .map(|i| {
            i.children()
                .filter_map(|c| c.attr("id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn create_publish_subscribe_retrieve_retract_delete() {
    let server = TestServer::with_users("", &["alice", "bob", "carol", "dave"]).await;
    let mut alice = server.login_as("alice", "a").await;
    let mut bob = server.login_as("bob", "b").await;
    let mut carol = server.login_as("carol", "c").await;
    // Notifications to a bare JID reach its available resources.
    bob.send(stanza("<presence/>")).await;

    // The service is listed by the server and says what it is.
    let items = alice
        .iq(
            "get",
            Some("localhost"),
            Element::parse("<query xmlns='http://jabber.org/protocol/disco#items'/>").unwrap(),
        )
        .await;
    assert!(items.to_xml().contains(SERVICE), "{items}");
    let info = ask(
        &mut alice,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    )
    .await;
    assert!(
        info.to_xml().contains("type=\"service\"")
            && info.to_xml().contains("pubsub#publish-options"),
        "{info}"
    );

    // Create, with a configuration; a second create conflicts.
    ok(&ps(
        &mut alice,
        "set",
        &format!(
            "<create node='weather'/><configure>{}</configure>",
            config(&[("pubsub#title", "Weather"), ("pubsub#max_items", "3")])
        ),
    )
    .await);
    assert_eq!(
        err(&ps(&mut bob, "set", "<create node='weather'/>").await).0,
        "conflict"
    );
    // An instant node gets a name.
    let instant = ok(&ps(&mut bob, "set", "<create/>").await).clone();
    assert!(
        instant
            .get_child("pubsub", NS)
            .and_then(|p| p.get_child("create", NS))
            .and_then(|c| c.attr("node"))
            .is_some(),
        "{instant}"
    );

    // Subscriptions: one's own address only.
    let (cond, app) = err(&ps(
        &mut bob,
        "set",
        "<subscribe node='weather' jid='carol@localhost'/>",
    )
    .await);
    assert_eq!(
        (cond.as_str(), app.as_deref()),
        ("bad-request", Some("invalid-jid"))
    );
    let sub = ok(&ps(
        &mut bob,
        "set",
        "<subscribe node='weather' jid='bob@localhost'/>",
    )
    .await)
    .clone();
    let s = sub
        .get_child("pubsub", NS)
        .and_then(|p| p.get_child("subscription", NS))
        .unwrap();
    assert_eq!(s.attr("subscription"), Some("subscribed"));
    assert!(s.attr("subid").is_some());
    assert_eq!(
        err(&ps(
            &mut carol,
            "set",
            "<unsubscribe node='weather' jid='carol@localhost'/>"
        )
        .await)
        .1
        .as_deref(),
        Some("not-subscribed")
    );
    assert_eq!(
        err(&ps(
            &mut bob,
            "set",
            "<subscribe node='nowhere' jid='bob@localhost'/>"
        )
        .await)
        .0,
        "item-not-found"
    );

    // Only publishers publish; a publication reaches the subscriber with its payload.
    assert_eq!(
        err(&publish(&mut bob, "weather", "x", "no").await).0,
        "forbidden"
    );
    let answer = ok(&publish(&mut alice, "weather", "mon", "rain").await).clone();
    assert!(answer.to_xml().contains("id=\"mon\""), "{answer}");
    let m = event(&mut bob, "weather").await;
    assert_eq!(m.attr("from"), Some(SERVICE));
    assert_eq!(m.attr("type"), Some("headline"));
    assert_eq!(
        event_items(&m),
        [("item:mon".to_string(), "rain".to_string())]
    );
    // An item without an id gets one.
    let answer = ok(&ps(
        &mut alice,
        "set",
        "<publish node='weather'><item><entry xmlns='urn:test'>sun</entry></item></publish>",
    )
    .await)
    .clone();
    let generated = answer
        .get_child("pubsub", NS)
        .unwrap()
        .get_child("publish", NS)
        .unwrap()
        .get_child("item", NS)
        .unwrap()
        .attr("id")
        .unwrap()
        .to_string();
    assert!(!generated.is_empty());
    event(&mut bob, "weather").await;
    // Two payloads in one item: refused.
    let (cond, app) = err(&ps(
        &mut alice,
        "set",
        "<publish node='weather'><item><a xmlns='urn:test'/><b xmlns='urn:test'/></item></publish>",
    )
    .await);
    assert_eq!(
        (cond.as_str(), app.as_deref()),
        ("bad-request", Some("invalid-payload"))
    );

    // max_items 3: the oldest goes; retrieval, latest, by id, and pages.
    for (id, t) in [("tue", "wind"), ("wed", "snow")] {
        ok(&publish(&mut alice, "weather", id, t).await);
        event(&mut bob, "weather").await;
    }
    let all = ok(&ps(&mut carol, "get", "<items node='weather'/>").await).clone();
    assert_eq!(item_ids(&all), [generated.as_str(), "tue", "wed"]);
    assert!(all.to_xml().contains("snow"));
    assert_eq!(
        item_ids(&ps(&mut carol, "get", "<items node='weather' max_items='1'/>").await),
        ["wed"]
    );
    assert_eq!(
        item_ids(
            &ps(
                &mut carol,
                "get",
                "<items node='weather'><item id='tue'/><item id='mon'/></items>"
            )
            .await
        ),
        ["tue"]
    );
    let page = ok(&ps(
        &mut carol,
        "get",
        "<items node='weather'/><set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>",
    )
    .await)
    .clone();
    assert_eq!(item_ids(&page), [generated.as_str(), "tue"]);
    assert!(
        page.to_xml().contains("<count>3</count>") || page.to_xml().contains(">3</count>"),
        "{page}"
    );
    let page = ps(&mut carol, "get", "<items node='weather'/><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>tue</after></set>").await;
    assert_eq!(item_ids(&page), ["wed"]);

    // Retraction tells the subscribers (notify_retract is on by default).
    assert_eq!(
        err(&ps(
            &mut alice,
            "set",
            "<retract node='weather'><item id='nope'/></retract>"
        )
        .await)
        .0,
        "item-not-found"
    );
    ok(&ps(
        &mut alice,
        "set",
        "<retract node='weather'><item id='tue'/></retract>",
    )
    .await);
    let m = event(&mut bob, "weather").await;
    assert_eq!(event_items(&m)[0].0, "retract:tue");

    // The owner manages: configuration form, subscriptions, affiliations.
    let form = ok(&owner(&mut alice, "get", "<configure node='weather'/>").await).clone();
    assert!(
        form.to_xml().contains("pubsub#access_model") && form.to_xml().contains("Weather"),
        "{form}"
    );
    assert_eq!(
        err(&owner(&mut bob, "get", "<configure node='weather'/>").await).0,
        "forbidden"
    );
    let subs = ok(&owner(&mut alice, "get", "<subscriptions node='weather'/>").await).clone();
    assert!(subs.to_xml().contains("bob@localhost"), "{subs}");
    ok(&owner(&mut alice, "set", "<affiliations node='weather'><affiliation jid='carol@localhost' affiliation='publisher'/></affiliations>").await);
    ok(&publish(&mut carol, "weather", "thu", "fog").await);
    assert_eq!(
        event_items(&event(&mut bob, "weather").await)[0].0,
        "item:thu"
    );
    let mine = ok(&ps(&mut bob, "get", "<subscriptions/>").await).clone();
    assert!(mine.to_xml().contains("node=\"weather\""), "{mine}");

    // Whitelist: closed to strangers.
    ok(&owner(
        &mut alice,
        "set",
        &format!(
            "<configure node='weather'>{}</configure>",
            config(&[("pubsub#access_model", "whitelist")])
        ),
    )
    .await);
    // carol is a publisher, affiliated: she may; dave may not.
    ok(&ps(
        &mut carol,
        "set",
        "<subscribe node='weather' jid='carol@localhost'/>",
    )
    .await);
    let mut dave = server.login_as("dave", "d").await;
    let (cond, app) = err(&ps(
        &mut dave,
        "set",
        "<subscribe node='weather' jid='dave@localhost'/>",
    )
    .await);
    assert_eq!(
        (cond.as_str(), app.as_deref()),
        ("not-allowed", Some("closed-node"))
    );
    assert_eq!(
        err(&ps(&mut dave, "get", "<items node='weather'/>").await).0,
        "not-allowed"
    );

    // Deletion tells the subscribers.
    assert_eq!(
        err(&owner(&mut bob, "set", "<delete node='weather'/>").await).0,
        "forbidden"
    );
    ok(&owner(&mut alice, "set", "<delete node='weather'/>").await);
    let m = event(&mut bob, "weather").await;
    assert!(
        m.get_child("event", NS_EVENT)
            .unwrap()
            .has_child("delete", NS_EVENT),
        "{m}"
    );
    assert_eq!(
        err(&ps(&mut carol, "get", "<items node='weather'/>").await).0,
        "item-not-found"
    );
}

#[tokio::test]
async fn nodes_survive_a_restart_and_presence_access_follows_the_roster() {
    let server = TestServer::with_users("", &["alice", "bob", "carol"]).await;
    let mut alice = server.login_as("alice", "a").await;
    let mut bob = server.login_as("bob", "b").await;
    ok(&ps(
        &mut alice,
        "set",
        &format!(
            "<create node='sensors'/><configure>{}</configure>",
            config(&[("pubsub#access_model", "presence")])
        ),
    )
    .await);
    ok(&publish(&mut alice, "sensors", "t1", "21.5").await);
    // bob is not subscribed to alice's presence.
    let (cond, app) = err(&ps(
        &mut bob,
        "set",
        "<subscribe node='sensors' jid='bob@localhost'/>",
    )
    .await);
    assert_eq!(
        (cond.as_str(), app.as_deref()),
        ("not-authorized", Some("presence-subscription-required"))
    );
    lithos_testkit::befriend(&mut alice, &mut bob).await;
    // Now he is; subscribing sends the last item (send_last_published_item on_sub).
    ok(&ps(
        &mut bob,
        "set",
        "<subscribe node='sensors' jid='bob@localhost/b'/>",
    )
    .await);
    let m = event(&mut bob, "sensors").await;
    assert_eq!(
        event_items(&m),
        [("item:t1".to_string(), "21.5".to_string())]
    );
    assert_eq!(m.attr("to"), Some("bob@localhost/b"));
    drop(alice);
    drop(bob);

    let server = server.restart().await;
    let mut alice = server.login_as("alice", "a").await;
    let mut bob = server.login_as("bob", "b").await;
    bob.send(stanza("<presence/>")).await;
    assert_eq!(
        item_ids(&ps(&mut bob, "get", "<items node='sensors'/>").await),
        ["t1"]
    );
    ok(&publish(&mut alice, "sensors", "t2", "22.0").await);
    let m = event(&mut bob, "sensors").await;
    assert_eq!(
        event_items(&m),
        [("item:t2".to_string(), "22.0".to_string())]
    );
    let mut carol = server.login_as("carol", "c").await;
    assert_eq!(
        err(&ps(&mut carol, "get", "<items node='sensors'/>").await).0,
        "not-authorized"
    );
    // Bounds: a payload beyond max_payload_bytes.
    let big = "x".repeat(70_000);
    let (cond, app) = err(&publish(&mut alice, "sensors", "big", &big).await);
    assert_eq!(
        (cond.as_str(), app.as_deref()),
        ("not-acceptable", Some("payload-too-big"))
    );
}
