//! One table: rows by primary key, secondary indexes, auto-increment counters.
//!
//! Every map the host iterates is ordered (`BTreeMap`/`BTreeSet`), so scans, filters and ranges
//! return rows in a deterministic order; hash maps (the rows' own, hash indexes) are only ever
//! probed, never iterated.

use super::index::{IndexMap, Keys, SecondaryIndex};
use super::rows::RowStore;
use super::tx::Undo;
use interstice_abi::codec::{decode_exact, decode_fields_into, encode_value};
use interstice_abi::{HostError, IndexKind, TableSchema, TypeSet, Value, ValueType};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// A row: its field values in declaration order.
pub type Row = Vec<Value>;

/// A table of one module.
pub struct Table {
    schema: Arc<TableSchema>,
    types: Arc<TypeSet>,
    pk: usize,
    next_pk: i128,
    rows: RowStore,
    indexes: Vec<SecondaryIndex>,
    /// Every field is a number, a bool or `()`: a row owns no memory but its own vector.
    scalar_rows: bool,
    /// Whether [`Database::state_hash`](super::Database::state_hash) covers it.
    in_state_hash: bool,
}

/// Appends the encoding of a row's fields. Rows are validated on the way in, so a stored row
/// always matches its schema.
fn encode_fields(row: &[Value], schema: &TableSchema, types: &TypeSet, out: &mut Vec<u8>) {
    let encoded = interstice_abi::codec::encode_fields(row, &schema.fields, types, out);
    debug_assert!(encoded.is_ok(), "stored row does not match its schema");
}

fn printed(v: &Value) -> String {
    v.to_string()
}

impl Table {
    /// An empty table. The schema must have been validated.
    pub fn new(schema: Arc<TableSchema>, types: Arc<TypeSet>) -> Table {
        let indexes = schema
            .indexes
            .iter()
            .map(|i| SecondaryIndex {
                field: usize::from(i.field),
                unique: i.unique,
                auto_inc: i.auto_inc,
                next: 1,
                map: match i.kind {
                    IndexKind::Hash => IndexMap::Hash(Default::default()),
                    IndexKind::BTree => IndexMap::BTree(BTreeMap::new()),
                },
            })
            .collect();
        let scalar_rows = schema.fields.iter().all(|f| {
            use ValueType::*;
            matches!(
                f.ty,
                Unit | Bool | U8 | U16 | U32 | U64 | I8 | I16 | I32 | I64 | F32 | F64
            )
        });
        Table {
            pk: usize::from(schema.primary_key),
            schema,
            types,
            next_pk: 1,
            rows: RowStore::default(),
            indexes,
            scalar_rows,
            in_state_hash: true,
        }
    }

    /// The same table, left out of the state hash: for host bookkeeping that is transport
    /// numbering rather than state a replay must reproduce.
    pub fn outside_state_hash(mut self) -> Table {
        self.in_state_hash = false;
        self
    }

    /// Whether the state hash covers this table (see [`Table::outside_state_hash`]).
    pub fn in_state_hash(&self) -> bool {
        self.in_state_hash
    }

    /// Whether every field is a number, a bool or `()`, so a row holds no memory beyond its
    /// own vector (dropping its values frees nothing).
    pub fn has_scalar_rows(&self) -> bool {
        self.scalar_rows
    }

    /// The table's schema.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// The named types its rows use.
    pub fn types(&self) -> &Arc<TypeSet> {
        &self.types
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows in primary-key order.
    pub fn rows(&self) -> impl DoubleEndedIterator<Item = &Row> + ExactSizeIterator {
        self.rows.iter()
    }

    /// Rows after `after` (exclusive) in primary-key order.
    pub fn rows_after<'a>(&'a self, after: Option<&Value>) -> impl Iterator<Item = &'a Row> + 'a {
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.rows.range(lower, Bound::Unbounded)
    }

    /// The row with this primary key.
    pub fn get(&self, pk: &Value) -> Option<&Row> {
        self.rows.get(pk)
    }

    fn column(&self, field: usize) -> String {
        self.schema
            .fields
            .get(field)
            .map_or_else(|| format!("#{field}"), |f| f.name.clone())
    }

