//! Past reads of a table against a reference engine that ran only the workload up to that
//! point, and against the restore of the same point.

use super::*;

#[test]
fn a_table_read_as_of_a_past_transaction_is_the_state_a_reference_engine_reached_then() {
    let dir = tempfile::tempdir().unwrap();
    let mut full = node(dir.path(), HistoryRetention::default());
    workload(&mut full, 300);
    for steps in [0, 1, 57, 180, 300] {
        let reference_dir = tempfile::tempdir().unwrap();
        let mut reference = node(reference_dir.path(), HistoryRetention::default());
        workload(&mut reference, steps);
        let seq = reference.db.journal_mut().unwrap().next_seq() - 1;
        for table in ["note", "tally"] {
            let past = full
                .storage
                .table_as_of(&full.db, "notebook", table, seq)
                .unwrap();
            let then = rows_of(&reference.db, table);
            assert_eq!(
                past, then,
                "{table} after {steps} calls (transaction {seq})"
            );
            // Row by row, through the indexes, the same.
            for row in &then {
                let key = &row[0];
                let one = full
                    .storage
                    .row_as_of(&full.db, ("notebook", table), key, seq)
                    .unwrap();
                assert_eq!(one.as_ref(), Some(row), "{table} {key:?} at {seq}");
            }
        }
        // A row that did not exist yet then reads as none.
        let later = rows_of(&full.db, "note");
        if let Some(newest) = later.last()
            && !rows_of(&reference.db, "note")
                .iter()
                .any(|r| r[0] == newest[0])
        {
            let none = full
                .storage
                .row_as_of(&full.db, ("notebook", "note"), &newest[0], seq)
                .unwrap();
            assert_eq!(none, None);
        }
    }
    // The live state is the read as of the newest transaction.
    let newest = full.db.journal_mut().unwrap().next_seq() - 1;
    let now = full
        .storage
        .table_as_of(&full.db, "notebook", "note", newest)
        .unwrap();
    assert_eq!(now, rows_of(&full.db, "note"));
}

#[test]
fn a_past_read_is_refused_for_a_stateful_table_or_before_what_retention_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    workload(&mut node, 300);
    let stateful = node
        .storage
        .table_as_of(&node.db, "notebook", "scratch", 10);
    assert!(
        matches!(stateful, Err(HistoryError::NotLogged { .. })),
        "{stateful:?}"
    );
    apply_retention(
        &super::dir(dir.path()),
        HistoryRetention {
            max_bytes: Some(0),
            max_age_ms: None,
        },
    )
    .unwrap();
    let cut = node.storage.table_as_of(&node.db, "notebook", "note", 5);
    assert!(
        matches!(cut, Err(HistoryError::Incomplete { seq: 5, .. })),
        "{cut:?}"
    );
    let one = node
        .storage
        .row_as_of(&node.db, ("notebook", "note"), &Value::U64(1), 5);
    assert!(
        matches!(one, Err(HistoryError::Incomplete { .. })),
        "{one:?}"
    );
}

#[test]
fn a_querys_past_read_reads_no_more_than_its_budget_pays_for() {
    use crate::wasm::meter::{FUEL_PER_BYTE, FUEL_PER_ROW};
    use crate::wasm::past::PastReadError;
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    for i in 0..6 {
        assert!(node.call(i, "add", &title_args(&format!("t{i}"))));
    }
    let seq = node.db.journal_mut().unwrap().next_seq() - 1;
    let reader = node.storage.past_reads();
    let table = node.db.table("notebook", "note").expect("note table");
    // What the whole table costs: six versions and every byte of history read to find them.
    let (rows, cost) = reader
        .table_as_of("notebook", table, seq, u64::MAX)
        .unwrap();
    assert_eq!(rows, rows_of(&node.db, "note"));
    assert_eq!(cost.versions, 6);
    assert!(cost.bytes > 0, "the log was read: {cost:?}");
    let fuel = cost.versions * FUEL_PER_ROW + cost.bytes * FUEL_PER_BYTE;
    // Exactly that is enough; any less is refused, not read past.
    assert_eq!(
        reader.table_as_of("notebook", table, seq, fuel).unwrap(),
        (rows.clone(), cost)
    );
    assert_eq!(
        reader.table_as_of("notebook", table, seq, fuel - 1),
        Err(PastReadError::OverBudget)
    );
    // One row's read costs that row's versions and the records the index names.
    let key = rows[0][0].clone();
    let (row, one) = reader
        .row_as_of("notebook", table, &key, seq, u64::MAX)
        .unwrap();
    assert_eq!(row, Some(rows[0].clone()));
    assert_eq!(one.versions, 1);
    // A stateful table is refused with the reason.
    let scratch = node.db.table("notebook", "scratch").expect("scratch table");
    match reader.table_as_of("notebook", scratch, seq, u64::MAX) {
        Err(PastReadError::Refused(why)) => assert!(why.contains("keeps no history"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn log_segment_indexes_built_with_other_layouts_are_built_again() {
    // A query's reader keeps its own copy of the layouts, which a module loaded past
    // storage leaves behind: indexes built with it must not be used with the node's own.
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    assert!(node.call(1, "add", &title_args("a")));
    let (path, len) = (
        node.storage.writer.path().to_path_buf(),
        node.storage.writer.synced_len(),
    );
    let table = node.db.table("notebook", "note").expect("note table");
    let mut key = Vec::new();
    table.encode_pk(&Value::U64(1), &mut key);
    let hash = index::key_hash("notebook", "note", &key);
    let mut live = LiveIndexes::default();
    let stale = KeyLayouts::default();
    let found = live.lookup(&path, len, hash, &stale).expect("indexed");
    assert!(found.offsets.is_empty(), "nothing filed without the layout");
    let found = live
        .lookup(&path, len, hash, &key_layouts(&node.db))
        .expect("indexed again");
    assert_eq!(found.offsets.len(), 1, "the add, filed with the layout");
}
