//! The presence module.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, ns};
use lithos_roster::store::{RosterItem, Rosters};
use lithos_server::module::{Flow, Module, ModuleContext, ModuleError, ModuleRegistration};
use lithos_server::storage::StorageResult;
use lithos_server::{ClientStanza, ClientStanzaHook, ServerHandle, SessionInfo};

struct Presence {
    /// Directed-presence targets one session may have (`[limits] max_directed_presences`).
    max_directed: usize,
    /// The last available presence each session sent (for probes and new subscribers).
    last: Mutex<HashMap<u64, Element>>,
    /// Who each session sent directed available presence to (told when it goes away).
    directed: Mutex<HashMap<u64, HashSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn presence(type_: Option<&str>, from: &Jid, to: &str) -> Element {
    Element::builder("presence", ns::JABBER_CLIENT)
        .opt_attr("type", type_.map(str::to_string))
        .attr("from", from.as_shared().clone())
        .attr("to", to.to_string())
        .build()
}

impl Presence {
    /// Contacts of `user` that receive its presence (subscription from or both).
    async fn subscribers(server: &ServerHandle, user: &str) -> Vec<String> {
        match Rosters::of(server).roster(user).await {
            Ok((_, items)) => items
                .into_iter()
                .filter(|i| i.subscription.has_from())
                .map(|i| i.jid)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading a roster failed");
                Vec::new()
            }
        }
    }

    /// Sends `stanza` (a presence from one of the account's sessions) to each available
    /// session of the account.
    fn to_own_resources(server: &ServerHandle, bare: &str, stanza: &Element) {
        for (s, p) in server.sessions().resources(bare) {
            if p.available {
                let mut c = stanza.clone();
                c.set_attr("to", s.jid.as_shared().clone());
                server.sessions().send_to_id(&s, c);
            }
        }
    }

    /// Sends `stanza` to each available session of the account, unchanged.
    fn deliver(server: &ServerHandle, bare: &str, stanza: &Element) {
        for (s, p) in server.sessions().resources(bare) {
            if p.available {
                server.sessions().send_to_id(&s, stanza.clone());
            }
        }
    }

    /// The account's current presence, one stanza per available session, sent to `to`.
    async fn send_current(&self, server: &ServerHandle, bare: &Jid, to: &str) {
        let ids: Vec<u64> = server
            .sessions()
            .resources(bare.bare_str())
            .into_iter()
            .filter(|(_, p)| p.available)
            .map(|(s, _)| s.id)
            .collect();
        let current: Vec<Element> = {
            let last = lock(&self.last);
            ids.iter().filter_map(|id| last.get(id).cloned()).collect()
        };
        for mut p in current {
            p.set_attr("to", to.to_string());
            server.route(p).await;
        }
    }

    /// Unavailable presence from each available session of the account, sent to `to`.
    async fn send_unavailable(&self, server: &ServerHandle, bare: &Jid, to: &str) {
        for (s, p) in server.sessions().resources(bare.bare_str()) {
            if p.available {
                server
                    .route(presence(Some("unavailable"), &s.jid, to))
                    .await;
            }
        }
    }

    async fn save(server: &ServerHandle, user: &str, item: &RosterItem) -> StorageResult<()> {
        let v = Rosters::of(server).put_roster_item(user, item).await?;
        lithos_roster::push(server, user, v, item, false).await;
        Ok(())
    }

