//! The offline-message module.

use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::datetime::now_ms;
use lithos_core::{Element, Jid};
use lithos_server::module::{Flow, Module, ModuleContext, ModuleError, ModuleRegistration};
use lithos_server::{ServerHandle, SessionInfo};

use crate::{NS_DELAY, NS_OFFLINE};

/// Chat states (XEP-0085) alone are not worth keeping for later.
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

struct Offline {
    cap: usize,
}

/// Worth storing: something other than chat-state notifications and processing hints.
fn worth_storing(msg: &Element) -> bool {
    msg.children()
        .any(|c| c.ns() != CHATSTATES && c.ns() != "urn:xmpp:hints")
        && !msg.has_child("no-store", "urn:xmpp:hints")
}

#[async_trait]
impl Module for Offline {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS_OFFLINE]
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
        match server
            .storage()
            .offline
            .store_offline(user, &copy.to_xml(), stamp, self.cap)
            .await
        {
            Ok(true) => Flow::Handled,
            Ok(false) => {
                tracing::info!(account = %account, "offline storage full");
                Flow::Continue
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
        let msgs = match server.storage().offline.offline_messages(user).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "reading offline messages failed");
                return;
            }
        };
        let mut delivered = Vec::new();
        for m in msgs {
            match Element::parse(&m.stanza) {
                Ok(mut el) => {
                    el.set_attr("to", session.jid.as_shared().clone());
                    if server.sessions().send_to_id(session, el)
                        != lithos_server::session::Delivery::Queued
                    {
                        break;
                    }
                    delivered.push(m.id);
                }
                Err(e) => {
                    tracing::error!(error = %e, id = m.id, "a stored offline message does not parse; dropped");
                    delivered.push(m.id);
                }
            }
        }
        if !delivered.is_empty()
            && let Err(e) = server
                .storage()
                .offline
                .delete_offline(user, &delivered)
                .await
        {
            tracing::error!(error = %e, "deleting delivered offline messages failed");
        }
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut cap = 1000usize;
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_per_account" => {
                cap = ModuleError::integer(k, v, 0)? as usize;
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(Offline { cap }))
}

lithos_server::inventory::submit! {
    ModuleRegistration {
        name: "offline",
        description: "XEP-0160: stores messages for accounts that are away",
        depends_on: &[],
        enabled_by_default: true,
        build,
    }
}

#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(_) -> _);
}
