//! The vCards' table, in the server's database.

#![cfg(feature = "server")]

use lithos_server::ServerHandle;
use lithos_server::params;
use lithos_server::storage::{Database, ModuleSchema, StorageResult};

/// The table: one vCard per account, as XML.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "vcard",
    migrations: &["CREATE TABLE vcard_cards (username TEXT PRIMARY KEY, xml TEXT NOT NULL)"],
    postgres: Some(&["CREATE TABLE vcard_cards (username TEXT PRIMARY KEY, xml TEXT NOT NULL)"]),
    account_deleted: &["DELETE FROM vcard_cards WHERE username = ?1"],
};

/// vCards. Cheap to clone.
#[derive(Clone, Debug)]
pub struct VCardStore {
    db: Database,
}

impl VCardStore {
    /// The store of the server's database.
    pub fn of(server: &ServerHandle) -> VCardStore {
        VCardStore::new(server.storage().db().clone())
    }

    /// The store in `db`.
    pub fn new(db: Database) -> VCardStore {
        VCardStore { db }
    }

    /// The vCard of `username`, as XML.
    pub async fn get(&self, username: &str) -> StorageResult<Option<String>> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                c.query_opt(
                    "SELECT xml FROM vcard_cards WHERE username = ?1",
                    params![u],
                    |r| r.get(0),
                )
            })
            .await
    }

    /// Replaces the vCard of `username`.
    pub async fn put(&self, username: &str, xml: String) -> StorageResult<()> {
        let u = username.to_string();
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO vcard_cards (username, xml) VALUES (?1, ?2)
                     ON CONFLICT (username) DO UPDATE SET xml = ?2",
                    params![u, xml],
                )?;
                Ok(())
            })
            .await
    }
}
