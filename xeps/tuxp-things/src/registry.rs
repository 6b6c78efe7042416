//! The thing registry, in the server's database: which things are registered and who owns
//! them, pending registration authorizations, and who else may command each thing.

use std::time::Duration;

use crate::now_ms;

use lithos_server::storage::rusqlite::{OptionalExtension, params, params_from_iter};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageError};

lithos_server::inventory::submit! {
    ModuleSchema {
        module: "things",
        migrations: &[
            "CREATE TABLE things_registered (
                thing_id TEXT PRIMARY KEY,
                thing_name TEXT NOT NULL UNIQUE,
                model TEXT NOT NULL,
                owner TEXT NOT NULL,
                registered_ms INTEGER NOT NULL,
                security_key BLOB NOT NULL
             );
             CREATE TABLE things_authorizations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                thing_id TEXT NOT NULL,
                authorizer TEXT NOT NULL,
                authorized_ms INTEGER NOT NULL,
                expires_ms INTEGER NOT NULL,
                canceled INTEGER NOT NULL DEFAULT 0
             );
             CREATE INDEX things_authorizations_by_thing ON things_authorizations (thing_id, id);
             CREATE TABLE things_grants (
                thing_id TEXT NOT NULL,
                account TEXT NOT NULL,
                PRIMARY KEY (thing_id, account)
             );",
            // 2: friends/follow (reference §3.8): who follows which event of which thing,
            // requested by the follower, approved by an operator.
            "CREATE TABLE things_follows (
                thing_id TEXT NOT NULL,
                event TEXT NOT NULL,
                follower TEXT NOT NULL,
                approved INTEGER NOT NULL DEFAULT 0,
                requested_ms INTEGER NOT NULL,
                PRIMARY KEY (thing_id, event, follower)
             );",
        ],
    }
}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The thing is already registered.
    #[error("the thing is already registered")]
    AlreadyRegistered,
    /// No such registered thing.
    #[error("no such thing")]
    NotFound,
    /// The server has no database for things (a custom store without SQLite).
    #[error("the thing registry needs the embedded database")]
    NoDatabase,
    /// The database failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

impl From<lithos_server::storage::rusqlite::Error> for RegistryError {
    fn from(e: lithos_server::storage::rusqlite::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

/// A registered thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingRecord {
    /// Its id.
    pub thing_id: String,
    /// Its JID local part (and account name).
    pub thing_name: String,
    /// Its model's name.
    pub model: String,
    /// The account that authorized its registration: its owner.
    pub owner: String,
    /// When it registered, in milliseconds since the Unix epoch.
    pub registered_ms: i64,
    /// The 16-byte key handed to it at registration (for its LAN).
    pub security_key: Vec<u8>,
}

/// An operator's authorization for a thing to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The operator's account.
    pub authorizer: String,
    /// When it stops being valid, in milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

/// Registered things by account name, for modules that look one up for every stanza a thing
/// sends (reports, notifications): the registry is read once per thing, not per stanza. A
/// thing's record does not change while it is registered; call [`forget`](Self::forget)
/// when its account is deleted.
#[derive(Debug, Default)]
pub struct ThingCache {
    /// Account name → the thing (`None`: the account is not a thing).
    map: std::sync::Mutex<std::collections::HashMap<String, Option<std::sync::Arc<ThingRecord>>>>,
}

impl ThingCache {
    /// The thing whose account is `name`, `None` when the account is not a thing.
    pub async fn get(
        &self,
        server: &lithos_server::ServerHandle,
        name: &str,
    ) -> R<Option<std::sync::Arc<ThingRecord>>> {
        let lock = || self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = lock().get(name) {
            return Ok(t.clone());
        }
        let thing = Registry::of(server)?
            .by_name(name)
            .await?
            .map(std::sync::Arc::new);
        lock().insert(name.to_string(), thing.clone());
        Ok(thing)
    }

