//! Reading a logged table as it was after a past transaction: its kept versions up to that
//! point, the last of each row. Read-only by construction: what it returns are copies, and
//! nothing of it reaches the live tables.

use super::read::{Version, read_in};
use super::{
    HistoryError, HistoryQuery, KeyLayouts, LiveIndexes, MAX_VERSIONS_PER_READ, ordered_files,
};
use crate::db::Table;
use crate::wasm::meter::{FUEL_PER_BYTE, FUEL_PER_ROW};
use interstice_abi::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

/// Where a past read looks: the data directory, the durable end of the segment being written
/// and the in-memory indexes of the segments not archived yet.
pub(in crate::storage) struct Source<'a> {
    pub root: &'a Path,
    pub durable: (&'a Path, u64),
    pub live: &'a mut LiveIndexes,
}

/// What a past read reads: `module`'s logged `table` as the node has it now (its rows are
/// decoded with it), the layouts that index the log segments (for one row's read), and what
/// it may cost, in fuel (`u64::MAX`: no bound).
pub(in crate::storage) struct Target<'a> {
    pub module: &'a str,
    pub table: &'a Table,
    pub layouts: Option<&'a KeyLayouts>,
    pub budget: u64,
    /// What it has read so far (what a query is charged for).
    pub spent: Spent,
}

/// What a past read has read: versions returned and bytes of history files and log read.
#[derive(Debug, Default)]
pub(in crate::storage) struct Spent {
    pub versions: Cell<u64>,
    pub bytes: Cell<u64>,
}

impl Spent {
    /// In fuel: [`FUEL_PER_ROW`] a version, [`FUEL_PER_BYTE`] a byte read.
    pub fn fuel(&self) -> u64 {
        self.versions
            .get()
            .saturating_mul(FUEL_PER_ROW)
            .saturating_add(self.bytes.get().saturating_mul(FUEL_PER_BYTE))
    }

    /// Refuses once more was read than `budget` (fuel) pays for.
    pub fn check(&self, budget: u64) -> Result<(), HistoryError> {
        if self.fuel() > budget {
            return Err(HistoryError::OverBudget { budget });
        }
        Ok(())
    }
}

impl Target<'_> {
    /// The next read's limit: one more version than what is left of the budget pays for
    /// (so a read that finds more says so), at most one read's.
    fn limit(&self) -> usize {
        let left = self.budget.saturating_sub(self.spent.fuel()) / FUEL_PER_ROW;
        usize::try_from(left.saturating_add(1))
            .map_or(MAX_VERSIONS_PER_READ, |l| l.min(MAX_VERSIONS_PER_READ))
    }

    /// One read of the target's versions (of the row under `key`, or of every row) in
    /// `from_seq..=to_seq`, paid for; whether it was cut at its limit (more may follow).
    fn read(
        &self,
        source: &mut Source<'_>,
        key: Option<&Value>,
        (from_seq, to_seq): (u64, u64),
    ) -> Result<(Vec<Version>, bool), HistoryError> {
        let limit = self.limit();
        let query = HistoryQuery {
            module: self.module,
            table: &self.table.schema().name,
            key,
            from_seq,
            to_seq,
            limit,
        };
        let versions = read_in(
            source.root,
            (self.table, self.layouts),
            &query,
            (source.durable, Some((&self.spent, self.budget))),
            source.live,
        )?;
        let read = self.spent.versions.get() + versions.len() as u64;
        self.spent.versions.set(read);
        self.spent.check(self.budget)?;
        let full = versions.len() >= limit;
        Ok((versions, full))
    }
}

/// Refuses a point before an upgrade started the table over.
fn check_not_started_over(root: &Path, target: &Target<'_>, seq: u64) -> Result<(), HistoryError> {
    let table = super::started_over_key(target.module, &target.table.schema().name);
    match super::removals(root)?.get(&table) {
        Some(&at) if seq < at => Err(HistoryError::StartedOver { table, at }),
        _ => Ok(()),
    }
}

/// Refuses a point whose history is not all kept: without the versions before it, a row
/// unchanged since could not be told from one that never was.
fn check_complete(root: &Path, seq: u64) -> Result<(), HistoryError> {
    let first = ordered_files(root)?.first().map_or(0, |(first, _)| *first);
    if first > 0 {
        return Err(HistoryError::Incomplete { first, seq });
    }
    Ok(())
}

/// The rows of the target table as they were after transaction `seq`, in primary key order.
pub(in crate::storage) fn table_as_of(
    mut source: Source<'_>,
    target: &Target<'_>,
    seq: u64,
) -> Result<Vec<Vec<Value>>, HistoryError> {
    check_complete(source.root, seq)?;
    check_not_started_over(source.root, target, seq)?;
    let mut rows: BTreeMap<Value, Option<Vec<Value>>> = BTreeMap::new();
    let mut from_seq = 0;
    loop {
        let (versions, full) = target.read(&mut source, None, (from_seq, seq))?;
        let (first, last) = match (versions.first(), versions.last()) {
            (Some(first), Some(last)) => (first.seq, last.seq),
            _ => break,
        };
        for version in versions {
            rows.insert(version.key, version.row);
        }
        if !full {
            break;
        }
        if first == last {
            return Err(HistoryError::TooManyVersions { seq: first });
        }
        // The last transaction may be cut off: read it again, whole (a version read twice
        // is the same row).
        from_seq = last;
    }
    // Retention runs on the snapshot thread: if it removed the oldest file meanwhile, what
    // was read is not the whole past.
    check_complete(source.root, seq)?;
    Ok(rows.into_values().flatten().collect())
}

/// The row of the target table under `key` as it was after transaction `seq` (`None`: there
/// was none).
pub(in crate::storage) fn row_as_of(
    mut source: Source<'_>,
    target: &Target<'_>,
    key: &Value,
    seq: u64,
) -> Result<Option<Vec<Value>>, HistoryError> {
    check_complete(source.root, seq)?;
    check_not_started_over(source.root, target, seq)?;
    let mut row = None;
    let mut from_seq = 0;
    loop {
        let (versions, full) = target.read(&mut source, Some(key), (from_seq, seq))?;
        let Some(last) = versions.last().map(|v| v.seq) else {
            break;
        };
        row = versions.into_iter().next_back().and_then(|v| v.row);
        if !full {
            break;
        }
        from_seq = last.saturating_add(1);
    }
    check_complete(source.root, seq)?;
    Ok(row)
}
