//! Reports at each QoS, stored, queried and followed, against lithosd, in XML and BXMPP.

use std::time::Duration;

use lithos_client::{Client, Event, Events, WireFormat};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload};
use lithos_core::{Element, Jid, Payload};
use lithos_rsm::ResultSet;
use lithos_testkit::TestServer;
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{
    Deliver, History, Qos, Received, Report, ReportError, ReporterExt, ReportsExt, live_report,
};

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

fn celsius(v: u32) -> Element {
    Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
        .attr("value", v.to_string())
        .build()
}

/// `STR-01-<serial>`, authorized by alice, registered and online.
async fn reporter(s: &TestServer, alice: &Client, serial: &str, format: WireFormat) -> Client {
    let id = format!("STR-01-{serial}");
    alice.authorize_thing(&id, KEY, T).await.unwrap();
    let (thing, _events) = things::runtime(s, &id, format).start().await.unwrap();
    thing
}

async fn all_history(owner: &Client, thing: &Jid) -> Vec<String> {
    let (items, _) = owner
        .report_history(thing.clone(), History::default(), T)
        .await
        .unwrap();
    items
        .iter()
        .map(|i| i.data.attr("value").unwrap().to_string())
        .collect()
}

async fn next_live(events: &mut Events) -> (Jid, Report) {
    loop {
        match tokio::time::timeout(T, events.recv()).await {
            Ok(Some(Event::Message(m))) => {
                if let Some(r) = live_report(&m) {
                    return r;
                }
            }
            Ok(Some(_)) => {}
            other => panic!("no live report: {other:?}"),
        }
    }
}

async fn levels(format: WireFormat) {
    let s = things::start("").await;
    let (alice, mut alice_events) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let thing = reporter(&s, &alice, "0000000A", format).await;
    let addr = jid("str-01-0000000a@localhost");

    alice.follow_reports(addr.clone(), true, T).await.unwrap();
    thing.report(celsius(1), Qos::AtLeastOnce).await.unwrap();
    thing.report(celsius(2), Qos::ExactlyOnce).await.unwrap();
    thing.report(celsius(3), Qos::AtMostOnce).await.unwrap();
    // Live, in order, with the QoS they came with.
    for (v, q) in [
        (1, Qos::AtLeastOnce),
        (2, Qos::ExactlyOnce),
        (3, Qos::AtMostOnce),
    ] {
        let (from, r) = next_live(&mut alice_events).await;
        assert_eq!(from, jid("str-01-0000000a@localhost/0"));
        assert_eq!(r.data, celsius(v));
        assert_eq!(r.qos, q);
        assert!(r.stamp_ms.is_some());
    }
    assert_eq!(all_history(&alice, &addr).await, ["1", "2", "3"]);
    // /metrics counts what was stored, by QoS.
    let text = s.handle().metrics().encode(s.handle());
    for q in ["0", "1", "2"] {
        let line = format!("lithos_reports_total{{qos=\"{q}\"}} 1");
        assert!(text.contains(&line), "{line} not in {text}");
    }
    let latest = alice.latest_reports(addr.clone(), T).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].data, celsius(3));
    assert_eq!(latest[0].node, "0");

    // Not the owner nor granted; then granted.
    let e = bob.latest_reports(addr.clone(), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = bob.follow_reports(addr.clone(), true, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    alice
        .set_grant("STR-01-0000000A", jid("bob@localhost"), false, T)
        .await
        .unwrap();
    assert_eq!(bob.latest_reports(addr.clone(), T).await.unwrap().len(), 1);
    // Not a thing.
    let e = alice
        .latest_reports(jid("bob@localhost"), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));

    // Data the model does not declare; a person reporting.
    let light_event = Element::builder("switch-state-changed", lithos_things_demo::light::NS)
        .attr("previous", "0")
        .attr("current", "2")
        .build();
    match thing.report(light_event, Qos::AtLeastOnce).await {
        Err(ReportError::Refused(e)) => assert_eq!(e.condition, DefinedCondition::NotAcceptable),
        other => panic!("{other:?}"),
    }
    match alice.report(celsius(9), Qos::AtLeastOnce).await {
        Err(ReportError::Refused(e)) => assert_eq!(e.condition, DefinedCondition::NotAllowed),
        other => panic!("{other:?}"),
    }
    // Reporting for another thing.
    let forged =
        Iq::set("", Report::new(celsius(9), Qos::AtLeastOnce).into_element()).with_to(addr.clone());
    let e = alice.request(forged, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));

    // After unfollowing, nothing more arrives.
    alice.follow_reports(addr.clone(), false, T).await.unwrap();
    thing.report(celsius(4), Qos::AtLeastOnce).await.unwrap();
    let more = tokio::time::timeout(Duration::from_millis(300), alice_events.recv()).await;
    assert!(
        !matches!(&more, Ok(Some(Event::Message(m))) if live_report(m).is_some()),
        "{more:?}"
    );
    assert_eq!(all_history(&alice, &addr).await, ["1", "2", "3", "4"]);
}

