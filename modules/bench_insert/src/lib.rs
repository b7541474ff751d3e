//! The module `interstice bench insert` runs: every call inserts one row carrying the
//! client's payload, into a logged table (made durable before the answer) or an ephemeral one
//! (never written to disk). The same workload as upstream Interstice's `benchmark simple`.

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

/// How many rows of run `run` each table holds: (logged, ephemeral).
#[query]
fn count_run(ctx: QueryContext, run: u64) -> (u64, u64) {
    let logged = ctx
        .current
        .tables
        .logged()
        .scan()
        .filter(|row| row.run == run)
        .count() as u64;
    let ephemeral = ctx
        .current
        .tables
        .ephemeral()
        .scan()
        .filter(|row| row.run == run)
        .count() as u64;
    (logged, ephemeral)
}
