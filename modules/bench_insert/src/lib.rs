//! The module `interstice bench insert` runs: every call inserts one row carrying the
//! client's payload, into a logged table (made durable before the answer) or an ephemeral one
//! (never written to disk). The same workload as upstream Interstice's `benchmark simple`.
//!
//! `Pair` is for measuring memory: `fill_pairs` fills a table of `(u64, u64)` rows with one
//! index, as many as asked, so a node's resident set can be read with it full.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// Rows inserted by `insert_logged`.
#[table]
pub struct Logged {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub run: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Rows inserted by `insert_ephemeral`.
#[table(ephemeral)]
pub struct Ephemeral {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub run: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Inserts one row into the logged table.
#[reducer]
fn insert_logged(ctx: ReducerContext, run: u64, seq: u64, payload: Vec<u8>) -> Result<(), String> {
    let row = Logged {
        id: 0,
        run,
        seq,
        payload,
    };
    ctx.current
        .tables
        .logged()
        .insert(row)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Inserts one row into the ephemeral table.
#[reducer]
fn insert_ephemeral(
    ctx: ReducerContext,
    run: u64,
    seq: u64,
    payload: Vec<u8>,
) -> Result<(), String> {
    let row = Ephemeral {
        id: 0,
        run,
        seq,
        payload,
    };
    ctx.current
        .tables
        .ephemeral()
        .insert(row)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A `(u64, u64)` row with an index on its second column.
#[table]
pub struct Pair {
    #[primary_key]
    pub id: u64,
    #[index(hash)]
    pub value: u64,
}

/// Inserts pairs `(id, id)` for ids `first..first + count`.
#[reducer]
fn fill_pairs(ctx: ReducerContext, first: u64, count: u32) -> Result<(), String> {
    let pairs = ctx.current.tables.pair();
    for id in first..first.saturating_add(u64::from(count)) {
        pairs
            .insert(Pair { id, value: id })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How many rows each table holds: (logged, ephemeral). The bench reads it before and after
/// a run (a count, not a scan, so it costs the same at any size).
#[query]
fn counts(ctx: QueryContext) -> (u64, u64) {
    (
        ctx.current.tables.logged().count(),
        ctx.current.tables.ephemeral().count(),
    )
}
