//! `<pending/>` against a real server: an operator sees the authorizations still waiting for
//! their thing (not the cancelled one, not the one its thing used), in XML and in BXMPP; a
//! non-operator is refused.

use lithos_client::Client;
use lithos_core::codec::WireFormat;
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload};
use lithos_core::{Element, Jid};
use lithos_testkit::things::{self, KEY, T, condition};
use lithos_tuxp_operator::{NS_PENDING, OperatorExt};

async fn pending(c: &Client) -> Result<Vec<(String, bool)>, lithos_client::RequestError> {
    let iq =
        Iq::get("", Element::bare("pending", NS_PENDING)).with_to(Jid::new("localhost").unwrap());
    let r = c.request(iq, T).await?;
    let IqPayload::Result(Some(list)) = r.payload else {
        panic!("no list: {r:?}");
    };
    Ok(list
        .children()
        .map(|a| {
            assert!(a.attr("expires").is_some() && a.attr("authorizer") == Some("alice"));
            (
                a.attr("thing-id").unwrap().to_string(),
                a.attr("key") == Some("true"),
            )
        })
        .collect())
}

async fn operators_see_what_waits(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    alice
        .authorize_thing("SL-01-0E0E0E01", KEY, T)
        .await
        .unwrap();
    alice
        .authorize_thing("SL-01-0E0E0E02", KEY, T)
        .await
        .unwrap();
    alice
        .authorize_thing("SL-01-0E0E0E03", KEY, T)
        .await
        .unwrap();
    alice
        .cancel_authorization("SL-01-0E0E0E02", T)
        .await
        .unwrap();
    // 03 registers: its authorization is used.
    let (_light, _le) = things::runtime(&s, "SL-01-0E0E0E03", format)
        .start()
        .await
        .unwrap();
    assert_eq!(
        pending(&alice).await.unwrap(),
        [("SL-01-0E0E0E01".to_string(), true)]
    );
    let e = pending(&bob).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
}

lithos_testkit::in_both_formats!(operators_see_what_waits);
