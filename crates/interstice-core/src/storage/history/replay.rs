//! Replaying a fix: the recorded calls of a range of transactions run again, in a scratch
//! copy, against a new version of one module, and each transaction's changes are compared
//! with what was recorded.
//!
//! Execution is deterministic (logical time, random numbers seeded by the invocation and the
//! time), so the same code from the same state makes the same changes: the first transaction
//! whose changes differ is where the new code first behaves differently.
//!
//! The scratch copy starts as [`restore`](super::restore) would rebuild the state before the
//! range: logged tables only. What is compared is the changes to logged tables; stateful and
//! host tables start empty there, so a reducer whose outcome depends on them can differ for
//! that reason alone (the report names the reducer, its arguments and the row).

use super::restore::{RestoreError, each_record, rebuild};
use super::{LoggedTables, logged_tables_of, ordered_files, removals};
use crate::config::EngineConfig;
use crate::db::Database;
use crate::db::journal::{OP_DELETE, OP_PUT};
use crate::error::LoadError;
use crate::queue::CallContext;
use crate::runtime::Modules;
use crate::storage::log::{self, Record, frame_records, parse_record};
use crate::storage::{Storage, StorageConfig, StorageError};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What to replay: transactions `from_seq..=to_seq` of the node whose data directory is
/// `source` (only read), with `module` running `wasm`, in the empty directory `scratch`.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRequest<'a> {
    /// The node's data directory (a stopped node's: it is read, never written).
    pub source: &'a Path,
    /// The module whose new version runs.
    pub module: &'a str,
    /// The new version's code.
    pub wasm: &'a [u8],
    /// The first transaction replayed.
    pub from_seq: u64,
    /// The last transaction replayed (`u64::MAX`: to the end of the log).
    pub to_seq: u64,
    /// An empty directory for the scratch copy.
    pub scratch: &'a Path,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Transactions run again and compared.
    pub replayed: u64,
    /// Recorded transactions that are not run again: hooks (`init`, `load`: the scratch copy
    /// runs the new code's own when it opens), host bookkeeping, and calls of a module removed
    /// since. Their recorded changes are not compared, nor applied to the scratch copy.
    pub skipped: u64,
    /// Replayed transactions recorded before invocations were kept: their random numbers
    /// cannot be drawn again as they were.
    pub without_invocation: u64,
    /// The last transaction replayed.
    pub last_seq: Option<u64>,
    /// The first transaction whose changes differ; `None`: none did.
    pub first_difference: Option<Difference>,
}

/// A transaction whose replay differs from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Its sequence number in the log.
    pub seq: u64,
    /// Its logical time, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its arguments, as text.
    pub args: String,
    /// The node whose call it was (`None`: this node's).
    pub caller: Option<String>,
    /// How it differs.
    pub detail: DifferenceDetail,
}

/// How a replayed transaction differs from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DifferenceDetail {
    /// The recorded transaction committed; the replay failed.
    Failed(String),
    /// A row the two left differently: as recorded and as replayed (`None`: absent, or not
    /// written by that side).
    Row {
        /// The row's module.
        module: String,
        /// Its table.
        table: String,
        /// Its primary key, as text.
        key: String,
        /// The row the record left (`None`: deleted, or not touched).
        recorded: Option<String>,
        /// The row the replay left (`None`: deleted, or not touched).
        replayed: Option<String>,
    },
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The scratch copy could not be rebuilt.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A file of the node or the scratch copy could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The wasm engine could not start, or a module's code could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The module is not installed on the node.
    #[error("`{0}` is not installed on this node")]
    NotInstalled(String),
    /// The new code is another module.
    #[error("the new code is module `{found}`, not `{expected}`")]
    OtherModule {
        /// The module replayed.
        expected: String,
        /// The module the code declares.
        found: String,
    },
    /// History before the range is gone.
    #[error(
        "history before transaction {first} is gone (removed by retention): transaction \
         {from} cannot be replayed"
    )]
    Incomplete {
        /// The first transaction kept.
        first: u64,
        /// The first transaction asked for.
        from: u64,
    },
}

