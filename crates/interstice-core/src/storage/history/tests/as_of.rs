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
