//! Where reports live: the module's tables in the server's SQLite database.
//!
//! - `report_history`: every stored report, in arrival order (`id`), with the QoS 2
//!   `report_id`, unique per thing and node: what makes a re-sent QoS 2 report a duplicate,
//!   for as long as the history keeps it.
//! - `report_latest`: the newest report per thing, node and data type.
//! - `report_pending`: QoS 2 reports received and not yet delivered.
//!
//! Writes come in batches ([`apply`]), each one transaction: the server's writer commits
//! many reports with one `fsync` (group commit) and acknowledges them after the commit.

use lithos_core::Element;
use lithos_rsm::ResultSet;
use lithos_server::storage::rusqlite::{self, Connection, OptionalExtension, params};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageError, StorageResult};

use crate::Item;

/// The tables.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "tuxp-report",
    migrations: &[
        // 1
        "CREATE TABLE report_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            thing TEXT NOT NULL, node TEXT NOT NULL,
            stamp_ms INTEGER NOT NULL, qos INTEGER NOT NULL,
            report_id TEXT, data TEXT NOT NULL
         );
         CREATE INDEX report_history_by_thing ON report_history (thing, id);
         CREATE INDEX report_history_by_stamp ON report_history (stamp_ms);
         CREATE UNIQUE INDEX report_history_once ON report_history (thing, node, report_id)
            WHERE report_id IS NOT NULL;
         CREATE TABLE report_latest (
            thing TEXT NOT NULL, node TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
            history_id INTEGER NOT NULL, stamp_ms INTEGER NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (thing, node, ns, name)
         );
         CREATE TABLE report_pending (
            thing TEXT NOT NULL, node TEXT NOT NULL, report_id TEXT NOT NULL,
            stamp_ms INTEGER NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (thing, node, report_id)
         );",
    ],
    // A thing's account deleted: its reports go with it.
    account_deleted: &[
        "DELETE FROM report_history WHERE thing = ?1",
        "DELETE FROM report_latest WHERE thing = ?1",
        "DELETE FROM report_pending WHERE thing = ?1",
    ],
};

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// The thing's name (its account).
    pub thing: String,
    /// `0`, or the LAN id of the gateway's node.
    pub node: String,
    /// The QoS it came with.
    pub qos: u8,
    /// The QoS 2 id.
    pub report_id: Option<String>,
    /// When it arrived.
    pub stamp_ms: i64,
    /// The data element.
    pub data: Element,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// QoS 0 or 1: into the history, now.
    Store(NewReport),
    /// QoS 2, phase 1: kept pending (once) unless it was delivered already.
    Receive(NewReport),
    /// QoS 2, phase 2: the pending report moves into the history.
    Release {
        /// The thing.
        thing: String,
        /// The node.
        node: String,
        /// The report's id.
        report_id: String,
    },
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored in the history (also what a release did).
    Stored(Item),
    /// A QoS 2 report kept pending (or already pending, or already delivered).
    Pending,
    /// A QoS 2 report refused: the thing has too many pending reports.
    TooManyPending,
    /// A release with nothing to release (already delivered, or never received).
    NothingToRelease,
}

/// Where a report goes in the history: thing, node, QoS and QoS 2 id.
struct Key<'a>(&'a str, &'a str, u8, Option<&'a str>);

