//! LAN nodes behind concentrators (reference §3.5): each is a thing with an id, a model and
//! an owner, but no account of its own; it is reached at `<gateway>@<domain>/<lan-id>`, and
//! the gateway's edge session speaks for it. The concentrator protocol
//! (`lithos-tuxp-concentrator`) adds and removes them; execution, notification and report
//! checks read them here.

use lithos_server::params;
use lithos_server::storage::StorageResult;
use lithos_server::storage::sql::Row;

use crate::now_ms;
use crate::registry::{Registry, RegistryError};

/// A LAN node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The concentrator's thing name (its account's local part).
    pub gateway: String,
    /// Its LAN id behind the gateway, 1 to 255.
    pub lan_id: u8,
    /// Its thing id (`<MODEL>-<8 characters>`).
    pub thing_id: String,
    /// Its model's name.
    pub model: String,
    /// The communication net (`LORA` or `BLE`).
    pub net: String,
    /// Its address on that net, as the gateway gave it (`la$0,5:23` for LoRa).
    pub address: String,
    /// Its owner's account name (the operator who authorized it); empty once that account
    /// is deleted.
    pub owner: String,
    /// When it was added, in milliseconds since the Unix epoch.
    pub added_ms: i64,
}

/// At most this many follows between a gateway's nodes: the server lists no more, a
/// gateway keeps no more, and a gateway cannot ask for more (`resource-constraint`). With
/// events of up to 256 characters, 512 follows are about 170 KB: one stanza within the
/// default 256 KiB limit.
pub const MAX_LAN_FOLLOWS: usize = 512;

/// LAN nodes one gateway may have: LAN ids 1 to 255.
pub const MAX_NODES_PER_GATEWAY: usize = 255;

const NODE: &str =
    "SELECT gateway, lan_id, thing_id, model, net, address, owner, added_ms FROM things_nodes";

fn node(r: &Row<'_>) -> StorageResult<NodeRecord> {
    Ok(NodeRecord {
        gateway: r.get(0)?,
        lan_id: r.get(1)?,
        thing_id: r.get(2)?,
        model: r.get(3)?,
        net: r.get(4)?,
        address: r.get(5)?,
        owner: r.get(6)?,
        added_ms: r.get(7)?,
    })
}

type R<T> = Result<T, RegistryError>;

/// What a TUXP stanza to or from `<thing>/<resource>` is about: the thing itself (resource
/// `0`, or none), or the LAN node behind it. Its owner, grants and model decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The thing's or node's id (grants and follows are kept by it).
    pub thing_id: String,
    /// Its owner (empty when unowned).
    pub owner: String,
    /// Its model's name.
    pub model: String,
    /// The LAN id, for a node.
    pub lan_id: Option<u8>,
}

impl Subject {
    /// Its model, if linked into this program.
    pub fn model(&self) -> Option<&'static crate::ThingModel> {
        crate::model(&self.model)
    }
}

/// LAN nodes' subjects as last read, each with the [`access_generation`] of its thing id
/// then: a node looked up on every execution, notification and report behind a busy gateway
/// costs a database read only when something about it changed (its removal, its owner's
/// deletion) since. Per server ([`lithos_server::ServerHandle::shared`]); at most
/// [`NodeCache::MAX`] entries, then emptied.
///
/// [`access_generation`]: crate::access_generation
#[derive(Debug, Default)]
pub struct NodeCache {
    map: std::sync::Mutex<std::collections::HashMap<(String, u8), (Subject, u64)>>,
}

impl NodeCache {
    /// Entries kept at most.
    pub const MAX: usize = 65_536;

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, u8), (Subject, u64)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `<thing>/<resource>` is about ([`Registry::subject`]), from the cache when its
    /// entry is still current.
    pub async fn subject(
        &self,
        server: &lithos_server::ServerHandle,
        thing: &crate::ThingRecord,
        resource: Option<&str>,
    ) -> Result<Subject, lithos_core::stanza::StanzaError> {
        let Some(lan_id) = resource.and_then(crate::lan_id) else {
            return Registry::of(server).subject(thing, resource).await;
        };
        let key = (thing.thing_name.clone(), lan_id);
        if let Some((s, g)) = self.lock().get(&key).cloned()
            && crate::access_generation(&s.thing_id) == g
        {
            return Ok(s);
        }
        // Read, learn the node's thing id, take its generation, and read again: a change
        // committed before that generation was taken shows in the second read (changes
        // commit, then move the generation), and one after it moves the generation past the
        // one kept, so a stale entry is never taken as current.
        let registry = Registry::of(server);
        let first = registry.subject(thing, resource).await?;
        let g = crate::access_generation(&first.thing_id);
        let s = registry.subject(thing, resource).await?;
        if s.thing_id == first.thing_id {
            let mut map = self.lock();
            if map.len() >= Self::MAX {
                map.clear();
            }
            map.insert(key, (s.clone(), g));
        }
        Ok(s)
    }
}

