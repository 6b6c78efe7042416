//! The `report` module: takes reports from things, stores them through one writer that
//! commits in groups, acknowledges after the commit, forwards them live, and answers the
//! owners' queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use lithos_core::stanza::set_payload;
use lithos_core::stanza::{DefinedCondition, ErrorType, StanzaError, error_reply};
use lithos_core::{Element, Jid, Payload};
use lithos_server::module::internal_error;
use lithos_server::module::{IqClaim, IqRequest, IqResponse, ModuleContext, ModuleError};
use lithos_server::{
    ClientStanza, ClientStanzaHook, Flow, Module, ModuleRegistration, ServerHandle, SessionInfo,
};
use lithos_tuxp_things::{AccessChange, Registry, ThingCache, ThingRecord};
use tokio::sync::mpsc;

use crate::store::{INDEX_EVERY, NewReport, Outcome, ReportStore, Write};
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
    /// Rows the history's tail holds before they are indexed in bulk.
    index_every: usize,
    /// Stored reports also published to the pubsub service (`pubsub = true`): the node's
    /// access model and how many items it keeps.
    pubsub: Option<Mirror>,
}

/// How reports are mirrored to pubsub nodes.
#[derive(Debug, Clone)]
struct Mirror {
    access: String,
    max_items: u64,
}

/// Reports waiting for their publication to the pubsub service, at most (beyond it, the
/// publication is skipped, with a warning: the report itself is stored and acknowledged).
const MIRROR_QUEUE: usize = 4096;

/// A stored report to publish: the thing, who reported (the thing or a LAN node), the
/// report.
type MirrorJob = (Arc<ThingRecord>, Jid, Element);

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
    /// The thing, when its stored reports are published to the pubsub service.
    mirror: Option<Arc<ThingRecord>>,
}

/// What a live subscriber may see of a thing's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sees {
    /// Everything: the thing itself, its owner, an account it granted.
    All,
    /// The data kinds (`{ns}name`) an operator approved this follower for.
    Only(Arc<[String]>),
}

impl Sees {
    /// Whether a report whose data has `data_key` may go to this subscriber (`None`: the key
    /// was not computed, since no subscriber needed it).
    fn allows(&self, data_key: Option<&str>) -> bool {
        match self {
            Sees::All => true,
            Sees::Only(keys) => data_key.is_some_and(|d| keys.iter().any(|k| k == d)),
        }
    }
}

/// A session following a thing's reports live.
#[derive(Debug, Clone)]
struct Subscriber {
    jid: Jid,
    sees: Sees,
    /// The thing's id, and its access generation when `sees` was decided: while the
    /// generation is another, nothing is sent (access may have been withdrawn) until the
    /// subscription is checked again.
    thing_id: Arc<str>,
    checked: u64,
}

/// State the writer task shares with the module.
#[derive(Default)]
struct Shared {
    /// Subscribers per thing name.
    subscribers: Mutex<HashMap<String, Vec<Subscriber>>>,
    /// The names of things with subscribers, by thing id (access changes name the id).
    names: Mutex<HashMap<String, String>>,
    /// Live copies dropped since the last warning, and when that was.
    dropped: Mutex<(u64, Option<std::time::Instant>)>,
    /// The queue of reports to publish to the pubsub service (`pubsub = true`).
    mirror: OnceLock<mpsc::Sender<MirrorJob>>,
    /// Reports left unpublished because the pubsub queue was full (warned at powers of two).
    mirror_dropped: std::sync::atomic::AtomicU64,
    /// `lithos_reports_total{qos}`: reports stored (and so acknowledged), per QoS level.
    stored: OnceLock<Vec<lithos_server::metrics::Counter>>,
}

