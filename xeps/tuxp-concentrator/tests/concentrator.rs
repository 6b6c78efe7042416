//! Concentrators against a real server, in XML and in BXMPP: a gateway adds a node an
//! operator authorized (and only such a node, once, at a free LAN id), lists and removes
//! it; executions for `gateway/<lan-id>` are authorized against the node's owner, the grants
//! its owner gives and its model, and reach the gateway's edge session; a thing that is no
//! concentrator, or an account that is no thing, has no nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lithos_client::handler::fn_handler;
use lithos_client::{Client, RequestError};
use lithos_core::codec::WireFormat;
use lithos_core::stanza::DefinedCondition;
use lithos_core::{Element, Jid};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_concentrator::{AddNode, CommunicationNet, ConcentratorError, ConcentratorExt};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;

const GATEWAY: &str = "LGW-01-0A0A0A01";

fn add(id: &str, code: &str, lan_id: u8) -> AddNode {
    AddNode {
        thing_id: id.into(),
        registration_code: code.into(),
        lan_id,
        communication_net: CommunicationNet::Lora,
        address: format!("la$0,{lan_id}:23"),
    }
}

fn refused(e: &ConcentratorError) -> Option<DefinedCondition> {
    match e {
        ConcentratorError::Request(r) => condition(r),
        ConcentratorError::Answer(_) => None,
    }
}

fn flash() -> Element {
    Element::bare("flash", lithos_things_demo::light::NS)
}

fn node_jid(gw: &Client, lan_id: u8) -> Jid {
    gw.jid()
        .to_bare()
        .with_resource(&lan_id.to_string())
        .unwrap()
}

async fn executed(c: &Client, to: Jid, action: Element) -> Result<(), RequestError> {
    c.execute(to, action, T).await.map(|_| ())
}

async fn nodes_behind_a_gateway(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    alice.authorize_thing(GATEWAY, KEY, T).await.unwrap();
    let flashes = Arc::new(AtomicUsize::new(0));
    let counter = flashes.clone();
    // The gateway answers for its nodes (its LAN is lithos-gateway's business: here every
    // node flashes at once).
    let (gw, _ge) = things::runtime(&s, GATEWAY, format)
        .lan_nodes(fn_handler(move |_ctx, _iq| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        }))
        .start()
        .await
        .unwrap();

    // Only an authorized node, with the code the operator gave.
    let e = gw
        .add_node(add("SL-01-0B0B0B05", "NODE-5", 5), T)
        .await
        .unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::NotAcceptable), "{e}");
    alice
        .authorize_thing("SL-01-0B0B0B05", "NODE-5", T)
        .await
        .unwrap();
    let e = gw
        .add_node(add("SL-01-0B0B0B05", "WRONG", 5), T)
        .await
        .unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::NotAcceptable), "{e}");
    let e = gw
        .add_node(add("XX-99-0B0B0B05", "NODE-5", 5), T)
        .await
        .unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::NotAcceptable), "{e}");
    let e = gw
        .add_node(add("SL-01-0B0B0B05", "NODE-5", 0), T)
        .await
        .unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::BadRequest), "{e}");

    let added = gw
        .add_node(add("SL-01-0B0B0B05", "NODE-5", 5), T)
        .await
        .unwrap();
    assert_eq!(added.lan_id, 5);
    assert_eq!(added.model, "SL-01");
    assert_eq!(added.node_thing_id, "SL-01-0B0B0B05");
    assert_eq!(
        Some(added.concentrator_thing_name.as_str()),
        gw.jid().local()
    );
    // Once: the authorization is spent, and LAN id 5 is taken.
    let e = gw
        .add_node(add("SL-01-0B0B0B05", "NODE-5", 6), T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused(&e),
            Some(DefinedCondition::NotAcceptable | DefinedCondition::Conflict)
        ),
        "{e}"
    );
    alice
        .authorize_thing("SL-01-0B0B0B06", "NODE-6", T)
        .await
        .unwrap();
    let e = gw
        .add_node(add("SL-01-0B0B0B06", "NODE-6", 5), T)
        .await
        .unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::Conflict), "{e}");

    let nodes = gw.pull_nodes(T).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0].lan_id, nodes[0].thing_id.as_str()),
        (5, "SL-01-0B0B0B05")
    );
    assert_eq!(nodes[0].address, "la$0,5:23");

    // Commands to the node: its owner's, checked against its model, delivered to the
    // gateway's edge session; a stranger's refused; an absent node unknown.
    executed(&alice, node_jid(&gw, 5), flash()).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);
    let e = executed(&bob, node_jid(&gw, 5), flash()).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = executed(&alice, node_jid(&gw, 7), flash())
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    // The node's owner grants bob: bob commands the node (not the gateway).
    alice
        .set_grant(
            "SL-01-0B0B0B05",
            Jid::new("bob@localhost").unwrap(),
            false,
            T,
        )
        .await
        .unwrap();
    executed(&bob, node_jid(&gw, 5), flash()).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
    let e = bob
        .set_grant(
            "SL-01-0B0B0B05",
            Jid::new("bob@localhost").unwrap(),
            true,
            T,
        )
        .await
        .unwrap_err();
    assert_eq!(
        condition(&e),
        Some(DefinedCondition::Forbidden),
        "only the owner revokes"
    );
    alice
        .set_grant(
            "SL-01-0B0B0B05",
            Jid::new("bob@localhost").unwrap(),
            true,
            T,
        )
        .await
        .unwrap();
    let e = executed(&bob, node_jid(&gw, 5), flash()).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let photo = Element::bare("take-photo", lithos_things_demo::camera::NS);
    let e = executed(&alice, node_jid(&gw, 5), photo).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ServiceUnavailable));
    assert_eq!(flashes.load(Ordering::SeqCst), 2);

    // Removed: gone, and its commands with it.
    gw.remove_node(5, T).await.unwrap();
    let e = gw.remove_node(5, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    assert!(gw.pull_nodes(T).await.unwrap().is_empty());
    let e = executed(&alice, node_jid(&gw, 5), flash())
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));

    // No nodes for a thing that is no concentrator, nor for an account that is no thing.
    let (_light_id, light, _f) = things::light(&s, &alice, "0C0C0C0C", format).await;
    let e = light.pull_nodes(T).await.unwrap_err();
    assert_eq!(
        refused(&e),
        Some(DefinedCondition::ServiceUnavailable),
        "{e}"
    );
    let e = bob.pull_nodes(T).await.unwrap_err();
    assert_eq!(refused(&e), Some(DefinedCondition::ItemNotFound), "{e}");
}

lithos_testkit::in_both_formats!(nodes_behind_a_gateway);
