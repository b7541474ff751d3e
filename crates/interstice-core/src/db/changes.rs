//! The net change of a transaction: one entry per row it touched, with the row as it was
//! before the transaction. Table events, the journal and published event streams all describe
//! transactions this way, so a stream rebuilt from the log during recovery numbers its events
//! exactly as the live node did.
//!
//! [`touched`] walks an undo log; [`NetChange`] is what the readers after a commit share: the
//! rows that really changed, with their state before and after, listed once however many
//! readers ask.

use super::table::Table;
use super::tx::Undo;
use interstice_abi::KeyHash;
use interstice_abi::Value;
use std::cell::OnceCell;
use std::collections::HashSet;

/// A row a transaction touched.
#[derive(Debug)]
pub struct Touched<'a> {
    /// Table id within the module.
    pub table: u32,
    /// The row's primary key.
    pub pk: &'a Value,
    /// The row before the transaction (`None`: it did not exist).
    pub before: Option<&'a [Value]>,
}

/// The rows `undo` touched, each once, in the order the transaction first touched them.
/// `tables` are the module's tables (the state after the transaction).
pub fn touched<'a>(
    tables: &'a [Table],
    undo: &'a [Undo],
) -> impl Iterator<Item = Touched<'a>> + 'a {
    let entries = undo.iter().filter_map(|entry| entry_of(tables, entry));
    // A transaction that walks its rows in key order (the usual way to change many) touches
    // each row once: one comparison per entry proves it, without hashing every key.
    let mut previous: Option<(u32, &Value)> = None;
    let ascending = entries.clone().all(|t| {
        let key = (t.table, t.pk);
        let after = previous.is_none_or(|p| p < key);
        previous = Some(key);
        after
    });
    if ascending {
        return TouchedRows::Walk(entries);
    }
    let mut firsts: Vec<Touched<'a>> = Vec::with_capacity(undo.len());
    // Keys seen so far; filled only once the transaction is past a few rows, since for a
    // few a linear check is cheaper than hashing. Keys are borrowed from the undo log.
    let mut seen: HashSet<(u32, &'a Value), KeyHash> = HashSet::default();
    for touched in entries {
        let (table, pk) = (touched.table, touched.pk);
        let repeated = if firsts.len() < 32 {
            firsts.iter().any(|t| t.table == table && t.pk == pk)
        } else {
            if seen.is_empty() {
                seen.reserve(undo.len());
                seen.extend(firsts.iter().map(|t| (t.table, t.pk)));
            }
            !seen.insert((table, pk))
        };
        if !repeated {
            firsts.push(touched);
        }
    }
    TouchedRows::Listed(firsts.into_iter())
}

/// The rows a transaction touched: its undo log itself when that touches each row once, or
/// the list of first touches.
enum TouchedRows<'a, W> {
    Walk(W),
    Listed(std::vec::IntoIter<Touched<'a>>),
}

impl<'a, W: Iterator<Item = Touched<'a>>> Iterator for TouchedRows<'a, W> {
    type Item = Touched<'a>;

    fn next(&mut self) -> Option<Touched<'a>> {
        match self {
            TouchedRows::Walk(walk) => walk.next(),
            TouchedRows::Listed(list) => list.next(),
        }
    }
}

/// The row an undo entry is about.
fn entry_of<'a>(tables: &[Table], entry: &'a Undo) -> Option<Touched<'a>> {
    Some(match entry {
        Undo::Inserted { table, pk } => Touched {
            table: *table,
            pk,
            before: None,
        },
        Undo::Updated { table, old } | Undo::Deleted { table, row: old } => Touched {
            table: *table,
            pk: old.get(usize::from(
                tables.get(*table as usize)?.schema().primary_key,
            ))?,
            before: Some(old.as_slice()),
        },
    })
}

/// How a row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChangeKind {
    /// It did not exist before.
    Insert,
    /// It exists before and after, with other values.
    Update,
    /// It no longer exists.
    Delete,
}

/// A row a transaction changed: touched, and different afterwards.
#[derive(Debug, Clone, Copy)]
pub struct RowChange<'a> {
    /// Table id within the module.
    pub table: u32,
    /// The row's primary key.
    pub pk: &'a Value,
    /// How it changed.
    pub kind: RowChangeKind,
    /// The row before the transaction (`None` for an insert).
    pub before: Option<&'a [Value]>,
    /// The row after it (`None` for a delete).
    pub after: Option<&'a [Value]>,
}

/// What one module's committed transaction changed, for the readers that follow commits (the
/// published streams, local subscribers, the game's table feed): the list is made on the first
/// [`rows`](NetChange::rows) call, so each reader that needs it shares one walk of the undo
/// log, and a commit nobody reads costs nothing.
pub struct NetChange<'a> {
    tables: &'a [Table],
    undo: &'a [Undo],
    rows: OnceCell<Vec<RowChange<'a>>>,
}

