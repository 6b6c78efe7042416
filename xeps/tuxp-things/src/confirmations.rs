//! Nodes waiting for an operator's confirmation before their gateway may add them
//! (reference §3.5, `NodeConfirmation`): the concentrator module holds a gateway's
//! `add-node` open and waits here; an operator's `confirm-concentration` (the operator
//! module) ends the wait. In memory: a wait is an iq in flight, which a restart ends anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Nodes waiting at once, at most; past it an `add-node` that needs confirmation is refused
/// (`resource-constraint`).
pub const MAX_WAITING: usize = 1_024;

/// A node waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The gateway's thing name.
    pub gateway: String,
    /// The node's thing id.
    pub node_thing_id: String,
    /// The LAN id the gateway asks for.
    pub lan_id: u8,
    /// The account that authorized the node (its owner-to-be).
    pub owner: String,
    /// When the wait ends (milliseconds since the Unix epoch).
    pub expires_ms: i64,
}

/// Why a wait did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// [`MAX_WAITING`] nodes wait already.
    #[error("too many nodes wait for confirmation")]
    Full,
    /// This gateway already waits for this node.
    #[error("this node already waits for confirmation")]
    Already,
}

type Key = (String, String);

/// The waits, shared by the concentrator and operator modules (`ServerHandle::shared`).
#[derive(Debug, Default)]
pub struct Confirmations {
    waiting: Mutex<HashMap<Key, (Waiting, oneshot::Sender<String>)>>,
}

impl Confirmations {
    /// The server's.
    pub fn of(server: &lithos_server::ServerHandle) -> Arc<Confirmations> {
        server.shared::<Confirmations>()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Waiting, oneshot::Sender<String>)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts waiting; the receiver gets the confirming operator's account.
    pub fn wait(&self, w: Waiting) -> Result<oneshot::Receiver<String>, WaitError> {
        let mut map = self.lock();
        // Waits whose gateway stopped waiting (its iq timed out, its session ended).
        map.retain(|_, (_, tx)| !tx.is_closed());
        let key = (w.gateway.clone(), w.node_thing_id.clone());
        if map.contains_key(&key) {
            return Err(WaitError::Already);
        }
        if map.len() >= MAX_WAITING {
            return Err(WaitError::Full);
        }
        let (tx, rx) = oneshot::channel();
        map.insert(key, (w, tx));
        Ok(rx)
    }

    /// `operator` confirms `gateway`'s node `node_thing_id`; `false` if nothing waits.
    pub fn confirm(&self, gateway: &str, node_thing_id: &str, operator: &str) -> bool {
        let entry = self
            .lock()
            .remove(&(gateway.to_string(), node_thing_id.to_string()));
        match entry {
            Some((_, tx)) => tx.send(operator.to_string()).is_ok(),
            None => false,
        }
    }

    /// Ends a wait without confirmation (its time ran out).
    pub fn withdraw(&self, gateway: &str, node_thing_id: &str) {
        self.lock()
            .remove(&(gateway.to_string(), node_thing_id.to_string()));
    }

    /// What waits, oldest expiry first.
    pub fn list(&self) -> Vec<Waiting> {
        let mut v: Vec<Waiting> = self
            .lock()
            .values()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(w, _)| w.clone())
            .collect();
        v.sort_by_key(|w| w.expires_ms);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(node: &str) -> Waiting {
        Waiting {
            gateway: "lgw-01-0a0a0a0a".into(),
            node_thing_id: node.into(),
            lan_id: 5,
            owner: "alice".into(),
            expires_ms: 1,
        }
    }

    #[tokio::test]
    async fn a_wait_ends_once() {
        let c = Confirmations::default();
        let rx = c.wait(w("SL-01-00000001")).unwrap();
        assert_eq!(c.wait(w("SL-01-00000001")).unwrap_err(), WaitError::Already);
        assert_eq!(c.list().len(), 1);
        assert!(!c.confirm("lgw-01-0a0a0a0a", "SL-01-00000002", "bob"));
        assert!(c.confirm("lgw-01-0a0a0a0a", "SL-01-00000001", "bob"));
        assert_eq!(rx.await.unwrap(), "bob");
        assert!(
            !c.confirm("lgw-01-0a0a0a0a", "SL-01-00000001", "bob"),
            "once"
        );
        assert!(c.list().is_empty());
    }

    #[test]
    fn abandoned_waits_go_and_the_table_is_bounded() {
        let c = Confirmations::default();
        let rx = c.wait(w("SL-01-00000001")).unwrap();
        drop(rx);
        assert!(c.list().is_empty(), "the gateway stopped waiting");
        let mut keep = Vec::new();
        for i in 0..MAX_WAITING {
            keep.push(c.wait(w(&format!("SL-01-{i:08X}"))).unwrap());
        }
        assert_eq!(c.wait(w("SL-01-FFFFFFFF")).unwrap_err(), WaitError::Full);
        c.withdraw("lgw-01-0a0a0a0a", "SL-01-00000000");
        assert!(c.wait(w("SL-01-FFFFFFFF")).is_ok());
    }
}
