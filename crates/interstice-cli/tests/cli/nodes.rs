//! Node management, publishing, calls and queries, trust, and a node that is down.

use crate::support::*;
use std::path::Path;

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

    calls_and_queries(d);
    // Mistakes: a clear message and a failing exit code.
    mistakes_are_clear(d);
    // The schema and bindings.
    let _project = schema_and_bindings(d);

    // Another CLI: it learns the node's key with `node add`, but the node does not trust it
    // until its owner says so — and then it may call, not publish or remove.
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    let address = format!("127.0.0.1:{port}");
    a_second_cli_is_refused_then_trusted(d, o, &address);
    // The trust file is read at start: restart the node.
    drop(node);
    let node = start(d, "alpha", &logs.path().join("alpha2.log"));
    the_trusted_cli_may_call_only(o, &address);

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

/// Pings `alpha`, publishes `hello` there, calls its reducer and queries it.
fn calls_and_queries(d: &Path) {
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
}

/// Wrong arities, names and argument types fail with a clear message (publishing `stream`).
fn mistakes_are_clear(d: &Path) {
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
}

/// `node schema` lists `hello`; `bindings add` writes bindings into a project it returns.
fn schema_and_bindings(d: &Path) -> tempfile::TempDir {
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
    project
}

/// CLI `o` adds `alpha` and is refused; the owner (`d`) then writes its fingerprint to trust.
fn a_second_cli_is_refused_then_trusted(d: &Path, o: &Path, address: &str) {
    let added = ok(o, &["node", "add", "alpha", address]);
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
}

/// The trusted CLI `o` may call but not remove or publish, nor add a node by a wrong key.
fn the_trusted_cli_may_call_only(o: &Path, address: &str) {
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../modules/hello");
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
            address,
            "--fingerprint",
            &"ab".repeat(32),
        ],
    );
    assert!(wrong_key.contains("not added"), "{wrong_key}");
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
