//! The offline-message module.
//!
//! Storing: a message no available resource could take is written to the account's offline
//! store (committed before the sender's stream goes on), within a quota in messages and
//! bytes; past it the sender gets `resource-constraint`. Messages older than
//! `expire_after_secs` are deleted by a sweep every minute.
//!
//! Delivering: when a session sends its first available presence with a non-negative
//! priority, a task hands it the store a batch at a time
//! ([`Sessions::send_stored`](lithos_server::session::Sessions::send_stored)) and deletes a
//! batch only once the connection reports it written to the socket. A store larger than the
//! session's queue is therefore paced by how fast the client reads, and a session that ends
//! mid-way leaves what it did not write in the store, for the next one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::{OfflineQuota, OfflineStore};
use async_trait::async_trait;
use lithos_core::datetime::now_ms;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};
use lithos_server::module::{Flow, Module, ModuleContext, ModuleError, ModuleRegistration};
use lithos_server::{ServerHandle, SessionInfo};

use crate::{NS_DELAY, NS_OFFLINE};

/// Chat states (XEP-0085) alone are not worth keeping for later.
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// Messages handed to a session at once.
const BATCH: usize = 64;

/// How often expired messages are swept.
const SWEEP: Duration = Duration::from_secs(60);

struct Offline {
    quota: OfflineQuota,
    /// Zero: messages never expire.
    expire_after_ms: i64,
    /// Accounts whose store a task is delivering now (one task per account, so two
    /// sessions coming online together do not both get every message).
    delivering: Arc<Mutex<HashSet<String>>>,
    /// The expiry sweep, started with the first stored message.
    sweeper: std::sync::OnceLock<()>,
}

/// Worth storing: something other than chat-state notifications and processing hints.
fn worth_storing(msg: &Element) -> bool {
    msg.children()
        .any(|c| c.ns() != CHATSTATES && c.ns() != "urn:xmpp:hints")
        && !msg.has_child("no-store", "urn:xmpp:hints")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Offline {
    /// Hands `user`'s store to `session` on a task of its own, unless a task is doing so
    /// already (it reads the store to its end, so it also takes what arrives meanwhile).
    fn start_delivery(&self, server: &ServerHandle, session: &SessionInfo, user: &str) {
        if !lock(&self.delivering).insert(user.to_string()) {
            return;
        }
        // The connection task that calls the hooks is the one that writes the session's
        // stanzas, so delivery runs on its own task and waits for the writes there.
        let (server, session, user) = (server.clone(), session.clone(), user.to_string());
        let delivering = self.delivering.clone();
        let expire = self.expire_after_ms;
        tokio::spawn(async move {
            let mut session = session;
            loop {
                let drained = deliver(server.clone(), session, user.clone(), expire).await;
                lock(&delivering).remove(&user);
                // A message stored between the last read and now found this task still
                // running and started none: look once more.
                let more = drained
                    && OfflineStore::of(&server)
                        .offline_count(&user)
                        .await
                        .is_ok_and(|n| n > 0);
                match next_recipient(&server, &user) {
                    Some(next) if more && lock(&delivering).insert(user.clone()) => session = next,
                    _ => return,
                }
            }
        });
    }

    /// Starts the expiry sweep once, on the server's runtime.
    fn start_sweeper(&self, server: &ServerHandle) {
        if self.expire_after_ms == 0 {
            return;
        }
        let after = self.expire_after_ms;
        self.sweeper.get_or_init(|| {
            server.every(SWEEP, move |server| async move {
                let cutoff = now_ms() - after;
                match OfflineStore::of(&server).expire_offline(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(messages = n, "expired offline messages deleted"),
                    Err(e) => tracing::error!(error = %e, "expiring offline messages failed"),
                }
            })
        });
    }
}

/// Hands `user`'s stored messages to `session`, a batch at a time, deleting each batch once
/// it is written. When the session ends first, goes on with another available resource of
/// the account, if there is one. Returns `true` when it read the store to its end.
async fn deliver(
    server: ServerHandle,
    mut session: SessionInfo,
    user: String,
    expire_after_ms: i64,
) -> bool {
    let store = OfflineStore::of(&server);
    let mut after = i64::MIN;
    loop {
        let batch = match store.offline_batch(&user, after, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading offline messages failed");
                return false;
            }
        };
        let Some(last) = batch.last() else {
            return true;
        };
        let next_after = last.id;
        let oldest_kept = if expire_after_ms > 0 {
            now_ms() - expire_after_ms
        } else {
            i64::MIN
        };
        let mut ids = Vec::with_capacity(batch.len());
        let mut stanzas = Vec::with_capacity(batch.len());
        let mut dropped = Vec::new();
        for m in batch {
            if m.stamp_ms < oldest_kept {
                dropped.push(m.id);
                continue;
            }
            match Element::parse(&m.stanza) {
                Ok(mut el) => {
                    el.set_attr("to", session.jid.as_shared().clone());
                    ids.push(m.id);
                    stanzas.push(el);
                }
                Err(e) => {
                    tracing::error!(error = %e, id = m.id, "a stored offline message does not parse; dropped");
                    dropped.push(m.id);
                }
            }
        }
        if !dropped.is_empty()
            && let Err(e) = store.delete_offline(&user, &dropped).await
        {
            tracing::error!(error = %e, "deleting offline messages failed");
            return false;
        }
        if !stanzas.is_empty() {
            if !server.deliver_stored(&session, stanzas).await {
                // The session ended: the batch is still stored. Another
                // available resource takes over from the start; none, and the messages wait.
                let Some(other) = next_recipient(&server, &user) else {
                    return false;
                };
                session = other;
                after = i64::MIN;
                continue;
            }
            if let Err(e) = store.delete_offline(&user, &ids).await {
                tracing::error!(error = %e, "deleting delivered offline messages failed");
                return false;
            }
        }
        after = next_after;
    }
}

