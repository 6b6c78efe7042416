//! The `mam` module: archiving what local accounts send and receive, and answering their
//! queries and preferences.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_forward::Forwarded;
use lithos_rsm::ResultSet;
use lithos_server::module::{ModuleContext, ModuleError, internal_error};
use lithos_server::{IqClaim, IqRequest, IqResponse, Module, ModuleRegistration, ServerHandle};
use lithos_sid::StanzaId;
use lithos_xdata::{Field, Form, FormType};

use crate::archive::{Archiver, Job};
use crate::store::{ArchiveStore, Entry, Filter, From, PageError};
use crate::{ALSO_ARCHIVED, ArchivedMessage, Archiving, Fin, NS, Prefs, Query, eligible_with};

struct MamModule {
    default_page: usize,
    max_page: usize,
    retention_days: u64,
    max_queue: usize,
    archiver: OnceLock<Arc<Archiver>>,
    /// Payload namespaces archived without a body (`also_archive`).
    also: Vec<String>,
    /// Accounts' preferences (those that set any; the rest archive everything).
    prefs: RwLock<HashMap<String, Prefs>>,
}

use lithos_core::datetime::now_ms;

/// A fresh archive id: 128 random bits, in hex.
fn new_id() -> String {
    lithos_server::ids::random_hex::<16>()
}

fn bad(text: &str) -> StanzaError {
    StanzaError::explained(DefinedCondition::BadRequest, text.to_string())
}

impl MamModule {
    /// Whether `user`'s archive takes a message with `peer`: `None` not at all,
    /// `Some(true)` only if `peer` is in the roster (the writer checks, off the routing path).
    fn decide(&self, user: &str, peer: &Jid) -> Option<bool> {
        let prefs = self.prefs.read().unwrap_or_else(|e| e.into_inner());
        match prefs.get(user).map_or(Archiving::Yes, |p| p.decide(peer)) {
            Archiving::Yes => Some(false),
            Archiving::IfInRoster => Some(true),
            Archiving::No => None,
        }
    }

    fn archive(&self, user: &str, peer: &Jid, stanza_id: String, xml: String, roster_only: bool) {
        if let Some(a) = self.archiver.get() {
            a.push(Job {
                entry: Entry {
                    username: user.to_string(),
                    stanza_id,
                    peer: peer.bare_str().to_string(),
                    peer_full: peer.as_str().to_string(),
                    ts: now_ms(),
                    xml,
                },
                roster_only,
            });
        }
    }

    async fn query(&self, server: &ServerHandle, req: IqRequest, user: &str) -> IqResponse {
        let Some(session) = req.session.as_ref() else {
            return Err(StanzaError::new(DefinedCondition::NotAllowed));
        };
        let Some(archiver) = self.archiver.get() else {
            return Err(StanzaError::new(DefinedCondition::ServiceUnavailable));
        };
        let pages = Pages {
            default: self.default_page,
            max: self.max_page,
        };
        let to = Reader::Session(session.clone());
        answer_query(
            server,
            archiver,
            pages,
            user,
            &req.to.to_bare(),
            &to,
            req.payload,
        )
        .await
    }

    async fn prefs_iq(&self, server: &ServerHandle, req: IqRequest, user: &str) -> IqResponse {
        let current = || {
            self.prefs
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(user)
                .cloned()
                .unwrap_or_default()
        };
        if !req.is_set {
            return Ok(Some(current().into_element()));
        }
        let p = Prefs::from_element(req.payload)?;
        ArchiveStore::of(server)
            .set_prefs(user, p.clone().into_element().to_xml())
            .await
            .map_err(internal_error)?;
        self.prefs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.to_string(), p.clone());
        Ok(Some(p.into_element()))
    }
}

/// The query form (XEP-0313 §4.1.1), in a `<query/>`: what a query `get` answers.
pub fn query_form() -> Element {
    Element::builder("query", NS).child(form()).build()
}

/// The form alone.
fn form() -> Element {
    Form::new(FormType::Form, NS)
        .with(Field::new("with", Some("jid-single"), vec![]))
        .with(Field::new("start", Some("text-single"), vec![]))
        .with(Field::new("end", Some("text-single"), vec![]))
        .to_element()
}