/// How often a subscriber's full queue is reported in the log, at most.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// A live copy was not queued: the subscriber's session reads slower than the reports
    /// come (its queue, `[c2s] outbound_queue`, is full). Live copies are not stored, so it
    /// misses it; the log says so, at most every ten seconds.
    fn live_dropped(&self, subscriber: &Jid) {
        let mut d = lock(&self.dropped);
        d.0 += 1;
        if d.1.is_none_or(|t| t.elapsed() >= DROP_WARNING_EVERY) {
            tracing::warn!(
                subscriber = %subscriber,
                dropped = d.0,
                "live reports dropped: the subscriber reads slower than they come (its queue is full)"
            );
            *d = (0, Some(std::time::Instant::now()));
        }
    }

    fn subscribers(&self, thing: &str) -> Vec<Subscriber> {
        lock(&self.subscribers)
            .get(thing)
            .cloned()
            .unwrap_or_default()
    }
}

/// What `who` may see of `thing`'s live reports, or `None` when nothing.
async fn report_access(
    server: &ServerHandle,
    registry: &Registry,
    thing: &ThingRecord,
    who: &Jid,
) -> Result<Option<Sees>, StanzaError> {
    let local = who.domain() == server.domain().domain();
    if local && who.local() == Some(thing.thing_name.as_str()) {
        return Ok(Some(Sees::All));
    }
    if local
        && registry
            .may_execute(thing, who.local().unwrap_or_default())
            .await
            .map_err(internal_error)?
    {
        return Ok(Some(Sees::All));
    }
    // A follower sees the report data it is approved for, nothing else (a follow of an
    // event is for notifications).
    let model = lithos_tuxp_things::model(&thing.model);
    let keys: Vec<String> = registry
        .followed(&thing.thing_id, who.bare_str())
        .await
        .map_err(internal_error)?
        .into_iter()
        .filter(|k| model.is_some_and(|m| m.data_by_key(k).is_some()))
        .collect();
    Ok((!keys.is_empty()).then(|| Sees::Only(keys.into())))
}

/// Checks every live subscription of the thing `thing_id` (all of them when `None`) again,
/// after access was withdrawn: a subscriber that may no longer see the reports is dropped,
/// one that may see less sees less.
async fn recheck(server: &ServerHandle, shared: &Shared, thing_id: Option<&str>) {
    let registry = Registry::of(server);
    let names: Vec<String> = match thing_id {
        Some(id) => lock(&shared.names).get(id).cloned().into_iter().collect(),
        None => lock(&shared.subscribers).keys().cloned().collect(),
    };
    for name in names {
        let thing = match registry.by_name(&name).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "checking report subscriptions failed");
                continue;
            }
        };
        let mut decided: Vec<(Jid, Option<Sees>)> = Vec::new();
        // The generation before the checks: a change during them makes them stale again.
        let generation = thing
            .as_ref()
            .map(|t| lithos_tuxp_things::access_generation(&t.thing_id));
        if let Some(thing) = &thing {
            for sub in shared.subscribers(&name) {
                match report_access(server, &registry, thing, &sub.jid).await {
                    Ok(sees) => decided.push((sub.jid, sees)),
                    Err(_) => decided.push((sub.jid, None)),
                }
            }
        }
        let mut map = lock(&shared.subscribers);
        let Some(list) = map.get_mut(&name) else {
            continue;
        };
        list.retain_mut(|sub| {
            match decided.iter().find(|(j, _)| *j == sub.jid) {
                // Unregistered thing: nobody follows it any more.
                None if thing.is_none() => false,
                None => true,
                Some((_, None)) => {
                    tracing::info!(subscriber = %sub.jid, thing = %name, "live reports stopped: access withdrawn");
                    false
                }
                Some((_, Some(sees))) => {
                    sub.sees = sees.clone();
                    sub.checked = generation.unwrap_or(sub.checked);
                    true
                }
            }
        });
        if list.is_empty() {
            map.remove(&name);
            lock(&shared.names).retain(|_, n| *n != name);
        }
    }
}

struct ReportModule {
    settings: Settings,
    shared: Arc<Shared>,
    writer: OnceLock<Result<mpsc::Sender<Job>, String>>,
    /// The report tables, opened on first use.
    store: OnceLock<ReportStore>,
    things: ThingCache,
    /// The task that drops subscriptions when access is withdrawn, started with the first.
    watcher: OnceLock<()>,
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
    fn store(&self, server: &ServerHandle) -> &ReportStore {
        self.store.get_or_init(|| {
            ReportStore::new(server.storage().db().clone(), self.settings.index_every)
        })
    }

