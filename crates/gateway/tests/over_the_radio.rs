//! A controller commands a LoRa node through a real server, a gateway and the simulated
//! radio: the owner's `flash` reaches the node as a `lan-execution` frame and comes back
//! *executed*; a node error comes back as its stanza error; a stranger is refused by the
//! server before anything is sent; a silent node ends in a timeout within the controller's
//! deadline plus 100 ms, and its late answer changes nothing; a `lan-timeout` past a minute
//! gives the node a minute. A gateway that restarts learns
//! its nodes' addresses back from the server (`pull-nodes`) and commands them again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lithos_client::{Client, RequestError};
use lithos_core::binary::lan::TraceKind;
use lithos_core::codec::WireFormat;
use lithos_core::stanza::DefinedCondition;
use lithos_core::{Element, Jid, Payload};
use lithos_gateway::lan::{LanAnswer, LanExecution, from_frame, to_frame};
use lithos_gateway::router::LanRouter;
use lithos_lora_sim::{Address, Conditions, RadioNetwork};
use lithos_testkit::things::{self, T, condition};
use lithos_tuxp_execution::ControllerExt;

/// The gateway's uplink address, where nodes answer.
const UPLINK: Address = Address::new(0xEF, 0xEF, 0x17);
/// Node 5's allocated address (`00 <lan-id> 17`).
const NODE_5: Address = Address::new(0x00, 0x05, 0x17);

/// A mud-like light at `address`: runs `flash` and answers on the uplink, unless `silent`
/// (then it answers late, after `late`); `repeat="99"` fails with error 503. Returns the
/// time of day the last execution's trace id carried (its deadline).
fn light_node(
    net: &RadioNetwork,
    address: Address,
    flashes: Arc<AtomicUsize>,
    silent: Arc<AtomicBool>,
    late: Duration,
) -> Arc<AtomicU32> {
    let mut radio = net.radio(address);
    let deadline = Arc::new(AtomicU32::new(0));
    let last = deadline.clone();
    tokio::spawn(async move {
        while let Some(frame) = radio.recv().await {
            assert!(frame.len() <= lithos_lora_sim::MAX_FRAME);
            let Some(exec) = from_frame::<LanExecution>(&frame) else {
                continue;
            };
            last.store(exec.trace_id.time_of_day_ms(), Ordering::SeqCst);
            if silent.load(Ordering::SeqCst) {
                tokio::time::sleep(late).await;
            }
            let error_number = if exec.action.attr("repeat") == Some("99") {
                Some(503)
            } else {
                flashes.fetch_add(1, Ordering::SeqCst);
                None
            };
            let kind = match error_number {
                Some(_) => TraceKind::Error,
                None => TraceKind::Response,
            };
            let answer = LanAnswer {
                trace_id: exec.trace_id.answer(kind),
                error_number,
            };
            let f = to_frame(answer).unwrap();
            radio.send(UPLINK, f.as_bytes()).await.unwrap();
        }
    });
    deadline
}

fn flash(repeat: &str) -> Element {
    Element::builder("flash", lithos_things_demo::light::NS)
        .attr("repeat", repeat.to_string())
        .build()
}

async fn execute(
    c: &Client,
    to: &Jid,
    action: Element,
    deadline: Duration,
) -> Result<(), RequestError> {
    c.execute(to.clone(), action, deadline).await.map(|_| ())
}

