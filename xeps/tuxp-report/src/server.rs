//! The `report` module: takes reports from things, stores them through one writer that
//! commits in groups, acknowledges after the commit, forwards them live, and answers the
//! owners' queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, ErrorType, StanzaError, error_reply};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::{IqClaim, IqRequest, IqResponse, IqTarget, ModuleContext, ModuleError};
use lithos_server::storage::SqliteStore;
use lithos_server::{
    ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle, SessionInfo,
};
use lithos_tuxp_things::{Registry, ThingCache, ThingRecord};
use tokio::sync::mpsc;

use crate::store::{self, NewReport, Outcome, Write};
use crate::{Deliver, History, Latest, NS, Qos, Received, Report, now_ms};

/// The largest batch one commit takes.
const BATCH: usize = 1024;

#[derive(Debug, Clone)]
struct Settings {
    /// QoS 2 reports pending per thing.
    max_pending: usize,
    /// How long the history keeps reports (`None`: forever).
    retention: Option<Duration>,
    /// Reports waiting for the writer.
    queue: usize,
}

/// What to send once the write is committed.
enum Ack {
    /// QoS 0: nothing.
    None,
    /// An empty result (QoS 1, and deliver).
    Result { to: Jid, from: Jid, id: String },
    /// `<received/>` (QoS 2, phase 1).
    Received {
        to: Jid,
        from: Jid,
        id: String,
        report_id: String,
    },
}

/// What the writer does with a report: the write, and what follows its commit.
type Job = (Write, After);

/// What follows a write's commit: the answer, and the live copy to subscribers.
struct After {
    ack: Ack,
    /// The reporting address (the thing, or a gateway's node), for answers and live forwards.
    reporter: Jid,
    /// The session the report came through, which gets the answers.
    session: Jid,
    qos: Qos,
    /// The QoS 2 id, passed on to subscribers.
    report_id: Option<String>,
}

/// State the writer task shares with the module.
struct Shared {
    /// Subscribers per thing name.
    subscribers: Mutex<HashMap<String, Vec<Jid>>>,
}

impl Shared {
    fn subscribers(&self, thing: &str) -> Vec<Jid> {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(thing)
            .cloned()
            .unwrap_or_default()
    }
}

struct ReportModule {
    settings: Settings,
    shared: Arc<Shared>,
    writer: OnceLock<Result<mpsc::Sender<Job>, String>>,
    things: ThingCache,
}

fn internal(e: impl std::fmt::Display) -> StanzaError {
    tracing::error!(error = %e, "report storage failed");
    StanzaError::new(DefinedCondition::InternalServerError)
}

fn iq_result(to: &Jid, from: &Jid, id: &str, payload: Option<Element>) -> Element {
    Element::builder("iq", "jabber:client")
        .attr("type", "result")
        .attr("id", id.to_string())
        .attr("to", to.as_shared().clone())
        .attr("from", from.as_shared().clone())
        .children(payload)
        .build()
}

impl ReportModule {
    fn db(server: &ServerHandle) -> Result<SqliteStore, Box<StanzaError>> {
        server
            .storage()
            .sqlite_store()
            .cloned()
            .ok_or_else(|| Box::new(internal("reports need the SQLite store")))
    }

    /// The writer, started on first use.
    fn writer(&self, server: &ServerHandle) -> Result<mpsc::Sender<Job>, Box<StanzaError>> {
        self.writer
            .get_or_init(|| {
                let db = Self::db(server).map_err(|e| e.to_string())?;
                let (tx, rx) = mpsc::channel(self.settings.queue);
                tokio::spawn(write_loop(
                    server.clone(),
                    db,
                    rx,
                    self.shared.clone(),
                    self.settings.clone(),
                ));
                Ok(tx)
            })
            .clone()
            .map_err(|e| Box::new(internal(e)))
    }

