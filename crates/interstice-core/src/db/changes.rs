//! The net change of a transaction: one entry per row it touched, with the row as it was
//! before the transaction. Table events, the journal and published event streams all describe
//! transactions this way, so a stream rebuilt from the log during recovery numbers its events
//! exactly as the live node did.

use super::table::Table;
use super::tx::Undo;
use interstice_abi::Value;
use rustc_hash::FxHashSet;

/// A row a transaction touched.
#[derive(Debug)]
pub struct Touched<'a> {
    /// Table id within the module.
    pub table: u32,
    /// The row's primary key.
    pub pk: Value,
    /// The row before the transaction (`None`: it did not exist).
    pub before: Option<&'a [Value]>,
}

/// The rows `undo` touched, each once, in the order the transaction first touched them.
/// `tables` are the module's tables (the state after the transaction).
pub fn touched<'a>(tables: &[Table], undo: &'a [Undo]) -> Vec<Touched<'a>> {
    let pk_of = |table: u32, row: &[Value]| -> Option<Value> {
        let t = tables.get(table as usize)?;
        row.get(usize::from(t.schema().primary_key)).cloned()
    };
    let mut firsts: Vec<Touched<'a>> = Vec::with_capacity(undo.len());
    let mut seen: FxHashSet<(u32, Value)> = FxHashSet::default();
    for entry in undo {
        let (table, pk, before) = match entry {
            Undo::Inserted { table, pk } => (*table, pk.clone(), None),
            Undo::Updated { table, old } | Undo::Deleted { table, row: old } => {
                let Some(pk) = pk_of(*table, old) else {
                    continue;
                };
                (*table, pk, Some(old.as_slice()))
            }
        };
        // Most transactions touch a few rows: a linear check beats building a set.
        let repeated = if firsts.len() < 32 {
            firsts.iter().any(|t| t.table == table && t.pk == pk)
        } else {
            if seen.is_empty() {
                seen.extend(firsts.iter().map(|t| (t.table, t.pk.clone())));
            }
            !seen.insert((table, pk.clone()))
        };
        if !repeated {
            firsts.push(Touched { table, pk, before });
        }
    }
    firsts
}
