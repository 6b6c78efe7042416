//! The `qos` module: refuses assured messages from untrusted senders, and receives
//! acknowledged and assured messages sent to an account's bare JID on the account's behalf.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::datetime::now_ms;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::storage::rusqlite::{OptionalExtension, params};
use lithos_server::storage::{ModuleSchema, SqliteStore};
use lithos_server::{
    ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle, SessionInfo,
};

use crate::{Acknowledged, Assured, Deliver, NS, Received, stamp_message};

/// How long a delivered id is remembered.
const REMEMBER_MS: i64 = 24 * 3600 * 1000;

/// Pending assured messages and the ids delivered lately.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "qos",
    migrations: &["CREATE TABLE qos_pending (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, recipient TEXT NOT NULL,
            stamp_ms INTEGER NOT NULL, stanza TEXT NOT NULL,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE TABLE qos_delivered (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, stamp_ms INTEGER NOT NULL,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE INDEX qos_delivered_by_stamp ON qos_delivered (stamp_ms);"],
};

lithos_server::inventory::submit! { SCHEMA }

struct QosModule {
    max_pending_per_sender: usize,
}

fn internal(e: impl std::fmt::Display) -> StanzaError {
    tracing::error!(error = %e, "QoS handling failed");
    StanzaError::new(DefinedCondition::InternalServerError)
}

enum Stored {
    Received,
    TooMany,
}

impl QosModule {
    /// Whether `recipient` (a local account) trusts `sender`: itself, or a contact in its
    /// roster.
    async fn trusts(
        server: &ServerHandle,
        recipient: &Jid,
        sender: &Jid,
    ) -> Result<bool, StanzaError> {
        if recipient.bare_eq(sender) {
            return Ok(true);
        }
        let Some(user) = recipient.local() else {
            return Ok(false);
        };
        Ok(server
            .storage()
            .roster
            .roster_item(user, sender.bare_str())
            .await
            .map_err(internal)?
            .is_some())
    }

    /// The answer to `stanza` for the account `to`, received on its behalf.
    async fn receive(
        &self,
        server: &ServerHandle,
        db: SqliteStore,
        from: &Jid,
        to: &Jid,
        payload: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let bad = |e: lithos_core::PayloadError| {
            StanzaError::explained(DefinedCondition::BadRequest, e.to_string())
        };
        let (sender, recipient) = (from.to_string(), to.to_string());
        match payload.name() {
            "acknowledged" => {
                let a = Acknowledged::from_element(payload.clone()).map_err(bad)?;
                // Delivered to the account's sessions, or committed to its offline store,
                // before the acknowledgement.
                server
                    .route(stamp_message(a.message, &sender, &recipient))
                    .await;
                Ok(None)
            }
            "assured" => {
                let a = Assured::from_element(payload.clone()).map_err(bad)?;
                let stanza = stamp_message(a.message, &sender, &recipient).to_xml();
                let (id, max) = (a.msg_id.clone(), self.max_pending_per_sender);
                let stored = db
                    .run(move |c| {
                        let tx = c.transaction()?;
                        let known = tx
                            .query_row(
                                "SELECT 1 FROM qos_delivered WHERE sender = ?1 AND msg_id = ?2
                                 UNION ALL
                                 SELECT 1 FROM qos_pending WHERE sender = ?1 AND msg_id = ?2",
                                params![sender, id],
                                |_| Ok(()),
                            )
                            .optional()?
                            .is_some();
                        if known {
                            return Ok(Stored::Received);
                        }
                        let n: i64 = tx.query_row(
                            "SELECT COUNT(*) FROM qos_pending WHERE sender = ?1",
                            params![sender],
                            |r| r.get(0),
                        )?;
                        if n as usize >= max {
                            return Ok(Stored::TooMany);
                        }
                        tx.execute(
                            "INSERT INTO qos_pending (sender, msg_id, recipient, stamp_ms, stanza)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![sender, id, recipient, now_ms(), stanza],
                        )?;
                        tx.commit()?;
                        Ok(Stored::Received)
                    })
                    .await
                    .map_err(internal)?;
                match stored {
                    Stored::Received => Ok(Some(Received { msg_id: a.msg_id }.into_element())),
                    Stored::TooMany => Err(StanzaError::explained(
                        DefinedCondition::ResourceConstraint,
                        "too many assured messages from you wait for their deliver",
                    )),
                }
            }
            "deliver" => {
                let d = Deliver::from_element(payload.clone()).map_err(bad)?;
                let (s, id) = (sender.clone(), d.msg_id.clone());
                let pending: Option<String> = db
                    .run(move |c| {
                        Ok(c.query_row(
                            "SELECT stanza FROM qos_pending WHERE sender = ?1 AND msg_id = ?2",
                            params![s, id],
                            |r| r.get(0),
                        )
                        .optional()?)
                    })
                    .await
                    .map_err(internal)?;
                let Some(xml) = pending else {
                    // Delivered already (or never received): answered, nothing delivered.
                    return Ok(None);
                };
                let message = Element::parse(&xml).map_err(internal)?;
                // Delivered (or stored offline) first, then forgotten: a crash in between
                // delivers it again on the retried deliver, never loses it.
                server.route(message).await;
                let id = d.msg_id;
                db.run(move |c| {
                    let tx = c.transaction()?;
                    tx.execute(
                        "DELETE FROM qos_pending WHERE sender = ?1 AND msg_id = ?2",
                        params![sender, id],
                    )?;
                    let now = now_ms();
                    tx.execute(
                        "INSERT OR IGNORE INTO qos_delivered (sender, msg_id, stamp_ms)
                         VALUES (?1, ?2, ?3)",
                        params![sender, id, now],
                    )?;
                    tx.execute(
                        "DELETE FROM qos_delivered WHERE stamp_ms < ?1",
                        params![now - REMEMBER_MS],
                    )?;
                    tx.commit()?;
                    Ok(())
                })
                .await
                .map_err(internal)?;
                Ok(None)
            }
            other => Err(StanzaError::explained(
                DefinedCondition::FeatureNotImplemented,
                format!("<{other}/> is not a QoS request"),
            )),
        }
    }
}

#[async_trait]
impl Module for QosModule {
    fn client_stanza<'a>(
        &'a self,
        server: &'a ServerHandle,
        session: &'a SessionInfo,
        stanza: &'a Element,
    ) -> Option<ClientStanzaHook<'a>> {
        if stanza.name() != "iq"
            || stanza.attr("type") != Some("set")
            || stanza.children().next().is_none_or(|p| p.ns() != NS)
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(server, session, stanza)))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

