//! Where reports live: the module's tables in the server's SQLite database, and the
//! history's newest part in memory.
//!
//! - `report_history`: every stored report, in arrival order (`id`), with the QoS 2
//!   `report_id`, unique per thing and node: what makes a re-sent QoS 2 report a duplicate,
//!   for as long as the history keeps it.
//! - `report_index`: the history by thing, `(thing, id)`, filled in bulk (below).
//! - `report_indexed`: the highest id in `report_index`.
//! - `report_latest`: the newest report per thing, node and data type, as of `upto`.
//! - `report_pending`: QoS 2 reports received and not yet delivered.
//!
//! Writes come in batches ([`ReportStore::apply`]), each one transaction: the server's
//! writer commits many reports with one `fsync` (group commit) and acknowledges them after
//! the commit. A commit appends to `report_history` only: the rows
//! past `upto` are the tail (`src/tail.rs`), held in memory by thing and merged into every
//! answer. Once the tail holds `index_every` rows ([`ReportStore::needs_indexing`]), one
//! transaction ([`ReportStore::index`]) adds them to `report_index` sorted by thing and
//! writes the newest values into `report_latest`. After a restart the tail is read back from
//! the rows past `upto`: nothing acknowledged depends on memory.

use std::sync::{Arc, Mutex, MutexGuard};

use lithos_core::{ByteString, Element};
use lithos_rsm::ResultSet;
use lithos_server::storage::rusqlite::{self, Connection, OptionalExtension, params};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageError, StorageResult};

use crate::Item;
use crate::tail::{Row, Tail};

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
        // 2: the index by thing filled in bulk instead of on every insert.
        "CREATE TABLE report_index (
            thing TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (thing, id)
         ) WITHOUT ROWID;
         INSERT INTO report_index (thing, id) SELECT thing, id FROM report_history
            ORDER BY thing, id;
         DROP INDEX report_history_by_thing;
         DROP INDEX report_history_by_stamp;
         CREATE TABLE report_indexed (upto INTEGER NOT NULL);
         INSERT INTO report_indexed (upto) SELECT COALESCE(MAX(id), 0) FROM report_history;",
    ],
    // A thing's account deleted: its reports go with it (the indexed ones found through the
    // index, the tail's among the few rows past it).
    postgres: None,
    account_deleted: &[
        "DELETE FROM report_history WHERE id IN (SELECT id FROM report_index WHERE thing = ?1)",
        "DELETE FROM report_history
         WHERE id > (SELECT upto FROM report_indexed) AND thing = ?1",
        "DELETE FROM report_index WHERE thing = ?1",
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

/// The default of [`ReportStore::new`]'s `index_every`.
pub const INDEX_EVERY: usize = 65_536;

/// The report tables and the history's tail: every access holds the database connection,
/// then the tail (`src/tail.rs`).
#[derive(Debug, Clone)]
pub struct ReportStore {
    db: SqliteStore,
    tail: Arc<Mutex<Tail>>,
    index_every: usize,
}

/// A row stored by a batch, for the tail once the batch is committed.
struct Stored {
    thing: String,
    row: Row,
    /// The data's namespace and name (shared with the element: no copy per report).
    ns: ByteString,
    name: ByteString,
}

/// Where a report goes in the history: thing, node, QoS and QoS 2 id.
struct Key<'a>(&'a str, &'a str, u8, Option<&'a str>);

fn insert_history(
    c: &Connection,
    Key(thing, node, qos, report_id): Key<'_>,
    stamp_ms: i64,
    data: &Element,
    xml: String,
    stored: &mut Vec<Stored>,
) -> rusqlite::Result<Item> {
    c.prepare_cached(
        "INSERT INTO report_history (thing, node, stamp_ms, qos, report_id, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![thing, node, stamp_ms, qos, report_id, xml])?;
    let id = c.last_insert_rowid();
    stored.push(Stored {
        thing: thing.to_string(),
        row: Row {
            id,
            node: node.into(),
            stamp_ms,
            xml: xml.into(),
        },
        ns: data.ns_shared().clone(),
        name: data.name_shared().clone(),
    });
    Ok(Item {
        id,
        node: node.to_string(),
        stamp_ms,
        data: data.clone(),
    })
}

fn one(
    c: &Connection,
    w: &Write,
    max_pending: usize,
    stored: &mut Vec<Stored>,
) -> rusqlite::Result<Outcome> {
    match w {
        Write::Store(r) => insert_history(
            c,
            Key(&r.thing, &r.node, r.qos, r.report_id.as_deref()),
            r.stamp_ms,
            &r.data,
            r.data.to_xml(),
            stored,
        )
        .map(Outcome::Stored),
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
            let data = parse_stored(&xml)?;
            insert_history(
                c,
                Key(thing, node, 2, Some(report_id)),
                stamp_ms,
                &data,
                xml,
                stored,
            )
            .map(Outcome::Stored)
        }
    }
}

