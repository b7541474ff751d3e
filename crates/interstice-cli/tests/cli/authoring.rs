//! A module author's loop: `init`, `cargo test`, `dev`, upgrades and hand-written crates.

use crate::support::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn init_then_publish_then_call() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let projects = tempfile::tempdir().unwrap();
    let d = data.path();
    let project = projects.path().join("my-notes");
    let project_path = project.to_str().unwrap();
    assert!(ok(d, &["init", project_path]).contains("created module `my_notes`"));
    assert!(fails(d, &["init", project_path]).contains("exists already"));
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let _node = start(d, "alpha", &logs.path().join("alpha.log"));
    // As the README has it: from the directory holding the crate, by its relative path.
    let (published, out, err) = cli_in(projects.path(), d, &["publish", "alpha", "my-notes"]);
    assert!(
        published,
        "publish by a relative path failed:\n{out}\n{err}"
    );
    assert!(out.contains("published `my_notes`"), "{out}");
    ok(
        d,
        &["call_reducer", "alpha", "my_notes", "add_note", "first"],
    );
    ok(
        d,
        &[
            "call_reducer",
            "alpha",
            "my_notes",
            "add_note",
            "second note",
        ],
    );
    assert_eq!(
        ok(d, &["call_query", "alpha", "my_notes", "notes", "--json"]).trim(),
        r#"["first","second note"]"#
    );
}

/// `init` scaffolds a native test that `cargo test` runs without a node, and that fails when
/// the module does something else than it expects.
#[test]
fn init_then_cargo_test_runs_natively() {
    let data = tempfile::tempdir().unwrap();
    let projects = tempfile::tempdir().unwrap();
    let project = projects.path().join("my-notes");
    let project_path = project.to_str().unwrap();
    let created = ok(data.path(), &["init", project_path]);
    assert!(created.contains("cargo test"), "{created}");
    let cargo_test = || {
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("test")
            .current_dir(&project)
            // Its own target directory (the one running this test is locked), kept between
            // runs: the engine compiles once.
            .env(
                "CARGO_TARGET_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("init-native-tests"),
            )
            .output()
            .expect("running cargo test")
    };
    let passed = cargo_test();
    let out = String::from_utf8_lossy(&passed.stdout);
    let err = String::from_utf8_lossy(&passed.stderr);
    assert!(passed.status.success(), "cargo test failed:\n{out}\n{err}");
    assert!(
        out.contains("test tests::notes_are_kept_in_order ... ok"),
        "{out}"
    );

    // The test reads what the module does: break the module and it fails.
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let broken = source.replace(
        ".map(|n| n.text).collect()",
        ".map(|n| n.text.to_uppercase()).collect()",
    );
    assert_ne!(broken, source);
    std::fs::write(&lib, broken).unwrap();
    let failed = cargo_test();
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(!failed.status.success(), "{out}");
    assert!(
        out.contains("test tests::notes_are_kept_in_order ... FAILED"),
        "{out}"
    );
}

