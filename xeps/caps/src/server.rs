//! The `caps` module: what each connected local client supports, learned from the `<c/>` of
//! its broadcast presence and verified (XEP-0115 §6.2, §5.4).
//!
//! A `ver` seen for the first time makes the server ask that client for the disco#info of
//! `node#ver` (from the server's domain, id `caps-…`); an answer that hashes to the `ver` is
//! kept for every client that announces the same `ver`, an answer that does not is dropped
//! with a warning (§8.4: a poisoned cache would tell others wrong things). At most
//! [`MAX_VERS`] verified `ver`s are kept (the oldest learned go first), and a question not
//! answered within [`QUERY_TIMEOUT`] is given up (the client's next presence asks again).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use lithos_core::{Element, Jid};
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::session::SessionInfo;
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle,
};
use tokio::sync::watch;

use crate::{Caps, Features, NS_DISCO_INFO, verify};

/// How many verified `ver`s the cache keeps.
pub const MAX_VERS: usize = 4096;
/// How long a client has to answer the disco#info question.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many questions may wait for answers at once (beyond it, new `ver`s wait for the
/// client's next presence).
pub const MAX_QUERIES: usize = 1024;

const ID_PREFIX: &str = "caps-";

/// The key of a verified `ver`: the hash's name and the `ver`.
type VerKey = (Option<crate::Algorithm>, String);

/// A question in flight: whom it asked, what it wants to verify, and who waits for it.
struct Query {
    caps: Caps,
    asked: Jid,
    done: watch::Sender<Option<Arc<Features>>>,
}

#[derive(Default)]
struct Inner {
    /// Each connected client's latest `<c/>`.
    by_jid: HashMap<Jid, Caps>,
    /// Verified `ver`s, and the order they were learned in.
    vers: HashMap<VerKey, Arc<Features>>,
    learned: VecDeque<VerKey>,
    /// Questions in flight, by iq id, and the id asking about each `ver`.
    queries: HashMap<String, Query>,
    asking: HashMap<VerKey, String>,
    next_id: u64,
}

/// What each connected local client supports, as far as its capabilities were verified.
/// One per server ([`CapsCache::of`]); the `caps` module fills it.
#[derive(Default)]
pub struct CapsCache {
    inner: Mutex<Inner>,
}

fn key(caps: &Caps) -> VerKey {
    (caps.hash, caps.ver.clone())
}

