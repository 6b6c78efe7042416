//! The offline store's table: messages kept for accounts with no available resource, in the
//! server's embedded database.

use lithos_server::ServerHandle;
use lithos_server::storage::rusqlite::{self, params};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageResult};

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

/// The offline store's table. Databases written before the offline store had its own schema
/// (release 0.1.0) hold it already, in this shape: the statements only create what is
/// missing.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "offline",
    migrations: &["CREATE TABLE IF NOT EXISTS offline_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL, stamp_ms INTEGER NOT NULL, stanza TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0);
         CREATE INDEX IF NOT EXISTS offline_by_user ON offline_messages (username, id, size);
         CREATE INDEX IF NOT EXISTS offline_by_stamp ON offline_messages (stamp_ms);"],
    postgres: None,
    account_deleted: &["DELETE FROM offline_messages WHERE username = ?1"],
};

/// Offline messages. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OfflineStore {
    db: SqliteStore,
}

impl OfflineStore {
    /// The offline store of the server's database.
    pub fn of(server: &ServerHandle) -> OfflineStore {
        OfflineStore::new(server.storage().database().clone())
    }

    /// The offline store in `db`.
    pub fn new(db: SqliteStore) -> OfflineStore {
        OfflineStore { db }
    }

    /// Stores a message unless the account would then hold more than `quota` allows; returns
    /// whether it was stored.
    pub async fn store_offline(
        &self,
        username: &str,
        stanza: &str,
        stamp_ms: i64,
        quota: OfflineQuota,
    ) -> StorageResult<bool> {
        let (u, s) = (username.to_string(), stanza.to_string());
        self.db
            .run(move |conn| {
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

    /// The stored messages, oldest first.
    pub async fn offline_messages(&self, username: &str) -> StorageResult<Vec<OfflineMessage>> {
        self.offline_batch(username, i64::MIN, usize::MAX).await
    }

    /// At most `limit` stored messages with an id above `after`, oldest first: a large store
    /// is read a batch at a time.
    pub async fn offline_batch(
        &self,
        username: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<OfflineMessage>> {
        let u = username.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .run(move |conn| {
                let mut st = conn.prepare_cached(
                    "SELECT id, stamp_ms, stanza FROM offline_messages
                 WHERE username = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )?;
                let rows = st.query_map(params![u, after, limit], offline_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Deletes delivered messages.
    pub async fn delete_offline(&self, username: &str, ids: &[i64]) -> StorageResult<()> {
        let (u, ids) = (username.to_string(), ids.to_vec());
        self.db
            .run(move |conn| {
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

    /// Number of stored messages.
    pub async fn offline_count(&self, username: &str) -> StorageResult<usize> {
        let u = username.to_string();
        self.db
            .run(move |conn| {
                let n: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM offline_messages WHERE username = ?1",
                    params![u],
                    |r| r.get(0),
                )?;
                Ok(n as usize)
            })
            .await
    }

    /// Deletes every message stored before `before_ms` (milliseconds since the Unix epoch),
    /// for every account; returns how many went.
    pub async fn expire_offline(&self, before_ms: i64) -> StorageResult<usize> {
        self.db
            .run(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM offline_messages WHERE stamp_ms < ?1",
                    params![before_ms],
                )?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offline_messages_have_a_quota_in_messages_and_bytes() {
        let s = OfflineStore::new(SqliteStore::in_memory().unwrap());
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
        let s = OfflineStore::new(SqliteStore::in_memory().unwrap());
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
}
