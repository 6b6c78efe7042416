//! The archive's tables, in the server's database, and its queries.

use lithos_server::ServerHandle;
use lithos_server::storage::rusqlite::{OptionalExtension, params, params_from_iter, types::Value};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageResult};

/// The tables: messages in archive order (the row id), indexed per account and per account
/// and peer; preferences per account.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "mam",
    migrations: &["CREATE TABLE mam_messages (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            stanza_id TEXT NOT NULL,
            peer TEXT NOT NULL,
            peer_full TEXT NOT NULL,
            ts INTEGER NOT NULL,
            xml TEXT NOT NULL);
         CREATE UNIQUE INDEX mam_by_stanza_id ON mam_messages (username, stanza_id);
         CREATE INDEX mam_by_account ON mam_messages (username, id);
         CREATE INDEX mam_by_peer ON mam_messages (username, peer, id);
         CREATE INDEX mam_by_time ON mam_messages (ts);
         CREATE TABLE mam_prefs (username TEXT PRIMARY KEY, xml TEXT NOT NULL);"],
    postgres: None,
    account_deleted: &[
        "DELETE FROM mam_messages WHERE username = ?1",
        "DELETE FROM mam_prefs WHERE username = ?1",
    ],
};

/// Result sets larger than this are not counted (RSM's count and positions are left out).
pub const COUNT_CAP: usize = 10_000;

/// A message to archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The account whose archive it goes to.
    pub username: String,
    /// Its id in that archive.
    pub stanza_id: String,
    /// The other party, bare and full.
    pub peer: String,
    /// The other party's full JID (or bare, when it had no resource).
    pub peer_full: String,
    /// When, in milliseconds since the epoch.
    pub ts: i64,
    /// The message.
    pub xml: String,
}

/// What a query selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only with this bare JID (any resource)...
    pub with_bare: Option<String>,
    /// ...or only with this full JID.
    pub with_full: Option<String>,
    /// From this time (ms, inclusive).
    pub start: Option<i64>,
    /// Up to this time (ms, inclusive).
    pub end: Option<i64>,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The oldest messages.
    Start,
    /// After this stanza id.
    After(String),
    /// Before this stanza id; `""`: the newest messages.
    Before(String),
    /// At this position.
    Index(usize),
}

/// A page of results.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// `(stanza_id, ts, xml)`, oldest first.
    pub items: Vec<(String, i64, String)>,
    /// How many messages the filter selects in all, when at most [`COUNT_CAP`].
    pub count: Option<usize>,
    /// The position of the first item in the whole result.
    pub first_index: Option<usize>,
    /// Nothing more in the page's direction.
    pub complete: bool,
}

/// Why a page cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// `after` or `before` names no message of this archive.
    UnknownId,
}

/// The archive. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    db: SqliteStore,
}

impl ArchiveStore {
    /// The store of the server's database.
    pub fn of(server: &ServerHandle) -> ArchiveStore {
        ArchiveStore::new(server.storage().database().clone())
    }

    /// The store in `db`.
    pub fn new(db: SqliteStore) -> ArchiveStore {
        ArchiveStore { db }
    }

