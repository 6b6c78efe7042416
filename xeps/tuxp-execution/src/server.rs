//! The `execution` module: checks every execution a client sends, then forwards it to the
//! thing, or answers at once.

use async_trait::async_trait;
use lithos_core::stanza::set_payload;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::session::Delivery;
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle,
};
use lithos_tuxp_things::{EDGE_RESOURCE, Registry};

use crate::{Execution, NS, now_ms};

/// What `lithos_commands_total{outcome}` counts: forwarded to the thing, or refused at once
/// with one of these conditions (any other condition counts as `error`).
const OUTCOMES: [&str; 8] = [
    "forwarded",
    "bad-request",
    "item-not-found",
    "forbidden",
    "remote-server-timeout",
    "service-unavailable",
    "recipient-unavailable",
    "error",
];

#[derive(Default)]
struct ExecutionModule {
    /// The server's round-trip table, held here from `started` so that the check every iq
    /// answer passes through takes no lock on the server's shared map.
    round_trips: std::sync::OnceLock<std::sync::Arc<RoundTrips>>,
}

/// One counter per outcome, made at start; shared with the HTTP API's commands.
#[derive(Default)]
struct Outcomes(std::sync::OnceLock<Vec<lithos_server::metrics::Counter>>);

/// Executions forwarded and not yet answered, by the thing's address and the iq id, with
/// when they left: the thing's answer observes the round trip in
/// `lithos_command_round_trip_seconds`. At most [`MAX_TIMED`]; past that, the oldest minute
/// is dropped (answers never come for some) and new ones go untimed until there is room.
#[derive(Default)]
pub(crate) struct RoundTrips {
    started: std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
    histogram: std::sync::OnceLock<lithos_server::metrics::Histogram>,
}

/// Executions timed at once, at most.
const MAX_TIMED: usize = 65_536;

impl RoundTrips {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), std::time::Instant>>
    {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An execution left for `to` with iq id `id`.
    fn sent(&self, to: &Jid, id: &str) {
        let mut map = self.lock();
        if map.len() >= MAX_TIMED {
            let old = std::time::Instant::now() - std::time::Duration::from_secs(60);
            map.retain(|_, t| *t > old);
            if map.len() >= MAX_TIMED {
                return;
            }
        }
        map.insert((to.to_string(), id.to_string()), std::time::Instant::now());
    }

    /// `from` answered the iq `id`: observed if it was a timed execution.
    fn answered(&self, from: &Jid, id: &str) {
        let started = {
            let mut map = self.lock();
            if map.is_empty() {
                return;
            }
            map.remove(&(from.to_string(), id.to_string()))
        };
        if let (Some(t), Some(h)) = (started, self.histogram.get()) {
            h.observe(t.elapsed().as_secs_f64());
        }
    }

    /// Observes a round trip measured elsewhere (the HTTP API's commands).
    pub(crate) fn observe(&self, d: std::time::Duration) {
        if let Some(h) = self.histogram.get() {
            h.observe(d.as_secs_f64());
        }
    }
}

/// Counts an execution's outcome in `lithos_commands_total`.
pub(crate) fn count(server: &ServerHandle, outcome: &str) {
    if let Some(c) = server.shared::<Outcomes>().0.get() {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        c[i].inc();
    }
}

