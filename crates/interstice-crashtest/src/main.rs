//! A node that drives the `ledger` fixture module as fast as it can and prints `ACK <n>` for
//! every step only after its outcome was reported — that is, after it is durable. Crash tests
//! kill it with SIGKILL at random moments and check what survived.
//!
//! `interstice-crash-node <data dir> <ledger.wasm> <first step> <steps per frame> <snapshot every>`

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use interstice::prelude::*;
use interstice::{StorageConfig, abi::IntersticeType};
use std::io::Write;
use std::time::Duration;

#[derive(Resource)]
struct Driver {
    next: u64,
    per_frame: u64,
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
    let mut storage = StorageConfig::new(&args[1]);
    storage.snapshot_every_records = number(5);
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
        })
        .add_systems(Update, drive.in_set(IntersticeSystems::Ingest))
        .add_systems(Update, acknowledge.in_set(IntersticeSystems::Publish))
        .run();
}

fn drive(mut interstice: Interstice, mut driver: ResMut<Driver>) {
    if interstice.schema("ledger").is_none() {
        return;
    }
    for _ in 0..driver.per_frame {
        let n = driver.next;
        interstice.call_reducer_encoded("ledger", "apply", n.to_bytes());
        driver.next += 1;
    }
}

fn acknowledge(mut outcomes: MessageReader<ReducerOutcome>, mut exit: MessageWriter<AppExit>) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for outcome in outcomes.read() {
        match &outcome.result {
            Ok(()) => {
                // The id is the invocation's position in this process; the test maps it back.
                let _ = writeln!(out, "ACK {}", outcome.id.0);
            }
            Err(e) => {
                let _ = writeln!(out, "FAIL {}: {e}", outcome.id.0);
                exit.write(AppExit::error());
            }
        }
    }
    let _ = out.flush();
}
