//! What the air does to frames.

use std::time::Duration;

/// A regulatory duty-cycle limit: a radio may be on air at most `fraction` of the time,
/// with a burst allowance of `fraction × window` of air time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DutyCycle {
    /// The share of time on air, 0 to 1 (EU 868 MHz sub-bands: 0.01 or 0.001).
    pub fraction: f64,
    /// The window the share is counted over (the burst a radio may send at once).
    pub window: Duration,
}

/// The radio conditions of a network: every frame sent meets them.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    /// Time from the end of a transmission to its reception.
    pub delay: Duration,
    /// Up to this much more delay, drawn per frame and receiver (frames may overtake).
    pub jitter: Duration,
    /// Air data rate in bits per second: a frame of `n` bytes is on air `8n / rate`
    /// seconds, added to its delay and counted against the duty cycle. `None`: no air time.
    pub bitrate: Option<u32>,
    /// Probability that a receiver misses a frame, 0 to 1.
    pub loss: f64,
    /// Probability that a receiver gets a frame twice, 0 to 1.
    pub duplication: f64,
    /// The duty-cycle limit, if any (needs `bitrate`).
    pub duty_cycle: Option<DutyCycle>,
}

impl Conditions {
    /// No delay, no air time, no loss: what benchmarks of the software use.
    pub fn perfect() -> Conditions {
        Conditions {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            bitrate: None,
            loss: 0.0,
            duplication: 0.0,
            duty_cycle: None,
        }
    }

    /// An AS32-TTL-100 at its default air data rate (2,400 bit/s), 5 ms of propagation and
    /// processing, no loss.
    pub fn as32_default() -> Conditions {
        Conditions {
            delay: Duration::from_millis(5),
            bitrate: Some(2_400),
            ..Conditions::perfect()
        }
    }

    /// These conditions with `loss` and `duplication` probabilities.
    pub fn lossy(mut self, loss: f64, duplication: f64) -> Conditions {
        self.loss = loss;
        self.duplication = duplication;
        self
    }

    /// These conditions with a delay and jitter.
    pub fn delayed(mut self, delay: Duration, jitter: Duration) -> Conditions {
        self.delay = delay;
        self.jitter = jitter;
        self
    }

    /// How long `len` bytes are on air.
    pub fn airtime(&self, len: usize) -> Duration {
        match self.bitrate {
            Some(r) if r > 0 => Duration::from_secs_f64(len as f64 * 8.0 / f64::from(r)),
            _ => Duration::ZERO,
        }
    }

    /// Checks the probabilities and the duty cycle.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [("loss", self.loss), ("duplication", self.duplication)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability, not {p}"));
            }
        }
        if let Some(d) = self.duty_cycle {
            if !(d.fraction > 0.0 && d.fraction <= 1.0) {
                return Err(format!("duty cycle {} is not in (0, 1]", d.fraction));
            }
            if self.bitrate.is_none() {
                return Err("a duty cycle needs a bitrate (air time)".into());
            }
        }
        Ok(())
    }
}

impl Default for Conditions {
    fn default() -> Conditions {
        Conditions::perfect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airtime_and_checks() {
        let c = Conditions::as32_default();
        assert_eq!(c.airtime(30), Duration::from_millis(100));
        assert_eq!(Conditions::perfect().airtime(64), Duration::ZERO);
        assert!(c.validate().is_ok());
        assert!(Conditions::perfect().lossy(1.5, 0.0).validate().is_err());
        let mut d = Conditions::perfect();
        d.duty_cycle = Some(DutyCycle {
            fraction: 0.01,
            window: Duration::from_secs(3600),
        });
        assert!(d.validate().is_err(), "no bitrate");
    }
}