/// `interstice dev`: an edit is built and live without any other command, keeping the data;
/// the module's log lines show as they come; an incompatible edit is refused with the reason
/// and the loop goes on.
#[test]
fn dev_publishes_every_save() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let projects = tempfile::tempdir().unwrap();
    let d = data.path();
    let project = projects.path().join("notes");
    let project_path = project.to_str().unwrap();
    ok(d, &["init", project_path]);
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let _node = start(d, "alpha", &logs.path().join("alpha.log"));
    let mut dev = Running(
        std::process::Command::new(bin())
            .args(["dev", "alpha", project_path])
            .env("INTERSTICE_DATA_DIR", d)
            .env("NO_COLOR", "1")
            .env("CARGO_TARGET_DIR", env!("CARGO_TARGET_TMPDIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting interstice dev"),
    );
    let lines = Lines::of(&mut dev.0);
    lines.until("published `notes` on `alpha`", Duration::from_secs(300));
    lines.until("live", Duration::from_secs(10));
    ok(d, &["call_reducer", "alpha", "notes", "add_note", "kept"]);

    // An edit: a new query and a log line. Live without another command, the row kept.
    let lib = project.join("src/lib.rs");
    let v1 = std::fs::read_to_string(&lib).unwrap();
    let v2 = v1
        .replace(
            "    ctx.current.tables.note().insert(Note { id: 0, text })?;",
            "    host_calls::log(&format!(\"adding {text}\"));\n    ctx.current.tables.note().insert(Note { id: 0, text })?;",
        )
        .replace(
            "/// Every note, oldest first.",
            "/// How many notes.\n#[query]\nfn count(ctx: QueryContext) -> u64 {\n    ctx.current.tables.note().count()\n}\n\n/// Always fails.\n#[reducer]\nfn refuse(_ctx: ReducerContext) -> Result<(), String> {\n    Err(\"not today\".into())\n}\n\n/// Every note, oldest first.",
        );
    assert_ne!(v2, v1);
    std::fs::write(&lib, &v2).unwrap();
    let mut seen = lines.until(
        "upgraded `notes` on `alpha`: its data is kept",
        Duration::from_secs(120),
    );
    let live = lines.until("live", Duration::from_secs(10));
    eprintln!("after the edit: {}", live.last().unwrap());
    seen.extend(live);
    assert_eq!(
        ok(d, &["call_query", "alpha", "notes", "count"]).trim(),
        "1"
    );
    ok(d, &["call_reducer", "alpha", "notes", "add_note", "fresh"]);
    seen.extend(lines.until("adding fresh", Duration::from_secs(20)));
    assert_eq!(
        ok(d, &["call_query", "alpha", "notes", "count"]).trim(),
        "2"
    );
    // The node's own lines about the module come too: the upgrade, a call that failed.
    assert!(fails(d, &["call_reducer", "alpha", "notes", "refuse"]).contains("not today"));
    seen.extend(lines.until(
        "node: reducer `refuse` failed: not today",
        Duration::from_secs(20),
    ));
    assert!(
        seen.iter()
            .any(|l| l.contains("node: upgraded, its data kept by")),
        "{}",
        seen.join("\n")
    );

    // Longer than the node keeps an idle connection: the kept one must still serve.
    std::thread::sleep(Duration::from_secs(11));

    // An incompatible edit is refused with the reason; the loop goes on.
    let v3 = v2
        .replace("    pub text: String,", "    pub text: u64,")
        .replace("text: String)", "text: u64)")
        .replace(
            ".map(|n| n.text).collect()",
            ".map(|n| n.text.to_string()).collect()",
        );
    std::fs::write(&lib, &v3).unwrap();
    let refused = lines.until("waiting for the next save", Duration::from_secs(120));
    let refused = refused.join("\n");
    assert!(refused.contains("not published"), "{refused}");
    assert!(
        refused.contains("text"),
        "the reason names the field: {refused}"
    );
    std::fs::write(&lib, &v2).unwrap();
    lines.until("upgraded `notes` on `alpha`", Duration::from_secs(120));
    assert_eq!(
        ok(d, &["call_query", "alpha", "notes", "count"]).trim(),
        "2"
    );
}

