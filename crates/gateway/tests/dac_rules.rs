//! The DAC service's and the concentrator's rules that keep two nodes from sharing a LAN
//! id, driven frame by frame from raw radios at the DAC client address, with a real server:
//!
//! - a node being added (the server holding `add-node` for an operator's confirmation) holds
//!   the service past [`SERVING_FOR`]: another new node gets no allocation meanwhile, and
//!   an `is-configured` from a third is not answered (every node in DAC would hear the
//!   answer and the one being served would take it for its own);
//! - LAN ids the server lists but the radio does not route (a BLE node) are never given;
//! - a confirmation wait ends with the gateway's session: nothing is added behind a gateway
//!   that stopped asking.

use std::time::{Duration, Instant};

use lithos_core::Payload;
use lithos_core::binary::lan::{LanFrame, RawBytes};
use lithos_core::codec::WireFormat;
use lithos_core::stanza::DefinedCondition;
use lithos_gateway::dac::SERVING_FOR;
use lithos_lora_sim::{Conditions, Radio, RadioNetwork};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_concentrator::{AddNode, CommunicationNet, ConcentratorExt};
use lithos_tuxp_lora_dac::{
    Allocated, Allocation, Configured, DAC_CLIENT, DAC_SERVICE, Introduction, IsConfigured,
};
use lithos_tuxp_operator::OperatorExt;

async fn send<P: Payload>(radio: &Radio, p: P) {
    let f = LanFrame::of(p).unwrap();
    radio.send(DAC_SERVICE, f.as_bytes()).await.unwrap();
}

fn introduction(id: &str, code: &str) -> Introduction {
    Introduction {
        thing_id: id.into(),
        address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
        registration_code: code.into(),
    }
}

/// The next frame `radio` hears within `within`, read as `P`.
async fn hear<P: Payload>(radio: &mut Radio, within: Duration) -> Option<P> {
    let until = tokio::time::Instant::now() + within;
    while let Ok(Some(f)) = tokio::time::timeout_at(until, radio.recv()).await {
        if let Some(p) = LanFrame::from_bytes(f.to_vec()).read::<P>() {
            return Some(p);
        }
    }
    None
}

/// Nothing at all within `within`.
async fn silence(radio: &mut Radio, within: Duration) {
    if let Ok(Some(f)) = tokio::time::timeout(within, radio.recv()).await {
        panic!("heard {f:02X?}");
    }
}

