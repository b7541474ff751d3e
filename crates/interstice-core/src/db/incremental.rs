//! A hash map that grows a little at a time.
//!
//! A plain hash map doubles when it is full, and the insert that crosses the limit moves every
//! entry into the new table: at 8 million keys that one insert takes hundreds of milliseconds,
//! a frozen frame in a game. Here, when the table is full, a table twice as large is allocated
//! and every later insert (or remove) moves [`MOVE_PER_CHANGE`] of the old table's entries into
//! it; lookups look in both tables until the old one is empty. The old table's entries are all
//! moved after an eighth of the new capacity has been inserted, so the new table never fills
//! while an old one remains.
//!
//! What is left of a growth is memory, handled by [`super::pages`]'s helper thread once a table
//! is large: when the table is three quarters full, the helper allocates the next one and
//! faults its pages in, so the growth finds it ready; and the emptied old table is freed by
//! the helper too.
//!
//! The same design as the `griddle` crate (which this replaces, because it allocates and frees
//! on the caller's thread), on hashbrown's raw table.

#![allow(
    unsafe_code,
    reason = "a raw hash table, so that its memory can be handled off the frame"
)]

use super::pages::{self, Prepared};
use hashbrown::raw::{Bucket, RawIter, RawTable};
use std::hash::{BuildHasher, Hash};

/// Old entries moved into the new table per insert or remove while a growth is under way.
/// With a new table of twice the old one's capacity, the last old entry is moved after
/// `capacity / 8` changes, long before the new table could be full.
pub const MOVE_PER_CHANGE: usize = 8;

/// Capacity of the first table.
const FIRST_CAPACITY: usize = 16;

/// A hash map from `K` to `V`, hashed by `S`, that grows without moving every entry at once.
pub struct IncrementalMap<K: Send + 'static, V: Send + 'static, S> {
    /// Where new entries go.
    table: RawTable<(K, V)>,
    /// The table being emptied into `table`, if a growth is under way.
    old: Option<Draining<K, V>>,
    /// The next table, being made by the helper thread.
    next: Option<Prepared<RawTable<(K, V)>>>,
    hasher: S,
}

/// A table whose entries are being moved out.
struct Draining<K, V> {
    table: RawTable<(K, V)>,
    /// The entries not yet visited. Only valid while `table` is neither resized nor dropped
    /// and every removal from it of an entry not yet visited is reflected here
    /// (`RawIter::reflect_remove`): [`IncrementalMap`] keeps the two together, never inserts
    /// into `table`, and reflects every removal it makes.
    unvisited: RawIter<(K, V)>,
}

impl<K: Send + 'static, V: Send + 'static, S: Default> Default for IncrementalMap<K, V, S> {
    fn default() -> Self {
        IncrementalMap {
            table: RawTable::new(),
            old: None,
            next: None,
            hasher: S::default(),
        }
    }
}