    /// A subscription presence sent by `user` to `contact` (RFC 6121 §3, the user's side).
    async fn outbound(
        &self,
        server: &ServerHandle,
        from: &Jid,
        contact: &Jid,
        t: &str,
    ) -> StorageResult<()> {
        let Some(user) = from.local() else {
            return Ok(());
        };
        let bare = from.to_bare();
        let c = contact.as_str().to_string();
        let store = Rosters::of(server);
        let item = store.roster_item(user, &c).await?;
        let new = || RosterItem {
            jid: c.clone(),
            ..RosterItem::default()
        };
        let pending = store
            .pending_subscriptions(user)
            .await?
            .iter()
            .any(|(p, _)| *p == c);
        match t {
            "subscribe" => {
                let mut it = item.unwrap_or_else(new);
                if !it.subscription.has_to() && !it.ask {
                    it.ask = true;
                    Self::save(server, user, &it).await?;
                }
                server.route(presence(Some("subscribe"), &bare, &c)).await;
            }
            "subscribed" => {
                if item.as_ref().is_some_and(|i| i.subscription.has_from()) {
                    return Ok(());
                }
                let mut it = item.unwrap_or_else(new);
                if pending {
                    it.subscription = it.subscription.with_from(true);
                    it.approved = false;
                    Self::save(server, user, &it).await?;
                    store.delete_pending_subscription(user, &c).await?;
                    server.route(presence(Some("subscribed"), &bare, &c)).await;
                    self.send_current(server, &bare, &c).await;
                } else if !it.approved {
                    // Pre-approval (RFC 6121 §3.4).
                    it.approved = true;
                    Self::save(server, user, &it).await?;
                }
            }
            "unsubscribe" => {
                if let Some(mut it) = item
                    && (it.subscription.has_to() || it.ask)
                {
                    it.subscription = it.subscription.with_to(false);
                    it.ask = false;
                    Self::save(server, user, &it).await?;
                }
                server.route(presence(Some("unsubscribe"), &bare, &c)).await;
            }
            "unsubscribed" => {
                if pending {
                    store.delete_pending_subscription(user, &c).await?;
                }
                if let Some(mut it) = item
                    && (it.subscription.has_from() || it.approved)
                {
                    let had_from = it.subscription.has_from();
                    it.subscription = it.subscription.with_from(false);
                    it.approved = false;
                    Self::save(server, user, &it).await?;
                    if had_from {
                        self.send_unavailable(server, &bare, &c).await;
                    }
                }
                server
                    .route(presence(Some("unsubscribed"), &bare, &c))
                    .await;
            }
            _ => {}
        }
        Ok(())
    }

