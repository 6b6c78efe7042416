//! Who may connect and who may try to authenticate: open connections per address and
//! unauthenticated ones in all, the delay after a failed authentication, and temporary bans of
//! addresses that keep failing. Addresses in `[limits] trusted_networks` are counted but never
//! refused, delayed or banned.
//!
//! Each accepted connection holds a `Ticket`, which gives its place back when dropped, so
//! no path out of a connection (error, panic, shutdown) leaks a count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::LimitsConfig;

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address has `max_connections_per_address` open.
    TooManyFromAddress,
    /// `max_unauthenticated_connections` are open and not authenticated yet.
    TooManyUnauthenticated,
    /// The address failed to authenticate too often and is banned for a while.
    Banned,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::TooManyFromAddress => "too many connections from this address",
            Refusal::TooManyUnauthenticated => "too many unauthenticated connections",
            Refusal::Banned => "the address is banned after failed authentications",
        })
    }
}

/// Counts of open connections, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionCounts {
    /// Every open connection.
    pub open: usize,
    /// Those not authenticated yet.
    pub unauthenticated: usize,
}

#[derive(Default)]
struct Failures {
    /// Failures in the current window.
    count: u32,
    window_start: Option<Instant>,
    last: Option<Instant>,
    banned_until: Option<Instant>,
}

#[derive(Default)]
struct State {
    counts: ConnectionCounts,
    per_address: HashMap<IpAddr, usize>,
    failures: HashMap<IpAddr, Failures>,
    /// When `failures` was last rid of what no longer counts.
    swept: Option<Instant>,
}

impl State {
    fn banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures
            .get(&ip)
            .and_then(|f| f.banned_until)
            .is_some_and(|until| until > now)
    }
}

/// See the module docs.
pub struct Admission {
    limits: LimitsConfig,
    state: Mutex<State>,
    /// Most addresses whose failures are remembered ([`MAX_FAILING`]).
    max_failing: usize,
}

/// Most addresses whose failed authentications are remembered at once. Past it, the address
/// that failed least recently is forgotten first, banned ones last, so a flood of failures
/// from ever new addresses costs bounded memory and does not lift the bans.
pub const MAX_FAILING: usize = 65_536;

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// A connection's place, given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    authenticated: bool,
}

impl Ticket {
    /// The connection authenticated: it no longer counts as unauthenticated.
    pub(crate) fn authenticated(&mut self) {
        if !self.authenticated {
            self.authenticated = true;
            let mut s = self.admission.lock();
            s.counts.unauthenticated -= 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.admission.lock();
        s.counts.open -= 1;
        if !self.authenticated {
            s.counts.unauthenticated -= 1;
        }
        if let Some(n) = s.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_address.remove(&self.ip);
            }
        }
    }
}

