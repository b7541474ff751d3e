//! The Gpu authority headless: the holder's draw list becomes pooled entities and meshes
//! (no growth frame after frame), a failed render keeps the previous picture, and modules
//! without the authority cannot draw. (What the picture looks like is checked under Xvfb by
//! the CLI's graphics test.)

use bevy::asset::AssetPlugin;
use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy::sprite_render::ColorMaterial;
use interstice::prelude::*;
use interstice_render::IntersticeRenderPlugin;
use interstice_render::scene::{DrawScene, ModuleText, ShapeBatch};

fn fixtures() -> Vec<Vec<u8>> {
    interstice_build::test_modules!["painter", "keys"]
}

fn app() -> App {
    let wasm = fixtures();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        IntersticePlugin::default()
            .with_module_bytes("painter", wasm[0].clone())
            .with_module_bytes("keys", wasm[1].clone()),
        IntersticeRenderPlugin::default(),
    ));
    app.init_asset::<Mesh>()
        .init_asset::<ColorMaterial>()
        .init_asset::<Image>();
    app.update();
    app
}

fn configure(app: &mut App, count: u32, extras: bool, fail: bool) {
    app.world_mut()
        .run_system_once(move |mut interstice: Interstice| {
            interstice
                .queue_reducer("painter", "configure", (count, extras, fail))
                .unwrap();
        })
        .unwrap();
}

fn frames(app: &mut App, n: usize) {
    for _ in 0..n {
        app.update();
    }
}

fn census(app: &mut App) -> (usize, usize, usize) {
    let world = app.world_mut();
    let entities = world.query::<Entity>().iter(world).count();
    let visible_batches = world
        .query_filtered::<&Visibility, With<ShapeBatch>>()
        .iter(world)
        .filter(|v| **v != Visibility::Hidden)
        .count();
    let meshes = world.resource::<Assets<Mesh>>().len();
    (entities, visible_batches, meshes)
}

#[test]
fn draw_lists_are_pooled_and_in_order() {
    let mut app = app();
    configure(&mut app, 3, true, false);
    frames(&mut app, 2);
    let scene = app.world().resource::<DrawScene>();
    // clear, camera, 3 shapes, text, sprite, rect.
    assert_eq!(scene.commands, 8);
    // The shapes before the text and the rect after the sprite are two batches.
    assert_eq!(scene.pooled(), (2, 1, 1));
    assert_eq!(
        app.world().resource::<ClearColor>().0,
        Color::srgb(0.0, 0.0, 0.2).to_linear().into()
    );
    let world = app.world_mut();
    let (text, text_z) = world
        .query_filtered::<(&Text2d, &Transform), With<ModuleText>>()
        .single(world)
        .map(|(t, transform)| (t.0.clone(), transform.translation.z))
        .unwrap();
    assert_eq!(text, "score: 10");
    // Later commands sit on higher layers.
    let mut batch_z: Vec<f32> = world
        .query_filtered::<&Transform, With<ShapeBatch>>()
        .iter(world)
        .map(|t| t.translation.z)
        .collect();
    batch_z.sort_by(f32::total_cmp);
    assert!(
        batch_z[0] < text_z && text_z < batch_z[1],
        "{batch_z:?} {text_z}"
    );

    // Steady state: nothing spawned or allocated frame after frame.
    let before = census(&mut app);
    frames(&mut app, 30);
    assert_eq!(census(&mut app), before);

    // A bigger frame grows the mesh, a smaller one reuses it; nothing leaks either way.
    configure(&mut app, 1000, false, false);
    frames(&mut app, 2);
    let big = census(&mut app);
    assert_eq!(big.1, 1, "no text or sprite: one batch");
    configure(&mut app, 1, true, false);
    frames(&mut app, 2);
    configure(&mut app, 1000, false, false);
    frames(&mut app, 2);
    assert_eq!(census(&mut app), big);
}

#[test]
fn a_failed_render_keeps_the_previous_frame() {
    let mut app = app();
    configure(&mut app, 5, false, false);
    frames(&mut app, 2);
    let shown = app.world().resource::<DrawScene>().frames;
    assert!(shown >= 1);
    configure(&mut app, 50, false, true);
    frames(&mut app, 5);
    let scene = app.world().resource::<DrawScene>();
    // `configure` runs before that frame's render, so no frame drew since.
    assert_eq!(scene.frames, shown, "a failed render shows nothing new");
    assert_eq!(
        scene.commands, 7,
        "the last good list: clear, camera and 5 shapes"
    );
}

#[test]
fn only_the_holders_may_draw_or_poll_input() {
    let mut app = app();
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice.queue_reducer("keys", "try_draw", ()).unwrap();
        })
        .unwrap();
    frames(&mut app, 1);
    let (seen, polled) = app
        .world_mut()
        .run_system_once(|mut interstice: Interstice| {
            (
                interstice
                    .query::<_, Vec<String>>("keys", "seen", ())
                    .unwrap(),
                interstice
                    .query::<_, String>("painter", "poll_input", ())
                    .unwrap(),
            )
        })
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].starts_with("draw refused") && seen[0].contains("Gpu authority"),
        "{seen:?}"
    );
    assert!(polled.contains("Input authority"), "{polled}");
}
