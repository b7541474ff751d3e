//! `interstice bench` against a local and a remote node.

use crate::support::*;
use std::path::Path;

/// A `bench_insert` from before the bench could check its rows: the same tables, one reducer.
const OLDER_BENCH_INSERT: &str = r#"
use interstice_sdk::*;

interstice_module!(visibility: Public);

#[table]
pub struct Logged {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub run: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

#[table(ephemeral)]
pub struct Ephemeral {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub run: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

#[reducer]
fn insert_logged(ctx: ReducerContext, run: u64, seq: u64, payload: Vec<u8>) -> Result<(), String> {
    let row = Logged { id: 0, run, seq, payload };
    ctx.current.tables.logged().insert(row).map(drop).map_err(|e| e.to_string())
}
"#;

/// `interstice bench`'s JSON report as a map.
fn bench_json(data: &Path, args: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let out = ok(data, args);
    match serde_json::from_str(out.trim()) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("`interstice {}` printed {out:?}: {other:?}", args.join(" ")),
    }
}

fn number(report: &serde_json::Map<String, serde_json::Value>, key: &str) -> u64 {
    report
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}

#[test]
fn bench_transfer_and_insert_against_a_local_and_a_remote_node() {
    let (owner, remote, logs) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (o, r) = (owner.path(), remote.path());
    let port = free_port();
    ok(o, &["node", "create", "loaded", &port.to_string()]);

    // A node that is not open refuses the bench's client keys, and the error says what to do.
    let closed = start(o, "loaded", &logs.path().join("closed.log"));
    a_closed_node_refuses_the_bench(o);
    drop(closed);

    let _node = start_with(o, &["loaded", "--open"], &logs.path().join("open.log"));
    contended_transfers_keep_the_money(o);
    let _older = an_older_bench_insert_is_upgraded_in_place(o);
    inserts_are_durable_and_clients_leave_room(o);
    a_stranger_benches_the_modules_already_there(o, r);
}

/// `bench insert` on a node started without `--open` fails, pointing at `--open`.
fn a_closed_node_refuses_the_bench(o: &Path) {
    let refused = fails(
        o,
        &[
            "bench",
            "insert",
            "loaded",
            "--requests",
            "10",
            "--clients",
            "2",
        ],
    );
    assert!(refused.contains("--open"), "{refused}");
}

/// Contended and then penniless transfers: nothing fails and the total balance is unchanged.
fn contended_transfers_keep_the_money(o: &Path) {
    // Contended transfers (α = 1.5): everything counted committed or aborted, none failed, and
    // the money is all still there.
    let transfer = [
        "bench",
        "transfer",
        "loaded",
        "--accounts",
        "500",
        "--alpha",
        "1.5",
        "--clients",
        "4",
        "--pipeline",
        "8",
        "--warmup",
        "0.5",
        "--seconds",
        "1.5",
        "--json",
    ];
    let report = bench_json(o, &transfer);
    assert!(number(&report, "committed") > 0, "{report:?}");
    assert_eq!(number(&report, "failed"), 0, "{report:?}");
    assert_eq!(number(&report, "latency_samples"), {
        number(&report, "committed") + number(&report, "aborted") + number(&report, "busy")
    });
    assert_eq!(report["total_balance_unchanged"], serde_json::json!(true));
    assert!(number(&report, "latency_p99_us") >= number(&report, "latency_p50_us"));
    // Balances of 1 run dry at once: transfers are refused for lack of funds (and counted as
    // aborted), and still no money appears or disappears.
    let mut poor = transfer.to_vec();
    poor.extend(["--balance", "1"]);
    let report = bench_json(o, &poor);
    assert!(number(&report, "aborted") > 0, "{report:?}");
    assert_eq!(number(&report, "failed"), 0, "{report:?}");
    assert_eq!(report["total_balance_unchanged"], serde_json::json!(true));
}

/// Publishes an older `bench_insert` (its crate dir returned) with a row; the bench keeps it.
fn an_older_bench_insert_is_upgraded_in_place(o: &Path) -> tempfile::TempDir {
    // An older `bench_insert` on the node (one reducer, no `counts` query) is upgraded in
    // place, its rows kept, before the bench runs. (It replaces the current one, which the
    // refused bench above installed before its clients were turned away.)
    let older = tempfile::tempdir().unwrap();
    handmade_crate_named(older.path(), "bench_insert", OLDER_BENCH_INSERT);
    ok(
        o,
        &[
            "publish",
            "loaded",
            older.path().to_str().unwrap(),
            "--drop-data",
        ],
    );
    ok(
        o,
        &[
            "call_reducer",
            "loaded",
            "bench_insert",
            "insert_logged",
            "1",
            "1",
            "[7]",
        ],
    );
    let (upgraded, out, err) = cli(
        o,
        &["bench", "insert", "loaded", "--requests", "20", "--json"],
    );
    assert!(upgraded, "{out}\n{err}");
    assert!(err.contains("upgraded the `bench_insert` module"), "{err}");
    let rows = ok(o, &["rows", "loaded", "bench_insert", "logged", "--json"]);
    assert_eq!(
        rows.matches("\"run\"").count(),
        21,
        "the older version's row is kept: {rows}"
    );
    older
}

/// Inserts into both tables all land, many short-lived clients fit, and the text report agrees.
fn inserts_are_durable_and_clients_leave_room(o: &Path) {
    // Inserts: every call durable before its answer, every row there afterwards.
    for table in ["logged", "ephemeral"] {
        let report = bench_json(
            o,
            &[
                "bench",
                "insert",
                "loaded",
                "--table",
                table,
                "--requests",
                "300",
                "--clients",
                "2",
                "--pipeline",
                "16",
                "--json",
            ],
        );
        assert_eq!(number(&report, "committed"), 300, "{report:?}");
        assert_eq!(number(&report, "rows_added"), 300, "{report:?}");
    }
    // Clients close their connections before the bench ends: the node has room for a run of
    // as many strangers right after (40 + 40 is more than the 64 it admits at once).
    for _ in 0..2 {
        let report = bench_json(
            o,
            &[
                "bench",
                "insert",
                "loaded",
                "--requests",
                "80",
                "--clients",
                "40",
                "--json",
            ],
        );
        assert_eq!(number(&report, "rows_added"), 80, "{report:?}");
    }
    // The human report says the same.
    let text = ok(o, &["bench", "insert", "loaded", "--requests", "50"]);
    assert!(text.contains("committed per second"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("rows added") && l.trim_end().ends_with(" 50")),
        "{text}"
    );
}

/// A second CLI (data dir `r`) adds the node by invite and benches transfers as a stranger.
fn a_stranger_benches_the_modules_already_there(o: &Path, r: &Path) {
    // From another machine's CLI, which only knows the node by its invite and is a stranger
    // to it: it cannot install modules, so it uses the ones there.
    let invite = ok(o, &["node", "invite", "loaded"]).trim().to_string();
    ok(r, &["node", "add", "far", &invite]);
    let report = bench_json(
        r,
        &[
            "bench",
            "transfer",
            "far",
            "--accounts",
            "100",
            "--clients",
            "2",
            "--pipeline",
            "4",
            "--warmup",
            "0",
            "--seconds",
            "1",
            "--json",
        ],
    );
    assert!(number(&report, "committed") > 0, "{report:?}");
    assert_eq!(report["total_balance_unchanged"], serde_json::json!(true));
}
