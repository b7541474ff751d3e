//! Storage faults in a running node, injected with failpoints
//! (`interstice_core::disk::faults`): what callers hear, what reads still do, which effects
//! wait, how the node resumes by itself, and that the data directory opens without repair
//! afterwards with everything that was acknowledged.
//!
//! Failpoints are process-wide: every test holds a `fail::FailScenario`, which runs them one
//! at a time.

use bevy::prelude::*;
use interstice::prelude::*;
use interstice::{CallError, Database, EngineConfig, Modules, Storage, StorageConfig};
use interstice_build::build_workspace_modules;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn wasm(package: &str) -> Vec<u8> {
    static BUILT: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let packages = ["filer", "kitchen", "caller", "bench", "hello"];
        let paths = build_workspace_modules(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            &packages,
        )
        .expect("building the test modules");
        packages
            .iter()
            .zip(paths)
            .map(|(p, path)| (p.to_string(), std::fs::read(path).expect("reading wasm")))
            .collect()
    });
    built[package].clone()
}

fn node(storage: StorageConfig, modules: &[&str]) -> App {
    let mut plugin = IntersticePlugin::default().with_storage(storage);
    for module in modules {
        plugin = plugin.with_module_bytes(*module, wasm(module));
    }
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin));
    app.update();
    app
}

/// Queues a reducer call, runs one frame and returns its outcome.
fn call<A: interstice::abi::typed::Args>(
    app: &mut App,
    module: &str,
    reducer: &str,
    args: A,
) -> Result<(), CallError> {
    let mut state: bevy::ecs::system::SystemState<Interstice> =
        bevy::ecs::system::SystemState::new(app.world_mut());
    let mut api = state.get_mut(app.world_mut()).expect("the Interstice API");
    let id = api.queue_reducer(module, reducer, args)?;
    state.apply(app.world_mut());
    app.update();
    let messages = app.world().resource::<Messages<ReducerOutcome>>();
    let mut cursor = messages.get_cursor();
    cursor
        .read(messages)
        .find(|o| o.id == id)
        .map(|o| o.result.clone())
        .expect("an outcome for every invocation")
}

fn query<A: interstice::abi::typed::Args, R: interstice::IntersticeType>(
    app: &mut App,
    module: &str,
    name: &str,
    args: A,
) -> R {
    let mut state: bevy::ecs::system::SystemState<Interstice> =
        bevy::ecs::system::SystemState::new(app.world_mut());
    let mut api = state.get_mut(app.world_mut()).expect("the Interstice API");
    api.query(module, name, args).expect("query")
}

fn health(app: &App) -> interstice::StorageHealth {
    app.world().resource::<Storage>().health().clone()
}

/// Runs frames until the log accepts writes again (the node retries by itself).
fn until_resumed(app: &mut App) -> Duration {
    let started = Instant::now();
    while !health(app).accepts_writes() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node did not resume: {}",
            health(app)
        );
        app.update();
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// Opens the data directory as a restarting node would, without repair.
fn reopen(dir: &Path) -> Database {
    let mut modules = Modules::new(EngineConfig::default()).expect("engine");
    let mut db = Database::default();
    Storage::open(StorageConfig::new(dir), &mut modules, &mut db)
        .unwrap_or_else(|e| panic!("the data directory must open without repair: {e}"));
    db
}

fn item_count(db: &Database) -> usize {
    db.table("kitchen", "item").map_or(0, |t| t.rows().count())
}

#[test]
fn a_failed_fsync_writes_no_file_until_the_commit_is_durable() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut app = node(StorageConfig::new(dir.path()), &["filer"]);
    let files = dir.path().join("files/filer");
    call(
        &mut app,
        "filer",
        "save",
        ("before.txt".to_string(), "1".to_string()),
    )
    .unwrap();
    assert!(files.join("before.txt").exists());

    fail::cfg("log-fsync", "return(eio)").unwrap();
    let outcome = call(
        &mut app,
        "filer",
        "save_noted",
        ("a.txt".to_string(), "x".to_string()),
    );
    match outcome {
        Err(CallError::NotDurable(why)) => assert!(why.contains("storage error"), "{why}"),
        other => panic!("expected an in-doubt outcome, got {other:?}"),
    }
    assert!(
        !files.join("a.txt").exists(),
        "a transaction whose fsync failed wrote its file"
    );
    let halted = health(&app);
    let fault = halted.log.as_ref().expect("the log is halted");
    assert_eq!(fault.operation, "log fsync");

    // Nothing new runs; reads still work (and see what committed in memory).
    let refused = call(
        &mut app,
        "filer",
        "save",
        ("b.txt".to_string(), "y".to_string()),
    );
    assert!(
        matches!(&refused, Err(CallError::Unavailable(why)) if why.contains("refuses writes")),
        "{refused:?}"
    );
    let read: String = query(&mut app, "filer", "load", ("a.txt".to_string(),));
    assert_eq!(read, "x");
    assert!(!files.join("a.txt").exists());

    // The disk works again: the node resumes by itself, and the kept commit and its file
    // reach the disk.
    fail::remove("log-fsync");
    until_resumed(&mut app);
    assert_eq!(std::fs::read_to_string(files.join("a.txt")).unwrap(), "x");
    assert!(!files.join("b.txt").exists(), "a refused call ran");
    call(
        &mut app,
        "filer",
        "save",
        ("c.txt".to_string(), "z".to_string()),
    )
    .unwrap();
    drop(app);
    reopen(dir.path());
    scenario.teardown();
}

