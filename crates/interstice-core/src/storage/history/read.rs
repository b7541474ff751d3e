//! Reading history: the versions of a logged table's rows, from the history files (through
//! their indexes for one row) and the log segments not pruned yet.

use super::log::{ChangeGroup, Record, parse_record};
use super::{
    KeyLayouts, LiveIndexes, MAX_VERSIONS_PER_READ, StorageError, index, key_layouts,
    ordered_files, read_for_history, records_of, removals,
};
use crate::db::Database;
use interstice_abi::{Persistence, Value};
use std::path::Path;

/// One version of a row: its state after a committed transaction, and that transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The transaction's sequence number in the log.
    pub seq: u64,
    /// Its logical time, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran (the row's own module, or one that called it).
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its encoded arguments, shared by the versions of one transaction (a transaction that
    /// changed many rows is not copied for each).
    pub args: std::sync::Arc<[u8]>,
    /// The node id of the peer whose call it ran (another node, or a CLI's key); `None` for a
    /// call made on this node (the game, a schedule, a subscription).
    pub caller: Option<String>,
    /// The row's primary key.
    pub key: Value,
    /// The row after the transaction; `None`: it was deleted.
    pub row: Option<Vec<Value>>,
}

/// What to read: one table's versions, of one row or all, between two sequence numbers.
#[derive(Debug, Clone)]
pub struct HistoryQuery<'a> {
    /// The module.
    pub module: &'a str,
    /// Its table (a logged one).
    pub table: &'a str,
    /// Only this row's versions (`None`: every row's).
    pub key: Option<&'a Value>,
    /// The first sequence number to read (inclusive).
    pub from_seq: u64,
    /// The last one (inclusive).
    pub to_seq: u64,
    /// Most versions returned (at most [`MAX_VERSIONS_PER_READ`]).
    pub limit: usize,
}

/// Why a history read cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No such module, or no such table in it.
    #[error("no table `{module}.{table}` on this node")]
    NoSuchTable {
        /// The module.
        module: String,
        /// The table.
        table: String,
    },
    /// The table is not logged: it keeps its latest state only.
    #[error("`{module}.{table}` is {persistence:?}, not logged: it keeps no history")]
    NotLogged {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// Its persistence.
        persistence: Persistence,
    },
    /// A past state asked for whose history is not all kept (retention removed the oldest,
    /// or the log was pruned before history was kept).
    #[error(
        "history before transaction {first} is gone (removed by retention or pruned before \
         history was kept): the table as of transaction {seq} cannot be read"
    )]
    Incomplete {
        /// The first transaction still kept.
        first: u64,
        /// The point asked for.
        seq: u64,
    },
    /// One transaction changed more rows of the table than one read returns.
    #[error(
        "transaction {seq} changed more than {MAX_VERSIONS_PER_READ} rows of the table: read \
         one row's history"
    )]
    TooManyVersions {
        /// The transaction.
        seq: u64,
    },
    /// A past point before an upgrade started the table over (its rows did not carry over):
    /// what it held then is in the old layout.
    #[error(
        "`{table}` was started over by an upgrade at transaction {at} (its rows were dropped): \
         its state before that is not readable with today's layout"
    )]
    StartedOver {
        /// `module.table`.
        table: String,
        /// The first transaction after the upgrade.
        at: u64,
    },
    /// A past read would read more versions than its reader pays for (a query's fuel).
    #[error("the past read would read more than {budget} versions, what the call pays for")]
    OverBudget {
        /// The versions it could read.
        budget: u64,
    },
    /// A file could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reads versions from history files and then log segments of `root`, in sequence order,
/// decoding rows with the queried table as the database has it now.
pub(in crate::storage) fn read(
    root: &Path,
    db: &Database,
    query: &HistoryQuery<'_>,
    durable: (&Path, u64),
    live: &mut LiveIndexes,
) -> Result<Vec<Version>, HistoryError> {
    let table = logged_table(db, query)?;
    let layouts = query.key.map(|_| key_layouts(db));
    read_in(
        root,
        (table, layouts.as_ref()),
        query,
        (durable, None),
        live,
    )
}

