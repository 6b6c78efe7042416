//! The `qos` module: refuses assured messages from untrusted senders, and receives
//! acknowledged and assured messages sent to an account's bare JID on the account's behalf.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::datetime::now_ms;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::params;
use lithos_server::storage::{Database, ModuleSchema};
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle,
};

use crate::{Acknowledged, Assured, Deliver, NS, Received, stamp_message};

/// How long a delivered id is remembered.
const REMEMBER_MS: i64 = 24 * 3600 * 1000;

/// How often expired pending messages and old delivered ids are swept.
const SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Pending assured messages and the ids delivered lately.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "qos",
    migrations: &[
        "CREATE TABLE qos_pending (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, recipient TEXT NOT NULL,
            stamp_ms INTEGER NOT NULL, stanza TEXT NOT NULL,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE TABLE qos_delivered (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, stamp_ms INTEGER NOT NULL,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE INDEX qos_delivered_by_stamp ON qos_delivered (stamp_ms);",
        // 2 (issue 14): quotas per sending account (all its resources), in bytes too, and
        // lookups by recipient and age. A message id stays its sending resource's.
        "ALTER TABLE qos_pending ADD COLUMN sender_bare TEXT NOT NULL DEFAULT '';
         ALTER TABLE qos_pending ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
         UPDATE qos_pending SET
            sender_bare = CASE WHEN instr(sender, '/') > 0
                               THEN substr(sender, 1, instr(sender, '/') - 1) ELSE sender END,
            size = length(CAST(stanza AS BLOB));
         CREATE INDEX qos_pending_by_sender_bare ON qos_pending (sender_bare);
         CREATE INDEX qos_pending_by_recipient ON qos_pending (recipient);
         CREATE INDEX qos_pending_by_stamp ON qos_pending (stamp_ms);",
    ],
    postgres: Some(&["CREATE TABLE qos_pending (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, recipient TEXT NOT NULL,
            stamp_ms BIGINT NOT NULL, stanza TEXT NOT NULL,
            sender_bare TEXT NOT NULL DEFAULT '', size BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE INDEX qos_pending_by_sender_bare ON qos_pending (sender_bare);
         CREATE INDEX qos_pending_by_recipient ON qos_pending (recipient);
         CREATE INDEX qos_pending_by_stamp ON qos_pending (stamp_ms);
         CREATE TABLE qos_delivered (
            sender TEXT NOT NULL, msg_id TEXT NOT NULL, stamp_ms BIGINT NOT NULL,
            PRIMARY KEY (sender, msg_id)
         );
         CREATE INDEX qos_delivered_by_stamp ON qos_delivered (stamp_ms);"]),
    account_deleted: &[
        "DELETE FROM qos_pending WHERE sender_bare = ?2 OR recipient = ?2",
        "DELETE FROM qos_delivered WHERE sender = ?2 OR substr(sender, 1, length(?2) + 1) = ?2 || '/'",
    ],
};

/// How much may wait for its deliver, per bare JID.
#[derive(Debug, Clone, Copy)]
struct Quota {
    /// Messages one sender (any of its resources) may have pending.
    per_sender: usize,
    /// Their bytes.
    bytes_per_sender: usize,
    /// Messages pending for one recipient, from all senders.
    per_recipient: usize,
    /// Their bytes.
    bytes_per_recipient: usize,
}

struct QosModule {
    quota: Quota,
    /// Pending messages older than this are dropped; 0 keeps them until delivered.
    expire_after_ms: i64,
    /// The sweep, started with the first assured message.
    sweeper: std::sync::OnceLock<()>,
}

enum Stored {
    Received,
    /// Over a quota: which one.
    Over(&'static str),
}

impl QosModule {
    /// The oldest stamp a pending message may have and still count.
    fn cutoff(&self) -> i64 {
        if self.expire_after_ms > 0 {
            now_ms().saturating_sub(self.expire_after_ms)
        } else {
            i64::MIN
        }
    }

    /// Starts, once, the sweep that drops expired pending messages and old delivered ids.
    fn start_sweeper(&self, server: &ServerHandle) {
        let expire = self.expire_after_ms;
        self.sweeper.get_or_init(|| {
            server.every(SWEEP, move |server| async move {
                let swept = server
                    .storage()
                    .db()
                    .run(move |c| {
                        let now = now_ms();
                        let mut tx = c.transaction()?;
                        let pending = if expire > 0 {
                            tx.execute(
                                "DELETE FROM qos_pending WHERE stamp_ms < ?1",
                                params![now - expire],
                            )?
                        } else {
                            0
                        };
                        tx.execute(
                            "DELETE FROM qos_delivered WHERE stamp_ms < ?1",
                            params![now - REMEMBER_MS],
                        )?;
                        tx.commit()?;
                        Ok(pending)
                    })
                    .await;
                match swept {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(messages = n, "expired assured messages dropped"),
                    Err(e) => tracing::error!(error = %e, "sweeping assured messages failed"),
                }
            })
        });
    }

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
        Ok(lithos_roster::store::Rosters::of(server)
            .roster_item(user, sender.bare_str())
            .await
            .map_err(internal_error)?
            .is_some())
    }

    /// The answer to `stanza` for the account `to`, received on its behalf.
    async fn receive(
        &self,
        server: &ServerHandle,
        db: Database,
        from: &Jid,
        to: &Jid,
        payload: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        // A message id is its sending resource's (as the protoXEP has it); the quotas are
        // its account's, all resources together.
        let (sender, recipient) = (from.to_string(), to.to_string());
        let sender_bare = from.bare_str().to_string();
        let full_sender = sender.clone();
        match payload.name() {
            "acknowledged" => {
                let a = Acknowledged::from_element(payload.clone())?;
                // Delivered to the account's sessions, or committed to its offline store,
                // before the acknowledgement.
                server
                    .route(stamp_message(a.message, &full_sender, &recipient))
                    .await;
                Ok(None)
            }
            "assured" => {
                self.start_sweeper(server);
                let a = Assured::from_element(payload.clone())?;
                let stanza = stamp_message(a.message, &full_sender, &recipient).to_xml();
                let (id, q) = (a.msg_id.clone(), self.quota);
                let cutoff = self.cutoff();
                let stored = db
                    .run(move |c| {
                        let mut tx = c.transaction()?;
                        // Expired messages free their place at once (the sweep tidies up the
                        // rest every minute).
                        tx.execute(
                            "DELETE FROM qos_pending WHERE (sender_bare = ?1 OR recipient = ?2) AND stamp_ms < ?3",
                            params![sender_bare, recipient, cutoff],
                        )?;
                        let known = tx
                            .query_opt(
                                "SELECT 1 FROM qos_delivered WHERE sender = ?1 AND msg_id = ?2
                                 UNION ALL
                                 SELECT 1 FROM qos_pending WHERE sender = ?1 AND msg_id = ?2",
                                params![sender, id],
                                |_| Ok(()),
                            )?
                            .is_some();
                        if known {
                            return Ok(Stored::Received);
                        }
                        let mut usage = |column: &str, who: &str| {
                            tx.query_row(
                                &format!(
                                    "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT)
                                     FROM qos_pending WHERE {column} = ?1"
                                ),
                                params![who],
                                |r| Ok((r.get::<i64>(0)? as usize, r.get::<i64>(1)? as usize)),
                            )
                        };
                        let size = stanza.len();
                        let (n, bytes) = usage("sender_bare", &sender_bare)?;
                        if n >= q.per_sender || bytes + size > q.bytes_per_sender {
                            return Ok(Stored::Over(
                                "too many assured messages from your account wait for their deliver",
                            ));
                        }
                        let (n, bytes) = usage("recipient", &recipient)?;
                        if n >= q.per_recipient || bytes + size > q.bytes_per_recipient {
                            return Ok(Stored::Over(
                                "too many assured messages wait for their deliver to this recipient",
                            ));
                        }
                        tx.execute(
                            "INSERT INTO qos_pending
                                (sender, msg_id, recipient, stamp_ms, stanza, sender_bare, size)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            params![sender, id, recipient, now_ms(), stanza, sender_bare, size as i64],
                        )?;
                        tx.commit()?;
                        Ok(Stored::Received)
                    })
                    .await
                    .map_err(internal_error)?;
                match stored {
                    Stored::Received => Ok(Some(Received { msg_id: a.msg_id }.into_element())),
                    Stored::Over(why) => Err(StanzaError::explained(
                        DefinedCondition::ResourceConstraint,
                        why,
                    )),
                }
            }
            "deliver" => {
                let d = Deliver::from_element(payload.clone())?;
                let (s, id) = (sender.clone(), d.msg_id.clone());
                let cutoff = self.cutoff();
                let (pending, delivered): (Option<String>, bool) = db
                    .run(move |c| {
                        let pending = c.query_opt(
                            "SELECT stanza FROM qos_pending
                             WHERE sender = ?1 AND msg_id = ?2 AND stamp_ms >= ?3",
                            params![s, id, cutoff],
                            |r| r.get(0),
                        )?;
                        let delivered = pending.is_none()
                            && c.query_opt(
                                "SELECT 1 FROM qos_delivered WHERE sender = ?1 AND msg_id = ?2",
                                params![s, id],
                                |_| Ok(()),
                            )?
                            .is_some();
                        Ok((pending, delivered))
                    })
                    .await
                    .map_err(internal_error)?;
                let Some(xml) = pending else {
                    // Delivered already (a repeated deliver): answered, nothing delivered.
                    // Never received, or expired before its deliver: the sender must know.
                    return if delivered {
                        Ok(None)
                    } else {
                        Err(StanzaError::explained(
                            DefinedCondition::ItemNotFound,
                            "no such message waits for its deliver: never received, or expired",
                        ))
                    };
                };
                let message = Element::parse(&xml).map_err(internal_error)?;
                // Delivered (or stored offline) first, then forgotten: a crash in between
                // delivers it again on the retried deliver, never loses it.
                server.route(message).await;
                let id = d.msg_id;
                db.run(move |c| {
                    let mut tx = c.transaction()?;
                    tx.execute(
                        "DELETE FROM qos_pending WHERE sender = ?1 AND msg_id = ?2",
                        params![sender, id],
                    )?;
                    tx.execute(
                        "INSERT INTO qos_delivered (sender, msg_id, stamp_ms)
                         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                        params![sender, id, now_ms()],
                    )?;
                    tx.commit()?;
                    Ok(())
                })
                .await
                .map_err(internal_error)?;
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
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let stanza = cx.stanza;
        if stanza.name() != "iq"
            || stanza.attr("type") != Some("set")
            || stanza.children().next().is_none_or(|p| p.ns() != NS)
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(cx)))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn started(&self, server: &ServerHandle) {
        server.count_gauge(
            "qos_pending",
            "Assured (urn:xmpp:qos level 2) messages received and not yet delivered",
            "SELECT COUNT(*) FROM qos_pending",
        );
    }
}

impl QosModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
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
        let db = server.storage().db().clone();
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
    let mut quota = Quota {
        per_sender: 100,
        bytes_per_sender: 1024 * 1024,
        per_recipient: 1000,
        bytes_per_recipient: 4 * 1024 * 1024,
    };
    let mut expire_after_secs = 24 * 3600;
    for (k, v) in &ctx.section {
        let n = || ModuleError::integer(k, v, 1).map(|n| n as usize);
        match k.as_str() {
            "max_pending_per_sender" => quota.per_sender = n()?,
            "max_pending_bytes_per_sender" => quota.bytes_per_sender = n()?,
            "max_pending_per_recipient" => quota.per_recipient = n()?,
            "max_pending_bytes_per_recipient" => quota.bytes_per_recipient = n()?,
            "expire_after_secs" => expire_after_secs = ModuleError::integer(k, v, 0)?,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(QosModule {
        quota,
        expire_after_ms: i64::try_from(expire_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        sweeper: std::sync::OnceLock::new(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "qos",
    "urn:xmpp:qos: acknowledged and assured (exactly-once) messages, received for accounts, refused from untrusted senders",
    build,
);