    /// A report or deliver from a thing's session: checked, then queued for the writer.
    async fn thing_sent(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: &Element,
        payload: &Element,
    ) -> Result<(), StanzaError> {
        if stanza.attr("type") != Some("set") {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "a report is a set",
            ));
        }
        if stanza.child_count() != 1 {
            return Err(StanzaError::explained(
                DefinedCondition::BadRequest,
                "an iq holds one payload",
            ));
        }
        let reporter = lithos_tuxp_things::speaker(stanza, session)
            .map_err(|e| StanzaError::explained(DefinedCondition::BadRequest, e))?;
        let thing = session.jid.local().unwrap_or_default().to_string();
        let Some(record) = self.things.get(server, &thing).await.map_err(internal)? else {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "only things report",
            ));
        };
        let node = reporter.resource().unwrap_or("0").to_string();
        let id = stanza.attr("id").unwrap_or_default().to_string();
        let me = session.jid.to_bare();
        let tx = self.writer(server).map_err(|e| *e)?;
        if payload.name() == "deliver" {
            let d = Deliver::from_element(payload.clone())
                .map_err(|e| StanzaError::explained(DefinedCondition::BadRequest, e.to_string()))?;
            let write = Write::Release {
                thing,
                node,
                report_id: d.report_id.clone(),
            };
            let after = After {
                report_id: Some(d.report_id),
                ack: Ack::Result {
                    to: reporter.clone(),
                    from: me,
                    id,
                },
                reporter: reporter.clone(),
                session: session.jid.clone(),
                qos: Qos::ExactlyOnce,
            };
            return tx
                .send((write, after))
                .await
                .map_err(|_| internal("the report writer stopped"));
        }
        let r = Report::from_element(payload.clone())
            .map_err(|e| StanzaError::explained(DefinedCondition::BadRequest, e.to_string()))?;
        // The edge thing's data must be declared by its model (a gateway checks its nodes').
        if !lithos_tuxp_things::is_lan_node(&node) {
            let declared =
                lithos_tuxp_things::model(&record.model).is_some_and(|m| m.declares_data(&r.data));
            if !declared {
                return Err(StanzaError::explained(
                    DefinedCondition::NotAcceptable,
                    format!(
                        "model {} does not report <{}/> in {}",
                        record.model,
                        r.data.name(),
                        r.data.ns()
                    ),
                ));
            }
        }
        let qos = r.qos;
        let new = NewReport {
            thing,
            node,
            qos: qos.ordinal(),
            report_id: r.report_id.clone(),
            stamp_ms: now_ms(),
            data: r.data,
        };
        let (write, ack) = match qos {
            Qos::AtMostOnce => (Write::Store(new), Ack::None),
            Qos::AtLeastOnce => (
                Write::Store(new),
                Ack::Result {
                    to: reporter.clone(),
                    from: me,
                    id,
                },
            ),
            Qos::ExactlyOnce => (
                Write::Receive(new),
                Ack::Received {
                    to: reporter.clone(),
                    from: me,
                    id,
                    report_id: r.report_id.clone().unwrap_or_default(),
                },
            ),
        };
        let after = After {
            report_id: (qos == Qos::ExactlyOnce)
                .then(|| r.report_id.clone())
                .flatten(),
            ack,
            reporter: reporter.clone(),
            session: session.jid.clone(),
            qos,
        };
        // Every level waits for room in the writer's queue: a thing that sends faster than
        // the disk takes its reports is slowed down (TCP back-pressure), not dropped.
        tx.send((write, after))
            .await
            .map_err(|_| internal("the report writer stopped"))
    }

    /// The thing addressed by an owner's query, checked against the requester: its owner,
    /// an account it granted, itself, or (`followers_too`) an approved follower of any of
    /// its events.
    async fn queried_thing(
        server: &ServerHandle,
        req: &IqRequest,
        followers_too: bool,
    ) -> Result<ThingRecord, StanzaError> {
        let registry = Registry::of(server).map_err(internal)?;
        let thing = match req.to.local() {
            Some(name) => registry.by_name(name).await.map_err(internal)?,
            None => None,
        };
        let Some(thing) = thing else {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no such thing",
            ));
        };
        let who = req.from.local().unwrap_or_default();
        let own = req.from.bare_eq(&req.to);
        if own || registry.may_execute(&thing, who).await.map_err(internal)? {
            return Ok(thing);
        }
        let follower = req.from.to_bare().to_string();
        if followers_too
            && registry
                .follows_any(&thing.thing_id, &follower)
                .await
                .map_err(internal)?
        {
            return Ok(thing);
        }
        Err(StanzaError::explained(
            DefinedCondition::Forbidden,
            "only the thing's owner, the accounts it granted and its approved followers read its reports",
        ))
    }
}