/// Counts `bytes` read into `spend`, refusing them past its budget.
fn pay(spend: Option<(&super::as_of::Spent, u64)>, bytes: usize) -> Result<(), HistoryError> {
    if let Some((spent, budget)) = spend {
        let total = spent.bytes.get().saturating_add(bytes as u64);
        spent.bytes.set(total);
        spent.check(budget)?;
    }
    Ok(())
}

/// Where the queried table's history starts: at `query.from_seq`, or after the removal of a
/// namesake module or an upgrade that started the table over (the changes before are not
/// this table's).
fn first_of_this_table(root: &Path, query: &HistoryQuery<'_>) -> Result<u64, HistoryError> {
    let removed = removals(root)?;
    let started = super::started_over_key(query.module, query.table);
    Ok([removed.get(query.module), removed.get(&started)]
        .into_iter()
        .flatten()
        .fold(query.from_seq, |from, &at| from.max(at)))
}

/// [`read`] with the queried table (a logged one: checked) and, for one row's read, the
/// layouts that index the log segments, given. With `spend`, the bytes of every file read
/// (whole, or the records an index names) are counted, and the read is refused
/// ([`HistoryError::OverBudget`]) once they cost more than its budget (fuel).
pub(in crate::storage) fn read_in(
    root: &Path,
    (table, layouts): (&crate::db::Table, Option<&KeyLayouts>),
    query: &HistoryQuery<'_>,
    (durable, spend): ((&Path, u64), Option<(&super::as_of::Spent, u64)>),
    live: &mut LiveIndexes,
) -> Result<Vec<Version>, HistoryError> {
    check_logged(table, query)?;
    let limit = query.limit.min(MAX_VERSIONS_PER_READ);
    let files = ordered_files(root)?;
    let from_seq = first_of_this_table(root, query)?;
    let mut next = from_seq;
    let mut versions = Vec::new();
    let mut key_bytes = Vec::new();
    if let Some(key) = query.key {
        table.encode_pk(key, &mut key_bytes);
    }
    // The hash a file's index files the queried row under.
    let hash = query
        .key
        .map(|_| index::key_hash(query.module, query.table, &key_bytes));
    let segments: Vec<&Path> = files
        .iter()
        .filter(|(_, p)| p.extension().is_some_and(|e| e == "log"))
        .map(|(_, p)| p.as_path())
        .collect();
    live.retain(&segments);
    for (i, (first, path)) in files.iter().enumerate() {
        if *first > query.to_seq {
            break;
        }
        // A file's records come before the next file's first one.
        let later = files.get(i + 1).map(|(f, _)| *f);
        if later.is_some_and(|l| l <= from_seq && l != *first) {
            continue;
        }
        let mut take = |offset: u64, payload: &[u8]| -> Result<bool, HistoryError> {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: next,
                offset,
                reason: "undecodable payload".into(),
            })?;
            if record.seq < next || record.seq > query.to_seq {
                return Ok(false);
            }
            next = record.seq.saturating_add(1);
            collect(&record, table, query, &key_bytes, &mut versions).map_err(|reason| {
                StorageError::BadRecord {
                    path: path.clone(),
                    seq: record.seq,
                    offset,
                    reason,
                }
            })?;
            Ok(versions.len() >= limit)
        };
        // One row: only the records the file's index names (a history file's on disk, a log
        // segment's in memory). The next file's first record that is not this one's segment or
        // history bounds what the index may say this file holds.
        let next_first = files[i + 1..].iter().map(|(f, _)| *f).find(|f| f > first);
        let found = hash.zip(layouts).and_then(|(hash, layouts)| {
            indexed(
                (path, *first, next_first),
                hash,
                (durable, &mut *live),
                layouts,
            )
        });
        let records = match &found {
            Some(found) => match index::read_records(path, found) {
                Ok(records) => {
                    let read: usize = records.iter().flatten().map(|(_, r)| r.len()).sum();
                    pay(spend, read)?;
                    records
                }
                Err(StorageError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        // Without a usable index, or with one the file no longer matches: read it whole.
        if let (Some(found), Some(records)) = (found, records) {
            for (offset, payload) in &records {
                if take(*offset, payload)? {
                    versions.truncate(limit);
                    return Ok(versions);
                }
            }
            // Every record of the file is seen: the segment it was made from, if not pruned
            // yet, repeats them.
            next = next.max(found.last_seq.saturating_add(1));
            continue;
        }
        let bytes = match read_for_history(path, Some(durable)) {
            Ok(bytes) => {
                pay(spend, bytes.len())?;
                bytes
            }
            // Removed by retention since it was listed: what it held is gone.
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for (offset, payload) in records_of(path, &bytes)? {
            if take(offset, payload)? {
                versions.truncate(limit);
                return Ok(versions);
            }
        }
    }
    Ok(versions)
}

/// `module.table`, refused unless it is logged.
pub(in crate::storage) fn logged_table_in<'a>(
    db: &'a Database,
    module: &str,
    table: &str,
) -> Result<&'a crate::db::Table, HistoryError> {
    let query = HistoryQuery {
        module,
        table,
        key: None,
        from_seq: 0,
        to_seq: 0,
        limit: 0,
    };
    logged_table(db, &query)
}

