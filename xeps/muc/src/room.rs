//! One room: its occupants, affiliations, subject and history, and what each event sends.
//!
//! Every operation changes the room and gives the stanzas to route (`from` the room or an
//! occupant's room address, `to` real addresses), or the error to answer with; nothing
//! here waits or routes, so the service holds one lock per event and routes afterwards.

use std::collections::{BTreeMap, VecDeque};

use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, ns};

use crate::config::{RoomConfig, Whois};
use crate::{Affiliation, NS_CONFERENCE, NS_DELAY, NS_USER, Role};

/// XEP-0359 stanza ids.
const NS_SID: &str = "urn:xmpp:sid:0";

/// Someone in the room.
#[derive(Debug, Clone)]
pub struct Occupant {
    /// The nick (the resource of the room address).
    pub nick: String,
    /// The real address (a full JID).
    pub jid: Jid,
    /// What the occupant may do now.
    pub role: Role,
    /// The occupant's affiliation (its bare JID's).
    pub affiliation: Affiliation,
    /// The presence the occupant last sent the room (`show`, `status` and the like are
    /// passed on from it).
    pub presence: Element,
}

/// A message of the history.
#[derive(Debug, Clone)]
struct Said {
    stamp_ms: i64,
    /// The groupchat message as broadcast, without `to`.
    message: Element,
    /// Its characters, as `maxchars` counts them (the XML).
    chars: usize,
}

/// What a joining occupant asked of the history (`<history/>` in the join's `<x/>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    /// At most this many messages.
    pub max_stanzas: Option<usize>,
    /// At most this many characters of XML.
    pub max_chars: Option<usize>,
    /// Only messages of the last so many seconds.
    pub seconds: Option<u64>,
    /// Only messages since this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
}

/// Someone entering a room.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The real address.
    pub jid: &'a Jid,
    /// The nick asked for.
    pub nick: &'a str,
    /// The presence that asked (its show and status are passed on).
    pub presence: &'a Element,
    /// The password given in the join's `<x xmlns='…muc'/>`.
    pub password: Option<&'a str>,
    /// The history asked for there.
    pub history: &'a HistoryRequest,
    /// The room did not exist before (status `201`).
    pub created: bool,
    /// Now, in milliseconds since the epoch.
    pub now_ms: i64,
}

/// The subject and who set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The text (empty: no subject).
    pub text: String,
    /// The nick that set it.
    pub by: String,
}

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    /// The room's address (`name@service`).
    pub jid: Jid,
    /// Its configuration.
    pub config: RoomConfig,
    /// Created and not configured yet: only the owner may enter.
    pub locked: bool,
    /// The subject.
    pub subject: Subject,
    /// Present now.
    pub occupants: Vec<Occupant>,
    /// Affiliations other than `none`, by bare JID.
    pub affiliations: BTreeMap<String, Affiliation>,
    history: VecDeque<Said>,
    /// Messages the history keeps.
    pub history_size: usize,
}

/// A stanza error, explained.
fn refuse(condition: DefinedCondition, text: &str) -> Box<StanzaError> {
    Box::new(StanzaError::explained(condition, text))
}

fn status(code: u16) -> Element {
    Element::builder("status", NS_USER)
        .attr("code", code.to_string())
        .build()
}

fn iso8601(ms: i64) -> String {
    lithos_core::datetime::format(ms)
}

impl Room {
    /// A new, empty room.
    pub fn new(jid: Jid, config: RoomConfig, history_size: usize) -> Room {
        Room {
            jid,
            config,
            locked: false,
            subject: Subject {
                text: String::new(),
                by: String::new(),
            },
            occupants: Vec::new(),
            affiliations: BTreeMap::new(),
            history: VecDeque::new(),
            history_size,
        }
    }

