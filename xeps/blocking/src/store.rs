//! The blocklists' table, in the server's database.

use lithos_server::ServerHandle;
use lithos_server::storage::rusqlite::{Connection, params};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageResult};

/// The table: one row per account and blocked address.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "blocking",
    migrations: &[
        "CREATE TABLE blocking_items (username TEXT NOT NULL, jid TEXT NOT NULL,
            PRIMARY KEY (username, jid)) WITHOUT ROWID",
    ],
    postgres: None,
    account_deleted: &["DELETE FROM blocking_items WHERE username = ?1"],
};

/// A change that would take an account past its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

/// Blocklists. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlockStore {
    db: SqliteStore,
}

fn list(c: &Connection, username: &str) -> lithos_server::storage::rusqlite::Result<Vec<String>> {
    c.prepare_cached("SELECT jid FROM blocking_items WHERE username = ?1 ORDER BY jid")?
        .query_map(params![username], |r| r.get(0))?
        .collect()
}

impl BlockStore {
    /// The store of the server's database.
    pub fn of(server: &ServerHandle) -> BlockStore {
        BlockStore::new(server.storage().database().clone())
    }

    /// The store in `db`.
    pub fn new(db: SqliteStore) -> BlockStore {
        BlockStore { db }
    }

    /// Every list: `(username, jid)` rows.
    pub async fn all(&self) -> StorageResult<Vec<(String, String)>> {
        self.db
            .run(|c| {
                Ok(
                    c.prepare("SELECT username, jid FROM blocking_items ORDER BY username, jid")?
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<Vec<_>, _>>()?,
                )
            })
            .await
    }

    /// The list of `username`.
    pub async fn list(&self, username: &str) -> StorageResult<Vec<String>> {
        let u = username.to_string();
        self.db.run(move |c| Ok(list(c, &u)?)).await
    }

    /// Adds `jids` to the list of `username`, unless it would then hold more than `max`;
    /// returns the new list.
    pub async fn block(
        &self,
        username: &str,
        jids: Vec<String>,
        max: usize,
    ) -> StorageResult<Result<Vec<String>, TooMany>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                for j in &jids {
                    tx.execute(
                        "INSERT OR IGNORE INTO blocking_items (username, jid) VALUES (?1, ?2)",
                        params![u, j],
                    )?;
                }
                let now = list(&tx, &u)?;
                if now.len() > max {
                    // Dropping the transaction rolls the inserts back.
                    return Ok(Err(TooMany));
                }
                tx.commit()?;
                Ok(Ok(now))
            })
            .await
    }

    /// Removes `jids` (all, when empty) from the list of `username`; returns the new list.
    pub async fn unblock(&self, username: &str, jids: Vec<String>) -> StorageResult<Vec<String>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                if jids.is_empty() {
                    tx.execute("DELETE FROM blocking_items WHERE username = ?1", params![u])?;
                }
                for j in &jids {
                    tx.execute(
                        "DELETE FROM blocking_items WHERE username = ?1 AND jid = ?2",
                        params![u, j],
                    )?;
                }
                let now = list(&tx, &u)?;
                tx.commit()?;
                Ok(now)
            })
            .await
    }
}
