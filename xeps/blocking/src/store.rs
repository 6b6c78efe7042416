//! The blocklists' table, in the server's database.

use lithos_server::ServerHandle;
use lithos_server::params;
use lithos_server::storage::sql::Conn;
use lithos_server::storage::{Database, ModuleSchema, StorageResult};

/// The table: one row per account and blocked address.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "blocking",
    migrations: &[
        "CREATE TABLE blocking_items (username TEXT NOT NULL, jid TEXT NOT NULL,
            PRIMARY KEY (username, jid)) WITHOUT ROWID",
    ],
    postgres: Some(&[
        "CREATE TABLE blocking_items (username TEXT NOT NULL, jid TEXT NOT NULL,
            PRIMARY KEY (username, jid))",
    ]),
    account_deleted: &["DELETE FROM blocking_items WHERE username = ?1"],
};

/// A change that would take an account past its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

/// Blocklists. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlockStore {
    db: Database,
}

fn list(c: &mut Conn<'_>, username: &str) -> StorageResult<Vec<String>> {
    c.query_map(
        "SELECT jid FROM blocking_items WHERE username = ?1 ORDER BY jid",
        params![username],
        |r| r.get(0),
    )
}

impl BlockStore {
    /// The store of the server's database.
    pub fn of(server: &ServerHandle) -> BlockStore {
        BlockStore::new(server.storage().db().clone())
    }

    /// The store in `db`.
    pub fn new(db: Database) -> BlockStore {
        BlockStore { db }
    }

    /// Every list: `(username, jid)` rows.
    pub async fn all(&self) -> StorageResult<Vec<(String, String)>> {
        self.db
            .run(|c| {
                c.query_map(
                    "SELECT username, jid FROM blocking_items ORDER BY username, jid",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    /// The list of `username`.
    pub async fn list(&self, username: &str) -> StorageResult<Vec<String>> {
        let u = username.to_string();
        self.db.run(move |c| list(c, &u)).await
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
                let mut tx = c.transaction()?;
                for j in &jids {
                    tx.execute(
                        "INSERT INTO blocking_items (username, jid) VALUES (?1, ?2)
                         ON CONFLICT DO NOTHING",
                        params![u, j],
                    )?;
                }
                let now = list(&mut tx, &u)?;
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
                let mut tx = c.transaction()?;
                if jids.is_empty() {
                    tx.execute("DELETE FROM blocking_items WHERE username = ?1", params![u])?;
                }
                for j in &jids {
                    tx.execute(
                        "DELETE FROM blocking_items WHERE username = ?1 AND jid = ?2",
                        params![u, j],
                    )?;
                }
                let now = list(&mut tx, &u)?;
                tx.commit()?;
                Ok(now)
            })
            .await
    }
}