    /// A subscription presence or probe arriving for `account` (RFC 6121 §3–4, the contact's
    /// side).
    async fn inbound(
        &self,
        server: &ServerHandle,
        stanza: &Element,
        account: &Jid,
        exists: bool,
    ) -> StorageResult<()> {
        let Some(user) = account.local() else {
            return Ok(());
        };
        let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
            return Ok(());
        };
        let c = from.bare_str().to_string();
        let t = stanza.attr("type").unwrap_or_default();
        if !exists {
            if t == "subscribe" {
                server
                    .route(presence(Some("unsubscribed"), account, &c))
                    .await;
            }
            return Ok(());
        }
        let store = Rosters::of(server);
        let item = store.roster_item(user, &c).await?;
        let bare = account.to_bare();
        let mut stamped = stanza.clone();
        stamped.set_attr("from", c.clone());
        match t {
            "subscribe" => match item {
                Some(it) if it.subscription.has_from() => {
                    server.route(presence(Some("subscribed"), &bare, &c)).await;
                }
                Some(mut it) if it.approved => {
                    it.subscription = it.subscription.with_from(true);
                    it.approved = false;
                    Self::save(server, user, &it).await?;
                    server.route(presence(Some("subscribed"), &bare, &c)).await;
                    self.send_current(server, &bare, &c).await;
                }
                _ => {
                    store
                        .put_pending_subscription(user, &c, &stamped.to_xml())
                        .await?;
                    Self::deliver(server, bare.bare_str(), &stamped);
                }
            },
            "subscribed" => {
                if let Some(mut it) = item
                    && it.ask
                {
                    it.subscription = it.subscription.with_to(true);
                    it.ask = false;
                    Self::save(server, user, &it).await?;
                    Self::deliver(server, bare.bare_str(), &stamped);
                }
            }
            "unsubscribe" => {
                let pending = store
                    .pending_subscriptions(user)
                    .await?
                    .iter()
                    .any(|(p, _)| *p == c);
                if pending {
                    store.delete_pending_subscription(user, &c).await?;
                }
                if let Some(mut it) = item
                    && it.subscription.has_from()
                {
                    it.subscription = it.subscription.with_from(false);
                    Self::save(server, user, &it).await?;
                    Self::deliver(server, bare.bare_str(), &stamped);
                }
            }
            "unsubscribed" => {
                if let Some(mut it) = item
                    && (it.subscription.has_to() || it.ask)
                {
                    it.subscription = it.subscription.with_to(false);
                    it.ask = false;
                    Self::save(server, user, &it).await?;
                    Self::deliver(server, bare.bare_str(), &stamped);
                }
            }
            "probe" if item.is_some_and(|i| i.subscription.has_from()) => {
                let to = from.as_str().to_string();
                let any = server
                    .sessions()
                    .resources(bare.bare_str())
                    .iter()
                    .any(|(_, p)| p.available);
                if any {
                    self.send_current(server, &bare, &to).await;
                } else {
                    server
                        .route(presence(Some("unavailable"), &bare, &to))
                        .await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Tells subscribers, directed-presence recipients and the account's other sessions that
    /// a session went unavailable.
    async fn went_unavailable(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: Option<&Element>,
    ) {
        let Some(user) = session.jid.local() else {
            return;
        };
        let unavailable = stanza
            .cloned()
            .unwrap_or_else(|| presence(Some("unavailable"), &session.jid, session.jid.bare_str()));
        let mut targets: HashSet<String> =
            Self::subscribers(server, user).await.into_iter().collect();
        if let Some(d) = lock(&self.directed).remove(&session.id) {
            targets.extend(d);
        }
        for t in targets {
            let mut p = unavailable.clone();
            p.set_attr("to", t);
            server.route(p).await;
        }
        Self::to_own_resources(server, session.jid.bare_str(), &unavailable);
    }
}

#[async_trait]
impl Module for Presence {
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let stanza = cx.stanza;
        if stanza.name() != "presence" {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(cx)))
    }

    async fn to_account(
        &self,
        server: &ServerHandle,
        stanza: &Element,
        account: &Jid,
        exists: bool,
    ) -> Flow {
        if stanza.name() != "presence" {
            return Flow::Continue;
        }
        match stanza.attr("type") {
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "probe") => {
                if let Err(e) = self.inbound(server, stanza, account, exists).await {
                    tracing::error!(error = %e, "subscription handling failed");
                }
                Flow::Handled
            }
            _ => Flow::Continue,
        }
    }

    async fn account_deleting(&self, server: &ServerHandle, account: &Jid) {
        // Cancel both directions of every subscription (XEP-0077 §3.2 asks this of an IM
        // server), so that contacts' rosters do not keep a ghost.
        let Some(user) = account.local() else { return };
        let items = match Rosters::of(server).roster(user).await {
            Ok((_, items)) => items,
            Err(e) => {
                tracing::error!(error = %e, "reading a roster failed");
                return;
            }
        };
        for i in items {
            if i.subscription.has_to() {
                server
                    .route(presence(Some("unsubscribe"), account, &i.jid))
                    .await;
            }
            if i.subscription.has_from() {
                server
                    .route(presence(Some("unsubscribed"), account, &i.jid))
                    .await;
            }
        }
    }

    async fn session_closed(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        was_available: bool,
    ) {
        let had = lock(&self.last).remove(&session.id).is_some();
        if was_available || had {
            self.went_unavailable(server, session, None).await;
        } else {
            // Directed presence only (RFC 6121 §4.6.3): tell those it went to.
            let targets: Vec<String> = lock(&self.directed)
                .remove(&session.id)
                .map(|t| t.into_iter().collect())
                .unwrap_or_default();
            for t in targets {
                server
                    .route(presence(Some("unavailable"), &session.jid, &t))
                    .await;
            }
        }
    }
}

