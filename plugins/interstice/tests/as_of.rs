//! Time travel for queries (`ctx.as_of`): a real module, built to wasm, reads its logged
//! tables as they were after past transactions, from a persisting node's history.

mod common;

use common::*;
use interstice::{Database, StorageConfig};

/// The last transaction committed so far.
fn last_tx(app: &mut bevy::prelude::App) -> u64 {
    let mut db = app.world_mut().resource_mut::<Database>();
    let next = db.journal_mut().map(|j| j.next_seq()).expect("a journal");
    next.checked_sub(1).expect("a committed transaction")
}

fn titles(app: &mut bevy::prelude::App) -> Vec<String> {
    query(app, "notebook", "titles", ()).expect("titles")
}

#[test]
fn a_query_reads_its_logged_tables_as_they_were_after_each_past_transaction() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments and frequent snapshots: most of what is read comes from history files,
    // the rest from log segments not archived yet.
    let config = StorageConfig {
        segment_bytes: 2048,
        snapshot_every_records: 8,
        snapshot_scales_with_rows: false,
        ..StorageConfig::new(dir.path())
    };
    let mut app = persisting_node(config, &["notebook", "teller"]);
    let mut seen: Vec<(u64, Vec<String>)> = Vec::new();
    let steps: Vec<(&str, (u64, String))> = (0..24u64)
        .map(|i| match i % 4 {
            0 | 1 => ("add", (0, format!("n{i}"))),
            // Each round of four adds two notes, renames the first and removes the second.
            2 => ("rename", (1 + i / 4 * 2, format!("r{i}"))),
            _ => ("remove", (2 + i / 4 * 2, String::new())),
        })
        .collect();
    for (reducer, (id, title)) in steps {
        let outcome = match reducer {
            "add" => call(&mut app, "notebook", "add", (title,)),
            "rename" => call(&mut app, "notebook", "rename", (id, title)),
            _ => call(&mut app, "notebook", "remove", (id,)),
        };
        outcome.unwrap_or_else(|e| panic!("{reducer} {id}: {e}"));
        seen.push((last_tx(&mut app), titles(&mut app)));
    }
    let archived = std::fs::read_dir(dir.path().join("history"))
        .expect("a history directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "hist"))
        .count();
    assert!(archived > 0, "the workload is archived into history files");
    // A point past the newest reads the newest state.
    let newest: Vec<String> =
        query(&mut app, "notebook", "titles_as_of", (u64::MAX,)).expect("the newest state");
    assert_eq!(newest, titles(&mut app));
    for (tx, live) in &seen {
        let then: Vec<String> = query(&mut app, "notebook", "titles_as_of", (*tx,))
            .unwrap_or_else(|e| panic!("titles as of {tx}: {e}"));
        assert_eq!(&then, live, "the table as of transaction {tx}");
    }
    // One row, through the indexes: note 1 as each transaction left it.
    let history: Vec<(u64, Option<String>)> = seen
        .iter()
        .map(|(tx, _)| {
            let title: Option<String> = query(&mut app, "notebook", "title_as_of", (*tx, 1u64))
                .unwrap_or_else(|e| panic!("note 1 as of {tx}: {e}"));
            (*tx, title)
        })
        .collect();
    let expected: Vec<(u64, Option<String>)> = seen
        .iter()
        .map(|(tx, live)| (*tx, live.first().cloned()))
        .collect();
    assert_eq!(history, expected, "note 1 (the first title, never removed)");
    // Before the first note: none.
    let before: Option<String> =
        query(&mut app, "notebook", "title_as_of", (0u64, 1u64)).expect("as of 0");
    assert_eq!(before, None);

    // Inside a transaction (a reducer calling the query) the past is not read.
    call(&mut app, "teller", "past_titles", (0u64,)).expect("past_titles");
    let logs: Vec<String> = query(&mut app, "teller", "logs", ()).expect("logs");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("past:") && l.contains("not in reducers")),
        "{logs:?}"
    );

    // A stateful table keeps no history: the query is told so.
    call(&mut app, "notebook", "scribble", (1u64, 5u64)).expect("scribble");
    let refused = query::<_, Option<u64>>(&mut app, "notebook", "scratch_as_of", (0u64, 1u64))
        .expect_err("a stateful table's past");
    assert!(
        refused.to_string().contains("keeps no history"),
        "{refused}"
    );
}

#[test]
fn without_a_data_directory_a_past_read_is_refused_with_the_reason() {
    let mut app = app();
    load(&mut app, "notebook").expect("notebook");
    call(&mut app, "notebook", "add", ("a".to_string(),)).expect("add");
    let refused = query::<_, Vec<String>>(&mut app, "notebook", "titles_as_of", (0u64,))
        .expect_err("no history");
    assert!(
        refused.to_string().contains("keeps no data directory"),
        "{refused}"
    );
}

#[test]
fn a_past_read_pays_for_the_history_it_reads_not_only_the_rows_it_returns() {
    // A public query reading one row of a table's past could make the node read its whole
    // history for the fuel of one row. A call with 1 M fuel: reading the notebook's table as
    // of its first note reads the whole log segment (1,500 notes of 1 kB after it, 1.5 MB),
    // and pays for it; one row's read goes through the index and stays cheap.
    use bevy::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let engine = interstice::EngineConfig {
        fuel_per_call: 1_000_000,
        ..interstice::EngineConfig::default()
    };
    let plugin = interstice::IntersticePlugin::default()
        .with_engine(engine)
        .with_storage(StorageConfig::new(dir.path()))
        .with_module_bytes("notebook", wasm("notebook"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin));
    app.update();
    call(&mut app, "notebook", "add", ("first".to_string(),)).expect("add");
    let first = last_tx(&mut app);
    for i in 0..1500 {
        let title = format!("{i:>1000}");
        call(&mut app, "notebook", "add", (title,)).expect("add");
    }
    let one: Option<String> =
        query(&mut app, "notebook", "title_as_of", (first, 1u64)).expect("one row, indexed");
    assert_eq!(one.as_deref(), Some("first"));
    let whole = query::<_, Vec<String>>(&mut app, "notebook", "titles_as_of", (first,))
        .expect_err("the whole log read for one row's fuel");
    assert!(
        matches!(whole, interstice::CallError::OutOfFuel(_)),
        "{whole}"
    );
}
