//! The fragments' table, in the server's database.

#![cfg(feature = "server")]

use lithos_server::ServerHandle;
use lithos_server::params;
use lithos_server::storage::{Database, ModuleSchema, StorageResult};

/// The table: one row per account, namespace and element name.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "private",
    migrations: &["CREATE TABLE private_fragments (
            username TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
            xml TEXT NOT NULL, size INTEGER NOT NULL,
            PRIMARY KEY (username, ns, name))"],
    postgres: Some(&["CREATE TABLE private_fragments (
            username TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
            xml TEXT NOT NULL, size BIGINT NOT NULL,
            PRIMARY KEY (username, ns, name))"]),
    account_deleted: &["DELETE FROM private_fragments WHERE username = ?1"],
};

/// Why a set was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The account would hold more than its limit.
    AccountFull,
}

/// Private fragments. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PrivateStore {
    db: Database,
}

impl PrivateStore {
    /// The store of the server's database.
    pub fn of(server: &ServerHandle) -> PrivateStore {
        PrivateStore::new(server.storage().db().clone())
    }

    /// The store in `db`.
    pub fn new(db: Database) -> PrivateStore {
        PrivateStore { db }
    }

    /// The fragment `{ns}name` of `username`, as XML.
    pub async fn get(&self, username: &str, ns: &str, name: &str) -> StorageResult<Option<String>> {
        let (u, n, e) = (username.to_string(), ns.to_string(), name.to_string());
        self.db
            .run(move |c| {
                c.query_opt(
                    "SELECT xml FROM private_fragments WHERE username = ?1 AND ns = ?2 AND name = ?3",
                    params![u, n, e],
                    |r| r.get(0),
                )
            })
            .await
    }

    /// Stores every fragment (`(ns, name, xml)`) in one transaction, replacing those of the
    /// same name and namespace, unless the account would then hold more than
    /// `max_account_bytes`.
    pub async fn put(
        &self,
        username: &str,
        fragments: Vec<(String, String, String)>,
        max_account_bytes: usize,
    ) -> StorageResult<Result<(), Refused>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                let mut tx = c.transaction()?;
                for (ns, name, xml) in &fragments {
                    tx.execute(
                        "INSERT INTO private_fragments (username, ns, name, xml, size)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (username, ns, name) DO UPDATE SET xml = ?4, size = ?5",
                        params![u, ns, name, xml, xml.len() as i64],
                    )?;
                }
                let total: i64 = tx.query_value(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM private_fragments
                     WHERE username = ?1",
                    params![u],
                )?;
                if total as usize > max_account_bytes {
                    // Dropping the transaction rolls the writes back.
                    return Ok(Err(Refused::AccountFull));
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }
}
