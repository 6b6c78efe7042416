//! Notifications against lithosd, in XML and BXMPP: acknowledged, retransmitted and
//! delivered once, stored for an offline owner, refused when they should be.

use std::time::Duration;

// Notifications for an owner who is offline wait in the offline store; followers come
// through the friends module, and a gateway's nodes report too.
use lithos_client::{Event, Events, WireFormat};
use lithos_core::stanza::{DefinedCondition, Iq, Presence};
use lithos_core::{Element, Jid, Payload};
use lithos_offline as _;
use lithos_testkit::things::{self, T, condition, refused};
use lithos_tuxp_friends as _;
use lithos_tuxp_notification::{Notification, NotifierExt, NotifyError, Rex, notification_of};
use lithos_tuxp_report as _;

fn switched(previous: u8, current: u8) -> Element {
    Element::builder("switch-state-changed", lithos_things_demo::light::NS)
        .attr("previous", previous.to_string())
        .attr("current", current.to_string())
        .build()
}

/// The next notification among `events`, or `None` within `wait`.
async fn next_notification(events: &mut Events, wait: Duration) -> Option<(Jid, Element)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Message(m))) => {
                if let Some(n) = notification_of(&m) {
                    return Some(n);
                }
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

async fn flow(format: WireFormat) {
    let s = things::start("").await;
    let (alice, mut alice_events) = s.user("alice", format).await;
    alice.send_presence(Presence::available()).await.unwrap();
    let (_id, light, _flashes) = things::light(&s, &alice, "0A0B0C0D", format).await;
    let light_jid = Jid::new("sl-01-0a0b0c0d@localhost/0").unwrap();

    // Acknowledged, delivered to the online owner.
    light.notify(switched(0, 2), true).await.unwrap();
    let (from, event) = next_notification(&mut alice_events, T)
        .await
        .expect("delivered");
    assert_eq!(from, light_jid);
    assert_eq!(event, switched(0, 2));
    // Without acknowledgement: delivered too.
    light.notify(switched(2, 0), false).await.unwrap();
    let (_, event) = next_notification(&mut alice_events, T)
        .await
        .expect("delivered");
    assert_eq!(event, switched(2, 0));

    // A retransmission (same iq, same id) is acknowledged again and delivered once.
    let iq = Iq::set(
        "n-repeated",
        Notification {
            ack_required: true,
            event: switched(0, 1),
        }
        .into_element(),
    );
    light.request(iq.clone(), T).await.unwrap();
    light.request(iq, T).await.unwrap();
    assert_eq!(
        next_notification(&mut alice_events, T).await.map(|n| n.1),
        Some(switched(0, 1))
    );
    assert_eq!(
        next_notification(&mut alice_events, Duration::from_millis(300)).await,
        None,
        "the retransmission was delivered twice"
    );

    // Refused: an event the model does not declare; a person notifying; bad retransmission
    // settings.
    let photo = Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
        .attr("value", "1")
        .build();
    match light.notify(photo, true).await {
        Err(NotifyError::Refused(e)) => assert_eq!(e.condition, DefinedCondition::NotAcceptable),
        other => panic!("{other:?}"),
    }
    match alice.notify(switched(0, 2), true).await {
        Err(NotifyError::Refused(e)) => assert_eq!(e.condition, DefinedCondition::NotAllowed),
        other => panic!("{other:?}"),
    }
    let eager = Rex {
        initial: Duration::from_millis(50),
        give_up: Duration::from_secs(2),
    };
    assert!(matches!(
        light.notify_with(switched(0, 2), true, eager).await,
        Err(NotifyError::BadRex(_))
    ));
    // For another account: refused.
    let forged = Iq::set(
        "",
        Notification {
            ack_required: true,
            event: switched(0, 2),
        }
        .into_element(),
    )
    .with_to(Jid::new("bob@localhost").unwrap());
    let e = light.request(forged, T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));

    // The owner offline: acknowledged once stored, delivered at the next login.
    alice.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    light.notify(switched(1, 2), true).await.unwrap();
    let (alice, mut alice_events) = s.user("alice", format).await;
    alice.send_presence(Presence::available()).await.unwrap();
    let (from, event) = next_notification(&mut alice_events, T)
        .await
        .expect("delivered at login");
    assert_eq!(from, light_jid);
    assert_eq!(event, switched(1, 2));
}

