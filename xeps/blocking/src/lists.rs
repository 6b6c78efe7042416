//! The blocklists in memory: every account's, loaded at start and kept in step with the
//! table, so the routing check costs a map lookup and no database read.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use lithos_core::Jid;

use crate::blocks;

/// Every account's blocklist, by bare JID. One per server:
/// `server.shared::<Blocklists>()`.
#[derive(Debug, Default)]
pub struct Blocklists {
    map: RwLock<HashMap<String, Vec<Jid>>>,
    /// Accounts with a non-empty list: while 0, checks return at once.
    accounts: AtomicUsize,
}

impl Blocklists {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<Jid>>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the account `account` (a bare JID) blocks `sender`.
    pub fn blocks(&self, account: &str, sender: &Jid) -> bool {
        if self.accounts.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.read()
            .get(account)
            .is_some_and(|l| l.iter().any(|i| blocks(i, sender)))
    }

    /// Whether any account has a list (one atomic read).
    pub fn any(&self) -> bool {
        self.accounts.load(Ordering::Relaxed) > 0
    }

    /// Whether the account has a list at all (a cheap first check).
    pub fn has_list(&self, account: &str) -> bool {
        self.accounts.load(Ordering::Relaxed) > 0 && self.read().contains_key(account)
    }

    /// The account's list.
    pub fn list(&self, account: &str) -> Vec<Jid> {
        self.read().get(account).cloned().unwrap_or_default()
    }

    /// Replaces the account's list (empty: none).
    pub(crate) fn set(&self, account: &str, items: Vec<Jid>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if items.is_empty() {
            map.remove(account);
        } else {
            map.insert(account.to_string(), items);
        }
        self.accounts.store(map.len(), Ordering::Relaxed);
    }
}
