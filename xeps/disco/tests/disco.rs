//! Service discovery against a real server: the server's identity and the features of the
//! modules linked (ping, version and offline here), an account's info, an unknown account.

// The modules whose features the server lists.
use lithos_core::Element;
use lithos_disco as _;
use lithos_offline as _;
use lithos_ping as _;
use lithos_testkit::TestServer;
use lithos_version as _;

#[tokio::test]
async fn server_features_and_account_info() {
    let s = TestServer::with_users("", &["juliet"]).await;
    let mut j = s.login_as("juliet", "balcony").await;
    let info = j
        .iq(
            "get",
            Some("localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let id = q
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        (id.attr("category"), id.attr("type")),
        (Some("server"), Some("im"))
    );
    let features: Vec<_> = q.children().filter_map(|f| f.attr("var")).collect();
    for f in [
        "http://jabber.org/protocol/disco#info",
        "urn:xmpp:ping",
        "jabber:iq:version",
        "msgoffline",
    ] {
        assert!(features.contains(&f), "{f} missing from {features:?}");
    }
    // Account info.
    let a = j
        .iq(
            "get",
            Some("juliet@localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    assert_eq!(a.attr("type"), Some("result"));
    let none = j
        .iq(
            "get",
            Some("nobody@localhost"),
            Element::bare("query", "http://jabber.org/protocol/disco#info"),
        )
        .await;
    assert_eq!(none.attr("type"), Some("error"));
}