    /// The writer, started on first use.
    fn writer(&self, server: &ServerHandle) -> Result<mpsc::Sender<Job>, Box<StanzaError>> {
        self.writer
            .get_or_init(|| {
                let store = self.store(server).clone();
                let (tx, rx) = mpsc::channel(self.settings.queue);
                if let Some(m) = &self.settings.pubsub {
                    let (mtx, mrx) = mpsc::channel(MIRROR_QUEUE);
                    let _ = self.shared.mirror.set(mtx);
                    tokio::spawn(mirror_loop(server.clone(), mrx, m.clone()));
                }
                tokio::spawn(write_loop(
                    server.clone(),
                    store,
                    rx,
                    self.shared.clone(),
                    self.settings.clone(),
                ));
                Ok(tx)
            })
            .clone()
            .map_err(|e| Box::new(internal_error(e)))
    }

    /// Starts, once, the task that checks live subscriptions again whenever access to a
    /// thing is withdrawn (a grant revoked, a follow ended, an account deleted).
    fn watch_access(&self, server: &ServerHandle) {
        self.watcher.get_or_init(|| {
            let (s, shared) = (server.clone(), self.shared.clone());
            lithos_tuxp_things::on_access_changes(server, move |id| {
                let (server, shared) = (s.clone(), shared.clone());
                async move { recheck(&server, &shared, id.as_deref()).await }
            });
        });
    }