/// The checks, in order, of an execution `sender` sends to `to`; `Ok` holds the thing's
/// edge session to forward to.
pub(crate) async fn check(
    server: &ServerHandle,
    sender: &Jid,
    stanza: &Element,
    to: &Jid,
) -> Result<Jid, StanzaError> {
    // 1: a set holding one well-formed execution.
    let exec = Execution::from_element(set_payload(stanza, "an execution is a set")?.clone())?;
    // 2: a registered thing.
    let registry = Registry::of(server);
    let thing = match to.local() {
        Some(name) => registry.by_name(name).await.map_err(internal_error)?,
        None => None,
    };
    let Some(thing) = thing else {
        return Err(StanzaError::explained(
            DefinedCondition::ItemNotFound,
            "no such thing",
        ));
    };
    // 2b: a LAN node behind a gateway (`gateway/<lan-id>`) is a thing of its own: its
    // owner, grants and model decide, not the gateway's.
    let subject = server
        .shared::<lithos_tuxp_things::NodeCache>()
        .subject(server, &thing, to.resource())
        .await?;
    let (thing_id, owner, model) = (subject.thing_id, subject.owner, subject.model);
    // 3: the sender may command it.
    let account = sender.local().unwrap_or_default();
    let allowed = registry
        .may_command(&thing_id, &owner, account)
        .await
        .map_err(internal_error)?;
    // An owner's blocklist covers the owner's things (XEP-0191 in Lithos): a blocked
    // account commands none of them, grant or not.
    let blocked = !owner.is_empty()
        && server
            .shared::<lithos_blocking::Blocklists>()
            .blocks(&format!("{owner}@{}", server.domain().domain()), sender);
    if !allowed || blocked {
        tracing::info!(thing = %thing_id, %sender, blocked, "execution refused: not the owner nor granted, or blocked by the owner");
        return Err(StanzaError::explained(
            DefinedCondition::Forbidden,
            "only the thing's owner, and the accounts it granted, command it",
        ));
    }
    // 4: not expired.
    if exec.expired(now_ms()) {
        return Err(StanzaError::explained(
            DefinedCondition::RemoteServerTimeout,
            "the execution expired before it could be delivered",
        ));
    }
    // 5: the thing's (or node's) model declares the action.
    let supported =
        lithos_tuxp_things::model(&model).is_some_and(|m| m.supports_action(&exec.action));
    if !supported {
        return Err(StanzaError::explained(
            DefinedCondition::ServiceUnavailable,
            format!(
                "model {model} does not support <{}/> in {}",
                exec.action.name(),
                exec.action.ns()
            ),
        ));
    }
    // 6: online now; never queued.
    let target = to
        .to_bare()
        .with_resource(EDGE_RESOURCE)
        .map_err(internal_error)?;
    if server.sessions().get(&target).is_none() {
        return Err(StanzaError::explained(
            DefinedCondition::RecipientUnavailable,
            "the thing is offline",
        ));
    }
    Ok(target)
}

#[async_trait]
impl Module for ExecutionModule {
    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let stanza = cx.stanza;
        // A thing's answer to an HTTP API command goes to the request waiting for it.
        if stanza.name() == "iq"
            && matches!(stanza.attr("type"), Some("result" | "error"))
            && stanza
                .attr("id")
                .is_some_and(|i| i.starts_with(crate::http::ID_PREFIX))
            && cx
                .server
                .shared::<crate::http::Waiting>()
                .answered(&cx.session.jid, stanza)
        {
            return Some(Box::pin(async { Flow::Handled }));
        }
        // Answers (result, error) are routed as any iq, once their round trip is taken.
        if stanza.name() == "iq"
            && matches!(stanza.attr("type"), Some("result" | "error"))
            && let Some(id) = stanza.attr("id")
        {
            if let Some(rt) = self.round_trips.get() {
                rt.answered(&cx.session.jid, id);
            }
            return None;
        }
        if !lithos_core::stanza::iq_awaiting_answer(stanza)
            || !stanza.children().any(|c| c.ns() == NS)
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(cx)))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    fn http_routes(&self, _server: &ServerHandle) -> Option<lithos_server::axum::Router> {
        Some(crate::http::routes())
    }

    async fn started(&self, server: &ServerHandle) {
        let round_trips = server.shared::<RoundTrips>();
        let _ = round_trips.histogram.set(server.metrics().histogram(
            "command_round_trip_seconds",
            "From forwarding an execution to the thing to its answer (result or error)",
            lithos_server::metrics::latency_buckets(),
        ));
        let _ = self.round_trips.set(round_trips);
        let _ = server.shared::<Outcomes>().0.set(server.metrics().counters(
            "commands",
            "TUXP executions: forwarded to the thing, or refused at once (by condition)",
            "outcome",
            &OUTCOMES,
        ));
    }
}

impl ExecutionModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
        let to = match stanza.attr("to").map(Jid::new) {
            Some(Ok(j)) if j.domain() == server.domain().domain() => j,
            // Not for a thing here: routed as any iq.
            _ => return Flow::Continue,
        };
        match check(server, &session.jid, stanza, &to).await {
            Ok(target) => {
                let id = stanza.attr("id").unwrap_or_default().to_string();
                let delivered = server.sessions().send(&target, stanza.clone());
                if delivered == Delivery::Queued
                    && let Some(rt) = self.round_trips.get()
                {
                    rt.sent(&target, &id);
                }
                count(
                    server,
                    if delivered == Delivery::Queued {
                        "forwarded"
                    } else {
                        "recipient-unavailable"
                    },
                );
                if delivered != Delivery::Queued {
                    server
                        .bounce(
                            stanza,
                            StanzaError::explained(
                                DefinedCondition::RecipientUnavailable,
                                "the thing is offline",
                            ),
                        )
                        .await;
                }
            }
            Err(e) => {
                count(server, e.condition.as_str());
                server.bounce(stanza, e).await
            }
        }
        Flow::Handled
    }
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "execution",
    "TUXP remote execution: checks, authorizes and forwards actions to things, never late",
    |ctx| ctx.no_settings(ExecutionModule::default()),
);
