//! The roster's tables: items with versions (RFC 6121 §2.6) and inbound subscription
//! requests not yet answered, in the server's database.

use lithos_server::ServerHandle;
use lithos_server::params;
use lithos_server::storage::sql::{Conn, Row};
use lithos_server::storage::{Database, ModuleSchema, StorageResult};
use std::fmt;

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

/// The roster's tables. Databases written before the roster had its own schema (release
/// 0.1.0) hold them already, in this shape: the statements only create what is missing.
pub(crate) const SCHEMA: ModuleSchema = ModuleSchema {
    module: "roster",
    migrations: &["CREATE TABLE IF NOT EXISTS roster_versions (
            username TEXT PRIMARY KEY, version INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS roster_items (
            username TEXT NOT NULL, contact TEXT NOT NULL, name TEXT,
            subscription TEXT NOT NULL, ask INTEGER NOT NULL, approved INTEGER NOT NULL,
            groups TEXT NOT NULL,
            PRIMARY KEY (username, contact));
         CREATE TABLE IF NOT EXISTS pending_subscriptions (
            username TEXT NOT NULL, contact TEXT NOT NULL, stanza TEXT NOT NULL,
            PRIMARY KEY (username, contact));
         CREATE INDEX IF NOT EXISTS roster_by_contact ON roster_items (contact);
         CREATE INDEX IF NOT EXISTS pending_by_contact ON pending_subscriptions (contact);"],
    postgres: Some(&["CREATE TABLE roster_versions (
            username TEXT PRIMARY KEY, version BIGINT NOT NULL);
         CREATE TABLE roster_items (
            username TEXT NOT NULL, contact TEXT NOT NULL, name TEXT,
            subscription TEXT NOT NULL, ask BIGINT NOT NULL, approved BIGINT NOT NULL,
            groups TEXT NOT NULL,
            PRIMARY KEY (username, contact));
         CREATE TABLE pending_subscriptions (
            username TEXT NOT NULL, contact TEXT NOT NULL, stanza TEXT NOT NULL,
            PRIMARY KEY (username, contact));
         CREATE INDEX roster_by_contact ON roster_items (contact);
         CREATE INDEX pending_by_contact ON pending_subscriptions (contact);"]),
    account_deleted: &[
        "DELETE FROM roster_items WHERE username = ?1",
        "DELETE FROM roster_versions WHERE username = ?1",
        "DELETE FROM pending_subscriptions WHERE username = ?1",
        // Others' rosters keep the contact but no subscription either way: a new account of
        // the same name must not receive their presence, nor pass for their trusted contact.
        "UPDATE roster_versions SET version = version + 1 WHERE username IN
            (SELECT username FROM roster_items WHERE contact = ?2
                AND (subscription != 'none' OR ask != 0 OR approved != 0))",
        "UPDATE roster_items SET subscription = 'none', ask = 0, approved = 0 WHERE contact = ?2",
        "DELETE FROM pending_subscriptions WHERE contact = ?2",
    ],
};

/// Rosters and pending inbound subscription requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Rosters {
    db: Database,
}

impl Rosters {
    /// The rosters of the server's database.
    pub fn of(server: &ServerHandle) -> Rosters {
        Rosters::new(server.storage().db().clone())
    }

    /// The rosters in `db`.
    pub fn new(db: Database) -> Rosters {
        Rosters { db }
    }

    /// The roster's version and items.
    pub async fn roster(&self, username: &str) -> StorageResult<(u64, Vec<RosterItem>)> {
        let u = username.to_string();
        self.db
            .run(move |conn| {
                let version = version(conn, &u)?;
                let items = conn.query_map(
                    "SELECT contact, name, subscription, ask, approved, groups FROM roster_items
                 WHERE username = ?1 ORDER BY contact",
                    params![u],
                    row_to_item,
                )?;
                Ok((version, items))
            })
            .await
    }

    /// One item.
    pub async fn roster_item(
        &self,
        username: &str,
        contact: &str,
    ) -> StorageResult<Option<RosterItem>> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.db
            .run(move |conn| {
                conn.query_opt(
                    "SELECT contact, name, subscription, ask, approved, groups FROM roster_items
                     WHERE username = ?1 AND contact = ?2",
                    params![u, c],
                    row_to_item,
                )
            })
            .await
    }

    /// Adds or replaces an item; returns the roster's new version.
    pub async fn put_roster_item(&self, username: &str, item: &RosterItem) -> StorageResult<u64> {
        let (u, it) = (username.to_string(), item.clone());
        self.db.run(move |conn| {
            let mut tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO roster_items (username, contact, name, subscription, ask, approved, groups)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (username, contact) DO UPDATE SET name = ?3, subscription = ?4,
                   ask = ?5, approved = ?6, groups = ?7",
                params![
                    u, it.jid, it.name, it.subscription.as_str(), it.ask as i64,
                    it.approved as i64, it.groups.join("\n")
                ],
            )?;
            let v = bump_version(&mut tx, &u)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    /// Removes an item; returns the roster's new version (unchanged if there was none).
    pub async fn delete_roster_item(&self, username: &str, contact: &str) -> StorageResult<u64> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.db
            .run(move |conn| {
                let mut tx = conn.transaction()?;
                let n = tx.execute(
                    "DELETE FROM roster_items WHERE username = ?1 AND contact = ?2",
                    params![u, c],
                )?;
                let v = if n > 0 {
                    bump_version(&mut tx, &u)?
                } else {
                    version(&mut tx, &u)?
                };
                tx.commit()?;
                Ok(v)
            })
            .await
    }

    /// Inbound subscription requests not yet answered: contact and the request as XML.
    pub async fn pending_subscriptions(
        &self,
        username: &str,
    ) -> StorageResult<Vec<(String, String)>> {
        let u = username.to_string();
        self.db.run(move |conn| {
            conn.query_map(
                "SELECT contact, stanza FROM pending_subscriptions WHERE username = ?1 ORDER BY contact",
                params![u],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Records an inbound subscription request.
    pub async fn put_pending_subscription(
        &self,
        username: &str,
        contact: &str,
        stanza: &str,
    ) -> StorageResult<()> {
        let (u, c, s) = (
            username.to_string(),
            contact.to_string(),
            stanza.to_string(),
        );
        self.db
            .run(move |conn| {
                conn.execute(
                "INSERT INTO pending_subscriptions (username, contact, stanza) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username, contact) DO UPDATE SET stanza = ?3",
                params![u, c, s],
            )?;
                Ok(())
            })
            .await
    }

    /// Forgets an inbound subscription request.
    pub async fn delete_pending_subscription(
        &self,
        username: &str,
        contact: &str,
    ) -> StorageResult<()> {
        let (u, c) = (username.to_string(), contact.to_string());
        self.db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM pending_subscriptions WHERE username = ?1 AND contact = ?2",
                    params![u, c],
                )?;
                Ok(())
            })
            .await
    }
}

/// The roster's version: 0 when it never changed.
fn version(c: &mut Conn<'_>, username: &str) -> StorageResult<u64> {
    let v: Option<i64> = c.query_opt(
        "SELECT version FROM roster_versions WHERE username = ?1",
        params![username],
        |r| r.get(0),
    )?;
    Ok(v.unwrap_or(0) as u64)
}

fn bump_version(c: &mut Conn<'_>, username: &str) -> StorageResult<u64> {
    c.execute(
        "INSERT INTO roster_versions (username, version) VALUES (?1, 1)
         ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1",
        params![username],
    )?;
    let v: i64 = c.query_value(
        "SELECT version FROM roster_versions WHERE username = ?1",
        params![username],
    )?;
    Ok(v as u64)
}

fn row_to_item(r: &Row<'_>) -> StorageResult<RosterItem> {
    let groups: String = r.get(5)?;
    let sub: String = r.get(2)?;
    Ok(RosterItem {
        jid: r.get(0)?,
        name: r.get(1)?,
        subscription: Subscription::parse(&sub).unwrap_or_default(),
        ask: r.get::<i64>(3)? != 0,
        approved: r.get::<i64>(4)? != 0,
        groups: if groups.is_empty() {
            vec![]
        } else {
            groups.split('\n').map(String::from).collect()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_server::sasl::Credentials;
    use lithos_server::storage::AccountStore;

    fn creds() -> Credentials {
        Credentials::new("pw", 4096).unwrap()
    }

    /// Issue 14, defect 8: a deleted account's name is not free for the next registrant,
    /// and nothing others gave the old account passes to a new one.
    #[tokio::test]
    async fn a_deleted_account_leaves_others_rosters_without_subscriptions() {
        for s in lithos_testkit::databases(
            "a_deleted_account_leaves_others_rosters_without_subscriptions",
        )
        .await
        {
            let on = s.dialect();
            let r = Rosters::new(s.clone());
            s.create_account("juliet", &creds()).await.unwrap();
            s.create_account("romeo", &creds()).await.unwrap();
            let juliet_in_romeos = RosterItem {
                jid: "juliet@x".into(),
                name: Some("J".into()),
                subscription: Subscription::Both,
                ask: false,
                approved: true,
                groups: vec![],
            };
            let v = r.put_roster_item("romeo", &juliet_in_romeos).await.unwrap();
            r.put_pending_subscription("romeo", "juliet@x", "<presence/>")
                .await
                .unwrap();
            s.delete_account("juliet", "x").await.unwrap();
            // Romeo keeps his contact, with no subscription either way, at a new version.
            let (v2, items) = r.roster("romeo").await.unwrap();
            assert!(v2 > v, "{on:?}");
            assert_eq!(items[0].subscription, Subscription::None, "{on:?}");
            assert!(!items[0].approved, "{on:?}");
            assert!(
                r.pending_subscriptions("romeo").await.unwrap().is_empty(),
                "{on:?}"
            );
        }
    }

    #[tokio::test]
    async fn rosters_are_versioned() {
        for db in lithos_testkit::databases("rosters_are_versioned").await {
            let on = db.dialect();
            let r = Rosters::new(db);
            assert_eq!(r.roster("a").await.unwrap(), (0, vec![]), "{on:?}");
            let item = RosterItem {
                jid: "b@x".into(),
                name: Some("B".into()),
                subscription: Subscription::To,
                ask: false,
                approved: false,
                groups: vec!["Friends".into(), "Work".into()],
            };
            assert_eq!(r.put_roster_item("a", &item).await.unwrap(), 1, "{on:?}");
            assert_eq!(
                r.roster_item("a", "b@x").await.unwrap(),
                Some(item.clone()),
                "{on:?}"
            );
            let mut changed = item.clone();
            changed.subscription = Subscription::Both;
            changed.groups.clear();
            assert_eq!(r.put_roster_item("a", &changed).await.unwrap(), 2, "{on:?}");
            assert_eq!(r.roster("a").await.unwrap(), (2, vec![changed]), "{on:?}");
            assert_eq!(r.delete_roster_item("a", "b@x").await.unwrap(), 3, "{on:?}");
            assert_eq!(r.delete_roster_item("a", "b@x").await.unwrap(), 3, "{on:?}");
            r.put_pending_subscription("a", "c@x", "<presence/>")
                .await
                .unwrap();
            assert_eq!(
                r.pending_subscriptions("a").await.unwrap().len(),
                1,
                "{on:?}"
            );
            r.delete_pending_subscription("a", "c@x").await.unwrap();
            assert!(
                r.pending_subscriptions("a").await.unwrap().is_empty(),
                "{on:?}"
            );
        }
    }
}
