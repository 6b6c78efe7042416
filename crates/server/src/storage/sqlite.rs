//! The embedded store: one SQLite database file in the data directory, WAL mode, full sync.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AccountStore, OfflineMessage, OfflineQuota, OfflineStore, RosterItem, RosterStore,
    StorageError, StorageResult, Subscription,
};
use crate::sasl::{Credentials, ScramCredential};
use lithos_core::datetime::now_ms;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, rosters, pending subscriptions, offline messages.
    "CREATE TABLE accounts (
        username TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        sha1_salt BLOB NOT NULL, sha1_iterations INTEGER NOT NULL,
        sha1_stored_key BLOB NOT NULL, sha1_server_key BLOB NOT NULL,
        sha256_salt BLOB NOT NULL, sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB NOT NULL, sha256_server_key BLOB NOT NULL
     );
     CREATE TABLE roster_versions (username TEXT PRIMARY KEY, version INTEGER NOT NULL);
     CREATE TABLE roster_items (
        username TEXT NOT NULL, contact TEXT NOT NULL, name TEXT,
        subscription TEXT NOT NULL, ask INTEGER NOT NULL, approved INTEGER NOT NULL,
        groups TEXT NOT NULL,
        PRIMARY KEY (username, contact)
     );
     CREATE TABLE pending_subscriptions (
        username TEXT NOT NULL, contact TEXT NOT NULL, stanza TEXT NOT NULL,
        PRIMARY KEY (username, contact)
     );
     CREATE TABLE offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL, stamp_ms INTEGER NOT NULL, stanza TEXT NOT NULL
     );
     CREATE INDEX offline_by_user ON offline_messages (username, id);",
    // 2: each offline message's size, so an account's quota counts bytes as well as
    // messages; the index covers both, so checking a quota reads no message.
    "ALTER TABLE offline_messages ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     UPDATE offline_messages SET size = length(CAST(stanza AS BLOB));
     DROP INDEX offline_by_user;
     CREATE INDEX offline_by_user ON offline_messages (username, id, size);
     CREATE INDEX offline_by_stamp ON offline_messages (stamp_ms);",
    // 3: names of deleted accounts, kept for a while so that nobody inherits what others
    // granted them; contacts looked up by JID when an account goes.
    "CREATE TABLE account_tombstones (username TEXT PRIMARY KEY, deleted_ms INTEGER NOT NULL);
     CREATE INDEX roster_by_contact ON roster_items (contact);
     CREATE INDEX pending_by_contact ON pending_subscriptions (contact);",
];

/// What an account's deletion does to the kernel's tables, before the modules' statements:
/// `?1` the name, `?2` the bare JID.
const ACCOUNT_DELETED: &[&str] = &[
    "DELETE FROM roster_items WHERE username = ?1",
    "DELETE FROM roster_versions WHERE username = ?1",
    "DELETE FROM pending_subscriptions WHERE username = ?1",
    "DELETE FROM offline_messages WHERE username = ?1",
    // Others' rosters keep the contact but no subscription either way: a new account of the
    // same name must not receive their presence, nor pass for their trusted contact.
    "UPDATE roster_versions SET version = version + 1 WHERE username IN
        (SELECT username FROM roster_items WHERE contact = ?2
            AND (subscription != 'none' OR ask != 0 OR approved != 0))",
    "UPDATE roster_items SET subscription = 'none', ask = 0, approved = 0 WHERE contact = ?2",
    "DELETE FROM pending_subscriptions WHERE contact = ?2",
    "INSERT INTO account_tombstones (username, deleted_ms) VALUES (?1, ?3)
        ON CONFLICT (username) DO UPDATE SET deleted_ms = ?3",
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// How long a deleted account's name stays taken, in seconds.
    tombstone_secs: Arc<std::sync::atomic::AtomicU64>,
}

