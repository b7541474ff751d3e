//! The net change of a transaction: one entry per row it touched, with the row as it was
//! before the transaction. Table events, the journal and published event streams all describe
//! transactions this way, so a stream rebuilt from the log during recovery numbers its events
//! exactly as the live node did.

use super::table::Table;
use super::tx::Undo;
use interstice_abi::KeyHash;
use interstice_abi::Value;
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
}