fn qos2(v: u32, id: &str) -> Iq {
    let mut r = Report::new(celsius(v), Qos::ExactlyOnce);
    r.report_id = Some(id.into());
    Iq::set("", r.into_element())
}

fn deliver(id: &str) -> Iq {
    Iq::set(
        "",
        Deliver {
            report_id: id.into(),
        }
        .into_element(),
    )
}

async fn exactly_once(format: WireFormat) {
    let s = things::start("\n[modules.report]\nmax_pending_per_thing = 2\n").await;
    let (alice, _ae) = s.user("alice", format).await;
    let thing = reporter(&s, &alice, "0000000B", format).await;
    let addr = jid("str-01-0000000b@localhost");

    // The report twice (a retransmission), then the deliver twice: stored once.
    for _ in 0..2 {
        let a = thing.request(qos2(7, "r-1"), T).await.unwrap();
        let IqPayload::Result(Some(p)) = a.payload else {
            panic!("{a:?}")
        };
        assert_eq!(Received::from_element(p).unwrap().report_id, "r-1");
    }
    // Pending: not visible yet.
    assert!(all_history(&alice, &addr).await.is_empty());
    thing.request(deliver("r-1"), T).await.unwrap();
    thing.request(deliver("r-1"), T).await.unwrap();
    // Re-sent after its delivery: received again, not stored again.
    thing.request(qos2(7, "r-1"), T).await.unwrap();
    thing.request(deliver("r-1"), T).await.unwrap();
    assert_eq!(all_history(&alice, &addr).await, ["7"]);

    // At most two pending per thing here.
    thing.request(qos2(8, "p-1"), T).await.unwrap();
    thing.request(qos2(9, "p-2"), T).await.unwrap();
    let e = thing.request(qos2(10, "p-3"), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ResourceConstraint));
    thing.request(deliver("p-1"), T).await.unwrap();
    thing.request(qos2(10, "p-3"), T).await.unwrap();
    // A report without an id is refused.
    let bad = Element::parse(&format!(
        r#"<report xmlns="urn:leps:tuxp:sensor" qos="2"><celsius-degree xmlns="{}" value="1"/></report>"#,
        lithos_things_demo::temperature::NS
    ))
    .unwrap();
    let e = thing.request(Iq::set("", bad), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::BadRequest));
    assert_eq!(all_history(&alice, &addr).await, ["7", "8"]);
}

#[tokio::test]
async fn history_pages_and_ranges() {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let thing = reporter(&s, &alice, "0000000C", WireFormat::Xml).await;
    let addr = jid("str-01-0000000c@localhost");
    let before = lithos_tuxp_report::now_ms();
    for v in 0..30 {
        thing.report(celsius(v), Qos::AtLeastOnce).await.unwrap();
    }
    let after = lithos_tuxp_report::now_ms() + 1;
    // Forward, 7 at a time.
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut set = ResultSet::page(7);
        set.after = last.clone();
        let q = History {
            set: Some(set),
            ..History::default()
        };
        let (items, page) = alice.report_history(addr.clone(), q, T).await.unwrap();
        assert_eq!(page.count, Some(30));
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 7);
        seen.extend(
            items
                .iter()
                .map(|i| i.data.attr("value").unwrap().to_string()),
        );
        last = page.last;
    }
    let want: Vec<String> = (0..30).map(|v| v.to_string()).collect();
    assert_eq!(seen, want);
    // The last page; a time range that holds everything, one that holds nothing.
    let q = History {
        set: Some(ResultSet::page(2).before("")),
        ..History::default()
    };
    let (items, _) = alice.report_history(addr.clone(), q, T).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.data.clone()).collect::<Vec<_>>(),
        [celsius(28), celsius(29)]
    );
    let range = |start_ms, end_ms| History {
        start_ms: Some(start_ms),
        end_ms: Some(end_ms),
        node: Some("0".into()),
        ..History::default()
    };
    let (_, page) = alice
        .report_history(addr.clone(), range(before, after), T)
        .await
        .unwrap();
    assert_eq!(page.count, Some(30));
    let (items, page) = alice
        .report_history(addr.clone(), range(after, after + 60_000), T)
        .await
        .unwrap();
    assert!(items.is_empty());
    assert_eq!(page.count, Some(0));
    // An id that is not one.
    let q = History {
        set: Some(ResultSet::page(2).after("not-an-id")),
        ..History::default()
    };
    let e = alice.report_history(addr.clone(), q, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
}

