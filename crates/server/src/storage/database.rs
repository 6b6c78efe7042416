//! The database the server and its modules share, whichever engine holds it, and the
//! accounts kept in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use lithos_core::datetime::now_ms;

use super::sql::{Conn, Dialect, Param, Row};
use super::{AccountStore, ModuleSchema, PgStore, SqliteStore, StorageError, StorageResult};
use crate::params;
use crate::sasl::{Credentials, ScramCredential};

/// The default of `[accounts] tombstone_secs`.
const TOMBSTONE_SECS: u64 = 30 * 24 * 3600;

/// The database: SQLite (embedded, the default) or PostgreSQL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    backend: Backend,
    /// How long a deleted account's name stays taken, in seconds.
    tombstone_secs: Arc<AtomicU64>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl From<SqliteStore> for Database {
    fn from(s: SqliteStore) -> Database {
        Database::new(Backend::Sqlite(s))
    }
}

impl From<PgStore> for Database {
    fn from(s: PgStore) -> Database {
        Database::new(Backend::Postgres(s))
    }
}

impl Database {
    fn new(backend: Backend) -> Database {
        Database {
            backend,
            tombstone_secs: Arc::new(TOMBSTONE_SECS.into()),
        }
    }

    /// Which engine holds the data.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite store, when that is the engine.
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `f` on a connection, on a blocking thread. Every write `f` commits is durable
    /// when this returns. On PostgreSQL, `f` runs again when its transaction lost a conflict
    /// with another (see [`PgStore::run`]): do a closure's writes in one transaction.
    pub async fn run<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn<'_>) -> StorageResult<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(s) => s.run_sql(f).await,
            Backend::Postgres(p) => p.run(f).await,
        }
    }

    /// How long [`run`](Self::run) calls take, waiting for a connection included: the
    /// histogram `/metrics` shows as `lithos_storage_operation_seconds`.
    pub fn latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        match &self.backend {
            Backend::Sqlite(s) => s.latency(),
            Backend::Postgres(p) => p.latency(),
        }
    }

    /// Sets how long a deleted account's name cannot be created again (`[accounts]
    /// tombstone_secs`; 30 days unless set).
    pub fn set_tombstone_secs(&self, secs: u64) {
        self.tombstone_secs.store(secs, Ordering::Relaxed);
    }

    /// The oldest deletion whose tombstone still stands, in milliseconds since the epoch.
    fn tombstone_cutoff(&self) -> i64 {
        let secs = self.tombstone_secs.load(Ordering::Relaxed);
        now_ms().saturating_sub(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
    }

    /// Makes sure everything is on disk, for a clean shutdown (SQLite: a WAL checkpoint;
    /// PostgreSQL commits are durable already).
    pub async fn flush(&self) -> StorageResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.checkpoint().await,
            Backend::Postgres(_) => Ok(()),
        }
    }
}

/// What an account's deletion does to the kernel's tables, before the modules' statements:
/// `?1` the name, `?3` the time.
const ACCOUNT_DELETED: &[&str] = &[
    "INSERT INTO account_tombstones (username, deleted_ms) VALUES (?1, ?3)
        ON CONFLICT (username) DO UPDATE SET deleted_ms = ?3",
];

/// The eight credential columns' values, in the order both the insert and the update name
/// them (and [`credentials_of`] reads them).
fn credential_params(c: &Credentials) -> [&dyn Param; 8] {
    [
        &c.sha1.salt,
        &c.sha1.iterations,
        &c.sha1.stored_key,
        &c.sha1.server_key,
        &c.sha256.salt,
        &c.sha256.iterations,
        &c.sha256.stored_key,
        &c.sha256.server_key,
    ]
}

fn credentials_of(r: &Row<'_>) -> StorageResult<Credentials> {
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
}