    /// A report or deliver from a thing's session: checked, then queued for the writer.
    async fn thing_sent(
        &self,
        server: &ServerHandle,
        session: &SessionInfo,
        stanza: &Element,
        payload: &Element,
    ) -> Result<(), StanzaError> {
        set_payload(stanza, "a report is a set")?;
        let (reporter, record) = self
            .things
            .sender(server, session, stanza, "only things report")
            .await?;
        let thing = record.thing_name.clone();
        let node = reporter.resource().unwrap_or("0").to_string();
        let id = stanza.attr("id").unwrap_or_default().to_string();
        let me = session.jid.to_bare();
        let tx = self.writer(server).map_err(|e| *e)?;
        if payload.name() == "deliver" {
            let d = Deliver::from_element(payload.clone())?;
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
                mirror: self.settings.pubsub.as_ref().map(|_| record.clone()),
            };
            return tx
                .send((write, after))
                .await
                .map_err(|_| internal_error("the report writer stopped"));
        }
        let r = Report::from_element(payload.clone())?;
        // The data must be declared by the model of the thing, or of the LAN node the
        // gateway speaks for (a node the gateway added).
        let model = if lithos_tuxp_things::is_lan_node(&node) {
            server
                .shared::<lithos_tuxp_things::NodeCache>()
                .subject(server, &record, Some(&node))
                .await?
                .model
        } else {
            record.model.clone()
        };
        let declared = lithos_tuxp_things::model(&model).is_some_and(|m| m.declares_data(&r.data));
        if !declared {
            return Err(StanzaError::explained(
                DefinedCondition::NotAcceptable,
                format!(
                    "model {model} does not report <{}/> in {}",
                    r.data.name(),
                    r.data.ns()
                ),
            ));
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
            mirror: self.settings.pubsub.as_ref().map(|_| record.clone()),
        };
        // Every level waits for room in the writer's queue: a thing that sends faster than
        // the disk takes its reports is slowed down (TCP back-pressure), not dropped.
        tx.send((write, after))
            .await
            .map_err(|_| internal_error("the report writer stopped"))
    }

    /// The thing a query addresses.
    async fn addressed_thing(
        registry: &Registry,
        req: &IqRequest,
    ) -> Result<ThingRecord, StanzaError> {
        let thing = match req.to.local() {
            Some(name) => registry.by_name(name).await.map_err(internal_error)?,
            None => None,
        };
        thing.ok_or_else(|| StanzaError::explained(DefinedCondition::ItemNotFound, "no such thing"))
    }

    /// The thing addressed by a query of its stored reports, checked against the
    /// requester: itself, its owner, or an account it granted.
    /// The thing a query reads, if the sender may: the thing's owner and grantees read all
    /// of it; a LAN node's owner and grantees read that node's reports, when the query names
    /// the node (`node="5"`), since a node is a thing of its own.
    async fn queried_thing(
        server: &ServerHandle,
        req: &IqRequest,
        node: Option<&str>,
    ) -> Result<ThingRecord, StanzaError> {
        let registry = Registry::of(server);
        let thing = Self::addressed_thing(&registry, req).await?;
        if let Some(Sees::All) = report_access(server, &registry, &thing, &req.from).await? {
            return Ok(thing);
        }
        if let Some(node) = node.filter(|n| lithos_tuxp_things::is_lan_node(n))
            && req.from.domain() == server.domain().domain()
            && let Ok(subject) = server
                .shared::<lithos_tuxp_things::NodeCache>()
                .subject(server, &thing, Some(node))
                .await
            && registry
                .may_command(
                    &subject.thing_id,
                    &subject.owner,
                    req.from.local().unwrap_or_default(),
                )
                .await
                .map_err(internal_error)?
        {
            return Ok(thing);
        }
        Err(StanzaError::explained(
            DefinedCondition::Forbidden,
            "only the thing's owner and the accounts it granted read its stored reports (a LAN node's, naming the node)",
        ))
    }

    /// `<subscribe/>` and `<unsubscribe/>`: live reports for a session, filtered to what the
    /// subscriber may see (a follower: the data it follows), and dropped when that access is
    /// withdrawn.
    async fn subscription(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let Some(session) = &req.session else {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "only clients subscribe",
            ));
        };
        let registry = Registry::of(server);
        let thing = Self::addressed_thing(&registry, &req).await?;
        if req.payload.name() == "unsubscribe" {
            let mut map = lock(&self.shared.subscribers);
            if let Some(list) = map.get_mut(&thing.thing_name) {
                list.retain(|s| s.jid != session.jid);
                if list.is_empty() {
                    map.remove(&thing.thing_name);
                }
            }
            return Ok(None);
        }
        let checked = lithos_tuxp_things::access_generation(&thing.thing_id);
        let Some(sees) = report_access(server, &registry, &thing, &session.jid).await? else {
            return Err(StanzaError::explained(
                DefinedCondition::Forbidden,
                "only the thing's owner, the accounts it granted and followers approved for its report data follow its reports",
            ));
        };
        self.watch_access(server);
        lock(&self.shared.names).insert(thing.thing_id.clone(), thing.thing_name.clone());
        let mut map = lock(&self.shared.subscribers);
        let list = map.entry(thing.thing_name.clone()).or_default();
        list.retain(|s| s.jid != session.jid);
        list.push(Subscriber {
            jid: session.jid.clone(),
            sees,
            thing_id: thing.thing_id.as_str().into(),
            checked,
        });
        Ok(None)
    }
}

