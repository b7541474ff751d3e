//! The runtime on its own: a module compiled into this test natively (as a module's own
//! `cargo test` runs it), called through [`Modules`] on a bare [`Database`], with no app, no
//! queue and no storage around it.

use super::Modules;
use crate::config::EngineConfig;
use crate::db::Database;
use crate::error::CallError;
use interstice_abi::codec::write_str;

// Links the fixture, whose exports register themselves for `load_native`.
use notebook as _;

fn engine() -> (Modules, Database) {
    let mut modules = Modules::new(EngineConfig::default()).expect("engine");
    let mut db = Database::default();
    modules
        .load_native(&mut db, "notebook")
        .expect("loading the notebook natively");
    (modules, db)
}

fn title(text: &str) -> Vec<u8> {
    let mut args = Vec::new();
    write_str(&mut args, text);
    args
}

fn rows(db: &Database, table: &str) -> usize {
    db.module("notebook")
        .and_then(|m| m.by_name(table))
        .map_or(0, |t| t.len())
}

fn call(
    modules: &mut Modules,
    db: &mut Database,
    reducer: &str,
    args: &[u8],
) -> Result<(), CallError> {
    let handle = modules.reducer("notebook", reducer)?;
    modules.call_reducer(db, handle, args)
}

#[test]
fn the_init_hook_runs_once_on_load() {
    let (_, db) = engine();
    // `init` bumped the `init` counter: one tally row, no notes.
    assert_eq!((rows(&db, "tally"), rows(&db, "note")), (1, 0));
}

#[test]
fn a_committed_reducer_keeps_its_rows_and_a_failed_or_panicking_one_leaves_none() {
    let (mut modules, mut db) = engine();
    call(&mut modules, &mut db, "add", &title("a")).unwrap();
    assert_eq!(rows(&db, "note"), 1);
    let before = db.state_hash();
    let failed = call(&mut modules, &mut db, "add_then_fail", &title("b"));
    assert!(
        matches!(&failed, Err(CallError::Failed(m)) if m.contains("changed my mind")),
        "{failed:?}"
    );
    let panicked = call(&mut modules, &mut db, "add_then_panic", &title("c"));
    assert!(panicked.is_err(), "{panicked:?}");
    assert_eq!(db.state_hash(), before, "nothing of either call stays");
    // A unique title taken: the module's own error, and still nothing written.
    assert!(call(&mut modules, &mut db, "add", &title("a")).is_err());
    assert_eq!(db.state_hash(), before);
}

#[test]
fn arguments_that_do_not_fit_are_refused_and_write_nothing() {
    let (mut modules, mut db) = engine();
    let before = db.state_hash();
    let handle = modules.reducer("notebook", "add").unwrap();
    let checked = modules.check_reducer_args(handle, &[]);
    assert!(
        matches!(checked, Err(CallError::InvalidArguments(_))),
        "{checked:?}"
    );
    let mut trailing = title("a");
    trailing.push(0);
    // Unchecked, the guest refuses them itself.
    let called = modules.call_reducer(&mut db, handle, &trailing);
    assert!(
        matches!(&called, Err(CallError::Failed(m)) if m.contains("invalid arguments")),
        "{called:?}"
    );
    assert_eq!(db.state_hash(), before);
}

#[test]
fn subscribers_and_the_table_feed_hear_of_committed_changes_only() {
    let (mut modules, mut db) = engine();
    modules.watch_table("notebook", "note");
    call(&mut modules, &mut db, "add", &title("a")).unwrap();
    let events = modules.take_events();
    assert_eq!(events.len(), 1, "one insert, one subscriber");
    assert_eq!(events[0].subscriber.reducer, "counted");
    let batches = modules.take_table_changes();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].len(), 1);
    assert!(batches[0].touches("note"));

    let _ = call(&mut modules, &mut db, "add_then_fail", &title("b"));
    assert!(modules.take_events().is_empty());
    assert!(modules.take_table_changes().is_empty());
}

#[test]
fn subscribers_cannot_be_called_directly_and_unknown_names_are_named() {
    let (modules, _) = engine();
    assert!(matches!(
        modules.reducer("notebook", "counted"),
        Err(CallError::SubscriberOnly(_))
    ));
    assert!(matches!(
        modules.reducer("notebook", "nope"),
        Err(CallError::NoSuchReducer { .. })
    ));
    assert!(matches!(
        modules.reducer("nothere", "add"),
        Err(CallError::NoSuchModule(_))
    ));
}

#[test]
fn an_unloaded_module_leaves_no_tables_and_no_subscribers() {
    let (mut modules, mut db) = engine();
    assert!(modules.unload(&mut db, "notebook"));
    assert!(db.module("notebook").is_none());
    assert!(
        modules
            .event_subscribers(&interstice_abi::EventSpec::Connect)
            .is_empty()
    );
    assert!(!modules.unload(&mut db, "notebook"));
}