impl Presence {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
        let t = stanza.attr("type");
        let Some(to) = stanza.attr("to") else {
            match t {
                None => {
                    let initial = lock(&self.last)
                        .insert(session.id, stanza.clone())
                        .is_none();
                    let Some(user) = session.jid.local() else {
                        return Flow::Handled;
                    };
                    for c in Self::subscribers(server, user).await {
                        let mut p = stanza.clone();
                        p.set_attr("to", c);
                        server.route(p).await;
                    }
                    Self::to_own_resources(server, session.jid.bare_str(), stanza);
                    if initial {
                        self.on_initial(server, session, user).await;
                    }
                }
                Some("unavailable") => {
                    lock(&self.last).remove(&session.id);
                    self.went_unavailable(server, session, Some(stanza)).await;
                }
                _ => {}
            }
            return Flow::Handled;
        };
        let Ok(contact) = Jid::new(to) else {
            return Flow::Continue;
        };
        match t {
            None | Some("unavailable") => {
                let refused = {
                    let mut d = lock(&self.directed);
                    let set = d.entry(session.id).or_default();
                    if t.is_some() {
                        set.remove(to);
                        false
                    } else if set.contains(to) {
                        false
                    } else if set.len() >= self.max_directed {
                        // Each target is remembered until the session ends, to be told then:
                        // the set is bounded ([limits] max_directed_presences).
                        true
                    } else {
                        set.insert(to.to_string());
                        false
                    }
                };
                if refused {
                    server
                        .bounce_without_payload(
                            stanza,
                            StanzaError::explained(
                                DefinedCondition::ResourceConstraint,
                                "this session has sent directed presence to too many addresses",
                            ),
                        )
                        .await;
                    return Flow::Handled;
                }
                Flow::Continue
            }
            Some(s @ ("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")) => {
                if let Err(e) = self
                    .outbound(server, &session.jid, &contact.to_bare(), s)
                    .await
                {
                    tracing::error!(error = %e, "subscription handling failed");
                }
                Flow::Handled
            }
            // Clients do not probe (RFC 6121 §4.3): the server does.
            Some("probe") => Flow::Handled,
            _ => Flow::Continue,
        }
    }
}

impl Presence {
    /// After a session's first available presence: probe the contacts it is subscribed to, and
    /// hand it the subscription requests waiting for an answer.
    async fn on_initial(&self, server: &ServerHandle, session: &SessionInfo, user: &str) {
        let store = Rosters::of(server);
        if let Ok((_, items)) = store.roster(user).await {
            for i in items.iter().filter(|i| i.subscription.has_to()) {
                server
                    .route(presence(Some("probe"), &session.jid, &i.jid))
                    .await;
            }
        }
        if let Ok(pending) = store.pending_subscriptions(user).await {
            let requests: Vec<Element> = pending
                .into_iter()
                .filter_map(|(_, xml)| Element::parse(&xml).ok())
                .map(|mut el| {
                    el.set_attr("to", session.jid.as_shared().clone());
                    el
                })
                .collect();
            // The requests stay stored until answered, so they go as stored stanzas: in
            // batches paced by the client's reading, outside the session's live queue (a few
            // hundred requests must not fill it). The connection task calls this hook and is
            // the one that writes, so the batches are awaited on a task of their own.
            if !requests.is_empty() {
                let (server, session) = (server.clone(), session.clone());
                tokio::spawn(async move {
                    server.deliver_stored(&session, requests).await;
                });
            }
        }
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    ctx.expect_no_settings()?;
    Ok(Arc::new(Presence {
        max_directed: ctx.config.limits.max_directed_presences,
        last: Mutex::default(),
        directed: Mutex::default(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "presence",
    "RFC 6121: subscriptions, presence broadcast, probes, directed presence",
    build,
)
.depends_on(&["roster"]);