#[tokio::test]
async fn a_node_being_added_holds_the_service() {
    let s =
        things::start("[modules.concentrator]\nconfirmation = true\nconfirmation_seconds = 120\n")
            .await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let net = RadioNetwork::new(31, Conditions::perfect());
    let id = "LGW-01-0D0D0D50";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let _gw =
        lithos_gateway::simulated::start(&net, things::runtime(&s, id, WireFormat::Xml), |_, _| {})
            .await
            .unwrap();
    for (thing, code) in [("SL-01-0D0D0D51", "KEY-51"), ("SL-01-0D0D0D52", "KEY-52")] {
        alice.authorize_thing(thing, code, T).await.unwrap();
    }
    let mut a = net.radio(DAC_CLIENT);
    let mut b = net.radio(DAC_CLIENT);

    // A: introduced, allocated LAN id 1, then held by the server for confirmation.
    send(&a, introduction("SL-01-0D0D0D51", "KEY-51")).await;
    let alloc: Allocation = hear(&mut a, T).await.expect("an allocation");
    assert_eq!(alloc.allocated_address.0, [0x00, 0x01, 0x17]);
    let _ = b.try_recv();
    send(
        &a,
        Allocated {
            thing_id: "SL-01-0D0D0D51".into(),
        },
    )
    .await;
    let until = Instant::now() + T;
    while alice.pending_confirmations(T).await.unwrap().is_empty() {
        assert!(Instant::now() < until, "no confirmation requested");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Meanwhile B gets nothing, and an is-configured from a third is not answered (A
    // would hear `not-configured` and take it for its own).
    send(&b, introduction("SL-01-0D0D0D52", "KEY-52")).await;
    silence(&mut b, Duration::from_millis(500)).await;
    send(
        &b,
        IsConfigured {
            address: RawBytes(DAC_CLIENT.to_bytes().to_vec()),
            thing_id: "SL-01-0D0D0D99".into(),
        },
    )
    .await;
    silence(&mut a, Duration::from_millis(500)).await;
    let _ = b.try_recv();
    // Still nothing past the time an allocation alone holds the service.
    tokio::time::sleep(SERVING_FOR + Duration::from_secs(1)).await;
    send(&b, introduction("SL-01-0D0D0D52", "KEY-52")).await;
    silence(&mut b, Duration::from_millis(500)).await;
    let _ = a.try_recv();

    // Confirmed: A is configured with LAN id 1; then B gets LAN id 2, not A's.
    alice
        .confirm_concentration(id, "SL-01-0D0D0D51", T)
        .await
        .unwrap();
    let _: Configured = hear(&mut a, T).await.expect("configured");
    let _ = b.try_recv();
    send(&b, introduction("SL-01-0D0D0D52", "KEY-52")).await;
    let alloc: Allocation = hear(&mut b, T).await.expect("an allocation");
    assert_eq!(alloc.allocated_address.0, [0x00, 0x02, 0x17]);
}

#[tokio::test]
async fn lan_ids_of_nodes_off_the_radio_are_not_given() {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let net = RadioNetwork::new(32, Conditions::perfect());
    let id = "LGW-01-0D0D0D60";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let gw =
        lithos_gateway::simulated::start(&net, things::runtime(&s, id, WireFormat::Xml), |_, _| {})
            .await
            .unwrap();
    // A BLE node at LAN id 1 and one whose address this radio cannot read at 2.
    for (thing, code, lan_id, net_kind, address) in [
        (
            "SL-01-0D0D0D61",
            "KEY-61",
            1,
            CommunicationNet::Ble,
            "ble$AA:BB",
        ),
        (
            "SL-01-0D0D0D62",
            "KEY-62",
            2,
            CommunicationNet::Lora,
            "somewhere",
        ),
    ] {
        alice.authorize_thing(thing, code, T).await.unwrap();
        gw.client
            .add_node(
                AddNode {
                    thing_id: thing.into(),
                    registration_code: code.into(),
                    lan_id,
                    communication_net: net_kind,
                    address: address.into(),
                },
                T,
            )
            .await
            .unwrap();
    }
    assert_eq!(gw.router.sync_nodes(&gw.client, T).await.unwrap(), 0);
    assert!(gw.router.lan_ids().is_empty(), "neither is routed here");
    assert_eq!(
        gw.router.taken_lan_ids(),
        [1, 2].into_iter().collect(),
        "both are taken"
    );
    alice
        .authorize_thing("SL-01-0D0D0D63", "KEY-63", T)
        .await
        .unwrap();
    let mut radio = net.radio(DAC_CLIENT);
    send(&radio, introduction("SL-01-0D0D0D63", "KEY-63")).await;
    let alloc: Allocation = hear(&mut radio, T).await.expect("an allocation");
    assert_eq!(alloc.allocated_address.0, [0x00, 0x03, 0x17]);
}

#[tokio::test]
async fn a_confirmation_wait_ends_with_the_gateways_session() {
    let s =
        things::start("[modules.concentrator]\nconfirmation = true\nconfirmation_seconds = 120\n")
            .await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let id = "LGW-01-0D0D0D70";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("gw.credentials");
    let (gw, _ge) = things::runtime(&s, id, WireFormat::Xml)
        .credentials_file(creds.clone())
        .start()
        .await
        .unwrap();
    alice
        .authorize_thing("SL-01-0D0D0D71", "KEY-71", T)
        .await
        .unwrap();
    let asking = gw.clone();
    let add = tokio::spawn(async move {
        asking
            .add_node(
                AddNode {
                    thing_id: "SL-01-0D0D0D71".into(),
                    registration_code: "KEY-71".into(),
                    lan_id: 1,
                    communication_net: CommunicationNet::Lora,
                    address: "la$0,1:23".into(),
                },
                Duration::from_secs(60),
            )
            .await
    });
    let until = Instant::now() + T;
    while alice.pending_confirmations(T).await.unwrap().is_empty() {
        assert!(Instant::now() < until, "no confirmation requested");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.close().await;
    assert!(add.await.unwrap().is_err(), "the session ended");
    // Within a couple of seconds the wait is over: nothing to confirm, nothing added.
    let until = Instant::now() + Duration::from_secs(3);
    while !alice.pending_confirmations(T).await.unwrap().is_empty() {
        assert!(Instant::now() < until, "still waiting for a gone session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = alice
        .confirm_concentration(id, "SL-01-0D0D0D71", T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    let (gw, _ge) = things::runtime(&s, id, WireFormat::Xml)
        .credentials_file(creds)
        .start()
        .await
        .unwrap();
    assert!(gw.pull_nodes(T).await.unwrap().is_empty());
}
