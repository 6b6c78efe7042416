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

    // XEP-0115 §6.3: the stream features carry the server's capabilities, whose node#ver
    // the server answers with the very disco#info that hashes to ver.
    let caps = j
        .features
        .as_ref()
        .and_then(|f| f.get_child("c", lithos_caps::NS))
        .and_then(lithos_caps::Caps::from_element)
        .expect("the server's <c/> in its stream features");
    let answer = j
        .iq(
            "get",
            Some("localhost"),
            Element::builder("query", "http://jabber.org/protocol/disco#info")
                .attr("node", caps.disco_node())
                .build(),
        )
        .await;
    let q = answer
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("an answer for the caps node");
    assert_eq!(q.attr("node"), Some(caps.disco_node().as_str()));
    lithos_caps::verify(&caps, q).expect("the server's info hashes to its ver");
    let other = j
        .iq(
            "get",
            Some("localhost"),
            Element::builder("query", "http://jabber.org/protocol/disco#info")
                .attr("node", "elsewhere")
                .build(),
        )
        .await;
    assert_eq!(other.attr("type"), Some("error"));
}