async fn for_lan_nodes(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let gateway =
        things::gateway_with_node(&s, &alice, &alice, "0000000D", "STR-01-0000000F", 5, format)
            .await;
    let gw = gateway.jid().local().unwrap().to_string();
    let addr = jid(&format!("{gw}@localhost"));
    let from_node = |node: &str, v: u32| {
        let mut iq = Iq::set("", Report::new(celsius(v), Qos::AtLeastOnce).into_element());
        iq.from = Some(jid(&format!("{gw}@localhost/{node}")));
        iq
    };
    // The gateway (resource 0) reports for its node 5, a temperature reporter.
    gateway.request(from_node("5", 50), T).await.unwrap();
    let latest = alice.latest_reports(addr.clone(), T).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].node, "5");
    assert_eq!(latest[0].data, celsius(50));
    // A node it did not add.
    let e = gateway.request(from_node("6", 1), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    // Not a LAN id.
    for bad in ["05", "256", "0x", "lamp"] {
        let e = gateway.request(from_node(bad, 1), T).await.unwrap_err();
        assert_eq!(condition(&e), Some(DefinedCondition::BadRequest), "{bad}");
    }
    // On the client port nobody speaks for another resource: the stream ends.
    let mut iq = Iq::set("", Report::new(celsius(1), Qos::AtLeastOnce).into_element());
    iq.from = Some(jid("alice@localhost/5"));
    assert_eq!(
        alice.request(iq, T).await.unwrap_err(),
        lithos_client::RequestError::Disconnected
    );
}

#[tokio::test]
async fn history_retention() {
    let s = things::start("\n[modules.report]\nhistory_seconds = 1\n").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let thing = reporter(&s, &alice, "0000000E", WireFormat::Xml).await;
    let addr = jid("str-01-0000000e@localhost");
    thing.report(celsius(1), Qos::AtLeastOnce).await.unwrap();
    thing.report(celsius(2), Qos::AtLeastOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The next batch prunes what is older than a second, but the latest value stays. (On
    // a machine slow enough to take a second between two reports, 3 may be pruned by 4's
    // batch too, rightly: what must hold is that 1 and 2 are gone and 4 is kept.)
    thing.report(celsius(3), Qos::AtLeastOnce).await.unwrap();
    thing.report(celsius(4), Qos::AtLeastOnce).await.unwrap();
    let history = all_history(&alice, &addr).await;
    assert!(
        history == ["3", "4"] || history == ["4"],
        "history after pruning: {history:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    thing.report(celsius(5), Qos::AtLeastOnce).await.unwrap();
    thing.report(celsius(6), Qos::AtLeastOnce).await.unwrap();
    let history = all_history(&alice, &addr).await;
    assert!(
        history == ["5", "6"] || history == ["6"],
        "history after pruning: {history:?}"
    );
    let latest = alice.latest_reports(addr, T).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].data, celsius(6));
}

lithos_testkit::in_both_formats!(levels, exactly_once, for_lan_nodes);

/// A LAN node is a thing of its own: its owner (not the gateway's) reads the node's stored
/// reports by naming the node, and nothing else of the gateway's; a stranger reads nothing.
#[tokio::test]
async fn a_node_owner_reads_the_nodes_reports() {
    let s = TestServer::start("[modules.operator]\noperators = ['alice', 'bob']\n").await;
    s.add_users(&["alice", "bob", "carol"]).await;
    let format = WireFormat::Xml;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let (carol, _ce) = s.user("carol", format).await;
    // Alice's gateway; bob's thermometer behind it as node 5.
    let gateway =
        things::gateway_with_node(&s, &alice, &bob, "0000001D", "STR-01-0000001F", 5, format).await;
    let addr = gateway.jid().to_bare();
    let mut iq = Iq::set(
        "",
        Report::new(celsius(21), Qos::AtLeastOnce).into_element(),
    );
    iq.from = Some(addr.with_resource("5").unwrap());
    gateway.request(iq, T).await.unwrap();

    let node5 = History {
        node: Some("5".into()),
        ..History::default()
    };
    let (items, _) = bob
        .report_history(addr.clone(), node5.clone(), T)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].data, celsius(21));
    let latest = bob.node_latest_reports(addr.clone(), 5, T).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].node, "5");
    // Not the gateway's other data, nor another node's.
    let e = bob
        .report_history(addr.clone(), History::default(), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = bob.latest_reports(addr.clone(), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = bob
        .node_latest_reports(addr.clone(), 6, T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    // A stranger; the gateway's owner reads all of it.
    let e = carol
        .report_history(addr.clone(), node5, T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    assert_eq!(alice.latest_reports(addr, T).await.unwrap().len(), 1);
}
