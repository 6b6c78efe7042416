//! Bound client sessions: who is connected, their presence, and their outbound queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lithos_core::{Element, Jid, StreamError, WireFormat};

pub use crate::outbox::{MAX_STORED_IN_FLIGHT, Receipt, StoredRefused};
use crate::outbox::{Outbox, Refused};

/// A session's identity, shared with modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Unique for the life of the server.
    pub id: u64,
    /// The bound full JID.
    pub jid: Jid,
    /// Whether the stream is encrypted.
    pub tls: bool,
    /// XML or BXMPP.
    pub format: WireFormat,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The listener it came through.
    pub listener: Listener,
}

/// Which kind of listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// `[c2s]`: people's clients and applications.
    Client,
    /// `[things]`: devices and gateways.
    Thing,
}

/// Instructions for a session's connection task other than stanzas.
#[derive(Debug)]
pub(crate) enum Control {
    /// Close the stream with this error.
    Close(StreamError),
    /// Write what is already queued for the session, then close with this error.
    CloseAfterQueued(StreamError),
    /// A new connection resumes the session (XEP-0198): leave it, without ending it, to the
    /// connection that asked.
    Detach,
}

/// What the router knows of a session's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PresenceState {
    /// The session sent available presence (and not unavailable since).
    pub available: bool,
    /// The priority of its last available presence.
    pub priority: i8,
}

struct Entry {
    info: SessionInfo,
    outbox: Arc<Outbox>,
    presence: PresenceState,
    marks: Vec<&'static str>,
}

/// The outcome of queueing a stanza for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued.
    Queued,
    /// No such session.
    NoSession,
    /// The session's queue is full (`[c2s] outbound_queue`): its client reads slower than
    /// stanzas arrive. The stanza was not queued; the session goes on (a client that stops
    /// reading altogether is closed by the write timeout).
    Full,
}

/// An account has as many sessions as `[limits] max_resources_per_account` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyResources;

/// The session table, keyed by bare JID.
#[derive(Default)]
pub struct Sessions {
    map: RwLock<HashMap<String, Vec<Entry>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.count())
            .finish()
    }
}

impl Sessions {
    /// A fresh session id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<Entry>>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<Entry>>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session. If another session had the same full JID, it is removed and told
    /// to close with `<conflict/>` (RFC 6120 §7.7.2.2: the new session wins). Refused
    /// (`Err(TooManyResources)`) when the account already has `max_resources` sessions and
    /// this is not one of their resources (RFC 6120 §7.6.2.1: `resource-constraint`).
    pub(crate) fn bind(
        &self,
        info: SessionInfo,
        outbox: Arc<Outbox>,
        max_resources: usize,
    ) -> Result<Option<SessionInfo>, TooManyResources> {
        let mut map = self.write();
        let list = map.entry(info.jid.bare_str().to_string()).or_default();
        let replaced = list
            .iter()
            .position(|e| e.info.jid == info.jid)
            .map(|i| list.remove(i));
        if replaced.is_none() && list.len() >= max_resources {
            if list.is_empty() {
                map.remove(info.jid.bare_str());
            }
            return Err(TooManyResources);
        }
        list.push(Entry {
            info,
            outbox,
            presence: PresenceState::default(),
            marks: Vec::new(),
        });
        drop(map);
        Ok(replaced.map(|old| {
            old.outbox.control(Control::Close(
                StreamError::new(lithos_core::StreamErrorCondition::Conflict)
                    .with_text("another session bound the same resource"),
            ));
            old.info
        }))
    }

    /// Removes a session (if it is still the one bound; a replaced session does nothing).
    /// Returns its last presence. Once it returns, nothing more is queued for the session
    /// (queueing happens under the table's lock), so its connection task can close the outbox
    /// and re-route what is left in it.
    pub(crate) fn unbind(&self, info: &SessionInfo) -> Option<PresenceState> {
        let mut map = self.write();
        let key = info.jid.bare_str();
        let list = map.get_mut(key)?;
        let i = list.iter().position(|e| e.info.id == info.id)?;
        let e = list.remove(i);
        if list.is_empty() {
            map.remove(key);
        }
        Some(e.presence)
    }

    /// Whether a session is bound to the full JID `full`.
    pub fn has_session(&self, full: &Jid) -> bool {
        self.read()
            .get(full.bare_str())
            .is_some_and(|l| l.iter().any(|e| e.info.jid == *full))
    }

    /// True while the session `info` is bound (not ended, not replaced by another bound to
    /// the same resource).
    pub fn is_bound(&self, info: &SessionInfo) -> bool {
        self.read()
            .get(info.jid.bare_str())
            .is_some_and(|l| l.iter().any(|e| e.info.id == info.id))
    }

    /// Records a session's presence; returns the previous state.
    pub fn set_presence(
        &self,
        info: &SessionInfo,
        presence: PresenceState,
    ) -> Option<PresenceState> {
        let mut map = self.write();
        let e = map
            .get_mut(info.jid.bare_str())?
            .iter_mut()
            .find(|e| e.info.id == info.id)?;
        Some(std::mem::replace(&mut e.presence, presence))
    }

