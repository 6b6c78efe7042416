//! The `notification` module: checks a thing's notification, delivers it to the owner (or
//! stores it for them), records its id, then acknowledges.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::stanza::set_payload;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::params;
use lithos_server::storage::{Database, ModuleSchema};
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle, SessionInfo,
};
use lithos_tuxp_things::{Registry, ThingCache, now_ms};

use crate::{NS, Notification};

/// How long an id is remembered (Lithosphere: the last 4,096 ids, in memory).
const REMEMBER_MS: i64 = 24 * 3600 * 1000;

/// The table of ids already delivered.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "tuxp-notification",
    migrations: &["CREATE TABLE notification_seen (
            thing TEXT NOT NULL, node TEXT NOT NULL, id TEXT NOT NULL, stamp_ms INTEGER NOT NULL,
            PRIMARY KEY (thing, node, id)
         );
         CREATE INDEX notification_seen_by_stamp ON notification_seen (stamp_ms);"],
    postgres: Some(&["CREATE TABLE notification_seen (
            thing TEXT NOT NULL, node TEXT NOT NULL, id TEXT NOT NULL, stamp_ms BIGINT NOT NULL,
            PRIMARY KEY (thing, node, id)
         );
         CREATE INDEX notification_seen_by_stamp ON notification_seen (stamp_ms);"]),
    account_deleted: &["DELETE FROM notification_seen WHERE thing = ?1"],
};

struct NotificationModule {
    things: ThingCache,
}

impl NotificationModule {
    fn db(server: &ServerHandle) -> Database {
        server.storage().db().clone()
    }

    /// Checks and delivers; `Ok(ack)` says whether to acknowledge.
    async fn handle(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: &Element,
        payload: &Element,
    ) -> Result<bool, StanzaError> {
        set_payload(stanza, "a notification is a set")?;
        let n = Notification::from_element(payload.clone())?;
        let (notifier, thing) = self
            .things
            .sender(server, session, stanza, "only things notify")
            .await?;
        let name = thing.thing_name.clone();
        let node = notifier.resource().unwrap_or("0").to_string();
        // The thing itself, or the LAN node the gateway speaks for: its model declares the
        // event, its owner and followers get it.
        let registry = Registry::of(server);
        let subject = server
            .shared::<lithos_tuxp_things::NodeCache>()
            .subject(server, &thing, notifier.resource())
            .await?;
        let declared = subject.model().is_some_and(|m| m.declares_event(&n.event));
        if !declared {
            return Err(StanzaError::explained(
                DefinedCondition::NotAcceptable,
                format!(
                    "model {} does not declare the event <{}/> in {}",
                    subject.model,
                    n.event.name(),
                    n.event.ns()
                ),
            ));
        }
        let id = stanza.attr("id").unwrap_or_default().to_string();
        let db = Self::db(server);
        let key = (name.clone(), node.clone(), id.clone());
        let seen = db
            .run(move |c| {
                Ok(c.query_opt(
                    "SELECT 1 FROM notification_seen WHERE thing = ?1 AND node = ?2 AND id = ?3",
                    params![key.0, key.1, key.2],
                    |_| Ok(()),
                )?
                .is_some())
            })
            .await
            .map_err(internal_error)?;
        if seen {
            tracing::debug!(thing = %name, id = %id, "repeated notification acknowledged again, not delivered");
            return Ok(n.ack_required);
        }
        // Delivered (or stored offline, committed) before the id is recorded: a crash in
        // between means one more delivery on retransmission, never none. The owner, then
        // the approved followers of this event.
        let mut recipients: Vec<String> = (!subject.owner.is_empty())
            .then(|| format!("{}@{}", subject.owner, server.domain().domain()))
            .into_iter()
            .collect();
        // A node following a node behind the same gateway got it from the gateway, on
        // the LAN (`<lan-follows/>`).
        let on_the_lan = subject.lan_id.map(|_| format!("{}/", notifier.to_bare()));
        for f in registry
            .followers(&subject.thing_id, &lithos_tuxp_things::key_of(&n.event))
            .await
            .map_err(internal_error)?
        {
            if on_the_lan.as_deref().is_some_and(|p| f.starts_with(p)) {
                continue;
            }
            if !recipients.contains(&f) {
                recipients.push(f);
            }
        }
        for to in recipients {
            let Ok(to) = Jid::new(&to) else {
                tracing::warn!(follower = %to, "a follower that is not a JID is skipped");
                continue;
            };
            let message = Element::builder("message", "jabber:client")
                .attr("type", "normal")
                .attr("id", id.clone())
                .attr("from", notifier.as_shared().clone())
                .attr("to", to.as_shared().clone())
                .child(payload.clone())
                .build();
            server.route(message).await;
        }
        let stamp = now_ms();
        db.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO notification_seen (thing, node, id, stamp_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![name, node, id, stamp],
            )?;
            tx.execute(
                "DELETE FROM notification_seen WHERE stamp_ms < ?1",
                params![stamp - REMEMBER_MS],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(internal_error)?;
        Ok(n.ack_required)
    }
}

#[async_trait]
impl Module for NotificationModule {
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let stanza = cx.stanza;
        if !lithos_core::stanza::iq_awaiting_answer(stanza)
            || !stanza
                .children()
                .next()
                .is_some_and(|p| p.is("notification", NS))
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(cx)))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn account_deleted(&self, _server: &ServerHandle, _account: &Jid) {
        // Things the account owned changed owner: what is cached of any thing may be stale.
        self.things.clear();
    }

    async fn account_deleting(&self, _server: &ServerHandle, account: &Jid) {
        if let Some(name) = account.local() {
            self.things.forget(name);
        }
    }
}

impl NotificationModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
        let Some(payload) = stanza
            .children()
            .next()
            .filter(|p| p.is("notification", NS))
        else {
            return Flow::Continue;
        };
        // To the sender's own account (or no `to`): the thing notifies.
        if let Some(t) = stanza.attr("to")
            && !Jid::new(t).is_ok_and(|j| j.is_bare() && j.bare_eq(&session.jid))
        {
            let e = StanzaError::explained(
                DefinedCondition::Forbidden,
                "a thing notifies for itself only",
            );
            lithos_tuxp_things::refuse(server, session, stanza, e);
            return Flow::Handled;
        }
        match self.handle(server, session, stanza, payload).await {
            Ok(true) => {
                let to = stanza
                    .attr("from")
                    .unwrap_or(session.jid.as_str())
                    .to_string();
                let reply = Element::builder("iq", "jabber:client")
                    .attr("type", "result")
                    .attr("id", stanza.attr("id").unwrap_or_default().to_string())
                    .attr("to", to)
                    .attr("from", session.jid.to_bare().as_shared().clone())
                    .build();
                server.sessions().send(&session.jid, reply);
            }
            Ok(false) => {}
            Err(e) => lithos_tuxp_things::refuse(server, session, stanza, e),
        }
        Flow::Handled
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    ctx.expect_no_settings()?;
    Ok(Arc::new(NotificationModule {
        things: ThingCache::default(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "notification",
    "TUXP notifications: events from things to their owners, acknowledged after delivery or storage, de-duplicated",
    build,
);