fn parse_stored(xml: &str) -> rusqlite::Result<Element> {
    Element::parse(xml).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn lock(tail: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the tail back from the rows past the index, once after a start.
fn load(c: &Connection, tail: &mut Tail) -> rusqlite::Result<()> {
    if tail.loaded {
        return Ok(());
    }
    let upto: i64 = c.query_row("SELECT upto FROM report_indexed", [], |r| r.get(0))?;
    let mut st = c.prepare(
        "SELECT id, thing, node, stamp_ms, data FROM report_history WHERE id > ?1 ORDER BY id",
    )?;
    let mut rows = st.query(params![upto])?;
    let mut fresh = Tail {
        upto,
        ..Tail::default()
    };
    while let Some(r) = rows.next()? {
        let (thing, xml): (String, String) = (r.get(1)?, r.get(4)?);
        let data = parse_stored(&xml)?;
        let row = Row {
            id: r.get(0)?,
            node: r.get::<_, String>(2)?.into(),
            stamp_ms: r.get(3)?,
            xml: xml.into(),
        };
        fresh.push(&thing, row, data.ns(), data.name());
    }
    fresh.loaded = true;
    *tail = fresh;
    Ok(())
}

/// Moves the tail into `report_index` (sorted by thing) and its newest values into
/// `report_latest`, in one transaction; gives how many rows it indexed.
fn index_tail(c: &mut Connection, tail: &mut Tail) -> rusqlite::Result<usize> {
    load(c, tail)?;
    let Some(top) = tail
        .things
        .values()
        .filter_map(|t| t.rows.last().map(|r| r.id))
        .max()
    else {
        return Ok(0);
    };
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO report_index (thing, id)
         SELECT thing, id FROM report_history WHERE id > ?1 AND id <= ?2 ORDER BY thing, id",
        params![tail.upto, top],
    )?;
    {
        // Only for rows still there: an account deleted meanwhile took its rows.
        let mut upsert = tx.prepare_cached(
            "INSERT INTO report_latest (thing, node, ns, name, history_id, stamp_ms, data)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE EXISTS (SELECT 1 FROM report_history WHERE id = ?5)
             ON CONFLICT (thing, node, ns, name)
             DO UPDATE SET history_id = ?5, stamp_ms = ?6, data = ?7",
        )?;
        let mut things: Vec<_> = tail.things.iter().collect();
        things.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (thing, t) in things {
            for n in &t.newest {
                let r = &t.rows[n.at];
                let (node, ns, name) = (&*n.key.0, &*n.key.1, &*n.key.2);
                upsert.execute(params![thing, node, ns, name, r.id, r.stamp_ms, &*r.xml])?;
            }
        }
    }
    tx.execute("UPDATE report_indexed SET upto = ?1", params![top])?;
    tx.commit()?;
    let n = tail.len;
    tail.indexed(top);
    Ok(n)
}

/// The last history id stored before `before_ms`, found by bisection on the ids: ids grow
/// with arrival, and so do stamps (a QoS 2 report keeps the stamp of its first phase, a
/// little older than its neighbours': such a row is pruned by a later pass). An index on
/// stamps, written on every insert, would cost each report more than pruning ever saves.
fn last_older_than(c: &Connection, before_ms: i64) -> rusqlite::Result<Option<i64>> {
    // The first row at or after an id, with its stamp.
    let mut at = c.prepare_cached(
        "SELECT id, stamp_ms FROM report_history WHERE id >= ?1 ORDER BY id LIMIT 1",
    )?;
    let mut first_from = |id: i64| -> rusqlite::Result<Option<(i64, i64)>> {
        at.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    };
    let Some((mut lo, stamp)) = first_from(i64::MIN)? else {
        return Ok(None);
    };
    if stamp >= before_ms {
        return Ok(None);
    }
    let hi_row: Option<i64> =
        c.query_row("SELECT MAX(id) FROM report_history", [], |r| r.get(0))?;
    // Invariant: the row `lo` is older than `before_ms`; every row above `hi` is not.
    let mut hi = hi_row.unwrap_or(lo);
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        match first_from(mid)? {
            Some((id, stamp)) if id <= hi && stamp < before_ms => lo = id,
            _ => hi = mid - 1,
        }
    }
    Ok(Some(lo))
}