#[test]
fn a_full_disk_refuses_calls_keeps_queries_and_resumes_by_itself() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut app = node(StorageConfig::new(dir.path()), &["bench"]);
    let add = |app: &mut App, i: u64| call(app, "bench", "insert_logged", (i,));
    for i in 0..3 {
        add(&mut app, i).unwrap();
    }

    // Half a record reaches the disk, then ENOSPC.
    fail::cfg("log-write", "return(short)").unwrap();
    match add(&mut app, 3) {
        Err(CallError::NotDurable(why)) => assert!(why.contains("storage full"), "{why}"),
        other => panic!("expected an in-doubt outcome, got {other:?}"),
    }
    for i in 100..103 {
        match add(&mut app, i) {
            Err(CallError::Unavailable(why)) => {
                assert!(why.contains("storage full"), "{why}");
                assert!(why.contains("reads and queries still work"), "{why}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // Queries answer (and see the kept commit); refused calls did not run.
    let kept: Option<u64> = query(&mut app, "bench", "get_logged", (4u64,));
    assert_eq!(kept, Some(3));
    assert_eq!(logged_rows(app.world().resource::<Database>()), 4);
    assert_eq!(
        health(&app).log.as_ref().map(|f| f.kind),
        Some(interstice::core::storage::health::FaultKind::Full)
    );

    // Still full at the first retries: they fail too, and the node stays halted.
    std::thread::sleep(Duration::from_millis(300));
    app.update();
    assert!(!health(&app).accepts_writes());
    assert!(health(&app).log.as_ref().is_some_and(|f| f.retries >= 1));

    // Space returns.
    fail::remove("log-write");
    until_resumed(&mut app);
    add(&mut app, 4).unwrap();
    drop(app);
    let db = reopen(dir.path());
    assert_eq!(
        logged_rows(&db),
        5,
        "every acknowledged transaction and the kept one, nothing refused"
    );
    scenario.teardown();
}

fn logged_rows(db: &Database) -> usize {
    db.table("bench", "logged").map_or(0, |t| t.rows().count())
}

#[test]
fn remote_calls_leave_only_after_the_commit_is_durable() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut app = node(StorageConfig::new(dir.path()), &["caller", "bench"]);
    // No network here: the calls wait in the engine, where the network would take them.
    let take = |app: &mut App| {
        app.world_mut()
            .resource_mut::<Modules>()
            .take_remote_calls()
    };
    take(&mut app);
    fail::cfg("log-fsync", "return(eio)").unwrap();
    // `greet` writes no row; a logged write committed in the same frame fails its fsync, and
    // nothing of the frame may leave.
    let mut state: bevy::ecs::system::SystemState<Interstice> =
        bevy::ecs::system::SystemState::new(app.world_mut());
    let mut api = state.get_mut(app.world_mut()).expect("the Interstice API");
    api.queue_reducer("bench", "insert_logged", (1u64,))
        .unwrap();
    api.queue_reducer("caller", "greet", ("bob".to_string(),))
        .unwrap();
    state.apply(app.world_mut());
    app.update();
    assert!(!health(&app).accepts_writes());
    assert!(
        take(&mut app).is_empty(),
        "a remote call left before its commit was durable"
    );
    fail::remove("log-fsync");
    until_resumed(&mut app);
    let sent = take(&mut app);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].args,
        interstice::abi::IntersticeType::to_bytes(&"bob".to_string())
    );
    scenario.teardown();
}

#[test]
fn a_failed_snapshot_fails_no_commit_and_is_not_retried_every_frame() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 1;
    config.snapshot_scales_with_rows = false;
    let mut app = node(config, &["bench"]);
    fail::cfg("file-write", "return(enospc)").unwrap();
    for i in 0..50u64 {
        call(&mut app, "bench", "insert_logged", (i,)).expect("commits stay acknowledged");
    }
    let health = health(&app);
    assert!(health.accepts_writes());
    let snapshot = health
        .snapshot
        .as_ref()
        .expect("the snapshot failure is reported");
    assert_eq!(snapshot.retries, 0, "retried every frame");
    assert!(
        health.to_string().contains("snapshots are failing"),
        "{health}"
    );
    // The failed temporary file is not left taking space.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    fail::remove("file-write");
    drop(app);
    let db = reopen(dir.path());
    assert_eq!(logged_rows(&db), 50);
    scenario.teardown();
}

