//! The `blocking` module: the commands, the pushes, and the checks on every stanza to or
//! from an account with a list.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError, error_reply};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::{ModuleContext, ModuleError, internal_error};
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, IqClaim, IqRequest, IqResponse, Module,
    ModuleRegistration, ServerHandle, SessionInfo, Verdict,
};

use crate::store::{BlockStore, TooMany};
use crate::{Block, Blocklist, Blocklists, Item, NS, Unblock, blocked_error};

/// The session mark of a resource that asked for the list (it gets the pushes).
const MARK: &str = "blocklist";

struct BlockingModule {
    max_items: usize,
    /// The server's lists, set at start.
    lists: OnceLock<Arc<Blocklists>>,
}

fn parse_all(jids: Vec<String>) -> Vec<Jid> {
    jids.iter().filter_map(|j| Jid::new(j).ok()).collect()
}

impl BlockingModule {
    fn lists(&self, server: &ServerHandle) -> Arc<Blocklists> {
        self.lists
            .get_or_init(|| server.shared::<Blocklists>())
            .clone()
    }

    /// Pushes `payload` to the account's resources that asked for the list.
    async fn push(&self, server: &ServerHandle, account: &Jid, payload: Element) {
        for s in server.sessions().marked(account.bare_str(), MARK) {
            let iq = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
                .attr("type", "set")
                .attr("id", format!("block-push-{}", next_push_id()))
                .attr("from", account.as_shared().clone())
                .attr("to", s.jid.as_shared().clone())
                .child(payload.clone())
                .build();
            server.sessions().send_to_id(&s, iq);
        }
    }

    async fn block(&self, server: &ServerHandle, account: &Jid, b: Block) -> IqResponse {
        let user = account.local().unwrap_or_default();
        let jids: Vec<String> = b.items.iter().map(|i| i.jid.to_string()).collect();
        let now = match BlockStore::of(server)
            .block(user, jids, self.max_items)
            .await
            .map_err(internal_error)?
        {
            Ok(now) => now,
            Err(TooMany) => {
                return Err(StanzaError::explained(
                    DefinedCondition::ResourceConstraint,
                    format!("a blocklist holds at most {} addresses", self.max_items),
                ));
            }
        };
        // The contacts that may see the account's presence see it go, before the list
        // stops every presence to them (XEP-0191 §3.3).
        let rosters = lithos_roster::store::Rosters::of(server);
        for item in &b.items {
            let sees = rosters
                .roster_item(user, item.jid.bare_str())
                .await
                .ok()
                .flatten()
                .is_some_and(|i| i.subscription.has_from());
            if sees {
                for (s, p) in server.sessions().resources(account.bare_str()) {
                    if p.available {
                        let gone = Element::builder("presence", lithos_core::ns::JABBER_CLIENT)
                            .attr("type", "unavailable")
                            .attr("from", s.jid.as_shared().clone())
                            .attr("to", item.jid.as_shared().clone())
                            .build();
                        server.route(gone).await;
                    }
                }
            }
        }
        self.lists(server).set(account.bare_str(), parse_all(now));
        tracing::info!(%account, blocked = b.items.len(), "blocked");
        self.push(server, account, b.into_element()).await;
        Ok(None)
    }

    async fn unblock(&self, server: &ServerHandle, account: &Jid, u: Unblock) -> IqResponse {
        let user = account.local().unwrap_or_default();
        let was = self.lists(server).list(account.bare_str());
        let jids: Vec<String> = u.items.iter().map(|i| i.jid.to_string()).collect();
        let now = BlockStore::of(server)
            .unblock(user, jids)
            .await
            .map_err(internal_error)?;
        let now = parse_all(now);
        let freed: Vec<Jid> = was.into_iter().filter(|j| !now.contains(j)).collect();
        self.lists(server).set(account.bare_str(), now);
        // The freed contacts that may see the account's presence get it again: a probe on
        // their behalf, answered by the presence module under RFC 6121's rules.
        for j in &freed {
            if j.local().is_some() && server.is_local(j) {
                let probe = Element::builder("presence", lithos_core::ns::JABBER_CLIENT)
                    .attr("type", "probe")
                    .attr("from", j.to_bare().as_shared().clone())
                    .attr("to", account.as_shared().clone())
                    .build();
                server.route(probe).await;
            }
        }
        tracing::info!(%account, unblocked = freed.len(), "unblocked");
        self.push(server, account, u.into_element()).await;
        Ok(None)
    }
}