    fn index_of(&self, field: u16) -> Option<&SecondaryIndex> {
        self.indexes.iter().find(|i| i.field == usize::from(field))
    }

    /// The type of field `field`.
    pub fn field_type(&self, field: u16) -> Option<&ValueType> {
        self.schema.fields.get(usize::from(field)).map(|f| &f.ty)
    }

    /// Appends the encoding of a primary key.
    pub fn encode_pk(&self, pk: &Value, out: &mut Vec<u8>) {
        let encoded = encode_value(pk, self.schema.primary_key_type(), &self.types, out);
        debug_assert!(encoded.is_ok(), "stored key does not match its schema");
    }

    /// The next value of each `auto_inc` counter: the primary key's, then each index's.
    pub fn counters(&self) -> (i128, Vec<(u16, i128)>) {
        (
            self.next_pk,
            self.indexes
                .iter()
                .filter(|i| i.auto_inc)
                .map(|i| (i.field as u16, i.next))
                .collect(),
        )
    }

    /// Restores counters saved by [`Table::counters`] (never lowering them).
    pub fn restore_counters(&mut self, next_pk: i128, indexes: &[(u16, i128)]) {
        self.next_pk = self.next_pk.max(next_pk);
        for (field, next) in indexes {
            if let Some(index) = self
                .indexes
                .iter_mut()
                .find(|i| i.field == usize::from(*field))
            {
                index.next = index.next.max(*next);
            }
        }
    }

    /// Stores a row read back from disk, replacing any row with its primary key, and moves the
    /// `auto_inc` counters past its values.
    pub fn put_recovered(&mut self, row: Row) -> Result<(), HostError> {
        if row.len() != self.schema.fields.len() {
            return Err(HostError::InvalidPayload("wrong number of fields".into()));
        }
        if self.schema.primary_key_auto_inc
            && let Some(v) = row[self.pk].as_i128()
        {
            self.next_pk = self.next_pk.max(v + 1);
        }
        for index in &mut self.indexes {
            if index.auto_inc
                && let Some(v) = row[index.field].as_i128()
            {
                index.next = index.next.max(v + 1);
            }
        }
        self.restore_row(row);
        Ok(())
    }

    /// Removes a row while replaying a log.
    pub fn delete_recovered(&mut self, pk: &Value) {
        self.remove_row(pk);
    }

    /// Decodes an encoded row of this table.
    pub fn decode_row(&self, bytes: &[u8]) -> Result<Row, HostError> {
        self.decode_row_into(bytes, Vec::new())
    }

    /// Decodes an encoded row of this table into `row`'s allocation (a row dropped earlier).
    pub fn decode_row_into(&self, bytes: &[u8], mut row: Row) -> Result<Row, HostError> {
        // The row type is a struct of exactly the table's fields (checked with the schema).
        match decode_fields_into(&self.schema.fields, &self.types, bytes, &mut row) {
            Ok(()) => Ok(row),
            Err(e) => Err(HostError::InvalidPayload(format!(
                "row of {}: {e}",
                self.schema.name
            ))),
        }
    }

    /// Decodes an encoded value of field `field`'s type.
    pub fn decode_key(&self, field: u16, bytes: &[u8]) -> Result<Value, HostError> {
        let ty = self
            .field_type(field)
            .ok_or_else(|| HostError::NoSuchIndex {
                table: self.schema.name.clone(),
                field,
                expected: "field".into(),
            })?;
        decode_exact(ty, &self.types, bytes).map_err(|e| {
            HostError::InvalidPayload(format!(
                "key of {}.{}: {e}",
                self.schema.name,
                self.column(field.into())
            ))
        })
    }

    /// Decodes an encoded primary key.
    pub fn decode_pk(&self, bytes: &[u8]) -> Result<Value, HostError> {
        self.decode_key(self.schema.primary_key, bytes)
    }

    /// Appends the encoding of `row`.
    pub fn encode_row(&self, row: &[Value], out: &mut Vec<u8>) {
        encode_fields(row, &self.schema, &self.types, out);
    }

