//! LAN nodes end to end over the simulated radio, with a real server, a gateway (LAN router
//! and DAC service) and nodes running `lithos-mud`:
//!
//! - a new node runs LoRa-DAC, gets an address, and the gateway adds it to the server; its
//!   owner commands it (executed), a stranger is refused; a node restarted configured goes
//!   on, one restarted allocated asks `is-configured`; a node the server refuses is told
//!   `not-configured`; with the radio delaying a frame past its deadline, the node never runs
//!   it;
//! - on a radio losing 20 % of frames and duplicating 5 %, every acknowledged notification
//!   reaches the owner exactly once, every QoS 1 report is stored at least once, and every
//!   QoS 2 report exactly once.

mod common;

use common::{LIGHT, notifications, start_node, switched};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lithos_client::{Client, Events, RequestError};
use lithos_core::binary::lan::LanFrame;
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{DefinedCondition, Presence};
use lithos_core::{Element, Jid, Payload};
use lithos_gateway::dac::WorkingMode;
use lithos_gateway::router::LanRouter;
use lithos_lora_sim::{Address, Conditions, RadioNetwork};
use lithos_mud::{LanError, NodeBuilder, State};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_concentrator::{ConcentratorExt, ResetNode};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_lora_dac as dac;
use lithos_tuxp_lora_gateway::ChangeWorkingMode;
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{History, Qos, ReportsExt};

const TEMPERATURE: &str = lithos_things_demo::temperature::NS;

/// A gateway online with its LAN router and DAC service on `net`.
struct Gateway {
    client: Client,
    router: Arc<LanRouter>,
    _events: Events,
}

impl Gateway {
    fn jid(&self, lan_id: u8) -> Jid {
        self.client
            .jid()
            .to_bare()
            .with_resource(&lan_id.to_string())
            .unwrap()
    }
}

async fn gateway(
    s: &lithos_testkit::TestServer,
    operator: &Client,
    serial: &str,
    net: &RadioNetwork,
    format: WireFormat,
) -> Gateway {
    let id = format!("LGW-01-{serial}");
    operator.authorize_thing(&id, KEY, T).await.unwrap();
    let gw = lithos_gateway::simulated::start(net, things::runtime(s, &id, format), |_, _| {})
        .await
        .unwrap();
    Gateway {
        client: gw.client,
        router: gw.router,
        _events: gw.events,
    }
}

/// A light node counting its flashes.
fn light(id: &str, code: &str, flashes: Arc<AtomicUsize>) -> NodeBuilder {
    NodeBuilder::new(id, code)
        .on_action(LIGHT, "flash", move |_| {
            flashes.fetch_add(1, Ordering::SeqCst);
            0
        })
        .dac_timing(Duration::from_millis(300), Duration::from_secs(30))
}

fn flash() -> Element {
    Element::builder("flash", LIGHT).attr("repeat", "1").build()
}

async fn execute(c: &Client, to: &Jid, deadline: Duration) -> Result<(), RequestError> {
    c.execute(to.clone(), flash(), deadline).await.map(|_| ())
}

/// The bytes of a DAC registration's four frames for `thing_id` and `code` at `lan_id`.
fn registration_bytes(thing_id: &str, code: &str, lan_id: u8) -> Vec<usize> {
    let len = |f: LanFrame| f.as_bytes().len();
    vec![
        len(LanFrame::of(dac::Introduction {
            thing_id: thing_id.into(),
            address: lithos_core::binary::lan::RawBytes(dac::DAC_CLIENT.to_bytes().to_vec()),
            registration_code: code.into(),
        })
        .unwrap()),
        len(LanFrame::of(dac::Allocation {
            uplink_channel_begin: 0x17,
            uplink_channel_end: 0x17,
            uplink_address: lithos_core::binary::lan::RawBytes(vec![0xEF, 0xEF]),
            allocated_address: lithos_core::binary::lan::RawBytes(
                dac::allocated_address(lan_id).to_bytes().to_vec(),
            ),
        })
        .unwrap()),
        len(LanFrame::of(dac::Allocated {
            thing_id: thing_id.into(),
        })
        .unwrap()),
        len(LanFrame::of(dac::Configured).unwrap()),
    ]
}

