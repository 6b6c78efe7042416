//! IBTR and operator authorizations against lithosd, in XML and BXMPP.

mod common;

use std::time::Duration;

use common::{T, TestServer, condition};
use lithos_client::{ClientBuilder, WireFormat};
use lithos_core::stanza::DefinedCondition;
use lithos_tuxp_ibtr::{RegisterError, register_thing};
use lithos_tuxp_operator::OperatorExt;

fn refused(r: Result<lithos_tuxp_ibtr::Registered, RegisterError>) -> DefinedCondition {
    match r {
        Err(RegisterError::Refused(e)) => condition(&e).unwrap_or_else(|| panic!("{e}")),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn registration_cases(format: WireFormat) {
    let s = TestServer::start("authorization_validity_secs = 1").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let things = ClientBuilder::new("registration@localhost", "")
        .unwrap()
        .address(s.things_addr())
        .trust(s.trust())
        .format(format);
    let register = |id: &'static str| {
        let things = things.clone();
        async move { register_thing(&things, id, "KEY-1234", T).await }
    };

    // Nobody authorized it.
    assert_eq!(
        refused(register("SL-01-0A1B2C3D").await),
        DefinedCondition::NotAuthorized
    );
    // Only configured operators authorize; ids must be well formed.
    let e = bob.authorize_thing("SL-01-0A1B2C3D", T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
    let e = alice.authorize_thing("XX-0A1B2C3D", T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::BadRequest));
    // An unknown model is not acceptable at registration.
    assert_eq!(
        refused(register("XX-0A1B2C3D").await),
        DefinedCondition::NotAcceptable
    );

    // Cancelled, then nothing left to cancel.
    alice.authorize_thing("SL-01-0A1B2C3D", T).await.unwrap();
    alice
        .cancel_authorization("SL-01-0A1B2C3D", T)
        .await
        .unwrap();
    let e = alice
        .cancel_authorization("SL-01-0A1B2C3D", T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::ItemNotFound));
    assert_eq!(
        refused(register("SL-01-0A1B2C3D").await),
        DefinedCondition::NotAuthorized
    );

    // Expired (validity 1 s here).
    alice.authorize_thing("SL-01-0A1B2C3D", T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        refused(register("SL-01-0A1B2C3D").await),
        DefinedCondition::NotAuthorized
    );

    // Authorized: registered, owned by alice, and it logs in with SCRAM.
    alice.authorize_thing("SL-01-0A1B2C3D", T).await.unwrap();
    let r = register("SL-01-0A1B2C3D").await.unwrap();
    assert_eq!(r.thing_name, "sl-01-0a1b2c3d");
    assert_eq!(r.security_key.len(), 16);
    assert_eq!(r.credentials.len(), 8);
    let (thing, _te) = ClientBuilder::new("sl-01-0a1b2c3d@localhost/0", &r.credentials)
        .unwrap()
        .address(s.things_addr())
        .trust(s.trust())
        .format(format)
        .mechanisms(vec![lithos_client::Mechanism::ScramSha256])
        .connect()
        .await
        .unwrap();
    assert_eq!(thing.jid().to_string(), "sl-01-0a1b2c3d@localhost/0");
    let registry = lithos_tuxp_things::Registry::of(s.server.handle()).unwrap();
    let rec = registry.by_id("SL-01-0A1B2C3D").await.unwrap().unwrap();
    assert_eq!((rec.owner.as_str(), rec.model.as_str()), ("alice", "SL-01"));

    // Again: conflict, and it cannot be authorized any more.
    assert_eq!(
        refused(register("SL-01-0A1B2C3D").await),
        DefinedCondition::Conflict
    );
    let e = alice
        .authorize_thing("SL-01-0A1B2C3D", T)
        .await
        .unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Conflict));

    // Registration is offered on the things port only.
    let on_client_port = things.clone().address(s.server.c2s_addrs[0].to_string());
    assert!(matches!(
        register_thing(&on_client_port, "SL-01-11111111", "k", T).await,
        Err(RegisterError::NotOffered)
    ));
}

#[tokio::test]
async fn registration_in_xml() {
    registration_cases(WireFormat::Xml).await;
}

#[tokio::test]
async fn registration_in_bxmpp() {
    registration_cases(WireFormat::Bxmpp).await;
}