/// Replays `request.from_seq..=request.to_seq` (see docs/storage.md, History); `progress` is
/// told the number of each transaction replayed.
///
/// # Errors
///
/// [`ReplayError`] when the scratch copy cannot be built or opened (the new code's tables do
/// not read the logged rows, for one), or a file cannot be read. A transaction that differs
/// is not an error: it is the report's [`first_difference`](ReplayReport::first_difference).
pub fn replay(
    request: &ReplayRequest<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReplayReport, ReplayError> {
    let engine = Modules::new(EngineConfig::default())?;
    let found = engine.inspect(request.wasm)?.name;
    if found != request.module {
        return Err(ReplayError::OtherModule {
            expected: request.module.into(),
            found,
        });
    }
    let (installed, schemas) = installed_modules(&engine, request.source)?;
    let logged = logged_tables_of(schemas.iter());
    let files = ordered_files(request.source)?;
    let first = files.first().map_or(0, |(first, _)| *first);
    if first > request.from_seq {
        return Err(ReplayError::Incomplete {
            first,
            from: request.from_seq,
        });
    }
    rebuild(request.source, &logged, request.from_seq, request.scratch)?;
    let current = installed
        .iter()
        .rfind(|(name, _)| name == request.module)
        .ok_or_else(|| ReplayError::NotInstalled(request.module.into()))?;
    let (scratch_modules, _, _) = crate::storage::dirs(request.scratch);
    let file = current.1.file_name().map(|n| scratch_modules.join(n));
    let file = file.ok_or_else(|| ReplayError::NotInstalled(request.module.into()))?;
    crate::disk::fsutil::write_atomic(&file, request.wasm)
        .map_err(|e| StorageError::io(&file, e))?;

    let mut modules = engine;
    let mut db = Database::default();
    let (_storage, _) = Storage::open(StorageConfig::new(request.scratch), &mut modules, &mut db)?;
    // What opening wrote (hooks) is not a replayed transaction.
    if let Some(journal) = db.journal_mut() {
        journal.take();
    }
    let replaced = schemas.iter().find(|s| s.name == request.module).cloned();
    let mut run = Run {
        modules,
        db,
        replaced,
        logged,
        removed: removals(request.source)?,
        report: ReplayReport::default(),
    };
    each_record(&files, |record| {
        if record.seq < request.from_seq {
            return Ok::<_, ReplayError>(ControlFlow::Continue(()));
        }
        if record.seq > request.to_seq {
            return Ok(ControlFlow::Break(()));
        }
        run.transaction(&record);
        progress(record.seq);
        Ok(match run.report.first_difference {
            Some(_) => ControlFlow::Break(()),
            None => ControlFlow::Continue(()),
        })
    })?;
    Ok(run.report)
}

/// Module files by module name, in install order.
type ModuleFiles = Vec<(String, PathBuf)>;

/// The module files installed in `source`, in install order, with their schemas.
fn installed_modules(
    engine: &Modules,
    source: &Path,
) -> Result<(ModuleFiles, Vec<interstice_abi::ModuleSchema>), ReplayError> {
    let (modules_dir, _, _) = crate::storage::dirs(source);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&modules_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StorageError::io(&modules_dir, e).into()),
    };
    files.sort();
    let mut installed = Vec::new();
    let mut schemas: Vec<interstice_abi::ModuleSchema> = Vec::new();
    for path in files {
        let wasm = log::read(&path)?;
        let schema = engine.inspect(&wasm)?;
        // A later install of the same name supersedes the earlier (see recovery).
        schemas.retain(|s| s.name != schema.name);
        installed.push((schema.name.clone(), path));
        schemas.push(schema);
    }
    Ok((installed, schemas))
}

/// The scratch engine and what the replay found so far.
struct Run {
    modules: Modules,
    db: Database,
    /// The replaced module's schema as installed (the code the record ran).
    replaced: Option<interstice_abi::ModuleSchema>,
    logged: LoggedTables,
    removed: BTreeMap<String, u64>,
    report: ReplayReport,
}

