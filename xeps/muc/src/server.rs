//! The `muc` module: serves its domain, keeps the rooms in memory (persistent ones also in
//! the database), and routes what each event sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload, ns};
use lithos_mam::rooms::RoomArchive;
use lithos_server::module::{ModuleContext, ModuleError};
use lithos_server::{Module, ModuleRegistration, ServerHandle};
use lithos_xdata::{Form, FormType};

use crate::config::{RoomConfig, Whois};
use crate::forwarding::{Forwards, ID_PREFIX};
use crate::room::{Entry, HistoryRequest, Room};
use crate::store::{self, Saved};
use crate::{Affiliation, NS, NS_ADMIN, NS_OWNER, NS_ROOMINFO, NS_USER, Role};

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const PING: &str = "urn:xmpp:ping";
/// The room keeps the `id` a sender gave its groupchat message (XEP-0045 §7.4).
const STABLE_ID: &str = "http://jabber.org/protocol/muc#stable_id";
/// XEP-0410 §3.3: a room answers its occupants' self-pings itself.
const SELF_PING_OPTIMIZATION: &str = "http://jabber.org/protocol/muc#self-ping-optimization";

#[derive(Debug, Clone)]
struct Settings {
    domain: String,
    max_rooms: usize,
    max_occupants: usize,
    history_size: usize,
    lock_new_rooms: bool,
    /// Only accounts of the server's domain create rooms.
    local_creators_only: bool,
    /// The server's domain.
    server_domain: String,
}

struct Muc {
    settings: Settings,
    rooms: Mutex<HashMap<String, Room>>,
    /// Room writes, one at a time; with the version each room's snapshot carries, an older
    /// snapshot never overwrites a newer one.
    saving: tokio::sync::Mutex<HashMap<String, u64>>,
    /// Requests passed on to occupants, waiting for their answers.
    forwards: Forwards,
    /// The rooms' archives, once found (the `mam` module's; looked up on each message until
    /// then, since it may not run).
    archive: std::sync::OnceLock<Arc<RoomArchive>>,
}

/// What the room does with a request to one of its occupants.
enum ToOccupant {
    /// Answers it itself.
    Answer(Result<Option<Element>, Box<StanzaError>>),
    /// Passes it on to `target`, as from `as_jid` (the sender's room address); the answer
    /// comes back from `answer_as` (the occupant's room address).
    Forward {
        target: Jid,
        as_jid: Jid,
        answer_as: Jid,
    },
}

fn lock(m: &Mutex<HashMap<String, Room>>) -> MutexGuard<'_, HashMap<String, Room>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refuse(condition: DefinedCondition, text: &str) -> Box<StanzaError> {
    Box::new(StanzaError::explained(condition, text))
}

/// What an event does, decided under the lock: stanzas to route, and a room to write or
/// forget (persistent rooms).
#[derive(Default)]
struct Effects {
    out: Vec<Element>,
    save: Option<(Saved, u64)>,
    delete: Option<(String, u64)>,
    /// The room was destroyed: the caller removes it.
    destroyed: bool,
    /// A room that is gone: its archive goes too.
    forget_archive: Option<Jid>,
}

impl Effects {
    /// Queues every stanza for a connected local session now, in order (the caller holds
    /// the rooms' lock, so occupants see events in the order they were decided); what needs
    /// the router's slower paths stays for [`Muc::apply`].
    fn deliver_now(&mut self, server: &ServerHandle) {
        let out = std::mem::take(&mut self.out);
        self.out = out
            .into_iter()
            .filter_map(|el| server.deliver_now(el).err())
            .collect();
    }
}

