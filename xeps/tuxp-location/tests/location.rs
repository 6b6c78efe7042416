//! Locating things against a real server: the owner learns a thing's address, in XML and in
//! BXMPP; an account the thing does not know is refused.

use lithos_core::codec::WireFormat;
use lithos_core::stanza::DefinedCondition;
use lithos_testkit::things::{self, T, condition};
use lithos_tuxp_location::LocationExt;

async fn owner_only(format: WireFormat) {
    let s = things::start("").await;
    let (alice, _ae) = s.user("alice", format).await;
    let (bob, _be) = s.user("bob", format).await;
    let (id, light, _flashes) = things::light(&s, &alice, "0A1B2C40", format).await;
    let found = alice.locate_things(&[&id], T).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, id);
    assert!(
        found[0].1.bare_eq(&light.jid()),
        "{found:?} vs {}",
        light.jid()
    );
    let e = bob.locate_things(&[&id], T).await.unwrap_err();
    assert_eq!(condition(&e), Some(DefinedCondition::Forbidden));
}

lithos_testkit::in_both_formats!(owner_only);