#[tokio::test]
async fn no_ack_when_the_server_is_gone() {
    let mut s = things::start("").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let (_id, light, _flashes) = things::light(&s, &alice, "0A0B0C0E", WireFormat::Xml).await;
    s.server
        .take()
        .unwrap()
        .shutdown(Duration::from_millis(100))
        .await;
    let start = std::time::Instant::now();
    let r = light
        .notify_with(
            switched(0, 2),
            true,
            Rex {
                initial: Duration::from_millis(200),
                give_up: Duration::from_millis(1500),
            },
        )
        .await;
    assert!(matches!(r, Err(NotifyError::NoAck(_))), "{r:?}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "gave up after {took:?}"
    );
}

async fn followers(format: WireFormat) {
    use lithos_tuxp_friends::FriendsExt;
    use lithos_tuxp_operator::{ApproveFollow, OperatorExt};
    use lithos_tuxp_report::ReportsExt;

    let s = things::start("").await;
    s.add_user("carol", "carol-password").await;
    let (alice, mut alice_events) = s.user("alice", format).await;
    alice.send_presence(Presence::available()).await.unwrap();
    let (bob, mut bob_events) = s.user("bob", format).await;
    bob.send_presence(Presence::available()).await.unwrap();
    let (carol, _ce) = s.user("carol", format).await;
    let (_id, light, _flashes) = things::light(&s, &alice, "0F0F0F0F", format).await;
    let friend = Jid::new("sl-01-0f0f0f0f@localhost").unwrap();
    let event = "{urn:leps:things:simple-light}switch-state-changed";
    let quiet = Duration::from_millis(300);

    // Asked, not approved: bob gets nothing, alice (the owner) gets it.
    assert!(!bob.follow(friend.clone(), event, false, T).await.unwrap());
    light.notify(switched(0, 2), true).await.unwrap();
    assert!(next_notification(&mut alice_events, T).await.is_some());
    assert_eq!(next_notification(&mut bob_events, quiet).await, None);
    // An event the model does not have; an approval nobody asked for; a non-operator.
    assert_eq!(
        refused(bob.follow(
            friend.clone(),
            "{urn:leps:things:simple-light}melted",
            false,
            T,
        ))
        .await,
        Some(DefinedCondition::ItemNotFound)
    );
    let approval = |follower: &str| ApproveFollow {
        friend: friend.clone(),
        event: event.to_string(),
        follower: Jid::new(follower).unwrap(),
        canceled: false,
    };
    assert_eq!(
        refused(alice.approve_follow(approval("carol@localhost"), T)).await,
        Some(DefinedCondition::ItemNotFound)
    );
    assert_eq!(
        refused(bob.approve_follow(approval("bob@localhost"), T)).await,
        Some(DefinedCondition::Forbidden)
    );
    // Live reports: not for a follow that is not approved.
    assert_eq!(
        refused(bob.follow_reports(friend.clone(), true, T)).await,
        Some(DefinedCondition::Forbidden)
    );

    alice
        .approve_follow(approval("bob@localhost"), T)
        .await
        .unwrap();
    assert!(bob.follow(friend.clone(), event, false, T).await.unwrap());
    // Following an event brings its notifications, not the thing's reports (issue 14:
    // a follower approved for one event received every report).
    assert_eq!(
        refused(bob.follow_reports(friend.clone(), true, T)).await,
        Some(DefinedCondition::Forbidden)
    );
    assert_eq!(
        refused(carol.follow_reports(friend.clone(), true, T)).await,
        Some(DefinedCondition::Forbidden)
    );

    // Retransmitted: once to each.
    let iq = Iq::set(
        "n-followed",
        Notification {
            ack_required: true,
            event: switched(2, 1),
        }
        .into_element(),
    );
    light.request(iq.clone(), T).await.unwrap();
    light.request(iq, T).await.unwrap();
    for events in [&mut alice_events, &mut bob_events] {
        assert_eq!(
            next_notification(events, T).await.map(|n| n.1),
            Some(switched(2, 1))
        );
        assert_eq!(next_notification(events, quiet).await, None);
    }

    // Bob offline when it is acknowledged: delivered at his next login.
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    light.notify(switched(1, 0), true).await.unwrap();
    let (bob, mut bob_events) = s.user("bob", format).await;
    bob.send_presence(Presence::available()).await.unwrap();
    assert_eq!(
        next_notification(&mut bob_events, T).await.map(|n| n.1),
        Some(switched(1, 0))
    );

    // Unfollowed: nothing more.
    bob.follow(friend.clone(), event, true, T).await.unwrap();
    light.notify(switched(0, 2), true).await.unwrap();
    assert_eq!(next_notification(&mut bob_events, quiet).await, None);
}