#[test]
fn publishing_a_new_version_upgrades_in_place() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let projects = tempfile::tempdir().unwrap();
    let d = data.path();
    let project = projects.path().join("notes");
    let project_path = project.to_str().unwrap();
    ok(d, &["init", project_path]);
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let node = start(d, "alpha", &logs.path().join("1.log"));
    ok(d, &["publish", "alpha", project_path]);
    ok(d, &["call_reducer", "alpha", "notes", "add_note", "a"]);
    let notes = |d: &Path| ok(d, &["call_query", "alpha", "notes", "notes", "--json"]);
    assert_eq!(notes(d).trim(), r#"["a"]"#);

    // Compatible: a trailing optional field, a new table and a new query.
    let lib = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    let v2 = original
        .replace(
            "    pub text: String,\n}",
            "    pub text: String,\n    pub tag: Option<String>,\n}\n\n/// New in v2.\n#[table]\npub struct Label {\n    #[primary_key]\n    pub name: String,\n}",
        )
        .replace("Note { id: 0, text }", "Note { id: 0, text, tag: None }")
        .replace(
            "/// Every note, oldest first.",
            "/// How many notes.\n#[query]\nfn count(ctx: QueryContext) -> u64 {\n    ctx.current.tables.note().count()\n}\n\n/// Every note, oldest first.",
        );
    assert_ne!(v2, original);
    std::fs::write(&lib, &v2).unwrap();
    let upgraded = ok(d, &["publish", "alpha", project_path]);
    assert!(
        upgraded.contains("upgraded `notes` on `alpha`: its data is kept"),
        "{upgraded}"
    );
    assert_eq!(notes(d).trim(), r#"["a"]"#, "rows survive the upgrade");
    ok(d, &["call_reducer", "alpha", "notes", "add_note", "b"]);
    assert_eq!(
        ok(d, &["call_query", "alpha", "notes", "count"]).trim(),
        "2"
    );

    // And a restart: the node loads v2 and its rows.
    drop(node);
    let node = start(d, "alpha", &logs.path().join("2.log"));
    assert_eq!(notes(d).trim(), r#"["a","b"]"#);

    // Incompatible: a field changes type. Refused, with the reason, unless --drop-data.
    let v3 = v2
        .replace(
            "    pub text: String,\n    pub tag",
            "    pub text: u64,\n    pub tag",
        )
        .replace(
            "fn add_note(ctx: ReducerContext, text: String)",
            "fn add_note(ctx: ReducerContext, text: u64)",
        )
        .replace(
            ".map(|n| n.text).collect()",
            ".map(|n| n.text.to_string()).collect()",
        );
    std::fs::write(&lib, &v3).unwrap();
    let refused = fails(d, &["publish", "alpha", project_path]);
    assert!(
        refused.contains("field `text` changed type from String to u64")
            && refused.contains("--drop-data"),
        "{refused}"
    );
    assert_eq!(
        notes(d).trim(),
        r#"["a","b"]"#,
        "a refused upgrade changes nothing"
    );
    let forced = ok(d, &["publish", "alpha", project_path, "--drop-data"]);
    assert!(forced.contains("dropped:"), "{forced}");
    assert_eq!(notes(d).trim(), "[]");
    drop(node);
    let _node = start(d, "alpha", &logs.path().join("3.log"));
    ok(d, &["call_reducer", "alpha", "notes", "add_note", "7"]);
    assert_eq!(notes(d).trim(), r#"["7"]"#);
}

#[test]
fn a_hand_written_crate_publishes_and_a_broken_one_shows_the_compilers_message() {
    let (data, logs, projects) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let d = data.path();
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let _node = start(d, "alpha", &logs.path().join("alpha.log"));

    let good = projects.path().join("good");
    handmade_crate(
        &good,
        "use interstice_sdk::*;\n\
         interstice_module!(visibility: Public);\n\
         #[table]\npub struct Note { #[primary_key(auto_inc)] pub id: u64, pub text: String }\n\
         #[reducer]\nfn add(ctx: ReducerContext, text: String) -> Result<(), HostError> {\n\
         ctx.current.tables.note().insert(Note { id: 0, text })?; Ok(()) }\n\
         #[query]\nfn count(ctx: QueryContext) -> u64 { ctx.current.tables.note().count() }\n",
    );
    let published = ok(d, &["publish", "alpha", good.to_str().unwrap()]);
    assert!(published.contains("published `handmade`"), "{published}");
    ok(d, &["call_reducer", "alpha", "handmade", "add", "hi"]);
    assert_eq!(
        ok(d, &["call_query", "alpha", "handmade", "count"]).trim(),
        "1"
    );

    let broken = projects.path().join("broken");
    handmade_crate(
        &broken,
        "use interstice_sdk::*;\ninterstice_module!();\n\
         #[query]\nfn answer(_ctx: QueryContext) -> u64 { \"forty-two\" }\n",
    );
    let (success, _, err) = cli(d, &["publish", "alpha", broken.to_str().unwrap()]);
    assert!(!success, "a crate that does not compile was published");
    // The compiler's own words, then ours: no guess about the cause.
    assert!(err.contains("mismatched types"), "{err}");
    assert!(err.contains("see its messages above"), "{err}");
    assert!(!err.contains("is the target installed"), "{err}");
}
