//! A module that attacks the node from inside: raw imports aimed at the host-managed tables,
//! and loops of requests that cost the guest a few instructions and the host a table walk.
//! Each attack is refused or paid for; the node goes on.

mod common;

use common::*;
use interstice::CallError;
use interstice_abi::protocol::TableOp;
use std::time::{Duration, Instant};

/// The module's one table (`filler`) has id 0; `__schedule`, `__answered` and `__cursors`
/// follow it.
const HOST_TABLES: [u32; 3] = [1, 2, 3];

#[test]
fn raw_imports_cannot_reach_the_host_tables() {
    let mut app = app();
    load(&mut app, "hostile").unwrap();
    call(&mut app, "hostile", "fill", (0u64, 10u64)).unwrap();

    // The module's own table answers (so the probes below do reach the host).
    let own: i64 = query(
        &mut app,
        "hostile",
        "raw_read",
        (TableOp::Count as u32, 0u32),
    )
    .unwrap();
    assert!(own >= 0, "count of the module's own table: {own}");

    for table in HOST_TABLES {
        for op in [TableOp::Count, TableOp::Scan] {
            let answer: i64 = query(&mut app, "hostile", "raw_read", (op as u32, table)).unwrap();
            assert!(answer < 0, "{op:?} on host table {table} answered {answer}");
        }
        for (op, payload) in [
            (TableOp::Clear, vec![]),
            (TableOp::Delete, vec![0u8]),
            (TableOp::Insert, vec![0u8; 8]),
            (TableOp::Scan, vec![0u8]),
        ] {
            let outcome = call(
                &mut app,
                "hostile",
                "raw_write",
                (op as u32, table, payload),
            );
            assert!(
                matches!(&outcome, Err(CallError::Failed(why)) if why.contains("refused")),
                "{op:?} on host table {table}: {outcome:?}"
            );
        }
    }
    // Control: the same raw call on the module's own table goes through.
    call(
        &mut app,
        "hostile",
        "raw_write",
        (TableOp::Clear as u32, 0u32, Vec::<u8>::new()),
    )
    .unwrap();
}

/// Rows the walks below go over.
const ROWS: u64 = 200_000;

fn filled() -> bevy::prelude::App {
    let mut app = app();
    load(&mut app, "hostile").unwrap();
    for from in (0..ROWS).step_by(20_000) {
        call(&mut app, "hostile", "fill", (from, 20_000u64)).unwrap();
    }
    let count: i64 = query(
        &mut app,
        "hostile",
        "raw_read",
        (TableOp::Count as u32, 0u32),
    )
    .unwrap();
    assert!(count > 0);
    app
}

/// Each raw range asks the host to walk all rows; unpaid, a million of them took hours.
#[test]
fn a_loop_of_table_walks_runs_out_of_fuel() {
    let mut app = filled();
    for reducer in ["range_loop", "filter_loop"] {
        let started = Instant::now();
        let outcome = call(&mut app, "hostile", reducer, (1_000_000u64,));
        let took = started.elapsed();
        assert!(
            matches!(outcome, Err(CallError::OutOfFuel(_))),
            "{reducer}: {outcome:?}"
        );
        // Unmetered, the loop walks the table a million times: hours. Metered, a walk of
        // 200,000 rows costs 20 M fuel and the call has 50 M.
        assert!(
            took < Duration::from_secs(60),
            "{reducer} ran for {took:?} before it ran out of fuel"
        );
    }
    // One walk the call can pay for still works.
    call(&mut app, "hostile", "range_loop", (1u64,)).unwrap();
}
