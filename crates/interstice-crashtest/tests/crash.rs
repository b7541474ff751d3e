//! Crash tests: a real node process is killed with SIGKILL at random moments while it commits
//! multi-table transactions, after a storage fault (failed write, fsync, rename, directory
//! fsync, full disk) in some tests; after each kill the data directory must open without
//! repair and hold every acknowledged transaction, and no transaction in part.

use interstice::{Database, EngineConfig, Modules, Storage, StorageConfig};
use interstice_build::build_workspace_modules;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn ledger_wasm() -> PathBuf {
    let paths = build_workspace_modules(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &["ledger"],
    )
    .expect("building the ledger module");
    paths[0].clone()
}

/// xorshift64*: reproducible kill times from a printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// An in-memory node that applies the same steps, to know what state `n` steps must give.
struct Reference {
    modules: Modules,
    db: Database,
    steps: u64,
}

impl Reference {
    fn new(wasm: &[u8]) -> Reference {
        let mut modules = Modules::new(EngineConfig::default()).expect("engine");
        let mut db = Database::default();
        modules.load(&mut db, wasm).expect("ledger loads");
        Reference {
            modules,
            db,
            steps: 0,
        }
    }

    fn hash_after(&mut self, steps: u64) -> u64 {
        assert!(
            steps >= self.steps,
            "durable steps went backwards: {steps} < {}",
            self.steps
        );
        let apply = self.modules.reducer("ledger", "apply").expect("apply");
        while self.steps < steps {
            let args = interstice::abi::IntersticeType::to_bytes(&self.steps);
            self.modules
                .call_reducer(&mut self.db, apply, &args)
                .expect("reference step");
            self.steps += 1;
        }
        self.db.durable_state_hash()
    }
}

/// Steps applied in the data directory, and the hash of its durable state.
fn recover(dir: &Path, snapshot_every: u64) -> Result<(u64, u64), interstice::StorageError> {
    let mut modules = Modules::new(EngineConfig::default()).expect("engine");
    let mut db = Database::default();
    let mut config = StorageConfig::new(dir);
    config.snapshot_every_records = snapshot_every;
    config.snapshot_scales_with_rows = false;
    let (_storage, _report) = Storage::open(config, &mut modules, &mut db)?;
    let steps = db
        .table("ledger", "totals")
        .map(|t| {
            t.rows()
                .find(|r| r[0] == interstice::Value::String("all".into()))
        })
        .and_then(|row| row.map(|r| r[2].clone()))
        .map_or(0, |v| match v {
            interstice::Value::U64(n) => n,
            other => panic!("unexpected count {other}"),
        });
    Ok((steps, db.durable_state_hash()))
}

/// A node process, killed when dropped (a failed assertion must not leave it running).
struct Node(std::process::Child);

