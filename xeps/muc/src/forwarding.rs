//! Requests to occupants (an iq to `room/nick`, which clients send for an occupant's vCard or
//! to ping it): the room passes an occupant's request on to the occupant it names, as from
//! the sender's room address, and the answer back, so that neither learns the other's real
//! address. A vCard request goes to the occupant's bare JID, where its server answers. The
//! room keeps what it needs to route each answer: bounded ([`MAX_PENDING`],
//! `resource-constraint` beyond), and forgotten after [`PENDING_FOR`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lithos_core::Jid;

/// Requests passed on and not answered yet, at most.
pub const MAX_PENDING: usize = 4096;
/// How long the room waits for an answer before it forgets the request.
pub const PENDING_FOR: Duration = Duration::from_secs(60);

/// The id prefix of requests the room passes on.
pub const ID_PREFIX: &str = "muc-fwd-";

/// A request passed on.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Who asked (a real full JID).
    pub requester: Jid,
    /// The id it used.
    pub id: String,
    /// Where the request went (the occupant's real full JID, or its bare JID for a vCard).
    pub target: Jid,
    /// The occupant's room address, which the answer comes from.
    pub as_jid: Jid,
    at: Instant,
}

/// The requests in flight.
#[derive(Default)]
pub struct Forwards {
    pending: Mutex<(HashMap<String, Pending>, u64)>,
}

impl Forwards {
    /// Records a request; returns the id to pass it on with, `None` when too many wait.
    pub fn start(&self, requester: Jid, id: String, target: Jid, as_jid: Jid) -> Option<String> {
        let mut g = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (map, next) = &mut *g;
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.at.elapsed() < PENDING_FOR);
            if map.len() >= MAX_PENDING {
                return None;
            }
        }
        *next += 1;
        let ours = format!("{ID_PREFIX}{next}");
        map.insert(
            ours.clone(),
            Pending {
                requester,
                id,
                target,
                as_jid,
                at: Instant::now(),
            },
        );
        Some(ours)
    }

    /// The request answered by `from` under our id `id`, if it is one (and `from` is where it
    /// went); forgotten.
    pub fn finish(&self, id: &str, from: &Jid) -> Option<Pending> {
        let mut g = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let p = g.0.get(id)?;
        if p.target != *from || p.at.elapsed() >= PENDING_FOR {
            return None;
        }
        g.0.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn answers_are_matched_to_their_request_and_its_target_only() {
        let f = Forwards::default();
        let id = f
            .start(j("a@x/1"), "q1".into(), j("b@x/2"), j("room@c.x/Bob"))
            .unwrap();
        assert!(id.starts_with(ID_PREFIX));
        assert!(
            f.finish(&id, &j("mallory@x/1")).is_none(),
            "not from the target"
        );
        let p = f.finish(&id, &j("b@x/2")).expect("the target's answer");
        assert_eq!((p.requester, p.id.as_str()), (j("a@x/1"), "q1"));
        assert!(f.finish(&id, &j("b@x/2")).is_none(), "answered once");
    }

    #[test]
    fn the_table_is_bounded() {
        let f = Forwards::default();
        for i in 0..MAX_PENDING {
            assert!(
                f.start(j("a@x/1"), i.to_string(), j("b@x/2"), j("r@c.x/B"))
                    .is_some()
            );
        }
        assert!(
            f.start(j("a@x/1"), "over".into(), j("b@x/2"), j("r@c.x/B"))
                .is_none()
        );
    }
}