/// The filter of history queries: `?1` thing, `?2` node or NULL, `?3`..`?4` stamps.
const FILTER: &str = "x.thing = ?1 AND (?2 IS NULL OR h.node = ?2)
     AND h.stamp_ms >= ?3 AND h.stamp_ms < ?4";

type RawItem = (i64, String, i64, String);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_item((id, node, stamp_ms, xml): RawItem) -> StorageResult<Item> {
    let data = Element::parse(&xml)
        .map_err(|e| StorageError::caused_by(format!("stored report {id} is not XML"), e))?;
    Ok(Item {
        id,
        node,
        stamp_ms,
        data,
    })
}

fn raw_of(r: &Row) -> RawItem {
    (r.id, r.node.to_string(), r.stamp_ms, r.xml.to_string())
}

/// The most items a history page holds.
pub const MAX_PAGE: usize = 500;

impl ReportStore {
    /// The report tables of `db`; the tail is indexed once it holds `index_every` rows.
    pub fn new(db: SqliteStore, index_every: usize) -> ReportStore {
        ReportStore {
            db,
            tail: Arc::default(),
            index_every: index_every.max(1),
        }
    }

    /// Applies `writes` in one transaction; each gets its outcome. `max_pending` bounds the
    /// QoS 2 reports pending per thing. Nothing is written if it fails.
    pub async fn apply(
        &self,
        writes: Vec<Write>,
        max_pending: usize,
    ) -> StorageResult<Vec<Outcome>> {
        let tail = self.tail.clone();
        self.db
            .run(move |c| {
                let mut tail = lock(&tail);
                load(c, &mut tail)?;
                let tx = c.transaction()?;
                let mut out = Vec::with_capacity(writes.len());
                let mut stored = Vec::with_capacity(writes.len());
                for w in &writes {
                    out.push(one(&tx, w, max_pending, &mut stored)?);
                }
                tx.commit()?;
                for s in stored {
                    tail.push(&s.thing, s.row, &s.ns, &s.name);
                }
                Ok(out)
            })
            .await
    }

    /// Whether the tail holds enough rows to be indexed.
    pub fn needs_indexing(&self) -> bool {
        lock(&self.tail).len >= self.index_every
    }

    /// Indexes the tail now; gives how many rows went into the index.
    pub async fn index(&self) -> StorageResult<usize> {
        let tail = self.tail.clone();
        self.db
            .run(move |c| Ok(index_tail(c, &mut lock(&tail))?))
            .await
    }

    /// Forgets what the tail holds of `thing`, whose account was deleted (with its rows).
    pub fn forget(&self, thing: &str) {
        lock(&self.tail).forget(thing);
    }