impl QosModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: &Element,
    ) -> Flow {
        let Some(payload) = stanza.children().next().filter(|p| p.ns() == NS) else {
            return Flow::Continue;
        };
        let to = match stanza.attr("to").map(Jid::new) {
            None => session.jid.to_bare(),
            Some(Ok(j)) => j,
            Some(Err(_)) => return Flow::Continue,
        };
        if to.domain() != server.domain().domain() || to.local().is_none() {
            return Flow::Continue;
        }
        if payload.name() == "assured" {
            match Self::trusts(server, &to, &session.jid).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(sender = %session.jid, recipient = %to, "assured message from an untrusted sender refused");
                    server
                        .bounce(
                            stanza,
                            StanzaError::explained(
                                DefinedCondition::NotAllowed,
                                "assured messages are taken from contacts in the recipient's roster only",
                            ),
                        )
                        .await;
                    return Flow::Handled;
                }
                Err(e) => {
                    server.bounce(stanza, e).await;
                    return Flow::Handled;
                }
            }
        }
        if !to.is_bare() {
            // End to end: the recipient's client receives.
            return Flow::Continue;
        }
        let exists = server
            .storage()
            .accounts
            .account_exists(to.local().unwrap_or_default())
            .await
            .unwrap_or(false);
        let Some(db) = server.storage().sqlite_store().cloned() else {
            return Flow::Continue;
        };
        if !exists {
            return Flow::Continue;
        }
        match self.receive(server, db, &session.jid, &to, payload).await {
            Ok(answer) => {
                let reply = Element::builder("iq", "jabber:client")
                    .attr("type", "result")
                    .attr("id", stanza.attr("id").unwrap_or_default().to_string())
                    .attr("from", to.as_shared().clone())
                    .attr("to", session.jid.as_shared().clone())
                    .children(answer)
                    .build();
                server.sessions().send(&session.jid, reply);
            }
            Err(e) => server.bounce(stanza, e).await,
        }
        Flow::Handled
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut m = QosModule {
        max_pending_per_sender: 100,
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_pending_per_sender" => {
                m.max_pending_per_sender = ModuleError::integer(k, v, 1)? as usize;
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(m))
}

lithos_server::inventory::submit! {
    ModuleRegistration {
        name: "qos",
        description: "urn:xmpp:qos: acknowledged and assured (exactly-once) messages, received for accounts, refused from untrusted senders",
        depends_on: &[],
        enabled_by_default: true,
        build,
    }
}

#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(_) -> _);
}
