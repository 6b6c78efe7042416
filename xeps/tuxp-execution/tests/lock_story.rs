//! The seed's story: a lock whose link was down opened two minutes later when the link came
//! back. Here the thing's link stalls (a proxy stops passing what the server sends it), the
//! controller's command times out, the link resumes, and the stale command never runs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lithos_client::{RequestError, WireFormat};
use lithos_core::{Jid, Payload};
use lithos_testkit::things::{self, KEY, T};
use lithos_things_demo::light::Flash;
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy in front of `target` whose server-to-client direction can be stalled.
async fn stallable_proxy(target: String) -> (String, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stall, stalled) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&target).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let mut stalled = stalled.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // While stalled, hold what the server sent: it waits here, as it would
                    // in the buffers of a link that stopped moving.
                    while *stalled.borrow() {
                        if stalled.changed().await.is_err() {
                            return;
                        }
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, stall)
}

async fn story(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let id = "SL-01-0C0FFEE0";
    alice.authorize_thing(id, KEY, T).await.unwrap();
    let (proxy, stall) = stallable_proxy(s.things_addr().to_string()).await;
    let flashes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flashes.clone();
    let (_lock, _events) = things::runtime(&s, id, format)
        .address(proxy)
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
    stall.send(true).unwrap();
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
    stall.send(false).unwrap();
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