impl Registry {
    /// What `<thing>/<resource>` is about: `thing` for resource `0` (or none), else the LAN
    /// node with that id behind it. `item-not-found` for a resource that is no LAN id
    /// (`1`–`255`, written plainly) or a node the gateway has not added.
    pub async fn subject(
        &self,
        thing: &crate::ThingRecord,
        resource: Option<&str>,
    ) -> Result<Subject, lithos_core::stanza::StanzaError> {
        use lithos_core::stanza::{DefinedCondition, StanzaError};
        let node = match resource {
            None | Some(crate::EDGE_RESOURCE) => {
                return Ok(Subject {
                    thing_id: thing.thing_id.clone(),
                    owner: thing.owner.clone(),
                    model: thing.model.clone(),
                    lan_id: None,
                });
            }
            Some(r) => match crate::lan_id(r) {
                Some(id) => self
                    .node(&thing.thing_name, id)
                    .await
                    .map_err(lithos_server::module::internal_error)?,
                None => None,
            },
        };
        let Some(n) = node else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such node behind this gateway (a gateway adds its nodes with add-node)",
            ));
        };
        Ok(Subject {
            thing_id: n.thing_id,
            owner: n.owner,
            model: n.model,
            lan_id: Some(n.lan_id),
        })
    }

    /// Adds a node, consuming the authorization `authorization` it was added with (so that
    /// it serves once). `LanIdTaken` if the gateway has a node with that LAN id,
    /// `AlreadyRegistered` if the thing id is a node or a registered thing already.
    pub async fn add_node(&self, mut n: NodeRecord, authorization: i64) -> R<NodeRecord> {
        n.added_ms = now_ms();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            let taken: bool = tx
                .query_opt(
                    "SELECT 1 FROM things_nodes WHERE gateway = ?1 AND lan_id = ?2",
                    params![n.gateway, n.lan_id],
                    |_| Ok(()),
                )?
                .is_some();
            if taken {
                return Ok(Err(RegistryError::LanIdTaken));
            }
            let known: bool = tx
                .query_opt(
                    "SELECT 1 FROM things_nodes WHERE thing_id = ?1
                     UNION ALL SELECT 1 FROM things_registered WHERE thing_id = ?1",
                    params![n.thing_id],
                    |_| Ok(()),
                )?
                .is_some();
            if known {
                return Ok(Err(RegistryError::AlreadyRegistered));
            }
            tx.execute(
                "INSERT INTO things_nodes
                    (gateway, lan_id, thing_id, model, net, address, owner, added_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    n.gateway, n.lan_id, n.thing_id, n.model, n.net, n.address, n.owner, n.added_ms
                ],
            )?;
            tx.execute(
                "UPDATE things_authorizations SET canceled = 1 WHERE id = ?1",
                params![authorization],
            )?;
            tx.commit()?;
            Ok(Ok(n.clone()))
        })
        .await?
    }

    /// The node `lan_id` behind the gateway named `gateway`.
    pub async fn node(&self, gateway: &str, lan_id: u8) -> R<Option<NodeRecord>> {
        let g = gateway.to_string();
        self.run(move |c| {
            c.query_opt(
                &format!("{NODE} WHERE gateway = ?1 AND lan_id = ?2"),
                params![g, lan_id],
                node,
            )
        })
        .await
    }

    /// The node with this thing id.
    pub async fn node_by_id(&self, thing_id: &str) -> R<Option<NodeRecord>> {
        let id = thing_id.to_string();
        self.run(move |c| c.query_opt(&format!("{NODE} WHERE thing_id = ?1"), params![id], node))
            .await
    }

    /// Whether the follow of `event` of the node `thing_id` by `follower` (a node of the
    /// gateway `gateway`, bare JID `gateway_jid`) fits: it is approved already, or the
    /// gateway's nodes have fewer than [`MAX_LAN_FOLLOWS`] approved follows.
    pub async fn lan_follow_fits(
        &self,
        gateway: &str,
        gateway_jid: &str,
        thing_id: &str,
        event: &str,
        follower: &str,
    ) -> R<bool> {
        if self
            .followed(thing_id, follower)
            .await?
            .iter()
            .any(|e| e == event)
        {
            return Ok(true);
        }
        let listed = self
            .lan_follows(gateway, gateway_jid, MAX_LAN_FOLLOWS)
            .await?;
        Ok(listed.len() < MAX_LAN_FOLLOWS)
    }

    /// The gateways (thing names) with at least one node.
    pub async fn gateways_with_nodes(&self) -> R<Vec<String>> {
        self.run(|c| {
            c.query_map(
                "SELECT DISTINCT gateway FROM things_nodes ORDER BY gateway",
                params![],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The nodes behind `gateway`, by LAN id.
    pub async fn nodes_of(&self, gateway: &str) -> R<Vec<NodeRecord>> {
        let g = gateway.to_string();
        self.run(move |c| {
            c.query_map(
                &format!("{NODE} WHERE gateway = ?1 ORDER BY lan_id"),
                params![g],
                node,
            )
        })
        .await
    }

    /// The approved follows between nodes of the gateway `gateway` (its thing name) whose
    /// bare JID is `gateway_jid`: (friend's LAN id, event, follower's LAN id), at most
    /// `limit`, ordered by LAN ids and event. A follower is such a node when it is `<gateway_jid>/<lan-id>` and
    /// that node exists.
    pub async fn lan_follows(
        &self,
        gateway: &str,
        gateway_jid: &str,
        limit: usize,
    ) -> R<Vec<(u8, String, u8)>> {
        let (g, prefix) = (gateway.to_string(), format!("{gateway_jid}/"));
        self.run(move |c| {
            // One snapshot of the follows and of the nodes their followers name.
            let mut tx = c.transaction()?;
            let rows = tx.query_map(
                "SELECT n.lan_id, f.event, f.follower FROM things_follows f
                 JOIN things_nodes n ON n.thing_id = f.thing_id
                 WHERE n.gateway = ?1 AND f.approved = 1
                   AND substr(f.follower, 1, length(?2)) = ?2",
                params![g, prefix],
                |r| Ok((r.get::<u8>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
            )?;
            // The gateway's LAN ids (255 at most), read once, not once per follow.
            let known: std::collections::HashSet<u8> = tx
                .query_map(
                    "SELECT lan_id FROM things_nodes WHERE gateway = ?1",
                    params![g],
                    |r| r.get(0),
                )?
                .into_iter()
                .collect();
            tx.commit()?;
            let mut out: Vec<(u8, String, u8)> = rows
                .into_iter()
                .filter_map(|(friend, event, follower)| {
                    let lan_id = crate::lan_id(&follower[prefix.len()..])?;
                    (lan_id != friend && known.contains(&lan_id)).then_some((friend, event, lan_id))
                })
                .collect();
            out.sort_unstable();
            out.truncate(limit);
            Ok(out)
        })
        .await
    }

    /// Removes the node `lan_id` behind `gateway` with the grants and follows on it and
    /// what it followed; the node removed, if there was one.
    pub async fn remove_node(&self, gateway: &str, lan_id: u8) -> R<Option<NodeRecord>> {
        let g = gateway.to_string();
        let removed = self
            .run(move |c| {
                let mut tx = c.transaction()?;
                let n = tx.query_opt(
                    &format!("{NODE} WHERE gateway = ?1 AND lan_id = ?2"),
                    params![g, lan_id],
                    node,
                )?;
                if let Some(n) = &n {
                    for sql in [
                        "DELETE FROM things_grants WHERE thing_id = ?1",
                        "DELETE FROM things_follows WHERE thing_id = ?1",
                        "DELETE FROM things_nodes WHERE thing_id = ?1",
                    ] {
                        tx.execute(sql, params![n.thing_id])?;
                    }
                    // What the node followed (as `<gateway>@<domain>/<lan-id>`): a node
                    // added later at its LAN id inherits none of it. (The LAN id is bound as
                    // text: PostgreSQL joins no integer to a pattern.)
                    tx.execute(
                        "DELETE FROM things_follows
                         WHERE substr(follower, 1, length(?1) + 1) = ?1 || '@'
                           AND follower LIKE '%/' || CAST(?2 AS TEXT)",
                        params![g, lan_id.to_string()],
                    )?;
                }
                tx.commit()?;
                Ok(n)
            })
            .await?;
        if let Some(n) = &removed {
            crate::registry::access_changed(crate::registry::AccessChange::Thing(
                n.thing_id.clone(),
            ));
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_rec(lan_id: u8, id: &str) -> NodeRecord {
        NodeRecord {
            gateway: "lgw-01-0a0a0a0a".into(),
            lan_id,
            thing_id: id.into(),
            model: "SL-01".into(),
            net: "LORA".into(),
            address: format!("la$0,{lan_id}:23"),
            owner: "alice".into(),
            added_ms: 0,
        }
    }

    #[tokio::test]
    async fn nodes_are_added_once_by_lan_id_and_thing_id_and_removed() {
        for db in lithos_testkit::databases("nodes_are_added_once").await {
            let on = db.dialect();
            let r = Registry::new(db);
            let a = node_rec(5, "SL-01-0B0B0B05");
            let added = r.add_node(a.clone(), 0).await.unwrap();
            assert!(added.added_ms > 0, "{on:?}");
            assert_eq!(
                r.add_node(node_rec(5, "SL-01-0B0B0B06"), 0).await,
                Err(RegistryError::LanIdTaken),
                "{on:?}"
            );
            assert_eq!(
                r.add_node(node_rec(6, "SL-01-0B0B0B05"), 0).await,
                Err(RegistryError::AlreadyRegistered),
                "{on:?}"
            );
            r.add_node(node_rec(6, "SL-01-0B0B0B06"), 0).await.unwrap();
            let got = r.node("lgw-01-0a0a0a0a", 5).await.unwrap().unwrap();
            assert_eq!(
                (got.thing_id.as_str(), got.lan_id),
                ("SL-01-0B0B0B05", 5),
                "{on:?}"
            );
            assert_eq!(
                r.node_by_id("SL-01-0B0B0B06")
                    .await
                    .unwrap()
                    .unwrap()
                    .lan_id,
                6,
                "{on:?}"
            );
            let all = r.nodes_of("lgw-01-0a0a0a0a").await.unwrap();
            assert_eq!(
                all.iter().map(|n| n.lan_id).collect::<Vec<_>>(),
                [5, 6],
                "{on:?}"
            );
            assert_eq!(
                r.gateways_with_nodes().await.unwrap(),
                ["lgw-01-0a0a0a0a"],
                "{on:?}"
            );
            assert!(r.may_command(&a.thing_id, &a.owner, "alice").await.unwrap());
            assert!(!r.may_command(&a.thing_id, &a.owner, "bob").await.unwrap());
            assert!(r.remove_node("lgw-01-0a0a0a0a", 5).await.unwrap().is_some());
            assert!(r.remove_node("lgw-01-0a0a0a0a", 5).await.unwrap().is_none());
            assert!(r.node("lgw-01-0a0a0a0a", 5).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn follows_between_nodes_are_listed_and_leave_with_a_node() {
        for db in lithos_testkit::databases("follows_between_nodes_listed").await {
            let on = db.dialect();
            let r = Registry::new(db);
            for (lan_id, id) in [
                (3, "SL-01-0B0B0B03"),
                (5, "SL-01-0B0B0B05"),
                (15, "SL-01-0B0B0B15"),
            ] {
                r.add_node(node_rec(lan_id, id), 0).await.unwrap();
            }
            let gw = "lgw-01-0a0a0a0a@example.com";
            let ev = "{urn:x}switched";
            for (friend, follower) in [
                ("SL-01-0B0B0B03", format!("{gw}/5")),
                ("SL-01-0B0B0B03", format!("{gw}/15")),
                // Not node-to-node: a person, another gateway's node, a node that is no
                // more, a resource that is no LAN id.
                ("SL-01-0B0B0B03", "alice@example.com".to_string()),
                (
                    "SL-01-0B0B0B03",
                    "lgw-01-0c0c0c0c@example.com/5".to_string(),
                ),
                ("SL-01-0B0B0B03", format!("{gw}/7")),
                ("SL-01-0B0B0B03", format!("{gw}/05")),
                ("SL-01-0B0B0B05", format!("{gw}/3")),
            ] {
                r.request_follow(friend, ev, &follower).await.unwrap();
                assert!(r.approve_follow(friend, ev, &follower).await.unwrap());
            }
            // Asked, not approved: not routed.
            r.request_follow("SL-01-0B0B0B15", ev, &format!("{gw}/3"))
                .await
                .unwrap();
            let all = r.lan_follows("lgw-01-0a0a0a0a", gw, 100).await.unwrap();
            assert_eq!(
                all,
                vec![
                    (3, ev.to_string(), 5),
                    (3, ev.to_string(), 15),
                    (5, ev.to_string(), 3)
                ],
                "{on:?}"
            );
            assert_eq!(
                r.lan_follows("lgw-01-0a0a0a0a", gw, 2).await.unwrap().len(),
                2,
                "{on:?}"
            );
            // Node 5 leaves: what it followed and what followed it go; node 15's stay.
            r.remove_node("lgw-01-0a0a0a0a", 5).await.unwrap().unwrap();
            assert_eq!(
                r.lan_follows("lgw-01-0a0a0a0a", gw, 100).await.unwrap(),
                vec![(3, ev.to_string(), 15)],
                "{on:?}"
            );
            assert!(
                r.followers("SL-01-0B0B0B03", ev)
                    .await
                    .unwrap()
                    .iter()
                    .all(|f| !f.ends_with("/5") || f.starts_with("lgw-01-0c0c0c0c")),
                "another gateway's node 5 keeps its follow ({on:?})"
            );
            assert!(
                r.followers("SL-01-0B0B0B03", ev)
                    .await
                    .unwrap()
                    .iter()
                    .any(|f| f.starts_with("lgw-01-0c0c0c0c")),
                "{on:?}"
            );
        }
    }

    #[tokio::test]
    async fn follows_between_nodes_are_bounded() {
        for db in lithos_testkit::databases("follows_between_nodes_bounded").await {
            let on = db.dialect();
            let r = Registry::new(db);
            for (lan_id, id) in [(3, "SL-01-0B0B0B03"), (5, "SL-01-0B0B0B05")] {
                r.add_node(node_rec(lan_id, id), 0).await.unwrap();
            }
            let (gw, name) = ("lgw-01-0a0a0a0a@example.com", "lgw-01-0a0a0a0a");
            let follower = format!("{gw}/5");
            for i in 0..MAX_LAN_FOLLOWS {
                let ev = format!("{{urn:x}}e{i}");
                assert!(
                    r.lan_follow_fits(name, gw, "SL-01-0B0B0B03", &ev, &follower)
                        .await
                        .unwrap(),
                    "{on:?}"
                );
                r.request_follow("SL-01-0B0B0B03", &ev, &follower)
                    .await
                    .unwrap();
                r.approve_follow("SL-01-0B0B0B03", &ev, &follower)
                    .await
                    .unwrap();
            }
            // Full: a new one does not fit; one approved already still does (asked again).
            assert!(
                !r.lan_follow_fits(name, gw, "SL-01-0B0B0B03", "{urn:x}new", &follower)
                    .await
                    .unwrap(),
                "{on:?}"
            );
            assert!(
                r.lan_follow_fits(name, gw, "SL-01-0B0B0B03", "{urn:x}e7", &follower)
                    .await
                    .unwrap(),
                "{on:?}"
            );
        }
    }

    /// A gateway's account leaves with its nodes, and what its nodes followed.
    #[tokio::test]
    async fn a_gateways_deletion_removes_its_nodes() {
        let creds = lithos_server::sasl::Credentials::new("pw", 1).unwrap();
        for db in lithos_testkit::databases("gateways_deletion_nodes").await {
            use lithos_server::storage::AccountStore;
            let on = db.dialect();
            let r = Registry::new(db.clone());
            r.add_node(node_rec(3, "SL-01-0B0B0B03"), 0).await.unwrap();
            let follower = "lgw-01-0a0a0a0a@x/3";
            r.request_follow("SL-01-0D0D0D0D", "{urn:x}e", follower)
                .await
                .unwrap();
            r.request_follow("SL-01-0D0D0D0D", "{urn:x}e", "lgw-01-0a0a0a0ab@x/3")
                .await
                .unwrap();
            db.create_account("lgw-01-0a0a0a0a", &creds).await.unwrap();
            db.delete_account("lgw-01-0a0a0a0a", "x").await.unwrap();
            assert!(
                r.nodes_of("lgw-01-0a0a0a0a").await.unwrap().is_empty(),
                "{on:?}"
            );
            let left: Vec<String> = r
                .run(|c| {
                    c.query_map(
                        "SELECT follower FROM things_follows ORDER BY follower",
                        params![],
                        |r| r.get(0),
                    )
                })
                .await
                .unwrap();
            assert_eq!(left, ["lgw-01-0a0a0a0ab@x/3"], "{on:?}");
        }
    }
}
