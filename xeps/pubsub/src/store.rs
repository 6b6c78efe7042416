//! Nodes, affiliations, subscriptions and items in the server's database. A node belongs to
//! a service: `pubsub.<domain>`, or an account's bare JID for its personal eventing nodes.

use lithos_core::Element;
use lithos_server::params;
use lithos_server::storage::sql::{Conn, Row};
use lithos_server::storage::{Database, ModuleSchema, StorageResult};

/// The tables. An account's deletion takes its personal nodes, its affiliations and its
/// subscriptions (bare or full) everywhere.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "pubsub",
    migrations: &[
        // 1
        "CREATE TABLE pubsub_nodes (
            service TEXT NOT NULL, node TEXT NOT NULL, config TEXT NOT NULL,
            PRIMARY KEY (service, node)
         );
         CREATE TABLE pubsub_affiliations (
            service TEXT NOT NULL, node TEXT NOT NULL, jid TEXT NOT NULL, affiliation TEXT NOT NULL,
            PRIMARY KEY (service, node, jid)
         );
         CREATE TABLE pubsub_subscriptions (
            service TEXT NOT NULL, node TEXT NOT NULL, jid TEXT NOT NULL, subid TEXT NOT NULL,
            PRIMARY KEY (service, node, jid)
         );
         CREATE TABLE pubsub_items (
            service TEXT NOT NULL, node TEXT NOT NULL, id TEXT NOT NULL,
            seq INTEGER NOT NULL, publisher TEXT NOT NULL, stamp INTEGER NOT NULL, payload TEXT,
            PRIMARY KEY (service, node, id)
         );
         CREATE INDEX pubsub_items_by_seq ON pubsub_items (service, node, seq);",
    ],
    postgres: Some(&["CREATE TABLE pubsub_nodes (
            service TEXT NOT NULL, node TEXT NOT NULL, config TEXT NOT NULL,
            PRIMARY KEY (service, node)
         );
         CREATE TABLE pubsub_affiliations (
            service TEXT NOT NULL, node TEXT NOT NULL, jid TEXT NOT NULL, affiliation TEXT NOT NULL,
            PRIMARY KEY (service, node, jid)
         );
         CREATE TABLE pubsub_subscriptions (
            service TEXT NOT NULL, node TEXT NOT NULL, jid TEXT NOT NULL, subid TEXT NOT NULL,
            PRIMARY KEY (service, node, jid)
         );
         CREATE TABLE pubsub_items (
            service TEXT NOT NULL, node TEXT NOT NULL, id TEXT NOT NULL,
            seq BIGINT NOT NULL, publisher TEXT NOT NULL, stamp BIGINT NOT NULL, payload TEXT,
            PRIMARY KEY (service, node, id)
         );
         CREATE INDEX pubsub_items_by_seq ON pubsub_items (service, node, seq);"]),
    account_deleted: &[
        "DELETE FROM pubsub_items WHERE service = ?2",
        // The full JIDs of the account: its bare JID and a slash (ASCII case ignored, as
        // SQLite's LIKE did; no wildcards).
        "DELETE FROM pubsub_subscriptions WHERE service = ?2 OR jid = ?2
            OR lower(substr(jid, 1, length(CAST(?2 AS TEXT)) + 1)) = lower(?2 || '/')",
        "DELETE FROM pubsub_affiliations WHERE service = ?2 OR jid = ?2",
        "DELETE FROM pubsub_nodes WHERE service = ?2",
    ],
};

/// A published item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its id, unique in the node.
    pub id: String,
    /// The order of publication, across the server.
    pub seq: i64,
    /// Who published it (a bare or full JID).
    pub publisher: String,
    /// When, in milliseconds since the epoch.
    pub stamp: i64,
    /// The payload, if the item has one.
    pub payload: Option<Element>,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNode {
    /// The service.
    pub service: String,
    /// The node's name.
    pub node: String,
    /// Its configuration, as the submitted form's XML.
    pub config: String,
    /// Affiliations other than `none`, by bare JID.
    pub affiliations: Vec<(String, String)>,
    /// Subscriptions: JID and subid.
    pub subscriptions: Vec<(String, String)>,
    /// The latest item, if any.
    pub last: Option<Item>,
}