impl CapsCache {
    /// The server's cache.
    pub fn of(server: &ServerHandle) -> Arc<CapsCache> {
        server.shared::<CapsCache>()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `jid` (a connected client's full JID) supports, if its capabilities are known
    /// and verified now.
    pub fn known(&self, jid: &Jid) -> Option<Arc<Features>> {
        let inner = self.lock();
        let caps = inner.by_jid.get(jid)?;
        inner.vers.get(&key(caps)).cloned()
    }

    /// The `<c/>` `jid` last announced.
    pub fn caps_of(&self, jid: &Jid) -> Option<Caps> {
        self.lock().by_jid.get(jid).cloned()
    }

    /// What `jid` supports, waiting (at most [`QUERY_TIMEOUT`]) for the answer to a question
    /// in flight about its `ver`. `None`: it announced no capabilities, or they could not
    /// be verified.
    pub async fn features(&self, jid: &Jid) -> Option<Arc<Features>> {
        let mut rx = {
            let inner = self.lock();
            let caps = inner.by_jid.get(jid)?;
            let k = key(caps);
            if let Some(f) = inner.vers.get(&k) {
                return Some(f.clone());
            }
            let id = inner.asking.get(&k)?;
            inner.queries.get(id)?.done.subscribe()
        };
        let waited = tokio::time::timeout(QUERY_TIMEOUT, async {
            loop {
                if let Some(f) = rx.borrow_and_update().clone() {
                    return Some(f);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        waited.ok().flatten()
    }

    /// How many verified `ver`s are kept.
    pub fn vers(&self) -> usize {
        self.lock().vers.len()
    }

    /// Notes `jid`'s capabilities; returns the question to send when its `ver` is new.
    fn announce(&self, server_domain: &Jid, jid: &Jid, caps: Caps) -> Option<Element> {
        let mut inner = self.lock();
        let k = key(&caps);
        inner.by_jid.insert(jid.clone(), caps.clone());
        if caps.hash.is_none()
            || inner.vers.contains_key(&k)
            || inner.asking.contains_key(&k)
            || inner.queries.len() >= MAX_QUERIES
        {
            return None;
        }
        inner.next_id += 1;
        let id = format!("{ID_PREFIX}{}", inner.next_id);
        let (done, _) = watch::channel(None);
        let node = caps.disco_node();
        inner.asking.insert(k, id.clone());
        inner.queries.insert(
            id.clone(),
            Query {
                caps,
                asked: jid.clone(),
                done,
            },
        );
        Some(
            Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
                .attr("type", "get")
                .attr("id", id)
                .attr("from", server_domain.to_string())
                .attr("to", jid.to_string())
                .child(
                    Element::builder("query", NS_DISCO_INFO)
                        .attr("node", node)
                        .build(),
                )
                .build(),
        )
    }

    fn forget(&self, jid: &Jid) {
        self.lock().by_jid.remove(jid);
    }

    /// The answer (or error, or timeout: `None`) to question `id`, from `from`.
    /// Returns whether the id was one of ours.
    fn answered(&self, id: &str, from: Option<&Jid>, query: Option<&Element>) -> bool {
        let mut inner = self.lock();
        let Some(q) = inner.queries.get(id) else {
            return false;
        };
        if from.is_some_and(|f| *f != q.asked) {
            // Only the client asked may answer.
            return true;
        }
        let q = inner.queries.remove(id).expect("checked");
        let k = key(&q.caps);
        inner.asking.remove(&k);
        let features = match query {
            Some(query) => match verify(&q.caps, query) {
                Ok(f) => Some(Arc::new(f)),
                Err(e) => {
                    tracing::warn!(client = %q.asked, node = %q.caps.node, error = %e, "capabilities not verified; not kept");
                    None
                }
            },
            None => None,
        };
        if let Some(f) = &features {
            while inner.vers.len() >= MAX_VERS {
                let Some(old) = inner.learned.pop_front() else {
                    break;
                };
                inner.vers.remove(&old);
            }
            inner.vers.insert(k.clone(), f.clone());
            inner.learned.push_back(k);
        }
        q.done.send_replace(features);
        true
    }
}

struct CapsModule;

impl CapsModule {
    async fn presence(&self, server: &ServerHandle, from: &Jid, stanza: &Element) -> Flow {
        let cache = CapsCache::of(server);
        match stanza.attr("type") {
            None => {
                if let Some(caps) = Caps::of_presence(stanza) {
                    if let Some(question) = cache.announce(server.domain(), from, caps) {
                        let id = question.attr("id").unwrap_or_default().to_string();
                        server.route(question).await;
                        let cache = cache.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(QUERY_TIMEOUT).await;
                            cache.answered(&id, None, None);
                        });
                    }
                } else {
                    cache.forget(from);
                }
            }
            Some("unavailable") => cache.forget(from),
            _ => {}
        }
        Flow::Continue
    }

    fn answer(server: &ServerHandle, from: &Jid, stanza: &Element) -> Flow {
        let Some(id) = stanza.attr("id").filter(|id| id.starts_with(ID_PREFIX)) else {
            return Flow::Continue;
        };
        let query = match stanza.attr("type") {
            Some("result") => stanza.get_child("query", NS_DISCO_INFO),
            _ => None,
        };
        if CapsCache::of(server).answered(id, Some(from), query) {
            Flow::Handled
        } else {
            Flow::Continue
        }
    }
}

#[async_trait]
impl Module for CapsModule {
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let (server, session, stanza) = cx.parts();
        match stanza.name() {
            // Broadcast presence only: directed presence says nothing to the server.
            "presence" if stanza.attr("to").is_none() => {
                Some(Box::pin(self.presence(server, &session.jid, stanza)))
            }
            "iq" if matches!(stanza.attr("type"), Some("result" | "error"))
                && stanza.attr("to") == Some(server.domain().as_str()) =>
            {
                let flow = Self::answer(server, &session.jid, stanza);
                Some(Box::pin(async move { flow }))
            }
            _ => None,
        }
    }

    async fn session_closed(&self, server: &ServerHandle, session: &SessionInfo, _: bool) {
        CapsCache::of(server).forget(&session.jid);
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    ctx.no_settings(CapsModule)
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "caps",
    "XEP-0115: learns, verifies and caches what each connected client supports",
    build,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_ver_is_asked_once_and_a_wrong_answer_is_not_kept() {
        let cache = CapsCache::default();
        let domain = Jid::new("localhost").unwrap();
        let a = Jid::new("a@localhost/1").unwrap();
        let b = Jid::new("b@localhost/1").unwrap();
        let caps = Caps {
            hash: Some(crate::Algorithm::Sha1),
            node: "n".into(),
            ver: "AAAA".into(),
        };
        let q = cache.announce(&domain, &a, caps.clone()).expect("asked");
        assert_eq!(q.attr("to"), Some("a@localhost/1"));
        assert!(cache.announce(&domain, &b, caps.clone()).is_none());
        let id = q.attr("id").unwrap().to_string();
        // Someone else's answer is ignored (but the id is ours).
        let wrong = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='x'/></query>",
        )
        .unwrap();
        assert!(cache.answered(&id, Some(&b), Some(&wrong)));
        assert_eq!(cache.lock().queries.len(), 1);
        // The right client's answer that does not hash to the ver: dropped.
        assert!(cache.answered(&id, Some(&a), Some(&wrong)));
        assert!(cache.known(&a).is_none());
        assert_eq!(cache.vers(), 0);
        // Asked again on the next presence.
        assert!(cache.announce(&domain, &a, caps).is_some());
        assert!(!cache.answered("caps-999", Some(&a), None));
    }
}
