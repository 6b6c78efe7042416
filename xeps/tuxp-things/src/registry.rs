//! The thing registry, in the server's database: which things are registered and who owns
//! them, pending registration authorizations, and who else may command each thing.

use std::time::Duration;

use lithos_core::stanza::{DefinedCondition, StanzaError};

use crate::now_ms;

use lithos_server::storage::rusqlite::{OptionalExtension, params, params_from_iter};
use lithos_server::storage::{ModuleSchema, SqliteStore, StorageError};

/// This crate's tables, registered by `extension!` in `lib.rs`.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
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
        // 3: the registration key an operator gives with an authorization (its SHA-256;
        // issue 14: the key was never checked), and lookups by account for deletions.
        "ALTER TABLE things_authorizations ADD COLUMN key_hash BLOB;
         CREATE INDEX things_by_owner ON things_registered (owner);
         CREATE INDEX things_grants_by_account ON things_grants (account);
         CREATE INDEX things_follows_by_follower ON things_follows (follower);
         CREATE INDEX things_authorizations_by_authorizer ON things_authorizations (authorizer);",
        // 4: LAN nodes behind concentrators (reference §3.5): each a thing with an owner,
        // reached at `<gateway>/<lan-id>`.
        "CREATE TABLE things_nodes (
            gateway TEXT NOT NULL,
            lan_id INTEGER NOT NULL,
            thing_id TEXT NOT NULL UNIQUE,
            model TEXT NOT NULL,
            net TEXT NOT NULL,
            address TEXT NOT NULL,
            owner TEXT NOT NULL,
            added_ms INTEGER NOT NULL,
            PRIMARY KEY (gateway, lan_id)
         );
         CREATE INDEX things_nodes_by_owner ON things_nodes (owner);",
    ],
    postgres: None,
    account_deleted: &[
        // The account is a thing: it leaves the registry, with who may command and follow
        // it, so a new account of its name inherits none of it.
        "DELETE FROM things_grants WHERE thing_id IN
            (SELECT thing_id FROM things_registered WHERE thing_name = ?1)",
        "DELETE FROM things_follows WHERE thing_id IN
            (SELECT thing_id FROM things_registered WHERE thing_name = ?1)",
        "DELETE FROM things_authorizations WHERE thing_id IN
            (SELECT thing_id FROM things_registered WHERE thing_name = ?1)",
        "DELETE FROM things_registered WHERE thing_name = ?1",
        // Things it owns become unowned: the grants their owner gave go, and their
        // credentials are revoked: their stored SCRAM keys are replaced with random bytes
        // no password derives. Their accounts stay (the name stays taken, its data the
        // thing's); an operator's new authorization lets them register again, under a new
        // owner, with new credentials.
        "DELETE FROM things_grants WHERE thing_id IN
            (SELECT thing_id FROM things_registered WHERE owner = ?1)",
        "UPDATE accounts SET
            sha1_stored_key = randomblob(20), sha1_server_key = randomblob(20),
            sha256_stored_key = randomblob(32), sha256_server_key = randomblob(32)
         WHERE username IN (SELECT thing_name FROM things_registered WHERE owner = ?1)",
        "UPDATE things_registered SET owner = '' WHERE owner = ?1",
        // What it was granted, what it follows, and the authorizations it gave.
        "DELETE FROM things_grants WHERE account = ?1",
        "DELETE FROM things_follows WHERE follower = ?2",
        // ... and what its nodes followed, were it a gateway (`<bare>/<lan-id>`).
        "DELETE FROM things_follows WHERE substr(follower, 1, length(?2) + 1) = ?2 || '/'",
        "UPDATE things_authorizations SET canceled = 1 WHERE authorizer = ?1 AND canceled = 0",
        // A gateway's account: its nodes leave with it (and what was granted on them).
        "DELETE FROM things_grants WHERE thing_id IN
            (SELECT thing_id FROM things_nodes WHERE gateway = ?1)",
        "DELETE FROM things_follows WHERE thing_id IN
            (SELECT thing_id FROM things_nodes WHERE gateway = ?1)",
        "DELETE FROM things_nodes WHERE gateway = ?1",
        // Nodes it owned become unowned, as its things do.
        "DELETE FROM things_grants WHERE thing_id IN
            (SELECT thing_id FROM things_nodes WHERE owner = ?1)",
        "UPDATE things_nodes SET owner = '' WHERE owner = ?1",
    ],
};

