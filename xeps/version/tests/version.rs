//! Software version against a real server.

use lithos_core::Element;
use lithos_testkit::TestServer;
use lithos_version as _;

#[tokio::test]
async fn name_and_version_without_os() {
    let s = TestServer::with_users("", &["juliet"]).await;
    let mut j = s.login_as("juliet", "balcony").await;
    let v = j
        .iq(
            "get",
            Some("localhost"),
            Element::bare("query", "jabber:iq:version"),
        )
        .await;
    let vq = v.get_child("query", "jabber:iq:version").unwrap();
    assert_eq!(
        vq.get_child("name", "jabber:iq:version").unwrap().text(),
        "Lithos"
    );
    assert!(vq.get_child("os", "jabber:iq:version").is_none());
}