    /// The affiliation of a bare JID.
    pub fn affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations
            .get(bare)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// The occupant whose real address is `jid`.
    pub fn occupant(&self, jid: &Jid) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.jid == *jid)
    }

    /// The occupant with this nick.
    pub fn by_nick(&self, nick: &str) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.nick == nick)
    }

    fn nick_jid(&self, nick: &str) -> Jid {
        self.jid
            .with_resource(nick)
            .unwrap_or_else(|_| self.jid.clone())
    }

    /// The presence of `o` as `to` sees it: its show and status, its item (with its real
    /// address when `to` may see it), the status codes, and for `self_codes` when `to` is
    /// `o` itself.
    fn presence_of(
        &self,
        o: &Occupant,
        to: &Occupant,
        unavailable: bool,
        codes: &[u16],
        item_extra: &[Element],
    ) -> Element {
        let shows_jid = self.config.whois == Whois::Anyone || to.role == Role::Moderator;
        let mut item = Element::builder("item", NS_USER)
            .attr("affiliation", o.affiliation.as_str())
            .attr(
                "role",
                if unavailable { Role::None } else { o.role }.as_str(),
            );
        if shows_jid {
            item = item.attr("jid", o.jid.to_string());
        }
        let mut x =
            Element::builder("x", NS_USER).child(item.children(item_extra.iter().cloned()).build());
        let own = o.jid == to.jid;
        for &c in codes {
            // 110 (this is you) only to the occupant itself.
            if c != 110 || own {
                x = x.child(status(c));
            }
        }
        let mut p = Element::builder("presence", ns::JABBER_CLIENT)
            .attr("from", self.nick_jid(&o.nick).to_string())
            .attr("to", to.jid.to_string());
        if unavailable {
            p = p.attr("type", "unavailable");
        } else {
            // What the occupant said of itself: show, status, priority, and payloads other
            // than MUC's (entity capabilities, for example).
            p = p.children(
                o.presence
                    .children()
                    .filter(|c| c.ns() != crate::NS && c.ns() != NS_USER)
                    .cloned(),
            );
        }
        p.child(x.build()).build()
    }

    /// `o`'s presence to every occupant (`o` included, with `110`).
    fn broadcast_presence(
        &self,
        o: &Occupant,
        unavailable: bool,
        codes: &[u16],
        item_extra: &[Element],
    ) -> Vec<Element> {
        let mut codes = codes.to_vec();
        codes.push(110);
        self.occupants
            .iter()
            .chain(
                // One who is leaving is told too.
                (!self.occupants.iter().any(|x| x.jid == o.jid)).then_some(o),
            )
            .map(|to| self.presence_of(o, to, unavailable, &codes, item_extra))
            .collect()
    }

    /// Someone enters (see [`Entry`]).
    pub fn join(&mut self, entry: Entry<'_>) -> Result<Vec<Element>, Box<StanzaError>> {
        let Entry {
            jid,
            nick,
            presence,
            password,
            history,
            created,
            now_ms,
        } = entry;
        if nick.is_empty() {
            return Err(refuse(
                DefinedCondition::JidMalformed,
                "a nick is needed to enter",
            ));
        }
        let bare = jid.bare_str().to_string();
        let affiliation = self.affiliation(&bare);
        if self.locked && affiliation != Affiliation::Owner {
            return Err(refuse(
                DefinedCondition::ItemNotFound,
                "the room is locked until its owner configures it",
            ));
        }
        if affiliation == Affiliation::Outcast {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "you are banned from this room",
            ));
        }
        if self
            .occupants
            .iter()
            .any(|o| o.nick == nick && o.jid != *jid)
        {
            return Err(refuse(DefinedCondition::Conflict, "that nick is taken"));
        }
        if self.config.members_only && affiliation < Affiliation::Member {
            return Err(refuse(
                DefinedCondition::RegistrationRequired,
                "this room is for its members only",
            ));
        }
        if self.occupants.len() >= self.config.max_users && affiliation < Affiliation::Admin {
            return Err(refuse(
                DefinedCondition::ServiceUnavailable,
                "the room is full",
            ));
        }
        if let Some(want) = &self.config.password
            && password != Some(want.as_str())
            && affiliation < Affiliation::Owner
        {
            return Err(refuse(
                DefinedCondition::NotAuthorized,
                "a password is required",
            ));
        }
        let newcomer = Occupant {
            nick: nick.to_string(),
            jid: jid.clone(),
            role: affiliation.default_role(self.config.moderated),
            affiliation,
            presence: presence.clone(),
        };
        // Everyone's presence to the newcomer first.
        let mut out: Vec<Element> = self
            .occupants
            .iter()
            .map(|o| self.presence_of(o, &newcomer, false, &[], &[]))
            .collect();
        self.occupants.push(newcomer.clone());
        let mut codes = Vec::new();
        if self.config.whois == Whois::Anyone {
            codes.push(100);
        }
        if created {
            codes.push(201);
        }
        for to in &self.occupants {
            // 100 and 201 are for the newcomer itself.
            let c: &[u16] = if to.jid == newcomer.jid { &codes } else { &[] };
            let mut c = c.to_vec();
            c.push(110);
            out.push(self.presence_of(&newcomer, to, false, &c, &[]));
        }
        out.extend(self.history_for(&newcomer, history, now_ms));
        out.push(self.subject_message(&newcomer.jid));
        Ok(out)
    }

    /// The history a newcomer asked for, oldest first, each with its delay.
    fn history_for(&self, to: &Occupant, req: &HistoryRequest, now_ms: i64) -> Vec<Element> {
        let since = req
            .since_ms
            .into_iter()
            .chain(
                req.seconds
                    .map(|s| now_ms.saturating_sub((s as i64).saturating_mul(1000))),
            )
            .max();
        let mut picked: Vec<&Said> = Vec::new();
        let mut chars = 0usize;
        for said in self.history.iter().rev() {
            if since.is_some_and(|s| said.stamp_ms < s) {
                break;
            }
            if req.max_stanzas.is_some_and(|m| picked.len() >= m) {
                break;
            }
            if req.max_chars.is_some_and(|m| chars + said.chars > m) {
                break;
            }
            chars += said.chars;
            picked.push(said);
        }
        picked
            .into_iter()
            .rev()
            .map(|said| {
                let mut m = said.message.clone();
                m.set_attr("to", to.jid.to_string());
                m.append_child(
                    Element::builder("delay", NS_DELAY)
                        .attr("from", self.jid.to_string())
                        .attr("stamp", iso8601(said.stamp_ms))
                        .build(),
                );
                m
            })
            .collect()
    }

    /// The subject as a message to `to` (sent on every entry, empty when there is none).
    fn subject_message(&self, to: &Jid) -> Element {
        let from = if self.subject.by.is_empty() {
            self.jid.clone()
        } else {
            self.nick_jid(&self.subject.by)
        };
        Element::builder("message", ns::JABBER_CLIENT)
            .attr("type", "groupchat")
            .attr("from", from.to_string())
            .attr("to", to.to_string())
            .child(
                Element::builder("subject", ns::JABBER_CLIENT)
                    .text(self.subject.text.clone())
                    .build(),
            )
            .build()
    }

    /// An occupant sent a join again from the same address and nick (a client that lost
    /// track, XEP-0045 §7.2.1): it gets everything a newcomer gets (the others' presence,
    /// its own, the history it asked for, the subject); the others hear of it only if its
    /// presence changed.
    pub fn resync(
        &mut self,
        jid: &Jid,
        presence: &Element,
        history: &HistoryRequest,
        now_ms: i64,
    ) -> Vec<Element> {
        let Some(i) = self.occupants.iter().position(|o| o.jid == *jid) else {
            return Vec::new();
        };
        let changed = self.occupants[i].presence != *presence;
        self.occupants[i].presence = presence.clone();
        let me = self.occupants[i].clone();
        let mut out: Vec<Element> = self
            .occupants
            .iter()
            .filter(|o| o.jid != me.jid)
            .map(|o| self.presence_of(o, &me, false, &[], &[]))
            .collect();
        let mut codes = vec![110];
        if self.config.whois == Whois::Anyone {
            codes.push(100);
        }
        out.push(self.presence_of(&me, &me, false, &codes, &[]));
        if changed {
            out.extend(
                self.occupants
                    .iter()
                    .filter(|o| o.jid != me.jid)
                    .map(|to| self.presence_of(&me, to, false, &[], &[])),
            );
        }
        out.extend(self.history_for(&me, history, now_ms));
        out.push(self.subject_message(&me.jid));
        out
    }

    /// An occupant sent available presence again (a new show or status): passed on.
    pub fn update(&mut self, jid: &Jid, presence: &Element) -> Vec<Element> {
        let Some(i) = self.occupants.iter().position(|o| o.jid == *jid) else {
            return Vec::new();
        };
        self.occupants[i].presence = presence.clone();
        let o = self.occupants[i].clone();
        self.broadcast_presence(&o, false, &[], &[])
    }

    /// An occupant changes its nick (`303`, then the presence under the new one).
    pub fn change_nick(&mut self, jid: &Jid, nick: &str) -> Result<Vec<Element>, Box<StanzaError>> {
        if nick.is_empty() {
            return Err(refuse(DefinedCondition::JidMalformed, "a nick is needed"));
        }
        if self
            .occupants
            .iter()
            .any(|o| o.nick == nick && o.jid != *jid)
        {
            return Err(refuse(DefinedCondition::Conflict, "that nick is taken"));
        }
        let Some(i) = self.occupants.iter().position(|o| o.jid == *jid) else {
            return Ok(Vec::new());
        };
        let old = self.occupants[i].clone();
        // The unavailable presence under the old nick names the new one in its item.
        let mut out: Vec<Element> = self
            .occupants
            .iter()
            .map(|to| {
                let mut p = self.presence_of(&old, to, true, &[303, 110], &[]);
                if let Some(x) = p.get_child_mut("x", NS_USER)
                    && let Some(item) = x.get_child_mut("item", NS_USER)
                {
                    item.set_attr("nick", nick.to_string());
                }
                p
            })
            .collect();
        self.occupants[i].nick = nick.to_string();
        let o = self.occupants[i].clone();
        out.extend(self.broadcast_presence(&o, false, &[], &[]));
        Ok(out)
    }

    /// An occupant leaves (unavailable presence, or its session ended), or is removed with
    /// `codes` (`333`: its client answered with an error, XEP-0045 §11.1).
    pub fn leave(&mut self, jid: &Jid, presence: Option<&Element>, codes: &[u16]) -> Vec<Element> {
        let Some(i) = self.occupants.iter().position(|o| o.jid == *jid) else {
            return Vec::new();
        };
        let mut o = self.occupants.remove(i);
        if let Some(p) = presence {
            o.presence = p.clone();
        }
        let mut out = self.broadcast_presence(&o, true, codes, &[]);
        // The leaver's status text goes with its unavailable presence.
        for p in &mut out {
            for c in o.presence.children().filter(|c| c.name() == "status") {
                p.append_child(c.clone());
            }
        }
        out
    }

    /// A groupchat message from an occupant: to everyone, kept in the history.
    /// A groupchat message from an occupant: the copies for every occupant, and, when it
    /// has a body and `stanza_id` is given (the room archives), the message as sent, which
    /// carries `<stanza-id by='room'/>` (XEP-0359; one a client claimed for the room is
    /// removed).
    pub fn groupchat(
        &mut self,
        jid: &Jid,
        message: &Element,
        now_ms: i64,
        stanza_id: Option<&str>,
    ) -> Result<(Vec<Element>, Option<Element>), Box<StanzaError>> {
        let Some(o) = self.occupant(jid).cloned() else {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "only occupants send messages to the room",
            ));
        };
        if o.role < Role::Participant {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "visitors may not speak here",
            ));
        }
        let subject = message.get_child("subject", &ns::JABBER_CLIENT);
        let has_body = message.has_child("body", &ns::JABBER_CLIENT);
        if let Some(s) = subject
            && !has_body
        {
            let allowed = o.role == Role::Moderator || self.config.change_subject;
            if !allowed {
                return Err(refuse(
                    DefinedCondition::Forbidden,
                    "only moderators change the subject here",
                ));
            }
            self.subject = Subject {
                text: s.text(),
                by: o.nick.clone(),
            };
        }
        let mut reflected = message.clone();
        reflected.remove_attr("to");
        reflected.set_attr("from", self.nick_jid(&o.nick).as_shared().clone());
        reflected.set_attr("type", "groupchat");
        // Delays a client set are not the room's to pass on, nor ids claiming the room's.
        let room = self.jid.as_str();
        reflected.retain_children(|c| {
            c.ns() != NS_DELAY && !(c.is("stanza-id", NS_SID) && c.attr("by") == Some(room))
        });
        let archived = match stanza_id {
            Some(id) if has_body => {
                reflected.append_child(
                    Element::builder("stanza-id", NS_SID)
                        .attr("id", id.to_string())
                        .attr("by", room.to_string())
                        .build(),
                );
                Some(reflected.clone())
            }
            _ => None,
        };
        if has_body {
            let chars = reflected.to_xml().len();
            self.history.push_back(Said {
                stamp_ms: now_ms,
                message: reflected.clone(),
                chars,
            });
            while self.history.len() > self.history_size {
                self.history.pop_front();
            }
        }
        // Each copy gets its `to` in place: the template has the attribute already, so
        // setting it grows no vector (measured: the growth was 6 % of the fan-out's CPU).
        let mut template = reflected;
        template.set_attr("to", "");
        let copies = self
            .occupants
            .iter()
            .map(|to| {
                let mut m = template.clone();
                m.set_attr("to", to.jid.as_shared().clone());
                m
            })
            .collect();
        Ok((copies, archived))
    }

    /// A private message from an occupant to the occupant `nick`.
    pub fn private(
        &self,
        jid: &Jid,
        nick: &str,
        message: &Element,
    ) -> Result<Vec<Element>, Box<StanzaError>> {
        let Some(from) = self.occupant(jid) else {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "only occupants send private messages",
            ));
        };
        let Some(to) = self.by_nick(nick) else {
            return Err(refuse(
                DefinedCondition::ItemNotFound,
                "no occupant has that nick",
            ));
        };
        let mut m = message.clone();
        m.set_attr("from", self.nick_jid(&from.nick).to_string());
        m.set_attr("to", to.jid.to_string());
        if !m.has_child("x", NS_USER) {
            m.append_child(Element::bare("x", NS_USER));
        }
        Ok(vec![m])
    }

    /// A mediated invitation (`<invite to='…'/>`) from `jid`: passed on to the invitee,
    /// who becomes a member of a members-only room.
    pub fn invite(
        &mut self,
        jid: &Jid,
        invitee: &Jid,
        reason: Option<String>,
    ) -> Result<(Vec<Element>, bool), Box<StanzaError>> {
        let Some(from) = self.occupant(jid) else {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "only occupants invite",
            ));
        };
        if self.config.members_only
            && !self.config.allow_invites
            && from.affiliation < Affiliation::Admin
        {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "only admins and owners invite to this room",
            ));
        }
        let mut made_member = false;
        if self.config.members_only && self.affiliation(invitee.bare_str()) < Affiliation::Member {
            self.affiliations
                .insert(invitee.bare_str().to_string(), Affiliation::Member);
            made_member = true;
        }
        let mut invite =
            Element::builder("invite", NS_USER).attr("from", jid.to_bare().to_string());
        if let Some(r) = &reason {
            invite = invite.child(Element::builder("reason", NS_USER).text(r.clone()).build());
        }
        let mut x = Element::builder("x", NS_USER).child(invite.build());
        if let Some(p) = &self.config.password {
            x = x.child(
                Element::builder("password", NS_USER)
                    .text(p.clone())
                    .build(),
            );
        }
        let mut direct = Element::builder("x", NS_CONFERENCE).attr("jid", self.jid.to_string());
        if let Some(r) = reason {
            direct = direct.attr("reason", r);
        }
        if let Some(p) = &self.config.password {
            direct = direct.attr("password", p.clone());
        }
        let m = Element::builder("message", ns::JABBER_CLIENT)
            .attr("from", self.jid.to_string())
            .attr("to", invitee.to_string())
            .child(x.build())
            .child(direct.build())
            .build();
        Ok((vec![m], made_member))
    }

    /// A declined invitation, passed on to the inviter.
    pub fn decline(&self, jid: &Jid, inviter: &Jid, reason: Option<String>) -> Vec<Element> {
        let mut decline =
            Element::builder("decline", NS_USER).attr("from", jid.to_bare().to_string());
        if let Some(r) = reason {
            decline = decline.child(Element::builder("reason", NS_USER).text(r).build());
        }
        vec![
            Element::builder("message", ns::JABBER_CLIENT)
                .attr("from", self.jid.to_string())
                .attr("to", inviter.to_string())
                .child(
                    Element::builder("x", NS_USER)
                        .child(decline.build())
                        .build(),
                )
                .build(),
        ]
    }

    fn actor(&self, actor: &Jid) -> Result<Occupant, Box<StanzaError>> {
        self.occupant(actor).cloned().ok_or_else(|| {
            refuse(
                DefinedCondition::Forbidden,
                "only occupants moderate this room",
            )
        })
    }

    /// A moderator sets the role of the occupant `nick`: `none` kicks (`307`), `visitor`
    /// and `participant` take or give voice, `moderator` (by an admin or owner) makes a
    /// moderator.
    pub fn set_role(
        &mut self,
        actor: &Jid,
        nick: &str,
        role: Role,
        reason: Option<String>,
    ) -> Result<Vec<Element>, Box<StanzaError>> {
        let a = self.actor(actor)?;
        if a.role != Role::Moderator {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "only moderators change roles",
            ));
        }
        let Some(i) = self.occupants.iter().position(|o| o.nick == nick) else {
            return Err(refuse(
                DefinedCondition::ItemNotFound,
                "no occupant has that nick",
            ));
        };
        let target = self.occupants[i].clone();
        // Nobody kicks a higher affiliation (§8.2); nobody takes voice or moderation from an
        // admin or owner (§8.4, §9.7).
        if target.affiliation > a.affiliation && target.jid != a.jid {
            return Err(refuse(
                DefinedCondition::NotAllowed,
                "an occupant of a higher affiliation keeps its role",
            ));
        }
        if target.affiliation >= Affiliation::Admin
            && matches!(role, Role::Visitor | Role::Participant)
        {
            return Err(refuse(
                DefinedCondition::NotAllowed,
                "admins and owners keep their voice and moderation",
            ));
        }
        if (role == Role::Moderator || target.role == Role::Moderator)
            && a.affiliation < Affiliation::Admin
            && target.jid != a.jid
        {
            return Err(refuse(
                DefinedCondition::NotAllowed,
                "only admins and owners grant or revoke moderation",
            ));
        }
        let extra = reason_and_actor(&a.nick, reason);
        if role == Role::None {
            self.occupants.remove(i);
            return Ok(self.broadcast_presence(&target, true, &[307], &extra));
        }
        self.occupants[i].role = role;
        let o = self.occupants[i].clone();
        Ok(self.broadcast_presence(&o, false, &[], &extra))
    }

    /// An admin or owner sets the affiliation of `bare`: `outcast` bans (`301`, out of the
    /// room), `none` in a members-only room removes (`321`), others change the occupant's
    /// role to match. Gives the stanzas and whether the affiliations changed.
    pub fn set_affiliation(
        &mut self,
        actor: &Jid,
        bare: &Jid,
        affiliation: Affiliation,
        reason: Option<String>,
    ) -> Result<Vec<Element>, Box<StanzaError>> {
        let actor_aff = self.affiliation(actor.bare_str());
        let current = self.affiliation(bare.bare_str());
        let needs = if affiliation >= Affiliation::Admin || current >= Affiliation::Admin {
            Affiliation::Owner
        } else {
            Affiliation::Admin
        };
        if actor_aff < needs {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "only admins change affiliations, and only owners those of admins and owners",
            ));
        }
        if current == Affiliation::Owner
            && affiliation != Affiliation::Owner
            && self
                .affiliations
                .values()
                .filter(|a| **a == Affiliation::Owner)
                .count()
                == 1
        {
            return Err(refuse(
                DefinedCondition::Conflict,
                "a room keeps at least one owner",
            ));
        }
        if affiliation == Affiliation::None {
            self.affiliations.remove(bare.bare_str());
        } else {
            self.affiliations
                .insert(bare.bare_str().to_string(), affiliation);
        }
        let nick = self
            .occupant(actor)
            .map(|o| o.nick.clone())
            .unwrap_or_default();
        let extra = reason_and_actor(&nick, reason);
        let mut out = Vec::new();
        let present: Vec<usize> = self
            .occupants
            .iter()
            .enumerate()
            .filter(|(_, o)| o.jid.bare_str() == bare.bare_str())
            .map(|(i, _)| i)
            .collect();
        for i in present.into_iter().rev() {
            let mut o = self.occupants[i].clone();
            o.affiliation = affiliation;
            let removed = match affiliation {
                Affiliation::Outcast => Some(301),
                Affiliation::None if self.config.members_only => Some(321),
                _ => None,
            };
            if let Some(code) = removed {
                self.occupants.remove(i);
                out.extend(self.broadcast_presence(&o, true, &[code], &extra));
            } else {
                o.role = affiliation.default_role(self.config.moderated);
                self.occupants[i] = o.clone();
                out.extend(self.broadcast_presence(&o, false, &[], &extra));
            }
        }
        Ok(out)
    }

    /// The items of an admin list query: occupants by role, or affiliations by kind.
    pub fn list(
        &self,
        actor: &Jid,
        role: Option<Role>,
        aff: Option<Affiliation>,
    ) -> Result<Vec<Element>, Box<StanzaError>> {
        let a = self.affiliation(actor.bare_str());
        let moderator = self
            .occupant(actor)
            .is_some_and(|o| o.role == Role::Moderator);
        match (role, aff) {
            (Some(r), None) => {
                if !moderator {
                    return Err(refuse(
                        DefinedCondition::Forbidden,
                        "only moderators list roles",
                    ));
                }
                Ok(self
                    .occupants
                    .iter()
                    .filter(|o| o.role == r)
                    .map(|o| {
                        Element::builder("item", crate::NS_ADMIN)
                            .attr("nick", o.nick.clone())
                            .attr("role", o.role.as_str())
                            .attr("affiliation", o.affiliation.as_str())
                            .attr("jid", o.jid.to_string())
                            .build()
                    })
                    .collect())
            }
            (None, Some(f)) => {
                let needs = if f >= Affiliation::Admin {
                    Affiliation::Owner
                } else {
                    Affiliation::Admin
                };
                if a < needs && !(f == Affiliation::Member && moderator) {
                    return Err(refuse(
                        DefinedCondition::Forbidden,
                        "you may not see that list",
                    ));
                }
                Ok(self
                    .affiliations
                    .iter()
                    .filter(|(_, x)| **x == f)
                    .map(|(j, x)| {
                        Element::builder("item", crate::NS_ADMIN)
                            .attr("jid", j.clone())
                            .attr("affiliation", x.as_str())
                            .build()
                    })
                    .collect())
            }
            _ => Err(refuse(
                DefinedCondition::BadRequest,
                "ask by role or by affiliation",
            )),
        }
    }

    /// The room is destroyed: everyone leaves, told why (and where to go, if said).
    pub fn destroy(&mut self, reason: Option<String>, alternate: Option<String>) -> Vec<Element> {
        let mut d = Element::builder("destroy", NS_USER);
        if let Some(j) = alternate {
            d = d.attr("jid", j);
        }
        if let Some(r) = reason {
            d = d.child(Element::builder("reason", NS_USER).text(r).build());
        }
        let d = d.build();
        let occupants = std::mem::take(&mut self.occupants);
        occupants
            .iter()
            .map(|o| {
                let mut p = self.presence_of(o, o, true, &[110], &[]);
                if let Some(x) = p.get_child_mut("x", NS_USER) {
                    x.append_child(d.clone());
                }
                p
            })
            .collect()
    }

    /// The configuration changed from `before`: a status message to every occupant (`172`
    /// or `173` when real addresses became visible or hidden, `104` otherwise), and, when
    /// the room became members-only, the non-members out (`322`).
    pub fn reconfigured(&mut self, before: &RoomConfig) -> Vec<Element> {
        let mut out = Vec::new();
        if self.config.members_only && !before.members_only {
            let gone: Vec<Occupant> = self
                .occupants
                .iter()
                .filter(|o| o.affiliation < Affiliation::Member)
                .cloned()
                .collect();
            for o in gone {
                self.occupants.retain(|x| x.jid != o.jid);
                out.extend(self.broadcast_presence(&o, true, &[322], &[]));
            }
        }
        let code = match (before.whois, self.config.whois) {
            (Whois::Moderators, Whois::Anyone) => 172,
            (Whois::Anyone, Whois::Moderators) => 173,
            _ => 104,
        };
        for to in &self.occupants {
            out.push(
                Element::builder("message", ns::JABBER_CLIENT)
                    .attr("type", "groupchat")
                    .attr("from", self.jid.to_string())
                    .attr("to", to.jid.to_string())
                    .child(Element::builder("x", NS_USER).child(status(code)).build())
                    .build(),
            );
        }
        out
    }

    /// Whether nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }
}

fn reason_and_actor(actor_nick: &str, reason: Option<String>) -> Vec<Element> {
    let mut v = Vec::new();
    if !actor_nick.is_empty() {
        v.push(
            Element::builder("actor", NS_USER)
                .attr("nick", actor_nick.to_string())
                .build(),
        );
    }
    if let Some(r) = reason {
        v.push(Element::builder("reason", NS_USER).text(r).build());
    }
    v
}