    fn assign(
        next: &mut i128,
        slot: &mut Value,
        table: &str,
        column: String,
    ) -> Result<(), HostError> {
        let Some(current) = slot.as_i128() else {
            return Ok(());
        };
        if current == 0 {
            let generated = slot
                .with_integer(*next)
                .ok_or_else(|| HostError::AutoIncOverflow {
                    table: table.into(),
                    column,
                })?;
            *slot = generated;
            *next += 1;
        } else if current >= *next {
            *next = current + 1;
        }
        Ok(())
    }

    /// Inserts a row, generating `auto_inc` values for zeroed columns. Counters are never
    /// rolled back, so a generated value is never reused.
    /// The stored row is encoded into `out`.
    pub fn insert(
        &mut self,
        mut row: Row,
        undo: &mut Vec<Undo>,
        table_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), HostError> {
        if row.len() != self.schema.fields.len() {
            return Err(HostError::InvalidPayload("wrong number of fields".into()));
        }
        if self.schema.primary_key_auto_inc {
            let column = self.column(self.pk);
            Self::assign(
                &mut self.next_pk,
                &mut row[self.pk],
                &self.schema.name,
                column,
            )?;
        }
        for i in 0..self.indexes.len() {
            if self.indexes[i].auto_inc {
                let field = self.indexes[i].field;
                let column = self.column(field);
                let index = &mut self.indexes[i];
                Self::assign(&mut index.next, &mut row[field], &self.schema.name, column)?;
            }
        }
        let pk = row[self.pk].clone();
        if self.rows.contains(&pk) {
            return Err(HostError::UniqueViolation {
                table: self.schema.name.clone(),
                column: self.column(self.pk),
                key: printed(&pk),
            });
        }
        for index in &self.indexes {
            if index.unique && index.map.get(&row[index.field]).is_some() {
                return Err(HostError::UniqueViolation {
                    table: self.schema.name.clone(),
                    column: self.column(index.field),
                    key: printed(&row[index.field]),
                });
            }
        }
        for index in &mut self.indexes {
            index.map.add(row[index.field].clone(), pk.clone());
        }
        undo.push(Undo::Inserted {
            table: table_id,
            pk: pk.clone(),
        });
        let stored = self.rows.insert_new(pk, row);
        encode_fields(stored, &self.schema, &self.types, out);
        Ok(())
    }

    /// Replaces the row with the same primary key; the stored row is encoded into `echo` when
    /// one is given. Returns whether the new row differs from the old one.
    pub fn update(
        &mut self,
        row: Row,
        undo: &mut Vec<Undo>,
        table_id: u32,
        echo: Option<&mut Vec<u8>>,
    ) -> Result<bool, HostError> {
        if row.len() != self.schema.fields.len() {
            return Err(HostError::InvalidPayload("wrong number of fields".into()));
        }
        let Some(slot) = self.rows.slot_of(&row[self.pk]) else {
            return Err(HostError::NotFound {
                table: self.schema.name.clone(),
                key: printed(&row[self.pk]),
            });
        };
        let old = self.rows.at(slot);
        let pk = &row[self.pk];
        for index in &self.indexes {
            let key = &row[index.field];
            if index.unique
                && *key != old[index.field]
                && index
                    .map
                    .get(key)
                    .is_some_and(|pks| pks.iter().any(|p| p != pk))
            {
                return Err(HostError::UniqueViolation {
                    table: self.schema.name.clone(),
                    column: self.column(index.field),
                    key: printed(key),
                });
            }
        }
        for index in &mut self.indexes {
            if row[index.field] != old[index.field] {
                index.map.remove(&old[index.field], pk);
                index.map.add(row[index.field].clone(), pk.clone());
            }
        }
        let old = self.rows.replace_at(slot, row);
        let new = self.rows.at(slot);
        let changed = old != *new;
        if let Some(out) = echo {
            encode_fields(new, &self.schema, &self.types, out);
        }
        undo.push(Undo::Updated {
            table: table_id,
            old,
        });
        Ok(changed)
    }

    /// Removes the row with this primary key; whether there was one.
    pub fn delete(&mut self, pk: &Value, undo: &mut Vec<Undo>, table_id: u32) -> bool {
        match self.remove_row(pk) {
            Some(row) => {
                undo.push(Undo::Deleted {
                    table: table_id,
                    row,
                });
                true
            }
            None => false,
        }
    }

