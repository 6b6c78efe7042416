//! The relay rules through a real server: an account and the thing it owns exchange open,
//! offer, answer and candidates both ways (the offer's SDP gaining its final newline); a
//! stranger is refused, and so are gets, unknown things, account to account, a thing to an
//! account that is not its owner's, and an offline peer.

use std::time::Duration;

use lithos_blocking::BlockingExt;
use lithos_client::{Client, RequestError};
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{DefinedCondition, Iq};
use lithos_core::{Jid, Payload};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_operator::OperatorExt;
use lithos_webrtc_signaling::{Incoming, Signal, SignalKind, SignalingExt, incoming};
use tokio::sync::mpsc;

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap()
}

fn refused(r: Result<(), RequestError>) -> Option<DefinedCondition> {
    r.err().as_ref().and_then(condition)
}

/// A camera thing `SC-01-<serial>` owned by `owner`, online, with its signals on a channel.
async fn camera(
    s: &lithos_testkit::TestServer,
    owner: &Client,
    serial: &str,
    format: WireFormat,
) -> (Client, mpsc::Receiver<Incoming>) {
    let id = format!("SC-01-{serial}");
    owner.authorize_thing(&id, KEY, T).await.unwrap();
    let (handler, rx) = incoming();
    let (c, events) = things::runtime(s, &id, format)
        .handle_iq(lithos_webrtc_signaling::NS, handler)
        .start()
        .await
        .unwrap();
    std::mem::forget(events);
    (c, rx)
}

async fn relay_rules(format: WireFormat) {
    let s = things::start("").await;
    let (handler, mut alice_rx) = incoming();
    let (alice, _ae) = s
        .client("alice@localhost/watcher", "alice-password")
        .format(format)
        .handle_iq(lithos_webrtc_signaling::NS, handler)
        .connect()
        .await
        .unwrap();
    let (bob, _be) = s.user("bob", format).await;
    let (cam, mut cam_rx) = camera(&s, &alice, "0D0D0D01", format).await;
    let cam_bare = jid("sc-01-0d0d0d01@localhost");

    // Alice opens, offers; the camera answers and both trade a candidate.
    alice
        .signal(cam_bare.clone(), Signal::new(SignalKind::Open, ""), T)
        .await
        .unwrap();
    let got = next(&mut cam_rx).await;
    assert_eq!(got.from, jid("alice@localhost/watcher"));
    assert_eq!(got.signal.kind, SignalKind::Open);
    // Without the newline: the server adds it.
    let offer = Signal {
        kind: SignalKind::Offer,
        data: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-".into(),
    };
    let mut iq = Iq::set("", offer.into_element()).with_to(cam_bare.clone());
    iq.id = "offer-1".into();
    alice.request(iq, T).await.unwrap();
    let got = next(&mut cam_rx).await;
    assert_eq!(got.signal.kind, SignalKind::Offer);
    assert_eq!(got.signal.data, "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\n");
    cam.signal(
        got.from.clone(),
        Signal::new(SignalKind::Answer, "v=0\r\ns=answer"),
        T,
    )
    .await
    .unwrap();
    let got = next(&mut alice_rx).await;
    assert_eq!(got.from, jid("sc-01-0d0d0d01@localhost/0"));
    assert_eq!(got.signal.kind, SignalKind::Answer);
    assert!(got.signal.data.ends_with('\n'));
    for (from, to, rx) in [
        (&alice, cam_bare.clone(), &mut cam_rx),
        (&cam, jid("alice@localhost/watcher"), &mut alice_rx),
    ] {
        let c = Signal::new(
            SignalKind::IceCandidateFound,
            "candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host",
        );
        from.signal(to, c.clone(), T).await.unwrap();
        assert_eq!(next(rx).await.signal, c);
    }

    // A stranger, and the camera toward him.
    let e = bob
        .signal(cam_bare.clone(), Signal::new(SignalKind::Open, ""), T)
        .await;
    assert_eq!(refused(e), Some(DefinedCondition::Forbidden));
    let e = cam
        .signal(bob.jid(), Signal::new(SignalKind::Opened, ""), T)
        .await;
    assert_eq!(refused(e), Some(DefinedCondition::Forbidden));
    // Granted, bob may signal; blocked by alice, granted or not, he may not.
    alice
        .set_grant("SC-01-0D0D0D01", jid("bob@localhost"), false, T)
        .await
        .unwrap();
    bob.signal(cam_bare.clone(), Signal::new(SignalKind::Open, ""), T)
        .await
        .unwrap();
    assert_eq!(next(&mut cam_rx).await.from, bob.jid());
    alice.block(vec![jid("bob@localhost")], T).await.unwrap();
    let e = bob
        .signal(cam_bare.clone(), Signal::new(SignalKind::Open, ""), T)
        .await;
    assert_eq!(refused(e), Some(DefinedCondition::Forbidden));
    // A get; no such thing; account to account; a thing to a bare JID.
    let get =
        Iq::get("", Signal::new(SignalKind::Open, "").into_element()).with_to(cam_bare.clone());
    let e = alice.request(get, T).await.map(drop);
    assert_eq!(refused(e), Some(DefinedCondition::BadRequest));
    for to in ["sc-01-0d0d0d99@localhost", "carol@localhost/x"] {
        let e = alice
            .signal(jid(to), Signal::new(SignalKind::Open, ""), T)
            .await;
        assert_eq!(refused(e), Some(DefinedCondition::ItemNotFound), "{to}");
    }
    let e = cam
        .signal(
            jid("alice@localhost"),
            Signal::new(SignalKind::Opened, ""),
            T,
        )
        .await;
    assert_eq!(refused(e), Some(DefinedCondition::BadRequest));
    // Nothing of that reached the camera or alice.
    assert!(cam_rx.try_recv().is_err() && alice_rx.try_recv().is_err());

    // The camera goes offline: recipient-unavailable at once.
    cam.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let e = alice
        .signal(cam_bare, Signal::new(SignalKind::Close, ""), T)
        .await;
    assert_eq!(refused(e), Some(DefinedCondition::RecipientUnavailable));
    assert!(started.elapsed() < Duration::from_millis(500));
}

lithos_testkit::in_both_formats!(relay_rules);
