//! Reading a node: table rows page by page, and what modules logged.

use crate::support::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn rows_pages_a_ten_thousand_row_table() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let _node = start(d, "alpha", &logs.path().join("alpha.log"));
    let stream = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/fixtures/stream");
    ok(d, &["publish", "alpha", stream]);
    for _ in 0..5 {
        ok(d, &["call_reducer", "alpha", "stream", "emit", "2000"]);
    }

    // All of it, in key order, through pages of at most 1,000.
    let all: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "rows", "alpha", "stream", "tick", "--limit", "10000", "--json",
        ],
    ))
    .unwrap();
    let ids: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=10_000).collect::<Vec<u64>>());

    // A first page, and where the next one starts.
    let (success, out, err) = cli(d, &["rows", "alpha", "stream", "tick", "--limit", "100"]);
    assert!(success, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 101, "a header and 100 rows: {out}");
    assert_eq!(lines[0], "id\tvalue");
    assert_eq!(lines[1], "1\t0");
    assert!(err.contains("more follow: add `--after 100`"), "{err}");
    let next = ok(
        d,
        &[
            "rows", "alpha", "stream", "tick", "--limit", "2", "--after", "100",
        ],
    );
    assert_eq!(next, "id\tvalue\n101\t100\n102\t101\n");
    // The last page says nothing more follows.
    let (_, _, tail) = cli(d, &["rows", "alpha", "stream", "tick", "--after", "9990"]);
    assert!(!tail.contains("more follow"), "{tail}");

    // A filter, and mistakes.
    let found = ok(
        d,
        &[
            "rows", "alpha", "stream", "tick", "--filter", "id=4242", "--json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&found).unwrap(),
        serde_json::json!([{"id": 4242, "value": 241}])
    );
    let column = fails(
        d,
        &["rows", "alpha", "stream", "tick", "--filter", "colour=red"],
    );
    assert!(column.contains("columns: id, value"), "{column}");
    let table = fails(d, &["rows", "alpha", "stream", "nothere"]);
    assert!(table.contains("stream.nothere"), "{table}");
}