#[async_trait]
impl AccountStore for Database {
    async fn create_account(&self, username: &str, creds: &Credentials) -> StorageResult<()> {
        let (u, c) = (username.to_string(), creds.clone());
        let cutoff = self.tombstone_cutoff();
        self.run(move |conn| {
            let now = now_ms();
            let mut tx = conn.transaction()?;
            let buried = tx
                .query_opt(
                    "SELECT 1 FROM account_tombstones WHERE username = ?1 AND deleted_ms > ?2",
                    params![u, cutoff],
                    |_| Ok(()),
                )?
                .is_some();
            if buried {
                return Err(StorageError::AlreadyExists);
            }
            let mut p: Vec<&dyn Param> = vec![&u, &now];
            p.extend(credential_params(&c));
            let r = tx.execute(
                "INSERT INTO accounts (username, created_ms, sha1_salt, sha1_iterations,
                    sha1_stored_key, sha1_server_key, sha256_salt, sha256_iterations,
                    sha256_stored_key, sha256_server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                &p,
            );
            match r {
                Ok(_) => {}
                Err(e) if e.is_constraint_violation() => return Err(StorageError::AlreadyExists),
                Err(e) => return Err(e),
            }
            tx.execute(
                "DELETE FROM account_tombstones WHERE username = ?1",
                params![u],
            )?;
            tx.commit()
        })
        .await
    }

