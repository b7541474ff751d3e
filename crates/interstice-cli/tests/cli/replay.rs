//! Replaying a fix: a stopped node's recorded calls run again against a new version of a
//! module, and the first transaction whose changes differ is reported.

use crate::support::*;
use std::path::{Path, PathBuf};

/// A stopped node `alpha` with the `interstice init` module published as `notes` and three
/// notes added ("a", "b", "c"); the project's path and the transactions of "b" and "c".
fn stopped_notes_node(d: &Path, logs: &Path, projects: &Path) -> (PathBuf, u64, u64) {
    let project = projects.join("notes");
    let project_path = project.to_str().unwrap();
    ok(d, &["init", project_path]);
    ok(d, &["node", "create", "alpha", &free_port().to_string()]);
    let node = start(d, "alpha", &logs.join("alpha.log"));
    ok(d, &["publish", "alpha", project_path]);
    for text in ["a", "b", "c"] {
        ok(d, &["call_reducer", "alpha", "notes", "add_note", text]);
    }
    let history: serde_json::Value =
        serde_json::from_str(&ok(d, &["history", "alpha", "notes", "note", "--json"])).unwrap();
    let tx_of = |text: &str| -> u64 {
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["row"]["text"] == text)
            .and_then(|v| v["tx"].as_u64())
            .unwrap_or_else(|| panic!("no version with text {text}: {history}"))
    };
    let running = fails(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            "0",
            "--with",
            project_path,
        ],
    );
    assert!(running.contains("stop it first"), "{running}");
    drop(node);
    (project, tx_of("b"), tx_of("c"))
}

/// Makes the project's `add_note` store "B" where it stored "b".
fn change_add_note(project: &Path) {
    let lib = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    let changed = original.replace(
        "Note { id: 0, text }",
        "Note { id: 0, text: if text == \"b\" { \"B\".to_string() } else { text } }",
    );
    assert_ne!(changed, original);
    std::fs::write(&lib, &changed).unwrap();
}

#[test]
fn a_replay_finds_no_difference_with_the_same_module_and_the_first_one_with_a_changed_module() {
    let (data, logs, projects) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let d = data.path();
    let (project, b, _) = stopped_notes_node(d, logs.path(), projects.path());
    let project_path = project.to_str().unwrap();

    // The same code makes the same changes.
    let same = ok(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            "0",
            "--with",
            project_path,
        ],
    );
    assert!(
        same.contains("no difference: 3 replayed transactions"),
        "{same}"
    );

    // A changed reducer: only the note "b" comes out differently.
    change_add_note(&project);
    let (success, out, err) = cli(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            "0",
            "--with",
            project_path,
        ],
    );
    assert!(!success, "a difference is a failure:\n{out}\n{err}");
    println!("{out}{err}");
    assert!(
        out.contains(&format!("first difference at transaction {b} "))
            && out.contains("notes.add_note(\"b\")"),
        "{out}\n{err}"
    );
    let recorded = out.lines().find(|l| l.contains("recorded:")).unwrap_or("");
    let replayed = out.lines().find(|l| l.contains("replayed:")).unwrap_or("");
    assert!(
        recorded.contains("\"b\"") && replayed.contains("\"B\""),
        "{out}"
    );
    assert!(err.contains("differs from the recorded run"), "{err}");
}

#[test]
fn a_replay_from_after_the_change_agrees_and_mistakes_say_what_is_wrong() {
    let (data, logs, projects) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let d = data.path();
    let (project, _, c) = stopped_notes_node(d, logs.path(), projects.path());
    let project_path = project.to_str().unwrap();
    change_add_note(&project);
    // From the transaction after the one it changes, the new code agrees with the record.
    let after = ok(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            &c.to_string(),
            "--with",
            project_path,
        ],
    );
    assert!(
        after.contains("no difference: 1 replayed transactions"),
        "{after}"
    );
    let other = fails(
        d,
        &[
            "replay",
            "alpha",
            "nope",
            "--from",
            "0",
            "--with",
            project_path,
        ],
    );
    assert!(other.contains("not `nope`"), "{other}");
    let backwards = fails(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            "5",
            "--to",
            "2",
            "--with",
            project_path,
        ],
    );
    assert!(backwards.contains("before --from"), "{backwards}");

    // A reducer the recorded calls ran and the new code no longer has is a difference.
    let lib = project.join("src/lib.rs");
    let renamed = std::fs::read_to_string(&lib)
        .unwrap()
        .replace("fn add_note(", "fn add_entry(");
    std::fs::write(&lib, renamed).unwrap();
    let (success, out, _) = cli(
        d,
        &[
            "replay",
            "alpha",
            "notes",
            "--from",
            "0",
            "--with",
            project_path,
        ],
    );
    assert!(
        !success && out.contains("the new code has no reducer `add_note`"),
        "{out}"
    );
}

#[test]
fn a_replay_draws_the_same_random_numbers_and_sees_the_same_caller() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    // `add` stores a random number and the calling node (the CLI's key) in each note.
    let node = crate::tables::notebook_node(
        d,
        logs.path(),
        &[
            &["add", "a"],
            &["add", "b"],
            &["rename", "1", "a2"],
            &["remove", "2"],
            &["add", "c"],
            &["scribble", "1", "5"],
        ],
    );
    // A failed call takes an id the next note skips (counters are never rolled back) and
    // leaves no record: the replay must still give the next note the id it got.
    let failed = fails(
        d,
        &["call_reducer", "alpha", "notebook", "add_then_fail", "z"],
    );
    assert!(!failed.is_empty());
    ok(d, &["call_reducer", "alpha", "notebook", "add", "d"]);
    drop(node);
    let notebook = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../modules/fixtures/notebook"
    );
    let same = ok(
        d,
        &[
            "replay", "alpha", "notebook", "--from", "0", "--with", notebook,
        ],
    );
    // Every recorded call runs again (with the subscriber each note's insert calls), and
    // the random numbers and callers stored in the notes come out the same.
    let replayed: u64 = same
        .strip_prefix("no difference: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{same}"));
    assert!(replayed >= 5, "{same}");
}
