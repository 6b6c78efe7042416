//! Who sees a thing's live reports, and for how long (issue 14, defect 10): a follower sees
//! the report data it is approved for and nothing else, and a live subscription ends when the
//! grant or the follow that allowed it is withdrawn.

use std::time::Duration;

use lithos_client::{Event, Events, WireFormat};
use lithos_core::stanza::DefinedCondition;
use lithos_core::{Element, Jid};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_friends::FriendsExt;
use lithos_tuxp_operator::{ApproveFollow, OperatorExt};
use lithos_tuxp_report::{Qos, Report, ReporterExt, ReportsExt, live_report};
use lithos_tuxp_things::{Protocol, ThingModel};

const WEATHER: &str = "urn:example:weather";

/// A weather station: two kinds of report data, and an event.
const WEATHER_STATION: ThingModel = ThingModel {
    name: "WS-01",
    description: "test weather station: temperature and humidity reports, storm events",
    actions: &[],
    events: &[Protocol::new(WEATHER, "storm")],
    data: &[
        Protocol::new(WEATHER, "temperature"),
        Protocol::new(WEATHER, "humidity"),
    ],
    concentrator: false,
};

lithos_core::extension! { model: WEATHER_STATION }

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

fn reading(kind: &str, v: u32) -> Element {
    Element::builder(kind.to_string(), WEATHER)
        .attr("value", v.to_string())
        .build()
}

/// The live reports that arrive within `wait`, as `kind=value`.
async fn live(events: &mut Events, wait: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut v = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let Event::Message(m) = e
            && let Some((_, r)) = live_report(&m)
        {
            let r: Report = r;
            v.push(format!(
                "{}={}",
                r.data.name(),
                r.data.attr("value").unwrap_or_default()
            ));
        }
    }
    v
}

#[tokio::test]
async fn followers_see_what_they_follow_and_lose_it_when_it_ends() {
    let format = WireFormat::Xml;
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, mut bob_events) = s.user("bob", format).await;
    let id = "WS-01-0000000A";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let (station, _se) = things::runtime(&s, id, format).start().await.unwrap();
    let addr = jid("ws-01-0000000a@localhost");
    let quiet = Duration::from_millis(400);
    let report_both = |t: u32, h: u32| {
        let station = station.clone();
        async move {
            station
                .report(reading("temperature", t), Qos::AtLeastOnce)
                .await
                .unwrap();
            station
                .report(reading("humidity", h), Qos::AtLeastOnce)
                .await
                .unwrap();
        }
    };
    let approve = |event: &str, canceled: bool| ApproveFollow {
        friend: addr.clone(),
        event: event.to_string(),
        follower: jid("bob@localhost"),
        canceled,
    };

    // Following the storm event is for notifications: no reports for it.
    let storm = format!("{{{WEATHER}}}storm");
    bob.follow(addr.clone(), &storm, false, T).await.unwrap();
    alice
        .approve_follow(approve(&storm, false), T)
        .await
        .unwrap();
    let e = bob.follow_reports(addr.clone(), true, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));

    // Following the temperature: temperature reports, not humidity.
    let temperature = format!("{{{WEATHER}}}temperature");
    bob.follow(addr.clone(), &temperature, false, T)
        .await
        .unwrap();
    alice
        .approve_follow(approve(&temperature, false), T)
        .await
        .unwrap();
    bob.follow_reports(addr.clone(), true, T).await.unwrap();
    report_both(20, 50).await;
    assert_eq!(live(&mut bob_events, quiet).await, ["temperature=20"]);
    // Followers read no stored reports: those are the owner's and the grantees'.
    let e = bob.latest_reports(addr.clone(), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));

    // The operator ends the follow: the live subscription ends with it.
    alice
        .approve_follow(approve(&temperature, true), T)
        .await
        .unwrap();
    report_both(21, 51).await;
    assert_eq!(live(&mut bob_events, quiet).await, Vec::<String>::new());

    // A grant shows everything, until it is revoked.
    alice
        .set_grant(id, jid("bob@localhost"), false, T)
        .await
        .unwrap();
    bob.follow_reports(addr.clone(), true, T).await.unwrap();
    report_both(22, 52).await;
    assert_eq!(
        live(&mut bob_events, quiet).await,
        ["temperature=22", "humidity=52"]
    );
    alice
        .set_grant(id, jid("bob@localhost"), true, T)
        .await
        .unwrap();
    report_both(23, 53).await;
    assert_eq!(live(&mut bob_events, quiet).await, Vec::<String>::new());
}