/// The delay before answering the first failed authentication from an address; it doubles
/// with each further failure, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this no longer lengthen the delay.
const DELAY_MEMORY: Duration = Duration::from_secs(60);

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: LimitsConfig) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            state: Mutex::new(State::default()),
            max_failing: MAX_FAILING,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections now.
    pub fn counts(&self) -> ConnectionCounts {
        self.lock().counts
    }

    /// Admits a new connection from `ip`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let trusted = self.limits.is_trusted(ip);
        let now = Instant::now();
        let mut s = self.lock();
        if !trusted {
            if s.banned(ip, now) {
                return Err(Refusal::Banned);
            }
            if s.per_address.get(&ip).copied().unwrap_or(0)
                >= self.limits.max_connections_per_address
            {
                return Err(Refusal::TooManyFromAddress);
            }
            if s.counts.unauthenticated >= self.limits.max_unauthenticated_connections {
                return Err(Refusal::TooManyUnauthenticated);
            }
        }
        s.counts.open += 1;
        s.counts.unauthenticated += 1;
        *s.per_address.entry(ip).or_insert(0) += 1;
        drop(s);
        Ok(Ticket {
            admission: self.clone(),
            ip,
            authenticated: false,
        })
    }

    /// Whether `ip` is banned now (checked again at each authentication attempt, so a
    /// connection opened before the ban gains nothing).
    pub(crate) fn is_banned(&self, ip: IpAddr) -> bool {
        !self.limits.is_trusted(ip) && self.lock().banned(ip, Instant::now())
    }

    /// Records a failed authentication from `ip`; returns how long to wait before answering
    /// it (doubling from 100 ms to 5 s with recent failures; none for trusted networks).
    /// Reaching `auth_ban_failures` in `auth_ban_window_secs` bans the address for
    /// `auth_ban_secs`.
    pub(crate) fn failed(&self, ip: IpAddr) -> Duration {
        if self.limits.is_trusted(ip) {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let window = Duration::from_secs(self.limits.auth_ban_window_secs);
        let forget = window.max(DELAY_MEMORY);
        let mut s = self.lock();
        // Forget addresses whose failures and ban are over (at most once a second: it walks
        // the whole table).
        if s.swept
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            s.failures.retain(|_, f| {
                f.banned_until.is_some_and(|u| u > now)
                    || f.last.is_some_and(|l| now.duration_since(l) < forget)
            });
            s.swept = Some(now);
        }
        if s.failures.len() >= self.max_failing && !s.failures.contains_key(&ip) {
            let oldest = s
                .failures
                .iter()
                .min_by_key(|(_, f)| (f.banned_until.is_some_and(|u| u > now), f.last))
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                s.failures.remove(&a);
            }
        }
        let f = s.failures.entry(ip).or_default();
        if f.window_start
            .is_none_or(|w| now.duration_since(w) >= window)
        {
            f.window_start = Some(now);
            f.count = 0;
        }
        let recent = f.last.is_some_and(|l| now.duration_since(l) < DELAY_MEMORY);
        f.count = f.count.saturating_add(1);
        f.last = Some(now);
        if f.count >= self.limits.auth_ban_failures {
            f.banned_until = Some(now + Duration::from_secs(self.limits.auth_ban_secs));
            tracing::warn!(%ip, failures = f.count, secs = self.limits.auth_ban_secs, "address banned after failed authentications");
        }
        let steps = if recent { f.count.min(7) - 1 } else { 0 };
        (FIRST_DELAY * (1 << steps)).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(extra: &str) -> LimitsConfig {
        crate::Config::parse(&format!("[limits]\n{extra}"))
            .unwrap()
            .limits
    }

    #[test]
    fn connections_per_address_and_unauthenticated_in_all() {
        let a = Admission::new(limits(
            "max_connections_per_address = 2\nmax_unauthenticated_connections = 3",
        ));
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = a.admit(x).unwrap();
        let mut t2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), Refusal::TooManyFromAddress);
        let _t3 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).unwrap_err(), Refusal::TooManyUnauthenticated);
        t2.authenticated();
        let _t4 = a.admit(y).unwrap();
        assert_eq!(
            a.counts(),
            ConnectionCounts {
                open: 4,
                unauthenticated: 3
            }
        );
        drop(t1);
        drop(t2);
        assert_eq!(
            a.counts(),
            ConnectionCounts {
                open: 2,
                unauthenticated: 2
            }
        );
        // Loopback is trusted by default: counted, never refused.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let many: Vec<Ticket> = (0..10).map(|_| a.admit(lo).unwrap()).collect();
        assert_eq!(a.counts().open, 12);
        drop(many);
        assert_eq!(a.counts().open, 2);
    }

    #[test]
    fn failures_delay_then_ban_outside_trusted_networks() {
        let a = Admission::new(limits("auth_ban_failures = 3\nauth_ban_secs = 60"));
        let x: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(a.failed(x), Duration::from_millis(100));
        assert_eq!(a.failed(x), Duration::from_millis(200));
        assert!(!a.is_banned(x));
        assert!(a.admit(x).is_ok());
        a.failed(x);
        assert!(a.is_banned(x));
        assert_eq!(a.admit(x).unwrap_err(), Refusal::Banned);
        // Another address, and a trusted one, are not affected.
        assert!(a.admit("2001:db8::2".parse().unwrap()).is_ok());
        let lo: IpAddr = "::1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(a.failed(lo), Duration::ZERO);
        }
        assert!(!a.is_banned(lo));
        assert!(a.admit(lo).is_ok());
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let a = Admission::new(limits("auth_ban_failures = 2"));
        let mut a = Arc::into_inner(a).unwrap();
        a.max_failing = 3;
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        a.failed(ip(1));
        a.failed(ip(1));
        assert!(a.is_banned(ip(1)));
        for n in 2..=4 {
            a.failed(ip(n));
        }
        // Four addresses failed, three are remembered: the one not banned that failed least
        // recently went; the ban stays.
        assert_eq!(a.lock().failures.len(), 3);
        assert!(a.is_banned(ip(1)));
        assert!(!a.lock().failures.contains_key(&ip(2)));
        a.failed(ip(4));
        assert!(a.is_banned(ip(4)));
    }

    #[test]
    fn mapped_ipv4_addresses_are_trusted_like_ipv4() {
        let l = limits("");
        assert!(l.is_trusted("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!l.is_trusted("::ffff:192.0.2.1".parse().unwrap()));
    }
}
