//! Seeded random draws.
//!
//! Every meter, gateway decision and fault draws from a [`Stream`] derived
//! from the run's seed and a fixed label, so a meter's draws do not depend
//! on the order in which other meters' events happen: the same seed gives
//! the same run, and changing one parameter (the van's speed) changes as
//! little of the randomness as possible.

use otavan_loranet::rng::SimRng;

/// What a stream is for; mixed into its seed.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Purpose {
    /// A meter's fixed properties (position, install, interval, version).
    Placement = 1,
    /// A meter's run-time draws (jitter, shadowing, association, faults).
    Behaviour = 2,
    /// Gateway placement and everything not tied to one meter.
    World = 3,
    /// A live meter's engine: the names of its update attempts.
    Attempts = 4,
}

/// A seeded stream of random numbers.
#[derive(Debug, Clone)]
pub struct Stream(SimRng);

impl Stream {
    /// The stream for `purpose` and `index` (a meter's number) of run `seed`.
    pub fn new(seed: u64, purpose: Purpose, index: u64) -> Stream {
        let mut mix = SimRng::new(seed ^ (purpose as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let base = mix.next_u64();
        Stream(SimRng::new(
            base ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB),
        ))
    }

    /// Uniform over all `u64`s.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.next_f64()
    }

    /// Uniform in `[low, high)` (`low` when they are equal).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with mean `mean`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Log-normal with median `median` and 99th percentile `p99`.
    pub fn log_normal(&mut self, median: f64, p99: f64) -> f64 {
        // z(0.99) = 2.326
        let sigma = (p99 / median).ln() / 2.326_348;
        median * (sigma * self.normal()).exp()
    }

    /// An index into `weights`, chosen with probability proportional to
    /// its weight (the weights need not sum to 1; at least one is positive).
    pub fn pick(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<f64> = (0..4)
            .map(|_| Stream::new(7, Purpose::Behaviour, 3).uniform())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Stream::new(7, Purpose::Behaviour, 3);
        let mut y = Stream::new(7, Purpose::Behaviour, 4);
        let mut z = Stream::new(7, Purpose::Placement, 3);
        let (x, y, z) = (x.uniform(), y.uniform(), z.uniform());
        assert!(x != y && x != z && y != z);
    }

    #[test]
    fn distributions_have_their_moments() {
        let mut s = Stream::new(1, Purpose::World, 0);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let mut logn: Vec<f64> = (0..n).map(|_| s.log_normal(1.63, 4.9)).collect();
        logn.sort_by(f64::total_cmp);
        let median = logn[n / 2];
        let p99 = logn[n * 99 / 100];
        assert!(
            (median - 1.63).abs() < 0.03 && (p99 - 4.9).abs() < 0.2,
            "{median} {p99}"
        );
        let exp_mean = (0..n).map(|_| s.exponential(3.0)).sum::<f64>() / n as f64;
        assert!((exp_mean - 3.0).abs() < 0.05, "{exp_mean}");
        let mut counts = [0; 3];
        for _ in 0..n {
            counts[s.pick(&[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / n as f64 - 0.75).abs() < 0.01);
    }
}