/// Which items a retrieval wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These ids (the missing ones left out).
    Ids(Vec<String>),
    /// The latest `n`, oldest first.
    Latest(usize),
    /// A page of at most `max`, oldest first: after an item, before one (`""`: the last
    /// page), or from the start.
    Page {
        /// The page's size at most.
        max: usize,
        /// Starts after this item.
        after: Option<String>,
        /// Ends before this item (`""`: the last page).
        before: Option<String>,
    },
}

/// An item's columns: id, seq, publisher, stamp and payload.
type ItemRow = (String, i64, String, i64, Option<String>);

fn row_item(r: &Row<'_>) -> StorageResult<ItemRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_item((id, seq, publisher, stamp, payload): ItemRow) -> Item {
    Item {
        id,
        seq,
        publisher,
        stamp,
        // A payload that no longer parses is left out, not the item.
        payload: payload.and_then(|p| Element::parse(&p).ok()),
    }
}

/// Writes a node's configuration (creating it).
pub async fn save_node(
    db: &Database,
    service: &str,
    node: &str,
    config: String,
) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        c.execute(
            "INSERT INTO pubsub_nodes (service, node, config) VALUES (?1, ?2, ?3)
             ON CONFLICT (service, node) DO UPDATE SET config = ?3",
            params![service, node, config],
        )?;
        Ok(())
    })
    .await
}

