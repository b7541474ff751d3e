//! The schedule: reducers to run at a later logical time (`ctx.schedule("reducer", delay_ms)`).
//!
//! Each module's pending entries live in a host-managed table of that module, `__schedule`,
//! which guests cannot reach. Being a table, the schedule is transactional (an entry made by a
//! reducer that fails is rolled back with it), journaled and snapshotted like any logged table
//! (a restart keeps pending entries) and part of the state hash.
//!
//! Time is the node's [`LogicalClock`]: it advances once per frame, never inside one. Entries
//! that are due run at the start of a frame's reducer step, ordered by (due time, module name,
//! entry id) — deterministic for any set of entries.

use crate::db::{ModuleTables, Table};
use bevy_ecs::resource::Resource;
use interstice_abi::{IndexKind, IndexSchema, Value, ValueType};
use std::ops::Bound;

/// Name of the host-managed schedule table of every module.
pub const SCHEDULE_TABLE: &str = "__schedule";
const ENTRY_TYPE: &str = "__ScheduleEntry";

/// Field positions of a schedule row.
const ID: usize = 0;
const DUE: usize = 1;
const REDUCER: usize = 2;
const ARGS: usize = 3;
const REPEAT: usize = 4;

/// The node's logical time, in milliseconds since it first started.
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct LogicalClock {
    now_ms: u64,
    micros: u64,
    /// Whether it follows Bevy's frame time (`true`) or only moves by [`LogicalClock::advance`].
    pub follows_frames: bool,
}

impl Default for LogicalClock {
    fn default() -> Self {
        LogicalClock {
            now_ms: 0,
            micros: 0,
            follows_frames: true,
        }
    }
}

impl LogicalClock {
    /// A clock that moves only when told to (tests, replays).
    pub fn manual() -> LogicalClock {
        LogicalClock {
            follows_frames: false,
            ..LogicalClock::default()
        }
    }

    /// The current logical time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Sets the time a restarted node resumes from (never backwards).
    pub fn resume_at(&mut self, now_ms: u64) {
        if now_ms > self.now_ms {
            self.now_ms = now_ms;
            self.micros = now_ms * 1000;
        }
    }

    /// Moves time forward.
    pub fn advance(&mut self, by: std::time::Duration) {
        self.micros += by.as_micros() as u64;
        self.now_ms = self.micros / 1000;
    }
}

/// A new, empty schedule table: `id` (auto_inc key), `due` (indexed), `reducer`, `args`,
/// `repeat`.
pub fn new_table() -> Table {
    crate::db::host_table(
        SCHEDULE_TABLE,
        ENTRY_TYPE,
        &[
            ("id", ValueType::U64),
            ("due", ValueType::U64),
            ("reducer", ValueType::String),
            ("args", ValueType::Vec(Box::new(ValueType::U8))),
            ("repeat", ValueType::U64),
        ],
        ID as u16,
        true,
        vec![IndexSchema {
            field: DUE as u16,
            kind: IndexKind::BTree,
            unique: false,
            auto_inc: false,
        }],
    )
}

/// A schedule row.
pub fn row(due: u64, reducer: &str, args: &[u8], repeat: u64) -> Vec<Value> {
    vec![
        Value::U64(0),
        Value::U64(due),
        Value::String(reducer.into()),
        crate::db::bytes_value(args),
        Value::U64(repeat),
    ]
}

/// A due entry, with what is needed to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    /// When it was due.
    pub due: u64,
    /// Its module.
    pub module: String,
    /// Its id in the module's schedule.
    pub id: u64,
    /// The reducer to run.
    pub reducer: String,
    /// Its encoded arguments.
    pub args: Vec<u8>,
    /// Period for repeating entries, 0 for one-shot ones.
    pub repeat: u64,
}

fn u64_of(v: &Value) -> u64 {
    match v {
        Value::U64(n) => *n,
        _ => 0,
    }
}

/// The entries of one module's schedule that are due at `now`, in (due, id) order.
pub fn due(module: &str, tables: &ModuleTables, now: u64, out: &mut Vec<DueEntry>) {
    let Some(table) = tables.by_name(SCHEDULE_TABLE) else {
        return;
    };
    let Ok(rows) = table.range(
        DUE as u16,
        Bound::Unbounded,
        Bound::Included(Value::U64(now)),
    ) else {
        return;
    };
    for row in rows {
        let args = crate::db::value_bytes(&row[ARGS]);
        out.push(DueEntry {
            due: u64_of(&row[DUE]),
            module: module.to_string(),
            id: u64_of(&row[ID]),
            reducer: match &row[REDUCER] {
                Value::String(s) => s.clone(),
                _ => String::new(),
            },
            args,
            repeat: u64_of(&row[REPEAT]),
        });
    }
}

/// The row of an entry after it ran: `None` when it is done, the next occurrence otherwise.
pub fn after_run(entry: &DueEntry, now: u64) -> Option<Vec<Value>> {
    if entry.repeat == 0 {
        return None;
    }
    // Catch up without running a missed period twice.
    let mut next = entry.due.saturating_add(entry.repeat);
    if next <= now {
        next = now.saturating_add(entry.repeat);
    }
    let mut row = row(next, &entry.reducer, &entry.args, entry.repeat);
    row[ID] = Value::U64(entry.id);
    Some(row)
}

/// Every pending schedule entry of every module, in the order they will run: what an inspector
/// shows as the schedule queue.
pub fn pending(db: &crate::db::Database) -> Vec<DueEntry> {
    let mut all = Vec::new();
    for name in db.module_names() {
        if let Some(tables) = db.module(name) {
            due(name, tables, u64::MAX, &mut all);
        }
    }
    all.sort_by(|a, b| (a.due, &a.module, a.id).cmp(&(b.due, &b.module, b.id)));
    all
}