    /// Removes every row; how many there were.
    pub fn clear(&mut self, undo: &mut Vec<Undo>, table_id: u32) -> u64 {
        let rows = self.rows.take_all();
        for index in &mut self.indexes {
            index.map.clear();
        }
        let n = rows.len() as u64;
        undo.extend(rows.into_iter().map(|row| Undo::Deleted {
            table: table_id,
            row,
        }));
        n
    }

    /// Removes a row and its index entries, without recording undo.
    pub(super) fn remove_row(&mut self, pk: &Value) -> Option<Row> {
        let row = self.rows.remove(pk)?;
        for index in &mut self.indexes {
            index.map.remove(&row[index.field], pk);
        }
        Some(row)
    }

    /// Puts a row back (rollback of a delete or update), without recording undo.
    pub(super) fn restore_row(&mut self, row: Row) {
        let pk = row[self.pk].clone();
        if let Some(current) = self.remove_row(&pk) {
            drop(current);
        }
        for index in &mut self.indexes {
            index.map.add(row[index.field].clone(), pk.clone());
        }
        self.rows.insert_new(pk, row);
    }

    /// The row whose unique column `field` equals `key`.
    pub fn find_unique(&self, field: u16, key: &Value) -> Result<Option<&Row>, HostError> {
        let index = self
            .index_of(field)
            .filter(|i| i.unique)
            .ok_or_else(|| self.no_index(field, "unique"))?;
        Ok(index
            .map
            .get(key)
            .and_then(|pks| pks.first())
            .and_then(|pk| self.rows.get(pk)))
    }

    /// Rows whose indexed column `field` equals `key`, in primary-key order.
    pub fn filter(&self, field: u16, key: &Value) -> Result<Vec<&Row>, HostError> {
        Ok(self.filter_iter(field, key)?.collect())
    }

