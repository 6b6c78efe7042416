//! Deterministic draws: SplitMix64 over (seed, sender, frame, receiver, purpose). Our own,
//! rather than a library generator, so that a seed gives the same network on every version.

/// One SplitMix64 step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a draw decides.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Loss = 1,
    Duplicate = 2,
    Jitter = 3,
}

/// A number in `[0, 1)`, the same for the same arguments.
pub(crate) fn draw(seed: u64, sender: u64, frame: u64, receiver: u64, purpose: Purpose) -> f64 {
    let mut z = mix(seed ^ 0x6C6F_7261);
    for v in [sender, frame, receiver, purpose as u64] {
        z = mix(z ^ v);
    }
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_repeatable_uniform_and_independent() {
        assert_eq!(
            draw(1, 2, 3, 4, Purpose::Loss),
            draw(1, 2, 3, 4, Purpose::Loss)
        );
        assert_ne!(
            draw(1, 2, 3, 4, Purpose::Loss),
            draw(1, 2, 3, 4, Purpose::Duplicate)
        );
        let n = 100_000;
        let below: usize = (0..n)
            .filter(|i| draw(9, 1, *i, 0, Purpose::Loss) < 0.2)
            .count();
        let share = below as f64 / n as f64;
        assert!((0.19..0.21).contains(&share), "{share}");
    }
}
