//! The history files' indexes and the log segments' in memory, against reading every file
//! whole.

use super::*;

/// The versions of every note the model knows, read one row at a time.
fn every_rows_history(node: &Node, ids: impl Iterator<Item = u64>) -> Vec<Vec<Version>> {
    ids.map(|id| node.history("note", Some(&Value::U64(id))))
        .collect()
}

#[test]
fn each_history_file_has_an_index_that_finds_what_reading_every_file_finds() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    let model = workload(&mut node, 400);
    let files = list(&super::dir(dir.path())).unwrap();
    assert!(files.len() > 3);
    for (_, path) in &files {
        assert!(index::path_of(path).is_file(), "{path:?} has no index");
    }
    let through_indexes = every_rows_history(&node, model.keys().copied());
    for (_, path) in &files {
        std::fs::remove_file(index::path_of(path)).unwrap();
    }
    let read_whole = every_rows_history(&node, model.keys().copied());
    assert_eq!(through_indexes, read_whole);
    assert!(through_indexes.iter().all(|versions| !versions.is_empty()));
}

#[test]
fn a_row_is_looked_up_through_the_index_without_reading_the_rest_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    let model = workload(&mut node, 400);
    let expected = every_rows_history(&node, model.keys().copied());
    // Damage one record of the first file: rows whose versions are elsewhere are still read
    // through the indexes, while a read of the whole table reads that record and fails.
    let (_, path) = list(&super::dir(dir.path())).unwrap().remove(0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[crate::db::journal::HEADER_LEN + 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let damaged_record_rows: Vec<usize> = expected
        .iter()
        .enumerate()
        .filter(|(_, versions)| versions.iter().any(|v| v.seq == expected_first_seq(&path)))
        .map(|(i, _)| i)
        .collect();
    let mut unaffected = 0;
    for (i, id) in model.keys().enumerate() {
        let read = node.storage.history(
            &node.db,
            &HistoryQuery {
                module: "notebook",
                table: "note",
                key: Some(&Value::U64(*id)),
                from_seq: 0,
                to_seq: u64::MAX,
                limit: MAX_VERSIONS_PER_READ,
            },
        );
        if damaged_record_rows.contains(&i) {
            assert!(
                matches!(
                    &read,
                    Err(HistoryError::Storage(StorageError::CorruptLog { .. }))
                ),
                "{read:?}"
            );
        } else {
            assert_eq!(read.unwrap(), expected[i], "note {id}");
            unaffected += 1;
        }
    }
    assert!(unaffected > 10);
    let whole = node.storage.history(
        &node.db,
        &HistoryQuery {
            module: "notebook",
            table: "note",
            key: None,
            from_seq: 0,
            to_seq: u64::MAX,
            limit: MAX_VERSIONS_PER_READ,
        },
    );
    assert!(whole.is_err());
}

/// The sequence number of a history file's first record.
fn expected_first_seq(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    // The first record's payload starts with its sequence number; read it from a copy whose
    // checksum is not checked.
    let payload = &bytes[crate::db::journal::HEADER_LEN..];
    let mut reader = interstice_abi::codec::Reader::new(payload);
    reader.varint(64).unwrap()
}

#[test]
fn a_damaged_or_foreign_index_is_not_used_and_the_file_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    let model = workload(&mut node, 400);
    let expected = every_rows_history(&node, model.keys().copied());
    let files = list(&super::dir(dir.path())).unwrap();
    let indexes: Vec<PathBuf> = files.iter().map(|(_, p)| index::path_of(p)).collect();
    // The first index damaged in its header, the second in its entries, the third replaced
    // by the fourth's (made for a file of another length).
    let mut first = std::fs::read(&indexes[0]).unwrap();
    first[5] ^= 0xff;
    std::fs::write(&indexes[0], first).unwrap();
    let mut second = std::fs::read(&indexes[1]).unwrap();
    let last = second.len() - 1;
    second[last] ^= 0xff;
    std::fs::write(&indexes[1], second).unwrap();
    std::fs::copy(&indexes[3], &indexes[2]).unwrap();
    assert_ne!(
        std::fs::metadata(&files[2].1).unwrap().len(),
        std::fs::metadata(&files[3].1).unwrap().len()
    );
    assert_eq!(every_rows_history(&node, model.keys().copied()), expected);
}

#[test]
fn retention_removes_a_files_index_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    workload(&mut node, 300);
    // No archive running beside the test's retention (one removed between writing a file
    // and its index would leave the index behind, unread, until the file is written again).
    node.storage.snapshot(&mut node.db).unwrap();
    let history = super::dir(dir.path());
    let removed = apply_retention(
        &history,
        HistoryRetention {
            max_bytes: Some(0),
            max_age_ms: None,
        },
    )
    .unwrap();
    assert!(!removed.is_empty());
    for path in &removed {
        assert!(!index::path_of(path).exists(), "{path:?}'s index is left");
    }
    let mut names: Vec<String> = std::fs::read_dir(&history)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let indexes = names.iter().filter(|n| n.ends_with(".hidx")).count();
    assert_eq!(indexes, 1, "{names:?}");
}

#[test]
fn a_rows_history_read_again_has_what_was_committed_since() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    assert!(node.call(10, "add", &title_args("a")));
    let id = node.id_of("a");
    let key = Value::U64(id);
    assert_eq!(node.history("note", Some(&key)).len(), 1);
    // Renames fill segments that are archived and pruned between the reads, and the one
    // being written: the segments' indexes in memory follow.
    for i in 0..40 {
        let title = format!("a{i}");
        assert!(node.call(20 + i, "rename", &id_args(id, Some(&title))));
        if i % 13 == 0 {
            assert_eq!(node.history("note", Some(&key)).len(), i as usize + 2);
        }
    }
    let versions = node.history("note", Some(&key));
    assert_eq!(versions.len(), 41);
    assert_eq!(title_of(&versions[40]).as_deref(), Some("a39"));
    let whole: Vec<Version> = node
        .history("note", None)
        .into_iter()
        .filter(|v| v.key == key)
        .collect();
    assert_eq!(versions, whole);
}