fn insert_history(
    c: &Connection,
    Key(thing, node, qos, report_id): Key<'_>,
    stamp_ms: i64,
    data: &Element,
    xml: &str,
) -> rusqlite::Result<Item> {
    c.prepare_cached(
        "INSERT INTO report_history (thing, node, stamp_ms, qos, report_id, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![thing, node, stamp_ms, qos, report_id, xml])?;
    let id = c.last_insert_rowid();
    c.prepare_cached(
        "INSERT INTO report_latest (thing, node, ns, name, history_id, stamp_ms, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (thing, node, ns, name)
         DO UPDATE SET history_id = ?5, stamp_ms = ?6, data = ?7",
    )?
    .execute(params![
        thing,
        node,
        data.ns(),
        data.name(),
        id,
        stamp_ms,
        xml
    ])?;
    Ok(Item {
        id,
        node: node.to_string(),
        stamp_ms,
        data: data.clone(),
    })
}

fn one(c: &Connection, w: &Write, max_pending: usize) -> rusqlite::Result<Outcome> {
    match w {
        Write::Store(r) => {
            let xml = r.data.to_xml();
            insert_history(
                c,
                Key(&r.thing, &r.node, r.qos, r.report_id.as_deref()),
                r.stamp_ms,
                &r.data,
                &xml,
            )
            .map(Outcome::Stored)
        }
        Write::Receive(r) => {
            let id = r.report_id.as_deref().unwrap_or_default();
            let delivered = c
                .prepare_cached(
                    "SELECT 1 FROM report_history WHERE thing = ?1 AND node = ?2 AND report_id = ?3",
                )?
                .query_row(params![r.thing, r.node, id], |_| Ok(()))
                .optional()?
                .is_some();
            if delivered {
                return Ok(Outcome::Pending);
            }
            let pending: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM report_pending WHERE thing = ?1")?
                .query_row(params![r.thing], |row| row.get(0))?;
            let already = c
                .prepare_cached(
                    "SELECT 1 FROM report_pending WHERE thing = ?1 AND node = ?2 AND report_id = ?3",
                )?
                .query_row(params![r.thing, r.node, id], |_| Ok(()))
                .optional()?
                .is_some();
            if already {
                return Ok(Outcome::Pending);
            }
            if pending as usize >= max_pending {
                return Ok(Outcome::TooManyPending);
            }
            c.prepare_cached(
                "INSERT INTO report_pending (thing, node, report_id, stamp_ms, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.thing, r.node, id, r.stamp_ms, r.data.to_xml()])?;
            Ok(Outcome::Pending)
        }
        Write::Release {
            thing,
            node,
            report_id,
        } => {
            let row: Option<(i64, String)> = c
                .prepare_cached(
                    "DELETE FROM report_pending WHERE thing = ?1 AND node = ?2 AND report_id = ?3
                     RETURNING stamp_ms, data",
                )?
                .query_row(params![thing, node, report_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((stamp_ms, xml)) = row else {
                return Ok(Outcome::NothingToRelease);
            };
            let data = Element::parse(&xml).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            insert_history(
                c,
                Key(thing, node, 2, Some(report_id)),
                stamp_ms,
                &data,
                &xml,
            )
            .map(Outcome::Stored)
        }
    }
}

/// Applies `writes` in one transaction; each gets its outcome. `max_pending` bounds the
/// QoS 2 reports pending per thing. Nothing is written if it fails.
pub fn apply(
    c: &mut Connection,
    writes: &[Write],
    max_pending: usize,
) -> StorageResult<Vec<Outcome>> {
    let tx = c.transaction()?;
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        out.push(one(&tx, w, max_pending)?);
    }
    tx.commit()?;
    Ok(out)
}

/// Deletes the history older than `before_ms` (keeping every latest value) and pending
/// reports never delivered since then; returns how many rows went.
pub fn prune(c: &mut Connection, before_ms: i64) -> StorageResult<usize> {
    let tx = c.transaction()?;
    let n = tx.execute(
        "DELETE FROM report_history WHERE stamp_ms < ?1
         AND id NOT IN (SELECT history_id FROM report_latest)",
        params![before_ms],
    )? + tx.execute(
        "DELETE FROM report_pending WHERE stamp_ms < ?1",
        params![before_ms],
    )?;
    tx.commit()?;
    Ok(n)
}

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_item((id, node, stamp_ms, xml): (i64, String, i64, String)) -> StorageResult<Item> {
    let data = Element::parse(&xml)
        .map_err(|e| StorageError::caused_by(format!("stored report {id} is not XML"), e))?;
    Ok(Item {
        id,
        node,
        stamp_ms,
        data,
    })
}

/// The newest report per node and data type of `thing`, by node then data type.
pub async fn latest(db: &SqliteStore, thing: &str) -> StorageResult<Vec<Item>> {
    let thing = thing.to_string();
    let rows = db
        .run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT history_id, node, stamp_ms, data FROM report_latest WHERE thing = ?1
                 ORDER BY node, ns, name",
            )?;
            let rows = st
                .query_map(params![thing], item)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await?;
    rows.into_iter().map(to_item).collect()
}

/// The most items a history page holds.
pub const MAX_PAGE: usize = 500;

/// A page of `thing`'s history: `node` (all when `None`), stamps in `[start, end)`, and
/// `set` (after / before an item id, at most `max`, default and cap [`MAX_PAGE`]). The
/// answer's set holds the page's first and last ids and the count of the whole range.
pub async fn history(
    db: &SqliteStore,
    thing: &str,
    node: Option<String>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    set: Option<ResultSet>,
) -> StorageResult<(Vec<Item>, ResultSet)> {
    let thing = thing.to_string();
    let set = set.unwrap_or_default();
    let max = set.max.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let parse_id = |s: &str| -> StorageResult<Option<i64>> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| StorageError::backend(format!("item-not-found: no item {s}")))
        }
    };
    let after = match &set.after {
        Some(a) => parse_id(a)?,
        None => None,
    };
    let before = match &set.before {
        Some(b) => Some(parse_id(b)?),
        None => None,
    };
    let (rows, count) = db
        .run(move |c| {
            let filter = "thing = ?1 AND (?2 IS NULL OR node = ?2)
                 AND stamp_ms >= ?3 AND stamp_ms < ?4";
            let (lo, hi) = (start_ms.unwrap_or(i64::MIN), end_ms.unwrap_or(i64::MAX));
            let count: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM report_history WHERE {filter}"),
                params![thing, node, lo, hi],
                |r| r.get(0),
            )?;
            let mut rows = match before {
                // A page ending before an item (or the last page): newest first, then turned.
                Some(b) => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT id, node, stamp_ms, data FROM report_history
                         WHERE {filter} AND id < ?5 ORDER BY id DESC LIMIT ?6"
                    ))?;
                    let mut v = st
                        .query_map(
                            params![thing, node, lo, hi, b.unwrap_or(i64::MAX), max as i64],
                            item,
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    v.reverse();
                    v
                }
                None => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT id, node, stamp_ms, data FROM report_history
                         WHERE {filter} AND id > ?5 ORDER BY id LIMIT ?6"
                    ))?;
                    st.query_map(
                        params![thing, node, lo, hi, after.unwrap_or(i64::MIN), max as i64],
                        item,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                }
            };
            rows.shrink_to_fit();
            Ok((rows, count as usize))
        })
        .await?;
    let items = rows
        .into_iter()
        .map(to_item)
        .collect::<StorageResult<Vec<_>>>()?;
    let answer = ResultSet {
        first: items.first().map(|i| (i.id.to_string(), None)),
        last: items.last().map(|i| i.id.to_string()),
        count: Some(count),
        ..ResultSet::default()
    };
    Ok((items, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: u32) -> Element {
        Element::builder("celsius-degree", "urn:t")
            .attr("value", v.to_string())
            .build()
    }

    fn report(v: u32, stamp_ms: i64, qos: u8, report_id: Option<&str>) -> NewReport {
        NewReport {
            thing: "t1".into(),
            node: "0".into(),
            qos,
            report_id: report_id.map(str::to_string),
            stamp_ms,
            data: data(v),
        }
    }

    async fn db() -> SqliteStore {
        SqliteStore::in_memory().unwrap()
    }

    #[tokio::test]
    async fn exactly_once_in_two_phases() {
        let db = db().await;
        let rel = || Write::Release {
            thing: "t1".into(),
            node: "0".into(),
            report_id: "a".into(),
        };
        let out = db
            .run(move |c| {
                apply(
                    c,
                    &[
                        Write::Receive(report(1, 10, 2, Some("a"))),
                        Write::Receive(report(1, 11, 2, Some("a"))),
                        rel(),
                        rel(),
                        // Re-sent after its delivery: still one.
                        Write::Receive(report(1, 12, 2, Some("a"))),
                        rel(),
                    ],
                    10,
                )
            })
            .await
            .unwrap();
        assert_eq!(out[0], Outcome::Pending);
        assert_eq!(out[1], Outcome::Pending);
        assert!(matches!(&out[2], Outcome::Stored(i) if i.stamp_ms == 10));
        assert_eq!(out[3], Outcome::NothingToRelease);
        assert_eq!(out[4], Outcome::Pending);
        assert_eq!(out[5], Outcome::NothingToRelease);
        let (items, set) = history(&db, "t1", None, None, None, None).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(set.count, Some(1));
    }

    #[tokio::test]
    async fn pending_is_bounded() {
        let db = db().await;
        let out = db
            .run(|c| {
                apply(
                    c,
                    &[
                        Write::Receive(report(1, 1, 2, Some("a"))),
                        Write::Receive(report(2, 1, 2, Some("b"))),
                        Write::Receive(report(3, 1, 2, Some("c"))),
                        Write::Receive(report(1, 1, 2, Some("a"))),
                    ],
                    2,
                )
            })
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![
                Outcome::Pending,
                Outcome::Pending,
                Outcome::TooManyPending,
                Outcome::Pending
            ]
        );
    }

    #[tokio::test]
    async fn latest_history_paging_and_retention() {
        let db = db().await;
        let writes: Vec<Write> = (0..25)
            .map(|i| Write::Store(report(i, 1000 + i as i64, 1, None)))
            .collect();
        db.run(move |c| apply(c, &writes, 10)).await.unwrap();
        let newest = latest(&db, "t1").await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].data.attr("value"), Some("24"));
        // Pages of 10 forward.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut set = ResultSet::page(10);
            set.after = after.clone();
            let (items, answer) = history(&db, "t1", None, None, None, Some(set))
                .await
                .unwrap();
            assert_eq!(answer.count, Some(25));
            if items.is_empty() {
                break;
            }
            seen.extend(
                items
                    .iter()
                    .map(|i| i.data.attr("value").unwrap().to_string()),
            );
            after = answer.last;
        }
        let want: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(seen, want);
        // The last page, and a time range.
        let (items, _) = history(
            &db,
            "t1",
            None,
            None,
            None,
            Some(ResultSet::page(3).before("")),
        )
        .await
        .unwrap();
        let v: Vec<_> = items
            .iter()
            .map(|i| i.data.attr("value").unwrap())
            .collect();
        assert_eq!(v, ["22", "23", "24"]);
        let (items, set) = history(&db, "t1", Some("0".into()), Some(1005), Some(1010), None)
            .await
            .unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(set.count, Some(5));
        // Retention keeps the latest value even when it is old.
        let gone = db.run(|c| prune(c, 2000)).await.unwrap();
        assert_eq!(gone, 24);
        let (items, _) = history(&db, "t1", None, None, None, None).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(latest(&db, "t1").await.unwrap().len(), 1);
    }
}
