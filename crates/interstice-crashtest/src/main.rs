//! A node that drives the `ledger` fixture module as fast as it can and prints what happened to
//! each step, by step number, after its outcome was reported — that is, after it is durable:
//!
//! - `ACK <step>`: committed and durable;
//! - `DOUBT <step>`: committed in memory but the commit could not be made durable (a storage
//!   fault): written when storage recovers, lost if the node dies first;
//! - `REFUSED <step>`: not run, storage refuses writes; the node sends that step again later;
//! - `FAIL <step>: <error>`: anything else (the node then exits).
//!
//! Crash tests kill it with SIGKILL at random moments and check what survived. Faults are
//! injected with the `FAILPOINTS` environment variable (see `interstice_core::disk::faults`).
//!
//! `interstice-crash-node <data dir> <ledger.wasm> <first step> <steps per frame> <snapshot every>`

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use interstice::prelude::*;
use interstice::{CallError, InvocationId, StorageConfig, abi::IntersticeType};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

#[derive(Resource)]
struct Driver {
    /// The next step to send.
    next: u64,
    per_frame: u64,
    /// Steps sent and not answered yet, by invocation.
    sent: HashMap<InvocationId, u64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!(
            "usage: interstice-crash-node <data dir> <ledger.wasm> <first step> <steps per frame> <snapshot every>"
        );
        std::process::exit(2);
    }
    let number = |i: usize| -> u64 {
        args[i].parse().unwrap_or_else(|e| {
            eprintln!("argument {i} ({}): {e}", args[i]);
            std::process::exit(2)
        })
    };
    // Reads FAILPOINTS; kept for the life of the process.
    let _faults = fail::FailScenario::setup();
    let mut storage = StorageConfig::new(&args[1]);
    storage.snapshot_every_records = number(5);
    storage.snapshot_scales_with_rows = false;
    App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::ZERO)),
            IntersticePlugin::default()
                .with_storage(storage)
                .with_module_file(&args[2]),
        ))
        .insert_resource(Driver {
            next: number(3),
            per_frame: number(4),
            sent: HashMap::new(),
        })
        .add_systems(Update, drive.in_set(IntersticeSystems::Ingest))
        .add_systems(Update, acknowledge.in_set(IntersticeSystems::Publish))
        .run();
}

fn drive(mut interstice: Interstice, mut driver: ResMut<Driver>) {
    // One frame's steps at a time: a refused frame is sent again whole, in order.
    if interstice.schema("ledger").is_none() || !driver.sent.is_empty() {
        return;
    }
    for _ in 0..driver.per_frame {
        let n = driver.next;
        let id = interstice.queue_reducer_encoded("ledger", "apply", n.to_bytes());
        driver.sent.insert(id, n);
        driver.next += 1;
    }
}

fn acknowledge(
    mut outcomes: MessageReader<ReducerOutcome>,
    mut driver: ResMut<Driver>,
    mut exit: MessageWriter<AppExit>,
) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for outcome in outcomes.read() {
        let Some(step) = driver.sent.remove(&outcome.id) else {
            continue;
        };
        match &outcome.result {
            Ok(()) => {
                let _ = writeln!(out, "ACK {step}");
            }
            Err(CallError::NotDurable(_)) => {
                let _ = writeln!(out, "DOUBT {step}");
            }
            Err(CallError::Unavailable(_)) => {
                // Not run: this step and every later one of its frame go again.
                let _ = writeln!(out, "REFUSED {step}");
                driver.next = driver.next.min(step);
            }
            Err(e) => {
                let _ = writeln!(out, "FAIL {step}: {e}");
                exit.write(AppExit::error());
            }
        }
    }
    let _ = out.flush();
}