/// The default of `[accounts] tombstone_secs`.
const TOMBSTONE_SECS: u64 = 30 * 24 * 3600;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn lock(c: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> StorageResult<SqliteStore> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> StorageResult<SqliteStore> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> StorageResult<SqliteStore> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(StorageError::backend(format!(
                "the database has schema version {version}, newer than this server knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Self::module_migrations(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            tombstone_secs: Arc::new(TOMBSTONE_SECS.into()),
        })
    }

    /// Sets how long a deleted account's name cannot be created again (`[accounts]
    /// tombstone_secs`; 30 days unless set).
    pub fn set_tombstone_secs(&self, secs: u64) {
        self.tombstone_secs
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// The oldest deletion whose tombstone still stands, in milliseconds since the epoch.
    fn tombstone_cutoff(&self) -> i64 {
        let secs = self
            .tombstone_secs
            .load(std::sync::atomic::Ordering::Relaxed);
        now_ms().saturating_sub(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
    }

    /// Applies every linked module's migrations that have not run yet.
    fn module_migrations(conn: &mut Connection) -> StorageResult<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS module_schemas (
                module TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        )?;
        let mut schemas: Vec<&super::ModuleSchema> =
            inventory::iter::<super::ModuleSchema>.into_iter().collect();
        schemas.sort_by_key(|s| s.module);
        for s in schemas {
            let done: i64 = conn
                .query_row(
                    "SELECT version FROM module_schemas WHERE module = ?1",
                    params![s.module],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            let done = usize::try_from(done).unwrap_or(0);
            if done > s.migrations.len() {
                return Err(StorageError::backend(format!(
                    "module {} has schema version {done}, newer than this server knows ({})",
                    s.module,
                    s.migrations.len()
                )));
            }
            for (i, sql) in s.migrations.iter().enumerate().skip(done) {
                let tx = conn.transaction()?;
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO module_schemas (module, version) VALUES (?1, ?2)
                     ON CONFLICT (module) DO UPDATE SET version = ?2",
                    params![s.module, (i + 1) as i64],
                )?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// Runs `f` on the connection on a blocking thread, for modules with their own tables
    /// ([`ModuleSchema`](super::ModuleSchema)). Every write `f` commits is durable when it
    /// returns (full synchronisation).
    pub async fn run<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StorageResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
                .await
                .map_err(|e| StorageError::Backend(Box::new(e)))?,
            Err(_) => f(&mut lock(&conn)),
        }
    }

    /// Copies the write-ahead log into the database file.
    pub async fn checkpoint(&self) -> StorageResult<()> {
        self.run(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

fn bump_version(c: &Connection, username: &str) -> StorageResult<u64> {
    c.execute(
        "INSERT INTO roster_versions (username, version) VALUES (?1, 1)
         ON CONFLICT (username) DO UPDATE SET version = version + 1",
        params![username],
    )?;
    let v: i64 = c.query_row(
        "SELECT version FROM roster_versions WHERE username = ?1",
        params![username],
        |r| r.get(0),
    )?;
    Ok(v as u64)
}

fn row_to_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<RosterItem> {
    let groups: String = r.get(5)?;
    let sub: String = r.get(2)?;
    Ok(RosterItem {
        jid: r.get(0)?,
        name: r.get(1)?,
        subscription: Subscription::parse(&sub).unwrap_or_default(),
        ask: r.get::<_, i64>(3)? != 0,
        approved: r.get::<_, i64>(4)? != 0,
        groups: if groups.is_empty() {
            vec![]
        } else {
            groups.split('\n').map(String::from).collect()
        },
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, username: &str, creds: &Credentials) -> StorageResult<()> {
        let (u, c) = (username.to_string(), creds.clone());
        let cutoff = self.tombstone_cutoff();
        self.run(move |conn| {
            let now = now_ms();
            let tx = conn.transaction()?;
            let buried: bool = tx
                .query_row(
                    "SELECT 1 FROM account_tombstones WHERE username = ?1 AND deleted_ms > ?2",
                    params![u, cutoff],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if buried {
                return Err(StorageError::AlreadyExists);
            }
            let r = tx.execute(
                "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    u,
                    now,
                    c.sha1.salt,
                    c.sha1.iterations,
                    c.sha1.stored_key,
                    c.sha1.server_key,
                    c.sha256.salt,
                    c.sha256.iterations,
                    c.sha256.stored_key,
                    c.sha256.server_key
                ],
            );
            match r {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StorageError::AlreadyExists);
                }
                Err(e) => return Err(e.into()),
            }
            tx.execute(
                "DELETE FROM account_tombstones WHERE username = ?1",
                params![u],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_credentials(&self, username: &str, creds: &Credentials) -> StorageResult<()> {
        let (u, c) = (username.to_string(), creds.clone());
        self.run(move |conn| {
            let n = conn.execute(
                "UPDATE accounts SET sha1_salt = ?2, sha1_iterations = ?3, sha1_stored_key = ?4,
                   sha1_server_key = ?5, sha256_salt = ?6, sha256_iterations = ?7,
                   sha256_stored_key = ?8, sha256_server_key = ?9 WHERE username = ?1",
                params![
                    u,
                    c.sha1.salt,
                    c.sha1.iterations,
                    c.sha1.stored_key,
                    c.sha1.server_key,
                    c.sha256.salt,
                    c.sha256.iterations,
                    c.sha256.stored_key,
                    c.sha256.server_key
                ],
            )?;
            if n == 0 {
                Err(StorageError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn delete_account(&self, username: &str, domain: &str) -> StorageResult<()> {
        let u = username.to_string();
        let bare = format!("{username}@{domain}");
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute("DELETE FROM accounts WHERE username = ?1", params![u])?;
            if n == 0 {
                return Err(StorageError::NotFound);
            }
            let now = now_ms();
            for sql in ACCOUNT_DELETED {
                let mut st = tx.prepare(sql)?;
                // Each statement names the parameters it uses; bind only those.
                let n = st.parameter_count();
                let all: [&dyn rusqlite::ToSql; 3] = [&u, &bare, &now];
                st.execute(&all[..n])?;
            }
            let mut schemas: Vec<&super::ModuleSchema> =
                inventory::iter::<super::ModuleSchema>.into_iter().collect();
            schemas.sort_by_key(|s| s.module);
            for s in schemas {
                for sql in s.account_deleted {
                    let mut st = tx.prepare(sql)?;
                    let n = st.parameter_count();
                    let all: [&dyn rusqlite::ToSql; 2] = [&u, &bare];
                    if n > 2 {
                        return Err(StorageError::backend(format!(
                            "module {}: an account_deleted statement uses more than ?1 and ?2",
                            s.module
                        )));
                    }
                    st.execute(&all[..n])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn tombstone(&self, username: &str) -> StorageResult<Option<i64>> {
        let u = username.to_string();
        let cutoff = self.tombstone_cutoff();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT deleted_ms FROM account_tombstones WHERE username = ?1 AND deleted_ms > ?2",
                    params![u, cutoff],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn remove_tombstone(&self, username: &str) -> StorageResult<()> {
        let u = username.to_string();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM account_tombstones WHERE username = ?1",
                params![u],
            )?;
            Ok(())
        })
        .await
    }

    async fn credentials(&self, username: &str) -> StorageResult<Option<Credentials>> {
        let u = username.to_string();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                            sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key
                     FROM accounts WHERE username = ?1",
                    params![u],
                    |r| {
                        Ok(Credentials {
                            sha1: ScramCredential {
                                salt: r.get(0)?,
                                iterations: r.get(1)?,
                                stored_key: r.get(2)?,
                                server_key: r.get(3)?,
                            },
                            sha256: ScramCredential {
                                salt: r.get(4)?,
                                iterations: r.get(5)?,
                                stored_key: r.get(6)?,
                                server_key: r.get(7)?,
                            },
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn account_exists(&self, username: &str) -> StorageResult<bool> {
        let u = username.to_string();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM accounts WHERE username = ?1",
                    params![u],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    async fn list_accounts(&self) -> StorageResult<Vec<String>> {
        self.run(|conn| {
            let mut st = conn.prepare("SELECT username FROM accounts ORDER BY username")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }
}

#[async_trait]
impl RosterStore for SqliteStore {
    async fn roster(&self, username: &str) -> StorageResult<(u64, Vec<RosterItem>)> {
        let u = username.to_string();
        self.run(move |conn| {
            let version: i64 = conn
                .query_row(
                    "SELECT version FROM roster_versions WHERE username = ?1",
                    params![u],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            let mut st = conn.prepare(
                "SELECT contact, name, subscription, ask, approved, groups FROM roster_items
                 WHERE username = ?1 ORDER BY contact",
            )?;
            let items = st
                .query_map(params![u], row_to_item)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((version as u64, items))
        })
        .await
    }

    async fn roster_item(
        &self,
        username: &str,
        contact: &str,
    ) -> StorageResult<Option<RosterItem>> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT contact, name, subscription, ask, approved, groups FROM roster_items
                     WHERE username = ?1 AND contact = ?2",
                    params![u, c],
                    row_to_item,
                )
                .optional()?)
        })
        .await
    }

    async fn put_roster_item(&self, username: &str, item: &RosterItem) -> StorageResult<u64> {
        let (u, it) = (username.to_string(), item.clone());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO roster_items (username, contact, name, subscription, ask, approved, groups)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (username, contact) DO UPDATE SET name = ?3, subscription = ?4,
                   ask = ?5, approved = ?6, groups = ?7",
                params![
                    u, it.jid, it.name, it.subscription.as_str(), it.ask as i64,
                    it.approved as i64, it.groups.join("\n")
                ],
            )?;
            let v = bump_version(&tx, &u)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    async fn delete_roster_item(&self, username: &str, contact: &str) -> StorageResult<u64> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM roster_items WHERE username = ?1 AND contact = ?2",
                params![u, c],
            )?;
            let v = if n > 0 {
                bump_version(&tx, &u)?
            } else {
                tx.query_row(
                    "SELECT version FROM roster_versions WHERE username = ?1",
                    params![u],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .unwrap_or(0) as u64
            };
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    async fn pending_subscriptions(&self, username: &str) -> StorageResult<Vec<(String, String)>> {
        let u = username.to_string();
        self.run(move |conn| {
            let mut st = conn.prepare(
                "SELECT contact, stanza FROM pending_subscriptions WHERE username = ?1 ORDER BY contact",
            )?;
            let rows = st.query_map(params![u], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn put_pending_subscription(
        &self,
        username: &str,
        contact: &str,
        stanza: &str,
    ) -> StorageResult<()> {
        let (u, c, s) = (
            username.to_string(),
            contact.to_string(),
            stanza.to_string(),
        );
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO pending_subscriptions (username, contact, stanza) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username, contact) DO UPDATE SET stanza = ?3",
                params![u, c, s],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_pending_subscription(
        &self,
        username: &str,
        contact: &str,
    ) -> StorageResult<()> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM pending_subscriptions WHERE username = ?1 AND contact = ?2",
                params![u, c],
            )?;
            Ok(())
        })
        .await
    }
}

fn offline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfflineMessage> {
    Ok(OfflineMessage {
        id: r.get(0)?,
        stamp_ms: r.get(1)?,
        stanza: r.get(2)?,
    })
}

#[async_trait]
impl OfflineStore for SqliteStore {
    async fn store_offline(
        &self,
        username: &str,
        stanza: &str,
        stamp_ms: i64,
        quota: OfflineQuota,
    ) -> StorageResult<bool> {
        let (u, s) = (username.to_string(), stanza.to_string());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let (n, bytes): (i64, i64) = tx.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM offline_messages WHERE username = ?1",
                params![u],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if n as usize >= quota.messages || bytes as usize + s.len() > quota.bytes {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO offline_messages (username, stamp_ms, stanza, size)
                 VALUES (?1, ?2, ?3, ?4)",
                params![u, stamp_ms, s, s.len() as i64],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn offline_messages(&self, username: &str) -> StorageResult<Vec<OfflineMessage>> {
        self.offline_batch(username, i64::MIN, usize::MAX).await
    }

    async fn offline_batch(
        &self,
        username: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<OfflineMessage>> {
        let u = username.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT id, stamp_ms, stanza FROM offline_messages
                 WHERE username = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = st.query_map(params![u, after, limit], offline_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn delete_offline(&self, username: &str, ids: &[i64]) -> StorageResult<()> {
        let (u, ids) = (username.to_string(), ids.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            for id in ids {
                tx.execute(
                    "DELETE FROM offline_messages WHERE username = ?1 AND id = ?2",
                    params![u, id],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn offline_count(&self, username: &str) -> StorageResult<usize> {
        let u = username.to_string();
        self.run(move |conn| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM offline_messages WHERE username = ?1",
                params![u],
                |r| r.get(0),
            )?;
            Ok(n as usize)
        })
        .await
    }

    async fn expire_offline(&self, before_ms: i64) -> StorageResult<usize> {
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM offline_messages WHERE stamp_ms < ?1",
                params![before_ms],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    lithos_core::extension! {
        schema: crate::storage::ModuleSchema {
            module: "test-notes",
            migrations: &[
                "CREATE TABLE test_notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
                "ALTER TABLE test_notes ADD COLUMN author TEXT",
            ],
            account_deleted: &["DELETE FROM test_notes WHERE author = ?1"],
        },
    }

    #[tokio::test]
    async fn module_tables_migrate_once_and_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        s.run(|c| {
            c.execute(
                "INSERT INTO test_notes (text, author) VALUES ('kept', 'me')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        drop(s);
        // Reopening runs nothing twice (the ALTER would fail) and the row is there.
        let s = SqliteStore::open(&path).unwrap();
        let (n, v): (i64, i64) = s
            .run(|c| {
                Ok((
                    c.query_row("SELECT COUNT(*) FROM test_notes", [], |r| r.get(0))?,
                    c.query_row(
                        "SELECT version FROM module_schemas WHERE module = 'test-notes'",
                        [],
                        |r| r.get(0),
                    )?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((n, v), (1, 2));
    }

    fn creds() -> Credentials {
        Credentials::new("pw", 1).unwrap()
    }

    #[tokio::test]
    async fn accounts() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_account("juliet", &creds()).await.unwrap();
        assert!(matches!(
            s.create_account("juliet", &creds()).await,
            Err(StorageError::AlreadyExists)
        ));
        assert!(s.account_exists("juliet").await.unwrap());
        let c = s.credentials("juliet").await.unwrap().unwrap();
        assert!(c.verify_password("pw"));
        s.set_credentials("juliet", &Credentials::new("new", 1).unwrap())
            .await
            .unwrap();
        assert!(
            s.credentials("juliet")
                .await
                .unwrap()
                .unwrap()
                .verify_password("new")
        );
        assert!(matches!(
            s.set_credentials("romeo", &creds()).await,
            Err(StorageError::NotFound)
        ));
        s.create_account("romeo", &creds()).await.unwrap();
        assert_eq!(s.list_accounts().await.unwrap(), ["juliet", "romeo"]);
        s.delete_account("juliet", "x").await.unwrap();
        assert!(!s.account_exists("juliet").await.unwrap());
        assert!(matches!(
            s.delete_account("juliet", "x").await,
            Err(StorageError::NotFound)
        ));
    }

    /// Issue 14, defect 8: a deleted account's name is not free for the next registrant,
    /// and nothing others gave the old account passes to a new one.
    #[tokio::test]
    async fn deletion_leaves_a_tombstone_and_takes_the_account_out_of_others_rosters() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_account("juliet", &creds()).await.unwrap();
        s.create_account("romeo", &creds()).await.unwrap();
        let juliet_in_romeos = RosterItem {
            jid: "juliet@x".into(),
            name: Some("J".into()),
            subscription: Subscription::Both,
            ask: false,
            approved: true,
            groups: vec![],
        };
        let v = s.put_roster_item("romeo", &juliet_in_romeos).await.unwrap();
        s.put_pending_subscription("romeo", "juliet@x", "<presence/>")
            .await
            .unwrap();
        s.run(|c| {
            c.execute(
                "INSERT INTO test_notes (text, author) VALUES ('mine', 'juliet'), ('his', 'romeo')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();

        s.delete_account("juliet", "x").await.unwrap();
        assert!(s.tombstone("juliet").await.unwrap().is_some());
        assert!(matches!(
            s.create_account("juliet", &creds()).await,
            Err(StorageError::AlreadyExists)
        ));
        // Romeo keeps his contact, with no subscription either way, at a new version.
        let (v2, items) = s.roster("romeo").await.unwrap();
        assert!(v2 > v);
        assert_eq!(items[0].subscription, Subscription::None);
        assert!(!items[0].approved);
        assert!(s.pending_subscriptions("romeo").await.unwrap().is_empty());
        // A module's statements ran in the same transaction.
        let authors: Vec<String> = s
            .run(|c| {
                let mut st = c.prepare("SELECT author FROM test_notes ORDER BY author")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(authors, ["romeo"]);

        // Once the tombstone has gone (or an administrator removes it), the name is free.
        s.remove_tombstone("juliet").await.unwrap();
        s.create_account("juliet", &creds()).await.unwrap();
        s.delete_account("juliet", "x").await.unwrap();
        s.set_tombstone_secs(0);
        assert!(s.tombstone("juliet").await.unwrap().is_none());
        s.create_account("juliet", &creds()).await.unwrap();
    }

    #[tokio::test]
    async fn rosters_are_versioned() {
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(s.roster("a").await.unwrap(), (0, vec![]));
        let item = RosterItem {
            jid: "b@x".into(),
            name: Some("B".into()),
            subscription: Subscription::To,
            ask: false,
            approved: false,
            groups: vec!["Friends".into(), "Work".into()],
        };
        assert_eq!(s.put_roster_item("a", &item).await.unwrap(), 1);
        assert_eq!(s.roster_item("a", "b@x").await.unwrap(), Some(item.clone()));
        let mut changed = item.clone();
        changed.subscription = Subscription::Both;
        changed.groups.clear();
        assert_eq!(s.put_roster_item("a", &changed).await.unwrap(), 2);
        assert_eq!(s.roster("a").await.unwrap(), (2, vec![changed]));
        assert_eq!(s.delete_roster_item("a", "b@x").await.unwrap(), 3);
        assert_eq!(s.delete_roster_item("a", "b@x").await.unwrap(), 3);
        s.put_pending_subscription("a", "c@x", "<presence/>")
            .await
            .unwrap();
        assert_eq!(s.pending_subscriptions("a").await.unwrap().len(), 1);
        s.delete_pending_subscription("a", "c@x").await.unwrap();
        assert!(s.pending_subscriptions("a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn offline_messages_have_a_quota_in_messages_and_bytes() {
        let s = SqliteStore::in_memory().unwrap();
        let two = OfflineQuota {
            messages: 2,
            bytes: 1000,
        };
        assert!(s.store_offline("a", "<m1/>", 1, two).await.unwrap());
        assert!(s.store_offline("a", "<m2/>", 2, two).await.unwrap());
        assert!(!s.store_offline("a", "<m3/>", 3, two).await.unwrap());
        let m = s.offline_messages("a").await.unwrap();
        assert_eq!(
            m.iter().map(|m| m.stanza.as_str()).collect::<Vec<_>>(),
            ["<m1/>", "<m2/>"]
        );
        s.delete_offline("a", &[m[0].id]).await.unwrap();
        assert_eq!(s.offline_count("a").await.unwrap(), 1);
        // Bytes: 5 stored, 11 more fit in 16, 12 do not.
        let small = OfflineQuota {
            messages: 100,
            bytes: 16,
        };
        assert!(
            !s.store_offline("a", "<m-twelve/>.", 4, small)
                .await
                .unwrap()
        );
        assert!(s.store_offline("a", "<m-eleven/>", 4, small).await.unwrap());
        // Other accounts have their own quota.
        assert!(s.store_offline("b", "<m-eleven/>", 4, small).await.unwrap());
    }

    #[tokio::test]
    async fn offline_messages_are_read_in_batches_and_expire() {
        let s = SqliteStore::in_memory().unwrap();
        let q = OfflineQuota {
            messages: 100,
            bytes: 100_000,
        };
        for i in 0..10 {
            s.store_offline("a", &format!("<m{i}/>"), i, q)
                .await
                .unwrap();
        }
        let first = s.offline_batch("a", i64::MIN, 4).await.unwrap();
        assert_eq!(first.len(), 4);
        let next = s.offline_batch("a", first[3].id, 4).await.unwrap();
        assert_eq!(next[0].stanza, "<m4/>");
        assert_eq!(s.expire_offline(6).await.unwrap(), 6);
        let left = s.offline_messages("a").await.unwrap();
        assert_eq!(left[0].stanza, "<m6/>");
        assert_eq!(left.len(), 4);
    }

    #[test]
    fn schema_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = SqliteStore::open(&path).unwrap();
            s.create_account("a", &creds()).await.unwrap();
        });
        rt.block_on(async {
            let s = SqliteStore::open(&path).unwrap();
            assert!(s.account_exists("a").await.unwrap());
        });
    }
}
