//! Cross-module calls on one node: joined transactions, handled failures, rollback, traps,
//! re-entry, queries calling queries, the caller's identity, and durability.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::{CallError, Database, StorageConfig};

fn bank_app() -> App {
    let mut app = app();
    load(&mut app, "bank").expect("bank");
    load(&mut app, "teller").expect("teller");
    call(&mut app, "bank", "open", ("ada".to_string(), 100i64)).unwrap();
    call(&mut app, "bank", "open", ("bob".to_string(), 10i64)).unwrap();
    app
}

fn balance(app: &mut App, owner: &str) -> i64 {
    query(app, "bank", "balance", (owner.to_string(),)).unwrap()
}

fn logs(app: &mut App) -> Vec<String> {
    query(app, "teller", "logs", ()).unwrap()
}

#[test]
fn a_reducer_changes_another_module_inside_its_transaction() {
    let mut app = bank_app();
    call(
        &mut app,
        "teller",
        "transfer",
        ("ada".to_string(), "bob".to_string(), 30i64),
    )
    .unwrap();
    assert_eq!(
        (balance(&mut app, "ada"), balance(&mut app, "bob")),
        (70, 40)
    );
    assert_eq!(logs(&mut app), vec!["transfer ada->bob 30, ada has 70"]);
    let audits: Vec<(String, String)> = query(&mut app, "bank", "audits", ()).unwrap();
    assert_eq!(
        audits,
        vec![
            ("(outside)".to_string(), "open ada".to_string()),
            ("(outside)".to_string(), "open bob".to_string()),
            ("teller".to_string(), "withdraw ada 30".to_string()),
            ("teller".to_string(), "deposit bob 30".to_string()),
        ],
        "ctx.caller() names the calling module"
    );
}

#[test]
fn when_the_caller_fails_the_called_modules_writes_are_rolled_back_too() {
    let mut app = bank_app();
    let hash = app.world().resource::<Database>().state_hash();
    let err = call(
        &mut app,
        "teller",
        "transfer_then_fail",
        ("ada".to_string(), "bob".to_string(), 30i64),
    );
    assert_eq!(
        err,
        Err(CallError::Failed("the teller changed its mind".into()))
    );
    assert_eq!(
        (balance(&mut app, "ada"), balance(&mut app, "bob")),
        (100, 10)
    );
    assert!(logs(&mut app).is_empty());
    assert_eq!(
        app.world().resource::<Database>().state_hash(),
        hash,
        "every module, every table"
    );
}

#[test]
fn a_failed_call_is_an_error_the_caller_handles() {
    let mut app = bank_app();
    call(
        &mut app,
        "teller",
        "try_overdraw",
        ("bob".to_string(), 50i64),
    )
    .unwrap();
    assert_eq!(balance(&mut app, "bob"), 10);
    assert_eq!(
        logs(&mut app),
        vec!["refused: call to bank.withdraw failed: insufficient funds: bob has 10"]
    );
}

#[test]
fn a_trap_in_the_called_module_rolls_back_only_its_writes() {
    let mut app = bank_app();
    call(&mut app, "teller", "survive_boom", ()).unwrap();
    assert_eq!(
        balance(&mut app, "boom"),
        -1,
        "the trapped call's insert is gone"
    );
    let logged = logs(&mut app);
    assert!(logged[0].contains("the bank exploded"), "{logged:?}");
    // The bank's instance was replaced and keeps working.
    call(&mut app, "bank", "deposit", ("bob".to_string(), 5i64)).unwrap();
    assert_eq!(balance(&mut app, "bob"), 15);
}

#[test]
fn calls_cannot_re_enter_a_running_module() {
    let mut app = bank_app();
    call(&mut app, "teller", "reenter", ()).unwrap();
    let logged = logs(&mut app);
    assert_eq!(logged.len(), 1);
    assert!(logged[0].contains("cannot re-enter"), "{logged:?}");
}

#[test]
fn calling_a_missing_module_is_an_error() {
    let mut app = bank_app();
    call(&mut app, "teller", "call_missing", ()).unwrap();
    assert_eq!(
        logs(&mut app),
        vec!["missing: call to nowhere.nothing failed: no such module on this node"]
    );
}

#[test]
fn queries_call_queries() {
    let mut app = bank_app();
    assert_eq!(
        query::<_, i64>(&mut app, "teller", "rich", ("ada".to_string(),)),
        Ok(100)
    );
}

#[test]
fn a_cross_module_transaction_is_one_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    let node =
        |dir: &std::path::Path| persisting_node(StorageConfig::new(dir), &["bank", "teller"]);
    let before = {
        let mut app = node(dir.path());
        call(&mut app, "bank", "open", ("ada".to_string(), 100i64)).unwrap();
        call(&mut app, "bank", "open", ("bob".to_string(), 0i64)).unwrap();
        call(
            &mut app,
            "teller",
            "transfer",
            ("ada".to_string(), "bob".to_string(), 60i64),
        )
        .unwrap();
        app.world().resource::<Database>().durable_state_hash()
    };
    let mut app = node(dir.path());
    assert_eq!(
        app.world().resource::<Database>().durable_state_hash(),
        before
    );
    assert_eq!(
        (balance(&mut app, "ada"), balance(&mut app, "bob")),
        (40, 60)
    );
}

#[test]
fn nested_calls_stop_at_the_native_stack_budget() {
    // A budget smaller than one call's wasm stack: no nested call fits, and the caller is told
    // why (a chain of 16 modules each using their whole wasm stack would otherwise need
    // 16 × 512 KiB of a thread's native stack).
    let mut app = app_with(interstice::EngineConfig {
        nested_call_stack: 256 * 1024,
        ..Default::default()
    });
    load(&mut app, "bank").expect("bank");
    load(&mut app, "teller").expect("teller");
    call(&mut app, "bank", "open", ("ada".to_string(), 100i64)).unwrap();
    call(&mut app, "bank", "open", ("bob".to_string(), 10i64)).unwrap();
    let refused = call(
        &mut app,
        "teller",
        "transfer",
        ("ada".to_string(), "bob".to_string(), 30i64),
    );
    match refused {
        Err(CallError::Failed(why)) => assert!(why.contains("nested_call_stack"), "{why}"),
        other => panic!("expected the stack budget to refuse the call, got {other:?}"),
    }
    assert_eq!(balance(&mut app, "ada"), 100, "nothing moved");
}
