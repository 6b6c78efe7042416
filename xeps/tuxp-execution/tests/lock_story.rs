//! The seed's story: a lock whose link was down opened two minutes later when the link came
//! back. Here the thing's link stalls (a proxy stops passing what the server sends it), the
//! controller's command times out, the link resumes, and the stale command never runs. The
//! same when the link breaks and the thing resumes its session (XEP-0198) after the
//! command's deadline: the command waited in the held session, and is refused on arrival.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lithos_client::{Event, Reconnect, RequestError, WireFormat};
use lithos_core::{Jid, Payload};
use lithos_testkit::things::{self, KEY, T};
use lithos_testkit::{Proxy, next_event};
use lithos_things_demo::light::Flash;
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;

/// A lock (the demo light, counting its flashes) behind a proxy, with `alice` its owner;
/// reconnecting with `reconnect`. Returns what the stories use.
struct Lock {
    _server: lithos_testkit::TestServer,
    alice: lithos_client::Client,
    proxy: Proxy,
    flashes: Arc<std::sync::atomic::AtomicUsize>,
    events: lithos_client::Events,
    thing: Jid,
    _client: lithos_client::Client,
    _alice_events: lithos_client::Events,
}

async fn lock(id: &str, format: WireFormat, reconnect: Option<Reconnect>) -> Lock {
    let s = things::start("").await;
    let (alice, alice_events) = s.user("alice", format).await;
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let proxy = Proxy::start(s.things_addr()).await;
    let flashes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flashes.clone();
    let (client, events) = things::runtime(&s, id, format)
        .address(proxy.addr().to_string())
        .reconnect(reconnect)
        .on_action(
            lithos_things_demo::light::NS,
            "flash",
            lithos_tuxp_execution::thing::action_handler(move |_| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                }
            }),
        )
        .start()
        .await
        .unwrap();
    Lock {
        _server: s,
        alice,
        proxy,
        flashes,
        events,
        thing: Jid::new(&format!("{}@localhost", id.to_lowercase())).unwrap(),
        _client: client,
        _alice_events: alice_events,
    }
}

/// A command with a good link runs: the thing has flashed `n` times in all.
async fn flash_runs(
    alice: &lithos_client::Client,
    thing: &Jid,
    flashes: &std::sync::atomic::AtomicUsize,
    n: usize,
) {
    alice
        .execute(thing.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), n);
}

async fn story(format: WireFormat) {
    // Every part is bound (an unbound one would be dropped here: the server with it).
    let Lock {
        alice,
        proxy,
        flashes,
        thing,
        events: _events,
        _server,
        _client,
        _alice_events,
    } = lock("SL-01-0C0FFEE0", format, None).await;

    // The link works.
    flash_runs(&alice, &thing, &flashes, 1).await;

    // The link stalls: the command ends in Timeout at its deadline.
    proxy.stall(true);
    let start = Instant::now();
    let r = alice
        .execute(
            thing.clone(),
            Flash { repeat: 1 }.into_element(),
            Duration::from_millis(500),
        )
        .await;
    assert_eq!(r, Err(RequestError::Timeout));
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );

    // The link comes back two seconds later: the stale command reaches the thing, which
    // refuses it. It never runs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.stall(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(flashes.load(Ordering::SeqCst), 1, "the stale command ran");

    // The link is good again, and a fresh command runs once.
    flash_runs(&alice, &thing, &flashes, 2).await;
}

#[tokio::test]
async fn a_stale_command_never_runs_xml() {
    story(WireFormat::Xml).await;
}

#[tokio::test]
async fn a_stale_command_never_runs_bxmpp() {
    story(WireFormat::Bxmpp).await;
}

async fn resumed_story(format: WireFormat) {
    let fast = Reconnect {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(300),
    };
    let Lock {
        alice,
        proxy,
        flashes,
        mut events,
        thing,
        _server,
        _client,
        _alice_events,
    } = lock("SL-01-0C0FFEE1", format, Some(fast)).await;
    flash_runs(&alice, &thing, &flashes, 1).await;

    // The link breaks and stays down: the server holds the thing's session, so the command
    // is queued for it, and ends in Timeout at its deadline.
    proxy.down();
    let r = alice
        .execute(
            thing.clone(),
            Flash { repeat: 1 }.into_element(),
            Duration::from_millis(500),
        )
        .await;
    assert_eq!(r, Err(RequestError::Timeout));

    // The link comes back; the thing resumes its session and gets the stale command, which
    // it refuses: it never runs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.up();
    // The thing resumed its session (no new session: that would be Reconnected).
    let e = next_event(&mut events, |e| {
        matches!(e, Event::Resumed { .. } | Event::Reconnected { .. })
    })
    .await;
    assert!(matches!(e, Event::Resumed { .. }), "{e:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(flashes.load(Ordering::SeqCst), 1, "the stale command ran");
    flash_runs(&alice, &thing, &flashes, 2).await;
}

#[tokio::test]
async fn a_stale_command_never_runs_after_resumption_xml() {
    resumed_story(WireFormat::Xml).await;
}

#[tokio::test]
async fn a_stale_command_never_runs_after_resumption_bxmpp() {
    resumed_story(WireFormat::Bxmpp).await;
}
