//! The network and its radios.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::seed::{Purpose, draw};
use crate::{Address, Conditions, MAX_FRAME, RECEIVE_BUFFER};

/// Why a frame was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadioError {
    /// Longer than [`MAX_FRAME`] bytes: a module would cut it.
    #[error("a frame of {0} bytes is longer than the radio's {MAX_FRAME}")]
    TooLong(usize),
    /// Nothing to send.
    #[error("an empty frame")]
    Empty,
    /// The network (served by another process) is gone.
    #[error("the simulated air is gone")]
    Gone,
}

/// What the network did with the frames sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames radios sent.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Copies that reached a receiver's buffer (duplicates included).
    pub delivered: u64,
    /// Copies a receiver missed (loss).
    pub lost: u64,
    /// Extra copies the air made (duplication).
    pub duplicated: u64,
    /// Copies dropped because the receiver's buffer was full.
    pub overrun: u64,
    /// Sends that waited for the duty cycle.
    pub throttled: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    delivered: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    overrun: AtomicU64,
    throttled: AtomicU64,
}

struct Tuned {
    address: Address,
    tx: mpsc::Sender<Bytes>,
}

struct State {
    conditions: Conditions,
    radios: HashMap<u64, Tuned>,
    next_id: u64,
}

struct Shared {
    seed: u64,
    state: Mutex<State>,
    counters: Counters,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A simulated radio network: the air shared by every [`Radio`] made from it. Cloning gives
/// another handle to the same network.
#[derive(Clone)]
pub struct RadioNetwork {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RadioNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadioNetwork")
            .field("seed", &self.shared.seed)
            .field("radios", &self.shared.state().radios.len())
            .finish()
    }
}

