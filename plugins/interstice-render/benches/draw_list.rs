//! Draw-list throughput: what 10,000 shapes submitted by the Gpu holder every frame add to a
//! frame, measured on the module and host side (the module building its list, the
//! `gpu_submit` calls, decoding and checking, tessellation into the pooled mesh) without
//! rasterisation: the app is headless, as a node's frame is before the renderer's own work.
//!
//! Baseline and measurement run in the same process, in turns: the same app and module
//! drawing nothing but the clear colour and camera, then 10,000 shapes (rects, circles,
//! triangles and lines in turn). Run with `cargo bench -p interstice-render --bench draw_list`.

use bevy::asset::AssetPlugin;
use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy::sprite_render::ColorMaterial;
use interstice::prelude::*;
use interstice_render::IntersticeRenderPlugin;
use interstice_render::scene::DrawScene;
use std::time::{Duration, Instant};

const SHAPES: u32 = 10_000;
const FRAMES: usize = 100;
const ROUNDS: usize = 5;

fn configure(app: &mut App, count: u32) {
    app.world_mut()
        .run_system_once(move |mut interstice: Interstice| {
            interstice
                .queue_reducer("painter", "configure", (count, false, false))
                .expect("configure");
        })
        .expect("configure system");
    for _ in 0..10 {
        app.update();
    }
    let scene = app.world().resource::<DrawScene>();
    assert_eq!(
        scene.commands,
        count as usize + 2,
        "the module draws what it was told"
    );
}

/// Median frame time over `FRAMES` frames.
fn median_frame(app: &mut App) -> Duration {
    let mut times: Vec<Duration> = (0..FRAMES)
        .map(|_| {
            let start = Instant::now();
            app.update();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[FRAMES / 2]
}

fn main() {
    let wasm = interstice_build::test_modules!["painter"].remove(0);
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        IntersticePlugin::default().with_module_bytes("painter", wasm),
        IntersticeRenderPlugin::default(),
    ));
    app.init_asset::<Mesh>()
        .init_asset::<ColorMaterial>()
        .init_asset::<Image>();
    interstice::run_single_threaded(&mut app);
    app.update();

    let (mut empty, mut full) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        configure(&mut app, 0);
        empty.push(median_frame(&mut app));
        configure(&mut app, SHAPES);
        full.push(median_frame(&mut app));
    }
    empty.sort();
    full.sort();
    let (base, loaded) = (empty[ROUNDS / 2], full[ROUNDS / 2]);
    let added = loaded.saturating_sub(base);
    println!(
        "draw list: frame with no shapes {:.3} ms, with {SHAPES} shapes {:.3} ms (medians of {ROUNDS} rounds of {FRAMES} frames)",
        base.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    println!(
        "draw list: {SHAPES} shapes add {:.3} ms per frame ({:.0} ns per shape; budget 4 ms)",
        added.as_secs_f64() * 1e3,
        added.as_secs_f64() * 1e9 / f64::from(SHAPES)
    );
}