/// What a module holding access-dependent state (live report subscriptions, say) must
/// check again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessChange {
    /// Who may command or follow this thing (by id) changed: a grant was revoked, a follow
    /// ended, or the thing left the registry.
    Thing(String),
    /// Anything may have changed (an account was deleted, or a listener fell behind).
    All,
}

fn access_channel() -> &'static tokio::sync::broadcast::Sender<AccessChange> {
    static CHANNEL: std::sync::OnceLock<tokio::sync::broadcast::Sender<AccessChange>> =
        std::sync::OnceLock::new();
    CHANNEL.get_or_init(|| tokio::sync::broadcast::channel(1024).0)
}

/// Withdrawn access, as it happens. Revocations are rare, so the channel is shared by every
/// registry of the process (a listener checks its own server's state again); a listener that
/// falls behind gets `Lagged`, after which it must check everything.
pub fn access_changes() -> tokio::sync::broadcast::Receiver<AccessChange> {
    access_channel().subscribe()
}

/// Runs `f` for each access change until `server` shuts down, one at a time: with the
/// thing's id, or `None` when anything may have changed ([`AccessChange::All`], or changes
/// this listener missed by falling behind).
pub fn on_access_changes<F, Fut>(server: &lithos_server::ServerHandle, f: F)
where
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = access_changes();
    let mut stop = server.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                c = changes.recv() => c,
                _ = stop.changed() => return,
            };
            match change {
                Ok(AccessChange::Thing(id)) => f(Some(id)).await,
                Ok(AccessChange::All) | Err(RecvError::Lagged(_)) => f(None).await,
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Generations of access: the whole process's (bumped by [`AccessChange::All`]), and each
/// thing's whose access changed.
struct Generations {
    all: u64,
    things: std::collections::HashMap<String, u64>,
}

fn generations() -> std::sync::MutexGuard<'static, Generations> {
    static G: std::sync::OnceLock<std::sync::Mutex<Generations>> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        std::sync::Mutex::new(Generations {
            all: 0,
            things: std::collections::HashMap::new(),
        })
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// A number that changes, synchronously, whenever access to `thing_id` may have been
/// withdrawn. A module that decided something on access at generation `g` (a live
/// subscription, say) acts on it only while the generation is still `g`, and checks again
/// when it is not: so nothing is delivered after a revocation has been answered, even before
/// the [`access_changes`] listener ran.
pub fn access_generation(thing_id: &str) -> u64 {
    let g = generations();
    g.all
        .wrapping_add(g.things.get(thing_id).copied().unwrap_or(0))
}

/// Tells every [`access_changes`] listener, and moves the [`access_generation`] on first
/// (an account's deletion is told by the modules that hear it, with [`AccessChange::All`]).
pub fn access_changed(change: AccessChange) {
    {
        let mut g = generations();
        match &change {
            AccessChange::Thing(id) => {
                let n = g.things.entry(id.clone()).or_insert(0);
                *n = n.wrapping_add(1);
            }
            AccessChange::All => g.all = g.all.wrapping_add(1),
        }
    }
    // No listener: nothing holds state that depends on access.
    let _ = access_channel().send(change);
}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The thing is already registered.
    #[error("the thing is already registered")]
    AlreadyRegistered,
    /// The gateway already has a node with that LAN id.
    #[error("the gateway already has a node with that LAN id")]
    LanIdTaken,
    /// No such registered thing.
    #[error("no such thing")]
    NotFound,
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

/// An authorization waiting for its thing ([`Registry::pending_authorizations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// The thing id it lets register.
    pub thing_id: String,
    /// The operator who gave it (the thing's owner once registered).
    pub authorizer: String,
    /// When it was given, in milliseconds since the Unix epoch.
    pub authorized_ms: i64,
    /// When it stops being valid.
    pub expires_ms: i64,
    /// Whether the thing must present a registration key.
    pub with_key: bool,
}

/// An operator's authorization for a thing to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Its row, to consume it when the thing registers.
    pub id: i64,
    /// The operator's account.
    pub authorizer: String,
    /// When it stops being valid, in milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// The SHA-256 of the registration key the operator gave, if one was given.
    pub key_hash: Option<Vec<u8>>,
}

impl Authorization {
    /// Whether `key` is the registration key the operator gave (compared in constant time);
    /// true for an authorization given without a key.
    pub fn accepts_key(&self, key: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        match &self.key_hash {
            None => true,
            Some(h) => bool::from(sha2::Sha256::digest(key.as_bytes()).as_slice().ct_eq(h)),
        }
    }
}