    /// [`filter`](Table::filter), lazily: a caller that stops early does no more work.
    pub fn filter_iter<'a>(
        &'a self,
        field: u16,
        key: &Value,
    ) -> Result<impl Iterator<Item = &'a Row> + 'a, HostError> {
        let index = self
            .index_of(field)
            .ok_or_else(|| self.no_index(field, "hash or btree"))?;
        Ok(index
            .map
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|pk| self.rows.get(pk)))
    }

    /// Rows whose btree-indexed column `field` lies between the bounds, in key order.
    pub fn range(
        &self,
        field: u16,
        lower: Bound<Value>,
        upper: Bound<Value>,
    ) -> Result<Vec<&Row>, HostError> {
        Ok(self.range_iter(field, lower, upper)?.collect())
    }

    /// [`range`](Table::range), lazily: a caller that stops early does no more work.
    pub fn range_iter(
        &self,
        field: u16,
        lower: Bound<Value>,
        upper: Bound<Value>,
    ) -> Result<impl Iterator<Item = &Row>, HostError> {
        let Some(IndexMap::BTree(map)) = self.index_of(field).map(|i| &i.map) else {
            return Err(self.no_index(field, "btree"));
        };
        let mut empty = false;
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) =
            (&lower, &upper)
        {
            // BTreeMap::range panics on inverted bounds; an empty range is the answer.
            let both_excluded_equal =
                matches!((&lower, &upper), (Bound::Excluded(_), Bound::Excluded(_))) && l == u;
            empty = l > u || both_excluded_equal;
        }
        let walk = (!empty).then(move || {
            map.range((lower, upper))
                .flat_map(|(_, pks)| pks.iter())
                .filter_map(|pk| self.rows.get(pk))
        });
        Ok(walk.into_iter().flatten())
    }

    /// How many rows have `key` in the indexed column `field` (0 without such an index).
    pub fn count_where(&self, field: u16, key: &Value) -> usize {
        self.index_of(field)
            .and_then(|i| i.map.get(key))
            .map_or(0, Keys::len)
    }

    /// The lowest primary key of the rows that have `key` in the indexed column `field`.
    pub fn first_key_where(&self, field: u16, key: &Value) -> Option<&Value> {
        self.index_of(field)?.map.get(key)?.first()
    }

    fn no_index(&self, field: u16, expected: &str) -> HostError {
        HostError::NoSuchIndex {
            table: self.schema.name.clone(),
            field,
            expected: expected.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::host_table;
    use crate::db::tx::rollback;
    use interstice_abi::IndexSchema;

    /// `id` (primary key), `name` (unique hash index), `score`.
    fn table() -> Table {
        host_table(
            "players",
            "Player",
            &[
                ("id", ValueType::U32),
                ("name", ValueType::String),
                ("score", ValueType::I64),
            ],
            0,
            false,
            vec![IndexSchema {
                field: 1,
                kind: IndexKind::Hash,
                unique: true,
                auto_inc: false,
            }],
        )
    }

    fn player(id: u32, name: &str, score: i64) -> Row {
        vec![
            Value::U32(id),
            Value::String(name.into()),
            Value::I64(score),
        ]
    }

    fn ids(t: &Table) -> Vec<u32> {
        t.rows()
            .map(|r| match r[0] {
                Value::U32(id) => id,
                _ => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn updates_echo_only_when_asked_and_keep_indexes_and_order() {
        let mut t = table();
        let mut undo = Vec::new();
        let mut out = Vec::new();
        for (id, name) in [(3, "c"), (1, "a"), (2, "b")] {
            t.insert(player(id, name, 0), &mut undo, 0, &mut out)
                .unwrap();
        }
        assert_eq!(ids(&t), [1, 2, 3]);
        out.clear();
        t.update(player(2, "bee", 5), &mut undo, 0, Some(&mut out))
            .unwrap();
        assert_eq!(t.decode_row(&out).unwrap(), player(2, "bee", 5));
        out.clear();
        t.update(player(2, "bee", 6), &mut undo, 0, None).unwrap();
        assert!(out.is_empty());
        assert_eq!(t.get(&Value::U32(2)), Some(&player(2, "bee", 6)));
        let by_name = |t: &Table, n: &str| {
            t.find_unique(1, &Value::String(n.into()))
                .unwrap()
                .map(|r| r[0].clone())
        };
        assert_eq!(by_name(&t, "bee"), Some(Value::U32(2)));
        assert_eq!(by_name(&t, "b"), None);
        // Taking a unique name from another row, or updating a missing row, fails and
        // changes nothing.
        let before = undo.len();
        assert!(matches!(
            t.update(player(3, "a", 0), &mut undo, 0, None),
            Err(HostError::UniqueViolation { .. })
        ));
        assert!(matches!(
            t.update(player(9, "z", 0), &mut undo, 0, None),
            Err(HostError::NotFound { .. })
        ));
        assert_eq!(undo.len(), before);
        assert_eq!(t.get(&Value::U32(3)), Some(&player(3, "c", 0)));
    }

    #[test]
    fn rollback_restores_rows_their_order_and_indexes() {
        let mut t = table();
        let mut undo = Vec::new();
        let mut out = Vec::new();
        for id in 1..=5 {
            t.insert(player(id, &format!("p{id}"), 0), &mut undo, 0, &mut out)
                .unwrap();
        }
        undo.clear(); // committed
        t.update(player(2, "two", 9), &mut undo, 0, None).unwrap();
        assert!(t.delete(&Value::U32(4), &mut undo, 0));
        t.insert(player(7, "p7", 0), &mut undo, 0, &mut out)
            .unwrap();
        t.insert(player(4, "again", 0), &mut undo, 0, &mut out)
            .unwrap();
        assert_eq!(ids(&t), [1, 2, 3, 4, 5, 7]);
        let mut tables = [t];
        rollback(&mut tables, &mut undo);
        let [t] = tables;
        assert_eq!(ids(&t), [1, 2, 3, 4, 5]);
        for id in 1..=5 {
            assert_eq!(
                t.get(&Value::U32(id)),
                Some(&player(id, &format!("p{id}"), 0))
            );
        }
        assert!(
            t.find_unique(1, &Value::String("two".into()))
                .unwrap()
                .is_none()
        );
        assert!(
            t.find_unique(1, &Value::String("again".into()))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            t.find_unique(1, &Value::String("p4".into())).unwrap(),
            Some(&player(4, "p4", 0))
        );
        let after: Vec<_> = t
            .rows_after(Some(&Value::U32(3)))
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(after, [Value::U32(4), Value::U32(5)]);
    }
}