async fn write_loop(
    server: ServerHandle,
    store: ReportStore,
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
        let outcome = store.apply(writes, max_pending).await;
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
        // The tail is indexed between batches once long enough (the reports arriving
        // meanwhile wait in the queue).
        if store.needs_indexing() {
            match store.index().await {
                Ok(n) => tracing::debug!(rows = n, "report history indexed"),
                Err(e) => {
                    tracing::error!(error = %e, "indexing the report history failed; retried after the next batch")
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
            match store.prune(before).await {
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
        if let Some(counters) = shared.stored.get() {
            let level = match job.qos {
                Qos::AtMostOnce => 0,
                Qos::AtLeastOnce => 1,
                Qos::ExactlyOnce => 2,
            };
            counters[level].inc();
        }
        if let (Some(record), Some(tx)) = (&job.mirror, shared.mirror.get()) {
            let mut r = Report::new(item.data.clone(), job.qos);
            r.stamp_ms = Some(item.stamp_ms);
            r.report_id = job.report_id.clone();
            let mirrored = (record.clone(), job.reporter.clone(), r.into_element());
            if tx.try_send(mirrored).is_err() {
                // Stored and acknowledged all the same; only the pubsub copy is skipped.
                let n = shared
                    .mirror_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if n.is_power_of_two() {
                    tracing::warn!(thing = %job.reporter, dropped = n, "reports not published to pubsub: its queue is full");
                }
            }
        }
        let thing = job.reporter.local().unwrap_or_default();
        let subs = shared.subscribers(thing);
        let Some(first) = subs.first() else {
            return;
        };
        // Once per report, not per subscriber: the thing's access generation (one lock),
        // and the data's key only if a follower needs it.
        let generation = lithos_tuxp_things::access_generation(&first.thing_id);
        let key = subs
            .iter()
            .any(|s| matches!(s.sees, Sees::Only(_)))
            .then(|| lithos_tuxp_things::key_of(&item.data));
        let subs: Vec<Jid> = subs
            .into_iter()
            .filter(|s| s.checked == generation && s.sees.allows(key.as_deref()))
            .map(|s| s.jid)
            .collect();
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
            if sessions.send(&sub, msg) == lithos_server::session::Delivery::Full {
                shared.live_dropped(&sub);
            }
        }
    }
}

/// The pubsub node a thing's reports go to: `things/<thing name>`, and for a gateway's
/// LAN node `things/<gateway name>/<lan id>`.
pub fn pubsub_node(reporter: &Jid) -> String {
    let name = reporter.local().unwrap_or_default();
    match reporter.resource().filter(|r| *r != "0") {
        Some(lan) => format!("things/{name}/{lan}"),
        None => format!("things/{name}"),
    }
}

/// Publishes stored reports to the pubsub service, one at a time, in the order stored. The
/// node is created on a thing's first report, owned by the thing's owner, the thing its
/// publisher.
async fn mirror_loop(server: ServerHandle, mut rx: mpsc::Receiver<MirrorJob>, mirror: Mirror) {
    let config = lithos_xdata::Form::new(
        lithos_xdata::FormType::Submit,
        lithos_pubsub::NS_NODE_CONFIG,
    )
    .with(lithos_xdata::Field::new(
        "pubsub#access_model",
        None,
        vec![mirror.access.clone()],
    ))
    .with(lithos_xdata::Field::new(
        "pubsub#max_items",
        None,
        vec![mirror.max_items.to_string()],
    ));
    while let Some((record, reporter, report)) = rx.recv().await {
        let owner = format!("{}@{}", record.owner, server.domain());
        let (Ok(owner), false) = (Jid::new(&owner), record.owner.is_empty()) else {
            continue; // An unowned thing's reports stay private.
        };
        let node = pubsub_node(&reporter);
        if let Err(e) = lithos_pubsub::server::publish_as(
            &server,
            &owner,
            &reporter.to_bare(),
            &node,
            report,
            Some(&config),
        )
        .await
        {
            tracing::warn!(thing = %reporter, node = %node, error = ?e.condition, "a report was not published to pubsub");
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
        vec![IqClaim::account(NS)]
    }

    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        let stanza = cx.stanza;
        if !lithos_core::stanza::iq_awaiting_answer(stanza)
            || stanza.children().next().is_none_or(|p| p.ns() != NS)
        {
            return None;
        }
        Some(Box::pin(self.handle_client_stanza(cx)))
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.is_set && matches!(req.payload.name(), "subscribe" | "unsubscribe") {
            return self.subscription(server, req).await;
        }
        let store = self.store(server);
        match (req.is_set, req.payload.name()) {
            (false, "latest") => {
                let q = Latest::from_element(req.payload.clone())?;
                let thing = Self::queried_thing(server, &req, q.node.as_deref()).await?;
                let items = store
                    .latest(&thing.thing_name)
                    .await
                    .map_err(internal_error)?
                    .into_iter()
                    .filter(|i| q.node.as_ref().is_none_or(|n| *n == i.node))
                    .collect();
                Ok(Some(
                    Latest {
                        node: q.node,
                        items,
                    }
                    .into_element(),
                ))
            }
            (false, "history") => {
                let q = History::from_element(req.payload.clone())?;
                let thing = Self::queried_thing(server, &req, q.node.as_deref()).await?;
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
                let (items, set) = store
                    .history(
                        &thing.thing_name,
                        q.node.clone(),
                        q.start_ms,
                        q.end_ms,
                        q.set,
                    )
                    .await
                    .map_err(internal_error)?;
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

    async fn started(&self, server: &ServerHandle) {
        server.count_gauge(
            "reports_pending",
            "QoS 2 reports received and not yet delivered (released) by their thing",
            "SELECT COUNT(*) FROM report_pending",
        );
        let _ = self.shared.stored.set(server.metrics().counters(
            "reports",
            "Sensor reports stored and acknowledged, by QoS level",
            "qos",
            &["0", "1", "2"],
        ));
    }

    fn http_routes(&self, server: &ServerHandle) -> Option<lithos_server::axum::Router> {
        Some(crate::http::routes(self.store(server).clone()))
    }

    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    async fn account_deleted(&self, _server: &ServerHandle, account: &Jid) {
        // Its rows went with the account: the tail forgets them too.
        if let (Some(store), Some(name)) = (self.store.get(), account.local()) {
            store.forget(name);
        }
        // Things the account owned changed owner, grants and follows went: what is cached of
        // any thing may be stale, and live subscriptions are checked again.
        self.things.clear();
        lithos_tuxp_things::access_changed(AccessChange::All);
    }

    async fn account_deleting(&self, _server: &ServerHandle, account: &Jid) {
        if let Some(name) = account.local() {
            self.things.forget(name);
            lock(&self.shared.subscribers).remove(name);
        }
    }

    async fn session_closed(
        &self,
        _server: &ServerHandle,
        session: &SessionInfo,
        _was_available: bool,
    ) {
        let mut map = lock(&self.shared.subscribers);
        map.retain(|_, list| {
            list.retain(|s| s.jid != session.jid);
            !list.is_empty()
        });
        lock(&self.shared.names).retain(|_, name| map.contains_key(name));
    }
}

impl ReportModule {
    /// The stanzas [`Module::client_stanza`] takes.
    async fn handle_client_stanza(&self, cx: ClientStanza<'_>) -> Flow {
        let (server, session, stanza) = cx.parts();
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
        index_every: INDEX_EVERY,
        pubsub: None,
    };
    let mut mirror = Mirror {
        access: "presence".into(),
        max_items: 100,
    };
    let mut mirror_on = false;
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
            "index_every" => settings.index_every = ModuleError::integer(k, v, 1)? as usize,
            "pubsub" => mirror_on = ModuleError::boolean(k, v)?,
            "pubsub_access" => {
                let a = v.as_str().unwrap_or_default();
                if lithos_pubsub::AccessModel::parse(a).is_none() {
                    return Err(ModuleError::new(format!(
                        "pubsub_access: {a:?} is none of open, presence, roster, whitelist"
                    )));
                }
                mirror.access = a.to_string();
            }
            "pubsub_max_items" => mirror.max_items = ModuleError::integer(k, v, 1)?,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    settings.pubsub = mirror_on.then_some(mirror);
    Ok(Arc::new(ReportModule {
        settings,
        shared: Arc::new(Shared::default()),
        writer: OnceLock::new(),
        store: OnceLock::new(),
        things: ThingCache::default(),
        watcher: OnceLock::new(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "report",
    "TUXP sensor reports: QoS 0/1/2 with group commit, history, queries and live subscriptions",
    build,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_live_copies_are_counted_between_warnings() {
        let shared = Shared::default();
        let sub = Jid::new("owner@example.com/console").unwrap();
        // The first drop is reported at once, the next ones counted until the next warning.
        shared.live_dropped(&sub);
        assert_eq!(lock(&shared.dropped).0, 0);
        shared.live_dropped(&sub);
        shared.live_dropped(&sub);
        assert_eq!(lock(&shared.dropped).0, 2);
        // Ten seconds later the count goes out with the next drop.
        lock(&shared.dropped).1 = std::time::Instant::now().checked_sub(DROP_WARNING_EVERY);
        shared.live_dropped(&sub);
        assert_eq!(lock(&shared.dropped).0, 0);
    }
}
