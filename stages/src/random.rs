//! [`Rng`]: a small seeded pseudo-random generator (SplitMix64) for the stages that sample or
//! shuffle.
//!
//! The stages use their own generator, not a crate's, so the bytes a seed produces stay the same
//! across dependency upgrades, because a cached artifact must be reproducible from its key.
//! SplitMix64 is from Steele, Lea and Flood, "Fast splittable pseudorandom number generators"
//! (OOPSLA 2014); its state is one 64-bit word.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// Derives an independent stream for one named item (a query id, say), so the numbers one
    /// item draws do not depend on which other items exist or in which order they come.
    pub fn for_item(seed: u64, item: &str) -> Rng {
        Rng::new(mix(seed ^ fnv1a(item.as_bytes())))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Returns a float uniform in [0, 1), with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Returns true with probability `p` (clamped to [0, 1]).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Returns a standard normal sample (Box–Muller transform).
    pub fn normal(&mut self) -> f64 {
        // 1 - uniform() lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Reads the stage's `seed` param; a negative seed is used as its two's-complement bits.
pub fn seed_param(ctx: &flywheel_stage_api::StageContext<'_>) -> Result<u64, flywheel_stage_api::StageError> {
    Ok(ctx.param_i64("seed")? as u64)
}

/// The SplitMix64 output function: a bijective 64-bit mixer.
pub fn mix(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a hash of bytes; stable across platforms and Rust versions, unlike `std`'s hasher.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..4).map({
            let mut rng = Rng::new(7);
            move |_| rng.next_u64()
        }).collect();
        let mut rng = Rng::new(7);
        let b: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(8).next_u64(), a[0]);
    }

    #[test]
    fn item_streams_differ_by_item() {
        assert_ne!(Rng::for_item(1, "q1").next_u64(), Rng::for_item(1, "q2").next_u64());
        assert_eq!(Rng::for_item(1, "q1").next_u64(), Rng::for_item(1, "q1").next_u64());
    }

    #[test]
    fn uniform_stays_in_unit_interval() {
        let mut rng = Rng::new(3);
        let samples: Vec<f64> = (0..10_000).map(|_| rng.uniform()).collect();
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut rng = Rng::new(5);
        let samples: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.05, "variance {variance}");
    }
}