#[tokio::test]
async fn for_lan_nodes() {
    let s = lithos_testkit::TestServer::start("[modules.operator]\noperators = ['alice', 'bob']\n")
        .await;
    s.add_users(&["alice", "bob"]).await;
    let (alice, mut alice_events) = s.user("alice", WireFormat::Bxmpp).await;
    let (bob, mut bob_events) = s.user("bob", WireFormat::Bxmpp).await;
    alice.send_presence(Presence::available()).await.unwrap();
    bob.send_presence(Presence::available()).await.unwrap();
    // Bob's gateway, with alice's light behind it as node 7: the node's owner gets what it
    // tells, not the gateway's.
    let gateway = things::gateway_with_node(
        &s,
        &bob,
        &alice,
        "0A0B0C0F",
        "SL-01-0A0B0C10",
        7,
        WireFormat::Bxmpp,
    )
    .await;
    let gw = gateway.jid().local().unwrap().to_string();
    let node = |n: &str| Jid::new(&format!("{gw}@localhost/{n}")).unwrap();
    let notify_from = |n: &str, event: Element| {
        let mut iq = Iq::set(
            "",
            Notification {
                ack_required: true,
                event,
            }
            .into_element(),
        );
        iq.from = Some(node(n));
        iq
    };
    gateway
        .request(notify_from("7", switched(0, 1)), T)
        .await
        .unwrap();
    let (from, event) = next_notification(&mut alice_events, T)
        .await
        .expect("delivered to the node's owner");
    assert_eq!(from, node("7"));
    assert_eq!(event, switched(0, 1));
    assert_eq!(
        next_notification(&mut bob_events, Duration::from_millis(300)).await,
        None,
        "the gateway's owner is not the node's"
    );
    // A node the gateway did not add; an event the node's model does not declare.
    let e = gateway
        .request(notify_from("8", switched(0, 1)), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    let storm = Element::bare("storm", "urn:example:weather");
    let e = gateway
        .request(notify_from("7", storm), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::NotAcceptable));
    // Node 0 is the gateway itself, which speaks as itself.
    let e = gateway
        .request(notify_from("00", switched(0, 1)), T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::BadRequest));
    drop(bob);
}

lithos_testkit::in_both_formats!(flow, followers);

/// With the message archive on, a thing's notifications are in its owner's archive: the
/// owner pages them `with` the thing (issue 17: an owner pages a thing's history).
#[tokio::test]
async fn the_owner_pages_a_things_notifications_in_the_archive() {
    use lithos_mam as _;
    let s = things::start("[modules.mam]\nenabled = true").await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    let (_id, light, _flashes) = things::light(&s, &alice, "0A0B0C0E", WireFormat::Xml).await;
    for (p, c) in [(0, 1), (1, 2), (2, 0)] {
        light.notify(switched(p, c), true).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut raw = s.login_as("alice", "history").await;
    let q = Element::parse(
        "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
         <field var='with'><value>sl-01-0a0b0c0e@localhost</value></field></x>\
         <set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set></query>",
    )
    .unwrap();
    let r = raw.iq("set", None, q).await;
    assert_eq!(r.attr("type"), Some("result"), "{r}");
    let fin = r.get_child("fin", "urn:xmpp:mam:2").unwrap();
    assert_eq!(fin.attr("complete"), None, "two of three: more to page");
    let events: Vec<Element> = raw
        .pending
        .iter()
        .filter_map(|m| m.get_child("result", "urn:xmpp:mam:2"))
        .map(|r| {
            let message = r
                .get_child("forwarded", "urn:xmpp:forward:0")
                .and_then(|f| f.get_child("message", "jabber:client"))
                .expect("a forwarded message");
            let n = message
                .get_child("notification", "urn:leps:tuxp:thing")
                .expect("a notification");
            n.children().next().expect("its event").clone()
        })
        .collect();
    assert_eq!(events, [switched(0, 1), switched(1, 2)]);
}
