//! Routing (RFC 6121 §8.5): where a stanza goes, given its `to`.

use lithos_core::stanza::{
    DefinedCondition, StanzaError, error_reply, error_reply_without_payload,
};
use lithos_core::{ByteString, Element, Jid, ns};

use crate::ServerHandle;
use crate::component::Handoff;
use crate::module::{Flow, IqRequest, IqTarget};
use crate::session::{Delivery, SessionInfo};

/// The kind of a stanza, from its element name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Presence,
    Iq,
}

/// What the sender of a stanza hears when its recipient's session queue is full.
fn queue_full() -> StanzaError {
    StanzaError::new(DefinedCondition::ResourceConstraint)
        .with_text("the recipient's queue is full")
}

fn kind(el: &Element) -> Option<Kind> {
    match el.name() {
        "message" => Some(Kind::Message),
        "presence" => Some(Kind::Presence),
        "iq" => Some(Kind::Iq),
        _ => None,
    }
}

fn type_of(el: &Element) -> &str {
    el.attr("type").unwrap_or("")
}

impl ServerHandle {
    /// Sends a stanza error back to the sender of `stanza` (nothing if it is an error itself).
    pub async fn bounce(&self, stanza: &Element, error: StanzaError) {
        self.metrics().refused(error.condition.as_str());
        self.send_error_reply(error_reply(stanza, &error)).await
    }

    /// As [`bounce`](Self::bounce), without echoing the stanza's content: for refusals that
    /// may come in floods (a full queue, a quota), where echoing would send the flood back to
    /// its sender, and for payloads that may hold a secret.
    pub async fn bounce_without_payload(&self, stanza: &Element, error: StanzaError) {
        self.metrics().refused(error.condition.as_str());
        self.send_error_reply(error_reply_without_payload(stanza, &error))
            .await
    }

    /// Answers the iq `request` for a service at `from` (a module's service domain, or an
    /// address there): a result with the payload, or the stanza error.
    pub async fn reply(
        &self,
        request: &Element,
        from: &Jid,
        answer: Result<Option<Element>, StanzaError>,
    ) {
        match answer {
            Ok(payload) => {
                let mut r = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
                    .attr("type", "result")
                    .attr("id", request.attr_shared("id").cloned().unwrap_or_default())
                    .attr("from", from.as_shared().clone())
                    .opt_attr("to", request.attr_shared("from").cloned());
                if let Some(p) = payload {
                    r = r.child(p);
                }
                Box::pin(self.route(r.build())).await;
            }
            Err(e) => self.bounce(request, e).await,
        }
    }

    /// Routes an error reply, from the server when the stanza it answers named no `to`.
    async fn send_error_reply(&self, reply: Option<Element>) {
        if let Some(mut reply) = reply {
            if reply.attr("from").is_none() {
                reply.set_attr("from", self.domain().as_shared().clone());
            }
            Box::pin(self.route(reply)).await;
        }
    }

    /// Delivers at once, without waiting, a stanza for a connected local full JID: the
    /// common case of [`route`](Self::route), with the same filters and delivery watchers.
    /// Anything else (another address, no such session, a full queue, a refusal to answer)
    /// is handed back, for `route`. A service that decides many deliveries under a lock
    /// queues them here, in its order, before letting go.
    pub fn deliver_now(&self, stanza: Element) -> Result<(), Element> {
        let to = match stanza
            .attr_shared("to")
            .map(|t| Jid::parse_shared(t.clone()))
        {
            Some(Ok(to)) if to.is_full() && self.is_local(&to) => to,
            _ => return Err(stanza),
        };
        let Some(k) = kind(&stanza) else {
            return Err(stanza);
        };
        if !self.sessions().has_session(&to) {
            return Err(stanza);
        }
        let mut stanza = stanza;
        // Handled here from now on: counted as routed (once, as `route` counts).
        self.metrics().routed(stanza.name());
        match self.modules().filter(self, &mut stanza, &to) {
            crate::module::Verdict::Deliver => {}
            crate::module::Verdict::Drop => return Ok(()),
            crate::module::Verdict::Refuse(e) => {
                let server = self.clone();
                tokio::spawn(async move { server.bounce_without_payload(&stanza, *e).await });
                return Ok(());
            }
        }
        let watched = (k == Kind::Message && self.modules().watch_deliveries(self, to.bare_str()))
            .then(|| stanza.clone());
        match self.sessions().send_or_return(&to, stanza) {
            Ok(()) => {
                if let Some(m) = watched {
                    self.modules()
                        .delivered(self, &m, std::slice::from_ref(&to));
                }
            }
            // As `route` answers a full queue.
            Err((Delivery::Full, s)) => {
                if k != Kind::Presence {
                    let server = self.clone();
                    tokio::spawn(
                        async move { server.bounce_without_payload(&s, queue_full()).await },
                    );
                }
            }
            // The session ended since the check: routed the slow way (the filters then see
            // the stanza a second time, in this narrow race only).
            Err((_, s)) => {
                let server = self.clone();
                tokio::spawn(async move { server.route(s).await });
            }
        }
        Ok(())
    }

