//! Storage: the kernel's accounts and credentials ([`AccountStore`]), and the database in
//! which each module keeps its own tables ([`ModuleSchema`]): the roster, the offline store
//! and the TUXP registry live in their crates, not here.
//!
//! The database is the embedded SQLite file (the default, no set-up) or a PostgreSQL server
//! (`[storage] backend = "postgres"`), behind one interface: [`Database::run`] lends a
//! [`sql::Conn`], and stores write their SQL once, in the subset both engines share.
//!
//! Every write a method reports as done is committed (SQLite in WAL mode with full
//! synchronisation; PostgreSQL's commit), so it survives the process being killed.

mod database;
mod postgres;
pub mod sql;
mod sqlite;

/// The SQLite driver, for modules that keep their own tables (see [`ModuleSchema`]).
pub use rusqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::sasl::Credentials;

pub use database::Database;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The account (or item) does not exist.
    #[error("not found")]
    NotFound,
    /// The account already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The database failed: the driver's error (or what was found wrong), kept as the
    /// source.
    #[error("database error: {0}")]
    Backend(#[source] crate::module::BoxError),
}

impl StorageError {
    /// A failure described in words (a stored value that is out of range).
    pub fn backend(what: impl Into<String>) -> StorageError {
        StorageError::Backend(what.into().into())
    }

    /// A failure described in words, caused by `source` (kept as the source).
    pub fn caused_by(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError::Backend(Box::new(Context {
            what: what.into(),
            source: Box::new(source),
        }))
    }
}

/// A storage failure described in words, with the error that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
struct Context {
    what: String,
    #[source]
    source: crate::module::BoxError,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Backend(Box::new(e))
    }
}

/// Result of a storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

/// Accounts and their credentials. User names are prepared localparts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account; `AlreadyExists` if the name is taken, or was deleted too
    /// recently (its tombstone stands).
    async fn create_account(&self, username: &str, creds: &Credentials) -> StorageResult<()>;
    /// Replaces an account's credentials; `NotFound` if there is no such account.
    async fn set_credentials(&self, username: &str, creds: &Credentials) -> StorageResult<()>;
    /// Deletes an account and everything stored for it (what modules keep too: see
    /// [`ModuleSchema::account_deleted`]: the roster module, for one, takes it out of other
    /// accounts' subscriptions), in one transaction; and leaves a tombstone, so the name cannot be created again for a while
    /// (`[accounts] tombstone_secs`) and nobody inherits what others granted it. `domain` is
    /// the served domain (some records hold bare JIDs). `NotFound` if there is no such account.
    async fn delete_account(&self, username: &str, domain: &str) -> StorageResult<()>;
    /// When the account `username` was deleted (milliseconds since the Unix epoch), if its
    /// tombstone still stands.
    async fn tombstone(&self, username: &str) -> StorageResult<Option<i64>>;
    /// Removes a tombstone, so the name can be created again at once (an administrator's
    /// decision).
    async fn remove_tombstone(&self, username: &str) -> StorageResult<()>;
    /// The credentials of an account, if it exists.
    async fn credentials(&self, username: &str) -> StorageResult<Option<Credentials>>;
    /// True when the account exists.
    async fn account_exists(&self, username: &str) -> StorageResult<bool>;
    /// All account names, sorted.
    async fn list_accounts(&self) -> StorageResult<Vec<String>>;
}

/// The stores a server and its modules use.
#[derive(Clone)]
pub struct Storage {
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    db: Database,
}

/// Tables a module keeps in the embedded database, registered as `schema:` in its crate's
/// `lithos_core::extension!`.
/// Each module's migrations run in order when the database opens; a table
/// `module_schemas` records how many ran for each module, so a module adds a migration
/// by appending one, never by editing one. Table names should start with the module's name.
///
/// ```
/// lithos_core::extension! {
///     schema: lithos_server::storage::ModuleSchema {
///         module: "example",
///         migrations: &["CREATE TABLE example_notes (id INTEGER PRIMARY KEY, author TEXT NOT NULL)"],
///         postgres: Some(&["CREATE TABLE example_notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, author TEXT NOT NULL)"]),
///         account_deleted: &["DELETE FROM example_notes WHERE author = ?1"],
///     },
/// }
/// ```
pub struct ModuleSchema {
    /// The owning module's name.
    pub module: &'static str,
    /// SQLite: SQL batches, applied in order, each once.
    pub migrations: &'static [&'static str],
    /// PostgreSQL: the same tables in its dialect (`BIGINT`, `BYTEA`, identity columns),
    /// applied in order, each once; `None` for a module whose store does not run on
    /// PostgreSQL yet (a server on PostgreSQL then refuses to start, naming it).
    pub postgres: Option<&'static [&'static str]>,
    /// Statements run, in order, in the transaction that deletes an account, with `?1` the
    /// account's name (localpart) and `?2` its bare JID, on either engine (written in the
    /// SQL both share): the module forgets what belonged to
    /// the account and revokes what it was granted, whichever way the account is deleted
    /// (in-band, or `lithosd user delete` with no server running).
    pub account_deleted: &'static [&'static str],
}

inventory::collect!(ModuleSchema);

impl Storage {
    /// The database, for modules with their own tables ([`ModuleSchema`]).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The stores of one SQLite database.
    pub fn sqlite(store: SqliteStore) -> Storage {
        Storage::of(store.into())
    }

    /// The stores of `db`, whichever engine it is.
    pub fn of(db: Database) -> Storage {
        Storage {
            accounts: Arc::new(db.clone()),
            db,
        }
    }

    /// Makes sure everything is on disk (a WAL checkpoint), for a clean shutdown.
    pub async fn flush(&self) -> StorageResult<()> {
        self.db.flush().await
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod error_tests {
    use super::StorageError;

    #[test]
    fn backend_errors_keep_their_cause() {
        let e = StorageError::from(rusqlite::Error::QueryReturnedNoRows);
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.downcast_ref::<rusqlite::Error>().is_some());
        assert!(e.to_string().contains("Query returned no rows"), "{e}");

        let e = StorageError::caused_by("stored value 7", std::fmt::Error);
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(
            std::error::Error::source(cause).is_some(),
            "the context keeps the cause"
        );
        assert!(e.to_string().contains("stored value 7"), "{e}");
    }
}
