//! End-to-end: a remote call survives a crash of its caller. `interstice example caller`
//! commits calls to a hello node that is not running yet and is killed with SIGKILL; the calls
//! are durable in its outbox. Hello starts, the caller starts again: every call is delivered
//! and runs exactly once — also when the caller is killed again right after delivering them,
//! before it could forget them, and sends them once more.

mod nodes;

use nodes::{Nodes, free_port, start};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const GREETINGS: u32 = 5;

fn wait_for_line(log: &Path, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            Instant::now() < deadline,
            "no `{text}` in {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Greetings the caller received through its subscription, over every log given.
fn received(logs: &[&Path]) -> Vec<String> {
    logs.iter()
        .flat_map(|log| {
            nodes::received(log)
                .into_iter()
                .map(|(_, greeting)| greeting)
        })
        .collect()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

#[test]
fn remote_calls_committed_before_a_crash_are_delivered_once_after_restart() {
    let data = tempfile::tempdir().expect("temp dir");
    let logs = tempfile::tempdir().expect("temp dir");
    let hello_addr = free_port();
    let node = format!("hello_node={hello_addr}");
    let caller_args = |greet: bool| {
        let mut args = vec!["example", "caller", "--listen", "127.0.0.1:0", "--node"];
        args.push(&node);
        if greet {
            args.extend(["--greet", "5"]);
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let mut nodes = Nodes(Vec::new());

    // 1. Hello is down: the caller commits its calls (durably) and cannot send them.
    let first = logs.path().join("caller-1.log");
    nodes
        .0
        .push(start(&as_strs(&caller_args(true)), data.path(), &first));
    wait_for_line(
        &first,
        "asked hello_node for 5 greetings",
        Duration::from_secs(120),
    );
    // A few frames for the commit and its fsync.
    std::thread::sleep(Duration::from_secs(1));
    let mut caller = nodes.0.pop().expect("caller");
    kill(&mut caller);

    // 2. Hello starts; the caller restarts (asking for nothing new) and delivers its outbox.
    let hello_log = logs.path().join("hello.log");
    let hello_port = hello_addr.to_string();
    nodes.0.push(start(
        &["example", "hello", "--listen", &hello_port],
        data.path(),
        &hello_log,
    ));
    wait_for_line(&hello_log, "listening for peers", Duration::from_secs(60));
    let second = logs.path().join("caller-2.log");
    nodes
        .0
        .push(start(&as_strs(&caller_args(false)), data.path(), &second));
    let names: Vec<String> = std::iter::once("Hello, caller!".to_string())
        .chain((0..GREETINGS).map(|i| format!("Hello, caller{i}!")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !names.iter().all(|n| received(&[&second]).contains(n)) {
        assert!(
            Instant::now() < deadline,
            "the calls committed before the crash were not delivered; received {:?}\n{}",
            received(&[&second]),
            std::fs::read_to_string(&second).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // 3. Killed at once: it may not have forgotten the answered calls and sends them again.
    let mut caller = nodes.0.pop().expect("caller");
    kill(&mut caller);
    let third = logs.path().join("caller-3.log");
    nodes
        .0
        .push(start(&as_strs(&caller_args(false)), data.path(), &third));
    wait_for_line(&third, "listening for peers", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));

    // Each call ran exactly once on hello: one stored greeting each, which the caller's
    // subscription (resuming across its restarts) received once.
    let got = received(&[&second, &third]);
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for greeting in &got {
        *runs.entry(greeting.as_str()).or_default() += 1;
    }
    for name in &names {
        assert_eq!(
            runs.get(name.as_str()).copied(),
            Some(1),
            "`{name}` ran {:?} times; received {got:?}",
            runs.get(name.as_str())
        );
    }
}
