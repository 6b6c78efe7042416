//! An account's things against a real server: the owner lists its light with the model's
//! actions and its online state; an account it granted sees it as granted, a stranger sees
//! nothing; a watching session is told when the light goes offline and comes back, in XML
//! and in BXMPP.

use lithos_client::{Client, Event, Events};
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{Iq, IqPayload};
use lithos_core::{Element, Jid};
use lithos_testkit::things::{self, T};
use lithos_tuxp_directory::NS;
use lithos_tuxp_operator::OperatorExt;

/// The `<thing/>`s of `<things/>` (get) or `<watch/>` (set).
async fn things_of(c: &Client, watch: bool) -> Vec<Element> {
    let server = Jid::new(c.jid().domain()).unwrap();
    let iq = if watch {
        Iq::set("", Element::bare("watch", NS))
    } else {
        Iq::get("", Element::bare("things", NS))
    };
    let r = c.request(iq.with_to(server), T).await.unwrap();
    let IqPayload::Result(Some(list)) = r.payload else {
        panic!("no list: {r:?}");
    };
    assert!(list.is("things", NS), "{list:?}");
    list.children().cloned().collect()
}

/// The next `<thing-state/>` message: the thing's JID and whether it is online.
async fn next_state(events: &mut Events) -> (String, bool) {
    loop {
        let e = tokio::time::timeout(T, events.recv())
            .await
            .expect("a thing-state message")
            .expect("events");
        if let Event::Message(m) = e
            && let Some(s) = m.payloads.iter().find(|p| p.is("thing-state", NS))
        {
            return (
                m.from.unwrap().to_string(),
                s.attr("online") == Some("true"),
            );
        }
    }
}

async fn list_and_watch(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, mut bob_events) = s.user("bob", format).await;
    let id = "SL-01-0D0D0D01".to_string();
    alice.authorize_thing(&id, things::KEY, T).await.unwrap();
    // Its credentials kept, so that it comes back as itself.
    let creds = tempfile::tempdir().unwrap();
    let runtime =
        || things::runtime(&s, &id, format).credentials_file(creds.path().join("light.toml"));
    let (light, _le) = runtime().start().await.unwrap();
    let light_jid = light.jid().to_bare().to_string();

    let list = things_of(&alice, false).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let t = &list[0];
    assert_eq!(t.attr("id"), Some(id.as_str()));
    assert_eq!(t.attr("jid"), Some(light_jid.as_str()));
    assert_eq!(t.attr("model"), Some("SL-01"));
    assert_eq!(t.attr("online"), Some("true"));
    assert_eq!(t.attr("owned"), Some("true"));
    let actions: Vec<&str> = t
        .children()
        .filter(|c| c.is("action", NS))
        .filter_map(|c| c.attr("name"))
        .collect();
    assert!(
        actions.contains(&"flash") && actions.contains(&"turn-on"),
        "{actions:?}"
    );

    // A stranger commands nothing; once granted, bob sees the light as granted.
    assert!(things_of(&bob, true).await.is_empty());
    alice
        .set_grant(&id, Jid::new("bob@localhost").unwrap(), false, T)
        .await
        .unwrap();
    let list = things_of(&bob, true).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].attr("owned"), Some("false"));

    // bob watches (his <watch/> above): the light goes and comes back.
    light.close().await;
    assert_eq!(
        next_state(&mut bob_events).await,
        (light_jid.clone(), false)
    );
    let list = things_of(&alice, false).await;
    assert_eq!(list[0].attr("online"), Some("false"));
    let (light, _e) = runtime().start().await.unwrap();
    assert_eq!(next_state(&mut bob_events).await, (light_jid.clone(), true));

    // After <unwatch/>, nothing more.
    let server = Jid::new("localhost").unwrap();
    bob.request(Iq::set("", Element::bare("unwatch", NS)).with_to(server), T)
        .await
        .unwrap();
    light.close().await;
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        next_state(&mut bob_events).await
    })
    .await;
    assert!(quiet.is_err(), "a state after unwatch: {quiet:?}");
}

lithos_testkit::in_both_formats!(list_and_watch);
