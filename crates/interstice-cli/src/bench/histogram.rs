//! Latencies, kept in bounded memory: a log-linear histogram of microseconds, exact below
//! 64 µs and within 1/64 (about 1.6 %) above, as HDR histograms are.

/// Sub-buckets per power of two.
const SUB: u64 = 64;
/// Buckets for every `u64` value: 64 exact ones, then 64 per power of two from 2^6 to 2^63.
const BUCKETS: usize = (SUB + (64 - 6) * SUB) as usize;

/// Counts of latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exponent = 63 - u64::from(value.leading_zeros()); // >= 6
    let mantissa = (value >> (exponent - 6)) - SUB; // 0..64
    (SUB + (exponent - 6) * SUB + mantissa) as usize
}

/// The smallest value of bucket `index`.
fn lowest(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let exponent = (index - SUB) / SUB + 6;
    let mantissa = (index - SUB) % SUB + SUB;
    mantissa << (exponent - 6)
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest latency counted.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The latency at quantile `q` (0..=1): the lowest value of the bucket it falls in, so
    /// never more than the true value and within 1/64 of it. 0 when nothing was counted.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return lowest(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_low_and_within_a_64th_above() {
        for value in (0..200_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let low = lowest(bucket(value));
            assert!(low <= value, "{value}: bucket starts at {low}");
            assert!(
                value - low <= value / SUB,
                "{value}: bucket starts at {low}"
            );
            if value < SUB {
                assert_eq!(low, value);
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for micros in 1..=1000 {
            h.record(micros);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile(0.0), 1);
        let p50 = h.quantile(0.5);
        assert!((492..=500).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((976..=990).contains(&p99), "{p99}");
        assert_eq!(h.max(), 1000);
        let mut other = Histogram::default();
        other.record(5_000);
        h.merge(&other);
        assert_eq!(h.quantile(1.0), 4992);
        assert_eq!(h.max(), 5000);
    }
}
