//! Which accounts a transfer touches: a Zipf distribution over the accounts, as SpacetimeDB's
//! keynote benchmark draws them (α = 0 uniform; α = 1.5 puts about 80 % of transfers on a
//! handful of accounts).

/// SplitMix64: a small, fast generator; each client seeds its own.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = interstice_abi::mix::splitmix64(self.0);
        self.0 = self.0.wrapping_add(interstice_abi::mix::SPLITMIX_GAMMA);
        out
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws account numbers `0..n`, account `k` with weight `1 / (k + 1)^α`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u32,
    /// The cumulative distribution; empty when uniform.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` accounts (at least 1) with exponent `alpha` (0: uniform).
    pub fn new(n: u32, alpha: f64) -> Zipf {
        let n = n.max(1);
        if alpha <= 0.0 {
            return Zipf { n, cdf: Vec::new() };
        }
        let weights: Vec<f64> = (1..=n).map(|k| f64::from(k).powf(-alpha)).collect();
        let sum: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        let mut cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                cumulative += w / sum;
                cumulative
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Zipf { n, cdf }
    }

    /// One account.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        if self.cdf.is_empty() {
            return (((rng.next_u64() >> 32) * u64::from(self.n)) >> 32) as u32;
        }
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u32
    }

    /// Two different accounts (the same one twice only when there is one account, or after
    /// 32 draws that all hit the same one).
    pub fn pair(&self, rng: &mut Rng) -> (u32, u32) {
        let from = self.sample(rng);
        let mut to = self.sample(rng);
        let mut spins = 0;
        while to == from && spins < 32 && self.n > 1 {
            to = self.sample(rng);
            spins += 1;
        }
        (from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_spreads_evenly_and_stays_in_range() {
        let zipf = Zipf::new(10, 0.0);
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn alpha_one_and_a_half_concentrates_on_the_first_accounts() {
        let zipf = Zipf::new(100_000, 1.5);
        let mut rng = Rng::new(7);
        let draws = 100_000;
        let low = (0..draws).filter(|_| zipf.sample(&mut rng) < 10).count();
        // The first 10 of 100,000 accounts carry 76.6 % of the weight at α = 1.5.
        assert!(low > draws * 74 / 100 && low < draws * 79 / 100, "{low}");
        let (from, to) = zipf.pair(&mut rng);
        assert_ne!(from, to);
    }
}
