//! The archive's writer: one task takes entries from a bounded queue and writes them in
//! batches (one transaction each), checking on the way that the account exists and, for
//! accounts that archive only their roster, that the peer is in it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use lithos_server::ServerHandle;
use tokio::sync::{mpsc, watch};

use crate::store::{ArchiveStore, Entry};

/// The most entries written in one transaction.
const BATCH: usize = 512;
/// How long the writer waits for more entries before writing a batch that is not full.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// A message waiting to be archived.
pub(crate) struct Job {
    pub(crate) entry: Entry,
    /// The account archives only its roster's messages: look the peer up first.
    pub(crate) roster_only: bool,
}

/// The writer's queue.
pub(crate) struct Archiver {
    tx: mpsc::Sender<Job>,
    dropped: AtomicU64,
    /// Entries queued, and entries the writer is done with (written, or skipped): a query
    /// waits until the writer caught up with what was queued before it.
    queued: AtomicU64,
    done: watch::Receiver<u64>,
}

/// How long a query waits for the writer to catch up before it reads what is there.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

impl Archiver {
    /// Starts the writer for `server`, with at most `max_queue` entries waiting.
    pub(crate) fn start(server: &ServerHandle, max_queue: usize) -> Archiver {
        let (tx, rx) = mpsc::channel(max_queue.max(1));
        let (done_tx, done) = watch::channel(0);
        tokio::spawn(write_loop(server.clone(), rx, done_tx));
        Archiver {
            tx,
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            done,
        }
    }

    /// Waits (at most [`SETTLE`]) until what was queued so far is written, so that a client
    /// that received a message and then queries its archive finds it there.
    pub(crate) async fn settled(&self) {
        let target = self.queued.load(Ordering::Acquire);
        let mut done = self.done.clone();
        let _ = tokio::time::timeout(SETTLE, done.wait_for(|d| *d >= target)).await;
    }

    /// Queues a message; when the queue is full it is not archived (logged, counted).
    pub(crate) fn push(&self, job: Job) {
        if self.tx.try_send(job).is_ok() {
            self.queued.fetch_add(1, Ordering::Release);
        } else {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "the archive's queue is full; messages go unarchived"
                );
            }
        }
    }
}

async fn write_loop(server: ServerHandle, mut rx: mpsc::Receiver<Job>, done: watch::Sender<u64>) {
    let store = ArchiveStore::of(&server);
    let rosters = lithos_roster::store::Rosters::of(&server);
    // Accounts seen to exist, forgotten every minute (an account deleted meanwhile stops
    // being archived within that time).
    let mut known: HashSet<String> = HashSet::new();
    let mut known_since = tokio::time::Instant::now();
    let mut stop = server.shutdown_signal();
    loop {
        if known_since.elapsed() > std::time::Duration::from_secs(60) || known.len() > 10_000 {
            known.clear();
            known_since = tokio::time::Instant::now();
        }
        let first = tokio::select! {
            j = rx.recv() => match j {
                Some(j) => j,
                None => return,
            },
            _ = stop.changed() => {
                // Write what is queued, then stop.
                rx.close();
                match rx.recv().await {
                    Some(j) => j,
                    None => return,
                }
            }
        };
        // Gather a batch: what waits, and what comes within LINGER. Every commit costs the
        // same whatever its size (a WAL append and an fsync), and delivery never waits for
        // the archive, so a few milliseconds buy far fewer commits.
        let mut jobs = vec![first];
        let until = tokio::time::Instant::now() + LINGER;
        while jobs.len() < BATCH {
            tokio::select! {
                j = rx.recv() => match j {
                    Some(j) => jobs.push(j),
                    None => break,
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        let taken = jobs.len() as u64;
        let mut batch = Vec::with_capacity(jobs.len());
        for j in jobs {
            let user = j.entry.username.clone();
            // A room's archive (its bare JID, where an account has a name alone): the room
            // checked what it archives.
            let room = user.contains('@');
            if !room && !known.contains(&user) {
                match server.storage().accounts.account_exists(&user).await {
                    Ok(true) => {
                        known.insert(user.clone());
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "archive: cannot check an account");
                        continue;
                    }
                }
            }
            if j.roster_only {
                let in_roster = rosters
                    .roster_item(&user, &j.entry.peer)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                if !in_roster {
                    continue;
                }
            }
            batch.push(j.entry);
        }
        if !batch.is_empty()
            && let Err(e) = store.insert(batch).await
        {
            tracing::error!(error = %e, "archive: a batch could not be written");
        }
        done.send_modify(|d| *d += taken);
    }
}
