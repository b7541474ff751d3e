//! The smallest Bevy game on Interstice: the `orbits` module owns a table of dots and moves
//! them; the game mirrors the table into entities (`MirrorTable`) and gives each a sprite.
//! F12 opens the inspector. Run it with `cargo run -p minimal-game`.

use bevy::prelude::*;
use interstice::prelude::*;
use interstice_inspector::IntersticeInspectorPlugin;
use orbits::Dot;

const ORBITS_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/orbits.wasm"));
const DOTS: u32 = 300;

fn main() {
    App::new()
        .add_plugins((
            DefaultPlugins.set(WindowPlugin {
                primary_window: Some(Window {
                    title: "Interstice — minimal game (F12: inspector)".into(),
                    resolution: (800u32, 600u32).into(),
                    ..default()
                }),
                ..default()
            }),
            IntersticePlugin::default().with_module_bytes("orbits (built in)", ORBITS_WASM),
            MirrorTable::<Dot>::new("orbits", "dot"),
            IntersticeInspectorPlugin::default(),
        ))
        .insert_resource(ClearColor(Color::srgb(0.05, 0.05, 0.08)))
        .add_systems(Startup, setup)
        .add_systems(Update, step.in_set(IntersticeSystems::Ingest))
        .add_systems(Update, (dress, follow).after(IntersticeSystems::Publish))
        .run();
}

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
}

/// Asks the module for dots once, then to move them every frame.
fn step(mut interstice: Interstice, time: Res<Time>, mut spawned: Local<bool>) {
    if interstice.schema("orbits").is_none() {
        return;
    }
    if !std::mem::replace(&mut *spawned, true)
        && let Err(e) = interstice.queue_reducer("orbits", "spawn", (DOTS,))
    {
        error!("cannot spawn dots: {e}");
    }
    let dt_ms = (time.delta_secs() * 1000.0) as u32;
    if let Err(e) = interstice.queue_reducer("orbits", "step", (dt_ms,)) {
        error!("cannot step: {e}");
    }
}

/// A sprite for every new dot.
fn dress(mut commands: Commands, dots: Query<(Entity, &Mirrored<Dot>), Added<Mirrored<Dot>>>) {
    for (entity, dot) in &dots {
        commands.entity(entity).insert((
            Sprite::from_color(Color::hsl(dot.0.hue, 0.8, 0.6), Vec2::splat(8.0)),
            Transform::from_xyz(dot.0.x, dot.0.y, 0.0),
        ));
    }
}

/// Sprites follow their rows.
fn follow(mut dots: Query<(&Mirrored<Dot>, &mut Transform), Changed<Mirrored<Dot>>>) {
    for (dot, mut transform) in &mut dots {
        transform.translation.x = dot.0.x;
        transform.translation.y = dot.0.y;
    }
}
