//! The `signaling` module: relays signals between an account and the things it may command.

use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::session::SessionInfo;
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle,
};
use lithos_tuxp_things::{EDGE_RESOURCE, Registry, ThingRecord};

use crate::{NS, Signal};

struct Signaling;

fn refused(condition: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::explained(condition, text)
}

/// The iq to relay for `stanza` from `session`, or why not.
async fn relayed(
    server: &ServerHandle,
    session: &SessionInfo,
    stanza: &Element,
) -> Result<Element, StanzaError> {
    if stanza.attr("type") != Some("set") {
        return Err(refused(DefinedCondition::BadRequest, "a signal is a set"));
    }
    let Some(payload) = stanza.children().next() else {
        return Err(refused(DefinedCondition::BadRequest, "no signal"));
    };
    let signal = Signal::from_element(payload.clone())?.normalized();
    let Some(to) = stanza.attr("to") else {
        return Err(refused(
            DefinedCondition::BadRequest,
            "a signal is sent to someone",
        ));
    };
    let to = Jid::new(to).map_err(|_| refused(DefinedCondition::JidMalformed, "not a JID"))?;
    let domain = server.domain().domain();
    let (Some(me), Some(peer)) = (session.jid.local(), to.local()) else {
        return Err(refused(
            DefinedCondition::NotAllowed,
            "signals go between an account and a thing",
        ));
    };
    if to.domain() != domain {
        return Err(refused(
            DefinedCondition::ItemNotFound,
            "signals stay on this server",
        ));
    }
    let registry = Registry::of(server);
    let thing_of = |name: &str| {
        let (registry, name) = (registry.clone(), name.to_string());
        async move { registry.by_name(&name).await.map_err(internal_error) }
    };
    // (the thing, the account, where the signal goes, the account's session)
    let (thing, account, target, account_jid): (ThingRecord, String, Jid, Jid) =
        match thing_of(me).await? {
            // An account signals a thing: its edge session when no resource is named.
            None => {
                let Some(thing) = thing_of(peer).await? else {
                    return Err(refused(
                        DefinedCondition::ItemNotFound,
                        "an account signals a thing only, and there is no such thing",
                    ));
                };
                let target = if to.is_bare() {
                    to.with_resource(EDGE_RESOURCE)
                        .map_err(|_| refused(DefinedCondition::JidMalformed, "not a JID"))?
                } else {
                    to.clone()
                };
                (thing, me.to_string(), target, session.jid.clone())
            }
            // A thing signals an account, at the full JID that signalled it.
            Some(thing) => {
                let is_account = thing_of(peer).await?.is_none()
                    && server
                        .storage()
                        .accounts
                        .account_exists(peer)
                        .await
                        .map_err(internal_error)?;
                if !is_account {
                    return Err(refused(
                        DefinedCondition::ItemNotFound,
                        "a thing signals an account only, and there is no such account",
                    ));
                }
                if to.is_bare() {
                    return Err(refused(
                        DefinedCondition::BadRequest,
                        "a thing signals an account's session (a full JID)",
                    ));
                }
                (thing, peer.to_string(), to.clone(), to.clone())
            }
        };
    // Lithos: only between a thing and its owner or an account it granted.
    let allowed = registry
        .may_command(&thing.thing_id, &thing.owner, &account)
        .await
        .map_err(internal_error)?;
    // An owner's blocklist covers the owner's things, as for executions.
    let blocked = !thing.owner.is_empty()
        && server.shared::<lithos_blocking::Blocklists>().blocks(
            &format!("{}@{}", thing.owner, server.domain().domain()),
            &account_jid,
        );
    if !allowed || blocked {
        tracing::info!(thing = %thing.thing_name, account = %account, blocked, "signal refused: not the thing's owner nor granted, or blocked by the owner");
        return Err(refused(
            DefinedCondition::Forbidden,
            "only the thing's owner and the accounts it granted signal with it",
        ));
    }
    if server.sessions().get(&target).is_none() {
        return Err(refused(
            DefinedCondition::RecipientUnavailable,
            "the peer is not online",
        ));
    }
    let mut out = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
        .attr("type", "set")
        .attr("id", stanza.attr("id").unwrap_or_default().to_string())
        .attr("from", session.jid.as_shared().clone())
        .attr("to", target.as_shared().clone())
        .build();
    out.append_child(signal.into_element());
    Ok(out)
}

impl Signaling {
    async fn relay(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
        match relayed(server, session, stanza).await {
            Ok(iq) => server.route(iq).await,
            Err(e) => lithos_tuxp_things::refuse(server, session, stanza, e),
        }
        Flow::Handled
    }
}

#[async_trait::async_trait]
impl Module for Signaling {
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let s = cx.stanza;
        (s.name() == "iq"
            && matches!(s.attr("type"), Some("set" | "get"))
            && s.children().next().is_some_and(|p| p.is("signal", NS)))
        .then(|| Box::pin(self.relay(cx)) as _)
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "signaling",
    "WebRTC signaling: offers, answers and candidates relayed between an account and the things it may command",
    |ctx| ctx.no_settings(Signaling),
);
