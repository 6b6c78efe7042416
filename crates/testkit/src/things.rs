//! Thing tests: an operator, a thing runtime pointed at the server, the demo light. Linking
//! this module links the server side of thing registration (IBTR), operators, execution and
//! the demo models.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lithos_client::Client;
use lithos_core::Element;
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_operator::OperatorExt;

use crate::TestServer;

// Registration (IBTR), operators, execution and the demo models: the server side every thing
// test needs, linked here (the test names the rest it wants).
use lithos_things_demo as _;
use lithos_tuxp_ibtr as _;
// Concentrators: gateways with LAN nodes.
use lithos_tuxp_concentrator as _;

/// The registration key every test thing has (operators authorize it with this key).
pub const KEY: &str = "REGISTRATION-KEY";

/// How long thing tests wait for an answer.
pub const T: Duration = Duration::from_secs(5);

/// A server whose operator is `alice`, with accounts `alice` and `bob` (passwords
/// `<name>-password`); `operator_extra` goes into `[modules.operator]`, and may open more
/// sections after it.
pub async fn start(operator_extra: &str) -> TestServer {
    let s = TestServer::start(&format!(
        "[modules.operator]\noperators = ['alice']\n{operator_extra}\n"
    ))
    .await;
    s.add_users(&["alice", "bob"]).await;
    s
}

/// A thing runtime for `id` (its key [`KEY`]), pointed at the server's things port.
pub fn runtime(server: &TestServer, id: &str, format: WireFormat) -> ThingRuntime {
    ThingRuntime::new(id, KEY, "localhost")
        .address(server.things_addr().to_string())
        .trust(server.trust())
        .format(format)
}

/// `SL-01-<serial>` authorized by `operator`, registered and online, counting its flashes;
/// its `flash` with `repeat="99"` fails with `resource-constraint`, and `turn-on` never
/// answers.
pub async fn light(
    server: &TestServer,
    operator: &Client,
    serial: &str,
    format: WireFormat,
) -> (String, Client, Arc<AtomicUsize>) {
    let id = format!("SL-01-{serial}");
    operator.authorize_thing(&id, KEY, T).await.unwrap();
    let flashes = Arc::new(AtomicUsize::new(0));
    let counter = flashes.clone();
    let (thing, _events) = runtime(server, &id, format)
        .on_action(
            lithos_things_demo::light::NS,
            "flash",
            action_handler(move |action: Element| {
                let counter = counter.clone();
                async move {
                    if action.attr("repeat") == Some("99") {
                        return Err(StanzaError::new(DefinedCondition::ResourceConstraint)
                            .with_text("the bulb would burn out"));
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                }
            }),
        )
        .on_action(
            lithos_things_demo::light::NS,
            "turn-on",
            action_handler(|_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(None)
            }),
        )
        .start()
        .await
        .unwrap();
    (id, thing, flashes)
}

/// A LoRa gateway `LGW-01-<serial>` authorized by `operator`, registered and online, with
/// the thing `node_id` (authorized by `node_operator`, its owner, with the code `NODE-KEY`)
/// added behind it as LAN node `lan_id`. The gateway's client; the node is
/// `<gateway>@localhost/<lan_id>`.
pub async fn gateway_with_node(
    server: &TestServer,
    operator: &Client,
    node_operator: &Client,
    serial: &str,
    node_id: &str,
    lan_id: u8,
    format: WireFormat,
) -> Client {
    gateway_with_node_via(
        server,
        operator,
        node_operator,
        (serial, node_id, lan_id),
        format,
        |r| r,
    )
    .await
}

/// [`gateway_with_node`] with the gateway's runtime set up by `setup` first (a LAN router,
/// say); `node` is the gateway's serial, the node's thing id and its LAN id.
pub async fn gateway_with_node_via(
    server: &TestServer,
    operator: &Client,
    node_operator: &Client,
    node: (&str, &str, u8),
    format: WireFormat,
    setup: impl FnOnce(ThingRuntime) -> ThingRuntime,
) -> Client {
    use lithos_tuxp_concentrator::{AddNode, CommunicationNet, ConcentratorExt};
    let (serial, node_id, lan_id) = node;
    let id = format!("LGW-01-{serial}");
    operator.authorize_thing(&id, KEY, T).await.unwrap();
    let (gateway, _events) = setup(runtime(server, &id, format)).start().await.unwrap();
    node_operator
        .authorize_thing(node_id, "NODE-KEY", T)
        .await
        .unwrap();
    gateway
        .add_node(
            AddNode {
                thing_id: node_id.to_string(),
                registration_code: "NODE-KEY".into(),
                lan_id,
                communication_net: CommunicationNet::Lora,
                address: format!("la$0,{lan_id}:23"),
            },
            T,
        )
        .await
        .unwrap();
    gateway
}

/// The condition of the stanza error `request` ends in; `None` when it succeeds or fails
/// otherwise (a timeout, a disconnection).
pub async fn refused<T>(
    request: impl std::future::Future<Output = Result<T, lithos_client::RequestError>>,
) -> Option<DefinedCondition> {
    request.await.err().as_ref().and_then(condition)
}

/// The stanza error's condition, if the request failed with one.
pub fn condition(e: &lithos_client::RequestError) -> Option<DefinedCondition> {
    match e {
        lithos_client::RequestError::Stanza(s) => Some(s.condition),
        _ => None,
    }
}
