//! End-to-end: two real node processes — `interstice example hello` and `interstice example
//! caller` — talking over real UDP on 127.0.0.1 through a relay that loses, duplicates and
//! reorders 10% of datagrams each way. The hello process is killed (SIGKILL) mid-stream and
//! started again; the caller's subscription must resume with every greeting stored on hello
//! delivered exactly once, in order, and every call must have run exactly once.

mod nodes;

use nodes::{Nodes, free_port, received, start};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const GREETINGS: u32 = 300;

#[test]
fn caller_receives_every_greeting_once_across_a_lossy_link_and_a_killed_hello_node() {
    let data = tempfile::tempdir().expect("temp dir");
    let logs = tempfile::tempdir().expect("temp dir");
    let hello_addr = free_port();
    let relay = start_relay(hello_addr);

    let hello_args = ["example", "hello", "--listen", &hello_addr.to_string()];
    let hello_args: Vec<&str> = hello_args.to_vec();
    let hello_log = logs.path().join("hello-1.log");
    let mut nodes = Nodes(vec![start(&hello_args, data.path(), &hello_log)]);
    // The caller starts once hello is up (and has registered both example nodes).
    wait_until_hello_listens(&hello_log);
    let caller_log = logs.path().join("caller.log");
    nodes.0.push(start_caller(relay, data.path(), &caller_log));

    // Kill hello part-way through the stream.
    let before_kill = kill_hello_mid_stream(&mut nodes, &caller_log);
    nodes.0.push(start(
        &hello_args,
        data.path(),
        &logs.path().join("hello-2.log"),
    ));

    // Every name is greeted; then let late duplicates show up, if any.
    let names: Vec<String> = (0..GREETINGS)
        .map(|i| format!("Hello, caller{i}!"))
        .collect();
    wait_for_every_greeting(&names, &caller_log);
    std::thread::sleep(Duration::from_secs(2));
    let got = received(&caller_log);
    each_greeting_and_call_happened_once(&names, &got, before_kill);
}

/// Starts the impairing relay in front of `hello_addr` on its own thread; returns its address.
fn start_relay(hello_addr: SocketAddr) -> SocketAddr {
    // The relay runs on its own thread for the whole test.
    let (relay_tx, relay_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let relay = interstice_net::impair::impairing_relay(
                hello_addr,
                7,
                interstice_net::impair::Impairment::TEN_PERCENT,
            )
            .await
            .expect("relay");
            let _ = relay_tx.send(relay);
            std::future::pending::<()>().await;
        });
    });
    relay_rx.recv().expect("the relay's address")
}

/// Waits until the hello node's log says it listens for peers.
fn wait_until_hello_listens(hello_log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(hello_log)
        .unwrap_or_default()
        .contains("listening for peers")
    {
        assert!(Instant::now() < deadline, "hello never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the caller example node, greeting through the relay, its output in `caller_log`.
fn start_caller(relay: SocketAddr, data: &Path, caller_log: &Path) -> Child {
    let node = format!("hello_node={relay}");
    let greet = GREETINGS.to_string();
    start(
        &[
            "example",
            "caller",
            "--listen",
            "127.0.0.1:0",
            "--node",
            &node,
            "--greet",
            &greet,
        ],
        data,
        caller_log,
    )
}

/// Once the caller has 20 greetings, SIGKILLs hello (the first node); returns how many it had.
fn kill_hello_mid_stream(nodes: &mut Nodes, caller_log: &Path) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    while received(caller_log).len() < 20 {
        assert!(
            Instant::now() < deadline,
            "the caller received nothing:\n{}",
            std::fs::read_to_string(caller_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_kill = received(caller_log).len();
    let mut hello = nodes.0.remove(0);
    hello.kill().expect("SIGKILL hello");
    hello.wait().expect("hello stopped");
    std::thread::sleep(Duration::from_millis(300));
    before_kill
}

/// Waits until the caller's log has a greeting for every one of `names`.
fn wait_for_every_greeting(names: &[String], caller_log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got = received(caller_log);
        if names.iter().all(|n| got.iter().any(|(_, g)| g == n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing greetings; the caller has {} of them",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks the greetings arrived once each, in order, and every call ran exactly once.
fn each_greeting_and_call_happened_once(
    names: &[String],
    got: &[(u64, String)],
    before_kill: usize,
) {
    assert!(
        before_kill < got.len(),
        "hello was killed mid-stream ({before_kill} of {} received)",
        got.len()
    );
    // The subscription: hello's greetings #1, #2, ... each exactly once, in order, across
    // the loss, the duplication, the reordering and the kill.
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "greetings arrive once each, in order");
    // The calls: every one ran exactly once — including those hello had committed but not
    // answered when it was killed, which caller sent again after the restart.
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, greeting) in got {
        *runs.entry(greeting.as_str()).or_default() += 1;
    }
    let reruns: Vec<&String> = names
        .iter()
        .filter(|n| runs.get(n.as_str()).copied().unwrap_or(0) > 1)
        .collect();
    eprintln!(
        "{} greetings received ({before_kill} before the kill)",
        got.len()
    );
    assert!(reruns.is_empty(), "calls that ran twice: {reruns:?}");
}
