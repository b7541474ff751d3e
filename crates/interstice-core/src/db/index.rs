//! Secondary indexes: a column value to the primary keys of the rows that hold it, in a hash
//! map (probed only) or a B-tree (walked in order).

use super::rows::IncrementalMap;
use interstice_abi::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Primary keys that share an index key, in order. Most index keys belong to one row, whose
/// key is kept inline: a set of its own would take a B-tree node (hundreds of bytes) per row.
#[derive(Debug)]
pub(super) enum Keys {
    /// Exactly one key.
    One(Value),
    /// Any number, in order (none only while being emptied).
    Many(BTreeSet<Value>),
}

impl Default for Keys {
    fn default() -> Self {
        // An empty set allocates nothing.
        Keys::Many(BTreeSet::new())
    }
}

impl Keys {
    pub(super) fn insert(&mut self, pk: Value) {
        match self {
            Keys::Many(set) if set.is_empty() => *self = Keys::One(pk),
            Keys::Many(set) => {
                set.insert(pk);
            }
            Keys::One(only) if *only == pk => {}
            Keys::One(only) => {
                let only = std::mem::replace(only, Value::Bool(false));
                *self = Keys::Many(BTreeSet::from([only, pk]));
            }
        }
    }

    pub(super) fn remove(&mut self, pk: &Value) {
        match self {
            Keys::One(only) if only == pk => *self = Keys::default(),
            Keys::One(_) => {}
            Keys::Many(set) => {
                set.remove(pk);
                if set.len() == 1
                    && let Some(last) = set.pop_first()
                {
                    *self = Keys::One(last);
                }
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Keys::Many(set) if set.is_empty())
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Keys::One(_) => 1,
            Keys::Many(set) => set.len(),
        }
    }

    pub(super) fn first(&self) -> Option<&Value> {
        match self {
            Keys::One(only) => Some(only),
            Keys::Many(set) => set.first(),
        }
    }

    pub(super) fn iter(&self) -> KeysIter<'_> {
        match self {
            Keys::One(only) => KeysIter::One(Some(only)),
            Keys::Many(set) => KeysIter::Many(set.iter()),
        }
    }
}

/// The keys of a [`Keys`], in order.
pub(super) enum KeysIter<'a> {
    One(Option<&'a Value>),
    Many(std::collections::btree_set::Iter<'a, Value>),
}

impl<'a> Iterator for KeysIter<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<&'a Value> {
        match self {
            KeysIter::One(only) => only.take(),
            KeysIter::Many(iter) => iter.next(),
        }
    }
}

impl<'a> IntoIterator for &'a Keys {
    type Item = &'a Value;
    type IntoIter = KeysIter<'a>;

    fn into_iter(self) -> KeysIter<'a> {
        self.iter()
    }
}

pub(super) enum IndexMap {
    Hash(IncrementalMap<Value, Keys>),
    BTree(BTreeMap<Value, Keys>),
}

impl IndexMap {
    pub(super) fn get(&self, key: &Value) -> Option<&Keys> {
        match self {
            IndexMap::Hash(m) => m.get(key),
            IndexMap::BTree(m) => m.get(key),
        }
    }

    pub(super) fn add(&mut self, key: Value, pk: Value) {
        let keys = match self {
            IndexMap::Hash(m) => m.get_or_insert_with(key, Keys::default),
            IndexMap::BTree(m) => m.entry(key).or_default(),
        };
        keys.insert(pk);
    }

    pub(super) fn remove(&mut self, key: &Value, pk: &Value) {
        let emptied = match self {
            IndexMap::Hash(m) => m.get_mut(key).map(|k| {
                k.remove(pk);
                k.is_empty()
            }),
            IndexMap::BTree(m) => m.get_mut(key).map(|k| {
                k.remove(pk);
                k.is_empty()
            }),
        };
        if emptied == Some(true) {
            match self {
                IndexMap::Hash(m) => {
                    m.remove(key);
                }
                IndexMap::BTree(m) => {
                    m.remove(key);
                }
            }
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            IndexMap::Hash(m) => m.clear(),
            IndexMap::BTree(m) => m.clear(),
        }
    }
}

pub(super) struct SecondaryIndex {
    pub(super) field: usize,
    pub(super) unique: bool,
    pub(super) auto_inc: bool,
    pub(super) next: i128,
    pub(super) map: IndexMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_move_between_one_and_many_and_stay_ordered() {
        let mut keys = Keys::default();
        assert!(keys.is_empty() && keys.first().is_none());
        keys.insert(Value::U32(5));
        assert!(matches!(keys, Keys::One(_)), "one key is kept inline");
        keys.insert(Value::U32(5));
        assert_eq!(keys.len(), 1, "the same key twice is one key");
        keys.insert(Value::U32(2));
        keys.insert(Value::U32(9));
        let all: Vec<_> = keys.iter().cloned().collect();
        assert_eq!(all, [2, 5, 9].map(Value::U32));
        assert_eq!(keys.first(), Some(&Value::U32(2)));
        keys.remove(&Value::U32(5));
        keys.remove(&Value::U32(7));
        assert_eq!(keys.len(), 2);
        keys.remove(&Value::U32(2));
        assert!(
            matches!(&keys, Keys::One(v) if *v == Value::U32(9)),
            "back to inline"
        );
        keys.remove(&Value::U32(1));
        assert_eq!(
            keys.len(),
            1,
            "removing a key that is not there changes nothing"
        );
        keys.remove(&Value::U32(9));
        assert!(keys.is_empty());
        assert_eq!((&keys).into_iter().count(), 0);
    }
}