async fn a_node_commanded_over_the_radio(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let net = RadioNetwork::new(
        16,
        Conditions::perfect().delayed(Duration::from_millis(5), Duration::from_millis(5)),
    );
    let flashes = Arc::new(AtomicUsize::new(0));
    let silent = Arc::new(AtomicBool::new(false));
    let last_deadline = light_node(
        &net,
        NODE_5,
        flashes.clone(),
        silent.clone(),
        Duration::from_millis(1500),
    );

    // The gateway: a router sending from its own radio; answers arrive on the uplink.
    let router = router_on(&net);
    router.set_node(5, NODE_5);
    let r = router.clone();
    let gateway = things::gateway_with_node_via(
        &s,
        &alice,
        &alice,
        ("0E0E0E01", "SL-01-0E0E0E05", 5),
        format,
        move |runtime| runtime.lan_nodes(r),
    )
    .await;
    let node = gateway.jid().to_bare().with_resource("5").unwrap();

    // The owner: executed, over the radio.
    execute(&alice, &node, flash("3"), T).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);
    // The node's error number, as its stanza error.
    let e = execute(&alice, &node, flash("99"), T).await.unwrap_err();
    assert_eq!(
        condition(&e),
        Some(DefinedCondition::ServiceUnavailable),
        "{e:?}"
    );
    // An action the radio cannot carry (an empty attribute value has no BXMPP form): refused
    // as not acceptable, and nothing is left waiting (a thousand of them once filled the
    // table and refused every command after).
    let empty = Element::builder("flash", lithos_things_demo::light::NS)
        .attr("repeat", "")
        .build();
    for _ in 0..3 {
        let e = execute(&alice, &node, empty.clone(), T).await.unwrap_err();
        assert_eq!(
            condition(&e),
            Some(DefinedCondition::NotAcceptable),
            "{e:?}"
        );
    }
    assert_eq!(router.in_flight(), 0);
    // A lan-timeout of two minutes: the node is given one (the cap), as its trace id says.
    let mut exec = lithos_tuxp_execution::Execution::new(flash("1"));
    exec.lan_timeout = Some(120_000);
    let sent_at = time_of_day_ms();
    alice
        .request(
            lithos_core::stanza::Iq::set("", exec.into_element()).with_to(node.clone()),
            T,
        )
        .await
        .unwrap();
    let given = (last_deadline.load(Ordering::SeqCst) + DAY_MS - sent_at) % DAY_MS;
    assert!(
        (59_000..=61_000).contains(&given),
        "the node was given {given} ms"
    );
    // A stranger: refused by the server; nothing is sent.
    let sent = net.stats().sent;
    let e = execute(&bob, &node, flash("1"), T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    assert_eq!(net.stats().sent, sent);

    // A silent node: a timeout within the deadline plus 100 ms, and its late answer (after
    // 1.5 s) finds nothing waiting.
    silent.store(true, Ordering::SeqCst);
    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let e = execute(&alice, &node, flash("1"), deadline)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, RequestError::Timeout)
            || condition(&e) == Some(DefinedCondition::RemoteServerTimeout),
        "{e:?}"
    );
    assert!(took < deadline + Duration::from_millis(100), "{took:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(router.in_flight(), 0, "the late answer found nothing");
    // It did run late on the node (the radio cannot stop that; mud has no clock): what the
    // controller was told stands, and the next command works again.
    silent.store(false, Ordering::SeqCst);
    execute(&alice, &node, flash("2"), T).await.unwrap();
}

const DAY_MS: u32 = 86_400_000;

fn time_of_day_ms() -> u32 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    (ms % u128::from(DAY_MS)) as u32
}

/// A gateway's router on `net`: frames out from its own radio, answers in on the uplink.
fn router_on(net: &RadioNetwork) -> Arc<LanRouter> {
    let router = LanRouter::new(Arc::new(net.radio(Address::new(0xEF, 0xEF, 0x16))));
    let mut uplink = net.radio(UPLINK);
    let r = router.clone();
    tokio::spawn(async move {
        while let Some(frame) = uplink.recv().await {
            r.received(&frame);
        }
    });
    router
}

async fn a_restarted_gateway_syncs_its_nodes(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let net = RadioNetwork::new(17, Conditions::perfect());
    let flashes = Arc::new(AtomicUsize::new(0));
    light_node(
        &net,
        NODE_5,
        flashes.clone(),
        Arc::new(AtomicBool::new(false)),
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("gateway.credentials");
    let first = router_on(&net);
    first.set_node(5, NODE_5);
    let (r, c) = (first.clone(), creds.clone());
    let gateway = things::gateway_with_node_via(
        &s,
        &alice,
        &alice,
        ("0E0E0E02", "SL-01-0E0E0E06", 5),
        format,
        move |runtime| runtime.credentials_file(c).lan_nodes(r),
    )
    .await;
    let node = gateway.jid().to_bare().with_resource("5").unwrap();
    execute(&alice, &node, flash("1"), T).await.unwrap();
    gateway.close().await;

    // Restarted, knowing nothing: the server's list of its nodes gives their addresses back.
    let second = router_on(&net);
    let (gateway, _ge) = things::runtime(&s, "LGW-01-0E0E0E02", format)
        .credentials_file(creds)
        .lan_nodes(second.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(second.sync_nodes(&gateway, T).await.unwrap(), 1);
    execute(&alice, &node, flash("2"), T).await.unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
}

lithos_testkit::in_both_formats!(
    a_node_commanded_over_the_radio,
    a_restarted_gateway_syncs_its_nodes
);