impl std::ops::Deref for Node {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node's output, line by line, from a thread that ends with it.
fn lines_of(child: &mut Node) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

/// The faults a trial may inject: a failpoint of `interstice_core::disk::faults` and the
/// error it returns.
const FAULTS: &[(&str, &str)] = &[
    ("log-write", "eio"),
    ("log-write", "enospc"),
    ("log-write", "short"),
    ("log-fsync", "eio"),
    ("file-write", "enospc"),
    ("file-write", "short"),
    ("file-fsync", "eio"),
    ("rename", "eio"),
    ("dir-fsync", "eio"),
];

/// What a node printed in one trial.
#[derive(Default)]
struct Seen {
    /// The highest acknowledged step.
    acked: Option<u64>,
    /// Acknowledgements, in all.
    acks: u64,
    /// Steps refused because storage refused writes.
    refused: u64,
    /// Steps whose commit could not be made durable.
    doubted: u64,
    /// Acknowledgements after a refusal or doubt: the node resumed by itself.
    resumed_acks: u64,
    /// Anything else.
    failures: Vec<String>,
}

impl Seen {
    fn take(&mut self, line: String) {
        let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let step = rest.parse::<u64>().ok();
        match (word, step) {
            ("ACK", Some(step)) => {
                self.acked = Some(self.acked.map_or(step, |a| a.max(step)));
                self.acks += 1;
                if self.refused + self.doubted > 0 {
                    self.resumed_acks += 1;
                }
            }
            ("REFUSED", Some(_)) => self.refused += 1,
            ("DOUBT", Some(_)) => self.doubted += 1,
            _ => self.failures.push(line),
        }
    }
}

/// Totals over the trials of one run.
#[derive(Default)]
struct Tally {
    /// Steps the data directory holds after the last trial.
    durable: u64,
    /// Transactions made durable, over all trials.
    total_acked: u64,
    /// Trials that saw a fault reach the callers.
    faulted: u32,
    /// Of those, the trials whose node resumed by itself.
    resumed: u32,
    /// Trials whose node stopped at start (a fault while opening storage).
    refused_start: u32,
}

/// One trial: its number, whether the run injects faults, the fault this trial injects (empty
/// if none) and the node's snapshot interval.
struct Trial {
    number: u32,
    faults: bool,
    fault: String,
    snapshot_every: u64,
}

/// Runs `trials` kills; with `faults`, each trial first injects one storage fault (repeated a
/// random 1–4 times, so retries fail too) at a random moment.
fn run_trials(trials: u32, seed: u64, faults: bool) {
    let wasm_path = ledger_wasm();
    let wasm = std::fs::read(&wasm_path).expect("ledger.wasm");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(seed | 1);
    let mut reference = Reference::new(&wasm);
    let snapshot_every = if faults { 64 } else { 500 };
    let mut tally = Tally::default();
    eprintln!("crash test: {trials} trials, seed {seed}, faults: {faults}");
    for number in 0..trials {
        // The first trial installs the module: a fault there only stops it from loading.
        let (fault, snapshot_every) = if faults && number > 0 {
            pick_fault(&mut rng, snapshot_every)
        } else {
            (String::new(), snapshot_every)
        };
        let trial = Trial {
            number,
            faults,
            fault,
            snapshot_every,
        };
        let mut child = start_node(dir.path(), &wasm_path, tally.durable, &trial);
        let (rx, reader) = lines_of(&mut child);
        let mut seen = watch_until_kill(&trial, &mut child, &rx, &mut rng, &mut tally);
        kill_and_drain(&mut child, &rx, reader, &mut seen);
        check_trial(&trial, dir.path(), &seen, &mut reference, &mut tally);
    }
    check_totals(trials, faults, &tally);
}

/// Picks a random storage fault for one trial: returns its `FAILPOINTS` spec, and the snapshot
/// interval the trial may use with it.
fn pick_fault(rng: &mut Rng, mut snapshot_every: u64) -> (String, u64) {
    let (point, error) = FAULTS[(rng.next() % FAULTS.len() as u64) as usize];
    // A snapshot taken after a log fault would cover what the fault did to the log:
    // none in those trials, so the log alone must hold everything.
    if point.starts_with("log") {
        snapshot_every = 0;
    }
    // The log is written and fsynced once a frame; the other points are hit at
    // snapshots (every few frames here).
    let skip = if point.starts_with("log") {
        rng.next() % 40
    } else {
        rng.next() % 4
    };
    let times = 1 + rng.next() % 4;
    let fault = format!("{point}={skip}*off->{times}*return({error})->off");
    (fault, snapshot_every)
}

/// Starts the node of one trial on `dir`, resuming from `durable` steps, with the trial's fault
/// (if any) injected.
fn start_node(dir: &Path, wasm_path: &Path, durable: u64, trial: &Trial) -> Node {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interstice-crash-node"));
    command
        .arg(dir)
        .arg(wasm_path)
        .arg(durable.to_string())
        .arg("16")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if !trial.fault.is_empty() {
        command.env("FAILPOINTS", &trial.fault);
    }
    command.arg(trial.snapshot_every.to_string());
    Node(command.spawn().expect("starting the node"))
}

/// Reads the node's output until it answers a first call, exits, or 60 s pass; returns how it
/// exited, if it did.
fn wait_until_committing(
    child: &mut Node,
    rx: &mpsc::Receiver<String>,
    seen: &mut Seen,
) -> Option<ExitStatus> {
    let started = Instant::now();
    let mut exited = None;
    while seen.acks + seen.refused + seen.doubted == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            seen.take(line);
        }
        exited = child.try_wait().expect("polling the node");
        if exited.is_some() {
            break;
        }
    }
    exited
}