#[test]
fn logs_show_what_modules_logged_and_follow_new_lines() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let _node = start(d, "alpha", &logs.path().join("alpha.log"));
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/hello");
    ok(d, &["publish", "alpha", hello]);
    ok(d, &["call_reducer", "alpha", "hello", "hello", "Ada"]);
    let kept = ok(d, &["logs", "alpha", "hello"]);
    assert!(kept.contains("INFO [hello] greeting #1 stored"), "{kept}");
    let json = ok(d, &["logs", "alpha", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(json.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(first["module"], "hello");

    // A follower started now prints a line logged after it started.
    let followed = logs.path().join("follow.out");
    let mut follower = Running(
        std::process::Command::new(bin())
            .args(["logs", "alpha", "hello", "--follow"])
            .env("INTERSTICE_DATA_DIR", d)
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(std::fs::File::create(&followed).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the follower"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&followed)
        .unwrap_or_default()
        .contains("greeting #1 stored")
    {
        assert!(Instant::now() < deadline, "the follower printed nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(d, &["call_reducer", "alpha", "hello", "hello", "Bob"]);
    while !std::fs::read_to_string(&followed)
        .unwrap_or_default()
        .contains("greeting #2 stored")
    {
        assert!(
            Instant::now() < deadline,
            "the follower did not print the new line: {}",
            std::fs::read_to_string(&followed).unwrap_or_default()
        );
        assert!(
            follower.0.try_wait().unwrap().is_none(),
            "the follower stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running node `alpha` with the notebook fixture published, after these reducer calls
/// (each `[reducer, args...]`).
pub(crate) fn notebook_node(d: &Path, logs: &Path, calls: &[&[&str]]) -> Running {
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let node = start(d, "alpha", &logs.join("alpha.log"));
    let notebook = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../modules/fixtures/notebook"
    );
    ok(d, &["publish", "alpha", notebook]);
    for args in calls {
        let mut call = vec!["call_reducer", "alpha", "notebook"];
        call.extend(*args);
        ok(d, &call);
    }
    node
}

#[test]
fn history_lists_each_version_of_a_logged_row_with_its_cause() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let _node = notebook_node(
        d,
        logs.path(),
        &[
            &["add", "a"],
            &["add", "b"],
            &["rename", "1", "a2"],
            &["remove", "2"],
            &["scribble", "1", "5"],
        ],
    );

    let all: serde_json::Value =
        serde_json::from_str(&ok(d, &["history", "alpha", "notebook", "note", "--json"])).unwrap();
    let all = all.as_array().unwrap();
    let seen: Vec<(&str, serde_json::Value, serde_json::Value)> = all
        .iter()
        .map(|v| {
            (
                v["reducer"].as_str().unwrap(),
                v["key"].clone(),
                v["row"]["title"].clone(),
            )
        })
        .collect();
    use serde_json::json;
    assert_eq!(
        seen,
        [
            ("add", json!(1), json!("a")),
            ("add", json!(2), json!("b")),
            ("rename", json!(1), json!("a2")),
            ("remove", json!(2), json!(null)),
        ]
    );
    let txs: Vec<u64> = all.iter().map(|v| v["tx"].as_u64().unwrap()).collect();
    assert!(txs.windows(2).all(|w| w[0] < w[1]), "{txs:?}");
    // The cause: the reducer's arguments, by name, and the CLI's key as the caller.
    assert_eq!(all[2]["args"], json!({"id": 1, "title": "a2"}));
    let cli_node = interstice_net::transport::node_id_of(&fingerprint_of_cli(d));
    assert!(
        all.iter().all(|v| v["caller"] == json!(cli_node)),
        "{all:?}"
    );

    // One row's versions, from a transaction on.
    let one: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "history",
            "alpha",
            "notebook",
            "note",
            "--key",
            "1",
            "--from",
            &txs[1].to_string(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one[0]["reducer"], "rename");
    // As text: one line per version.
    let text = ok(d, &["history", "alpha", "notebook", "note", "--key", "2"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("notebook.add") && lines[0].contains("by node "),
        "{text}"
    );
    assert!(lines[1].contains("deleted 2"), "{text}");

    // A stateful table keeps no history, and says so.
    let stateful = fails(d, &["history", "alpha", "notebook", "scratch"]);
    assert!(stateful.contains("keeps no history"), "{stateful}");
}

#[test]
fn history_between_logical_times_and_rows_as_of_a_past_point() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let _node = notebook_node(
        d,
        logs.path(),
        &[
            &["add", "a"],
            &["add", "b"],
            &["rename", "1", "a2"],
            &["remove", "2"],
        ],
    );
    use serde_json::json;
    let all: serde_json::Value =
        serde_json::from_str(&ok(d, &["history", "alpha", "notebook", "note", "--json"])).unwrap();
    let all = all.as_array().unwrap();
    let txs: Vec<u64> = all.iter().map(|v| v["tx"].as_u64().unwrap()).collect();

    // Between logical times: the versions at or after `--from`, at or before `--to`.
    let time_of = |v: &serde_json::Value| v["time_ms"].as_u64().unwrap();
    let (from, to) = (time_of(&all[1]), time_of(&all[2]));
    let between: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "history",
            "alpha",
            "notebook",
            "note",
            "--from",
            &format!("{from}ms"),
            "--to",
            &format!("{to}ms"),
            "--json",
        ],
    ))
    .unwrap();
    let expected: Vec<&serde_json::Value> = all
        .iter()
        .filter(|v| (from..=to).contains(&time_of(v)))
        .collect();
    assert_eq!(
        between.as_array().unwrap().iter().collect::<Vec<_>>(),
        expected
    );
    assert!(expected.len() >= 2);
    let backwards = fails(
        d,
        &[
            "history", "alpha", "notebook", "note", "--from", "2s", "--to", "1s",
        ],
    );
    assert!(backwards.contains("is after"), "{backwards}");
    let neither = fails(
        d,
        &["history", "alpha", "notebook", "note", "--from", "3 days"],
    );
    assert!(neither.contains("neither a transaction"), "{neither}");

    // The table as it was after a past transaction, or at a past logical time.
    let titles_as_of = |point: &str| -> Vec<serde_json::Value> {
        let rows: serde_json::Value = serde_json::from_str(&ok(
            d,
            &[
                "rows", "alpha", "notebook", "note", "--as-of", point, "--json",
            ],
        ))
        .unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].clone())
            .collect()
    };
    assert_eq!(titles_as_of(&txs[1].to_string()), [json!("a"), json!("b")]);
    assert_eq!(titles_as_of(&txs[2].to_string()), [json!("a2"), json!("b")]);
    assert_eq!(titles_as_of(&txs[3].to_string()), [json!("a2")]);
    assert_eq!(
        titles_as_of(&format!("{}ms", time_of(&all[2]))),
        titles_as_of(&txs[2].to_string())
    );
    let past_stateful = fails(d, &["rows", "alpha", "notebook", "scratch", "--as-of", "1"]);
    assert!(
        past_stateful.contains("keeps no history"),
        "{past_stateful}"
    );
}

#[test]
fn a_node_restored_to_a_past_transaction_holds_its_logged_tables_as_they_were() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let node = notebook_node(
        d,
        logs.path(),
        &[&["add", "a"], &["add", "b"], &["rename", "1", "a2"]],
    );
    let history: serde_json::Value =
        serde_json::from_str(&ok(d, &["history", "alpha", "notebook", "note", "--json"])).unwrap();
    let before_rename = history[1]["tx"].as_u64().unwrap().to_string();
    let running = fails(
        d,
        &[
            "node",
            "restore",
            "alpha",
            "--to",
            &before_rename,
            "--into",
            "beta",
        ],
    );
    assert!(running.contains("stop it first"), "{running}");
    drop(node);

    let restored = ok(
        d,
        &[
            "node",
            "restore",
            "alpha",
            "--to",
            &before_rename,
            "--into",
            "beta",
        ],
    );
    assert!(restored.contains("as of transaction"), "{restored}");
    let _beta = start(d, "beta", &logs.path().join("beta.log"));
    let titles = |node: &str| -> Vec<String> {
        let rows: serde_json::Value =
            serde_json::from_str(&ok(d, &["rows", node, "notebook", "note", "--json"])).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(titles("beta"), ["a", "b"], "before the rename");
    // As of a logical time: the last transaction at or before it.
    let time_of = |i: usize| history[i]["time_ms"].as_u64().unwrap();
    assert!(time_of(0) < time_of(1), "{history}");
    let by_time = ok(
        d,
        &[
            "node",
            "restore",
            "alpha",
            "--to",
            &format!("{}ms", time_of(1) - 1),
            "--into",
            "gamma",
        ],
    );
    assert!(by_time.contains("as of transaction"), "{by_time}");
    let _gamma = start(d, "gamma", &logs.path().join("gamma.log"));
    assert_eq!(titles("gamma"), ["a"], "before the second add");
    // The original is untouched.
    let _alpha = start(d, "alpha", &logs.path().join("alpha2.log"));
    assert_eq!(titles("alpha"), ["a2", "b"]);
    // A name in use is refused.
    let taken = fails(
        d,
        &["node", "restore", "alpha", "--to", "0", "--into", "beta"],
    );
    assert!(taken.contains("exists already"), "{taken}");
}
