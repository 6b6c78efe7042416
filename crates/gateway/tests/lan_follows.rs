//! Follows between two nodes of one gateway (reference §3.5, `lan-follows`), end to end over
//! a lossy simulated radio with a real server: the gateway asks for its node 2 to follow
//! node 1's `switch-state-changed`, an operator approves it, the server sets the follow on
//! the gateway, and from then on every event of node 1 reaches node 2 over the LAN exactly
//! once, while the owner still hears every one and the server sends none to node 2 itself.
//! Ending the follow stops it; the requests a gateway may not make are refused.

mod common;

use common::{LIGHT, notifications, start_node, switched};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lithos_client::Client;
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{DefinedCondition, Presence};
use lithos_core::{Element, Jid, Payload};
use lithos_gateway::router::LanRouter;
use lithos_lora_sim::{Conditions, RadioNetwork};
use lithos_mud::NodeBuilder;
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_concentrator::{ConcentratorExt, LanFollow, PullLanFollows};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_friends::FriendsExt;
use lithos_tuxp_operator::{ApproveFollow, OperatorExt};

fn event_key() -> String {
    format!("{{{LIGHT}}}switch-state-changed")
}

/// A light node recording the events it follows.
fn light(id: &str, code: &str, heard: Arc<Mutex<Vec<Element>>>) -> NodeBuilder {
    NodeBuilder::new(id, code)
        .on_action(LIGHT, "flash", |_| 0)
        .on_event(LIGHT, "switch-state-changed", move |e| {
            heard.lock().unwrap().push(e.clone())
        })
        .dac_timing(Duration::from_millis(300), Duration::from_secs(30))
}

