//! `[modules.report] pubsub = true`: a thing's stored reports are published to the pubsub
//! service, where a plain XMPP client subscribes to them.

use std::time::Duration;

use lithos_client::WireFormat;
use lithos_core::Element;
use lithos_pubsub::{NS, NS_EVENT, NS_OWNER};
use lithos_testkit::things::{self, KEY, T};
use lithos_testkit::{RawClient, error_condition, stanza};
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{Qos, ReporterExt};

const NODE: &str = "things/str-01-0000000b";

fn celsius(v: u32) -> Element {
    Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
        .attr("value", v.to_string())
        .build()
}

async fn ps(c: &mut RawClient, kind: &str, ns: &str, inner: &str) -> Element {
    c.iq(
        kind,
        Some("pubsub.localhost"),
        Element::parse(&format!("<pubsub xmlns='{ns}'>{inner}</pubsub>")).unwrap(),
    )
    .await
}

/// The value of the report in a notification about the thing's node.
async fn notified(c: &mut RawClient) -> String {
    let m = c
        .recv_where(|e| {
            e.name() == "message"
                && e.get_child("event", NS_EVENT)
                    .and_then(|ev| ev.get_child("items", NS_EVENT))
                    .is_some_and(|i| i.attr("node") == Some(NODE))
        })
        .await;
    let item = m
        .get_child("event", NS_EVENT)
        .and_then(|e| e.get_child("items", NS_EVENT))
        .and_then(|i| i.get_child("item", NS_EVENT))
        .unwrap();
    assert_eq!(
        item.attr("publisher"),
        Some("str-01-0000000b@localhost"),
        "{m}"
    );
    let report = item.children().next().unwrap();
    assert_eq!(report.name(), "report", "{m}");
    report
        .children()
        .next()
        .and_then(|d| d.attr("value"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn reports_reach_a_plain_pubsub_subscriber() {
    let s = things::start("[modules.report]\npubsub = true\npubsub_access = 'open'").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    alice
        .authorize_thing("STR-01-0000000B", KEY, T)
        .await
        .unwrap();
    let (thing, _events) = things::runtime(&s, "STR-01-0000000B", WireFormat::Bxmpp)
        .start()
        .await
        .unwrap();
    thing.report(celsius(1), Qos::AtLeastOnce).await.unwrap();

    // bob, a plain XMPP client: the node appears with the first report.
    let mut bob = s.login_as("bob", "phone").await;
    bob.send(stanza("<presence/>")).await;
    let subscribe = "<subscribe node='things/str-01-0000000b' jid='bob@localhost'/>";
    let mut answer = ps(&mut bob, "set", NS, subscribe).await;
    for _ in 0..50 {
        if answer.attr("type") == Some("result") {
            break;
        }
        assert_eq!(
            error_condition(&answer).as_deref(),
            Some("item-not-found"),
            "{answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = ps(&mut bob, "set", NS, subscribe).await;
    }
    assert_eq!(answer.attr("type"), Some("result"), "{answer}");
    // The last report on subscribing, then each new one.
    assert_eq!(notified(&mut bob).await, "1");
    thing.report(celsius(2), Qos::AtLeastOnce).await.unwrap();
    thing.report(celsius(3), Qos::ExactlyOnce).await.unwrap();
    assert_eq!(notified(&mut bob).await, "2");
    assert_eq!(notified(&mut bob).await, "3");

    // The thing's owner owns the node; bob does not.
    let mut alice_raw = s.login_as("alice", "raw").await;
    let form = ps(
        &mut alice_raw,
        "get",
        NS_OWNER,
        &format!("<configure node='{NODE}'/>"),
    )
    .await;
    assert_eq!(form.attr("type"), Some("result"), "{form}");
    let refused = ps(
        &mut bob,
        "get",
        NS_OWNER,
        &format!("<configure node='{NODE}'/>"),
    )
    .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("forbidden"));
    // And the node keeps the history too.
    let items = ps(&mut bob, "get", NS, &format!("<items node='{NODE}'/>")).await;
    assert_eq!(
        items
            .get_child("pubsub", NS)
            .unwrap()
            .get_child("items", NS)
            .unwrap()
            .children()
            .count(),
        3,
        "{items}"
    );
}