impl RadioNetwork {
    /// A network whose random decisions all derive from `seed`.
    ///
    /// # Panics
    ///
    /// If `conditions` are invalid ([`Conditions::validate`]).
    pub fn new(seed: u64, conditions: Conditions) -> RadioNetwork {
        if let Err(e) = conditions.validate() {
            panic!("radio conditions: {e}");
        }
        RadioNetwork {
            shared: Arc::new(Shared {
                seed,
                state: Mutex::new(State {
                    conditions,
                    radios: HashMap::new(),
                    next_id: 0,
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// A new radio tuned to `address`.
    pub fn radio(&self, address: Address) -> Radio {
        let (tx, rx) = mpsc::channel(RECEIVE_BUFFER);
        let mut st = self.shared.state();
        let id = st.next_id;
        st.next_id += 1;
        st.radios.insert(id, Tuned { address, tx });
        Radio {
            id,
            shared: self.shared.clone(),
            rx,
            frames: AtomicU64::new(0),
            budget: Mutex::new(None),
        }
    }

    /// Changes the conditions for the frames sent from now on.
    pub fn set_conditions(&self, conditions: Conditions) -> Result<(), String> {
        conditions.validate()?;
        self.shared.state().conditions = conditions;
        Ok(())
    }

    /// The current conditions.
    pub fn conditions(&self) -> Conditions {
        self.shared.state().conditions.clone()
    }

    /// What happened to the frames so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            sent: l(&c.sent),
            sent_bytes: l(&c.sent_bytes),
            delivered: l(&c.delivered),
            lost: l(&c.lost),
            duplicated: l(&c.duplicated),
            overrun: l(&c.overrun),
            throttled: l(&c.throttled),
        }
    }
}

/// Air time left to a radio under a duty cycle: a token bucket of seconds.
struct Budget {
    seconds: f64,
    at: Instant,
}

/// One radio: it sends to an address and receives what reaches its own. Dropping it takes
/// it off the air.
pub struct Radio {
    id: u64,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Bytes>,
    /// Frames this radio sent, the index of each draw.
    frames: AtomicU64,
    budget: Mutex<Option<Budget>>,
}

impl std::fmt::Debug for Radio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Radio")
            .field("address", &self.address())
            .finish()
    }
}

impl Radio {
    /// Where the radio listens.
    pub fn address(&self) -> Address {
        self.shared
            .state()
            .radios
            .get(&self.id)
            .map(|t| t.address)
            .unwrap_or(Address::new(0, 0, 0))
    }

    /// Tunes the radio to another address (a node configured by LoRa-DAC moves from
    /// `EF EE 1F` to its allocated address). Frames already in its buffer stay.
    pub fn set_address(&self, address: Address) {
        if let Some(t) = self.shared.state().radios.get_mut(&self.id) {
            t.address = address;
        }
    }

    /// Sends `payload` to `to`: every other radio `to` reaches gets it, each after the
    /// network's delay, unless the air loses it; some get it twice. Under a duty cycle, waits
    /// first until the radio may be on air again.
    pub async fn send(&self, to: Address, payload: &[u8]) -> Result<(), RadioError> {
        if payload.is_empty() {
            return Err(RadioError::Empty);
        }
        if payload.len() > MAX_FRAME {
            return Err(RadioError::TooLong(payload.len()));
        }
        let conditions = self.shared.state().conditions.clone();
        let airtime = conditions.airtime(payload.len());
        if let Some(duty) = conditions.duty_cycle {
            let wait = self.spend(airtime, duty.fraction, duty.window);
            if !wait.is_zero() {
                self.shared
                    .counters
                    .throttled
                    .fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
        }
        let frame = self.frames.fetch_add(1, Ordering::Relaxed);
        let c = &self.shared.counters;
        c.sent.fetch_add(1, Ordering::Relaxed);
        c.sent_bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let targets: Vec<(u64, mpsc::Sender<Bytes>)> = self
            .shared
            .state()
            .radios
            .iter()
            .filter(|(id, t)| **id != self.id && to.reaches(t.address))
            .map(|(id, t)| (*id, t.tx.clone()))
            .collect();
        let bytes = Bytes::copy_from_slice(payload);
        let seed = self.shared.seed;
        for (receiver, tx) in targets {
            if draw(seed, self.id, frame, receiver, Purpose::Loss) < conditions.loss {
                c.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let copies = 1 + usize::from(
                draw(seed, self.id, frame, receiver, Purpose::Duplicate) < conditions.duplication,
            );
            if copies > 1 {
                c.duplicated.fetch_add(1, Ordering::Relaxed);
            }
            let jitter =
                conditions
                    .jitter
                    .mul_f64(draw(seed, self.id, frame, receiver, Purpose::Jitter));
            let delay = conditions.delay + airtime + jitter;
            if delay.is_zero() {
                for _ in 0..copies {
                    deliver(&self.shared, &tx, bytes.clone());
                }
            } else {
                let (shared, bytes) = (self.shared.clone(), bytes.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    for _ in 0..copies {
                        deliver(&shared, &tx, bytes.clone());
                    }
                });
            }
        }
        Ok(())
    }

    /// Takes `airtime` from the duty-cycle budget; returns how long to wait first.
    fn spend(&self, airtime: Duration, fraction: f64, window: Duration) -> Duration {
        let capacity = fraction * window.as_secs_f64();
        let now = Instant::now();
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let budget = b.get_or_insert(Budget {
            seconds: capacity,
            at: now,
        });
        budget.seconds =
            (budget.seconds + (now - budget.at).as_secs_f64() * fraction).min(capacity);
        budget.at = now;
        let need = airtime.as_secs_f64();
        let wait = if budget.seconds >= need {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((need - budget.seconds) / fraction)
        };
        // A debt while it waits: the next send waits for this one's air time too.
        budget.seconds -= need;
        wait
    }

    /// The next frame that reached this radio.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// A frame already received, if any.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }
}

fn deliver(shared: &Shared, tx: &mpsc::Sender<Bytes>, bytes: Bytes) {
    let c = &shared.counters;
    match tx.try_send(bytes) {
        Ok(()) => c.delivered.fetch_add(1, Ordering::Relaxed),
        // Full, or the radio is gone: the frame is lost to it.
        Err(_) => c.overrun.fetch_add(1, Ordering::Relaxed),
    };
}

impl Drop for Radio {
    fn drop(&mut self) {
        self.shared.state().radios.remove(&self.id);
    }
}
