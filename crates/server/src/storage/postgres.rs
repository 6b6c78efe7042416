//! The PostgreSQL backend: a pool of connections (`r2d2`) over the `postgres` driver, each
//! keeping the statements it prepared. Statements run on tokio's blocking threads, as the
//! SQLite backend's do.
//!
//! Connections use TLS (rustls, the system's roots and an optional CA file) as the URL's
//! `sslmode` says: `prefer` (the driver's default) tries TLS and falls back to plain text,
//! `require` refuses a server without it, `disable` never tries. A certificate is always
//! verified, against the host name the URL gives.
//!
//! Transactions run at `SERIALIZABLE` isolation, so what a store reads and then writes in
//! one transaction behaves as it does on the single SQLite connection, whatever other nodes
//! of a cluster do meanwhile; a transaction PostgreSQL gives up on a conflict runs again
//! ([`PgStore::run`]).

use std::time::Duration;

use super::sql::{Conn, PgConn};
use super::{ModuleSchema, StorageError, StorageResult};

/// How many times a closure runs again after a serialization conflict before the conflict
/// is reported.
const CONFLICT_RETRIES: usize = 8;

/// An arbitrary constant: the advisory lock nodes take while they migrate, so that nodes
/// started together do not both create the same tables.
const MIGRATION_LOCK: i64 = 0x4c69_7468_6f73;

/// The kernel's tables, as PostgreSQL holds them: accounts and their credentials, the names
/// of deleted accounts, and which module migrations ran.
const KERNEL_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS accounts (
        username TEXT PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        sha1_salt BYTEA NOT NULL, sha1_iterations BIGINT NOT NULL,
        sha1_stored_key BYTEA NOT NULL, sha1_server_key BYTEA NOT NULL,
        sha256_salt BYTEA NOT NULL, sha256_iterations BIGINT NOT NULL,
        sha256_stored_key BYTEA NOT NULL, sha256_server_key BYTEA NOT NULL);
    CREATE TABLE IF NOT EXISTS account_tombstones (
        username TEXT PRIMARY KEY, deleted_ms BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS module_schemas (
        module TEXT PRIMARY KEY, version BIGINT NOT NULL);";

/// Opens connections for the pool.
struct Manager {
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(self.tls.clone())?;
        client.batch_execute(
            "SET default_transaction_isolation TO 'serializable'; SET client_min_messages TO warning",
        )?;
        Ok(PgConn::new(client))
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// The pool, dropped on a thread of its own: the driver's connections close by running
/// a runtime, which cannot start on a thread that drives tasks.
struct Pool(Option<r2d2::Pool<Manager>>);

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("lithos-pg-close".into())
                .spawn(move || drop(pool));
        }
    }
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<Manager>;
    fn deref(&self) -> &r2d2::Pool<Manager> {
        self.0.as_ref().expect("taken only on drop")
    }
}