    /// Routes a stanza whose `from` is set (by the kernel for client stanzas, by a module for
    /// the server's own) and whose `to`, if any, is a valid JID.
    pub async fn route(&self, stanza: Element) {
        self.route_from(stanza, None).await
    }

    pub(crate) async fn route_from(&self, stanza: Element, session: Option<&SessionInfo>) {
        self.route_to(stanza, None, session).await
    }

    /// [`route_from`](Self::route_from) with the stanza's `to` already parsed (`parsed`),
    /// so a client stanza's address is prepared once, not twice.
    pub(crate) async fn route_to(
        &self,
        stanza: Element,
        parsed: Option<Jid>,
        session: Option<&SessionInfo>,
    ) {
        // Every path that awaits is boxed: a stanza for a connected full JID (the common
        // case) is queued without awaiting, and this future stays small enough that a
        // connection can box it per stanza without copying kilobytes of state.
        let Some(k) = kind(&stanza) else { return };
        self.metrics().routed(stanza.name());
        let to = match (parsed, stanza.attr_shared("to")) {
            (Some(j), _) => Some(j),
            (None, None) => None,
            (None, Some(t)) => match Jid::parse_shared(t.clone()) {
                Ok(j) => Some(j),
                Err(_) => {
                    return Box::pin(
                        self.bounce(&stanza, StanzaError::new(DefinedCondition::JidMalformed)),
                    )
                    .await;
                }
            },
        };
        let to = match to {
            Some(t) => t,
            // No `to`: on behalf of the sender's account (RFC 6120 §10.3).
            None => match stanza.attr("from").and_then(|f| Jid::new(f).ok()) {
                Some(from) if k == Kind::Iq => {
                    return Box::pin(self.dispatch_iq(stanza, from.to_bare(), session)).await;
                }
                Some(from) => from.to_bare(),
                None => return,
            },
        };
        if !self.is_local(&to) {
            if let Some(m) = self.modules().service(to.domain()) {
                return Box::pin(m.service_stanza(self, stanza)).await;
            }
            let stanza = match self.0.components.hand_off(self, to.domain(), stanza) {
                Handoff::NotComponent(s) => s,
                Handoff::Queued => return,
                Handoff::Absent(s) => {
                    return Box::pin(crate::component::unavailable(self, s)).await;
                }
                Handoff::Full(s) if k == Kind::Presence => {
                    drop(s);
                    return;
                }
                Handoff::Full(s) => {
                    return Box::pin(
                        self.bounce_without_payload(
                            &s,
                            StanzaError::new(DefinedCondition::ResourceConstraint)
                                .with_text("the component's queue is full"),
                        ),
                    )
                    .await;
                }
            };
            return Box::pin(self.bounce(
                &stanza,
                StanzaError::new(DefinedCondition::RemoteServerNotFound),
            ))
            .await;
        }
        if to.local().is_none() {
            return Box::pin(self.to_server(stanza, k, to, session)).await;
        }
        let mut stanza = stanza;
        match self.modules().filter(self, &mut stanza, &to) {
            crate::module::Verdict::Deliver => {}
            crate::module::Verdict::Drop => return,
            crate::module::Verdict::Refuse(e) => {
                return Box::pin(self.bounce_without_payload(&stanza, *e)).await;
            }
        }
        let stanza = if to.is_full() {
            // A copy for the modules that watch deliveries to this account (carbons), made
            // only when one does.
            let watched = (k == Kind::Message
                && self.modules().watch_deliveries(self, to.bare_str()))
            .then(|| stanza.clone());
            match self.sessions().send_or_return(&to, stanza) {
                Ok(()) => {
                    if let Some(m) = watched {
                        self.modules()
                            .delivered(self, &m, std::slice::from_ref(&to));
                    }
                    return;
                }
                // The resource is there but reads slower than stanzas arrive for it: its
                // queue is full. The sender hears so at once (a command must end promptly
                // in an error, not wait); presence goes on as for an absent resource.
                Err((Delivery::Full, s)) if k != Kind::Presence => {
                    return Box::pin(self.bounce_without_payload(&s, queue_full())).await;
                }
                Err((_, s)) => s,
            }
        } else {
            stanza
        };
        if to.is_full() {
            // No such resource (RFC 6121 §8.5.3.2).
            let t = type_of(&stanza);
            match k {
                Kind::Message => match t {
                    "" | "normal" | "chat" | "headline" => {}
                    "groupchat" => {
                        return Box::pin(self.bounce(
                            &stanza,
                            StanzaError::new(DefinedCondition::ServiceUnavailable),
                        ))
                        .await;
                    }
                    _ => return,
                },
                Kind::Presence => match t {
                    "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "probe" => {}
                    _ => return,
                },
                Kind::Iq => {
                    if matches!(t, "get" | "set") {
                        Box::pin(self.bounce(
                            &stanza,
                            StanzaError::new(DefinedCondition::ServiceUnavailable),
                        ))
                        .await;
                    }
                    return;
                }
            }
        }
        let bare = to.to_bare();
        if k == Kind::Iq {
            return Box::pin(self.dispatch_iq(stanza, bare, session)).await;
        }
        Box::pin(self.to_account(stanza, k, bare)).await
    }