/// Waits until the router routes exactly `want`.
async fn routes(router: &LanRouter, want: &[LanFollow]) {
    let until = Instant::now() + T;
    while router.lan_follows() != want {
        assert!(
            Instant::now() < until,
            "the gateway routes {:?}, not {want:?}",
            router.lan_follows()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn at(gw: &Client, lan_id: u8) -> Jid {
    gw.jid()
        .to_bare()
        .with_resource(&lan_id.to_string())
        .unwrap()
}

async fn node_follows_node(format: WireFormat) {
    let s = things::start("").await;
    let (alice, mut alice_events) = s.user("alice", format).await;
    alice.send_presence(Presence::available()).await.unwrap();
    let (bob, _be) = s.user("bob", format).await;
    let net = RadioNetwork::new(
        77,
        Conditions::perfect()
            .delayed(Duration::from_millis(2), Duration::from_millis(3))
            .lossy(0.20, 0.05),
    );
    let id = "LGW-01-0F0F0F40";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let gw = lithos_gateway::simulated::start(&net, things::runtime(&s, id, format), |_, _| {})
        .await
        .unwrap();
    let (client, router, mut gw_events) = (gw.client, gw.router, gw.events);
    for (thing, code) in [("SL-01-0F0F0F41", "KEY-41"), ("SL-01-0F0F0F42", "KEY-42")] {
        alice.authorize_thing(thing, code, T).await.unwrap();
    }
    let switch_heard = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let switch = start_node(
        light("SL-01-0F0F0F41", "KEY-41", switch_heard.clone()),
        &net,
    )
    .await;
    let follower = start_node(light("SL-01-0F0F0F42", "KEY-42", heard.clone()), &net).await;
    assert_eq!(
        (switch.allocation().lan_id, follower.allocation().lan_id),
        (1, 2)
    );
    assert!(router.lan_follows().is_empty());

    // What a gateway may not ask for.
    let ev = event_key();
    let refused = |e: lithos_client::RequestError| condition(&e);
    for (friend, lan_id, want) in [
        (at(&client, 1), 9, DefinedCondition::ItemNotFound),
        (at(&client, 1), 1, DefinedCondition::BadRequest),
        (at(&client, 0), 2, DefinedCondition::ItemNotFound),
        (at(&client, 3), 2, DefinedCondition::ItemNotFound),
    ] {
        let e = client
            .follow_for_node(friend.clone(), &ev, lan_id, false, T)
            .await
            .unwrap_err();
        assert_eq!(refused(e), Some(want), "{friend} for node {lan_id}");
    }
    // Nobody else speaks for the gateway's nodes.
    let e = bob
        .follow_for_node(at(&client, 1), &ev, 2, false, T)
        .await
        .unwrap_err();
    assert_eq!(refused(e), Some(DefinedCondition::ItemNotFound));

    // Asked, not approved yet: node 1's events reach its owner only.
    assert!(
        !client
            .follow_for_node(at(&client, 1), &ev, 2, false, T)
            .await
            .unwrap()
    );
    switch.notify(switched(0, 1), true).await.unwrap();
    let got = notifications(&mut alice_events, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert!(heard.lock().unwrap().is_empty());

    // Approved: the server sets it on the gateway.
    let approval = ApproveFollow {
        friend: at(&client, 1),
        event: ev.clone(),
        follower: at(&client, 2),
        canceled: false,
    };
    alice.approve_follow(approval.clone(), T).await.unwrap();
    let follow = LanFollow {
        friend_lan_id: 1,
        event: ev.clone(),
        follower_lan_id: 2,
    };
    routes(&router, std::slice::from_ref(&follow)).await;
    assert_eq!(client.lan_follows(T).await.unwrap(), vec![follow.clone()]);

    // Every event of node 1 reaches node 2 exactly once over the lossy LAN, and its owner
    // too; the server sends none to node 2 (the gateway passed them on).
    let events: Vec<Element> = (0..12).map(|i| switched(i % 3, (i + 1) % 3)).collect();
    for e in &events {
        switch.notify(e.clone(), true).await.unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    while heard.lock().unwrap().len() < events.len() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let mut want: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "exactly once each: radio {:?}, gateway {:?}",
        net.stats(),
        router.uplink_stats()
    );
    assert!(
        switch_heard.lock().unwrap().is_empty(),
        "not back to itself"
    );
    let to_owner = notifications(&mut alice_events, Duration::from_secs(1)).await;
    assert_eq!(to_owner.len(), events.len());
    let to_node = notifications(&mut gw_events, Duration::from_millis(200)).await;
    assert!(to_node.is_empty(), "the server sent {to_node:?}");
    let up = router.uplink_stats();
    assert_eq!(up.passed_on, events.len() as u64, "{up:?}");

    // Forgotten by the gateway (a restart, say), the owner has it pull them again.
    router.set_lan_follows(Vec::new());
    let edge = at(&client, 0);
    let e = bob
        .execute(edge.clone(), PullLanFollows.into_element(), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    alice
        .execute(edge, PullLanFollows.into_element(), T)
        .await
        .unwrap();
    assert_eq!(router.lan_follows(), vec![follow.clone()]);

    // Ended: the gateway stops passing them on.
    alice
        .approve_follow(
            ApproveFollow {
                canceled: true,
                ..approval.clone()
            },
            T,
        )
        .await
        .unwrap();
    routes(&router, &[]).await;
    let before = heard.lock().unwrap().len();
    switch.notify(switched(2, 0), true).await.unwrap();
    assert_eq!(
        notifications(&mut alice_events, Duration::from_millis(500))
            .await
            .len(),
        1
    );
    assert_eq!(heard.lock().unwrap().len(), before);

    // Ended, it must be asked for again before an operator can approve it; approved again,
    // with the follower gone silent: each pass gives up after FOLLOW_WAIT
    // and leaves nothing waiting (the table executions share stays free).
    alice
        .approve_follow(
            ApproveFollow {
                canceled: false,
                ..approval.clone()
            },
            T,
        )
        .await
        .unwrap_err();
    assert!(
        !client
            .follow_for_node(at(&client, 1), &ev, 2, false, T)
            .await
            .unwrap()
    );
    alice.approve_follow(approval, T).await.unwrap();
    routes(&router, std::slice::from_ref(&follow)).await;
    drop(follower);
    let failed = router.uplink_stats().not_passed_on;
    for i in 0..3 {
        switch.notify(switched(i, i + 1), true).await.unwrap();
    }
    tokio::time::sleep(lithos_gateway::router::FOLLOW_WAIT + Duration::from_millis(500)).await;
    assert_eq!(router.uplink_stats().not_passed_on, failed + 3);
    assert_eq!(router.in_flight(), 0, "nothing left waiting");
}

#[tokio::test]
async fn node_follows_node_xml() {
    node_follows_node(WireFormat::Xml).await;
}

#[tokio::test]
async fn node_follows_node_bxmpp() {
    node_follows_node(WireFormat::Bxmpp).await;
}