/// A PostgreSQL database shared by the server's stores. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: std::sync::Arc<Pool>,
    /// Durations of [`run`](Self::run) (a histogram shares its buckets on clone).
    latency: prometheus_client::metrics::histogram::Histogram,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.state().connections)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (a `postgresql://` URL or `key=value` settings) with at most
    /// `pool_size` connections, and brings the schema up to date: the kernel's tables and
    /// every linked module's. Fails if a linked module keeps tables but has no PostgreSQL
    /// schema. TLS certificates are checked against the system's roots.
    pub async fn connect(url: &str, pool_size: u32) -> StorageResult<PgStore> {
        Self::connect_with(url, pool_size, None).await
    }

    /// As [`connect`](Self::connect), also trusting the CA certificates (PEM) in `ca_file`:
    /// a private CA, as database servers often have.
    pub async fn connect_with(
        url: &str,
        pool_size: u32,
        ca_file: Option<&std::path::Path>,
    ) -> StorageResult<PgStore> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StorageError::caused_by("the PostgreSQL URL", e))?;
        let tls = tls(ca_file)?;
        blocking(move || {
            let manager = Manager { config, tls };
            // One connection first, so that a refusal (a wrong password, an untrusted
            // certificate) is reported at once and with its cause; the pool would retry it
            // for its whole timeout and keep only the message.
            let first = r2d2::ManageConnection::connect(&manager)
                .map_err(|e| StorageError::caused_by("connecting to PostgreSQL", e))?;
            let pool = r2d2::Pool::builder()
                .max_size(pool_size.max(1))
                .min_idle(Some(1))
                .connection_timeout(Duration::from_secs(10))
                .build(manager)
                .map_err(|e| StorageError::caused_by("connecting to PostgreSQL", e))?;
            // Closed here, on this blocking thread (see `Pool`).
            drop(first);
            let store = PgStore {
                pool: std::sync::Arc::new(Pool(Some(pool))),
                latency: prometheus_client::metrics::histogram::Histogram::new(
                    crate::metrics::latency_buckets(),
                ),
            };
            store.migrate()?;
            Ok(store)
        })
        .await
    }

    fn conn(&self) -> StorageResult<r2d2::PooledConnection<Manager>> {
        self.pool
            .get()
            .map_err(|e| StorageError::caused_by("no PostgreSQL connection", e))
    }

    fn migrate(&self) -> StorageResult<()> {
        let mut pooled = self.conn()?;
        let mut c = Conn::postgres(&mut pooled);
        // Taken before the transaction begins, so that its snapshot sees what a node that
        // held the lock before committed.
        c.execute(
            "SELECT pg_advisory_lock(?1)",
            crate::params![MIGRATION_LOCK],
        )?;
        let r = Self::migrate_locked(&mut c);
        c.execute(
            "SELECT pg_advisory_unlock(?1)",
            crate::params![MIGRATION_LOCK],
        )?;
        r
    }

    fn migrate_locked(c: &mut Conn<'_>) -> StorageResult<()> {
        let collation: String = c.query_value(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()",
            crate::params![],
        )?;
        if collation != "C" && collation != "POSIX" {
            return Err(StorageError::backend(format!(
                "the database's collation is {collation:?}; Lithos needs \"C\" (names sort and \
                 page byte by byte, as on SQLite): create it with CREATE DATABASE <name> \
                 TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
            )));
        }
        let mut tx = c.transaction()?;
        tx.batch(KERNEL_TABLES)?;
        let mut schemas: Vec<&ModuleSchema> = inventory::iter::<ModuleSchema>.into_iter().collect();
        schemas.sort_by_key(|s| s.module);
        for s in schemas {
            let Some(migrations) = s.postgres else {
                return Err(StorageError::backend(format!(
                    "module {} keeps its tables in SQLite only: it cannot run on PostgreSQL yet",
                    s.module
                )));
            };
            let done: usize = tx
                .query_opt(
                    "SELECT version FROM module_schemas WHERE module = ?1",
                    crate::params![s.module],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
            if done > migrations.len() {
                return Err(StorageError::backend(format!(
                    "module {} has schema version {done}, newer than this server knows ({})",
                    s.module,
                    migrations.len()
                )));
            }
            for (i, sql) in migrations.iter().enumerate().skip(done) {
                tx.batch(sql)?;
                tx.execute(
                    "INSERT INTO module_schemas (module, version) VALUES (?1, ?2)
                     ON CONFLICT (module) DO UPDATE SET version = ?2",
                    crate::params![s.module, (i + 1) as i64],
                )?;
            }
        }
        tx.commit()
    }

    /// Runs `f` on a pooled connection on a blocking thread. When PostgreSQL gives up a
    /// transaction on a conflict with another, `f` runs again (up to 8 times), so `f` should
    /// do its writes in one transaction.
    pub async fn run<T, F>(&self, mut f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn<'_>) -> StorageResult<T> + Send + 'static,
    {
        let store = self.clone();
        let started = std::time::Instant::now();
        let r = blocking(move || {
            let mut pooled = store.conn()?;
            let mut tries = 0;
            loop {
                match f(&mut Conn::postgres(&mut pooled)) {
                    Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(1 << tries.min(6)));
                    }
                    r => return r,
                }
            }
        })
        .await;
        self.latency.observe(started.elapsed().as_secs_f64());
        r
    }

    /// How long [`run`](Self::run) calls take, waiting for a connection included.
    pub fn latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.latency.clone()
    }
}

/// The TLS connector: the system's roots, and the certificates of `ca_file`.
fn tls(
    ca_file: Option<&std::path::Path>,
) -> StorageResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let what = || format!("[storage] ca_file {}", path.display());
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| StorageError::caused_by(what(), e))?;
        if certs.is_empty() {
            return Err(StorageError::backend(format!("{}: no certificate", what())));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| StorageError::caused_by(what(), e))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StorageError::caused_by("TLS to PostgreSQL", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Runs `f` where blocking is allowed: a blocking thread when there is a runtime (the
/// driver runs a runtime of its own, which cannot start inside a task), else right here.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StorageError::Backend(Box::new(e)))?,
        Err(_) => f(),
    }
}