/// An available session of the account with a non-negative priority.
fn next_recipient(server: &ServerHandle, user: &str) -> Option<SessionInfo> {
    let bare = Jid::from_parts(Some(user), server.domain().domain(), None).ok()?;
    server
        .sessions()
        .resources(bare.bare_str())
        .into_iter()
        .filter(|(_, p)| p.available && p.priority >= 0)
        .max_by_key(|(_, p)| p.priority)
        .map(|(s, _)| s)
}

#[async_trait]
impl Module for Offline {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS_OFFLINE]
    }

    async fn started(&self, server: &ServerHandle) {
        server.count_gauge(
            "offline_messages",
            "Messages held in offline storage for accounts without an available session",
            "SELECT COUNT(*) FROM offline_messages",
        );
    }

    async fn undelivered(&self, server: &ServerHandle, stanza: &Element, account: &Jid) -> Flow {
        let Some(user) = account.local() else {
            return Flow::Continue;
        };
        if stanza.name() != "message"
            || !matches!(stanza.attr("type"), None | Some("normal") | Some("chat"))
        {
            return Flow::Continue;
        }
        if !worth_storing(stanza) {
            // Nothing to keep; dropping it is the expected outcome, not an error.
            return Flow::Handled;
        }
        self.start_sweeper(server);
        let stamp = now_ms();
        let mut copy = stanza.clone();
        if !copy.has_child("delay", NS_DELAY) {
            copy.append_child(
                Element::builder("delay", NS_DELAY)
                    .attr("from", server.domain().as_shared().clone())
                    .attr("stamp", lithos_core::datetime::format(stamp))
                    .build(),
            );
        }
        match OfflineStore::of(server)
            .store_offline(user, &copy.to_xml(), stamp, self.quota)
            .await
        {
            Ok(true) => {
                // A session may have become available while the message was being stored,
                // and found the store empty: it is delivered now, not at its next login.
                if let Some(session) = next_recipient(server, user) {
                    self.start_delivery(server, &session, user);
                }
                Flow::Handled
            }
            Ok(false) => {
                tracing::info!(account = %account, "offline storage full");
                server
                    .bounce_without_payload(
                        stanza,
                        StanzaError::new(DefinedCondition::ResourceConstraint)
                            .with_text("the recipient's offline storage is full"),
                    )
                    .await;
                Flow::Handled
            }
            Err(e) => {
                tracing::error!(error = %e, "storing an offline message failed");
                Flow::Continue
            }
        }
    }

    async fn session_available(&self, server: &ServerHandle, session: &SessionInfo) {
        let Some(user) = session.jid.local() else {
            return;
        };
        let priority = server
            .sessions()
            .get(&session.jid)
            .map(|(_, p)| p.priority)
            .unwrap_or(0);
        if priority < 0 {
            return;
        }
        self.start_delivery(server, session, user);
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut quota = OfflineQuota {
        messages: 1000,
        bytes: 4 * 1024 * 1024,
    };
    let mut expire_after_secs = 30 * 24 * 3600;
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_per_account" => quota.messages = ModuleError::integer(k, v, 0)? as usize,
            "max_bytes_per_account" => quota.bytes = ModuleError::integer(k, v, 0)? as usize,
            "expire_after_secs" => expire_after_secs = ModuleError::integer(k, v, 0)?,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(Offline {
        quota,
        expire_after_ms: i64::try_from(expire_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        delivering: Arc::default(),
        sweeper: std::sync::OnceLock::new(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "offline",
    "XEP-0160: stores messages for accounts that are away",
    build,
);
