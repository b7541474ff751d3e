//! The rows of one table, by primary key.
//!
//! Reducers look rows up by key far more often than they walk them (a reducer moving 10,000
//! rows makes 10,000 point updates per frame), while scans, pages and ranges must come out in
//! key order, the same on every node. So the rows live in slots found through a hash map, and
//! a B-tree of the keys gives the order: a point lookup costs one hash probe instead of a
//! dozen `Value` comparisons down a tree, and a scan walks the tree without hashing. The hash
//! is [`KeyHash`]: a walk over consecutive integer keys probes neighbouring buckets.
//!
//! Growing must not stop a frame: the slots are a [`ChunkedVec`] (growing adds a chunk, it
//! never copies the rows), and the hash map resizes incrementally
//! ([`IncrementalMap`](super::incremental::IncrementalMap): when it is full, each later insert
//! moves a few of the old entries instead of one insert moving them all), so a table of
//! millions of rows grows at the same cost per insert as a small one.

use super::chunked::ChunkedVec;
use super::table::Row;
use interstice_abi::{KeyHash, Value};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A hash map that resizes a little at a time rather than all at once.
pub(super) type IncrementalMap<K, V> = super::incremental::IncrementalMap<K, V, KeyHash>;

/// Where a row is stored. Valid until the next insert or remove; only [`RowStore::slot_of`]
/// makes one, so it always names a stored row while valid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot(u32);

/// Rows by primary key: hash lookups, key-ordered iteration.
#[derive(Default)]
pub(super) struct RowStore {
    /// Rows; a free slot holds an empty (unallocated) row.
    slots: ChunkedVec<Row>,
    /// Slots to reuse.
    free: Vec<u32>,
    /// Key → slot, for point lookups (only ever probed, never iterated).
    by_key: IncrementalMap<Value, u32>,
    /// Key → slot, for ordered walks.
    order: BTreeMap<Value, u32>,
}

impl RowStore {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether a row has this key.
    pub fn contains(&self, pk: &Value) -> bool {
        self.by_key.contains_key(pk)
    }

    /// The row with this key.
    pub fn get(&self, pk: &Value) -> Option<&Row> {
        let slot = *self.by_key.get(pk)?;
        self.slots.get(slot as usize)
    }

    /// The slot of the row with this key: one lookup for a read-then-replace.
    pub fn slot_of(&self, pk: &Value) -> Option<Slot> {
        self.by_key.get(pk).map(|slot| Slot(*slot))
    }

    /// The row in a slot found by [`RowStore::slot_of`].
    pub fn at(&self, slot: Slot) -> &Row {
        &self.slots[slot.0 as usize]
    }

    /// Replaces the row in a slot found by [`RowStore::slot_of`] with one of the same key;
    /// returns the old row.
    pub fn replace_at(&mut self, slot: Slot, row: Row) -> Row {
        std::mem::replace(&mut self.slots[slot.0 as usize], row)
    }

    /// Stores a row under a key that no row has (callers check first); returns it.
    pub fn insert_new(&mut self, pk: Value, row: Row) -> &Row {
        debug_assert!(!self.contains(&pk), "insert_new over an existing key");
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = row;
                slot
            }
            None => self.slots.push(row) as u32,
        };
        self.by_key.insert(pk.clone(), slot);
        self.order.insert(pk, slot);
        &self.slots[slot as usize]
    }

    /// Removes the row with this key.
    pub fn remove(&mut self, pk: &Value) -> Option<Row> {
        let slot = self.by_key.remove(pk)?;
        self.order.remove(pk);
        self.free.push(slot);
        Some(std::mem::take(&mut self.slots[slot as usize]))
    }

    /// Removes every row, returning them in key order.
    pub fn take_all(&mut self) -> Vec<Row> {
        let order = std::mem::take(&mut self.order);
        let mut slots = self.slots.take_all();
        self.by_key.clear();
        self.free.clear();
        order
            .into_values()
            .map(|slot| std::mem::take(&mut slots[slot as usize]))
            .collect()
    }

    /// Rows in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Row> + ExactSizeIterator {
        self.order.values().map(|slot| &self.slots[*slot as usize])
    }

    /// Rows whose keys lie within the bounds, in key order.
    pub fn range<'a>(
        &'a self,
        lower: Bound<&Value>,
        upper: Bound<&Value>,
    ) -> impl Iterator<Item = &'a Row> + 'a {
        self.order
            .range::<Value, _>((lower, upper))
            .map(|(_, slot)| &self.slots[*slot as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: u32) -> Row {
        vec![Value::U32(k), Value::String(format!("row {k}"))]
    }

    #[test]
    fn lookups_and_ordered_walks_agree_through_inserts_and_removes() {
        let mut store = RowStore::default();
        for k in [5, 1, 9, 3, 7] {
            store.insert_new(Value::U32(k), row(k));
        }
        assert_eq!(store.remove(&Value::U32(3)), Some(row(3)));
        assert_eq!(store.remove(&Value::U32(3)), None);
        // The freed slot is reused without disturbing the order.
        store.insert_new(Value::U32(4), row(4));
        let keys: Vec<_> = store.iter().map(|r| r[0].clone()).collect();
        assert_eq!(keys, [1, 4, 5, 7, 9].map(Value::U32));
        assert_eq!(store.iter().next_back(), Some(&row(9)));
        assert_eq!(store.len(), 5);
        assert_eq!(store.get(&Value::U32(4)), Some(&row(4)));
        assert!(store.get(&Value::U32(3)).is_none());
        let slot = store.slot_of(&Value::U32(7)).expect("row 7");
        let mut changed = row(7);
        changed[1] = Value::String("changed".into());
        assert_eq!(store.replace_at(slot, changed.clone()), row(7));
        assert_eq!(store.at(slot), &changed);
        assert_eq!(store.get(&Value::U32(7)), Some(&changed));
        let after: Vec<_> = store
            .range(Bound::Excluded(&Value::U32(4)), Bound::Unbounded)
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(after, [5, 7, 9].map(Value::U32));
        let all = store.take_all();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], row(1));
        assert!(store.is_empty() && store.get(&Value::U32(1)).is_none());
        store.insert_new(Value::U32(2), row(2));
        assert_eq!(store.iter().collect::<Vec<_>>(), [&row(2)]);
    }
}
