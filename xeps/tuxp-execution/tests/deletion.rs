//! Deleting an account leaves nothing for the next account of its name to inherit (issue 14,
//! defect 8): things it owned are unowned and cannot log in, grants it held and gave are gone,
//! and its name stays taken for a while.

use std::time::Duration;

use lithos_client::{ClientBuilder, Mechanism, WireFormat};
use lithos_core::stanza::DefinedCondition;
use lithos_core::{Jid, Payload};
use lithos_server::storage::StorageError;
use lithos_testkit::things::{self, T, refused};
use lithos_things_demo::light::Flash;
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_things::Registry;

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

#[tokio::test]
async fn a_deleted_owner_leaves_unowned_things_that_cannot_log_in() {
    let s = things::start("").await;
    let format = WireFormat::Xml;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let (id, light, _flashes) = things::light(&s, &alice, "0A1B2C3D", format).await;
    let addr = jid("sl-01-0a1b2c3d@localhost");
    alice
        .set_grant(&id, jid("bob@localhost"), false, T)
        .await
        .unwrap();
    bob.execute(addr.clone(), Flash { repeat: 1 }.into_element(), T)
        .await
        .unwrap();
    let handle = s.handle().clone();
    let registry = Registry::of(&handle);
    let before = registry.by_id(&id).await.unwrap().unwrap();
    assert_eq!(before.owner, "alice");
    let accounts = handle.storage().accounts.clone();
    let keys = accounts
        .credentials("sl-01-0a1b2c3d")
        .await
        .unwrap()
        .unwrap();

    handle
        .delete_account(&jid("alice@localhost"))
        .await
        .unwrap();

    // The light is unowned, its session ended, and its credentials no longer log in.
    let after = registry.by_id(&id).await.unwrap().unwrap();
    assert_eq!(after.owner, "");
    let mut gone = false;
    for _ in 0..100 {
        if !handle.sessions().is_online("sl-01-0a1b2c3d@localhost") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the light's session goes with its owner");
    drop(light);
    // Its credentials are revoked: other keys, which no password derives; the account (and
    // with it the name) stays, so nobody else can take the thing's address.
    let revoked = accounts
        .credentials("sl-01-0a1b2c3d")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(revoked.sha256.stored_key, keys.sha256.stored_key);
    assert_ne!(revoked.sha1.stored_key, keys.sha1.stored_key);
    assert!(matches!(
        accounts
            .create_account(
                "sl-01-0a1b2c3d",
                &lithos_server::sasl::Credentials::new("squat", 4096).unwrap()
            )
            .await,
        Err(StorageError::AlreadyExists)
    ));
    // Bob's grant went with the owner who gave it.
    assert_eq!(
        refused(bob.execute(addr, Flash { repeat: 1 }.into_element(), T)).await,
        Some(DefinedCondition::Forbidden)
    );
    // Nobody can take the name "alice" (and with it the operator role the configuration
    // gives that name) while the tombstone stands.
    let creds = lithos_server::sasl::Credentials::new("new-alice", 4096).unwrap();
    assert!(matches!(
        handle
            .storage()
            .accounts
            .create_account("alice", &creds)
            .await,
        Err(StorageError::AlreadyExists)
    ));
    let again = ClientBuilder::new("alice@localhost/app", "alice-password")
        .unwrap()
        .address(s.addr().to_string())
        .trust(s.trust())
        .mechanisms(vec![Mechanism::ScramSha256])
        .connect()
        .await;
    assert!(again.is_err(), "the deleted account does not log in");
}

#[tokio::test]
async fn a_deleted_grantee_passes_nothing_to_the_next_account_of_its_name() {
    let s = things::start("").await;
    let format = WireFormat::Xml;
    let (alice, _ae) = s.user("alice", format).await;
    let (id, _light, _flashes) = things::light(&s, &alice, "0A1B2C3E", format).await;
    alice
        .set_grant(&id, jid("bob@localhost"), false, T)
        .await
        .unwrap();
    let handle = s.handle().clone();
    handle.delete_account(&jid("bob@localhost")).await.unwrap();
    // Even once an administrator frees the name, the new bob has no grant.
    handle
        .storage()
        .accounts
        .remove_tombstone("bob")
        .await
        .unwrap();
    s.add_user("bob", "bob-password").await;
    let (bob, _be) = s.user("bob", format).await;
    assert_eq!(
        refused(bob.execute(
            jid("sl-01-0a1b2c3e@localhost"),
            Flash { repeat: 1 }.into_element(),
            T,
        ))
        .await,
        Some(DefinedCondition::Forbidden)
    );
}

/// Answers every execution for a LAN node: the gateway's LAN side, reduced to a yes.
struct AnyNode;

#[async_trait::async_trait]
impl lithos_client::handler::IqHandler for AnyNode {
    async fn handle(
        &self,
        _ctx: &lithos_client::handler::HandlerContext,
        _request: lithos_core::stanza::Iq,
    ) -> lithos_client::handler::IqAnswer {
        Ok(None)
    }
}

/// A LAN node's owner is remembered between commands (the node cache): deleting that owner
/// still leaves the node unowned for the next account of its name.
#[tokio::test]
async fn a_deleted_node_owner_passes_nothing_on() {
    let s = lithos_testkit::TestServer::start("[modules.operator]\noperators = ['alice', 'bob']\n")
        .await;
    s.add_users(&["alice", "bob"]).await;
    let format = WireFormat::Xml;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    // Alice's gateway, bob's light behind it as node 3.
    let gateway = things::gateway_with_node_via(
        &s,
        &alice,
        &bob,
        ("0A1B2C40", "SL-01-0A1B2C41", 3),
        format,
        |r| r.lan_nodes(std::sync::Arc::new(AnyNode)),
    )
    .await;
    let node = gateway.jid().to_bare().with_resource("3").unwrap();
    let flash = || Flash { repeat: 1 }.into_element();
    bob.execute(node.clone(), flash(), T).await.unwrap();
    bob.execute(node.clone(), flash(), T).await.unwrap();
    drop(bob);
    let handle = s.handle().clone();
    handle.delete_account(&jid("bob@localhost")).await.unwrap();
    handle
        .storage()
        .accounts
        .remove_tombstone("bob")
        .await
        .unwrap();
    s.add_user("bob", "bob-password").await;
    let (bob, _be) = s.user("bob", format).await;
    assert_eq!(
        refused(bob.execute(node.clone(), flash(), T)).await,
        Some(DefinedCondition::Forbidden),
        "the node is unowned now"
    );
}
