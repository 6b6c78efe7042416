//! Follows between a gateway's nodes (reference §3.5, `lan-follows`): when a node tells of an
//! event another node behind the same gateway follows, the gateway passes it on over the LAN
//! itself (a `lan-notification` from LAN id 0, acknowledged and retransmitted), with no
//! round trip to the server, which does not send it again. The server lists the follows an
//! operator approved (`<lan-follows/>`), and sets them on the gateway when one changes.
//!
//! This module holds the table and what was passed on; [`crate::router::LanRouter`] sends.

use std::collections::{HashMap, HashSet, VecDeque};

use lithos_core::binary::lan::{TraceId, TraceKind};
use lithos_tuxp_concentrator::{LanFollow, MAX_LAN_FOLLOWS};

/// A node's events passed on, remembered by the node's trace id so that a copy (or a
/// retransmission while the forward to the server is retried) is not passed on twice.
pub const PASSED_WINDOW: usize = 512;

/// The follows, by (friend's LAN id, event `{ns}name`), and what was passed on lately.
#[derive(Debug, Default)]
pub struct Follows {
    table: HashMap<(u8, String), Vec<u8>>,
    count: usize,
    passed: HashSet<[u8; 5]>,
    order: VecDeque<[u8; 5]>,
}

impl Follows {
    /// Replaces the table with `follows` (at most [`MAX_LAN_FOLLOWS`]; a follow of a node by
    /// itself is skipped); how many were taken.
    pub fn set(&mut self, follows: impl IntoIterator<Item = LanFollow>) -> usize {
        self.table.clear();
        self.count = 0;
        for f in follows {
            if f.friend_lan_id == f.follower_lan_id || f.friend_lan_id == 0 {
                continue;
            }
            if self.count == MAX_LAN_FOLLOWS {
                tracing::warn!(
                    max = MAX_LAN_FOLLOWS,
                    "more follows than a gateway keeps: the rest are not routed"
                );
                break;
            }
            let followers = self.table.entry((f.friend_lan_id, f.event)).or_default();
            if !followers.contains(&f.follower_lan_id) {
                followers.push(f.follower_lan_id);
                self.count += 1;
            }
        }
        self.count
    }

    /// Whether no follow is routed (most gateways: nothing to look up per event).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table, ordered.
    pub fn all(&self) -> Vec<LanFollow> {
        let mut v: Vec<LanFollow> = self
            .table
            .iter()
            .flat_map(|((friend, event), followers)| {
                followers.iter().map(move |f| LanFollow {
                    friend_lan_id: *friend,
                    event: event.clone(),
                    follower_lan_id: *f,
                })
            })
            .collect();
        v.sort_by(|a, b| {
            (a.friend_lan_id, &a.event, a.follower_lan_id).cmp(&(
                b.friend_lan_id,
                &b.event,
                b.follower_lan_id,
            ))
        });
        v
    }

    /// The nodes following `event` (`{ns}name`) of node `friend`.
    pub fn followers(&self, friend: u8, event: &str) -> &[u8] {
        self.table
            .get(&(friend, event.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the event with the node's trace id `trace` is to be passed on now: the first
    /// time it is seen within the last [`PASSED_WINDOW`].
    pub fn first_time(&mut self, trace: &TraceId) -> bool {
        let k = trace.answer(TraceKind::Request).0;
        if !self.passed.insert(k) {
            return false;
        }
        self.order.push_back(k);
        if self.order.len() > PASSED_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.passed.remove(&old);
        }
        true
    }

    /// Forgets the follows of and by node `lan_id` (removed or reset).
    pub fn remove_node(&mut self, lan_id: u8) {
        self.table.retain(|(friend, _), followers| {
            followers.retain(|f| *f != lan_id);
            *friend != lan_id && !followers.is_empty()
        });
        self.count = self.table.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(friend: u8, event: &str, follower: u8) -> LanFollow {
        LanFollow {
            friend_lan_id: friend,
            event: event.into(),
            follower_lan_id: follower,
        }
    }

    #[test]
    fn the_table_routes_by_node_and_event() {
        let mut t = Follows::default();
        let n = t.set([
            f(3, "{s}switched", 5),
            f(3, "{s}switched", 6),
            f(3, "{s}switched", 5),
            f(3, "{s}other", 7),
            f(4, "{s}switched", 4),
        ]);
        assert_eq!(n, 3, "the repeated follow and the self-follow are not kept");
        assert_eq!(t.followers(3, "{s}switched"), &[5, 6]);
        assert_eq!(t.followers(3, "{s}other"), &[7]);
        assert!(t.followers(4, "{s}switched").is_empty());
        assert!(t.followers(5, "{s}switched").is_empty());
        t.remove_node(5);
        assert_eq!(t.followers(3, "{s}switched"), &[6]);
        t.remove_node(3);
        assert!(t.all().is_empty());
        // A set replaces the whole table.
        t.set([f(1, "{s}a", 2)]);
        t.set([f(2, "{s}a", 1)]);
        assert_eq!(t.all(), vec![f(2, "{s}a", 1)]);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = Follows::default();
        let many =
            (0..MAX_LAN_FOLLOWS + 10).map(|i| f(1 + (i % 200) as u8, &format!("{{s}}e{i}"), 250));
        assert_eq!(t.set(many), MAX_LAN_FOLLOWS);
        assert_eq!(t.all().len(), MAX_LAN_FOLLOWS);
    }

    #[test]
    fn an_event_is_passed_on_once_within_the_window() {
        let mut t = Follows::default();
        let trace = TraceId::new(3, TraceKind::Request, 1_000);
        assert!(t.first_time(&trace));
        assert!(!t.first_time(&trace));
        // The same id as an answer's is the same event.
        assert!(!t.first_time(&trace.answer(TraceKind::Response)));
        for ms in 0..PASSED_WINDOW as u32 {
            assert!(t.first_time(&TraceId::new(4, TraceKind::Request, ms)));
        }
        assert!(t.first_time(&trace), "forgotten past the window");
    }
}
