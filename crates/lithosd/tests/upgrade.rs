//! A data directory written by release 0.1.0 (`fixtures/release-0.1.0/lithos.sqlite`: three
//! accounts, rosters, a pending subscription request, offline messages, and every module's
//! tables of that release) opens with this one: the kernel's tables move to schema 4, the
//! roster and offline modules take over the tables the kernel used to hold, and nothing
//! stored is lost.

mod common;

use std::time::Duration;

use common::{TestServer, roster_items, roster_query, stanza};
use lithos_server::storage::rusqlite;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/release-0.1.0/lithos.sqlite"
);

/// `(name, type, notnull, default)` of each column of `table`, in order.
fn columns(c: &rusqlite::Connection, table: &str) -> Vec<(String, String, bool, Option<String>)> {
    let mut st = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    st.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn layout(s: &TestServer) -> Vec<(String, Vec<(String, String, bool, Option<String>)>)> {
    s.handle()
        .storage()
        .db()
        .as_sqlite()
        .expect("an upgrade of the SQLite file")
        .run(|c| {
            Ok([
                "accounts",
                "account_tombstones",
                "roster_items",
                "roster_versions",
                "pending_subscriptions",
                "offline_messages",
            ]
            .iter()
            .map(|t| (t.to_string(), columns(c, t)))
            .collect())
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_release_0_1_0_data_directory_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE, dir.path().join("lithos.sqlite")).unwrap();
    // The fixture's messages were stored in 2025: older than the default expiry.
    let s = TestServer::start_in(
        dir,
        "[storage]\nbackend = 'sqlite'\n[modules.offline]\nexpire_after_secs = 0",
    )
    .await;

    // Versions: the kernel at 4, the roster and offline modules at their first.
    let versions: (i64, Vec<(String, i64)>) = s
        .handle()
        .storage()
        .db()
        .as_sqlite()
        .expect("an upgrade of the SQLite file")
        .run(|c| {
            let v = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let mut st = c.prepare(
                "SELECT module, version FROM module_schemas
                 WHERE module IN ('roster', 'offline') ORDER BY module",
            )?;
            let m = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok((v, m))
        })
        .await
        .unwrap();
    assert_eq!(
        versions,
        (4, vec![("offline".into(), 1), ("roster".into(), 1)])
    );

    // The tables have the layout a new database gets.
    let fresh = TestServer::start("[storage]\nbackend = 'sqlite'\n").await;
    assert_eq!(layout(&s).await, layout(&fresh).await);

    // Accounts and rosters.
    let mut romeo = s.login_as("romeo", "orchard").await;
    let r = romeo.iq("get", None, roster_query(None)).await;
    assert_eq!(
        roster_items(&r),
        [("juliet@localhost".into(), "both".into(), None)]
    );
    let item = r
        .get_child("query", "jabber:iq:roster")
        .and_then(|q| q.children().next())
        .unwrap();
    assert_eq!(item.attr("name"), Some("Juliet"));
    let groups: Vec<String> = item.children().map(|g| g.text()).collect();
    assert_eq!(groups, ["Capulets", "Verona"]);

    // Offline messages, delivered on initial presence, in order, once.
    romeo.send(stanza("<presence/>")).await;
    for (id, body) in [
        ("fx0", "Wherefore art thou Romeo?"),
        ("fx1", "Deny thy father"),
    ] {
        let m = romeo.recv_where(|e| e.name() == "message").await;
        assert_eq!(m.attr("id"), Some(id));
        assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), body);
    }

    // The pending subscription request reaches its contact.
    let mut nurse = s.login_as("nurse", "home").await;
    nurse.send(stanza("<presence/>")).await;
    let req = nurse
        .recv_where(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(req.attr("from"), Some("juliet@localhost"));

    // Juliet's roster still asks the nurse.
    let mut juliet = s.login_as("juliet", "balcony").await;
    let r = juliet.iq("get", None, roster_query(None)).await;
    let mut items = roster_items(&r);
    items.sort();
    assert_eq!(
        items,
        [
            (
                "nurse@localhost".into(),
                "none".into(),
                Some("subscribe".into())
            ),
            ("romeo@localhost".into(), "both".into(), None),
        ]
    );
    juliet.expect_silence(Duration::from_millis(100)).await;
}