impl<'a> NetChange<'a> {
    /// The change `undo` made; `tables` are the module's tables after it.
    pub fn new(tables: &'a [Table], undo: &'a [Undo]) -> NetChange<'a> {
        NetChange {
            tables,
            undo,
            rows: OnceCell::new(),
        }
    }

    /// The module's tables, after the transaction.
    pub fn tables(&self) -> &'a [Table] {
        self.tables
    }

    /// The undo log it was made from.
    pub fn undo(&self) -> &'a [Undo] {
        self.undo
    }

    /// The rows that changed, each once, in the order the transaction first touched them.
    pub fn rows(&self) -> &[RowChange<'a>] {
        self.rows.get_or_init(|| {
            let tables = self.tables;
            touched(tables, self.undo)
                .filter_map(|t| {
                    let after = tables.get(t.table as usize)?.get(t.pk).map(Vec::as_slice);
                    let kind = match (t.before, after) {
                        (None, Some(_)) => RowChangeKind::Insert,
                        (Some(_), None) => RowChangeKind::Delete,
                        (Some(old), Some(new)) if old != new => RowChangeKind::Update,
                        _ => return None,
                    };
                    Some(RowChange {
                        table: t.table,
                        pk: t.pk,
                        kind,
                        before: t.before,
                        after,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::host_table;
    use interstice_abi::ValueType;

    fn table() -> Table {
        host_table(
            "t",
            "T",
            &[("id", ValueType::U32), ("v", ValueType::U32)],
            0,
            false,
            Vec::new(),
        )
    }

    fn updated(id: u32, v: u32) -> Undo {
        Undo::Updated {
            table: 0,
            old: vec![Value::U32(id), Value::U32(v)],
        }
    }

    fn keys(touched: &[Touched<'_>]) -> Vec<(u32, Option<u32>)> {
        touched
            .iter()
            .map(|t| {
                let before = t.before.map(|row| match row[1] {
                    Value::U32(v) => v,
                    _ => u32::MAX,
                });
                match t.pk {
                    Value::U32(k) => (*k, before),
                    _ => (u32::MAX, before),
                }
            })
            .collect()
    }

    #[test]
    fn each_row_once_with_its_first_before_image_whatever_the_order() {
        let tables = [table()];
        // In key order (the fast path), past the linear-check size.
        let walk: Vec<Undo> = (0..100).map(|i| updated(i, i)).collect();
        let t: Vec<_> = touched(&tables, &walk).collect();
        assert_eq!(keys(&t), (0..100).map(|i| (i, Some(i))).collect::<Vec<_>>());
        // Out of order with repeats, short and long: the first before-image wins.
        for n in [10u32, 100] {
            let mut undo: Vec<Undo> = (0..n).rev().map(|i| updated(i, i)).collect();
            undo.push(updated(n - 1, 1000));
            undo.push(Undo::Inserted {
                table: 0,
                pk: Value::U32(n),
            });
            undo.push(Undo::Deleted {
                table: 0,
                row: vec![Value::U32(n), Value::U32(7)],
            });
            undo.push(updated(0, 2000));
            let t: Vec<_> = touched(&tables, &undo).collect();
            let mut expected: Vec<_> = (0..n).rev().map(|i| (i, Some(i))).collect();
            expected.push((n, None));
            assert_eq!(keys(&t), expected, "{n} rows");
        }
        // Ascending but touching one row twice is not the fast path's to take.
        let twice = [updated(1, 1), updated(1, 5), updated(2, 2)];
        let t: Vec<_> = touched(&tables, &twice).collect();
        assert_eq!(keys(&t), [(1, Some(1)), (2, Some(2))]);
    }

    #[test]
    fn a_net_change_lists_changed_rows_once_with_both_images() {
        let mut t = table();
        // After the transaction: 1 updated to 10, 2 rewritten with its old value, 3 inserted,
        // 4 deleted.
        for row in [[1, 10], [2, 2], [3, 3]] {
            t.put_recovered(vec![Value::U32(row[0]), Value::U32(row[1])])
                .unwrap();
        }
        let tables = [t];
        let undo = [
            updated(1, 1),
            updated(2, 2),
            Undo::Inserted {
                table: 0,
                pk: Value::U32(3),
            },
            Undo::Deleted {
                table: 0,
                row: vec![Value::U32(4), Value::U32(4)],
            },
            updated(1, 5),
        ];
        let change = NetChange::new(&tables, &undo);
        let listed: Vec<_> = change
            .rows()
            .iter()
            .map(|r| {
                (
                    r.pk.clone(),
                    r.kind,
                    r.before.map(<[_]>::to_vec),
                    r.after.map(<[_]>::to_vec),
                )
            })
            .collect();
        let row = |k: u32, v: u32| Some(vec![Value::U32(k), Value::U32(v)]);
        assert_eq!(
            listed,
            [
                (Value::U32(1), RowChangeKind::Update, row(1, 1), row(1, 10)),
                (Value::U32(3), RowChangeKind::Insert, None, row(3, 3)),
                (Value::U32(4), RowChangeKind::Delete, row(4, 4), None),
            ]
        );
        // Listed once: a second reader gets the same slice.
        assert!(std::ptr::eq(change.rows(), change.rows()));
    }
}