#[async_trait]
impl Module for MamModule {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    /// XEP-0313 §7: the archive is the account's, advertised on its bare JID.
    fn account_disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    async fn started(&self, server: &ServerHandle) {
        let archiver = Arc::new(Archiver::start(server, self.max_queue));
        let _ = self.archiver.set(archiver.clone());
        crate::rooms::install(
            server,
            crate::rooms::RoomArchive {
                archiver,
                pages: Pages {
                    default: self.default_page,
                    max: self.max_page,
                },
            },
        );
        match ArchiveStore::of(server).all_prefs().await {
            Ok(rows) => {
                let mut map = self.prefs.write().unwrap_or_else(|e| e.into_inner());
                for (u, xml) in rows {
                    if let Some(p) = Element::parse(&xml)
                        .ok()
                        .and_then(|e| Prefs::from_element(e).ok())
                    {
                        map.insert(u, p);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load the archive preferences"),
        }
        if self.retention_days > 0 {
            let keep = Duration::from_secs(self.retention_days * 86_400);
            server.every(Duration::from_secs(3600), move |server| async move {
                let before = now_ms() - keep.as_millis() as i64;
                match ArchiveStore::of(&server).expire(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "archive: old messages deleted"),
                    Err(e) => tracing::error!(error = %e, "archive: retention sweep failed"),
                }
            });
        }
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        if req.session.is_none() || !req.from.bare_eq(&req.to) {
            return Err(StanzaError::explained(
                DefinedCondition::Forbidden,
                "an account's archive is for that account",
            ));
        }
        let user = req.to.local().unwrap_or_default().to_string();
        match (req.is_set, req.payload.name()) {
            (false, "query") => Ok(Some(query_form())),
            (true, "query") => self.query(server, req, &user).await,
            (_, "prefs") => self.prefs_iq(server, req, &user).await,
            _ => Err(StanzaError::new(DefinedCondition::BadRequest)),
        }
    }

    /// A message let through by every filter (a blocklist's included), on its way to a
    /// local account: archived for its sender, when the sender is a local account, and for
    /// its recipient, stamped with the recipient's archive id before delivery. A message
    /// routed again (a session ended before reading it) carries that id already and is not
    /// archived twice.
    fn accepted(&self, server: &ServerHandle, stanza: &mut Element, to: &Jid) {
        if !eligible_with(stanza, &self.also) {
            return;
        }
        let archive = to.to_bare();
        if StanzaId::of(stanza, &archive).is_some() {
            return;
        }
        let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
            return;
        };
        if let Some(sender) = from
            .local()
            .filter(|_| server.is_local(&from) && !from.bare_eq(to))
            && let Some(roster_only) = self.decide(sender, to)
        {
            self.archive(sender, to, new_id(), stanza.to_xml(), roster_only);
        }
        let user = to.local().unwrap_or_default();
        let Some(roster_only) = self.decide(user, &from) else {
            return;
        };
        let id = new_id();
        stanza.append_child(
            StanzaId {
                id: id.clone(),
                by: archive,
            }
            .into_element(),
        );
        self.archive(user, &from, id, stanza.to_xml(), roster_only);
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut m = MamModule {
        default_page: 50,
        max_page: 250,
        retention_days: 365,
        max_queue: 10_000,
        archiver: OnceLock::new(),
        also: ALSO_ARCHIVED.iter().map(|s| s.to_string()).collect(),
        prefs: RwLock::new(HashMap::new()),
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "default_page" => m.default_page = ModuleError::integer(k, v, 1)? as usize,
            "max_page" => m.max_page = ModuleError::integer(k, v, 1)? as usize,
            "retention_days" => m.retention_days = ModuleError::integer(k, v, 0)?,
            "max_queue" => m.max_queue = ModuleError::integer(k, v, 1)? as usize,
            "also_archive" => {
                m.also = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .ok_or_else(|| ModuleError::new("also_archive: a list of namespaces"))?
            }
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(m))
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "mam",
    "XEP-0313: every account's chats archived, queried by peer and time and paged (off by default)",
    build,
)
.depends_on(&["roster"])
.disabled_by_default();

/// Page sizes: what a query without `max` gets, and the most it may ask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pages {
    pub(crate) default: usize,
    pub(crate) max: usize,
}

/// Who reads a query's results.
pub(crate) enum Reader {
    /// A local session (an account's own archive).
    Session(lithos_server::SessionInfo),
    /// An address, through the router (a room's archive).
    Jid(Jid),
}

/// Answers a query of the archive `owner` (an account's name, or a room's bare JID), whose
/// address is `archive`: each result to `to`, then the `<fin/>`.
pub(crate) async fn answer_query(
    server: &ServerHandle,
    archiver: &Archiver,
    pages: Pages,
    owner: &str,
    archive: &Jid,
    to: &Reader,
    payload: Element,
) -> IqResponse {
    let user = owner;
    let q = Query::from_element(payload)?;
    // What was delivered before the query is in the answer (the writer batches).
    archiver.settled().await;
    if q.node.is_some() {
        return Err(StanzaError::explained(
            DefinedCondition::ItemNotFound,
            "no pubsub node archives here",
        ));
    }
    let mut filter = Filter::default();
    if let Some(form) = &q.form {
        if form.form_type().is_some_and(|t| t != NS) {
            return Err(bad("the form's FORM_TYPE is not urn:xmpp:mam:2"));
        }
        for f in &form.fields {
            let v = f.first();
            match (f.var.as_deref().unwrap_or_default(), v) {
                ("FORM_TYPE", _) | (_, None) => {}
                ("with", Some(w)) => {
                    let j = Jid::new(w).map_err(|_| bad("with: not a JID"))?;
                    if j.resource().is_some() {
                        filter.with_full = Some(j.to_string());
                    } else {
                        filter.with_bare = Some(j.to_string());
                    }
                }
                ("start", Some(t)) => {
                    filter.start = Some(
                        lithos_core::datetime::parse(t)
                            .ok_or_else(|| bad("start: not a date-time"))?,
                    )
                }
                ("end", Some(t)) => {
                    filter.end = Some(
                        lithos_core::datetime::parse(t)
                            .ok_or_else(|| bad("end: not a date-time"))?,
                    )
                }
                (other, _) => {
                    return Err(StanzaError::explained(
                        DefinedCondition::FeatureNotImplemented,
                        format!("the field {other} is not served"),
                    ));
                }
            }
        }
    }
    let set = q.set.unwrap_or_default();
    let max = set.max.unwrap_or(pages.default).min(pages.max);
    let from = match (&set.after, &set.before, set.index) {
        (Some(a), _, _) => From::After(a.clone()),
        (None, Some(b), _) => From::Before(b.clone()),
        (None, None, Some(i)) => From::Index(i),
        (None, None, None) => From::Start,
    };
    let backwards = matches!(from, From::Before(_));
    let page = match ArchiveStore::of(server)
        .page(user, filter, from, max)
        .await
        .map_err(internal_error)?
    {
        Ok(p) => p,
        Err(PageError::UnknownId) => {
            return Err(StanzaError::explained(
                DefinedCondition::ItemNotFound,
                "no archived message has that id",
            ));
        }
    };
    let mut items = page.items;
    if backwards && q.flip_page {
        items.reverse();
    }
    for (sid, ts, xml) in &items {
        let Ok(message) = Element::parse(xml) else {
            tracing::warn!(id = %sid, "an archived message does not parse; skipped");
            continue;
        };
        let delay = Element::builder("delay", "urn:xmpp:delay")
            .attr("stamp", lithos_core::datetime::format(*ts))
            .build();
        let result = ArchivedMessage {
            queryid: q.queryid.clone(),
            id: sid.clone(),
            forwarded: Forwarded {
                delay: Some(delay),
                message,
            },
        };
        let to_jid = match to {
            Reader::Session(s) => &s.jid,
            Reader::Jid(j) => j,
        };
        let m = Element::builder("message", lithos_core::ns::JABBER_CLIENT)
            .attr("from", archive.as_shared().clone())
            .attr("to", to_jid.as_shared().clone())
            .child(result.into_element())
            .build();
        match to {
            Reader::Session(s) => {
                server.sessions().send_to_id(s, m);
            }
            Reader::Jid(_) => {
                if let Err(m) = server.deliver_now(m) {
                    server.route(m).await;
                }
            }
        }
    }
    let fin = Fin {
        complete: page.complete,
        set: ResultSet {
            first: items.first().map(|(s, ..)| (s.clone(), page.first_index)),
            last: items.last().map(|(s, ..)| s.clone()),
            count: page.count,
            ..ResultSet::default()
        },
    };
    Ok(Some(fin.into_element()))
}