    async fn account_exists(&self, bare: &Jid) -> bool {
        if self.sessions().is_online(bare.bare_str()) {
            return true;
        }
        match bare.local() {
            Some(l) => self
                .storage()
                .accounts
                .account_exists(l)
                .await
                .unwrap_or(false),
            None => false,
        }
    }

    async fn to_server(&self, stanza: Element, k: Kind, to: Jid, session: Option<&SessionInfo>) {
        match k {
            Kind::Iq => self.dispatch_iq(stanza, to.to_domain(), session).await,
            Kind::Message => {
                if matches!(type_of(&stanza), "" | "normal" | "chat") {
                    self.bounce(
                        &stanza,
                        StanzaError::new(DefinedCondition::ServiceUnavailable),
                    )
                    .await;
                }
            }
            Kind::Presence => {}
        }
    }

    /// Message or presence to an account's bare JID (RFC 6121 §8.5.2).
    async fn to_account(&self, stanza: Element, k: Kind, bare: Jid) {
        let exists = self.account_exists(&bare).await;
        for m in self.modules().iter() {
            if m.to_account(self, &stanza, &bare, exists).await == Flow::Handled {
                return;
            }
        }
        let t = type_of(&stanza).to_string();
        if !exists {
            if k == Kind::Message && matches!(t.as_str(), "" | "normal" | "chat") {
                self.bounce(
                    &stanza,
                    StanzaError::new(DefinedCondition::ServiceUnavailable),
                )
                .await;
            }
            return;
        }
        let resources = self.sessions().resources(bare.bare_str());
        match k {
            Kind::Message => match t.as_str() {
                "" | "normal" | "chat" => {
                    let best = resources
                        .iter()
                        .filter(|(_, p)| p.available && p.priority >= 0)
                        .map(|(_, p)| p.priority)
                        .max();
                    // The sessions reached are listed only for modules that watch them.
                    let watched = self.modules().watch_deliveries(self, bare.bare_str());
                    let mut delivered = false;
                    let mut reached = Vec::new();
                    if let Some(best) = best {
                        for (s, _) in resources
                            .iter()
                            .filter(|(_, p)| p.available && p.priority == best)
                        {
                            if self.sessions().send_to_id(s, stanza.clone()) == Delivery::Queued {
                                delivered = true;
                                if watched {
                                    reached.push(s.jid.clone());
                                }
                            }
                        }
                    }
                    if !reached.is_empty() {
                        self.modules().delivered(self, &stanza, &reached);
                    }
                    if !delivered {
                        for m in self.modules().iter() {
                            if m.undelivered(self, &stanza, &bare).await == Flow::Handled {
                                return;
                            }
                        }
                        self.bounce(
                            &stanza,
                            StanzaError::new(DefinedCondition::ServiceUnavailable),
                        )
                        .await;
                    }
                }
                "headline" => {
                    for (s, _) in resources
                        .iter()
                        .filter(|(_, p)| p.available && p.priority >= 0)
                    {
                        self.sessions().send_to_id(s, stanza.clone());
                    }
                }
                "groupchat" => {
                    self.bounce(
                        &stanza,
                        StanzaError::new(DefinedCondition::ServiceUnavailable),
                    )
                    .await;
                }
                _ => {}
            },
            Kind::Presence => {
                if matches!(t.as_str(), "" | "unavailable") {
                    for (s, _) in resources.iter().filter(|(_, p)| p.available) {
                        self.sessions().send_to_id(s, stanza.clone());
                    }
                }
            }
            Kind::Iq => {}
        }
    }