fn key_hash(key: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).to_vec()
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
        let thing = Registry::of(server)
            .by_name(name)
            .await?
            .map(std::sync::Arc::new);
        lock().insert(name.to_string(), thing.clone());
        Ok(thing)
    }

    /// The thing that sent `stanza` on `session`, and who spoke: the thing, or the LAN node
    /// its edge resource speaks for ([`speaker`](crate::speaker)). `bad-request` for a node
    /// the session may not speak for, `not-allowed` with `refusal` when the account is not a
    /// thing, `internal-server-error` when the registry cannot be read.
    pub async fn sender(
        &self,
        server: &lithos_server::ServerHandle,
        session: &lithos_server::SessionInfo,
        stanza: &lithos_core::Element,
        refusal: &'static str,
    ) -> Result<(lithos_core::Jid, std::sync::Arc<ThingRecord>), StanzaError> {
        let speaker = crate::speaker(stanza, session)
            .map_err(|e| StanzaError::explained(DefinedCondition::BadRequest, e))?;
        let name = session.jid.local().unwrap_or_default();
        match self.get(server, name).await {
            Ok(Some(thing)) => Ok((speaker, thing)),
            Ok(None) => Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                refusal,
            )),
            Err(e) => Err(lithos_server::module::internal_error(e)),
        }
    }

    /// Drops what is known of the account `name`.
    pub fn forget(&self, name: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Drops everything (an account was deleted: things it owned changed owner).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
    pub fn of(server: &lithos_server::ServerHandle) -> Registry {
        Registry::new(server.storage().database().clone())
    }

    /// The registry in `db`.
    pub fn new(db: SqliteStore) -> Registry {
        Registry { db }
    }

    /// Runs `f` on the database; its own errors pass through.
    pub(crate) async fn run<T: Send + 'static>(
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

    /// Records that `authorizer` allows `thing_id` to register during `validity`, with
    /// `key` (the registration key the device will present; only its SHA-256 is kept). Only
    /// the latest authorization of a thing counts. A registered thing cannot be authorized,
    /// unless it has no owner (its owner's account was deleted): it registers again under
    /// the new one.
    pub async fn authorize(
        &self,
        thing_id: &str,
        authorizer: &str,
        validity: Duration,
        key: Option<&str>,
    ) -> R<()> {
        let (id, by) = (thing_id.to_string(), authorizer.to_string());
        let hash = key.map(key_hash);
        self.run(move |c| {
            let tx = c.transaction()?;
            let owned: bool = tx
                .query_row(
                    "SELECT 1 FROM things_registered WHERE thing_id = ?1 AND owner != ''",
                    params![id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if owned {
                return Err(RegistryError::AlreadyRegistered);
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO things_authorizations
                    (thing_id, authorizer, authorized_ms, expires_ms, key_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id,
                    by,
                    now,
                    now.saturating_add(validity.as_millis() as i64),
                    hash
                ],
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
                    "SELECT id, authorizer, expires_ms, canceled, key_hash FROM things_authorizations
                     WHERE thing_id = ?1 ORDER BY id DESC LIMIT 1",
                    params![id],
                    |r| {
                        Ok((
                            Authorization {
                                id: r.get(0)?,
                                authorizer: r.get(1)?,
                                expires_ms: r.get(2)?,
                                key_hash: r.get(4)?,
                            },
                            r.get::<_, bool>(3)?,
                        ))
                    },
                )
                .optional()?;
            Ok(latest.and_then(|(a, canceled)| (!canceled && a.expires_ms > now_ms()).then_some(a)))
        })
        .await
    }

    /// Records a registered thing, consuming the authorization it registered with (if
    /// any), so that it cannot serve twice. A thing registered before without an owner
    /// (unowned: its owner's account was deleted) is registered again: new owner, new
    /// security key. `AlreadyRegistered` if its id or name is taken otherwise.
    pub async fn register(&self, thing: ThingRecord, authorization: Option<i64>) -> R<()> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "INSERT INTO things_registered
                    (thing_id, thing_name, model, owner, registered_ms, security_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (thing_id) DO UPDATE SET
                    owner = excluded.owner, registered_ms = excluded.registered_ms,
                    security_key = excluded.security_key
                 WHERE things_registered.owner = '' AND excluded.owner != ''
                   AND things_registered.thing_name = excluded.thing_name",
                params![
                    thing.thing_id,
                    thing.thing_name,
                    thing.model,
                    thing.owner,
                    thing.registered_ms,
                    thing.security_key
                ],
            );
            let n = match n {
                Ok(n) => n,
                // The name is taken by another thing (a UNIQUE violation on thing_name).
                Err(lithos_server::storage::rusqlite::Error::SqliteFailure(e, _))
                    if e.code
                        == lithos_server::storage::rusqlite::ErrorCode::ConstraintViolation =>
                {
                    0
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(RegistryError::AlreadyRegistered);
            }
            if let Some(a) = authorization {
                tx.execute(
                    "UPDATE things_authorizations SET canceled = 1 WHERE id = ?1",
                    params![a],
                )?;
            }
            tx.commit()?;
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
        .await?;
        access_changed(AccessChange::Thing(thing_id.to_string()));
        Ok(())
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

    /// The account names of the things `owner` owns.
    pub async fn owned_by(&self, owner: &str) -> R<Vec<String>> {
        let owner = owner.to_string();
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT thing_name FROM things_registered WHERE owner = ?1 AND owner != ''",
            )?;
            let rows = st.query_map(params![owner], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// The things `account` may command: those it owns (`true`), then those it was granted
    /// (`false`), each by name.
    pub async fn commanded_by(&self, account: &str) -> R<Vec<(ThingRecord, bool)>> {
        let account = account.to_string();
        self.run(move |c| {
            let mut st = c.prepare(&format!(
                "{RECORD} WHERE owner = ?1 AND owner != '' ORDER BY thing_name"
            ))?;
            let mut v: Vec<(ThingRecord, bool)> = st
                .query_map(params![account], record)?
                .map(|r| r.map(|t| (t, true)))
                .collect::<Result<_, _>>()?;
            let mut st = c.prepare(&format!(
                "{RECORD} WHERE thing_id IN (SELECT thing_id FROM things_grants WHERE account = ?1)
                   AND owner != ?1 ORDER BY thing_name"
            ))?;
            for r in st.query_map(params![account], record)? {
                v.push((r?, false));
            }
            Ok(v)
        })
        .await
    }

    /// The accounts that may command the thing: its owner (if it has one), then the
    /// accounts it granted.
    pub async fn commanders(&self, thing_id: &str) -> R<Vec<String>> {
        let id = thing_id.to_string();
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT owner FROM things_registered WHERE thing_id = ?1 AND owner != ''
                 UNION ALL
                 SELECT account FROM things_grants WHERE thing_id = ?1",
            )?;
            let rows = st.query_map(params![id], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// Authorizations still waiting for their thing to register (neither used, cancelled
    /// nor expired), the newest first, `limit` at most.
    pub async fn pending_authorizations(&self, limit: usize) -> R<Vec<PendingAuthorization>> {
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT a.thing_id, a.authorizer, a.authorized_ms, a.expires_ms,
                        a.key_hash IS NOT NULL
                 FROM things_authorizations a
                 WHERE a.id = (SELECT MAX(id) FROM things_authorizations b
                               WHERE b.thing_id = a.thing_id)
                   AND a.canceled = 0 AND a.expires_ms > ?1
                   AND NOT EXISTS (SELECT 1 FROM things_registered r
                                   WHERE r.thing_id = a.thing_id AND r.owner != '')
                 ORDER BY a.id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![now_ms(), limit as i64], |r| {
                Ok(PendingAuthorization {
                    thing_id: r.get(0)?,
                    authorizer: r.get(1)?,
                    authorized_ms: r.get(2)?,
                    expires_ms: r.get(3)?,
                    with_key: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
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

    /// Withdraws a grant; returns whether there was one. Tells [`access_changes`]
    /// listeners.
    pub async fn revoke(&self, thing_id: &str, account: &str) -> R<bool> {
        let sql = "DELETE FROM things_grants WHERE thing_id = ?1 AND account = ?2";
        let revoked = self.execute(sql, [thing_id, account]).await? > 0;
        access_changed(AccessChange::Thing(thing_id.to_string()));
        Ok(revoked)
    }

    /// Records that `follower` (a bare JID, or `<gateway>/<lan-id>` for a LAN node) asks to follow `event` (`{ns}name`) of the thing;
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

    /// Approves a requested follow; `false` when nobody asked for it. Tells
    /// [`access_changes`] listeners (a gateway routing follows between its nodes learns it).
    pub async fn approve_follow(&self, thing_id: &str, event: &str, follower: &str) -> R<bool> {
        let sql = "UPDATE things_follows SET approved = 1
                   WHERE thing_id = ?1 AND event = ?2 AND follower = ?3";
        let approved = self.execute(sql, [thing_id, event, follower]).await? > 0;
        if approved {
            access_changed(AccessChange::Thing(thing_id.to_string()));
        }
        Ok(approved)
    }

    /// Ends a follow (requested or approved); `false` when there was none. Tells
    /// [`access_changes`] listeners.
    pub async fn unfollow(&self, thing_id: &str, event: &str, follower: &str) -> R<bool> {
        let sql = "DELETE FROM things_follows WHERE thing_id = ?1 AND event = ?2 AND follower = ?3";
        let ended = self.execute(sql, [thing_id, event, follower]).await? > 0;
        access_changed(AccessChange::Thing(thing_id.to_string()));
        Ok(ended)
    }

    /// What `follower` (a bare JID) is approved to follow of the thing: `{ns}name` keys.
    pub async fn followed(&self, thing_id: &str, follower: &str) -> R<Vec<String>> {
        let (id, who) = (thing_id.to_string(), follower.to_string());
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT event FROM things_follows WHERE thing_id = ?1 AND follower = ?2 AND approved = 1",
            )?;
            let rows = st.query_map(params![id, who], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
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
        self.may_command(&thing.thing_id, &thing.owner, account)
            .await
    }

    /// Whether `account` may command the thing (or LAN node) `thing_id` owned by `owner`.
    pub async fn may_command(&self, thing_id: &str, owner: &str, account: &str) -> R<bool> {
        if !owner.is_empty() && owner == account {
            return Ok(true);
        }
        let (id, acct) = (thing_id.to_string(), account.to_string());
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
        r.authorize(id, "alice", Duration::from_secs(300), Some("KEY"))
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
        r.authorize(id, "bob", Duration::from_millis(0), None)
            .await
            .unwrap();
        assert_eq!(r.valid_authorization(id).await.unwrap(), None);
        r.authorize(id, "carol", Duration::from_secs(60), Some("KEY"))
            .await
            .unwrap();
        let a = r.valid_authorization(id).await.unwrap().unwrap();
        assert_eq!(a.authorizer, "carol");
        // The key is checked, not stored: only its hash is.
        assert!(a.accepts_key("KEY"));
        assert!(!a.accepts_key("KEY "));
        assert!(!a.accepts_key(""));
        assert_ne!(a.key_hash.as_deref(), Some(&b"KEY"[..]));
    }

    #[tokio::test]
    async fn registration_ownership_and_grants() {
        let (_d, r) = registry();
        let t = thing("SL-01-0A1B2C3D", "alice");
        r.authorize(&t.thing_id, "alice", Duration::from_secs(60), Some("K"))
            .await
            .unwrap();
        let a = r.valid_authorization(&t.thing_id).await.unwrap().unwrap();
        r.register(t.clone(), Some(a.id)).await.unwrap();
        // The authorization served once.
        assert_eq!(r.valid_authorization(&t.thing_id).await.unwrap(), None);
        assert_eq!(
            r.register(t.clone(), None).await,
            Err(RegistryError::AlreadyRegistered)
        );
        assert_eq!(
            r.authorize(&t.thing_id, "alice", Duration::from_secs(60), None)
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
        // Unowned (its owner's account was deleted), it may be authorized and registered
        // again, under a new owner; another thing cannot take its name.
        r.run(|c| {
            c.execute("UPDATE things_registered SET owner = ''", [])?;
            Ok(())
        })
        .await
        .unwrap();
        r.authorize(&t.thing_id, "carol", Duration::from_secs(60), None)
            .await
            .unwrap();
        r.register(thing("SL-01-0A1B2C3D", "carol"), None)
            .await
            .unwrap();
        assert_eq!(r.by_id(&t.thing_id).await.unwrap().unwrap().owner, "carol");
        let mut impostor = thing("SL-01-99999999", "mallory");
        impostor.thing_name = t.thing_name.clone();
        assert_eq!(
            r.register(impostor, None).await,
            Err(RegistryError::AlreadyRegistered)
        );
        r.unregister(&t.thing_id).await.unwrap();
        assert_eq!(r.by_id(&t.thing_id).await.unwrap(), None);
        assert_eq!(
            r.unregister(&t.thing_id).await,
            Err(RegistryError::NotFound)
        );
    }
}
