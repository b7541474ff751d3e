//! Crash tests: a real node process is killed with SIGKILL at random moments while it commits
//! multi-table transactions; after each kill the data directory must hold every acknowledged
//! transaction, and no transaction in part.

use interstice::{Database, EngineConfig, Modules, Storage, StorageConfig};
use interstice_build::build_workspace_modules;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
fn recover(dir: &Path, snapshot_every: u64) -> (u64, u64) {
    let mut modules = Modules::new(EngineConfig::default()).expect("engine");
    let mut db = Database::default();
    let mut config = StorageConfig::new(dir);
    config.snapshot_every_records = snapshot_every;
    let (_storage, _report) = Storage::open(config, &mut modules, &mut db)
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
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
    (steps, db.durable_state_hash())
}

fn run_trials(trials: u32, seed: u64) {
    let wasm_path = ledger_wasm();
    let wasm = std::fs::read(&wasm_path).expect("ledger.wasm");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(seed | 1);
    let mut reference = Reference::new(&wasm);
    let snapshot_every = 500;
    let mut durable = 0u64;
    let mut total_acked = 0u64;
    eprintln!("crash test: {trials} trials, seed {seed}");
    for trial in 0..trials {
        let mut child = Command::new(env!("CARGO_BIN_EXE_interstice-crash-node"))
            .arg(dir.path())
            .arg(&wasm_path)
            .arg(durable.to_string())
            .arg("16")
            .arg(snapshot_every.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until it is committing, then let it run a random while before the kill.
        let started = Instant::now();
        let mut acked: Option<u64> = None;
        let mut failures = Vec::new();
        let mut take = |line: String, acked: &mut Option<u64>| {
            if let Some(id) = line
                .strip_prefix("ACK ")
                .and_then(|s| s.parse::<u64>().ok())
            {
                *acked = Some(acked.map_or(id, |a: u64| a.max(id)));
            } else {
                failures.push(line);
            }
        };
        while acked.is_none() && started.elapsed() < Duration::from_secs(60) {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                take(line, &mut acked);
            }
        }
        assert!(
            acked.is_some(),
            "trial {trial}: the node acknowledged nothing in 60 s"
        );
        let run_for = Duration::from_millis(rng.next() % 150);
        let until = Instant::now() + run_for;
        while Instant::now() < until {
            if let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                take(line, &mut acked);
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the node");
        reader.join().expect("reader thread");
        // Lines printed before the kill still count: they were acknowledgements.
        while let Ok(line) = rx.try_recv() {
            take(line, &mut acked);
        }
        assert!(
            failures.is_empty(),
            "trial {trial}: the node reported {failures:?}"
        );
        let last_acked_step = durable + acked.unwrap_or(0);

        let (steps, hash) = recover(dir.path(), snapshot_every);
        assert!(
            steps > last_acked_step,
            "trial {trial}: step {last_acked_step} was acknowledged but only {steps} steps survived"
        );
        assert_eq!(
            hash,
            reference.hash_after(steps),
            "trial {trial}: the recovered state is not the state after exactly {steps} steps"
        );
        total_acked += steps - durable;
        durable = steps;
    }
    eprintln!("crash test: {trials} kills survived, {total_acked} transactions durable");
    assert!(
        total_acked >= 1000,
        "too little work to mean anything: {total_acked} transactions"
    );
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
    run_trials(50, seed());
}

#[test]
#[ignore = "long: 500 kills; run with --ignored"]
fn acknowledged_transactions_survive_many_sigkills() {
    run_trials(500, seed());
}