/// Creates a node with its owner in one transaction.
pub async fn create_node(
    db: &Database,
    service: &str,
    node: &str,
    config: String,
    owner: &str,
) -> StorageResult<()> {
    let (service, node, owner) = (service.to_string(), node.to_string(), owner.to_string());
    db.run(move |c| {
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO pubsub_nodes (service, node, config) VALUES (?1, ?2, ?3)
             ON CONFLICT (service, node) DO UPDATE SET config = ?3",
            params![service, node, config],
        )?;
        tx.execute(
            "INSERT INTO pubsub_affiliations (service, node, jid, affiliation) VALUES (?1, ?2, ?3, 'owner')
             ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = 'owner'",
            params![service, node, owner],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Forgets a node and everything in it.
pub async fn delete_node(db: &Database, service: &str, node: &str) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        let mut tx = c.transaction()?;
        for table in [
            "pubsub_items",
            "pubsub_subscriptions",
            "pubsub_affiliations",
            "pubsub_nodes",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE service = ?1 AND node = ?2"),
                params![service, node],
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Sets (or with `None` removes) an affiliation.
pub async fn set_affiliation(
    db: &Database,
    service: &str,
    node: &str,
    jid: &str,
    affiliation: Option<&'static str>,
) -> StorageResult<()> {
    let (service, node, jid) = (service.to_string(), node.to_string(), jid.to_string());
    db.run(move |c| {
        match affiliation {
            Some(a) => c.execute(
                "INSERT INTO pubsub_affiliations (service, node, jid, affiliation) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = ?4",
                params![service, node, jid, a],
            )?,
            None => c.execute(
                "DELETE FROM pubsub_affiliations WHERE service = ?1 AND node = ?2 AND jid = ?3",
                params![service, node, jid],
            )?,
        };
        Ok(())
    })
    .await
}

/// Sets (or with `None` removes) a subscription.
pub async fn set_subscription(
    db: &Database,
    service: &str,
    node: &str,
    jid: &str,
    subid: Option<String>,
) -> StorageResult<()> {
    let (service, node, jid) = (service.to_string(), node.to_string(), jid.to_string());
    db.run(move |c| {
        match &subid {
            Some(s) => c.execute(
                "INSERT INTO pubsub_subscriptions (service, node, jid, subid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, node, jid) DO UPDATE SET subid = ?4",
                params![service, node, jid, s],
            )?,
            None => c.execute(
                "DELETE FROM pubsub_subscriptions WHERE service = ?1 AND node = ?2 AND jid = ?3",
                params![service, node, jid],
            )?,
        };
        Ok(())
    })
    .await
}

/// Stores an item (replacing one with its id) and keeps the latest `max_items`.
pub async fn put_item(
    db: &Database,
    service: &str,
    node: &str,
    item: &Item,
    max_items: usize,
) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    let item = item.clone();
    db.run(move |c| {
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO pubsub_items (service, node, id, seq, publisher, stamp, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (service, node, id)
             DO UPDATE SET seq = ?4, publisher = ?5, stamp = ?6, payload = ?7",
            params![
                service,
                node,
                item.id,
                item.seq,
                item.publisher,
                item.stamp,
                item.payload.as_ref().map(|p| p.to_xml())
            ],
        )?;
        // The oldest beyond the bound go: the first seq to keep is the max_items-th latest.
        let keep_from: Option<i64> = tx.query_opt(
            "SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2
             ORDER BY seq DESC LIMIT 1 OFFSET ?3",
            params![service, node, max_items.saturating_sub(1) as i64],
            |r| r.get(0),
        )?;
        if let Some(seq) = keep_from {
            tx.execute(
                "DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND seq < ?3",
                params![service, node, seq],
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Removes an item; whether it was there.
pub async fn retract_item(
    db: &Database,
    service: &str,
    node: &str,
    id: &str,
) -> StorageResult<bool> {
    let (service, node, id) = (service.to_string(), node.to_string(), id.to_string());
    db.run(move |c| {
        Ok(c.execute(
            "DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND id = ?3",
            params![service, node, id],
        )? > 0)
    })
    .await
}

/// Removes every item of a node, or all but the latest `keep`.
pub async fn trim(db: &Database, service: &str, node: &str, keep: usize) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        c.execute(
            "DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND seq NOT IN
             (SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)",
            params![service, node, keep as i64],
        )?;
        Ok(())
    })
    .await
}

/// The latest item of a node.
pub async fn latest(db: &Database, service: &str, node: &str) -> StorageResult<Option<Item>> {
    Ok(items(db, service, node, Selection::Latest(1))
        .await?
        .0
        .pop())
}

/// The columns of an item, of the node `?1`, `?2`.
const ITEM_COLS: &str =
    "SELECT id, seq, publisher, stamp, payload FROM pubsub_items WHERE service = ?1 AND node = ?2";

/// The sequence number of a node's item `id`.
fn seq_of(c: &mut Conn<'_>, service: &str, node: &str, id: &str) -> StorageResult<Option<i64>> {
    c.query_opt(
        "SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2 AND id = ?3",
        params![service, node, id],
        |r| r.get(0),
    )
}

/// The rows of the items `selection` wants, oldest first.
fn select_items(
    c: &mut Conn<'_>,
    service: &str,
    node: &str,
    selection: &Selection,
) -> StorageResult<Vec<ItemRow>> {
    let mut rows = Vec::new();
    match selection {
        Selection::Ids(ids) => {
            let sql = format!("{ITEM_COLS} AND id = ?3");
            for id in ids {
                if let Some(r) = c.query_opt(&sql, params![service, node, id], row_item)? {
                    rows.push(r);
                }
            }
            rows.sort_by_key(|r| r.1);
        }
        Selection::Latest(n) => {
            rows = c.query_map(
                &format!("{ITEM_COLS} ORDER BY seq DESC LIMIT ?3"),
                params![service, node, *n as i64],
                row_item,
            )?;
            rows.reverse();
        }
        Selection::Page { max, after, before } => {
            let limit = *max as i64;
            match (after, before) {
                (Some(after), _) => {
                    // An unknown id: an empty page (XEP-0059 leaves it to the service).
                    if let Some(seq) = seq_of(c, service, node, after)? {
                        rows = c.query_map(
                            &format!("{ITEM_COLS} AND seq > ?3 ORDER BY seq LIMIT ?4"),
                            params![service, node, seq, limit],
                            row_item,
                        )?;
                    }
                }
                (None, Some(before)) => {
                    let bound = if before.is_empty() {
                        Some(i64::MAX)
                    } else {
                        seq_of(c, service, node, before)?
                    };
                    if let Some(seq) = bound {
                        rows = c.query_map(
                            &format!("{ITEM_COLS} AND seq < ?3 ORDER BY seq DESC LIMIT ?4"),
                            params![service, node, seq, limit],
                            row_item,
                        )?;
                        rows.reverse();
                    }
                }
                (None, None) => {
                    rows = c.query_map(
                        &format!("{ITEM_COLS} ORDER BY seq LIMIT ?3"),
                        params![service, node, limit],
                        row_item,
                    )?;
                }
            }
        }
    }
    Ok(rows)
}

/// Items of a node, oldest first, and how many the node holds.
pub async fn items(
    db: &Database,
    service: &str,
    node: &str,
    selection: Selection,
) -> StorageResult<(Vec<Item>, usize)> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        let count: i64 = c.query_value(
            "SELECT COUNT(*) FROM pubsub_items WHERE service = ?1 AND node = ?2",
            params![service, node],
        )?;
        let rows = select_items(c, &service, &node, &selection)?;
        Ok((rows.into_iter().map(to_item).collect(), count as usize))
    })
    .await
}

/// Every node with its affiliations, subscriptions and latest item; and the highest item
/// sequence number in use.
pub async fn load(db: &Database) -> StorageResult<(Vec<StoredNode>, i64)> {
    db.run(|c| {
        let mut nodes: Vec<StoredNode> = c.query_map(
            "SELECT service, node, config FROM pubsub_nodes ORDER BY service, node",
            params![],
            |r| {
                Ok(StoredNode {
                    service: r.get(0)?,
                    node: r.get(1)?,
                    config: r.get(2)?,
                    affiliations: Vec::new(),
                    subscriptions: Vec::new(),
                    last: None,
                })
            },
        )?;
        let index: std::collections::HashMap<(String, String), usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.service.clone(), n.node.clone()), i))
            .collect();
        c.query_each(
            "SELECT service, node, jid, affiliation FROM pubsub_affiliations",
            params![],
            |r| {
                if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                    nodes[i].affiliations.push((r.get(2)?, r.get(3)?));
                }
                Ok(())
            },
        )?;
        c.query_each(
            "SELECT service, node, jid, subid FROM pubsub_subscriptions",
            params![],
            |r| {
                if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                    nodes[i].subscriptions.push((r.get(2)?, r.get(3)?));
                }
                Ok(())
            },
        )?;
        // The latest item of each node.
        c.query_each(
            "SELECT i.service, i.node, i.id, i.seq, i.publisher, i.stamp, i.payload FROM pubsub_items i
             JOIN (SELECT service, node, MAX(seq) AS seq FROM pubsub_items GROUP BY service, node) m
             ON i.service = m.service AND i.node = m.node AND i.seq = m.seq",
            params![],
            |r| {
                if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                    nodes[i].last = Some(to_item((r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)));
                }
                Ok(())
            },
        )?;
        let max_seq: Option<i64> = c.query_value("SELECT MAX(seq) FROM pubsub_items", params![])?;
        Ok((nodes, max_seq.unwrap_or(0)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, seq: i64) -> Item {
        Item {
            id: id.into(),
            seq,
            publisher: "a@localhost".into(),
            stamp: seq * 10,
            payload: Some(Element::parse(&format!("<p xmlns='urn:test'>{id}</p>")).unwrap()),
        }
    }

    #[tokio::test]
    async fn items_are_bounded_replaced_paged_and_loaded() {
        // The linked modules' schemas, this one's included, are applied.
        for db in
            lithos_testkit::databases("pubsub items_are_bounded_replaced_paged_and_loaded").await
        {
            bounded_replaced_paged_and_loaded(&db).await;
        }
    }

    async fn bounded_replaced_paged_and_loaded(db: &Database) {
        let on = db.dialect();
        create_node(db, "pubsub.localhost", "n", "<x/>".into(), "a@localhost")
            .await
            .unwrap();
        for i in 1..=5 {
            put_item(db, "pubsub.localhost", "n", &item(&format!("i{i}"), i), 3)
                .await
                .unwrap();
        }
        let (all, count) = items(db, "pubsub.localhost", "n", Selection::Latest(10))
            .await
            .unwrap();
        assert_eq!(count, 3, "the oldest beyond max_items went ({on:?})");
        assert_eq!(
            all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i3", "i4", "i5"],
            "{on:?}"
        );
        // Published again under its id: replaced, and now the latest.
        put_item(db, "pubsub.localhost", "n", &item("i3", 6), 3)
            .await
            .unwrap();
        let (all, _) = items(db, "pubsub.localhost", "n", Selection::Latest(10))
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i4", "i5", "i3"],
            "{on:?}"
        );
        let page = |after: Option<&str>, before: Option<&str>| Selection::Page {
            max: 2,
            after: after.map(Into::into),
            before: before.map(Into::into),
        };
        let ids = |v: Vec<Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(
            ids(items(db, "pubsub.localhost", "n", page(None, None))
                .await
                .unwrap()
                .0),
            ["i4", "i5"],
            "{on:?}"
        );
        assert_eq!(
            ids(items(db, "pubsub.localhost", "n", page(Some("i5"), None))
                .await
                .unwrap()
                .0),
            ["i3"],
            "{on:?}"
        );
        assert_eq!(
            ids(items(db, "pubsub.localhost", "n", page(None, Some("")))
                .await
                .unwrap()
                .0),
            ["i5", "i3"],
            "{on:?}"
        );
        assert_eq!(
            ids(items(db, "pubsub.localhost", "n", page(None, Some("i5")))
                .await
                .unwrap()
                .0),
            ["i4"],
            "{on:?}"
        );
        assert_eq!(
            ids(items(
                db,
                "pubsub.localhost",
                "n",
                Selection::Ids(vec!["i3".into(), "zz".into(), "i4".into()])
            )
            .await
            .unwrap()
            .0),
            ["i4", "i3"],
            "{on:?}"
        );
        set_subscription(
            db,
            "pubsub.localhost",
            "n",
            "b@localhost",
            Some("s1".into()),
        )
        .await
        .unwrap();
        let (nodes, max_seq) = load(db).await.unwrap();
        assert_eq!(max_seq, 6, "{on:?}");
        assert_eq!(nodes.len(), 1, "{on:?}");
        assert_eq!(
            nodes[0].last.as_ref().map(|i| i.id.as_str()),
            Some("i3"),
            "{on:?}"
        );
        assert_eq!(
            nodes[0].affiliations,
            [("a@localhost".to_string(), "owner".to_string())],
            "{on:?}"
        );
        assert_eq!(
            nodes[0].subscriptions,
            [("b@localhost".to_string(), "s1".to_string())],
            "{on:?}"
        );
        assert!(
            retract_item(db, "pubsub.localhost", "n", "i3")
                .await
                .unwrap(),
            "{on:?}"
        );
        assert!(
            !retract_item(db, "pubsub.localhost", "n", "i3")
                .await
                .unwrap(),
            "{on:?}"
        );
        assert_eq!(
            latest(db, "pubsub.localhost", "n")
                .await
                .unwrap()
                .map(|i| i.id),
            Some("i5".into()),
            "{on:?}"
        );
        trim(db, "pubsub.localhost", "n", 0).await.unwrap();
        assert_eq!(
            latest(db, "pubsub.localhost", "n").await.unwrap(),
            None,
            "{on:?}"
        );
        delete_node(db, "pubsub.localhost", "n").await.unwrap();
        assert!(load(db).await.unwrap().0.is_empty(), "{on:?}");
    }

    #[tokio::test]
    async fn an_account_deleted_takes_its_nodes_and_subscriptions() {
        for db in lithos_testkit::databases("pubsub an_account_deleted_takes_its_nodes").await {
            let on = db.dialect();
            create_node(&db, "b@localhost", "pep", "<x/>".into(), "b@localhost")
                .await
                .unwrap();
            put_item(&db, "b@localhost", "pep", &item("i1", 1), 10)
                .await
                .unwrap();
            create_node(&db, "pubsub.localhost", "n", "<x/>".into(), "a@localhost")
                .await
                .unwrap();
            set_affiliation(
                &db,
                "pubsub.localhost",
                "n",
                "b@localhost",
                Some("publisher"),
            )
            .await
            .unwrap();
            for (i, jid) in [
                "b@localhost",
                "b@localhost/phone",
                "bb@localhost/phone",
                "b@localhostx/phone",
                "B@localhost/phone",
            ]
            .into_iter()
            .enumerate()
            {
                set_subscription(&db, "pubsub.localhost", "n", jid, Some(format!("s{i}")))
                    .await
                    .unwrap();
            }
            db.run(|c| {
                let mut tx = c.transaction()?;
                for sql in SCHEMA.account_deleted {
                    tx.execute(sql, lithos_server::params!["b", "b@localhost"])?;
                }
                tx.commit()
            })
            .await
            .unwrap();
            let (nodes, _) = load(&db).await.unwrap();
            assert_eq!(nodes.len(), 1, "{on:?}");
            assert_eq!(
                nodes[0].affiliations,
                [("a@localhost".to_string(), "owner".to_string())],
                "{on:?}"
            );
            let mut subs: Vec<String> = nodes[0]
                .subscriptions
                .iter()
                .map(|(j, _)| j.clone())
                .collect();
            subs.sort();
            assert_eq!(subs, ["b@localhostx/phone", "bb@localhost/phone"], "{on:?}");
        }
    }
}