    /// Drops what is known of the account `name`.
    pub fn forget(&self, name: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

/// The registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    db: SqliteStore,
}

type R<T> = Result<T, RegistryError>;

fn record(
    r: &lithos_server::storage::rusqlite::Row<'_>,
) -> lithos_server::storage::rusqlite::Result<ThingRecord> {
    Ok(ThingRecord {
        thing_id: r.get(0)?,
        thing_name: r.get(1)?,
        model: r.get(2)?,
        owner: r.get(3)?,
        registered_ms: r.get(4)?,
        security_key: r.get(5)?,
    })
}

const RECORD: &str =
    "SELECT thing_id, thing_name, model, owner, registered_ms, security_key FROM things_registered";

impl Registry {
    /// The registry in `server`'s database.
    pub fn of(server: &lithos_server::ServerHandle) -> R<Registry> {
        server
            .storage()
            .sqlite_store()
            .cloned()
            .map(|db| Registry { db })
            .ok_or(RegistryError::NoDatabase)
    }

    /// The registry in `db`.
    pub fn new(db: SqliteStore) -> Registry {
        Registry { db }
    }

    /// Runs `f` on the database; its own errors pass through.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut lithos_server::storage::rusqlite::Connection) -> R<T> + Send + 'static,
    ) -> R<T> {
        self.db.run(move |c| Ok(f(c))).await?
    }

    /// Runs one statement whose parameters are `args`, in order; returns how many rows it
    /// changed.
    async fn execute<const N: usize>(&self, sql: &'static str, args: [&str; N]) -> R<usize> {
        let args = args.map(str::to_string);
        self.run(move |c| Ok(c.execute(sql, params_from_iter(args.iter()))?))
            .await
    }

