//! A hasher for maps keyed by [`Value`](crate::Value)s that keeps integer keys close together.
//!
//! Reducers often walk a table in key order and touch every row (move every dot, age every
//! bullet), and keys are often consecutive integers (`auto_inc`). A general-purpose hash
//! scatters consecutive keys over the whole map, so each lookup of such a walk lands on a cold
//! cache line: with 10,000 rows, hash probes were most of the cost of an update. This hasher
//! keeps an integer key's low bits in the hash's low bits (which pick the bucket), so
//! consecutive keys fall into neighbouring buckets, and multiplies the rest into the high bits
//! (which hashbrown uses as the tag that tells keys in a group apart) — the same idea as Bevy's
//! entity hasher. When a key is written as several integers (a value's kind, then the number;
//! a tuple; a vector of numbers), everything before the last one is folded FxHash-style into an
//! offset; anything written as bytes (strings) is hashed FxHash-style throughout.
//!
//! Integer keys above 2^32 are offset by a value drawn from their high half and a per-process
//! seed, so keys built to collide (`k << 32 | k`) do not; strings are hashed FxHash-style from the
//! same seed. It is no cryptographic hash: the seed only keeps collisions from being computed
//! in advance.

use core::hash::{BuildHasherDefault, Hasher};

/// Golden-ratio multiplier whose low half is 1: `x * UPPER_PHI` keeps `x`'s low 32 bits and
/// mixes all of them into the high 32.
const UPPER_PHI: u64 = 0x9e37_79b9_0000_0001;
/// FxHash's multiplier, for everything else.
const FX: u64 = 0xf135_7aea_2e62_a9c5;

/// This process's hash seed: where a static landed in memory, which address-space layout
/// randomisation makes different in every process (no OS randomness in `no_std`). Only the
/// buckets keys fall into depend on it — maps keyed with this hasher are probed, never
/// iterated — so it changes no result, and keys built to collide on one node do not on another.
#[inline]
fn seed() -> u64 {
    static ANCHOR: u8 = 0;
    (core::ptr::addr_of!(ANCHOR) as u64).wrapping_mul(FX)
}

/// See the [module documentation](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher {
    /// What was written before the last integer, folded FxHash-style.
    prefix: u64,
    /// The last integer written, if the last write was one.
    last: Option<u64>,
    /// Whether anything but integers was written.
    bytes: bool,
}

/// Builds [`KeyHasher`]s (for `HashMap::with_hasher` / `HashMap<K, V, KeyHash>`).
pub type KeyHash = BuildHasherDefault<KeyHasher>;

impl KeyHasher {
    #[inline]
    fn fold(&mut self, word: u64) {
        self.prefix = (self.prefix.rotate_left(5) ^ word).wrapping_mul(FX);
    }

    #[inline]
    fn integer(&mut self, n: u64) {
        if let Some(previous) = self.last.replace(n) {
            self.fold(previous);
        }
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        match self.last {
            Some(n) if !self.bytes => {
                // Shift the key by an offset drawn from its high half and this process's seed,
                // so keys differing only there do not all land in one bucket. It used to fold
                // the high half onto the low one, and `k << 32 | k` cancelled to 0 for every
                // `k`: one bucket, each insert a walk of all the others (quadratic host work a
                // module paid for as constant). Keys below 2^32 all get the same offset and
                // stay consecutive; the prefix (type rank, table id) shifts the run.
                let offset = ((n >> 32) ^ seed()).wrapping_mul(FX) >> 32;
                n.wrapping_add(offset)
                    .wrapping_add(self.prefix)
                    .wrapping_mul(UPPER_PHI)
            }
            last => {
                let mut h = *self;
                if let Some(n) = last {
                    h.fold(n);
                }
                h.prefix.rotate_left(26)
            }
        }
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if let Some(previous) = self.last.take() {
            self.fold(previous);
        }
        if !self.bytes {
            // Strings start from the process's seed too: FxHash collisions of two-word keys
            // depend on the state the words meet.
            self.prefix ^= seed();
        }
        self.bytes = true;
        // `chunks_exact`, not `as_chunks`: the SDK side builds on Rust 1.85.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            self.fold(u64::from_le_bytes(bytes));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.fold(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.integer(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.integer(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.integer(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.integer(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.integer(n as u64);
    }

    #[inline]
    fn write_i8(&mut self, n: i8) {
        self.integer(n as u8 as u64);
    }

    #[inline]
    fn write_i16(&mut self, n: i16) {
        self.integer(n as u16 as u64);
    }

    #[inline]
    fn write_i32(&mut self, n: i32) {
        self.integer(n as u32 as u64);
    }

    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.integer(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use core::hash::{BuildHasher, Hash};

    fn hash(v: &impl Hash) -> u64 {
        KeyHash::default().hash_one(v)
    }

    #[test]
    fn consecutive_integer_keys_get_consecutive_low_bits_and_distinct_tags() {
        let hashes: alloc::vec::Vec<u64> = (0u32..1000).map(|n| hash(&Value::U32(n))).collect();
        for pair in hashes.windows(2) {
            assert_eq!(pair[1] as u32, (pair[0] as u32).wrapping_add(1));
        }
        // hashbrown's tag: the top 7 bits. Neighbours must not share it.
        let tags = hashes.iter().map(|h| h >> 57);
        let same = tags
            .clone()
            .zip(tags.skip(1))
            .filter(|(a, b)| a == b)
            .count();
        assert!(same < 30, "{same} neighbours share a tag");
    }

    #[test]
    fn equal_values_hash_equal_and_kinds_and_strings_differ() {
        assert_eq!(hash(&Value::U64(7)), hash(&Value::U64(7)));
        assert_ne!(hash(&Value::U64(7)), hash(&Value::I64(7)));
        let s = |x: &str| hash(&Value::String(x.into()));
        assert_eq!(s("alpha"), s("alpha"));
        assert_ne!(s("alpha"), s("alphb"));
        assert_ne!(s("ab"), s("ba"));
        assert_ne!(hash(&(1u32, Value::U32(2))), hash(&(2u32, Value::U32(2))));
    }

    #[test]
    fn keys_differing_only_in_high_bits_spread() {
        let lows: alloc::collections::BTreeSet<u32> = (0u64..64)
            .map(|i| hash(&Value::U64(i << 32)) as u32)
            .collect();
        assert_eq!(lows.len(), 64);
    }
}