/// Watches one trial's node up to the moment of its kill: until it commits, then a random
/// while, and (with faults) possibly until it resumes; returns what it printed.
fn watch_until_kill(
    trial: &Trial,
    child: &mut Node,
    rx: &mpsc::Receiver<String>,
    rng: &mut Rng,
    tally: &mut Tally,
) -> Seen {
    let (trial, faults, fault) = (trial.number, trial.faults, &trial.fault);
    // Wait until it is committing, then let it run a random while before the kill
    // (with faults, long enough that the node sometimes resumes first).
    let mut seen = Seen::default();
    let exited = wait_until_committing(child, rx, &mut seen);
    // A fault while opening storage stops the node before it runs anything: fail-stop.
    let stopped_at_start = faults && exited.is_some_and(|status| !status.success());
    assert!(
        seen.acks + seen.refused + seen.doubted > 0 || stopped_at_start,
        "trial {trial} ({fault}): the node answered nothing in 60 s (exit: {exited:?})"
    );
    if stopped_at_start {
        tally.refused_start += 1;
    }
    let run_for = Duration::from_millis(rng.next() % if faults { 1500 } else { 150 });
    let until = Instant::now() + run_for;
    while Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            seen.take(line);
        }
    }
    // Until one trial has seen the node resume by itself, a trial that saw a fault waits
    // for that (up to 10 s) before the kill: whether resuming works must not depend on
    // the dice (every kill could otherwise come before the node's next try).
    if faults && tally.resumed == 0 && seen.refused + seen.doubted > 0 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.resumed_acks == 0 && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                seen.take(line);
            }
        }
    }
    seen
}

/// Kills the node with SIGKILL, reaps it, and takes in the lines it printed before the kill.
fn kill_and_drain(
    child: &mut Node,
    rx: &mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    seen: &mut Seen,
) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the node");
    reader.join().expect("reader thread");
    // Lines printed before the kill still count: they were acknowledgements.
    while let Ok(line) = rx.try_recv() {
        seen.take(line);
    }
}

/// Checks one killed trial: the node reported no failure, and `dir` opens without repair
/// holding every acknowledged step and exactly the reference state; counts it in `tally`.
fn check_trial(
    trial: &Trial,
    dir: &Path,
    seen: &Seen,
    reference: &mut Reference,
    tally: &mut Tally,
) {
    let (trial, fault, snapshot_every) = (trial.number, &trial.fault, trial.snapshot_every);
    assert!(
        seen.failures.is_empty(),
        "trial {trial} ({fault}): the node reported {:?}",
        seen.failures
    );
    if seen.refused + seen.doubted > 0 {
        tally.faulted += 1;
        if seen.resumed_acks > 0 {
            tally.resumed += 1;
        }
    }

    // Recovery without repair: a fault must never leave a log that needs it.
    let (steps, hash) = recover(dir, snapshot_every)
        .unwrap_or_else(|e| panic!("trial {trial} ({fault}): recovery failed: {e}"));
    if let Some(last) = seen.acked {
        assert!(
            steps > last,
            "trial {trial} ({fault}): step {last} was acknowledged but only {steps} steps survived"
        );
    }
    assert_eq!(
        hash,
        reference.hash_after(steps),
        "trial {trial} ({fault}): the recovered state is not the state after exactly {steps} steps"
    );
    tally.total_acked += steps - tally.durable;
    tally.durable = steps;
}