async fn write_loop(
    server: ServerHandle,
    db: SqliteStore,
    mut rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    settings: Settings,
) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (writes, afters): (Vec<Write>, Vec<After>) = jobs.into_iter().unzip();
        let max_pending = settings.max_pending;
        let outcome = db.run(move |c| store::apply(c, &writes, max_pending)).await;
        match outcome {
            Ok(outcomes) => {
                for (after, out) in afters.into_iter().zip(outcomes) {
                    answer(&server, &shared, after, out);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = afters.len(), "storing reports failed; the things will retry");
                let error =
                    StanzaError::typed(ErrorType::Wait, DefinedCondition::InternalServerError)
                        .with_text("the report could not be stored; retry");
                for job in afters {
                    if let Ack::Result { to, from, id } | Ack::Received { to, from, id, .. } =
                        job.ack
                    {
                        send_error(&server, &job.session, &to, &from, &id, &error);
                    }
                }
            }
        }
        // Pruning runs after a batch, at most once a minute (or twice per retention period,
        // when that is shorter).
        if let Some(keep) = settings.retention
            && last_prune.is_none_or(|t| t.elapsed() > (keep / 2).min(Duration::from_secs(60)))
        {
            last_prune = Some(tokio::time::Instant::now());
            let before = now_ms() - keep.as_millis() as i64;
            match db.run(move |c| store::prune(c, before)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "report history pruned"),
                Err(e) => tracing::error!(error = %e, "pruning the report history failed"),
            }
        }
    }
}

/// An error answer to the iq `id` that `to` sent to `from`, through `session`.
fn send_error(
    server: &ServerHandle,
    session: &Jid,
    to: &Jid,
    from: &Jid,
    id: &str,
    error: &StanzaError,
) {
    let iq = Element::builder("iq", "jabber:client")
        .attr("type", "set")
        .attr("id", id.to_string())
        .attr("from", to.as_shared().clone())
        .attr("to", from.as_shared().clone())
        .build();
    if let Some(reply) = error_reply(&iq, error) {
        server.sessions().send(session, reply);
    }
}

/// After the commit: the acknowledgement, and the live forward of what became visible.
fn answer(server: &ServerHandle, shared: &Shared, job: After, out: Outcome) {
    let sessions = server.sessions();
    match job.ack {
        Ack::None => {}
        Ack::Received { to, from, id, .. } if out == Outcome::TooManyPending => {
            let e = StanzaError::explained(
                DefinedCondition::ResourceConstraint,
                "too many QoS 2 reports wait for their delivery",
            );
            send_error(server, &job.session, &to, &from, &id, &e);
        }
        Ack::Result { to, from, id } => {
            sessions.send(&job.session, iq_result(&to, &from, &id, None));
        }
        Ack::Received {
            to,
            from,
            id,
            report_id,
        } => {
            sessions.send(
                &job.session,
                iq_result(&to, &from, &id, Some(Received { report_id }.into_element())),
            );
        }
    }
    if let Outcome::Stored(item) = out {
        let thing = job.reporter.local().unwrap_or_default();
        let subs = shared.subscribers(thing);
        if subs.is_empty() {
            return;
        }
        let mut live = Report::new(item.data, job.qos);
        live.stamp_ms = Some(item.stamp_ms);
        live.report_id = job.report_id;
        let payload = live.into_element();
        for sub in subs {
            let msg = Element::builder("message", "jabber:client")
                .attr("type", "headline")
                .attr("from", job.reporter.as_shared().clone())
                .attr("to", sub.as_shared().clone())
                .child(payload.clone())
                .build();
            sessions.send(&sub, msg);
        }
    }
}

fn is_from_thing<'a>(stanza: &'a Element, session: &SessionInfo) -> Option<&'a Element> {
    if stanza.name() != "iq" {
        return None;
    }
    let payload = stanza.children().next()?;
    if payload.ns() != NS || !matches!(payload.name(), "report" | "deliver") {
        return None;
    }
    // To the sender's own account (or no `to`): the thing reports.
    match stanza.attr("to") {
        None => {}
        Some(t) if Jid::new(t).is_ok_and(|j| j.is_bare() && j.bare_eq(&session.jid)) => {}
        Some(_) => return None,
    }
    Some(payload)
}

