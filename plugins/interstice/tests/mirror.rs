//! The game's view of tables: change messages and table → entity mirroring, in a headless
//! App with a real module.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::prelude::*;
use interstice::{ChangeKind, MirrorStats, TableChanges};
use swarm::Dot;

fn swarm_app(mirror: bool) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_module_bytes("swarm", wasm("swarm")),
    ));
    if mirror {
        app.add_plugins(MirrorTable::<Dot>::new("swarm", "dot"));
    }
    app.update();
    app
}

fn dots(app: &mut App) -> Vec<Dot> {
    let world = app.world_mut();
    let mut dots: Vec<Dot> = world
        .query::<&Mirrored<Dot>>()
        .iter(world)
        .map(|d| d.0.clone())
        .collect();
    dots.sort_by_key(|d| d.id);
    dots
}

#[test]
fn mirrored_rows_are_spawned_updated_and_despawned() {
    let mut app = swarm_app(true);
    call(&mut app, "swarm", "spawn", (0u32, 3u32)).unwrap();
    app.update();
    assert_eq!(
        dots(&mut app),
        [
            Dot {
                id: 0,
                x: 0.0,
                y: 0.0
            },
            Dot {
                id: 1,
                x: 1.0,
                y: 0.0
            },
            Dot {
                id: 2,
                x: 2.0,
                y: 0.0
            },
        ]
    );
    call(&mut app, "swarm", "tick", ()).unwrap();
    call(&mut app, "swarm", "tick", ()).unwrap();
    call(&mut app, "swarm", "remove", (1u32,)).unwrap();
    app.update();
    assert_eq!(
        dots(&mut app),
        [
            Dot {
                id: 0,
                x: 0.0,
                y: 2.0
            },
            Dot {
                id: 2,
                x: 2.0,
                y: 2.0
            }
        ]
    );
    let stats = app.world().resource::<MirrorStats<Dot>>();
    assert_eq!(
        (
            stats.spawned,
            stats.updated,
            stats.despawned,
            stats.undecodable
        ),
        (3, 6, 1, 0)
    );
    // Each mirrored entity knows its row's key.
    let world = app.world_mut();
    let mut keys: Vec<String> = world
        .query::<&MirrorKey>()
        .iter(world)
        .map(|k| format!("{}.{}[{}]", k.module, k.table, k.key))
        .collect();
    keys.sort();
    assert_eq!(keys, ["swarm.dot[0]", "swarm.dot[2]"]);
}

#[test]
fn rows_present_before_the_mirror_are_spawned_once() {
    let mut app = swarm_app(false);
    call(&mut app, "swarm", "spawn", (0u32, 5u32)).unwrap();
    app.add_plugins(MirrorTable::<Dot>::new("swarm", "dot"));
    app.update();
    call(&mut app, "swarm", "spawn", (5u32, 2u32)).unwrap();
    app.update();
    assert_eq!(dots(&mut app).len(), 7);
    let stats = app.world().resource::<MirrorStats<Dot>>();
    assert_eq!((stats.spawned, stats.despawned), (7, 0));
}

#[derive(Resource, Default)]
struct Seen(Vec<(ChangeKind, Dot)>);

fn collect(mut changes: MessageReader<TableChanged>, mut seen: ResMut<Seen>) {
    for change in changes.read() {
        if change.is("swarm", "dot") {
            seen.0.push((change.0.kind, change.row::<Dot>().unwrap()));
        }
    }
}

#[test]
fn watched_tables_send_change_messages_in_order() {
    let mut app = swarm_app(false);
    app.watch_table("swarm", "dot")
        .init_resource::<Seen>()
        .add_systems(Update, collect.after(IntersticeSystems::Publish));
    app.update();
    call(&mut app, "swarm", "spawn", (7u32, 1u32)).unwrap();
    call(&mut app, "swarm", "tick", ()).unwrap();
    call(&mut app, "swarm", "remove", (7u32,)).unwrap();
    assert_eq!(
        app.world().resource::<Seen>().0,
        [
            (
                ChangeKind::Insert,
                Dot {
                    id: 7,
                    x: 7.0,
                    y: 0.0
                }
            ),
            (
                ChangeKind::Update,
                Dot {
                    id: 7,
                    x: 7.0,
                    y: 1.0
                }
            ),
            // A delete carries the row as it was.
            (
                ChangeKind::Delete,
                Dot {
                    id: 7,
                    x: 7.0,
                    y: 1.0
                }
            ),
        ]
    );
}

#[derive(Resource, Default)]
struct Counted {
    messages: usize,
    batched: usize,
}

fn count(
    mut changes: MessageReader<TableChanged>,
    batches: Res<TableChanges>,
    mut counted: ResMut<Counted>,
) {
    counted.messages += changes.read().count();
    counted.batched += batches
        .iter()
        .map(|b| b.rows_of("dot").count())
        .sum::<usize>();
}

#[test]
fn a_mirror_alone_sends_no_messages_and_watching_adds_them() {
    let mut app = swarm_app(true);
    app.init_resource::<Counted>()
        .add_systems(Update, count.after(IntersticeSystems::Publish));
    app.update();
    call(&mut app, "swarm", "spawn", (0u32, 4u32)).unwrap();
    call(&mut app, "swarm", "tick", ()).unwrap();
    let counted = app.world().resource::<Counted>();
    // The mirror reads the batches; nobody asked for messages.
    assert_eq!((counted.messages, counted.batched), (0, 8));
    assert_eq!(dots(&mut app).len(), 4);
    // Asked from a system, messages start with the next change, beside the mirror.
    with_api(&mut app, |api| api.watch_table("swarm", "dot"));
    call(&mut app, "swarm", "tick", ()).unwrap();
    let counted = app.world().resource::<Counted>();
    assert_eq!((counted.messages, counted.batched), (4, 12));
    assert!(dots(&mut app).iter().all(|d| d.y == 2.0));
}