    /// Records that `authorizer` allows `thing_id` to register during `validity`. Only the
    /// latest authorization of a thing counts. A registered thing cannot be authorized.
    pub async fn authorize(&self, thing_id: &str, authorizer: &str, validity: Duration) -> R<()> {
        let (id, by) = (thing_id.to_string(), authorizer.to_string());
        self.run(move |c| {
            let tx = c.transaction()?;
            let registered: bool = tx
                .query_row(
                    "SELECT 1 FROM things_registered WHERE thing_id = ?1",
                    params![id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if registered {
                return Err(RegistryError::AlreadyRegistered);
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO things_authorizations (thing_id, authorizer, authorized_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, by, now, now.saturating_add(validity.as_millis() as i64)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Cancels the thing's latest authorization, if `authorizer` gave it and it is still
    /// pending. Returns whether one was cancelled.
    pub async fn cancel_authorization(&self, thing_id: &str, authorizer: &str) -> R<bool> {
        let (id, by) = (thing_id.to_string(), authorizer.to_string());
        self.run(move |c| {
            let n = c.execute(
                "UPDATE things_authorizations SET canceled = 1
                 WHERE id = (SELECT MAX(id) FROM things_authorizations WHERE thing_id = ?1)
                   AND authorizer = ?2 AND canceled = 0 AND expires_ms > ?3",
                params![id, by, now_ms()],
            )?;
            Ok(n > 0)
        })
        .await
    }

    /// The thing's authorization to register, if its latest one is neither cancelled nor
    /// expired.
    pub async fn valid_authorization(&self, thing_id: &str) -> R<Option<Authorization>> {
        let id = thing_id.to_string();
        self.run(move |c| {
            let latest = c
                .query_row(
                    "SELECT authorizer, expires_ms, canceled FROM things_authorizations
                     WHERE thing_id = ?1 ORDER BY id DESC LIMIT 1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, bool>(2)?,
                        ))
                    },
                )
                .optional()?;
            Ok(latest.and_then(|(authorizer, expires_ms, canceled)| {
                (!canceled && expires_ms > now_ms()).then_some(Authorization {
                    authorizer,
                    expires_ms,
                })
            }))
        })
        .await
    }

    /// Records a registered thing; `AlreadyRegistered` if its id or name is taken.
    pub async fn register(&self, thing: ThingRecord) -> R<()> {
        self.run(move |c| {
            let n = c.execute(
                "INSERT INTO things_registered
                    (thing_id, thing_name, model, owner, registered_ms, security_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![
                    thing.thing_id,
                    thing.thing_name,
                    thing.model,
                    thing.owner,
                    thing.registered_ms,
                    thing.security_key
                ],
            )?;
            if n == 0 {
                return Err(RegistryError::AlreadyRegistered);
            }
            Ok(())
        })
        .await
    }

    /// Forgets a registered thing, its grants and authorizations.
    pub async fn unregister(&self, thing_id: &str) -> R<()> {
        let id = thing_id.to_string();
        self.run(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM things_registered WHERE thing_id = ?1",
                params![id],
            )?;
            tx.execute("DELETE FROM things_grants WHERE thing_id = ?1", params![id])?;
            tx.execute(
                "DELETE FROM things_follows WHERE thing_id = ?1",
                params![id],
            )?;
            tx.execute(
                "DELETE FROM things_authorizations WHERE thing_id = ?1",
                params![id],
            )?;
            tx.commit()?;
            if n == 0 {
                return Err(RegistryError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// A registered thing by id.
    pub async fn by_id(&self, thing_id: &str) -> R<Option<ThingRecord>> {
        let id = thing_id.to_string();
        self.run(move |c| {
            Ok(c.query_row(
                &format!("{RECORD} WHERE thing_id = ?1"),
                params![id],
                record,
            )
            .optional()?)
        })
        .await
    }

    /// A registered thing by name (its JID local part).
    pub async fn by_name(&self, thing_name: &str) -> R<Option<ThingRecord>> {
        let name = thing_name.to_string();
        self.run(move |c| {
            Ok(c.query_row(
                &format!("{RECORD} WHERE thing_name = ?1"),
                params![name],
                record,
            )
            .optional()?)
        })
        .await
    }

    /// Allows `account` to command the thing (its owner always may).
    pub async fn grant(&self, thing_id: &str, account: &str) -> R<()> {
        self.execute(
            "INSERT INTO things_grants (thing_id, account) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [thing_id, account],
        )
        .await?;
        Ok(())
    }

    /// Withdraws a grant; returns whether there was one.
    pub async fn revoke(&self, thing_id: &str, account: &str) -> R<bool> {
        let sql = "DELETE FROM things_grants WHERE thing_id = ?1 AND account = ?2";
        Ok(self.execute(sql, [thing_id, account]).await? > 0)
    }

    /// Records that `follower` (a bare JID) asks to follow `event` (`{ns}name`) of the thing;
    /// returns whether the follow is approved already (a repeated request keeps its state).
    pub async fn request_follow(&self, thing_id: &str, event: &str, follower: &str) -> R<bool> {
        let (id, ev, who) = (
            thing_id.to_string(),
            event.to_string(),
            follower.to_string(),
        );
        let now = now_ms();
        self.run(move |c| {
            c.execute(
                "INSERT INTO things_follows (thing_id, event, follower, approved, requested_ms)
                 VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT DO NOTHING",
                params![id, ev, who, now],
            )?;
            Ok(c.query_row(
                "SELECT approved FROM things_follows
                 WHERE thing_id = ?1 AND event = ?2 AND follower = ?3",
                params![id, ev, who],
                |r| r.get::<_, bool>(0),
            )?)
        })
        .await
    }

    /// Approves a requested follow; `false` when nobody asked for it.
    pub async fn approve_follow(&self, thing_id: &str, event: &str, follower: &str) -> R<bool> {
        let sql = "UPDATE things_follows SET approved = 1
                   WHERE thing_id = ?1 AND event = ?2 AND follower = ?3";
        Ok(self.execute(sql, [thing_id, event, follower]).await? > 0)
    }

    /// Ends a follow (requested or approved); `false` when there was none.
    pub async fn unfollow(&self, thing_id: &str, event: &str, follower: &str) -> R<bool> {
        let sql = "DELETE FROM things_follows WHERE thing_id = ?1 AND event = ?2 AND follower = ?3";
        Ok(self.execute(sql, [thing_id, event, follower]).await? > 0)
    }

    /// The approved followers (bare JIDs) of `event` of the thing.
    pub async fn followers(&self, thing_id: &str, event: &str) -> R<Vec<String>> {
        let (id, ev) = (thing_id.to_string(), event.to_string());
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT follower FROM things_follows
                 WHERE thing_id = ?1 AND event = ?2 AND approved = 1 ORDER BY follower",
            )?;
            let v = st
                .query_map(params![id, ev], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(v)
        })
        .await
    }

    /// Whether `follower` (a bare JID) follows any event of the thing, approved.
    pub async fn follows_any(&self, thing_id: &str, follower: &str) -> R<bool> {
        let (id, who) = (thing_id.to_string(), follower.to_string());
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM things_follows WHERE thing_id = ?1 AND follower = ?2 AND approved = 1",
                params![id, who],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }

    /// Whether `account` may command `thing`: its owner, or an account the owner granted.
    pub async fn may_execute(&self, thing: &ThingRecord, account: &str) -> R<bool> {
        if thing.owner == account {
            return Ok(true);
        }
        let (id, acct) = (thing.thing_id.clone(), account.to_string());
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM things_grants WHERE thing_id = ?1 AND account = ?2",
                params![id, acct],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        (dir, Registry::new(db))
    }

    fn thing(id: &str, owner: &str) -> ThingRecord {
        ThingRecord {
            thing_id: id.into(),
            thing_name: id.to_lowercase(),
            model: "SL-01".into(),
            owner: owner.into(),
            registered_ms: now_ms(),
            security_key: vec![7; 16],
        }
    }

    #[tokio::test]
    async fn authorizations_expire_cancel_and_only_the_latest_counts() {
        let (_d, r) = registry();
        let id = "SL-01-0A1B2C3D";
        assert_eq!(r.valid_authorization(id).await.unwrap(), None);
        r.authorize(id, "alice", Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(
            r.valid_authorization(id).await.unwrap().unwrap().authorizer,
            "alice"
        );
        // Bob cannot cancel Alice's; Alice can.
        assert!(!r.cancel_authorization(id, "bob").await.unwrap());
        assert!(r.cancel_authorization(id, "alice").await.unwrap());
        assert_eq!(r.valid_authorization(id).await.unwrap(), None);
        // A newer one replaces the cancelled one; an expired one counts as none.
        r.authorize(id, "bob", Duration::from_millis(0))
            .await
            .unwrap();
        assert_eq!(r.valid_authorization(id).await.unwrap(), None);
        r.authorize(id, "carol", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            r.valid_authorization(id).await.unwrap().unwrap().authorizer,
            "carol"
        );
    }

    #[tokio::test]
    async fn registration_ownership_and_grants() {
        let (_d, r) = registry();
        let t = thing("SL-01-0A1B2C3D", "alice");
        r.register(t.clone()).await.unwrap();
        assert_eq!(
            r.register(t.clone()).await,
            Err(RegistryError::AlreadyRegistered)
        );
        assert_eq!(
            r.authorize(&t.thing_id, "alice", Duration::from_secs(60))
                .await,
            Err(RegistryError::AlreadyRegistered)
        );
        assert_eq!(r.by_name("sl-01-0a1b2c3d").await.unwrap(), Some(t.clone()));
        assert!(r.may_execute(&t, "alice").await.unwrap());
        assert!(!r.may_execute(&t, "bob").await.unwrap());
        r.grant(&t.thing_id, "bob").await.unwrap();
        assert!(r.may_execute(&t, "bob").await.unwrap());
        assert!(r.revoke(&t.thing_id, "bob").await.unwrap());
        assert!(!r.may_execute(&t, "bob").await.unwrap());
        r.unregister(&t.thing_id).await.unwrap();
        assert_eq!(r.by_id(&t.thing_id).await.unwrap(), None);
        assert_eq!(
            r.unregister(&t.thing_id).await,
            Err(RegistryError::NotFound)
        );
    }
}