/// A fresh id for a push (unique within the process).
fn next_push_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[async_trait]
impl Module for BlockingModule {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    async fn started(&self, server: &ServerHandle) {
        let lists = self.lists(server);
        match BlockStore::of(server).all().await {
            Ok(rows) => {
                let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
                for (u, j) in rows {
                    by.entry(u).or_default().push(j);
                }
                let domain = server.domain().domain().to_string();
                for (u, jids) in by {
                    lists.set(&format!("{u}@{domain}"), parse_all(jids));
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load the blocklists"),
        }
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let own = req.session.is_some() && req.from.bare_eq(&req.to);
        if !own {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "an account manages its own blocklist",
            ));
        }
        let account = req.to.to_bare();
        match (req.is_set, req.payload.name()) {
            (false, "blocklist") => {
                Blocklist::from_element(req.payload)?;
                if let Some(s) = &req.session {
                    server.sessions().mark(s, MARK);
                }
                let items = self
                    .lists(server)
                    .list(account.bare_str())
                    .into_iter()
                    .map(|jid| Item { jid })
                    .collect();
                Ok(Some(Blocklist { items }.into_element()))
            }
            (true, "block") => {
                self.block(server, &account, Block::from_element(req.payload)?)
                    .await
            }
            (true, "unblock") => {
                self.unblock(server, &account, Unblock::from_element(req.payload)?)
                    .await
            }
            _ => Err(StanzaError::new(DefinedCondition::BadRequest)),
        }
    }

    fn filter(&self, server: &ServerHandle, stanza: &Element, to: &Jid) -> Verdict {
        let lists = self.lists(server);
        let Some(from) = stanza
            .attr("from")
            .filter(|_| lists.any())
            .and_then(|f| Jid::new(f).ok())
        else {
            return Verdict::Deliver;
        };
        if from.bare_eq(to) {
            return Verdict::Deliver;
        }
        // From an address the account blocks: as if the account were offline (§3.3).
        if lists.blocks(to.bare_str(), &from) {
            let t = stanza.attr("type").unwrap_or("");
            return match (stanza.name(), t) {
                ("message", "error") | ("presence", _) | ("iq", "result" | "error") => {
                    Verdict::Drop
                }
                _ => Verdict::Refuse(Box::new(StanzaError::new(
                    DefinedCondition::ServiceUnavailable,
                ))),
            };
        }
        // The account's own presence to an address it blocks (broadcasts, probes answered):
        // never sent.
        if stanza.name() == "presence"
            && from.local().is_some()
            && server.is_local(&from)
            && lists.blocks(from.bare_str(), to)
        {
            return Verdict::Drop;
        }
        Verdict::Deliver
    }

    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let (server, session, stanza) = cx.parts();
        let lists = self.lists(server);
        if !lists.has_list(session.jid.bare_str()) {
            return None;
        }
        let to = stanza.attr("to").and_then(|t| Jid::new(t).ok())?;
        if to.bare_eq(&session.jid) || !lists.blocks(session.jid.bare_str(), &to) {
            return None;
        }
        Some(Box::pin(refuse(server, session, stanza)))
    }
}

/// What the account sends to an address it blocks: not routed; `not-acceptable` with
/// `<blocked/>` straight back to the session (presence: nothing).
async fn refuse(server: &ServerHandle, session: &SessionInfo, stanza: &Element) -> Flow {
    if stanza.name() != "presence"
        && let Some(reply) = error_reply(stanza, &blocked_error())
    {
        server.sessions().send_to_id(session, reply);
    }
    Flow::Handled
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut max_items = 1000;
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_items" => max_items = ModuleError::integer(k, v, 1)? as usize,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(BlockingModule {
        max_items,
        lists: OnceLock::new(),
    }))
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "blocking",
    "XEP-0191: each account's blocklist; blocked addresses cannot message it, see its presence or command its things",
    build,
)
.depends_on(&["roster"]);