/// The queried table, refused unless it is logged.
fn logged_table<'a>(
    db: &'a Database,
    query: &HistoryQuery<'_>,
) -> Result<&'a crate::db::Table, HistoryError> {
    let table = db
        .module(query.module)
        .and_then(|m| {
            m.guest_tables()
                .iter()
                .find(|t| t.schema().name == query.table)
        })
        .ok_or_else(|| HistoryError::NoSuchTable {
            module: query.module.into(),
            table: query.table.into(),
        })?;
    check_logged(table, query)?;
    Ok(table)
}

/// Refuses a table that is not logged: it keeps no history.
fn check_logged(table: &crate::db::Table, query: &HistoryQuery<'_>) -> Result<(), HistoryError> {
    if table.schema().persistence != Persistence::Logged {
        return Err(HistoryError::NotLogged {
            module: query.module.into(),
            table: query.table.into(),
            persistence: table.schema().persistence,
        });
    }
    Ok(())
}

/// What the index of `path` says of the row filed under `hash`: a history file's on disk, a
/// log segment's in memory (up to what is durable); `None`: read the file whole.
fn indexed(
    (path, first, next_first): (&Path, u64, Option<u64>),
    hash: u32,
    (durable, live): ((&Path, u64), &mut LiveIndexes),
    layouts: &KeyLayouts,
) -> Option<index::Found> {
    if path.extension().is_some_and(|e| e == "hist") {
        return index::lookup(path, hash, first, next_first);
    }
    let len = if path == durable.0 {
        durable.1
    } else {
        std::fs::metadata(path).ok()?.len()
    };
    live.lookup(path, len, hash, layouts)
}

/// Appends the versions `record` made of the queried rows.
fn collect(
    record: &Record<'_>,
    table: &crate::db::Table,
    query: &HistoryQuery<'_>,
    key_bytes: &[u8],
    out: &mut Vec<Version>,
) -> Result<(), String> {
    let changes = record
        .groups
        .iter()
        .filter(|g: &&ChangeGroup<'_>| g.module == query.module)
        .flat_map(|g| g.changes.iter())
        .filter(|c| c.table == query.table);
    let mut args: Option<std::sync::Arc<[u8]>> = None;
    for change in changes {
        let (key, row) = match change.op {
            crate::db::journal::OP_PUT => {
                let row = table.decode_row(change.data).map_err(|e| {
                    format!(
                        "a row that does not decode with the table's layout now ({e}); an upgrade \
                         changed it since? read from a later transaction on"
                    )
                })?;
                let key = row
                    .get(usize::from(table.schema().primary_key))
                    .cloned()
                    .ok_or("row without a primary key")?;
                (key, Some(row))
            }
            crate::db::journal::OP_DELETE => (
                table.decode_pk(change.data).map_err(|e| e.to_string())?,
                None,
            ),
            op => return Err(format!("unknown change op {op}")),
        };
        if query.key.is_some() {
            let mut encoded = Vec::with_capacity(key_bytes.len());
            table.encode_pk(&key, &mut encoded);
            if encoded != key_bytes {
                continue;
            }
        }
        out.push(Version {
            seq: record.seq,
            time: record.time,
            module: record.module.to_string(),
            reducer: record.reducer.to_string(),
            args: args.get_or_insert_with(|| record.args.into()).clone(),
            caller: record.caller.map(str::to_string),
            key,
            row,
        });
    }
    Ok(())
}
