//! End-to-end: the real `interstice` binary managing nodes, publishing, calling and querying
//! against a real node process over UDP on 127.0.0.1 — the failures included.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("interstice")
}

/// Runs `interstice` with this data directory; returns (success, stdout, stderr).
fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    cli_in(Path::new("."), data, args)
}

/// [`cli`], run from the directory `cwd` (for relative paths, as a user types them).
fn cli_in(cwd: &Path, data: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(bin())
        .current_dir(cwd)
        .args(args)
        .env("INTERSTICE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        // Where `publish` builds modules: shared with the other tests' wasm builds.
        .env("CARGO_TARGET_DIR", env!("CARGO_TARGET_TMPDIR"))
        .timeout(Duration::from_secs(300))
        .output()
        .expect("running interstice");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(data: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(data, args);
    assert!(
        success,
        "`interstice {}` failed:\n{out}\n{err}",
        args.join(" ")
    );
    out
}

fn fails(data: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(data, args);
    assert!(
        !success,
        "`interstice {}` should fail:\n{out}",
        args.join(" ")
    );
    err
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `interstice node start <name>`, once it listens.
fn start(data: &Path, name: &str, log: &Path) -> Running {
    start_with(data, &[name], log)
}

/// `interstice node start <args>`, once it listens.
fn start_with(data: &Path, args: &[&str], log: &Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(bin())
        .args(["node", "start"])
        .args(args)
        .env("INTERSTICE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("starting the node");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("listening for peers")
    {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running(child)
}

fn fingerprint_of_cli(data: &Path) -> String {
    let cert = std::fs::read(data.join("cli").join("identity.cert.der")).unwrap();
    interstice_net::transport::fingerprint(&cert)
}

#[test]
fn help_and_completions() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let help = ok(d, &["--help"]);
    for command in [
        "node",
        "publish",
        "remove",
        "call_reducer",
        "call_query",
        "init",
        "bindings",
    ] {
        assert!(
            help.contains(command),
            "{command} missing from --help:\n{help}"
        );
    }
    assert!(ok(d, &["node", "--help"]).contains("schema"));
    assert!(ok(d, &["completions", "bash"]).contains("call_reducer"));
    let update = ok(d, &["update", "--dry-run"]);
    assert!(
        update.contains("install --path") && update.contains("interstice-cli --locked"),
        "{update}"
    );
}

#[test]
fn the_registry_commands() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    assert!(ok(d, &["node", "list"]).contains("no nodes yet"));
    let created = ok(d, &["node", "create", "alpha", "9401"]);
    assert!(created.contains("created node `alpha`"), "{created}");
    assert!(ok(d, &["node", "list"]).contains("127.0.0.1:9401"));
    let shown = ok(d, &["node", "show", "alpha"]);
    assert!(shown.contains("key:") && shown.contains("local"), "{shown}");
    assert!(fails(d, &["node", "create", "alpha", "9402"]).contains("alpha"));
    ok(d, &["node", "rename", "alpha", "beta"]);
    assert!(fails(d, &["node", "show", "alpha"]).contains("unknown node `alpha`"));
    ok(d, &["node", "remove", "beta"]);
    assert!(fails(d, &["node", "ping", "beta"]).contains("unknown node `beta`"));
}

#[test]
fn publish_call_query_remove_against_a_running_node() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let d = data.path();
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let node = start(d, "alpha", &logs.path().join("alpha.log"));

    let pinged = ok(d, &["node", "ping", "alpha", "--count", "3"]);
    assert!(pinged.contains("3 pings"), "{pinged}");
    assert!(pinged.contains("storage: ok"), "{pinged}");
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/hello");
    assert!(ok(d, &["publish", "alpha", hello]).contains("published `hello` on `alpha`"));

    assert!(ok(d, &["call_reducer", "alpha", "hello", "hello", "Ada"]).contains("committed"));
    assert_eq!(
        ok(d, &["call_query", "alpha", "hello", "greeting_count"]).trim(),
        "1"
    );
    let json = ok(
        d,
        &[
            "call_query",
            "alpha",
            "hello",
            "greetings_for",
            "Ada",
            "--json",
        ],
    );
    assert_eq!(json.trim(), r#"["Hello, Ada!"]"#);

    // Mistakes: a clear message and a failing exit code.
    let arity = fails(d, &["call_reducer", "alpha", "hello", "hello"]);
    assert!(
        arity.contains("takes 1 argument(s) (name: String), got 0"),
        "{arity}"
    );
    let wrong = fails(d, &["call_query", "alpha", "hello", "greeting_count", "x"]);
    assert!(wrong.contains("takes 0 argument(s)"), "{wrong}");
    let missing = fails(d, &["call_query", "alpha", "nothere", "q"]);
    assert!(missing.contains("no public module `nothere`"), "{missing}");
    let no_reducer = fails(d, &["call_reducer", "alpha", "hello", "nope"]);
    assert!(no_reducer.contains("no reducer `nope`"), "{no_reducer}");
    let stream = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/fixtures/stream");
    ok(d, &["publish", "alpha", stream]);
    let wrong_type = fails(d, &["call_reducer", "alpha", "stream", "emit", "many"]);
    assert!(
        wrong_type.contains("argument `count` expects u32: `many` is not a number"),
        "{wrong_type}"
    );
    let too_big = fails(
        d,
        &["call_reducer", "alpha", "stream", "emit", "5000000000"],
    );
    assert!(too_big.contains("does not fit in u32"), "{too_big}");
    ok(d, &["call_reducer", "alpha", "stream", "emit", "3"]);

    // The schema and bindings.
    let schema = ok(d, &["node", "schema", "alpha"]);
    assert!(
        schema.contains("name = \"hello\"") && schema.contains("[node]"),
        "{schema}"
    );
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("Cargo.toml"),
        "[package]\nname = \"p\"\n",
    )
    .unwrap();
    let project_path = project.path().to_str().unwrap();
    ok(d, &["bindings", "add", "node", "alpha", project_path]);
    ok(
        d,
        &["bindings", "add", "module", "alpha", "hello", project_path],
    );
    assert!(
        project
            .path()
            .join("src/bindings/node_alpha.toml")
            .is_file()
    );
    assert!(project.path().join("src/bindings/hello.toml").is_file());

    // Another CLI: it learns the node's key with `node add`, but the node does not trust it
    // until its owner says so — and then it may call, not publish or remove.
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    let address = format!("127.0.0.1:{port}");
    let added = ok(o, &["node", "add", "alpha", &address]);
    let key_line = ok(d, &["node", "show", "alpha"]);
    let node_key = key_line
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        added.contains(&node_key),
        "node add shows the node's key:\n{added}"
    );
    assert!(fails(o, &["node", "ping", "alpha"]).contains("cannot reach node `alpha`"));
    let trusted = d
        .join("nodes")
        .join(interstice_net::transport::node_id_of(&node_key))
        .join("trusted");
    let mut text = std::fs::read_to_string(&trusted).unwrap();
    text.push_str(&fingerprint_of_cli(o));
    text.push('\n');
    std::fs::write(&trusted, text).unwrap();
    // The trust file is read at start: restart the node.
    drop(node);
    let node = start(d, "alpha", &logs.path().join("alpha2.log"));
    ok(o, &["call_reducer", "alpha", "hello", "hello", "Bob"]);
    let refused = fails(o, &["remove", "alpha", "hello"]);
    assert!(refused.contains("not permitted"), "{refused}");
    let refused = fails(o, &["publish", "alpha", hello]);
    assert!(refused.contains("not permitted"), "{refused}");
    let wrong_key = fails(
        o,
        &[
            "node",
            "add",
            "alpha2",
            &address,
            "--fingerprint",
            &"ab".repeat(32),
        ],
    );
    assert!(wrong_key.contains("not added"), "{wrong_key}");

    // The owner removes it.
    assert!(ok(d, &["remove", "alpha", "hello"]).contains("removed `hello`"));
    assert!(
        fails(d, &["call_query", "alpha", "hello", "greeting_count"]).contains("no public module")
    );

    // A node that is down: a clear message.
    drop(node);
    let down = fails(d, &["node", "ping", "alpha"]);
    assert!(
        down.contains("cannot reach node `alpha`") && down.contains("is it running"),
        "{down}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_node_cleanly_and_its_data_survives() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let d = data.path();
    let port = free_port();
    ok(d, &["node", "create", "alpha", &port.to_string()]);
    let mut node = start(d, "alpha", &logs.path().join("a.log"));
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/hello");
    ok(d, &["publish", "alpha", hello]);
    ok(d, &["call_reducer", "alpha", "hello", "hello", "Ada"]);
    let pid = node.0.id().to_string();
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = node.0.wait().unwrap();
    assert!(status.success(), "Ctrl-C is a clean stop: {status:?}");
    let log = std::fs::read_to_string(logs.path().join("a.log")).unwrap();
    assert!(log.contains("stopped (Ctrl-C)"), "{log}");
    let _node = start(d, "alpha", &logs.path().join("b.log"));
    assert_eq!(
        ok(d, &["call_query", "alpha", "hello", "greeting_count"]).trim(),
        "1"
    );
}

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

/// Lines a child process prints on stdout and stderr, as they come.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        let (sender, receiver) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Lines(receiver)
    }

    /// Waits for a line containing `text`; every line seen meanwhile.
    fn until(&self, text: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {within:?}; saw:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
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
fn the_cli_talks_only_to_the_node_it_names_and_prints_node_text_as_text() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let d = data.path();
    let (alpha_port, beta_port) = (free_port(), free_port());
    ok(d, &["node", "create", "alpha", &alpha_port.to_string()]);
    ok(d, &["node", "create", "beta", &beta_port.to_string()]);
    let _beta = start(d, "beta", &logs.path().join("beta.log"));

    // A node name echoed back in an error carries a terminal escape: it prints as text.
    let escaped = fails(d, &["call_query", "beta", "no\u{1b}[2Jthere", "q"]);
    assert!(!escaped.contains('\u{1b}'), "{escaped:?}");
    assert!(escaped.contains("no\\u{1b}[2Jthere"), "{escaped}");

    // alpha's entry now points at beta's address: beta's key is trusted too, but it is not
    // alpha, and the CLI says so instead of sending alpha's commands to beta.
    let registry = d.join("nodes.toml");
    let text = std::fs::read_to_string(&registry).unwrap();
    let moved = text.replace(
        &format!("127.0.0.1:{alpha_port}"),
        &format!("127.0.0.1:{beta_port}"),
    );
    assert_ne!(text, moved);
    std::fs::write(&registry, moved).unwrap();
    let refused = fails(d, &["node", "ping", "alpha"]);
    assert!(refused.contains("not `alpha`"), "{refused}");
    assert!(ok(d, &["node", "ping", "beta"]).contains("pings"));
}

#[test]
fn a_stranger_joins_an_open_node_by_invite_and_reaches_public_reducers_only() {
    let (owner, stranger, logs) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (o, s) = (owner.path(), stranger.path());
    let port = free_port();
    ok(o, &["node", "create", "arena", &port.to_string()]);
    let invite = ok(o, &["node", "invite", "arena"]).trim().to_string();
    assert!(
        invite.starts_with(&format!("127.0.0.1:{port}/")),
        "{invite}"
    );
    let node = start_with(o, &["arena", "--open"], &logs.path().join("open.log"));
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/hello");
    ok(o, &["publish", "arena", hello]);

    // The stranger's CLI adds the node by invite (its key checked against the invite's), and
    // the node has never heard of the stranger's key.
    let added = ok(s, &["node", "add", "arena", &invite]);
    assert!(added.contains("added node `arena`"), "{added}");
    assert!(
        ok(s, &["call_reducer", "arena", "hello", "hello", "Eve"]).contains("committed"),
        "a stranger may call a public reducer"
    );
    assert_eq!(
        ok(s, &["call_query", "arena", "hello", "greeting_count"]).trim(),
        "1"
    );
    let publish = fails(s, &["publish", "arena", hello]);
    assert!(publish.contains("strangers"), "{publish}");
    let remove = fails(s, &["remove", "arena", "hello"]);
    assert!(remove.contains("stranger"), "{remove}");
    drop(node);

    // Started without --open, the node refuses the same key.
    let node = start(o, "arena", &logs.path().join("closed.log"));
    let refused = fails(s, &["call_reducer", "arena", "hello", "hello", "Eve"]);
    assert!(refused.contains("refused"), "{refused}");
    drop(node);
    // An invite whose key is not the node's is refused before anything is trusted.
    let forged = format!("127.0.0.1:{port}/{}", "ab".repeat(32));
    let _node = start_with(o, &["arena", "--open"], &logs.path().join("again.log"));
    let forged = fails(s, &["node", "add", "other", &forged]);
    assert!(forged.contains("not added"), "{forged}");
}

/// A module crate written by hand from the README: no `interstice init`, no build profile.
fn handmade_crate(dir: &Path, lib: &str) {
    handmade_crate_named(dir, "handmade", lib);
}

/// [`handmade_crate`] with another package (and so module) name.
fn handmade_crate_named(dir: &Path, name: &str, lib: &str) {
    let sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/../interstice-sdk");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\ninterstice-sdk = {{ path = \"{sdk}\" }}\n"
        ),
    )
    .unwrap();
    // What the README tells authors to add while the SDK needs Rust 1.99.1.
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.99.1\"\ntargets = [\"wasm32-unknown-unknown\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src").join("lib.rs"), lib).unwrap();
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
    drop(closed);

    let _node = start_with(o, &["loaded", "--open"], &logs.path().join("open.log"));
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
