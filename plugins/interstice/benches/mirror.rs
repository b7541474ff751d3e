//! Table → entity mirroring: 10,000 rows updated every frame by a reducer (`swarm.tick`), and
//! mirrored into entities with `MirrorTable`. Two apps run in turns in one process: one
//! without the mirror (the engine: the reducer, its commit and the change feed it does not
//! read) and one with it (engine + sync: change messages decoded into the game's type and
//! written into the entities' components). Run with
//! `cargo bench -p interstice --bench mirror`.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use interstice::prelude::*;
use interstice::{MirrorStats, Modules};
use std::time::{Duration, Instant};
use swarm::Dot;

const ROWS: u32 = 10_000;
const FRAMES: usize = 50;
const ROUNDS: usize = 5;

fn app(wasm: &[u8], mirror: bool) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_module_bytes("swarm", wasm.to_vec()),
    ));
    if mirror {
        app.add_plugins(MirrorTable::<Dot>::new("swarm", "dot"));
    }
    interstice::run_single_threaded(&mut app);
    app.update();
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice
                .queue_reducer("swarm", "spawn", (0u32, ROWS))
                .expect("spawn");
        })
        .expect("spawn system");
    app.update();
    app
}

fn tick(app: &mut App) -> Duration {
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice.queue_reducer("swarm", "tick", ()).expect("tick");
        })
        .expect("tick system");
    let start = Instant::now();
    app.update();
    start.elapsed()
}

fn median_frame(app: &mut App) -> Duration {
    let mut times: Vec<Duration> = (0..FRAMES).map(|_| tick(app)).collect();
    times.sort();
    times[FRAMES / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let wasm = interstice_build::test_modules!["swarm"].remove(0);
    let mut engine_only = app(&wasm, false);
    let mut mirrored = app(&wasm, true);
    assert!(engine_only.world().get_resource::<Modules>().is_some());
    let (mut engine, mut synced) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        engine.push(median_frame(&mut engine_only));
        synced.push(median_frame(&mut mirrored));
    }
    engine.sort();
    synced.sort();
    let (engine, synced) = (engine[ROUNDS / 2], synced[ROUNDS / 2]);
    let world = mirrored.world_mut();
    let entities = world.query::<&Mirrored<Dot>>().iter(world).count();
    let stats = world.resource::<MirrorStats<Dot>>();
    assert_eq!(entities, ROWS as usize);
    assert!(stats.updated >= u64::from(ROWS) * (FRAMES * ROUNDS) as u64);
    println!(
        "mirror: {ROWS} rows updated by a reducer every frame: engine {:.3} ms, engine + mirror sync {:.3} ms, sync alone {:.3} ms (medians of {ROUNDS} rounds of {FRAMES} frames; budget 2 ms)",
        ms(engine),
        ms(synced),
        ms(synced.saturating_sub(engine))
    );
}