    async fn set_credentials(&self, username: &str, creds: &Credentials) -> StorageResult<()> {
        let (u, c) = (username.to_string(), creds.clone());
        self.run(move |conn| {
            let mut p: Vec<&dyn Param> = vec![&u];
            p.extend(credential_params(&c));
            let n = conn.execute(
                "UPDATE accounts SET sha1_salt = ?2, sha1_iterations = ?3, sha1_stored_key = ?4,
                   sha1_server_key = ?5, sha256_salt = ?6, sha256_iterations = ?7,
                   sha256_stored_key = ?8, sha256_server_key = ?9 WHERE username = ?1",
                &p,
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
            let mut tx = conn.transaction()?;
            let n = tx.execute("DELETE FROM accounts WHERE username = ?1", params![u])?;
            if n == 0 {
                return Err(StorageError::NotFound);
            }
            let now = now_ms();
            // Each statement binds the parameters it names, of these.
            for sql in ACCOUNT_DELETED {
                tx.execute(sql, params![u, bare, now])?;
            }
            let mut schemas: Vec<&ModuleSchema> =
                inventory::iter::<ModuleSchema>.into_iter().collect();
            schemas.sort_by_key(|s| s.module);
            for s in schemas {
                for sql in s.account_deleted {
                    if super::sql::postgres_sql(sql).1.iter().any(|&i| i > 1) {
                        return Err(StorageError::backend(format!(
                            "module {}: an account_deleted statement uses more than ?1 and ?2",
                            s.module
                        )));
                    }
                    tx.execute(sql, params![u, bare])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn tombstone(&self, username: &str) -> StorageResult<Option<i64>> {
        let u = username.to_string();
        let cutoff = self.tombstone_cutoff();
        self.run(move |conn| {
            conn.query_opt(
                "SELECT deleted_ms FROM account_tombstones WHERE username = ?1 AND deleted_ms > ?2",
                params![u, cutoff],
                |r| r.get(0),
            )
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
            conn.query_opt(
                "SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                        sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key
                 FROM accounts WHERE username = ?1",
                params![u],
                credentials_of,
            )
        })
        .await
    }

    async fn account_exists(&self, username: &str) -> StorageResult<bool> {
        let u = username.to_string();
        self.run(move |conn| {
            Ok(conn
                .query_opt(
                    "SELECT 1 FROM accounts WHERE username = ?1",
                    params![u],
                    |_| Ok(()),
                )?
                .is_some())
        })
        .await
    }

    async fn list_accounts(&self) -> StorageResult<Vec<String>> {
        self.run(|conn| {
            conn.query_map(
                "SELECT username FROM accounts ORDER BY username",
                params![],
                |r| r.get(0),
            )
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The databases a storage test runs on: in-memory SQLite, and a fresh PostgreSQL
    /// database when a server can be started (see `lithos-testservices`).
    pub(crate) async fn each_backend(test: &str) -> Vec<Database> {
        let mut all = vec![Database::from(SqliteStore::in_memory().unwrap())];
        if let Some(url) = lithos_testservices::postgres_or_skip(test) {
            all.push(PgStore::connect(&url, 4).await.unwrap().into());
        }
        all
    }

    fn creds() -> Credentials {
        Credentials::new("pw", 1).unwrap()
    }

    #[tokio::test]
    async fn accounts() {
        for s in each_backend("accounts").await {
            let on = s.dialect();
            s.create_account("juliet", &creds()).await.unwrap();
            assert!(
                matches!(
                    s.create_account("juliet", &creds()).await,
                    Err(StorageError::AlreadyExists)
                ),
                "{on:?}"
            );
            assert!(s.account_exists("juliet").await.unwrap());
            let c = s.credentials("juliet").await.unwrap().unwrap();
            assert!(c.verify_password("pw"), "{on:?}");
            s.set_credentials("juliet", &Credentials::new("new", 1).unwrap())
                .await
                .unwrap();
            assert!(
                s.credentials("juliet")
                    .await
                    .unwrap()
                    .unwrap()
                    .verify_password("new"),
                "{on:?}"
            );
            assert!(matches!(
                s.set_credentials("romeo", &creds()).await,
                Err(StorageError::NotFound)
            ));
            s.create_account("romeo", &creds()).await.unwrap();
            // Byte order on both engines: upper case before lower.
            s.create_account("Zed", &creds()).await.unwrap();
            assert_eq!(
                s.list_accounts().await.unwrap(),
                ["Zed", "juliet", "romeo"],
                "{on:?}"
            );
            s.delete_account("juliet", "x").await.unwrap();
            assert!(!s.account_exists("juliet").await.unwrap());
            assert!(matches!(
                s.delete_account("juliet", "x").await,
                Err(StorageError::NotFound)
            ));
            assert!(s.credentials("nobody").await.unwrap().is_none());
        }
    }

    /// Issue 14, defect 8: a deleted account's name is not free for the next registrant,
    /// and the modules forget the account in the same transaction (the roster's part is
    /// tested in `lithos-roster`).
    #[tokio::test]
    async fn deletion_leaves_a_tombstone_and_runs_the_modules_statements() {
        for s in each_backend("deletion_leaves_a_tombstone").await {
            let on = s.dialect();
            s.create_account("juliet", &creds()).await.unwrap();
            s.create_account("romeo", &creds()).await.unwrap();
            s.run(|c| {
                c.execute(
                    "INSERT INTO test_notes (text, author) VALUES ('mine', ?1), ('his', ?2)",
                    params!["juliet", "romeo"],
                )?;
                Ok(())
            })
            .await
            .unwrap();

            s.delete_account("juliet", "x").await.unwrap();
            assert!(s.tombstone("juliet").await.unwrap().is_some(), "{on:?}");
            assert!(matches!(
                s.create_account("juliet", &creds()).await,
                Err(StorageError::AlreadyExists)
            ));
            // A module's statements ran in the same transaction.
            let authors: Vec<String> = s
                .run(|c| {
                    c.query_map(
                        "SELECT author FROM test_notes ORDER BY author",
                        params![],
                        |r| r.get(0),
                    )
                })
                .await
                .unwrap();
            assert_eq!(authors, ["romeo"], "{on:?}");

            // Once the tombstone has gone (or an administrator removes it), the name is free.
            s.remove_tombstone("juliet").await.unwrap();
            s.create_account("juliet", &creds()).await.unwrap();
            s.delete_account("juliet", "x").await.unwrap();
            s.set_tombstone_secs(0);
            assert!(s.tombstone("juliet").await.unwrap().is_none());
            s.create_account("juliet", &creds()).await.unwrap();
        }
    }

    /// Values of every kind cross both engines unchanged, and integers bind to whichever
    /// integer type a PostgreSQL column has.
    #[tokio::test]
    async fn values_round_trip() {
        for s in each_backend("values_round_trip").await {
            let on = s.dialect();
            let got = s
                .run(move |c| {
                    let int = match c.dialect() {
                        Dialect::Sqlite => "INTEGER",
                        Dialect::Postgres => "INTEGER",
                    };
                    let (blob, real) = match c.dialect() {
                        Dialect::Sqlite => ("BLOB", "REAL"),
                        Dialect::Postgres => ("BYTEA", "DOUBLE PRECISION"),
                    };
                    c.batch(&format!(
                        "CREATE TABLE rt (k TEXT PRIMARY KEY, small {int}, big BIGINT, b {blob}, f {real})"
                    ))?;
                    c.execute(
                        "INSERT INTO rt VALUES (?1, ?2, ?3, ?4, ?5)",
                        params!["é\u{1F600}", 7_u32, i64::MAX, vec![0u8, 255], 1.5],
                    )?;
                    c.execute(
                        "INSERT INTO rt (k) VALUES (?1)",
                        params!["null"],
                    )?;
                    c.query_map("SELECT k, small, big, b, f FROM rt ORDER BY k", params![], |r| {
                        Ok((
                            r.get::<String>(0)?,
                            r.get::<Option<u32>>(1)?,
                            r.get::<Option<i64>>(2)?,
                            r.get::<Option<Vec<u8>>>(3)?,
                            r.get::<Option<f64>>(4)?,
                        ))
                    })
                })
                .await
                .unwrap();
            assert_eq!(
                got,
                [
                    ("null".to_string(), None, None, None, None),
                    (
                        "é\u{1F600}".to_string(),
                        Some(7),
                        Some(i64::MAX),
                        Some(vec![0, 255]),
                        Some(1.5)
                    ),
                ],
                "{on:?}"
            );
            // A sum, cast as the shared SQL says, reads as an integer on both.
            let n: i64 = s
                .run(|c| c.query_value("SELECT CAST(SUM(big / 2) AS BIGINT) FROM rt", params![]))
                .await
                .unwrap();
            assert_eq!(n, i64::MAX / 2, "{on:?}");
        }
    }

    /// Two writers that read and then write the same row: on PostgreSQL the loser of the
    /// conflict runs again, so no increment is lost (as on SQLite's one connection).
    #[tokio::test]
    async fn conflicting_transactions_lose_no_write() {
        for s in each_backend("conflicting_transactions").await {
            s.run(|c| {
                c.batch("CREATE TABLE counter (k TEXT PRIMARY KEY, n BIGINT NOT NULL)")?;
                c.execute("INSERT INTO counter VALUES ('a', 0)", params![])?;
                Ok(())
            })
            .await
            .unwrap();
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        s.run(|c| {
                            let mut tx = c.transaction()?;
                            let n: i64 =
                                tx.query_value("SELECT n FROM counter WHERE k = 'a'", params![])?;
                            tx.execute("UPDATE counter SET n = ?1 WHERE k = 'a'", params![n + 1])?;
                            tx.commit()
                        })
                        .await
                        .unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let n: i64 = s
                .run(|c| c.query_value("SELECT n FROM counter", params![]))
                .await
                .unwrap();
            assert_eq!(n, 80, "{:?}", s.dialect());
        }
    }

    /// TLS to PostgreSQL: with `sslmode=require` the connection is encrypted and the
    /// server's certificate checked against the configured CA; without that CA, or to a
    /// server without TLS, connecting fails rather than going on in plain text.
    #[tokio::test]
    async fn postgres_over_tls() {
        let Some(plain) = lithos_testservices::postgres_or_skip("postgres_over_tls") else {
            return;
        };
        let (url, ca) = lithos_testservices::postgres_tls().unwrap();
        let db: Database = PgStore::connect_with(&url, 2, Some(&ca))
            .await
            .unwrap()
            .into();
        let encrypted: bool = db
            .run(|c| {
                c.query_value(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    params![],
                )
            })
            .await
            .unwrap();
        assert!(encrypted);
        db.create_account("over-tls", &creds()).await.unwrap();

        let unknown_ca = PgStore::connect(&url, 1).await.unwrap_err();
        assert!(
            format!("{unknown_ca:?}").contains("UnknownIssuer"),
            "{unknown_ca:?}"
        );
        let no_tls = PgStore::connect_with(&format!("{plain}?sslmode=require"), 1, Some(&ca))
            .await
            .unwrap_err();
        assert!(format!("{no_tls:?}").contains("TLS"), "{no_tls:?}");
    }

    /// Connecting again migrates nothing twice, and a second node connecting at the same
    /// time waits for the first one's migration.
    #[tokio::test]
    async fn postgres_migrates_once() {
        let Some(url) = lithos_testservices::postgres_or_skip("postgres_migrates_once") else {
            return;
        };
        let (a, b) = tokio::join!(PgStore::connect(&url, 2), PgStore::connect(&url, 2));
        let (a, b): (Database, Database) = (a.unwrap().into(), b.unwrap().into());
        a.create_account("kept", &creds()).await.unwrap();
        drop(a);
        let v: i64 = b
            .run(|c| {
                c.query_value(
                    "SELECT version FROM module_schemas WHERE module = 'test-notes'",
                    params![],
                )
            })
            .await
            .unwrap();
        assert_eq!(v, 2);
        let c: Database = PgStore::connect(&url, 1).await.unwrap().into();
        assert!(c.account_exists("kept").await.unwrap());
    }
}
