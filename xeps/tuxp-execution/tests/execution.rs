//! Every way an execution ends, against lithosd, in XML and BXMPP.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lithos_blocking::BlockingExt;
use lithos_client::{RequestError, WireFormat};
use lithos_core::stanza::{DefinedCondition, Iq};
use lithos_core::{Element, Jid, Payload};
use lithos_testkit::things::{self, KEY, T, condition, refused};
use lithos_things_demo::camera::TakePhoto;
use lithos_things_demo::light::{Flash, TurnOn};
use lithos_tuxp_execution::thing::action_handler;
use lithos_tuxp_execution::{ControllerExt, Execution};
use lithos_tuxp_operator::OperatorExt;

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

async fn outcomes(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let (id, light, flashes) = things::light(&s, &alice, "0A1B2C3D", format).await;
    let addr = jid("sl-01-0a1b2c3d@localhost");

    // Executed.
    let r = alice
        .execute(addr.clone(), Flash { repeat: 3 }.into_element(), T)
        .await;
    assert_eq!(r, Ok(None));
    assert_eq!(flashes.load(Ordering::SeqCst), 1);
    // The thing's own error arrives as that error.
    assert_eq!(
        refused(alice.execute(addr.clone(), Flash { repeat: 99 }.into_element(), T)).await,
        Some(DefinedCondition::ResourceConstraint)
    );
    // The model does not declare the action.
    assert_eq!(
        refused(alice.execute(addr.clone(), TakePhoto::request(1).into_element(), T)).await,
        Some(DefinedCondition::ServiceUnavailable)
    );
    // Not a thing.
    assert_eq!(
        refused(alice.execute(
            jid("nothing@localhost"),
            Flash { repeat: 1 }.into_element(),
            T,
        ))
        .await,
        Some(DefinedCondition::ItemNotFound)
    );
    // Not the owner, then granted, then revoked.
    assert_eq!(
        refused(bob.execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)).await,
        Some(DefinedCondition::Forbidden)
    );
    // /metrics counts each command by outcome: two forwarded so far (the thing's own refusal
    // is the thing's), one forbidden, one item-not-found, one service-unavailable.
    let text = s.handle().metrics().encode(s.handle());
    for (outcome, n) in [
        ("forwarded", 2),
        ("forbidden", 1),
        ("item-not-found", 1),
        ("service-unavailable", 1),
    ] {
        let line = format!("lithos_commands_total{{outcome=\"{outcome}\"}} {n}");
        assert!(text.contains(&line), "{line} not in {text}");
    }
    let e = bob
        .set_grant(&id, jid("bob@localhost"), false, T)
        .await
        .unwrap_err();
    assert_eq!(
        condition(&e),
        Some(DefinedCondition::Forbidden),
        "only the owner grants"
    );
    alice
        .set_grant(&id, jid("bob@localhost"), false, T)
        .await
        .unwrap();
    bob.execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
    // Blocked by the owner: the grant no longer lets bob command her things.
    alice.block(vec![jid("bob@localhost")], T).await.unwrap();
    assert_eq!(
        refused(bob.execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)).await,
        Some(DefinedCondition::Forbidden)
    );
    alice.unblock(vec![], T).await.unwrap();
    alice
        .set_grant(&id, jid("bob@localhost"), true, T)
        .await
        .unwrap();
    assert_eq!(
        refused(bob.execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)).await,
        Some(DefinedCondition::Forbidden)
    );
    // Connected but not answering: the controller's deadline, not later.
    let start = Instant::now();
    let e = alice
        .execute(
            addr.clone(),
            TurnOn.into_element(),
            Duration::from_millis(400),
        )
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(e, RequestError::Timeout);
    assert!(took < Duration::from_millis(900), "{took:?}");
    // Already expired when it reaches the server.
    let mut late = Execution::new(Flash { repeat: 1 }.into_element());
    late.expires_ms = Some(lithos_tuxp_execution::now_ms() - 1);
    assert_eq!(
        refused(alice.request(Iq::set("", late.into_element()).with_to(addr.clone()), T)).await,
        Some(DefinedCondition::RemoteServerTimeout)
    );
    assert_eq!(flashes.load(Ordering::SeqCst), 2);
    // Offline: answered at once, never queued.
    light.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let e = alice
        .execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(condition(&e), Some(DefinedCondition::RecipientUnavailable));
    assert!(
        took < Duration::from_millis(100),
        "recipient-unavailable took {took:?}"
    );
}

#[tokio::test]
async fn a_result_payload_comes_back() {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    alice
        .authorize_thing("SC-01-CAFE0001", KEY, T)
        .await
        .unwrap();
    let (_camera, _ce) = things::runtime(&s, "SC-01-CAFE0001", WireFormat::Bxmpp)
        .on_action(
            lithos_things_demo::camera::NS,
            "take-photo",
            action_handler(|action: Element| async move {
                let mut p = TakePhoto::from_element(action).unwrap();
                p.photo_file_name = Some("p1.jpg".into());
                p.photo_url = Some("http://camera.local/p1.jpg".into());
                Ok(Some(p.into_element()))
            }),
        )
        .start()
        .await
        .unwrap();
    let r = alice
        .execute(
            jid("sc-01-cafe0001@localhost"),
            TakePhoto::request(2).into_element(),
            T,
        )
        .await
        .unwrap()
        .expect("a result payload");
    let photo = TakePhoto::from_element(r).unwrap();
    assert_eq!(photo.photo_file_name.as_deref(), Some("p1.jpg"));
    // The edge built-ins are actions of every demo model; this thing has no handler for
    // them, so it says so.
    assert_eq!(
        refused(alice.execute(
            jid("sc-01-cafe0001@localhost"),
            lithos_tuxp_edge::Stop.into_element(),
            T,
        ))
        .await,
        Some(DefinedCondition::ServiceUnavailable)
    );
}

lithos_testkit::in_both_formats!(outcomes);