/// One change to a logged table: (module, table, encoded primary key) → the row put
/// (`Some`, encoded) or deleted (`None`).
type Changes = BTreeMap<(String, String, Vec<u8>), Option<Vec<u8>>>;

impl Run {
    /// Runs `record`'s call again and compares its changes with the recorded ones.
    fn transaction(&mut self, record: &Record<'_>) {
        let removed_since = self
            .removed
            .get(record.module)
            .is_some_and(|&at| record.seq < at);
        let handle = self
            .modules
            .reducer(record.module, record.reducer)
            .or_else(|_| self.modules.subscriber(record.module, record.reducer));
        let handle = match handle {
            Ok(handle) if !removed_since => handle,
            _ if !removed_since && self.dropped_by_new_code(record) => {
                self.report.replayed += 1;
                self.report.last_seq = Some(record.seq);
                let detail = DifferenceDetail::Failed(format!(
                    "the new code has no reducer `{}`, which the recorded call ran",
                    record.reducer
                ));
                self.differ(record, detail);
                return;
            }
            _ => {
                self.report.skipped += 1;
                return;
            }
        };
        self.report.replayed += 1;
        self.report.last_seq = Some(record.seq);
        if record.invocation.is_none() {
            self.report.without_invocation += 1;
        }
        self.align_counters(record);
        self.modules.set_now(record.time);
        let context = CallContext {
            invocation: record.invocation.unwrap_or(0),
            caller_node: record.caller.map(str::to_string),
            ..CallContext::default()
        };
        let outcome = self
            .modules
            .call_reducer_in(&mut self.db, handle, record.args, context);
        let written = self
            .db
            .journal_mut()
            .map(|journal| journal.take())
            .unwrap_or_default();
        let detail = match outcome {
            Err(e) => Some(DifferenceDetail::Failed(e.to_string())),
            Ok(()) => {
                let recorded = self.changes_of(std::slice::from_ref(record));
                let (payloads, _) = frame_records(&written);
                let replayed: Vec<Record<'_>> = payloads
                    .into_iter()
                    .filter_map(|(_, payload)| parse_record(payload))
                    .collect();
                let replayed = self.changes_of(&replayed);
                self.first_row_apart(&recorded, &replayed)
            }
        };
        if let Some(detail) = detail {
            self.differ(record, detail);
        }
    }

    /// Moves `auto_inc` primary key counters up to where the recorded transaction found them:
    /// the node's moved past values that failed calls took (counters are never rolled back,
    /// and a failed call leaves no record), which a copy rebuilt from rows cannot know. The
    /// smallest key of a row the record inserted is where its table's counter stood.
    fn align_counters(&mut self, record: &Record<'_>) {
        let mut lowest: BTreeMap<(&str, &str), i128> = BTreeMap::new();
        for group in &record.groups {
            for change in group.changes.iter().filter(|c| c.op == OP_PUT) {
                let Some(table) = self.db.table(group.module, change.table) else {
                    continue;
                };
                if !table.schema().primary_key_auto_inc {
                    continue;
                }
                let Ok(row) = table.decode_row(change.data) else {
                    continue;
                };
                let key = row.get(usize::from(table.schema().primary_key));
                if let Some(key) = key
                    && table.get(key).is_none()
                    && let Some(value) = key.as_i128()
                {
                    let at = lowest.entry((group.module, change.table)).or_insert(value);
                    *at = (*at).min(value);
                }
            }
        }
        for ((module, name), next) in lowest {
            let table = self
                .db
                .module_mut(module)
                .and_then(|m| m.tables.iter_mut().find(|t| t.schema().name == name));
            if let Some(table) = table {
                table.restore_counters(next, &[]);
            }
        }
    }

    /// Whether `record` ran a reducer of the replaced module that its new code does not
    /// have (renamed or removed), rather than a hook (`init`, `load`) or host bookkeeping.
    fn dropped_by_new_code(&self, record: &Record<'_>) -> bool {
        let Some(old) = self.replaced.as_ref().filter(|s| s.name == record.module) else {
            return false;
        };
        old.reducers.iter().any(|r| {
            r.name == record.reducer
                && !matches!(
                    r.on,
                    Some(interstice_abi::EventSpec::Init | interstice_abi::EventSpec::Load)
                )
        })
    }