    /// An iq for the server (`to` the domain) or for an account (`to` its bare JID).
    async fn dispatch_iq(&self, stanza: Element, to: Jid, session: Option<&SessionInfo>) {
        let t = type_of(&stanza);
        let is_set = match t {
            "get" => false,
            "set" => true,
            // Results and errors for the server or an account: nobody waits for them here.
            _ => return,
        };
        let payload = stanza.children().next().cloned();
        let Some(payload) = payload else {
            return self
                .bounce(&stanza, StanzaError::new(DefinedCondition::BadRequest))
                .await;
        };
        let target = if to.local().is_none() {
            IqTarget::Server
        } else {
            IqTarget::Account
        };
        let handler = self.modules().iq_handler(payload.ns(), target).or_else(|| {
            // An iq without `to` may also be meant for the server (ping, disco, version).
            (stanza.attr("to").is_none() && target == IqTarget::Account)
                .then(|| self.modules().iq_handler(payload.ns(), IqTarget::Server))
                .flatten()
        });
        let Some(handler) = handler.cloned() else {
            return self
                .bounce(
                    &stanza,
                    StanzaError::new(DefinedCondition::ServiceUnavailable),
                )
                .await;
        };
        let (Some(from), Some(id)) = (
            stanza.attr("from").and_then(|f| Jid::new(f).ok()),
            stanza.attr_shared("id").cloned(),
        ) else {
            return;
        };
        let req = IqRequest {
            is_set,
            id: id.to_string(),
            from: from.clone(),
            to: to.clone(),
            payload,
            session: session.cloned(),
            peer: session.map(|s| s.peer),
            listener: session.map_or(crate::session::Listener::Client, |s| s.listener),
        };
        match handler.handle_iq(self, req).await {
            Ok(result) => {
                let mut reply = Element::builder("iq", ns::JABBER_CLIENT)
                    .attr("type", "result")
                    .attr("id", id)
                    .attr("to", from.as_shared().clone())
                    .attr("from", reply_from(&stanza, &to))
                    .build();
                if let Some(r) = result {
                    reply.append_child(r);
                }
                Box::pin(self.route(reply)).await;
            }
            Err(e) => {
                // The request's payload is not echoed: it may hold a secret (a new password).
                let mut reply =
                    error_reply_without_payload(&stanza, &e).expect("a get or set is not an error");
                if stanza.attr("to").is_none() {
                    reply.set_attr("from", to.as_shared().clone());
                }
                Box::pin(self.route(reply)).await;
            }
        }
    }
}

/// The `from` of an answer: the `to` the request named, or (when it had none) the entity that
/// answered.
fn reply_from(request: &Element, answered: &Jid) -> ByteString {
    request
        .attr_shared("to")
        .cloned()
        .unwrap_or_else(|| answered.as_shared().clone())
}
