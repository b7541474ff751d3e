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

/// `call_module`'s kind is one of three: any other number is refused, not taken for a reducer
/// call.
#[test]
fn an_unknown_call_kind_is_refused() {
    let mut app = app();
    load(&mut app, "hostile").unwrap();
    let mut error = |kind: u32| -> interstice_abi::HostError {
        let bytes: Vec<u8> = query(
            &mut app,
            "hostile",
            "raw_call",
            (kind, "hostile".to_string(), "rows".to_string()),
        )
        .unwrap();
        postcard::from_bytes(&bytes).expect("a host error")
    };
    // Control: a reducer call from a query reaches the host and is refused for that.
    let reducer = error(interstice_abi::protocol::CallKind::Reducer.code());
    assert!(
        matches!(&reducer, interstice_abi::HostError::NotPermitted(why) if why.contains("queries cannot call reducers")),
        "{reducer:?}"
    );
    for kind in [3, 7, u32::MAX] {
        let refused = error(kind);
        assert!(
            matches!(&refused, interstice_abi::HostError::InvalidPayload(why) if why.contains(&format!("unknown call kind {kind}"))),
            "kind {kind}: {refused:?}"
        );
    }
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

fn quota_refused(outcome: Result<(), CallError>, quota: &str) {
    match outcome {
        Err(CallError::Failed(why)) => assert!(
            why.contains("quota exceeded") && why.contains(quota),
            "expected the {quota} quota, got: {why}"
        ),
        other => panic!("expected the {quota} quota, got {other:?}"),
    }
}

fn with_quotas(quotas: interstice::Quotas) -> bevy::prelude::App {
    let mut app = app_with(interstice::EngineConfig {
        quotas,
        ..Default::default()
    });
    load(&mut app, "hostile").unwrap();
    app
}

#[test]
fn each_module_quota_is_an_error_to_the_reducer() {
    let quotas = interstice::Quotas {
        rows: 1_000,
        schedule_entries: 50,
        schedule_args_bytes: 1_024,
        remote_calls_per_call: 20,
        remote_call_bytes_per_call: 10_000,
        log_lines_per_call: 10,
        ..Default::default()
    };
    let mut app = with_quotas(quotas);

    // Rows: up to the quota, then refused; the failed call's rows are rolled back.
    call(&mut app, "hostile", "fill", (0u64, 1_000u64)).unwrap();
    quota_refused(
        call(&mut app, "hostile", "fill", (1_000u64, 1u64)),
        "rows per module",
    );
    let rows: u64 = query(&mut app, "hostile", "rows", ()).unwrap();
    assert_eq!(rows, 1_000);

    // Schedule entries, and the size of one.
    call(&mut app, "hostile", "schedule_flood", (50u64,)).unwrap();
    quota_refused(
        call(&mut app, "hostile", "schedule_flood", (1u64,)),
        "pending schedule entries",
    );
    quota_refused(
        call(&mut app, "hostile", "schedule_big", (2_000u32,)),
        "bytes of arguments per schedule entry",
    );

    // Remote calls queued by one transaction: by number, and by bytes.
    call(&mut app, "hostile", "remote_flood", (20u32, 10u32)).unwrap();
    quota_refused(
        call(&mut app, "hostile", "remote_flood", (21u32, 10u32)),
        "remote calls per transaction",
    );
    quota_refused(
        call(&mut app, "hostile", "remote_flood", (2u32, 6_000u32)),
        "bytes of remote call arguments",
    );

    // Log lines: the call goes on, the lines past the quota are dropped.
    app.world_mut()
        .resource_mut::<interstice::GuestLogTail>()
        .lines
        .clear();
    call(&mut app, "hostile", "log_flood", (5_000u32,)).unwrap();
    app.update();
    let kept = app
        .world()
        .resource::<interstice::GuestLogTail>()
        .lines
        .iter()
        .filter(|l| l.message.starts_with("line "))
        .count();
    assert_eq!(kept, 10);
}

#[test]
fn the_default_quotas_leave_room_for_ordinary_work() {
    let mut app = with_quotas(interstice::Quotas::default());
    call(&mut app, "hostile", "fill", (0u64, 10_000u64)).unwrap();
    call(&mut app, "hostile", "schedule_flood", (1_000u64,)).unwrap();
    call(&mut app, "hostile", "schedule_big", (4_096u32,)).unwrap();
    call(&mut app, "hostile", "remote_flood", (100u32, 1_000u32)).unwrap();
}

#[test]
fn file_writes_per_transaction_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = bevy::prelude::App::new();
    app.add_plugins((
        bevy::prelude::MinimalPlugins,
        interstice::prelude::IntersticePlugin::default()
            .with_storage(interstice::StorageConfig::new(dir.path()))
            .with_engine(interstice::EngineConfig {
                quotas: interstice::Quotas {
                    file_bytes_per_call: 100,
                    ..Default::default()
                },
                ..Default::default()
            })
            .with_module_bytes("filer", wasm("filer")),
    ));
    app.update();
    call(
        &mut app,
        "filer",
        "save",
        ("small.txt".to_string(), "x".repeat(100)),
    )
    .unwrap();
    quota_refused(
        call(
            &mut app,
            "filer",
            "save",
            ("big.txt".to_string(), "x".repeat(101)),
        ),
        "bytes of file writes per transaction",
    );
    assert!(dir.path().join("files/filer/small.txt").is_file());
    assert!(!dir.path().join("files/filer/big.txt").exists());
}

#[test]
fn a_deep_describe_export_is_refused_on_a_small_stack() {
    let wasm = wasm("deep_describe");
    let outcome = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let mut modules =
                interstice::Modules::new(interstice::EngineConfig::default()).expect("an engine");
            let mut db = interstice::Database::default();
            modules.load(&mut db, &wasm).map(drop)
        })
        .unwrap()
        .join()
        .expect("the loading thread survived");
    match outcome {
        Err(interstice::LoadError::BadDescription { export, reason }) => {
            assert_eq!(export, "interstice_describe_table__deep");
            assert!(reason.contains("decoding limit"), "{reason}");
        }
        other => panic!("expected the description to be refused, got {other:?}"),
    }
}