async fn dac_then_commands(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let net = RadioNetwork::new(21, Conditions::perfect());
    let gw = gateway(&s, &alice, "0E0E0E20", &net, format).await;
    let dir = tempfile::tempdir().unwrap();

    // A new light: DAC gives it LAN id 1 in four frames, each within the radio's 64 bytes.
    alice
        .authorize_thing("SL-01-0E0E0E21", "LIGHT-KEY-01", T)
        .await
        .unwrap();
    let flashes = Arc::new(AtomicUsize::new(0));
    let before = net.stats();
    let node = light("SL-01-0E0E0E21", "LIGHT-KEY-01", flashes.clone())
        .state_file(dir.path().join("light.state"))
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap();
    let after = net.stats();
    assert_eq!(node.allocation().lan_id, 1);
    assert_eq!(node.allocation().address, Address::new(0, 1, 0x17));
    let frames = registration_bytes("SL-01-0E0E0E21", "LIGHT-KEY-01", 1);
    assert!(frames.iter().all(|f| *f <= 64), "{frames:?}");
    assert_eq!(after.sent - before.sent, 4, "four frames, none sent again");
    assert_eq!(
        (after.sent_bytes - before.sent_bytes) as usize,
        frames.iter().sum::<usize>()
    );
    // The server knows it behind the gateway.
    let nodes = gw.client.pull_nodes(T).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].thing_id, "SL-01-0E0E0E21");
    assert_eq!(nodes[0].address, "la$0,1:23");

    // It tells of an event: acknowledged once its owner has it.
    node.notify(switched(0, 2), true).await.unwrap();
    // Its owner commands it by its address; a stranger is refused.
    let edge = gw.client.jid().to_bare().with_resource("0").unwrap();
    execute(&alice, &gw.jid(1), T).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);
    let e = execute(&bob, &gw.jid(1), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));

    // Restarted configured: it goes on at its address with no DAC.
    drop(node);
    let sent = net.stats().sent;
    let node = light("SL-01-0E0E0E21", "LIGHT-KEY-01", flashes.clone())
        .state_file(dir.path().join("light.state"))
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap();
    assert_eq!(net.stats().sent, sent);
    execute(&alice, &gw.jid(1), T).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);

    // Restarted while allocated (its power went before `configured` came): it asks, and
    // the gateway, which added it, says it is.
    drop(node);
    let state = dir.path().join("light.state");
    let allocation = State::load(&state).await.unwrap().allocation().unwrap();
    State::Allocated(allocation).save(&state).await.unwrap();
    let node = light("SL-01-0E0E0E21", "LIGHT-KEY-01", flashes.clone())
        .state_file(&state)
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap();
    assert_eq!(node.allocation().lan_id, 1);
    assert_eq!(
        State::load(&state).await.unwrap(),
        State::Configured(allocation)
    );
    execute(&alice, &gw.jid(1), T).await.unwrap();

    // A node whose code no operator gave: the server refuses it, the gateway says
    // `not-configured`, and the node starts over until its DAC time runs out.
    let e = NodeBuilder::new("SL-01-0E0E0E22", "WRONG-CODE")
        .dac_timing(Duration::from_millis(300), Duration::from_secs(2))
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap_err();
    assert!(matches!(e, LanError::Dac(_)), "{e:?}");
    assert_eq!(gw.client.pull_nodes(T).await.unwrap().len(), 1);
    // Its owner switches the gateway to ROUTER mode: an authorized new node gets no
    // allocation.
    let mode = |m: WorkingMode| ChangeWorkingMode { working_mode: m }.into_element();
    alice
        .execute(edge.clone(), mode(WorkingMode::Router), T)
        .await
        .unwrap();
    alice
        .authorize_thing("SL-01-0E0E0E23", "LIGHT-KEY-03", T)
        .await
        .unwrap();
    let e = NodeBuilder::new("SL-01-0E0E0E23", "LIGHT-KEY-03")
        .dac_timing(Duration::from_millis(300), Duration::from_secs(1))
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap_err();
    assert!(matches!(e, LanError::Dac(_)), "{e:?}");
    let e = bob
        .execute(edge.clone(), mode(WorkingMode::Dac), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    alice
        .execute(edge.clone(), mode(WorkingMode::Dac), T)
        .await
        .unwrap();

    // The radio delays frames past the execution's deadline: the controller times out, and
    // the node, reached late, does not run it.
    net.set_conditions(Conditions::perfect().delayed(Duration::from_millis(1200), Duration::ZERO))
        .unwrap();
    let before = flashes.load(Ordering::SeqCst);
    let started = Instant::now();
    let deadline = Duration::from_millis(500);
    let e = execute(&alice, &gw.jid(1), deadline).await.unwrap_err();
    assert!(
        matches!(e, RequestError::Timeout)
            || condition(&e) == Some(DefinedCondition::RemoteServerTimeout),
        "{e:?}"
    );
    assert!(started.elapsed() < deadline + Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        flashes.load(Ordering::SeqCst),
        before,
        "reached after its deadline: not run"
    );
    assert_eq!(gw.router.in_flight(), 0);

    // Its owner resets the node through the gateway: the node is told, forgets its address
    // and stops; the server and the gateway forget it; a stranger may not.
    net.set_conditions(Conditions::perfect()).unwrap();
    let reset = |lan_id: u8| ResetNode { lan_id }.into_element();
    let e = bob.execute(edge.clone(), reset(1), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    alice.execute(edge.clone(), reset(1), T).await.unwrap();
    tokio::time::timeout(T, node.reset()).await.unwrap();
    assert_eq!(State::load(&state).await.unwrap(), State::Initial);
    assert!(gw.client.pull_nodes(T).await.unwrap().is_empty());
    let e = execute(&alice, &gw.jid(1), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    let e = alice.execute(edge.clone(), reset(1), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    // sync-nodes: the gateway reads its (empty) list again.
    alice
        .execute(edge, lithos_tuxp_concentrator::SyncNodes.into_element(), T)
        .await
        .unwrap();
    assert!(gw.router.lan_ids().is_empty());
}

fn celsius(v: u32) -> Element {
    lithos_things_demo::temperature::CelsiusDegree { value: v as f32 }.into_element()
}

async fn over_a_lossy_radio(format: WireFormat) {
    let s = things::start("").await;
    let (alice, mut alice_events) = s.user("alice", format).await;
    alice.send_presence(Presence::available()).await.unwrap();
    let net = RadioNetwork::new(
        2026,
        Conditions::perfect()
            .delayed(Duration::from_millis(2), Duration::from_millis(3))
            .lossy(0.20, 0.05),
    );
    let gw = gateway(&s, &alice, "0E0E0E30", &net, format).await;
    alice
        .authorize_thing("SL-01-0E0E0E31", "LIGHT-KEY-31", T)
        .await
        .unwrap();
    alice
        .authorize_thing("STR-01-0E0E0E32", "TEMP-KEY-32", T)
        .await
        .unwrap();
    // DAC itself, over the lossy air.
    let light = start_node(
        light(
            "SL-01-0E0E0E31",
            "LIGHT-KEY-31",
            Arc::new(AtomicUsize::new(0)),
        ),
        &net,
    )
    .await;
    let thermometer = start_node(
        NodeBuilder::new("STR-01-0E0E0E32", "TEMP-KEY-32")
            .dac_timing(Duration::from_millis(300), Duration::from_secs(30)),
        &net,
    )
    .await;
    assert_eq!(light.allocation().lan_id, 1);
    assert_eq!(thermometer.allocation().lan_id, 2);

    // Acknowledged notifications: each reaches the owner exactly once.
    let events: Vec<Element> = (0..24).map(|i| switched(i % 3, (i + 1) % 3)).collect();
    for e in &events {
        if let Err(err) = light.notify(e.clone(), true).await {
            panic!(
                "{err}: radio {:?}, gateway {:?}",
                net.stats(),
                gw.router.uplink_stats()
            );
        }
    }
    let got = notifications(&mut alice_events, Duration::from_secs(3)).await;
    assert_eq!(got.len(), events.len(), "exactly once each");
    assert!(got.iter().all(|(from, _)| *from == gw.jid(1)));
    assert_eq!(
        got.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        events,
        "in order"
    );

    // Reports: QoS 1 (the default for acknowledged data) at least once; then QoS 2 for
    // this data type, exactly once.
    for v in 0..20 {
        thermometer.report(celsius(v), true).await.unwrap();
    }
    gw.router
        .set_report_qos(TEMPERATURE, "celsius-degree", Qos::ExactlyOnce);
    for v in 100..120 {
        thermometer.report(celsius(v), true).await.unwrap();
    }
    let addr = gw.client.jid().to_bare();
    let (items, _) = alice
        .report_history(addr, History::default(), T)
        .await
        .unwrap();
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for i in &items {
        assert_eq!(i.node, "2");
        let v: f32 = i.data.attr("value").unwrap().parse().unwrap();
        *counts.entry(v as u32).or_default() += 1;
    }
    for v in 0..20 {
        assert!(
            counts.get(&v).copied().unwrap_or(0) >= 1,
            "QoS 1 report {v}"
        );
    }
    for v in 100..120 {
        assert_eq!(counts.get(&v).copied(), Some(1), "QoS 2 report {v}");
    }
    let stats = net.stats();
    let up = gw.router.uplink_stats();
    assert!(stats.lost > 0 && stats.duplicated > 0, "{stats:?}");
    assert!(up.duplicates > 0, "copies reached the gateway: {up:?}");
    eprintln!("radio: {stats:?}; gateway: {up:?}");
}

/// With `[modules.concentrator] confirmation`, the gateway's `add-node` waits for an
/// operator: the node is configured once alice confirms it, and one nobody confirms is
/// refused when the wait ends (the node is told `not-configured`).
async fn with_operator_confirmation(format: WireFormat) {
    let s =
        things::start("[modules.concentrator]\nconfirmation = true\nconfirmation_seconds = 2\n")
            .await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let net = RadioNetwork::new(23, Conditions::perfect());
    let gw = gateway(&s, &alice, "0E0E0E40", &net, format).await;
    alice
        .authorize_thing("SL-01-0E0E0E41", "LIGHT-KEY-41", T)
        .await
        .unwrap();
    let flashes = Arc::new(AtomicUsize::new(0));
    let radio = net.radio(dac::DAC_CLIENT);
    let starting =
        tokio::spawn(light("SL-01-0E0E0E41", "LIGHT-KEY-41", flashes.clone()).start(radio));
    // It waits, listed for operators.
    let waiting = loop {
        let w = alice.pending_confirmations(T).await.unwrap();
        if !w.is_empty() {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].node_thing_id, "SL-01-0E0E0E41");
    assert_eq!(waiting[0].concentrator_thing_id, "lgw-01-0e0e0e40");
    assert_eq!((waiting[0].lan_id, waiting[0].owner.as_str()), (1, "alice"));
    assert!(
        gw.client.pull_nodes(T).await.unwrap().is_empty(),
        "not added yet"
    );
    // Bob is no operator; a node nobody waits for is not found.
    let e = bob
        .confirm_concentration("LGW-01-0E0E0E40", "SL-01-0E0E0E41", T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = alice
        .confirm_concentration("LGW-01-0E0E0E40", "SL-01-0E0E0E99", T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    alice
        .confirm_concentration("LGW-01-0E0E0E40", "SL-01-0E0E0E41", T)
        .await
        .unwrap();
    let node = starting.await.unwrap().unwrap();
    assert_eq!(node.allocation().lan_id, 1);
    execute(&alice, &gw.jid(1), T).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);

    // Nobody confirms the next one: refused after 2 s, told `not-configured`, it starts
    // over until its own DAC time runs out.
    alice
        .authorize_thing("SL-01-0E0E0E42", "LIGHT-KEY-42", T)
        .await
        .unwrap();
    let e = NodeBuilder::new("SL-01-0E0E0E42", "LIGHT-KEY-42")
        .dac_timing(Duration::from_millis(300), Duration::from_millis(2800))
        .start(net.radio(dac::DAC_CLIENT))
        .await
        .unwrap_err();
    assert!(matches!(e, LanError::Dac(_)), "{e:?}");
    // The gateway's last try waits out its 2 s too, then nothing is left waiting.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(alice.pending_confirmations(T).await.unwrap().is_empty());
    assert_eq!(gw.client.pull_nodes(T).await.unwrap().len(), 1);
}

lithos_testkit::in_both_formats!(
    dac_then_commands,
    over_a_lossy_radio,
    with_operator_confirmation
);