#[test]
fn an_oversized_transaction_is_refused_before_it_is_written() {
    // No fault here, but no other test's may reach this node.
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.max_record_bytes = interstice::core::storage::MIN_RECORD_LIMIT;
    let mut app = node(config, &["kitchen"]);
    let before: u64 = query(&mut app, "kitchen", "item_count", ());
    let log_bytes = || -> u64 {
        std::fs::read_dir(dir.path().join("log"))
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let logged = log_bytes();
    match call(&mut app, "kitchen", "add_many", (5_000u32,)) {
        Err(CallError::Failed(why)) => assert!(why.contains("over the limit"), "{why}"),
        other => panic!("expected the transaction to be refused, got {other:?}"),
    }
    let after: u64 = query(&mut app, "kitchen", "item_count", ());
    assert_eq!(after, before, "rolled back");
    assert_eq!(log_bytes(), logged, "nothing of it was written");
    // Smaller transactions go on.
    call(&mut app, "kitchen", "add_many", (10u32,)).unwrap();
    drop(app);
    assert_eq!(item_count(&reopen(dir.path())) as u64, before + 10);
    scenario.teardown();
}

/// A node with storage in `dir`, `hello` loaded, serving peers; its address and key.
fn serving_node(dir: &Path, client: &str) -> (App, std::net::SocketAddr, String) {
    use interstice::network::{NetworkConfig, NetworkStatus};
    let identity = std::sync::Arc::new(interstice::NodeIdentity::generate().unwrap());
    let fingerprint = identity.fingerprint();
    let trusted = interstice::TrustedPeers::default();
    trusted.trust(client.to_string());
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_storage(StorageConfig::new(dir))
            .with_module_bytes("hello", wasm("hello"))
            .with_network(NetworkConfig {
                trusted,
                ..NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity)
            }),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            return (app, addr, fingerprint);
        }
        assert!(
            Instant::now() < deadline,
            "the node never started listening"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_peer_hears_of_a_call_in_doubt_only_once_it_is_durable_and_is_told_to_retry_others() {
    use interstice::abi::IntersticeType;
    use interstice_net::message::{Message, RemoteError};
    use std::sync::atomic::{AtomicBool, Ordering};
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let client = interstice::NodeIdentity::generate().unwrap();
    let (mut app, addr, server) = serving_node(dir.path(), &client.fingerprint());
    fail::cfg("log-fsync", "return(eio)").unwrap();
    let refused_seen = std::sync::Arc::new(AtomicBool::new(false));
    let refused_flag = refused_seen.clone();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let trust = interstice::TrustedPeers::default();
            trust.trust(server);
            let endpoint = interstice_net::transport::PeerEndpoint::bind(
                "127.0.0.1:0".parse().unwrap(),
                &client,
                trust,
            )
            .unwrap();
            let peer = endpoint.connect(addr).await.expect("handshake");
            let call = |request: u64, name: &str| Message::CallReducer {
                request,
                module: "hello".into(),
                reducer: "hello".into(),
                args: (name.to_string(),).to_bytes(),
            };
            // Runs, but its fsync fails: no answer yet.
            let first = {
                let peer = peer.clone();
                let message = call(1, "in doubt");
                tokio::spawn(async move { peer.request(&message).await })
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The log is halted now: not run, and the caller may send it again.
            let second = peer.request(&call(2, "refused")).await.expect("an answer");
            let first_answered_early = first.is_finished();
            refused_flag.store(true, Ordering::SeqCst);
            let first = first.await.expect("task").expect("an answer");
            // Sent again once storage works: it runs now.
            let third = peer.request(&call(2, "refused")).await.expect("an answer");
            drop(endpoint);
            (first, second, first_answered_early, third)
        })
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut removed = false;
    while !handle.is_finished() {
        if !removed && refused_seen.load(Ordering::SeqCst) {
            fail::remove("log-fsync");
            removed = true;
        }
        app.update();
        assert!(Instant::now() < deadline, "the client did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (first, second, first_answered_early, third) = handle.join().expect("client");
    match second {
        Message::CallResult {
            outcome: Err(RemoteError::Busy(why)),
            ..
        } => assert!(why.contains("refuses writes"), "{why}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(
        !first_answered_early,
        "a call was answered before its commit was durable"
    );
    assert!(
        matches!(
            first,
            Message::CallResult {
                request: 1,
                outcome: Ok(())
            }
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            third,
            Message::CallResult {
                request: 2,
                outcome: Ok(())
            }
        ),
        "{third:?}"
    );
    drop(app);
    let db = reopen(dir.path());
    let greetings: Vec<String> = db
        .table("hello", "greetings")
        .map(|t| t.rows().map(|r| format!("{:?}", r)).collect())
        .unwrap_or_default();
    assert_eq!(
        greetings.iter().filter(|g| g.contains("in doubt")).count(),
        1,
        "{greetings:?}"
    );
    assert_eq!(
        greetings.iter().filter(|g| g.contains("refused")).count(),
        1,
        "the refused call ran once, when sent again: {greetings:?}"
    );
    scenario.teardown();
}