    /// Deletes the history older than `before_ms` (keeping every latest value) and pending
    /// reports never delivered since then; returns how many rows went. Indexes the tail
    /// first, so what is deleted is deleted from the index too.
    pub async fn prune(&self, before_ms: i64) -> StorageResult<usize> {
        let tail = self.tail.clone();
        self.db
            .run(move |c| {
                index_tail(c, &mut lock(&tail))?;
                let tx = c.transaction()?;
                let mut n = 0;
                if let Some(last) = last_older_than(&tx, before_ms)? {
                    tx.execute(
                        "DELETE FROM report_index WHERE (thing, id) IN (
                            SELECT thing, id FROM report_history
                            WHERE id <= ?2 AND stamp_ms < ?1
                            AND id NOT IN (SELECT history_id FROM report_latest))",
                        params![before_ms, last],
                    )?;
                    n += tx.execute(
                        "DELETE FROM report_history WHERE id <= ?2 AND stamp_ms < ?1
                         AND id NOT IN (SELECT history_id FROM report_latest)",
                        params![before_ms, last],
                    )?;
                }
                n += tx.execute(
                    "DELETE FROM report_pending WHERE stamp_ms < ?1",
                    params![before_ms],
                )?;
                tx.commit()?;
                Ok(n)
            })
            .await
    }

    /// The newest report per node and data type of `thing`, by node then data type.
    pub async fn latest(&self, thing: &str) -> StorageResult<Vec<Item>> {
        let (thing, tail) = (thing.to_string(), self.tail.clone());
        let rows = self
            .db
            .run(move |c| {
                let tail = &mut lock(&tail);
                load(c, tail)?;
                let mut st = c.prepare_cached(
                    "SELECT node, ns, name, history_id, stamp_ms, data FROM report_latest
                     WHERE thing = ?1",
                )?;
                let mut rows: Vec<((String, String, String), RawItem)> = st
                    .query_map(params![thing], |r| {
                        Ok((
                            (r.get(0)?, r.get(1)?, r.get(2)?),
                            (r.get(3)?, r.get(0)?, r.get(4)?, r.get(5)?),
                        ))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                if let Some(t) = tail.of(&thing) {
                    for n in &t.newest {
                        let newer = raw_of(&t.rows[n.at]);
                        let (node, ns, name) = (&*n.key.0, &*n.key.1, &*n.key.2);
                        match rows
                            .iter_mut()
                            .find(|(k, _)| k.0 == node && k.1 == ns && k.2 == name)
                        {
                            Some((_, old)) => *old = newer,
                            None => rows.push(((node.into(), ns.into(), name.into()), newer)),
                        }
                    }
                }
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(|(_, r)| to_item(r)).collect()
    }

    /// A page of `thing`'s history: `node` (all when `None`), stamps in `[start, end)`, and
    /// `set` (after / before an item id, at most `max`, default and cap [`MAX_PAGE`]). The
    /// answer's set holds the page's first and last ids and the count of the whole range.
    pub async fn history(
        &self,
        thing: &str,
        node: Option<String>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        set: Option<ResultSet>,
    ) -> StorageResult<(Vec<Item>, ResultSet)> {
        let (thing, tail) = (thing.to_string(), self.tail.clone());
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
        let (rows, count) = self
            .db
            .run(move |c| {
                let tail = &mut lock(&tail);
                load(c, tail)?;
                let (lo, hi) = (start_ms.unwrap_or(i64::MIN), end_ms.unwrap_or(i64::MAX));
                // The tail's rows in the range, oldest first (all newer than the index's).
                let recent: Vec<&Row> = tail
                    .of(&thing)
                    .map(|t| {
                        t.rows
                            .iter()
                            .filter(|r| {
                                node.as_deref().is_none_or(|n| *r.node == *n)
                                    && r.stamp_ms >= lo
                                    && r.stamp_ms < hi
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let indexed: i64 = c.query_row(
                    &format!(
                        "SELECT COUNT(*) FROM report_index x
                         JOIN report_history h ON h.id = x.id WHERE {FILTER}"
                    ),
                    params![thing, node, lo, hi],
                    |r| r.get(0),
                )?;
                let count = indexed as usize + recent.len();
                let rows: Vec<RawItem> = match before {
                    // A page ending before an item (or the last page): the newest first from
                    // the tail, then from the index, then turned.
                    Some(b) => {
                        let b = b.unwrap_or(i64::MAX);
                        let mut page: Vec<RawItem> = recent
                            .iter()
                            .rev()
                            .filter(|r| r.id < b)
                            .take(max)
                            .map(|r| raw_of(r))
                            .collect();
                        if page.len() < max {
                            let mut st = c.prepare_cached(&format!(
                                "SELECT h.id, h.node, h.stamp_ms, h.data FROM report_index x
                                 JOIN report_history h ON h.id = x.id
                                 WHERE {FILTER} AND x.id < ?5 ORDER BY x.id DESC LIMIT ?6"
                            ))?;
                            let more = st.query_map(
                                params![thing, node, lo, hi, b, (max - page.len()) as i64],
                                raw,
                            )?;
                            for r in more {
                                page.push(r?);
                            }
                        }
                        page.reverse();
                        page
                    }
                    None => {
                        let a = after.unwrap_or(i64::MIN);
                        let mut st = c.prepare_cached(&format!(
                            "SELECT h.id, h.node, h.stamp_ms, h.data FROM report_index x
                             JOIN report_history h ON h.id = x.id
                             WHERE {FILTER} AND x.id > ?5 ORDER BY x.id LIMIT ?6"
                        ))?;
                        let mut page = st
                            .query_map(params![thing, node, lo, hi, a, max as i64], raw)?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        let room = max - page.len();
                        page.extend(
                            recent
                                .iter()
                                .filter(|r| r.id > a)
                                .take(room)
                                .map(|r| raw_of(r)),
                        );
                        page
                    }
                };
                Ok((rows, count))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: u32) -> Element {
        Element::builder("celsius-degree", "urn:t")
            .attr("value", v.to_string())
            .build()
    }

    fn report_of(
        thing: &str,
        v: u32,
        stamp_ms: i64,
        qos: u8,
        report_id: Option<&str>,
    ) -> NewReport {
        NewReport {
            thing: thing.into(),
            node: "0".into(),
            qos,
            report_id: report_id.map(str::to_string),
            stamp_ms,
            data: data(v),
        }
    }

    fn report(v: u32, stamp_ms: i64, qos: u8, report_id: Option<&str>) -> NewReport {
        report_of("t1", v, stamp_ms, qos, report_id)
    }

    fn store(index_every: usize) -> ReportStore {
        ReportStore::new(SqliteStore::in_memory().unwrap(), index_every)
    }

    fn values(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| i.data.attr("value").unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn exactly_once_in_two_phases() {
        let s = store(INDEX_EVERY);
        let rel = || Write::Release {
            thing: "t1".into(),
            node: "0".into(),
            report_id: "a".into(),
        };
        let out = s
            .apply(
                vec![
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
            .await
            .unwrap();
        assert_eq!(out[0], Outcome::Pending);
        assert_eq!(out[1], Outcome::Pending);
        assert!(matches!(&out[2], Outcome::Stored(i) if i.stamp_ms == 10));
        assert_eq!(out[3], Outcome::NothingToRelease);
        assert_eq!(out[4], Outcome::Pending);
        assert_eq!(out[5], Outcome::NothingToRelease);
        // Once indexed too.
        s.index().await.unwrap();
        let out = s
            .apply(vec![Write::Receive(report(1, 13, 2, Some("a"))), rel()], 10)
            .await
            .unwrap();
        assert_eq!(out, [Outcome::Pending, Outcome::NothingToRelease]);
        let (items, set) = s.history("t1", None, None, None, None).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(set.count, Some(1));
    }

    #[tokio::test]
    async fn pending_is_bounded() {
        let s = store(INDEX_EVERY);
        let out = s
            .apply(
                vec![
                    Write::Receive(report(1, 1, 2, Some("a"))),
                    Write::Receive(report(2, 1, 2, Some("b"))),
                    Write::Receive(report(3, 1, 2, Some("c"))),
                    Write::Receive(report(1, 1, 2, Some("a"))),
                ],
                2,
            )
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

    /// 25 reports of t1 (values 0..25, stamps 1000..1025) among another thing's, indexed
    /// after `indexed_after` of them (all in the tail when 25 or more).
    async fn filled(indexed_after: usize) -> ReportStore {
        let s = store(INDEX_EVERY);
        for i in 0..25u32 {
            let writes = vec![
                Write::Store(report(i, 1000 + i64::from(i), 1, None)),
                Write::Store(report_of("t2", 100 + i, 1000 + i64::from(i), 1, None)),
            ];
            s.apply(writes, 10).await.unwrap();
            if i as usize + 1 == indexed_after {
                assert_eq!(s.index().await.unwrap(), 2 * indexed_after);
            }
        }
        s
    }

    async fn check_queries(s: &ReportStore, state: &str) {
        let newest = s.latest("t1").await.unwrap();
        assert_eq!(values(&newest), ["24"], "{state}");
        // Pages of 10 forward.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut set = ResultSet::page(10);
            set.after = after.clone();
            let (items, answer) = s.history("t1", None, None, None, Some(set)).await.unwrap();
            assert_eq!(answer.count, Some(25), "{state}");
            if items.is_empty() {
                break;
            }
            seen.extend(values(&items));
            after = answer.last;
        }
        let want: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(seen, want, "{state}");
        // Pages of 10 backward, from the end.
        let mut seen = Vec::new();
        let mut before = String::new();
        loop {
            let set = ResultSet::page(10).before(&before);
            let (items, answer) = s.history("t1", None, None, None, Some(set)).await.unwrap();
            if items.is_empty() {
                break;
            }
            let mut v = values(&items);
            v.extend(seen);
            seen = v;
            before = answer.first.unwrap().0;
        }
        assert_eq!(seen, want, "{state}");
        // A time range across both parts, and a node that did not report.
        let (items, set) = s
            .history("t1", Some("0".into()), Some(1005), Some(1015), None)
            .await
            .unwrap();
        assert_eq!(
            values(&items),
            (5..15).map(|i| i.to_string()).collect::<Vec<_>>(),
            "{state}"
        );
        assert_eq!(set.count, Some(10), "{state}");
        let (items, set) = s
            .history("t1", Some("7".into()), None, None, None)
            .await
            .unwrap();
        assert!(items.is_empty(), "{state}");
        assert_eq!(set.count, Some(0), "{state}");
        // The other thing's are its own.
        let (items, _) = s
            .history("t2", None, None, None, Some(ResultSet::page(2)))
            .await
            .unwrap();
        assert_eq!(values(&items), ["100", "101"], "{state}");
    }

    #[tokio::test]
    async fn queries_read_the_index_and_the_tail_alike() {
        for indexed_after in [0, 1, 7, 10, 15, 24, 25] {
            let s = filled(indexed_after).await;
            check_queries(&s, &format!("indexed after {indexed_after}")).await;
            // And once everything is indexed.
            s.index().await.unwrap();
            check_queries(&s, &format!("all indexed, after {indexed_after}")).await;
        }
    }

    #[tokio::test]
    async fn the_tail_comes_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let s = ReportStore::new(SqliteStore::open(&path).unwrap(), INDEX_EVERY);
            for i in 0..25u32 {
                let w = vec![
                    Write::Store(report(i, 1000 + i64::from(i), 1, None)),
                    Write::Store(report_of("t2", 100 + i, 1000 + i64::from(i), 1, None)),
                ];
                s.apply(w, 10).await.unwrap();
                if i == 9 {
                    s.index().await.unwrap();
                }
            }
        }
        let s = ReportStore::new(SqliteStore::open(&path).unwrap(), INDEX_EVERY);
        check_queries(&s, "after a restart").await;
        assert_eq!(s.index().await.unwrap(), 30, "the tail was read back");
        check_queries(&s, "indexed after a restart").await;
    }

    #[tokio::test]
    async fn the_tail_is_indexed_once_it_is_long_enough() {
        let s = store(4);
        for i in 0..3u32 {
            s.apply(
                vec![Write::Store(report(i, 1000 + i64::from(i), 1, None))],
                10,
            )
            .await
            .unwrap();
            assert!(!s.needs_indexing());
        }
        s.apply(vec![Write::Store(report(3, 1003, 1, None))], 10)
            .await
            .unwrap();
        assert!(s.needs_indexing());
        assert_eq!(s.index().await.unwrap(), 4);
        assert!(!s.needs_indexing());
        assert_eq!(s.index().await.unwrap(), 0, "nothing left");
        assert_eq!(values(&s.latest("t1").await.unwrap()), ["3"]);
    }

    #[tokio::test]
    async fn retention_keeps_latest_values_and_the_index_in_step() {
        for indexed_after in [0, 10, 25] {
            let s = filled(indexed_after).await;
            // Everything of t1 and t2 older than 1020 but each one's latest value.
            let gone = s.prune(1020).await.unwrap();
            assert_eq!(gone, 40, "indexed after {indexed_after}");
            let (items, set) = s.history("t1", None, None, None, None).await.unwrap();
            assert_eq!(values(&items), ["20", "21", "22", "23", "24"]);
            assert_eq!(set.count, Some(5));
            assert_eq!(values(&s.latest("t1").await.unwrap()), ["24"]);
            let orphans: i64 =
                s.db.run(|c| {
                    Ok(c.query_row(
                        "SELECT COUNT(*) FROM report_index
                         WHERE id NOT IN (SELECT id FROM report_history)",
                        [],
                        |r| r.get(0),
                    )?)
                })
                .await
                .unwrap();
            assert_eq!(orphans, 0, "the index lost the pruned rows");
        }
    }

    #[tokio::test]
    async fn the_prune_bisection_finds_the_last_older_row() {
        let s = store(INDEX_EVERY);
        // Stamps 1000, 1010, ..., with gaps in the ids (deleted rows), and one QoS 2 row
        // older than its neighbours.
        let mut writes: Vec<Write> = (0..50u32)
            .map(|i| Write::Store(report(i, 1000 + 10 * i64::from(i), 1, None)))
            .collect();
        writes.insert(30, Write::Store(report(99, 1005, 2, Some("late"))));
        s.apply(writes, 10).await.unwrap();
        s.db.run(|c| Ok(c.execute("DELETE FROM report_history WHERE id % 7 = 0", [])?))
            .await
            .unwrap();
        for before in [
            0, 1000, 1001, 1010, 1011, 1095, 1200, 1300, 1490, 1491, 5000,
        ] {
            let want: Option<i64> =
                s.db.run(move |c| {
                    // The last id before the first row at or past `before`, in id order,
                    // ignoring the out-of-order row.
                    let mut st = c.prepare(
                        "SELECT id, stamp_ms FROM report_history WHERE report_id IS NULL
                         ORDER BY id",
                    )?;
                    let rows: Vec<(i64, i64)> = st
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    Ok(rows.iter().take_while(|r| r.1 < before).last().map(|r| r.0))
                })
                .await
                .unwrap();
            let got =
                s.db.run(move |c| Ok(last_older_than(c, before)?))
                    .await
                    .unwrap();
            // The QoS 2 row (id 31) may stand in for its neighbour 30 when that is the
            // answer, as both are older than `before` then.
            assert!(
                got == want || (want == Some(30) && got == Some(31)),
                "before {before}: {got:?}, want {want:?}"
            );
        }
        assert_eq!(
            s.db.run(|c| Ok(last_older_than(c, 1)?)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_deleted_things_rows_go_from_the_index_and_the_tail() {
        let s = filled(10).await;
        let statements = SCHEMA.account_deleted;
        s.db.run(move |c| {
            for sql in statements {
                c.execute(sql, params!["t1"])?;
            }
            Ok(())
        })
        .await
        .unwrap();
        s.forget("t1");
        let (items, set) = s.history("t1", None, None, None, None).await.unwrap();
        assert!(items.is_empty());
        assert_eq!(set.count, Some(0));
        assert!(s.latest("t1").await.unwrap().is_empty());
        s.index().await.unwrap();
        assert!(
            s.latest("t1").await.unwrap().is_empty(),
            "no latest value came back"
        );
        let (items, _) = s.history("t2", None, None, None, None).await.unwrap();
        assert_eq!(items.len(), 25);
    }

    #[tokio::test]
    async fn an_older_database_gets_its_index_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            // Schema 1 and rows as the previous release wrote them.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA.migrations[0]).unwrap();
            c.execute_batch(
                "CREATE TABLE module_schemas (module TEXT PRIMARY KEY, version INTEGER NOT NULL);
                 INSERT INTO module_schemas VALUES ('tuxp-report', 1);",
            )
            .unwrap();
            for i in 0..5 {
                c.execute(
                    "INSERT INTO report_history (thing, node, stamp_ms, qos, data)
                     VALUES ('t1', '0', ?1, 1, ?2)",
                    params![1000 + i, data(i as u32).to_xml()],
                )
                .unwrap();
            }
        }
        let s = ReportStore::new(SqliteStore::open(&path).unwrap(), INDEX_EVERY);
        let (items, set) = s.history("t1", None, None, None, None).await.unwrap();
        assert_eq!(values(&items), ["0", "1", "2", "3", "4"]);
        assert_eq!(set.count, Some(5));
        assert_eq!(s.index().await.unwrap(), 0, "nothing in the tail");
    }
}