/// The order of room writes, given under the rooms' lock (so in the order the changes were
/// decided), across rooms and their successive incarnations.
fn next_version() -> u64 {
    static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn snapshot(name: &str, room: &Room) -> Saved {
    Saved {
        name: name.to_string(),
        config: room.config.clone(),
        subject: room.subject.clone(),
        affiliations: room
            .affiliations
            .iter()
            .map(|(j, a)| (j.clone(), *a))
            .collect(),
    }
}

impl Muc {
    /// The rooms' archives, when the `mam` module runs.
    fn room_archive(&self, server: &ServerHandle) -> Option<Arc<RoomArchive>> {
        if let Some(a) = self.archive.get() {
            return Some(a.clone());
        }
        let a = lithos_mam::rooms::room_archive(server)?;
        Some(self.archive.get_or_init(|| a).clone())
    }

    /// Writes what persistence needs, then routes.
    async fn apply(&self, server: &ServerHandle, fx: Effects) {
        let db = server.storage().db();
        if fx.save.is_some() || fx.delete.is_some() {
            let mut done = self.saving.lock().await;
            if let Some((saved, version)) = fx.save
                && done.get(&saved.name).is_none_or(|v| *v < version)
            {
                let name = saved.name.clone();
                match store::save(db, saved).await {
                    Ok(()) => {
                        done.insert(name, version);
                    }
                    Err(e) => tracing::error!(error = %e, "saving a room failed"),
                }
            }
            if let Some((name, version)) = fx.delete
                && done.get(&name).is_none_or(|v| *v < version)
            {
                match store::delete(db, &name).await {
                    Ok(()) => {
                        done.insert(name, version);
                    }
                    Err(e) => tracing::error!(error = %e, "forgetting a room failed"),
                }
            }
        }
        if let Some(room) = fx.forget_archive
            && let Some(archive) = self.room_archive(server)
            && let Err(e) = archive.forget(server, &room).await
        {
            tracing::error!(room = %room, error = ?e.condition, "forgetting a room's archive failed");
        }
        // What could not be queued at once under the lock (another domain, an absent
        // session, offline storage), through the router.
        for el in fx.out {
            server.route(el).await;
        }
    }

    fn persist(name: &str, room: &Room, fx: &mut Effects) {
        if room.config.persistent {
            fx.save = Some((snapshot(name, room), next_version()));
        }
    }

    async fn presence(&self, server: &ServerHandle, from: Jid, to: Jid, stanza: Element) {
        let (Some(name), Some(nick)) = (to.local(), to.resource()) else {
            // Presence to the room without a nick, or to the service: not a join.
            if stanza.attr("type").is_none() && to.local().is_some() {
                server
                    .bounce(
                        &stanza,
                        *refuse(DefinedCondition::JidMalformed, "a nick is needed to enter"),
                    )
                    .await;
            }
            return;
        };
        let kind = stanza.attr("type");
        let now = lithos_core::datetime::now_ms();
        let fx = {
            let mut rooms = lock(&self.rooms);
            let decided = match kind {
                None => {
                    let existing = rooms.get(name).is_some_and(|r| r.occupant(&from).is_some());
                    if existing {
                        let room = rooms.get_mut(name).expect("checked");
                        let same_nick = room.occupant(&from).is_some_and(|o| o.nick == nick);
                        if same_nick && stanza.has_child("x", NS) {
                            Ok(Effects {
                                out: room.resync(&from, &stanza, &history_request(&stanza), now),
                                ..Default::default()
                            })
                        } else if same_nick {
                            Ok(Effects {
                                out: room.update(&from, &stanza),
                                ..Default::default()
                            })
                        } else {
                            room.change_nick(&from, nick).map(|out| Effects {
                                out,
                                ..Default::default()
                            })
                        }
                    } else if !stanza.has_child("x", NS) {
                        // Not a join (XEP-0045 §7.2.18): a client that thinks it is in a room
                        // it is not in (the room went, the server restarted) is told so,
                        // rather than taken in, or made owner of a room created anew.
                        Ok(Effects {
                            out: vec![not_in_room(&from, &to)],
                            ..Default::default()
                        })
                    } else {
                        self.join(&mut rooms, &from, name, nick, &to, &stanza, now)
                    }
                }
                Some("unavailable") | Some("error") => {
                    let mut fx = Effects::default();
                    if let Some(room) = rooms.get_mut(name) {
                        fx.out =
                            // An error from the occupant's client: it is gone (§11.1, 333).
                            if kind == Some("unavailable") {
                                room.leave(&from, Some(&stanza), &[])
                            } else {
                                room.leave(&from, None, &[333])
                            };
                        // A temporary room goes with its last occupant, a locked one with its
                        // owner.
                        let owner_gone = room.locked
                            && !room
                                .occupants
                                .iter()
                                .any(|o| o.affiliation == Affiliation::Owner);
                        if (room.is_empty() && !room.config.persistent) || owner_gone {
                            fx.out.extend(room.destroy(None, None));
                            if room.config.persistent {
                                fx.delete = Some((name.to_string(), next_version()));
                            }
                            fx.forget_archive = Some(room.jid.clone());
                            rooms.remove(name);
                        }
                    }
                    Ok(fx)
                }
                _ => Ok(Effects::default()),
            };
            decided.map(|mut fx| {
                fx.deliver_now(server);
                fx
            })
        };
        match fx {
            Ok(fx) => self.apply(server, fx).await,
            Err(e) => server.bounce(&stanza, *e).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        rooms: &mut HashMap<String, Room>,
        from: &Jid,
        name: &str,
        nick: &str,
        to: &Jid,
        stanza: &Element,
        now: i64,
    ) -> Result<Effects, Box<StanzaError>> {
        let password = stanza
            .get_child("x", NS)
            .and_then(|x| x.get_child("password", NS))
            .map(Element::text);
        let history = history_request(stanza);
        let created = !rooms.contains_key(name);
        if created {
            if self.settings.local_creators_only && from.domain() != self.settings.server_domain {
                return Err(refuse(
                    DefinedCondition::NotAllowed,
                    "only local accounts create rooms",
                ));
            }
            if rooms.len() >= self.settings.max_rooms {
                return Err(refuse(
                    DefinedCondition::ResourceConstraint,
                    "this service has as many rooms as it keeps",
                ));
            }
            let mut room = Room::new(
                to.to_bare(),
                RoomConfig::new(self.settings.max_occupants),
                self.settings.history_size,
            );
            room.locked = self.settings.lock_new_rooms;
            room.affiliations
                .insert(from.bare_str().to_string(), Affiliation::Owner);
            rooms.insert(name.to_string(), room);
        }
        let room = rooms.get_mut(name).expect("present");
        let entry = Entry {
            jid: from,
            nick,
            presence: stanza,
            password: password.as_deref(),
            history: &history,
            created,
            now_ms: now,
        };
        match room.join(entry) {
            Ok(out) => Ok(Effects {
                out,
                ..Default::default()
            }),
            Err(e) => {
                if created {
                    rooms.remove(name);
                }
                Err(e)
            }
        }
    }

    async fn message(&self, server: &ServerHandle, from: Jid, to: Jid, stanza: Element) {
        let Some(name) = to.local() else {
            if stanza.attr("type") != Some("error") {
                server
                    .bounce(
                        &stanza,
                        *refuse(
                            DefinedCondition::ServiceUnavailable,
                            "send messages to a room",
                        ),
                    )
                    .await;
            }
            return;
        };
        let kind = stanza.attr("type").unwrap_or("normal");
        if kind == "error" {
            // An occupant's client bounced what the room sent it: it is gone (§11.1, 333).
            let mut fx = Effects::default();
            if let Some(room) = lock(&self.rooms).get_mut(name) {
                fx.out = room.leave(&from, None, &[333]);
                fx.deliver_now(server);
            }
            return self.apply(server, fx).await;
        }
        let now = lithos_core::datetime::now_ms();
        let archive = self.room_archive(server);
        let fx: Result<Effects, Box<StanzaError>> = {
            let mut rooms = lock(&self.rooms);
            let decided = match rooms.get_mut(name) {
                None => Err(refuse(DefinedCondition::ItemNotFound, "no such room")),
                Some(room) => match (to.resource(), kind) {
                    (Some(_), "groupchat") => Err(refuse(
                        DefinedCondition::BadRequest,
                        "groupchat goes to the room, not to an occupant",
                    )),
                    (Some(nick), _) => room.private(&from, nick, &stanza).map(|out| Effects {
                        out,
                        ..Default::default()
                    }),
                    (None, "groupchat") => {
                        let had = room.subject.clone();
                        let archive = archive.as_ref().filter(|_| room.config.archiving);
                        let id = archive.map(|_| RoomArchive::new_id());
                        room.groupchat(&from, &stanza, now, id.as_deref())
                            .map(|(out, archived)| {
                                if let (Some(a), Some(id), Some(m)) = (archive, id, archived) {
                                    a.archive(&room.jid, id, &m);
                                }
                                let mut fx = Effects {
                                    out,
                                    ..Default::default()
                                };
                                if room.subject != had {
                                    Self::persist(name, room, &mut fx);
                                }
                                fx
                            })
                    }
                    (None, _) => Self::to_room(name, room, &from, &stanza),
                },
            };
            decided.map(|mut fx| {
                fx.deliver_now(server);
                fx
            })
        };
        match fx {
            Ok(fx) => self.apply(server, fx).await,
            Err(e) => server.bounce(&stanza, *e).await,
        }
    }

    /// A message to the room that is not groupchat: invitations and declines.
    fn to_room(
        name: &str,
        room: &mut Room,
        from: &Jid,
        stanza: &Element,
    ) -> Result<Effects, Box<StanzaError>> {
        let Some(x) = stanza.get_child("x", NS_USER) else {
            return Err(refuse(
                DefinedCondition::BadRequest,
                "a message to a room is groupchat, an invitation or a decline",
            ));
        };
        let mut fx = Effects::default();
        for c in x.children() {
            let reason = c.get_child("reason", NS_USER).map(Element::text);
            let who = c.attr("to").and_then(|t| Jid::new(t).ok());
            match (c.name(), who) {
                ("invite", Some(invitee)) => {
                    let (out, made_member) = room.invite(from, &invitee, reason)?;
                    fx.out.extend(out);
                    if made_member {
                        Self::persist(name, room, &mut fx);
                    }
                }
                ("decline", Some(inviter)) => fx.out.extend(room.decline(from, &inviter, reason)),
                ("invite" | "decline", None) => {
                    return Err(refuse(
                        DefinedCondition::JidMalformed,
                        "an invitation names whom it is for",
                    ));
                }
                _ => {}
            }
        }
        Ok(fx)
    }

    async fn iq(&self, server: &ServerHandle, from: Jid, to: Jid, stanza: Element) {
        let kind = stanza.attr("type").unwrap_or_default();
        if !matches!(kind, "get" | "set") {
            // The answer to a request passed on to an occupant: back to who asked.
            if let Some(id) = stanza.attr("id").filter(|id| id.starts_with(ID_PREFIX))
                && let Some(p) = self.forwards.finish(id, &from)
            {
                let mut answer = stanza;
                answer.set_attr("from", p.as_jid.as_shared().clone());
                answer.set_attr("to", p.requester.as_shared().clone());
                answer.set_attr("id", p.id);
                server.route(answer).await;
            }
            return;
        }
        let Some(payload) = stanza.children().next().cloned() else {
            return server
                .bounce(
                    &stanza,
                    *refuse(DefinedCondition::BadRequest, "an empty request"),
                )
                .await;
        };
        if payload.ns() == lithos_mam::NS
            && let (Some(name), None) = (to.local(), to.resource())
        {
            let answer = self.archive_query(server, name, &from, kind, payload).await;
            return server.reply(&stanza, &to, answer.map_err(|e| *e)).await;
        }
        let answer = match (to.local(), to.resource()) {
            (None, _) => self.service_iq(kind, &payload),
            (Some(name), Some(nick)) => match self.occupant_iq(name, nick, &from, &payload) {
                ToOccupant::Answer(a) => a,
                ToOccupant::Forward {
                    target,
                    as_jid,
                    answer_as,
                } => {
                    let id = stanza.attr("id").unwrap_or_default().to_string();
                    match self
                        .forwards
                        .start(from.clone(), id, target.clone(), answer_as)
                    {
                        Some(ours) => {
                            let mut passed = stanza;
                            passed.set_attr("from", as_jid.as_shared().clone());
                            passed.set_attr("to", target.as_shared().clone());
                            passed.set_attr("id", ours);
                            return server.route(passed).await;
                        }
                        None => Err(refuse(
                            DefinedCondition::ResourceConstraint,
                            "too many requests to occupants wait for their answers",
                        )),
                    }
                }
            },
            (Some(name), None) => {
                let (answer, fx) = self.room_iq(server, name, &from, kind, &payload);
                self.apply(server, fx).await;
                answer
            }
        };
        server.reply(&stanza, &to, answer.map_err(|e| *e)).await;
    }

    /// A XEP-0313 query of a room's archive: for those who may enter the room (not banned,
    /// and a member of a members-only room) or are in it.
    async fn archive_query(
        &self,
        server: &ServerHandle,
        name: &str,
        from: &Jid,
        kind: &str,
        payload: Element,
    ) -> Result<Option<Element>, Box<StanzaError>> {
        let Some(archive) = self.room_archive(server) else {
            return Err(refuse(
                DefinedCondition::ServiceUnavailable,
                "rooms are not archived here",
            ));
        };
        let room_jid = {
            let rooms = lock(&self.rooms);
            let Some(room) = rooms.get(name) else {
                return Err(refuse(DefinedCondition::ItemNotFound, "no such room"));
            };
            if !room.config.archiving {
                return Err(refuse(
                    DefinedCondition::ServiceUnavailable,
                    "this room is not archived",
                ));
            }
            let affiliation = room
                .affiliations
                .get(from.bare_str())
                .copied()
                .unwrap_or(Affiliation::None);
            let inside = room.occupant(from).is_some();
            let may = affiliation != Affiliation::Outcast
                && (inside || !room.config.members_only || affiliation >= Affiliation::Member);
            if !may {
                return Err(refuse(
                    DefinedCondition::Forbidden,
                    "only those who may enter the room read its archive",
                ));
            }
            room.jid.clone()
        };
        if kind == "get" {
            // The query form (XEP-0313 §4.1.1), as for an account's archive.
            return Ok(Some(lithos_mam::query_form()));
        }
        archive
            .query(server, &room_jid, from, payload)
            .await
            .map_err(Box::new)
    }

    fn service_iq(
        &self,
        kind: &str,
        payload: &Element,
    ) -> Result<Option<Element>, Box<StanzaError>> {
        match (kind, payload.name(), payload.ns()) {
            ("get", "query", DISCO_INFO) => Ok(Some(
                Element::builder("query", DISCO_INFO)
                    .child(identity("Chatrooms"))
                    .children([DISCO_INFO, DISCO_ITEMS, NS, PING, STABLE_ID].map(feature))
                    .build(),
            )),
            ("get", "query", DISCO_ITEMS) => {
                let rooms = lock(&self.rooms);
                let mut items: Vec<(&String, &Room)> = rooms
                    .iter()
                    .filter(|(_, r)| r.config.public && !r.locked)
                    .collect();
                items.sort_by(|a, b| a.0.cmp(b.0));
                Ok(Some(
                    Element::builder("query", DISCO_ITEMS)
                        .children(items.into_iter().map(|(_, r)| {
                            let mut i = Element::builder("item", DISCO_ITEMS)
                                .attr("jid", r.jid.to_string());
                            if !r.config.name.is_empty() {
                                i = i.attr("name", r.config.name.clone());
                            }
                            i.build()
                        }))
                        .build(),
                ))
            }
            ("get", "ping", PING) => Ok(None),
            _ => Err(refuse(
                DefinedCondition::FeatureNotImplemented,
                "not a request this service answers",
            )),
        }
    }

    /// XEP-0410: an occupant pings its own room address; nothing else is passed on.
    fn occupant_iq(&self, name: &str, nick: &str, from: &Jid, payload: &Element) -> ToOccupant {
        let answer = |r| ToOccupant::Answer(r);
        let rooms = lock(&self.rooms);
        let Some(room) = rooms.get(name) else {
            // Not "item-not-found": XEP-0410 gives that the meaning "joined, nick changed".
            return answer(Err(refuse(
                DefinedCondition::NotAcceptable,
                "no such room: you are not in it",
            )));
        };
        let Some(me) = room.occupant(from) else {
            return answer(Err(refuse(
                DefinedCondition::NotAcceptable,
                "you are not in this room",
            )));
        };
        if payload.is("ping", PING) && me.nick == nick {
            // XEP-0410: the room answers an occupant's ping to itself.
            return answer(Ok(None));
        }
        let Some(target) = room.by_nick(nick) else {
            return answer(Err(refuse(
                DefinedCondition::ItemNotFound,
                "no occupant has that nick",
            )));
        };
        let (Ok(as_jid), Ok(answer_as)) = (
            room.jid.with_resource(&me.nick),
            room.jid.with_resource(nick),
        ) else {
            return answer(Err(refuse(
                DefinedCondition::JidMalformed,
                "a nick that is no resource",
            )));
        };
        // A vCard is the account's, which its server answers at the bare JID.
        let target = if payload.is("vCard", "vcard-temp") {
            target.jid.to_bare()
        } else {
            target.jid.clone()
        };
        ToOccupant::Forward {
            target,
            as_jid,
            answer_as,
        }
    }

    fn room_iq(
        &self,
        server: &ServerHandle,
        name: &str,
        from: &Jid,
        kind: &str,
        payload: &Element,
    ) -> (Result<Option<Element>, Box<StanzaError>>, Effects) {
        let mut fx = Effects::default();
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(name) else {
            return (
                Err(refuse(DefinedCondition::ItemNotFound, "no such room")),
                fx,
            );
        };
        let answer = match (kind, payload.ns()) {
            ("get", DISCO_INFO) => Ok(Some(room_info(
                room,
                room.config.archiving && self.room_archive(server).is_some(),
            ))),
            ("get", DISCO_ITEMS) => Ok(Some(Element::bare("query", DISCO_ITEMS))),
            ("get", PING) => Ok(None),
            (_, NS_ADMIN) => admin(name, room, from, kind, payload, &mut fx),
            (_, NS_OWNER) => {
                let r = owner(
                    name,
                    room,
                    from,
                    kind,
                    payload,
                    self.settings.max_occupants,
                    &mut fx,
                );
                if fx.destroyed {
                    fx.forget_archive = Some(room.jid.clone());
                    rooms.remove(name);
                    fx.deliver_now(server);
                    return (r, fx);
                }
                r
            }
            _ => Err(refuse(
                DefinedCondition::FeatureNotImplemented,
                "not a request this room answers",
            )),
        };
        fx.deliver_now(server);
        (answer, fx)
    }
}

/// The history a join asks for (`<history/>` in its `<x/>`).
fn history_request(presence: &Element) -> HistoryRequest {
    presence
        .get_child("x", NS)
        .and_then(|x| x.get_child("history", NS))
        .map(|h| {
            let n = |a: &str| h.attr(a).and_then(|v| v.parse::<u64>().ok());
            HistoryRequest {
                max_stanzas: n("maxstanzas").map(|v| v as usize),
                max_chars: n("maxchars").map(|v| v as usize),
                seconds: n("seconds"),
                since_ms: h.attr("since").and_then(lithos_core::datetime::parse),
            }
        })
        .unwrap_or_default()
}

/// To a client whose presence says it is in a room it is not in: out, as if kicked by the
/// service (`110`, `307`, `333`; XEP-0045 §7.2.18).
fn not_in_room(from: &Jid, to: &Jid) -> Element {
    let x = Element::builder("x", NS_USER)
        .child(
            Element::builder("item", NS_USER)
                .attr("affiliation", "none")
                .attr("role", "none")
                .build(),
        )
        .children(
            ["110", "307", "333"]
                .map(|c| Element::builder("status", NS_USER).attr("code", c).build()),
        )
        .build();
    Element::builder("presence", ns::JABBER_CLIENT)
        .attr("type", "unavailable")
        .attr("from", to.to_string())
        .attr("to", from.to_string())
        .child(x)
        .build()
}

fn identity(name: &str) -> Element {
    Element::builder("identity", DISCO_INFO)
        .attr("category", "conference")
        .attr("type", "text")
        .attr("name", name.to_string())
        .build()
}

fn feature(var: &str) -> Element {
    Element::builder("feature", DISCO_INFO)
        .attr("var", var.to_string())
        .build()
}

fn room_info(room: &Room, archived: bool) -> Element {
    let c = &room.config;
    let pick = |b: bool, yes: &'static str, no: &'static str| if b { yes } else { no };
    let features = [
        NS,
        DISCO_INFO,
        PING,
        STABLE_ID,
        SELF_PING_OPTIMIZATION,
        pick(c.persistent, "muc_persistent", "muc_temporary"),
        pick(c.public, "muc_public", "muc_hidden"),
        pick(c.members_only, "muc_membersonly", "muc_open"),
        pick(
            c.password.is_some(),
            "muc_passwordprotected",
            "muc_unsecured",
        ),
        pick(c.moderated, "muc_moderated", "muc_unmoderated"),
        pick(
            c.whois == Whois::Anyone,
            "muc_nonanonymous",
            "muc_semianonymous",
        ),
        // XEP-0313 §6.1: a room that archives says so.
        if archived { lithos_mam::NS } else { "" },
    ];
    let info = Form::new(FormType::Result, NS_ROOMINFO)
        .with(lithos_xdata::Field::new(
            "muc#roominfo_description",
            None,
            vec![c.description.clone()],
        ))
        .with(lithos_xdata::Field::new(
            "muc#roominfo_occupants",
            None,
            vec![room.occupants.len().to_string()],
        ))
        .with(lithos_xdata::Field::new(
            "muc#roominfo_subject",
            None,
            vec![room.subject.text.clone()],
        ));
    let name = if c.name.is_empty() {
        room.jid.local().unwrap_or_default().to_string()
    } else {
        c.name.clone()
    };
    Element::builder("query", DISCO_INFO)
        .child(identity(&name))
        .children(features.into_iter().filter(|f| !f.is_empty()).map(feature))
        .child(info.to_element())
        .build()
}

/// `muc#admin`: lists (get) and role and affiliation changes (set, each item in turn).
fn admin(
    name: &str,
    room: &mut Room,
    from: &Jid,
    kind: &str,
    q: &Element,
    fx: &mut Effects,
) -> Result<Option<Element>, Box<StanzaError>> {
    let items: Vec<&Element> = q.children().filter(|c| c.is("item", NS_ADMIN)).collect();
    if items.is_empty() {
        return Err(refuse(
            DefinedCondition::BadRequest,
            "an admin request names items",
        ));
    }
    if kind == "get" {
        let i = items[0];
        let role = i
            .attr("role")
            .map(|r| {
                Role::parse(r).ok_or_else(|| refuse(DefinedCondition::BadRequest, "unknown role"))
            })
            .transpose()?;
        let aff = i
            .attr("affiliation")
            .map(|a| {
                Affiliation::parse(a)
                    .ok_or_else(|| refuse(DefinedCondition::BadRequest, "unknown affiliation"))
            })
            .transpose()?;
        let list = room.list(from, role, aff)?;
        return Ok(Some(
            Element::builder("query", NS_ADMIN).children(list).build(),
        ));
    }
    // All items or none (§9.2): applied to a copy, kept only if every one applies.
    let mut trial = room.clone();
    let mut out = Vec::new();
    let mut changed_affiliations = false;
    for i in items {
        let reason = i.get_child("reason", NS_ADMIN).map(Element::text);
        let room = &mut trial;
        match (
            i.attr("nick"),
            i.attr("role"),
            i.attr("jid"),
            i.attr("affiliation"),
        ) {
            (_, Some(_), _, Some(_)) => {
                return Err(refuse(
                    DefinedCondition::BadRequest,
                    "an item sets a role or an affiliation, not both",
                ));
            }
            (Some(nick), Some(role), _, None) => {
                let role = Role::parse(role)
                    .ok_or_else(|| refuse(DefinedCondition::BadRequest, "unknown role"))?;
                out.extend(room.set_role(from, nick, role, reason)?);
            }
            (nick, _, jid, Some(aff)) => {
                let aff = Affiliation::parse(aff)
                    .ok_or_else(|| refuse(DefinedCondition::BadRequest, "unknown affiliation"))?;
                let target = match (jid, nick) {
                    (Some(j), _) => Jid::new(j)
                        .map_err(|_| refuse(DefinedCondition::JidMalformed, "not an address"))?
                        .to_bare(),
                    (None, Some(n)) => {
                        room.by_nick(n).map(|o| o.jid.to_bare()).ok_or_else(|| {
                            refuse(DefinedCondition::ItemNotFound, "no occupant has that nick")
                        })?
                    }
                    (None, None) => {
                        return Err(refuse(
                            DefinedCondition::BadRequest,
                            "an item names a jid or a nick",
                        ));
                    }
                };
                out.extend(room.set_affiliation(from, &target, aff, reason)?);
                changed_affiliations = true;
            }
            _ => {
                return Err(refuse(
                    DefinedCondition::BadRequest,
                    "an item sets a role (by nick) or an affiliation",
                ));
            }
        }
    }
    *room = trial;
    fx.out.extend(out);
    if changed_affiliations {
        Muc::persist(name, room, fx);
    }
    Ok(None)
}

/// `muc#owner`: the configuration form (get), a submitted or cancelled form, or `<destroy/>`
/// (set). A destroyed room is marked in `fx` for the caller to remove.
fn owner(
    name: &str,
    room: &mut Room,
    from: &Jid,
    kind: &str,
    q: &Element,
    service_max: usize,
    fx: &mut Effects,
) -> Result<Option<Element>, Box<StanzaError>> {
    if room.affiliation(from.bare_str()) != Affiliation::Owner {
        return Err(refuse(
            DefinedCondition::Forbidden,
            "only owners configure or destroy a room",
        ));
    }
    if kind == "get" {
        return Ok(Some(
            Element::builder("query", NS_OWNER)
                .child(room.config.to_form().to_element())
                .build(),
        ));
    }
    if let Some(d) = q.get_child("destroy", NS_OWNER) {
        let reason = d.get_child("reason", NS_OWNER).map(Element::text);
        fx.out
            .extend(room.destroy(reason, d.attr("jid").map(str::to_string)));
        if room.config.persistent {
            fx.delete = Some((name.to_string(), next_version()));
        }
        fx.destroyed = true;
        return Ok(None);
    }
    let Some(x) = q.get_child("x", lithos_xdata::NS) else {
        return Err(refuse(
            DefinedCondition::BadRequest,
            "expected a data form or <destroy/>",
        ));
    };
    let form = Form::from_element(x.clone())
        .map_err(|e| refuse(DefinedCondition::BadRequest, &e.to_string()))?;
    match form.type_ {
        FormType::Cancel => {
            if room.locked {
                fx.out.extend(room.destroy(None, None));
                fx.destroyed = true;
            }
            Ok(None)
        }
        FormType::Submit => {
            if form.form_type().is_some_and(|t| t != crate::NS_ROOMCONFIG) {
                return Err(refuse(
                    DefinedCondition::BadRequest,
                    "not a muc#roomconfig form",
                ));
            }
            let before = room.config.clone();
            room.config
                .apply(&form, service_max)
                .map_err(|e| refuse(DefinedCondition::NotAcceptable, &e))?;
            let was_persistent = before.persistent;
            if !room.locked {
                fx.out.extend(room.reconfigured(&before));
            }
            room.locked = false;
            if room.config.persistent {
                Muc::persist(name, room, fx);
            } else if was_persistent {
                fx.delete = Some((name.to_string(), next_version()));
            }
            Ok(None)
        }
        _ => Err(refuse(
            DefinedCondition::BadRequest,
            "submit or cancel the form",
        )),
    }
}

#[async_trait]
impl Module for Muc {
    fn service_domain(&self) -> Option<String> {
        Some(self.settings.domain.clone())
    }

    async fn started(&self, server: &ServerHandle) {
        let saved = match store::load(server.storage().db(), self.settings.max_occupants).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "loading the persistent rooms failed");
                return;
            }
        };
        let mut rooms = lock(&self.rooms);
        for s in saved {
            let Ok(jid) = Jid::new(&format!("{}@{}", s.name, self.settings.domain)) else {
                continue;
            };
            let mut room = Room::new(jid, s.config, self.settings.history_size);
            room.subject = s.subject;
            room.affiliations = s.affiliations.into_iter().collect();
            rooms.insert(s.name, room);
        }
        tracing::info!(rooms = rooms.len(), domain = %self.settings.domain, "multi-user chat service ready");
    }

    async fn service_stanza(&self, server: &ServerHandle, stanza: Element) {
        let from = stanza.attr("from").and_then(|f| Jid::new(f).ok());
        let to = stanza.attr("to").and_then(|t| Jid::new(t).ok());
        let (Some(from), Some(to)) = (from, to) else {
            return;
        };
        match stanza.name() {
            "presence" => self.presence(server, from, to, stanza).await,
            "message" => self.message(server, from, to, stanza).await,
            "iq" => self.iq(server, from, to, stanza).await,
            _ => {}
        }
    }

    async fn account_deleted(&self, _server: &ServerHandle, account: &Jid) {
        for room in lock(&self.rooms).values_mut() {
            room.affiliations.remove(account.bare_str());
        }
    }
}