    /// Notes `record` as the first transaction that differs.
    fn differ(&mut self, record: &Record<'_>, detail: DifferenceDetail) {
        self.report.first_difference = Some(Difference {
            seq: record.seq,
            time: record.time,
            module: record.module.into(),
            reducer: record.reducer.into(),
            args: self.args_text(record),
            caller: record.caller.map(str::to_string),
            detail,
        });
    }

    /// The changes `records` made to logged tables, by row.
    fn changes_of(&self, records: &[Record<'_>]) -> Changes {
        let mut changes = Changes::new();
        for record in records {
            for group in &record.groups {
                let Some(tables) = self.logged.get(group.module) else {
                    continue;
                };
                for change in group.changes.iter().filter(|c| tables.contains(c.table)) {
                    let key = self.key_of(group.module, change.table, change.op, change.data);
                    let row = (change.op == OP_PUT).then(|| change.data.to_vec());
                    changes.insert((group.module.into(), change.table.into(), key), row);
                }
            }
        }
        changes
    }

    /// The encoded primary key of a change (the row's bytes when the table cannot tell it:
    /// then the change is compared whole).
    fn key_of(&self, module: &str, table: &str, op: u8, data: &[u8]) -> Vec<u8> {
        let Some(table) = self.db.table(module, table) else {
            return data.to_vec();
        };
        let key = match op {
            OP_PUT => table
                .decode_row(data)
                .ok()
                .and_then(|row| row.get(usize::from(table.schema().primary_key)).cloned()),
            OP_DELETE => table.decode_pk(data).ok(),
            _ => None,
        };
        match key {
            Some(key) => {
                let mut out = Vec::new();
                table.encode_pk(&key, &mut out);
                out
            }
            None => data.to_vec(),
        }
    }

    /// The first row (in module, table and key order) the two sets of changes leave apart.
    fn first_row_apart(&self, recorded: &Changes, replayed: &Changes) -> Option<DifferenceDetail> {
        let keys = recorded.keys().chain(replayed.keys());
        let apart = keys
            .filter(|k| recorded.get(*k) != replayed.get(*k))
            .min()?;
        let (module, table, key) = apart;
        let text = |side: &Changes| {
            side.get(apart)
                .cloned()
                .flatten()
                .map(|row| self.row_text(module, table, &row))
        };
        Some(DifferenceDetail::Row {
            module: module.clone(),
            table: table.clone(),
            key: self.key_text(module, table, key),
            recorded: text(recorded),
            replayed: text(replayed),
        })
    }

    fn row_text(&self, module: &str, table: &str, row: &[u8]) -> String {
        match self.db.table(module, table).map(|t| t.decode_row(row)) {
            Some(Ok(values)) => {
                let cells: Vec<String> = values.iter().map(ToString::to_string).collect();
                format!("({})", cells.join(", "))
            }
            _ => format!("{} bytes", row.len()),
        }
    }

    fn key_text(&self, module: &str, table: &str, key: &[u8]) -> String {
        match self.db.table(module, table).map(|t| t.decode_pk(key)) {
            Some(Ok(value)) => value.to_string(),
            _ => format!("{} bytes", key.len()),
        }
    }

    /// The record's arguments, decoded with the reducer's parameter types when it still has
    /// them.
    fn args_text(&self, record: &Record<'_>) -> String {
        let described = self.modules.schema(record.module).and_then(|schema| {
            let reducer = schema.reducers.iter().find(|r| r.name == record.reducer)?;
            let mut reader = interstice_abi::codec::Reader::new(record.args);
            let values: Option<Vec<String>> = reducer
                .args
                .iter()
                .map(|arg| {
                    interstice_abi::codec::decode_value(&arg.ty, &schema.types, &mut reader)
                        .ok()
                        .map(|v| v.to_string())
                })
                .collect();
            values.map(|v| format!("({})", v.join(", ")))
        });
        described.unwrap_or_else(|| format!("{} bytes", record.args.len()))
    }
}