    /// Writes a batch in one transaction.
    pub async fn insert(&self, batch: Vec<Entry>) -> StorageResult<()> {
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT OR IGNORE INTO mam_messages (username, stanza_id, peer, peer_full, ts, xml)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?;
                    for e in &batch {
                        st.execute(params![e.username, e.stanza_id, e.peer, e.peer_full, e.ts, e.xml])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// One page of `username`'s archive.
    pub async fn page(
        &self,
        username: &str,
        filter: Filter,
        from: From,
        max: usize,
    ) -> StorageResult<Result<Page, PageError>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                // The filter as SQL, shared by every statement below.
                let mut cond = String::from("username = ?");
                let mut args: Vec<Value> = vec![Value::Text(u.clone())];
                if let Some(b) = &filter.with_bare {
                    cond.push_str(" AND peer = ?");
                    args.push(Value::Text(b.clone()));
                }
                if let Some(f) = &filter.with_full {
                    cond.push_str(" AND peer_full = ?");
                    args.push(Value::Text(f.clone()));
                }
                if let Some(s) = filter.start {
                    cond.push_str(" AND ts >= ?");
                    args.push(Value::Integer(s));
                }
                if let Some(e) = filter.end {
                    cond.push_str(" AND ts <= ?");
                    args.push(Value::Integer(e));
                }
                // Counting is bounded: past COUNT_CAP rows the count (and positions) are left
                // out, as RSM allows, so a page costs the same in an archive of any size.
                let count: i64 = c
                    .prepare_cached(&format!(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM mam_messages WHERE {cond} LIMIT {})",
                        COUNT_CAP + 1
                    ))?
                    .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
                let count = (count as usize <= COUNT_CAP).then_some(count as usize);
                let row_of = |sid: &str| -> lithos_server::storage::rusqlite::Result<Option<i64>> {
                    c.prepare_cached("SELECT id FROM mam_messages WHERE username = ?1 AND stanza_id = ?2")?
                        .query_row(params![u, sid], |r| r.get(0))
                        .optional()
                };
                let select = |extra: &str, order: &str, limit: usize, offset: usize, more: Vec<Value>| {
                    let sql = format!(
                        "SELECT id, stanza_id, ts, xml FROM mam_messages WHERE {cond}{extra} ORDER BY id {order} LIMIT {limit} OFFSET {offset}"
                    );
                    let mut all = args.clone();
                    all.extend(more);
                    let mut st = c.prepare_cached(&sql)?;
                    let rows = st
                        .query_map(params_from_iter(all.iter()), |r| {
                            Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })?
                        .collect::<Result<Vec<(i64, String, i64, String)>, _>>()?;
                    Ok::<_, lithos_server::storage::rusqlite::Error>(rows)
                };
                let count_before = |id: i64| -> lithos_server::storage::rusqlite::Result<usize> {
                    let mut all = args.clone();
                    all.push(Value::Integer(id));
                    let n: i64 = c
                        .prepare_cached(&format!("SELECT COUNT(*) FROM mam_messages WHERE {cond} AND id < ?"))?
                        .query_row(params_from_iter(all.iter()), |r| r.get(0))?;
                    Ok(n as usize)
                };
                // One more than asked tells whether the page is the last one.
                let (mut rows, backwards) = match &from {
                    From::Start => (select("", "ASC", max + 1, 0, vec![])?, false),
                    From::Index(i) => (select("", "ASC", max + 1, *i, vec![])?, false),
                    From::After(sid) => {
                        let Some(id) = row_of(sid)? else {
                            return Ok(Err(PageError::UnknownId));
                        };
                        (select(" AND id > ?", "ASC", max + 1, 0, vec![Value::Integer(id)])?, false)
                    }
                    From::Before(sid) if sid.is_empty() => (select("", "DESC", max + 1, 0, vec![])?, true),
                    From::Before(sid) => {
                        let Some(id) = row_of(sid)? else {
                            return Ok(Err(PageError::UnknownId));
                        };
                        (select(" AND id < ?", "DESC", max + 1, 0, vec![Value::Integer(id)])?, true)
                    }
                };
                let complete = rows.len() <= max;
                rows.truncate(max);
                if backwards {
                    rows.reverse();
                }
                // A position only where the whole count is known (so it is cheap too).
                let first_index = match rows.first() {
                    Some((id, ..)) if count.is_some() => Some(count_before(*id)?),
                    _ => None,
                };
                Ok(Ok(Page {
                    items: rows.into_iter().map(|(_, s, t, x)| (s, t, x)).collect(),
                    count,
                    first_index,
                    complete,
                }))
            })
            .await
    }

    /// Deletes everything in the archive of `username` (a room's bare JID, when the room goes).
    pub async fn forget(&self, username: &str) -> StorageResult<usize> {
        let u = username.to_string();
        self.db
            .run(
                move |c| Ok(c.execute("DELETE FROM mam_messages WHERE username = ?1", params![u])?),
            )
            .await
    }

    /// Deletes messages older than `before_ms`; returns how many.
    pub async fn expire(&self, before_ms: i64) -> StorageResult<usize> {
        self.db
            .run(move |c| {
                Ok(c.execute("DELETE FROM mam_messages WHERE ts < ?1", params![before_ms])?)
            })
            .await
    }

    /// The preferences of `username`, as XML, if set.
    pub async fn prefs(&self, username: &str) -> StorageResult<Option<String>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT xml FROM mam_prefs WHERE username = ?1",
                    params![u],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    /// Every account's preferences, as XML.
    pub async fn all_prefs(&self) -> StorageResult<Vec<(String, String)>> {
        self.db
            .run(|c| {
                Ok(c.prepare("SELECT username, xml FROM mam_prefs")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Replaces the preferences of `username`.
    pub async fn set_prefs(&self, username: &str, xml: String) -> StorageResult<()> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO mam_prefs (username, xml) VALUES (?1, ?2)
                     ON CONFLICT (username) DO UPDATE SET xml = ?2",
                    params![u, xml],
                )?;
                Ok(())
            })
            .await
    }
}
