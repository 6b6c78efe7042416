//! vCards against a real server: set by the account, read by anyone, in XML and in BXMPP;
//! empty when none is set, refused for others and above the limit, durable, forgotten with
//! the account.

use std::time::Duration;

use lithos_core::codec::WireFormat;
use lithos_core::{Element, Jid, Payload};
use lithos_testkit::{RawClient, TestServer, error_condition};
use lithos_vcard::VCard;
use lithos_vcard::client::VCardExt;

const T: Duration = Duration::from_secs(5);

fn card(fields: &str) -> VCard {
    VCard::from_element(
        Element::parse(&format!("<vCard xmlns='vcard-temp'>{fields}</vCard>")).unwrap(),
    )
    .unwrap()
}

async fn set_and_read(format: WireFormat) {
    let s = TestServer::with_users("[modules.vcard]\nmax_bytes = 400", &["juliet", "romeo"]).await;
    let (juliet, _je) = s.user("juliet", format).await;
    let (romeo, _re) = s.user("romeo", format).await;
    // Nothing set yet: an empty vCard, for oneself and for others.
    assert_eq!(juliet.vcard(None, T).await.unwrap(), VCard::default());
    let juliet_jid = Jid::new("juliet@localhost").unwrap();
    assert_eq!(
        romeo.vcard(Some(juliet_jid.clone()), T).await.unwrap(),
        VCard::default()
    );

    let mine = card("<FN>Juliet Capulet</FN><NICKNAME>jc</NICKNAME>");
    juliet.set_vcard(mine.clone(), T).await.unwrap();
    assert_eq!(juliet.vcard(None, T).await.unwrap(), mine);
    assert_eq!(
        romeo.vcard(Some(juliet_jid.clone()), T).await.unwrap(),
        mine
    );
    assert_eq!(
        romeo
            .vcard(Some(juliet_jid), T)
            .await
            .unwrap()
            .field("NICKNAME")
            .as_deref(),
        Some("jc")
    );
    // Above the limit.
    let e = juliet
        .set_vcard(card(&format!("<DESC>{}</DESC>", "x".repeat(400))), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not-acceptable"), "{e}");
}

lithos_testkit::in_both_formats!(set_and_read);

/// The answer to a vCard get for `of`, sent raw.
async fn card_of(c: &mut RawClient, of: &str) -> Element {
    c.iq("get", Some(of), Element::bare("vCard", "vcard-temp"))
        .await
}

#[tokio::test]
async fn refusals_durability_and_deletion() {
    let s = TestServer::with_users("", &["juliet", "romeo"]).await;
    let mut r = s.login_as("romeo", "orchard").await;
    let set = Element::parse("<vCard xmlns='vcard-temp'><FN>Not Juliet</FN></vCard>").unwrap();
    let e = r.iq("set", Some("juliet@localhost"), set).await;
    assert_eq!(error_condition(&e).as_deref(), Some("forbidden"));
    let e = card_of(&mut r, "nobody@localhost").await;
    assert_eq!(error_condition(&e).as_deref(), Some("item-not-found"));
    let mine = Element::parse("<vCard xmlns='vcard-temp'><FN>Romeo Montague</FN></vCard>").unwrap();
    let ok = r.iq("set", None, mine.clone()).await;
    assert_eq!(ok.attr("type"), Some("result"));
    r.close().await;

    let s = s.restart().await;
    let mut j = s.login_as("juliet", "balcony").await;
    let got = card_of(&mut j, "romeo@localhost").await;
    assert_eq!(got.get_child("vCard", "vcard-temp"), Some(&mine));
    s.handle()
        .storage()
        .accounts
        .delete_account("romeo", "localhost")
        .await
        .unwrap();
    let e = card_of(&mut j, "romeo@localhost").await;
    assert_eq!(error_condition(&e).as_deref(), Some("item-not-found"));
}
