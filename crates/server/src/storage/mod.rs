//! Storage: the traits modules use, and the embedded SQLite store that serves them.
//!
//! Every write a method reports as done is committed (SQLite in WAL mode with full
//! synchronisation), so it survives the process being killed.

mod sqlite;

/// The SQLite driver, for modules that keep their own tables (see [`ModuleSchema`]).
pub use rusqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::sasl::Credentials;

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
        StorageError::Backend(Box::new(crate::module::ModuleError::caused_by(
            what, source,
        )))
    }
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
    /// [`ModuleSchema::account_deleted`]); takes it out of other accounts' rosters'
    /// subscriptions; and leaves a tombstone, so the name cannot be created again for a while
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

/// The subscription state of a roster item (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subscription {
    /// No subscription either way.
    #[default]
    None,
    /// The user sees the contact's presence.
    To,
    /// The contact sees the user's presence.
    From,
    /// Both.
    Both,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }
    /// Parses the attribute value.
    pub fn parse(s: &str) -> Option<Subscription> {
        Some(match s {
            "none" => Subscription::None,
            "to" => Subscription::To,
            "from" => Subscription::From,
            "both" => Subscription::Both,
            _ => return None,
        })
    }
    /// True when the user receives the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }
    /// True when the contact receives the user's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }
    /// With the `to` half set or cleared.
    pub fn with_to(self, on: bool) -> Subscription {
        Subscription::from_halves(on, self.has_from())
    }
    /// With the `from` half set or cleared.
    pub fn with_from(self, on: bool) -> Subscription {
        Subscription::from_halves(self.has_to(), on)
    }
    fn from_halves(to: bool, from: bool) -> Subscription {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One roster item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: String,
    /// The user's name for the contact.
    pub name: Option<String>,
    /// Subscription state.
    pub subscription: Subscription,
    /// The user asked to subscribe to the contact and no answer came yet (`ask="subscribe"`).
    pub ask: bool,
    /// The user pre-approved the contact's subscription request (RFC 6121 §3.4).
    pub approved: bool,
    /// Groups, in the order given.
    pub groups: Vec<String>,
}

/// Rosters (with versions, RFC 6121 §2.6) and pending inbound subscription requests.
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The roster's version and items.
    async fn roster(&self, username: &str) -> StorageResult<(u64, Vec<RosterItem>)>;
    /// One item.
    async fn roster_item(&self, username: &str, contact: &str)
    -> StorageResult<Option<RosterItem>>;
    /// Adds or replaces an item; returns the roster's new version.
    async fn put_roster_item(&self, username: &str, item: &RosterItem) -> StorageResult<u64>;
    /// Removes an item; returns the roster's new version (unchanged if there was none).
    async fn delete_roster_item(&self, username: &str, contact: &str) -> StorageResult<u64>;
    /// Inbound subscription requests not yet answered: contact and the request as XML.
    async fn pending_subscriptions(&self, username: &str) -> StorageResult<Vec<(String, String)>>;
    /// Records an inbound subscription request.
    async fn put_pending_subscription(
        &self,
        username: &str,
        contact: &str,
        stanza: &str,
    ) -> StorageResult<()>;
    /// Forgets an inbound subscription request.
    async fn delete_pending_subscription(&self, username: &str, contact: &str)
    -> StorageResult<()>;
}

/// A stored offline message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Store id, for deleting it once delivered.
    pub id: i64,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub stamp_ms: i64,
    /// The message as XML.
    pub stanza: String,
}

/// How much one account may hold in offline storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineQuota {
    /// Messages.
    pub messages: usize,
    /// Bytes of stored XML, all messages together.
    pub bytes: usize,
}

/// Messages stored for accounts with no available resource.
#[async_trait]
pub trait OfflineStore: Send + Sync {
    /// Stores a message unless the account would then hold more than `quota` allows; returns
    /// whether it was stored.
    async fn store_offline(
        &self,
        username: &str,
        stanza: &str,
        stamp_ms: i64,
        quota: OfflineQuota,
    ) -> StorageResult<bool>;
    /// The stored messages, oldest first.
    async fn offline_messages(&self, username: &str) -> StorageResult<Vec<OfflineMessage>>;
    /// At most `limit` stored messages with an id above `after`, oldest first: a large store
    /// is read a batch at a time.
    async fn offline_batch(
        &self,
        username: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<OfflineMessage>>;
    /// Deletes delivered messages.
    async fn delete_offline(&self, username: &str, ids: &[i64]) -> StorageResult<()>;
    /// Number of stored messages.
    async fn offline_count(&self, username: &str) -> StorageResult<usize>;
    /// Deletes every message stored before `before_ms` (milliseconds since the Unix epoch),
    /// for every account; returns how many went.
    async fn expire_offline(&self, before_ms: i64) -> StorageResult<usize>;
}

/// The stores a server and its modules use.
#[derive(Clone)]
pub struct Storage {
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Rosters.
    pub roster: Arc<dyn RosterStore>,
    /// Offline messages.
    pub offline: Arc<dyn OfflineStore>,
    sqlite: Option<Arc<SqliteStore>>,
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
///         account_deleted: &["DELETE FROM example_notes WHERE author = ?1"],
///     },
/// }
/// ```
pub struct ModuleSchema {
    /// The owning module's name.
    pub module: &'static str,
    /// SQL batches, applied in order, each once.
    pub migrations: &'static [&'static str],
    /// Statements run, in order, in the transaction that deletes an account, with `?1` the
    /// account's name (localpart) and `?2` its bare JID: the module forgets what belonged to
    /// the account and revokes what it was granted, whichever way the account is deleted
    /// (in-band, or `lithosd user delete` with no server running).
    pub account_deleted: &'static [&'static str],
}

inventory::collect!(ModuleSchema);

impl Storage {
    /// The SQLite store, for modules with their own tables.
    pub fn sqlite_store(&self) -> Option<&SqliteStore> {
        self.sqlite.as_deref()
    }

    /// All three stores from one SQLite database.
    pub fn sqlite(store: SqliteStore) -> Storage {
        let s = Arc::new(store);
        Storage {
            accounts: s.clone(),
            roster: s.clone(),
            offline: s.clone(),
            sqlite: Some(s),
        }
    }
    /// Makes sure everything is on disk (a WAL checkpoint), for a clean shutdown.
    pub async fn flush(&self) -> StorageResult<()> {
        if let Some(s) = &self.sqlite {
            s.checkpoint().await?;
        }
        Ok(())
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
        assert!(std::error::Error::source(cause).is_some(), "the context keeps the cause");
        assert!(e.to_string().contains("stored value 7"), "{e}");
    }
}