impl<K, V, S> IncrementalMap<K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Send + 'static,
    S: BuildHasher,
{
    #[inline]
    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len() + self.old.as_ref().map_or(0, |old| old.table.len())
    }

    /// Whether there are no entries.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a growth is under way (some entries are still in the old table).
    #[cfg(test)]
    pub fn is_growing(&self) -> bool {
        self.old.is_some()
    }

    /// Whether an entry has this key.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value under this key.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        let hash = self.hash(key);
        if let Some((_, value)) = self.table.get(hash, |(k, _)| k == key) {
            return Some(value);
        }
        let old = self.old.as_ref()?;
        old.table.get(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under this key, to change in place.
    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let hash = self.hash(key);
        match self.table.find(hash, |(k, _)| k == key) {
            // SAFETY: `find` returned a full bucket of `self.table`, which stays borrowed
            // (through `&mut self`) as long as the reference lives.
            Some(bucket) => Some(unsafe { &mut bucket.as_mut().1 }),
            None => {
                let old = self.old.as_mut()?;
                old.table.get_mut(hash, |(k, _)| k == key).map(|(_, v)| v)
            }
        }
    }

    /// Stores a value under a key; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hash(&key);
        if let Some((_, stored)) = self.table.get_mut(hash, |(k, _)| *k == key) {
            return Some(std::mem::replace(stored, value));
        }
        let previous = self.take_old(hash, &key).map(|(_, v)| v);
        self.insert_absent(hash, (key, value));
        previous
    }

    /// The value under this key, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hash(&key);
        if let Some(bucket) = self.table.find(hash, |(k, _)| *k == key) {
            // SAFETY: a full bucket of `self.table`, borrowed through `&mut self` as long as
            // the reference lives.
            return unsafe { &mut bucket.as_mut().1 };
        }
        let value = match self.take_old(hash, &key) {
            Some((_, value)) => value,
            None => make(),
        };
        let bucket = self.insert_absent(hash, (key, value));
        // SAFETY: the bucket was just filled in `self.table`, which nothing has changed since,
        // and stays borrowed through `&mut self` as long as the reference lives.
        unsafe { &mut bucket.as_mut().1 }
    }

    /// Removes the entry under this key; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hash(key);
        let removed = match self.table.remove_entry(hash, |(k, _)| k == key) {
            Some((_, value)) => Some(value),
            None => self.take_old(hash, key).map(|(_, v)| v),
        };
        self.move_old(MOVE_PER_CHANGE);
        removed
    }

    /// Removes every entry. The current table keeps its memory (a map emptied is usually
    /// filled again); an old one being moved out is released.
    pub fn clear(&mut self) {
        self.table.clear();
        self.next = None;
        if let Some(old) = self.old.take() {
            pages::release(old.table);
        }
    }

    /// Removes the entry under this key from the old table, if it is there.
    fn take_old(&mut self, hash: u64, key: &K) -> Option<(K, V)> {
        let old = self.old.as_mut()?;
        let bucket = old.table.find(hash, |(k, _)| k == key)?;
        // SAFETY: `bucket` is a full bucket of `old.table`, found just now; the removal is
        // reflected in the iterator over the same table, which is what keeps it valid.
        unsafe {
            old.unvisited.reflect_remove(&bucket);
            Some(old.table.remove(bucket).0)
        }
    }

    /// Inserts an entry whose key is in neither table; moves some old entries first, and
    /// starts a growth when the table is full.
    fn insert_absent(&mut self, hash: u64, entry: (K, V)) -> Bucket<(K, V)> {
        self.move_old(MOVE_PER_CHANGE);
        let (len, capacity) = (self.table.len(), self.table.capacity());
        if len == capacity {
            self.grow();
        } else if len >= capacity - capacity / 4 && self.next.is_none() && self.old.is_none() {
            self.prepare_next();
        }
        match self.table.try_insert_no_grow(hash, entry) {
            Ok(bucket) => bucket,
            // `grow` left room, so this does not happen; if it did, the table would grow all
            // at once, correctly but slowly.
            Err(entry) => {
                let hasher = &self.hasher;
                self.table.insert(hash, entry, |(k, _)| hasher.hash_one(k))
            }
        }
    }

    /// Starts moving the full table into one twice as large.
    fn grow(&mut self) {
        if self.old.is_some() {
            // Not reached: a new table has room for twice the old one's entries, and they
            // are all moved before a quarter of that room is used. Were it reached, finishing
            // the move first keeps the map correct (hashbrown would grow the table in one go
            // if it had to).
            self.move_old(usize::MAX);
        }
        let capacity = (self.table.len() * 2).max(FIRST_CAPACITY);
        let prepared = self.next.take().and_then(|next| next.take());
        let new = match prepared {
            Some(table) if table.capacity() >= capacity => table,
            // Too small: slots freed by removals were reused since it was asked for.
            Some(small) => {
                pages::release(small);
                RawTable::with_capacity(capacity)
            }
            // Not made yet: allocate here, and let the inserts fault its pages in.
            None => RawTable::with_capacity(capacity),
        };
        let table = std::mem::replace(&mut self.table, new);
        if table.is_empty() {
            pages::release(table);
            return;
        }
        // SAFETY: the iterator and the table it walks are stored together in `Draining`,
        // whose invariant `IncrementalMap` keeps.
        let unvisited = unsafe { table.iter() };
        self.old = Some(Draining { table, unvisited });
    }

    /// Asks the helper thread for the table the next growth will want, if it is large enough
    /// to be worth it.
    fn prepare_next(&mut self) {
        // The size `grow` asks for when this table is full.
        let capacity = self.table.capacity() * 2;
        let bytes = self.table.buckets() * 2 * std::mem::size_of::<(K, V)>();
        if bytes >= pages::HELPER_FROM_BYTES {
            self.next = pages::prepare(move || {
                let mut table = RawTable::with_capacity(capacity);
                pages::fault_in(&mut table);
                table
            });
        }
    }

    /// Moves up to `count` entries from the old table into the current one; releases the old
    /// table once it is empty.
    fn move_old(&mut self, count: usize) {
        let Some(old) = self.old.as_mut() else {
            return;
        };
        let hasher = &self.hasher;
        for _ in 0..count {
            let Some(bucket) = old.unvisited.next() else {
                break;
            };
            // SAFETY: the iterator yields full buckets of `old.table` (its invariant holds);
            // removing a bucket it has already yielded needs no reflecting.
            let ((key, value), _) = unsafe { old.table.remove(bucket) };
            let hash = hasher.hash_one(&key);
            if let Err(entry) = self.table.try_insert_no_grow(hash, (key, value)) {
                self.table.insert(hash, entry, |(k, _)| hasher.hash_one(k));
            }
        }
        if old.table.is_empty()
            && let Some(old) = self.old.take()
        {
            pages::release(old.table);
        }
    }
}