fn build(ctx: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
    let mut s = Settings {
        domain: format!("conference.{}", ctx.config.domain),
        max_rooms: 10_000,
        max_occupants: 200,
        history_size: 20,
        lock_new_rooms: false,
        local_creators_only: true,
        server_domain: ctx.config.domain.to_ascii_lowercase(),
    };
    for (k, v) in &ctx.section {
        match k.as_str() {
            "domain" => {
                let d = v.as_str().unwrap_or_default().to_ascii_lowercase();
                if !Jid::new(&d).is_ok_and(|j| j.is_domain()) {
                    return Err(ModuleError::new(format!(
                        "domain: {d:?} is not a domain name"
                    )));
                }
                s.domain = d;
            }
            "max_rooms" => s.max_rooms = ModuleError::integer(k, v, 1)? as usize,
            "max_occupants" => s.max_occupants = ModuleError::integer(k, v, 1)? as usize,
            "history_size" => s.history_size = ModuleError::integer(k, v, 0)? as usize,
            "lock_new_rooms" => s.lock_new_rooms = ModuleError::boolean(k, v)?,
            "local_creators_only" => s.local_creators_only = ModuleError::boolean(k, v)?,
            other => return Err(ModuleError::unknown_key(other)),
        }
    }
    Ok(Arc::new(Muc {
        settings: s,
        rooms: Mutex::new(HashMap::new()),
        saving: tokio::sync::Mutex::new(HashMap::new()),
        forwards: Forwards::default(),
        archive: std::sync::OnceLock::new(),
    }))
}

/// This crate's server module, registered by `extension!` in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "muc",
    "XEP-0045: multi-user chat rooms on their own domain (conference.<domain>)",
    build,
);