/// Prints the run's totals and checks it did enough work to mean anything, and (with faults)
/// that faults showed and a node resumed.
fn check_totals(trials: u32, faults: bool, tally: &Tally) {
    let Tally {
        total_acked,
        faulted,
        resumed,
        refused_start,
        ..
    } = *tally;
    eprintln!(
        "crash test: {trials} kills survived, {total_acked} transactions durable; \
         {faulted} trials saw a fault reach the callers, {resumed} of them resumed by themselves, \
         {refused_start} stopped at start"
    );
    assert!(
        total_acked >= 1000,
        "too little work to mean anything: {total_acked} transactions"
    );
    if faults {
        assert!(
            faulted >= trials / 4 && resumed >= 1,
            "injected faults should show: {faulted} of {trials} trials saw one, {resumed} resumed"
        );
    }
}

fn seed() -> u64 {
    std::env::var("INTERSTICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
fn acknowledged_transactions_survive_sigkill() {
    run_trials(50, seed(), false);
}

#[test]
fn acknowledged_transactions_survive_storage_faults_and_sigkill() {
    run_trials(20, seed(), true);
}

#[test]
#[ignore = "long: 200 faults and kills; run with --ignored"]
fn acknowledged_transactions_survive_many_storage_faults_and_sigkills() {
    run_trials(200, seed(), true);
}

#[test]
#[ignore = "long: 500 kills; run with --ignored"]
fn acknowledged_transactions_survive_many_sigkills() {
    run_trials(500, seed(), false);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` spells it) on `dir`, or says why not.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("running mount");
        assert!(status.success(), "growing the tmpfs failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The scenario that used to lose acknowledged transactions: a node whose data directory is on
/// a small tmpfs fills it, the tmpfs is grown while the node runs, the node goes on, and is
/// killed. It must have refused calls while full, resumed by itself, and open without repair
/// with everything it acknowledged.
#[test]
fn a_full_disk_is_refused_then_resumed_and_nothing_acknowledged_is_lost() {
    let mount_point = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(mount_point.path(), "4m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root): {why}");
            return;
        }
    };
    let wasm_path = ledger_wasm();
    let wasm = std::fs::read(&wasm_path).expect("ledger.wasm");
    let dir = mount_point.path().join("node");
    // No snapshots: the log grows until the disk is full.
    let mut child = Node(
        Command::new(env!("CARGO_BIN_EXE_interstice-crash-node"))
            .arg(&dir)
            .arg(&wasm_path)
            .arg("0")
            .arg("16")
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the node"),
    );
    let (rx, reader) = lines_of(&mut child);
    let mut seen = Seen::default();
    let wait_for = |what: &str, seen: &mut Seen, done: &dyn Fn(&Seen) -> bool| {
        let started = Instant::now();
        while !done(seen) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "waited 120 s for {what}: {} acks, {} refused, {} in doubt, {:?}",
                seen.acks,
                seen.refused,
                seen.doubted,
                seen.failures
            );
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                seen.take(line);
            }
        }
    };
    wait_for("the disk to fill", &mut seen, &|s| s.refused >= 100);
    let acked_while_full = seen.acks;
    tmpfs.resize("64m");
    wait_for("the node to resume", &mut seen, &|s| s.resumed_acks >= 200);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the node");
    reader.join().expect("reader thread");
    while let Ok(line) = rx.try_recv() {
        seen.take(line);
    }
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    let last = seen.acked.expect("acknowledged steps");
    let (steps, hash) =
        recover(&dir, 0).unwrap_or_else(|e| panic!("recovery without repair failed: {e}"));
    assert!(
        steps > last,
        "step {last} was acknowledged but only {steps} steps survived"
    );
    let mut reference = Reference::new(&wasm);
    assert_eq!(hash, reference.hash_after(steps));
    eprintln!(
        "disk full: {acked_while_full} steps acknowledged before the disk filled, {} refused, \
         {} in doubt, {} acknowledged after it was grown; {steps} recovered",
        seen.refused, seen.doubted, seen.resumed_acks
    );
    drop(tmpfs);
}
