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
use lithos_testkit::Proxy;
use lithos_testkit::things::{self, KEY, T};
use lithos_things_demo::light::Flash;
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;

async fn story(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let id = "SL-01-0C0FFEE0";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let proxy = Proxy::start(s.things_addr()).await;
    let flashes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flashes.clone();
    let (_lock, _events) = things::runtime(&s, id, format)
        .address(proxy.addr().to_string())
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
    let thing = Jid::new("sl-01-0c0ffee0@localhost").unwrap();

    // The link works.
    alice
        .execute(thing.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);

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
    alice
        .execute(thing.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
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
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let id = "SL-01-0C0FFEE1";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let proxy = Proxy::start(s.things_addr()).await;
    let flashes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flashes.clone();
    let (_lock, mut events) = things::runtime(&s, id, format)
        .address(proxy.addr().to_string())
        .reconnect(Some(Reconnect {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
        }))
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
    let thing = Jid::new("sl-01-0c0ffee1@localhost").unwrap();
    alice
        .execute(thing.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 1);

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
    let resumed = tokio::time::timeout(T, async {
        while let Some(ev) = events.recv().await {
            if let Event::Resumed { .. } = ev {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(resumed, Ok(true), "the thing resumed its session");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(flashes.load(Ordering::SeqCst), 1, "the stale command ran");
    alice
        .execute(thing.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stale_command_never_runs_after_resumption_xml() {
    resumed_story(WireFormat::Xml).await;
}

#[tokio::test]
async fn a_stale_command_never_runs_after_resumption_bxmpp() {
    resumed_story(WireFormat::Bxmpp).await;
}