#[async_trait]
impl Module for ReportModule {
    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim {
            ns: NS,
            target: IqTarget::Account,
        }]
    }

    fn client_stanza<'a>(
        &'a self,
        server: &'a ServerHandle,
        session: &'a SessionInfo,
        stanza: &'a Element,
    ) -> Option<ClientStanzaHook<'a>> {
        if !lithos_core::stanza::iq_awaiting_answer(stanza)
            || stanza.children().next().is_none_or(|p| p.ns() != NS)
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(server, session, stanza)))
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let live = req.payload.name() == "subscribe" || req.payload.name() == "unsubscribe";
        let thing = Self::queried_thing(server, &req, live).await?;
        let db = Self::db(server).map_err(|e| *e)?;
        match (req.is_set, req.payload.name()) {
            (false, "latest") => {
                let items = store::latest(&db, &thing.thing_name)
                    .await
                    .map_err(internal)?;
                Ok(Some(Latest { items }.into_element()))
            }
            (false, "history") => {
                let q = History::from_element(req.payload.clone()).map_err(|e| {
                    StanzaError::explained(DefinedCondition::BadRequest, e.to_string())
                })?;
                if let Some(set) = &q.set {
                    let known = |s: &Option<String>| {
                        s.as_deref()
                            .is_none_or(|v| v.is_empty() || v.parse::<i64>().is_ok())
                    };
                    if !known(&set.after) || !known(&set.before) {
                        return Err(StanzaError::explained(
                            DefinedCondition::ItemNotFound,
                            "no such item",
                        ));
                    }
                }
                let (items, set) = store::history(
                    &db,
                    &thing.thing_name,
                    q.node.clone(),
                    q.start_ms,
                    q.end_ms,
                    q.set,
                )
                .await
                .map_err(internal)?;
                Ok(Some(
                    History {
                        node: q.node,
                        start_ms: q.start_ms,
                        end_ms: q.end_ms,
                        set: Some(set),
                        items,
                    }
                    .into_element(),
                ))
            }
            (true, name @ ("subscribe" | "unsubscribe")) => {
                let Some(session) = &req.session else {
                    return Err(StanzaError::explained(
                        DefinedCondition::NotAllowed,
                        "only clients subscribe",
                    ));
                };
                let mut map = self
                    .shared
                    .subscribers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let list = map.entry(thing.thing_name.clone()).or_default();
                list.retain(|j| *j != session.jid);
                if name == "subscribe" {
                    list.push(session.jid.clone());
                } else if list.is_empty() {
                    map.remove(&thing.thing_name);
                }
                Ok(None)
            }
            (true, "report" | "deliver") => Err(StanzaError::explained(
                DefinedCondition::Forbidden,
                "a thing reports for itself only",
            )),
            _ => Err(StanzaError::explained(
                DefinedCondition::FeatureNotImplemented,
                "not a report query",
            )),
        }
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn account_deleted(&self, _server: &ServerHandle, _account: &Jid) {
        // Things the account owned changed owner: what is cached of any thing may be stale.
        self.things.clear();
    }

    async fn account_deleting(&self, _server: &ServerHandle, account: &Jid) {
        if let Some(name) = account.local() {
            self.things.forget(name);
            self.shared
                .subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
        }
    }

    async fn session_closed(
        &self,
        _server: &ServerHandle,
        session: &SessionInfo,
        _was_available: bool,
    ) {
        let mut map = self
            .shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, list| {
            list.retain(|j| *j != session.jid);
            !list.is_empty()
        });
    }
}

impl ReportModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: &Element,
    ) -> Flow {
        let Some(payload) = is_from_thing(stanza, session) else {
            return Flow::Continue;
        };
        if let Err(e) = self.thing_sent(server, session, stanza, payload).await {
            lithos_tuxp_things::refuse(server, session, stanza, e);
        }
        Flow::Handled
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut settings = Settings {
        max_pending: 1000,
        retention: Some(Duration::from_secs(30 * 86_400)),
        queue: 16_384,
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "max_pending_per_thing" => {
                settings.max_pending = ModuleError::integer(k, v, 1)? as usize
            }
            "history_days" => {
                let days = ModuleError::integer(k, v, 0)?;
                settings.retention = (days > 0).then(|| Duration::from_secs(days * 86_400));
            }
            "history_seconds" => {
                settings.retention = Some(Duration::from_secs(ModuleError::integer(k, v, 1)?));
            }
            "queue" => settings.queue = ModuleError::integer(k, v, 1)? as usize,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(ReportModule {
        settings,
        shared: Arc::new(Shared {
            subscribers: Mutex::new(HashMap::new()),
        }),
        writer: OnceLock::new(),
        things: ThingCache::default(),
    }))
}

lithos_server::inventory::submit! {
    ModuleRegistration {
        name: "report",
        description: "TUXP sensor reports: QoS 0/1/2 with group commit, history, queries and live subscriptions",
        depends_on: &[],
        enabled_by_default: true,
        build,
    }
}

#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(_) -> _);
}