impl<K: Send + 'static, V: Send + 'static, S> Drop for IncrementalMap<K, V, S> {
    fn drop(&mut self) {
        // A large map's memory is returned by the helper thread, not the dropping one.
        pages::release(std::mem::replace(&mut self.table, RawTable::new()));
        if let Some(old) = self.old.take() {
            pages::release(old.table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::KeyHash;
    use std::collections::HashMap;

    /// SplitMix64, enough for a reproducible workload.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn agrees(map: &IncrementalMap<u64, String, KeyHash>, model: &HashMap<u64, String>) {
        assert_eq!(map.len(), model.len());
        for (k, v) in model {
            assert_eq!(map.get(k), Some(v), "key {k}");
        }
    }

    #[test]
    fn agrees_with_a_hash_map_through_growths_removals_and_clears() {
        let mut map = IncrementalMap::<u64, String, KeyHash>::default();
        let mut model = HashMap::new();
        let mut state = 7;
        let mut grew_with_old_entries = 0;
        for step in 0..60_000u64 {
            // Keys from a range that grows with the step, so the map grows through several
            // doublings while removals and replacements hit both tables.
            let key = next(&mut state) % (step / 2 + 10);
            let growing = map.is_growing();
            match next(&mut state) % 10 {
                0..=4 => assert_eq!(
                    map.insert(key, format!("{step}")),
                    model.insert(key, format!("{step}"))
                ),
                5 => assert_eq!(map.remove(&key), model.remove(&key)),
                6 => {
                    let value = map.get_or_insert_with(key, || "made".into());
                    value.push('+');
                    model.entry(key).or_insert_with(|| "made".into()).push('+');
                }
                7 => {
                    if let Some(value) = map.get_mut(&key) {
                        value.push('!');
                    }
                    if let Some(value) = model.get_mut(&key) {
                        value.push('!');
                    }
                }
                _ => assert_eq!(map.get(&key), model.get(&key)),
            }
            assert_eq!(map.contains_key(&key), model.contains_key(&key));
            if growing {
                grew_with_old_entries += 1;
            }
            if step % 5_000 == 0 {
                agrees(&map, &model);
            }
            if step == 30_000 {
                map.clear();
                model.clear();
                assert!(map.is_empty() && !map.is_growing());
            }
        }
        agrees(&map, &model);
        assert!(
            grew_with_old_entries > 1_000,
            "the workload never exercised a growth under way ({grew_with_old_entries} steps)"
        );
    }

    #[test]
    fn a_growth_moves_a_few_entries_per_insert_and_then_ends() {
        let mut map = IncrementalMap::<u64, u64, KeyHash>::default();
        let mut k = 0;
        while !map.is_growing() {
            map.insert(k, k);
            k += 1;
        }
        // The insert that started the growth moved nothing; the old table holds the rest.
        let old = map.old.as_ref().map_or(0, |old| old.table.len());
        assert_eq!(old, k as usize - 1);
        map.insert(k, k);
        k += 1;
        assert_eq!(
            map.old.as_ref().map_or(0, |old| old.table.len()),
            old - MOVE_PER_CHANGE
        );
        let mut inserts = 1;
        while map.is_growing() {
            map.insert(k, k);
            k += 1;
            inserts += 1;
        }
        assert_eq!(inserts, old.div_ceil(MOVE_PER_CHANGE));
        for key in 0..k {
            assert_eq!(map.get(&key), Some(&key));
        }
    }
}