    /// Tags a session (for example, a roster module marks the sessions that asked for the
    /// roster, which then get roster pushes). Marks end with the session.
    pub fn mark(&self, info: &SessionInfo, tag: &'static str) {
        let mut map = self.write();
        if let Some(e) = map
            .get_mut(info.jid.bare_str())
            .and_then(|l| l.iter_mut().find(|e| e.info.id == info.id))
            && !e.marks.contains(&tag)
        {
            e.marks.push(tag);
        }
    }

    /// Removes a mark from a session.
    pub fn unmark(&self, info: &SessionInfo, tag: &'static str) {
        let mut map = self.write();
        if let Some(e) = map
            .get_mut(info.jid.bare_str())
            .and_then(|l| l.iter_mut().find(|e| e.info.id == info.id))
        {
            e.marks.retain(|m| *m != tag);
        }
    }

    /// Whether any session of an account carries a mark (cheaper than [`marked`](Self::marked)).
    pub fn any_marked(&self, bare: &str, tag: &'static str) -> bool {
        self.read()
            .get(bare)
            .is_some_and(|l| l.iter().any(|e| e.marks.contains(&tag)))
    }

    /// The sessions of an account that carry a mark.
    pub fn marked(&self, bare: &str, tag: &'static str) -> Vec<SessionInfo> {
        self.read()
            .get(bare)
            .map(|l| {
                l.iter()
                    .filter(|e| e.marks.contains(&tag))
                    .map(|e| e.info.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The sessions of an account with their presence.
    pub fn resources(&self, bare: &str) -> Vec<(SessionInfo, PresenceState)> {
        self.read()
            .get(bare)
            .map(|l| l.iter().map(|e| (e.info.clone(), e.presence)).collect())
            .unwrap_or_default()
    }

    /// Up to `max` sessions of all accounts with their presence, by account.
    pub fn all(&self, max: usize) -> Vec<(SessionInfo, PresenceState)> {
        let map = self.read();
        let mut v: Vec<_> = map
            .values()
            .flat_map(|l| l.iter().map(|e| (e.info.clone(), e.presence)))
            .take(max)
            .collect();
        v.sort_by(|a, b| a.0.jid.as_str().cmp(b.0.jid.as_str()));
        v
    }

    /// True when the account has at least one session.
    pub fn is_online(&self, bare: &str) -> bool {
        self.read().contains_key(bare)
    }

    /// The session bound to a full JID.
    pub fn get(&self, full: &Jid) -> Option<(SessionInfo, PresenceState)> {
        self.read()
            .get(full.bare_str())?
            .iter()
            .find(|e| e.info.jid == *full)
            .map(|e| (e.info.clone(), e.presence))
    }

    /// Queues a stanza for the session bound to `full`; gives the stanza back, with the
    /// reason ([`Delivery::NoSession`] or [`Delivery::Full`]), when it was not queued, so the
    /// caller can route it elsewhere without having copied it.
    pub fn send_or_return(&self, full: &Jid, stanza: Element) -> Result<(), (Delivery, Element)> {
        let map = self.read();
        let Some(e) = map
            .get(full.bare_str())
            .and_then(|l| l.iter().find(|e| e.info.jid == *full))
        else {
            return Err((Delivery::NoSession, stanza));
        };
        e.outbox.push(stanza).map_err(|r| match r {
            Refused::Closed(s) => (Delivery::NoSession, s),
            Refused::Full(s) => (Delivery::Full, s),
        })
    }

    /// Queues a stanza for the session bound to `full`.
    pub fn send(&self, full: &Jid, stanza: Element) -> Delivery {
        let map = self.read();
        let Some(e) = map
            .get(full.bare_str())
            .and_then(|l| l.iter().find(|e| e.info.jid == *full))
        else {
            return Delivery::NoSession;
        };
        Self::queue(e, stanza)
    }

    /// Queues a stanza for a session by id (when the JID may have been rebound).
    pub fn send_to_id(&self, info: &SessionInfo, stanza: Element) -> Delivery {
        let map = self.read();
        let Some(e) = map
            .get(info.jid.bare_str())
            .and_then(|l| l.iter().find(|e| e.info.id == info.id))
        else {
            return Delivery::NoSession;
        };
        Self::queue(e, stanza)
    }

    /// Hands a session a batch of stanzas that a store still holds (offline messages, for
    /// example). They are written in order after what is queued; the receipt resolves once
    /// the last of them is on the socket, and fails if the session ends first, in which case
    /// none of them is re-routed: the store still has them. Refused, and the batch handed
    /// back, when the session is gone or already holds [`MAX_STORED_IN_FLIGHT`] stored
    /// stanzas. A store sends one batch,
    /// waits for its receipt, then sends the next, so its backlog is paced by how fast the
    /// client reads; [`ServerHandle::deliver_stored`](crate::ServerHandle::deliver_stored)
    /// does that.
    pub fn send_stored(
        &self,
        info: &SessionInfo,
        batch: Vec<Element>,
    ) -> Result<Receipt, (StoredRefused, Vec<Element>)> {
        let map = self.read();
        match map
            .get(info.jid.bare_str())
            .and_then(|l| l.iter().find(|e| e.info.id == info.id))
        {
            Some(e) => e.outbox.push_stored(batch),
            None => Err((StoredRefused::Gone, batch)),
        }
    }

    fn queue(e: &Entry, stanza: Element) -> Delivery {
        match e.outbox.push(stanza) {
            Ok(()) => Delivery::Queued,
            Err(Refused::Closed(_)) => Delivery::NoSession,
            Err(Refused::Full(_)) => Delivery::Full,
        }
    }

    /// Tells every session to close with `error` (shutdown).
    pub(crate) fn close_all(&self, error: &StreamError) {
        for list in self.read().values() {
            for e in list {
                e.outbox.control(Control::Close(error.clone()));
            }
        }
    }

    /// Tells every session of the account `bare` to write what is queued for it (a reply
    /// just routed, for example) and then close with `error`. Returns how many were told.
    pub fn close_account(&self, bare: &str, error: &StreamError) -> usize {
        let map = self.read();
        let Some(list) = map.get(bare) else { return 0 };
        for e in list {
            e.outbox.control(Control::CloseAfterQueued(error.clone()));
        }
        list.len()
    }

    /// Number of bound sessions.
    pub fn count(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }

    /// Sessions by listener and wire format: `[client xml, client bxmpp, thing xml, thing
    /// bxmpp]`.
    pub fn tally(&self) -> [usize; 4] {
        let mut t = [0; 4];
        for e in self.read().values().flatten() {
            let l = usize::from(e.info.listener == Listener::Thing) * 2;
            let f = usize::from(e.info.format == lithos_core::codec::WireFormat::Bxmpp);
            t[l + f] += 1;
        }
        t
    }
}

/// Shared handle type.
pub type SharedSessions = Arc<Sessions>;

#[cfg(test)]
mod tests {
    use super::*;

    fn info(s: &Sessions, jid: &str) -> SessionInfo {
        SessionInfo {
            id: s.next_id(),
            jid: Jid::new(jid).unwrap(),
            tls: true,
            format: WireFormat::Xml,
            peer: "127.0.0.1:5222".parse().unwrap(),
            listener: Listener::Client,
        }
    }

    fn control_of(o: &Outbox) -> Option<lithos_core::StreamErrorCondition> {
        match o.take(0) {
            crate::outbox::Taken::Close(e) | crate::outbox::Taken::CloseAfter(_, e) => {
                Some(e.condition)
            }
            crate::outbox::Taken::Stanzas(_) | crate::outbox::Taken::Detach => None,
        }
    }

    #[test]
    fn conflict_replaces_the_old_session() {
        let s = Sessions::default();
        let o1 = Arc::new(Outbox::new(4));
        let first = info(&s, "a@x/r");
        assert_eq!(s.bind(first.clone(), o1.clone(), 2), Ok(None));
        let second = info(&s, "a@x/r");
        assert_eq!(
            s.bind(second.clone(), Arc::new(Outbox::new(4)), 2),
            Ok(Some(first.clone()))
        );
        // Two resources at most: a third is refused, a replacement is not.
        let other = info(&s, "a@x/other");
        assert_eq!(s.bind(other, Arc::new(Outbox::new(4)), 2), Ok(None));
        let third = info(&s, "a@x/third");
        assert_eq!(
            s.bind(third, Arc::new(Outbox::new(4)), 2),
            Err(TooManyResources)
        );
        let again = info(&s, "a@x/other");
        assert!(s.bind(again.clone(), Arc::new(Outbox::new(4)), 2).is_ok());
        assert!(s.unbind(&again).is_some());
        assert_eq!(
            control_of(&o1),
            Some(lithos_core::StreamErrorCondition::Conflict)
        );
        // The replaced session's own unbind does not remove the new one.
        assert_eq!(s.unbind(&first), None);
        assert_eq!(s.count(), 1);
        assert!(s.unbind(&second).is_some());
        assert!(!s.is_online("a@x"));
    }

    #[test]
    fn a_full_queue_refuses_without_closing_the_session() {
        let s = Sessions::default();
        let o = Arc::new(Outbox::new(1));
        let a = info(&s, "a@x/r");
        s.bind(a.clone(), o.clone(), 10).unwrap();
        let el = Element::bare("message", "jabber:client");
        assert_eq!(s.send(&a.jid, el.clone()), Delivery::Queued);
        assert_eq!(s.send(&a.jid, el.clone()), Delivery::Full);
        assert!(matches!(
            s.send_or_return(&a.jid, el.clone()),
            Err((Delivery::Full, _))
        ));
        assert_eq!(control_of(&o), None, "the session is not told to close");
        assert_eq!(
            s.send(&Jid::new("a@x/other").unwrap(), el),
            Delivery::NoSession
        );
        // After the session ends, nothing is queued.
        s.unbind(&a);
        assert_eq!(
            s.send_to_id(&a, Element::bare("message", "jabber:client")),
            Delivery::NoSession
        );
        assert_eq!(
            s.send_stored(&a, vec![Element::bare("message", "jabber:client")])
                .unwrap_err()
                .0,
            StoredRefused::Gone
        );
    }
}
