//! The embedded store: one SQLite database file in the data directory, WAL mode, full sync.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::sql::Conn;
use super::{StorageError, StorageResult};

/// The accounts table, as release 0.1.0 created it and a new database does: a literal, so
/// the legacy steps and [`KERNEL_TABLES`] are built from this one definition.
macro_rules! accounts_table {
    () => {
        "CREATE TABLE accounts (
        username TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        sha1_salt BLOB NOT NULL, sha1_iterations INTEGER NOT NULL,
        sha1_stored_key BLOB NOT NULL, sha1_server_key BLOB NOT NULL,
        sha256_salt BLOB NOT NULL, sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB NOT NULL, sha256_server_key BLOB NOT NULL
     );"
    };
}

/// The names of deleted accounts, kept for a while so that nobody inherits what others
/// granted them.
macro_rules! tombstones_table {
    () => {
        "CREATE TABLE account_tombstones (username TEXT PRIMARY KEY, deleted_ms INTEGER NOT NULL);"
    };
}

/// How databases written by release 0.1.0 and before were laid out, step by step: the kernel
/// then also held the roster's and the offline store's tables, which those modules now own
/// (their schemas create the same tables where they are missing). A database at one of
/// these versions is brought to the last of them, then to [`SCHEMA_VERSION`]; a new one
/// starts from [`KERNEL_TABLES`]. `PRAGMA user_version` records the version.
const LEGACY: &[&str] = &[
    // 1: accounts, rosters, pending subscriptions, offline messages.
    concat!(
        accounts_table!(),
        "
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
     CREATE INDEX offline_by_user ON offline_messages (username, id);"
    ),
    // 2: each offline message's size, so an account's quota counts bytes as well as
    // messages; the index covers both, so checking a quota reads no message.
    "ALTER TABLE offline_messages ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     UPDATE offline_messages SET size = length(CAST(stanza AS BLOB));
     DROP INDEX offline_by_user;
     CREATE INDEX offline_by_user ON offline_messages (username, id, size);
     CREATE INDEX offline_by_stamp ON offline_messages (stamp_ms);",
    // 3: names of deleted accounts, kept for a while so that nobody inherits what others
    // granted them; contacts looked up by JID when an account goes.
    concat!(
        tombstones_table!(),
        "
     CREATE INDEX roster_by_contact ON roster_items (contact);
     CREATE INDEX pending_by_contact ON pending_subscriptions (contact);"
    ),
];

/// The kernel's tables: accounts and their credentials, and the names of deleted accounts
/// (kept for a while, so that nobody inherits what others granted them).
const KERNEL_TABLES: &str = concat!(accounts_table!(), "\n     ", tombstones_table!());

/// The schema version of the kernel's tables: 4, the first where modules own their tables.
const SCHEMA_VERSION: usize = LEGACY.len() + 1;

/// Prepared statements kept per connection: more than every linked module's distinct
/// statements together.
const STATEMENT_CACHE: usize = 512;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Durations of [`run`](Self::run) (a histogram shares its buckets on clone).
    latency: prometheus_client::metrics::histogram::Histogram,
}

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
        // Every statement the stores run goes through this cache (`sql::Conn`): the modules
        // together use well over rusqlite's default of 16, and a statement evicted is parsed
        // and planned again on its next use.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(StorageError::backend(format!(
                "the database has schema version {version}, newer than this server knows \
                 ({SCHEMA_VERSION})"
            )));
        }
        if version < SCHEMA_VERSION {
            let tx = conn.transaction()?;
            if version == 0 {
                tx.execute_batch(KERNEL_TABLES)?;
            } else {
                for sql in &LEGACY[version..] {
                    tx.execute_batch(sql)?;
                }
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION as i64)?;
            tx.commit()?;
        }
        Self::module_migrations(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            latency: prometheus_client::metrics::histogram::Histogram::new(
                crate::metrics::latency_buckets(),
            ),
        })
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
        let started = std::time::Instant::now();
        let r = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
                .await
                .map_err(|e| StorageError::Backend(Box::new(e)))?,
            Err(_) => f(&mut lock(&conn)),
        };
        self.latency.observe(started.elapsed().as_secs_f64());
        r
    }

    /// Runs `f` on the connection on a blocking thread, through the SQL interface both
    /// backends share (see [`Database::run`](super::Database::run)).
    pub async fn run_sql<T, F>(&self, mut f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn<'_>) -> StorageResult<T> + Send + 'static,
    {
        self.run(move |c| f(&mut Conn::sqlite(c))).await
    }

    /// How long [`run`](Self::run) calls take, waiting for the connection included: the
    /// histogram `/metrics` shows as `lithos_storage_operation_seconds`.
    pub fn latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.latency.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::AccountStore;

    lithos_core::extension! {
        schema: crate::storage::ModuleSchema {
            module: "test-notes",
            migrations: &[
                "CREATE TABLE test_notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
                "ALTER TABLE test_notes ADD COLUMN author TEXT",
            ],
            postgres: Some(&[
                "CREATE TABLE test_notes (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, text TEXT NOT NULL)",
                "ALTER TABLE test_notes ADD COLUMN author TEXT",
            ]),
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

    fn creds() -> crate::sasl::Credentials {
        crate::sasl::Credentials::new("pw", 1).unwrap()
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
            let s = crate::storage::Database::from(SqliteStore::open(&path).unwrap());
            s.create_account("a", &creds()).await.unwrap();
        });
        rt.block_on(async {
            let s = crate::storage::Database::from(SqliteStore::open(&path).unwrap());
            assert!(s.account_exists("a").await.unwrap());
        });
    }
}
