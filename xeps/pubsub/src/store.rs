//! Nodes, affiliations, subscriptions and items in the server's database. A node belongs to
//! a service: `pubsub.<domain>`, or an account's bare JID for its personal eventing nodes.

use lithos_core::Element;
use lithos_server::storage::rusqlite::{OptionalExtension, params};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageResult};

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
    postgres: None,
    account_deleted: &[
        "DELETE FROM pubsub_items WHERE service = ?2",
        "DELETE FROM pubsub_subscriptions WHERE service = ?2 OR jid = ?2 OR jid LIKE ?2 || '/%'",
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

fn row_item(
    r: &lithos_server::storage::rusqlite::Row<'_>,
) -> lithos_server::storage::rusqlite::Result<(String, i64, String, i64, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_item(
    (id, seq, publisher, stamp, payload): (String, i64, String, i64, Option<String>),
) -> Item {
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
    db: &SqliteStore,
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
    db: &SqliteStore,
    service: &str,
    node: &str,
    config: String,
    owner: &str,
) -> StorageResult<()> {
    let (service, node, owner) = (service.to_string(), node.to_string(), owner.to_string());
    db.run(move |c| {
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO pubsub_nodes (service, node, config) VALUES (?1, ?2, ?3)
             ON CONFLICT (service, node) DO UPDATE SET config = ?3",
            params![service, node, config],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO pubsub_affiliations (service, node, jid, affiliation) VALUES (?1, ?2, ?3, 'owner')",
            params![service, node, owner],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Forgets a node and everything in it.
pub async fn delete_node(db: &SqliteStore, service: &str, node: &str) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        let tx = c.transaction()?;
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
    db: &SqliteStore,
    service: &str,
    node: &str,
    jid: &str,
    affiliation: Option<&'static str>,
) -> StorageResult<()> {
    let (service, node, jid) = (service.to_string(), node.to_string(), jid.to_string());
    db.run(move |c| {
        match affiliation {
            Some(a) => c.execute(
                "INSERT OR REPLACE INTO pubsub_affiliations (service, node, jid, affiliation) VALUES (?1, ?2, ?3, ?4)",
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
    db: &SqliteStore,
    service: &str,
    node: &str,
    jid: &str,
    subid: Option<String>,
) -> StorageResult<()> {
    let (service, node, jid) = (service.to_string(), node.to_string(), jid.to_string());
    db.run(move |c| {
        match subid {
            Some(s) => c.execute(
                "INSERT OR REPLACE INTO pubsub_subscriptions (service, node, jid, subid) VALUES (?1, ?2, ?3, ?4)",
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
    db: &SqliteStore,
    service: &str,
    node: &str,
    item: &Item,
    max_items: usize,
) -> StorageResult<()> {
    let (service, node) = (service.to_string(), node.to_string());
    let item = item.clone();
    db.run(move |c| {
        let tx = c.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO pubsub_items (service, node, id, seq, publisher, stamp, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
        let keep_from: Option<i64> = tx
            .query_row(
                "SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2
                 ORDER BY seq DESC LIMIT 1 OFFSET ?3",
                params![service, node, max_items.saturating_sub(1) as i64],
                |r| r.get(0),
            )
            .optional()?;
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
    db: &SqliteStore,
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
pub async fn trim(db: &SqliteStore, service: &str, node: &str, keep: usize) -> StorageResult<()> {
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
pub async fn latest(db: &SqliteStore, service: &str, node: &str) -> StorageResult<Option<Item>> {
    Ok(items(db, service, node, Selection::Latest(1))
        .await?
        .0
        .pop())
}

/// Items of a node, oldest first, and how many the node holds.
pub async fn items(
    db: &SqliteStore,
    service: &str,
    node: &str,
    selection: Selection,
) -> StorageResult<(Vec<Item>, usize)> {
    let (service, node) = (service.to_string(), node.to_string());
    db.run(move |c| {
        const COLS: &str = "SELECT id, seq, publisher, stamp, payload FROM pubsub_items WHERE service = ?1 AND node = ?2";
        let count: i64 = c.query_row(
            "SELECT COUNT(*) FROM pubsub_items WHERE service = ?1 AND node = ?2",
            params![service, node],
            |r| r.get(0),
        )?;
        let seq_of = |id: &str| -> StorageResult<Option<i64>> {
            Ok(c
                .query_row(
                    "SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2 AND id = ?3",
                    params![service, node, id],
                    |r| r.get(0),
                )
                .optional()?)
        };
        let mut rows = Vec::new();
        match selection {
            Selection::Ids(ids) => {
                let mut st = c.prepare(&format!("{COLS} AND id = ?3"))?;
                for id in ids {
                    if let Some(r) = st.query_row(params![service, node, id], row_item).optional()? {
                        rows.push(r);
                    }
                }
                rows.sort_by_key(|r| r.1);
            }
            Selection::Latest(n) => {
                let mut st = c.prepare(&format!("{COLS} ORDER BY seq DESC LIMIT ?3"))?;
                rows = st
                    .query_map(params![service, node, n as i64], row_item)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.reverse();
            }
            Selection::Page { max, after, before } => {
                let limit = max as i64;
                match (after, before) {
                    (Some(after), _) => {
                        // An unknown id: an empty page (XEP-0059 leaves it to the service).
                        if let Some(seq) = seq_of(&after)? {
                            let mut st = c.prepare(&format!("{COLS} AND seq > ?3 ORDER BY seq LIMIT ?4"))?;
                            rows = st
                                .query_map(params![service, node, seq, limit], row_item)?
                                .collect::<Result<Vec<_>, _>>()?;
                        }
                    }
                    (None, Some(before)) => {
                        let bound = if before.is_empty() { Some(i64::MAX) } else { seq_of(&before)? };
                        if let Some(seq) = bound {
                            let mut st = c.prepare(&format!("{COLS} AND seq < ?3 ORDER BY seq DESC LIMIT ?4"))?;
                            rows = st
                                .query_map(params![service, node, seq, limit], row_item)?
                                .collect::<Result<Vec<_>, _>>()?;
                            rows.reverse();
                        }
                    }
                    (None, None) => {
                        let mut st = c.prepare(&format!("{COLS} ORDER BY seq LIMIT ?3"))?;
                        rows = st
                            .query_map(params![service, node, limit], row_item)?
                            .collect::<Result<Vec<_>, _>>()?;
                    }
                }
            }
        }
        Ok((rows.into_iter().map(to_item).collect(), count as usize))
    })
    .await
}

/// Every node with its affiliations, subscriptions and latest item; and the highest item
/// sequence number in use.
pub async fn load(db: &SqliteStore) -> StorageResult<(Vec<StoredNode>, i64)> {
    db.run(|c| {
        let mut nodes: Vec<StoredNode> = c
            .prepare("SELECT service, node, config FROM pubsub_nodes ORDER BY service, node")?
            .query_map([], |r| {
                Ok(StoredNode {
                    service: r.get(0)?,
                    node: r.get(1)?,
                    config: r.get(2)?,
                    affiliations: Vec::new(),
                    subscriptions: Vec::new(),
                    last: None,
                })
            })?
            .collect::<Result<_, _>>()?;
        let index: std::collections::HashMap<(String, String), usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.service.clone(), n.node.clone()), i))
            .collect();
        let mut st = c.prepare("SELECT service, node, jid, affiliation FROM pubsub_affiliations")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                nodes[i].affiliations.push((r.get(2)?, r.get(3)?));
            }
        }
        let mut st = c.prepare("SELECT service, node, jid, subid FROM pubsub_subscriptions")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                nodes[i].subscriptions.push((r.get(2)?, r.get(3)?));
            }
        }
        // The latest item of each node.
        let mut st = c.prepare(
            "SELECT i.service, i.node, i.id, i.seq, i.publisher, i.stamp, i.payload FROM pubsub_items i
             JOIN (SELECT service, node, MAX(seq) AS seq FROM pubsub_items GROUP BY service, node) m
             ON i.service = m.service AND i.node = m.node AND i.seq = m.seq",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&(r.get(0)?, r.get(1)?)) {
                nodes[i].last = Some(to_item((r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)));
            }
        }
        let max_seq: Option<i64> = c.query_row("SELECT MAX(seq) FROM pubsub_items", [], |r| r.get(0))?;
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

    async fn db() -> SqliteStore {
        // The linked modules' schemas, this one's included, are applied.
        SqliteStore::in_memory().unwrap()
    }

    #[tokio::test]
    async fn items_are_bounded_replaced_paged_and_loaded() {
        let db = db().await;
        create_node(&db, "pubsub.localhost", "n", "<x/>".into(), "a@localhost")
            .await
            .unwrap();
        for i in 1..=5 {
            put_item(&db, "pubsub.localhost", "n", &item(&format!("i{i}"), i), 3)
                .await
                .unwrap();
        }
        let (all, count) = items(&db, "pubsub.localhost", "n", Selection::Latest(10))
            .await
            .unwrap();
        assert_eq!(count, 3, "the oldest beyond max_items went");
        assert_eq!(
            all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i3", "i4", "i5"]
        );
        // Published again under its id: replaced, and now the latest.
        put_item(&db, "pubsub.localhost", "n", &item("i3", 6), 3)
            .await
            .unwrap();
        let (all, _) = items(&db, "pubsub.localhost", "n", Selection::Latest(10))
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i4", "i5", "i3"]
        );
        let page = |after: Option<&str>, before: Option<&str>| Selection::Page {
            max: 2,
            after: after.map(Into::into),
            before: before.map(Into::into),
        };
        let ids = |v: Vec<Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(
            ids(items(&db, "pubsub.localhost", "n", page(None, None))
                .await
                .unwrap()
                .0),
            ["i4", "i5"]
        );
        assert_eq!(
            ids(items(&db, "pubsub.localhost", "n", page(Some("i5"), None))
                .await
                .unwrap()
                .0),
            ["i3"]
        );
        assert_eq!(
            ids(items(&db, "pubsub.localhost", "n", page(None, Some("")))
                .await
                .unwrap()
                .0),
            ["i5", "i3"]
        );
        assert_eq!(
            ids(items(&db, "pubsub.localhost", "n", page(None, Some("i5")))
                .await
                .unwrap()
                .0),
            ["i4"]
        );
        assert_eq!(
            ids(items(
                &db,
                "pubsub.localhost",
                "n",
                Selection::Ids(vec!["i3".into(), "zz".into(), "i4".into()])
            )
            .await
            .unwrap()
            .0),
            ["i4", "i3"]
        );
        set_subscription(
            &db,
            "pubsub.localhost",
            "n",
            "b@localhost",
            Some("s1".into()),
        )
        .await
        .unwrap();
        let (nodes, max_seq) = load(&db).await.unwrap();
        assert_eq!(max_seq, 6);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].last.as_ref().map(|i| i.id.as_str()), Some("i3"));
        assert_eq!(
            nodes[0].affiliations,
            [("a@localhost".to_string(), "owner".to_string())]
        );
        assert_eq!(
            nodes[0].subscriptions,
            [("b@localhost".to_string(), "s1".to_string())]
        );
        assert!(
            retract_item(&db, "pubsub.localhost", "n", "i3")
                .await
                .unwrap()
        );
        assert!(
            !retract_item(&db, "pubsub.localhost", "n", "i3")
                .await
                .unwrap()
        );
        assert_eq!(
            latest(&db, "pubsub.localhost", "n")
                .await
                .unwrap()
                .map(|i| i.id),
            Some("i5".into())
        );
        trim(&db, "pubsub.localhost", "n", 0).await.unwrap();
        assert_eq!(latest(&db, "pubsub.localhost", "n").await.unwrap(), None);
        delete_node(&db, "pubsub.localhost", "n").await.unwrap();
        assert!(load(&db).await.unwrap().0.is_empty());
    }
}
