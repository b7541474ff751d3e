//! Arena: a small multiplayer game. Players steer a square around an arena and pick up coins
//! for points. The rules live in `modules/arena`, on the host's node; a guest's game runs its
//! own node with `modules/arena_client`, which calls the host's reducers and subscribes to its
//! tables over UDP (QUIC, keys pinned). Each game mirrors its node's tables into sprites.
//!
//! ```text
//! cargo run -p arena-game -- --host                 # terminal 1: the host, on 127.0.0.1:8090
//! cargo run -p arena-game -- --join 127.0.0.1:8090  # terminal 2: a guest
//! ```
//!
//! Arrow keys or WASD steer; F12 opens the inspector. Both games keep their keys under the
//! data directory (`--data-dir`, the OS data directory's `interstice/arena` by default) and trust
//! each other's key.

use bevy::prelude::*;
use clap::Parser;
use interstice::network::NetworkConfig;
use interstice::prelude::*;
use interstice::{NodeIdentity, TrustedPeers};
use interstice_inspector::IntersticeInspectorPlugin;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ARENA_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/arena.wasm"));
const CLIENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/arena_client.wasm"));

/// Units a second a player moves.
const SPEED: f32 = 240.0;

#[derive(Parser, Debug)]
#[command(about = "A small multiplayer game on Interstice")]
struct Args {
    /// Host the arena (its rules run on this node).
    #[arg(long, conflicts_with = "join")]
    host: bool,
    /// Join the arena hosted at this address.
    #[arg(long, value_name = "ADDRESS")]
    join: Option<SocketAddr>,
    /// Where this node listens (host: 127.0.0.1:8090; guest: any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Your name in the arena (`host` or `guest` by default).
    #[arg(long)]
    name: Option<String>,
    /// Your colour's hue in degrees.
    #[arg(long)]
    hue: Option<f32>,
    /// Where the keys live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Save the window as a PNG after `--frames` frames (120 without it), then exit.
    #[arg(long, value_name = "PNG")]
    screenshot: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u32>,
}

/// Which side this game plays.
#[derive(Resource, Clone)]
struct Role {
    /// The module the game talks to: `arena` (host) or `arena_client` (guest).
    module: &'static str,
    name: String,
    hue: f32,
}

/// A key in `<data>/<role>/`, created on first use.
fn node_key(data: &Path, role: &str) -> Result<Arc<NodeIdentity>, String> {
    let dir = data.join(role);
    NodeIdentity::load_or_create(&dir)
        .map(Arc::new)
        .map_err(|e| format!("node key in {}: {e}", dir.display()))
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let host = match (args.host, args.join) {
        (true, _) => true,
        (false, Some(_)) => false,
        (false, None) => return Err("say --host, or --join ADDRESS".into()),
    };
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        return Err("no display: set DISPLAY (X11), or run under xvfb-run".into());
    }
    let data = match args.data_dir.clone() {
        Some(dir) => dir,
        None => interstice::core::DataRoot::os_default()
            .map_err(|e| e.to_string())?
            .path()
            .join("arena"),
    };
    // Both keys exist and trust each other, whichever side started first.
    let (mine, theirs) = if host {
        ("host", "guest")
    } else {
        ("guest", "host")
    };
    let identity = node_key(&data, mine)?;
    let other = node_key(&data, theirs)?;
    let trusted = TrustedPeers::default();
    trusted.trust(other.fingerprint());
    let listen = args.listen.unwrap_or_else(|| {
        if host {
            SocketAddr::from(([127, 0, 0, 1], 8090))
        } else {
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    });
    let mut network = NetworkConfig::new(listen, identity);
    network.trusted = trusted;
    let (module, wasm, label): (&'static str, &'static [u8], &str) = if host {
        ("arena", ARENA_WASM, "arena (built in)")
    } else {
        ("arena_client", CLIENT_WASM, "arena_client (built in)")
    };
    if let Some(address) = args.join {
        network.nodes.insert("arena_node".into(), address);
    }
    let role = Role {
        module,
        name: args.name.clone().unwrap_or_else(|| mine.to_string()),
        hue: args.hue.unwrap_or(if host { 210.0 } else { 25.0 }),
    };

    let mut app = App::new();
    app.add_plugins((
        DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: format!("Interstice arena — {} (F12: inspector)", role.name),
                resolution: (800u32, 600u32).into(),
                resizable: false,
                ..default()
            }),
            ..default()
        }),
        IntersticePlugin::default()
            .with_module_bytes(label, wasm)
            .with_network(network),
        IntersticeInspectorPlugin::default(),
    ))
    .insert_resource(ClearColor(Color::srgb(0.07, 0.08, 0.1)))
    .insert_resource(role)
    .add_systems(Startup, setup)
    .add_systems(Update, (join, steer).in_set(IntersticeSystems::Ingest));
    if host {
        app.add_plugins((
            MirrorTable::<arena::Player>::new("arena", "player"),
            MirrorTable::<arena::Coin>::new("arena", "coin"),
        ))
        .add_systems(
            Update,
            (
                show::<arena::Player>,
                show::<arena::Coin>,
                scoreboard::<arena::Player>,
            )
                .after(IntersticeSystems::Publish),
        );
    } else {
        app.add_plugins((
            MirrorTable::<arena_client::Avatar>::new("arena_client", "avatar"),
            MirrorTable::<arena_client::Gem>::new("arena_client", "gem"),
        ))
        .add_systems(
            Update,
            (
                show::<arena_client::Avatar>,
                show::<arena_client::Gem>,
                scoreboard::<arena_client::Avatar>,
            )
                .after(IntersticeSystems::Publish),
        );
    }
    if let Some(path) = &args.screenshot {
        interstice_render::screenshot::screenshot_after(&mut app, path, args.frames.unwrap_or(120));
    } else if let Some(frames) = args.frames {
        app.insert_resource(FrameLimit(frames))
            .add_systems(Last, stop_after);
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(_) => Err("the game stopped with an error".into()),
    }
}

#[derive(Resource)]
struct FrameLimit(u32);

fn stop_after(limit: Res<FrameLimit>, mut frames: Local<u32>, mut exit: MessageWriter<AppExit>) {
    *frames += 1;
    if *frames >= limit.0 {
        exit.write(AppExit::Success);
    }
}

#[derive(Component)]
struct Scoreboard;

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
    commands.spawn((
        Scoreboard,
        Text2d::default(),
        TextFont::from_font_size(20.0),
        Transform::from_xyz(0.0, 275.0, 1.0),
    ));
    // The arena's edge.
    let (w, h) = (
        arena::HALF_WIDTH * 2.0 + 24.0,
        arena::HALF_HEIGHT * 2.0 + 24.0,
    );
    commands.spawn((
        Sprite::from_color(Color::srgb(0.12, 0.13, 0.17), Vec2::new(w, h)),
        Transform::from_xyz(0.0, 0.0, -1.0),
    ));
}

/// Joins once the module is loaded (again on every start: joining twice changes nothing).
fn join(mut interstice: Interstice, role: Res<Role>, mut joined: Local<bool>) {
    if *joined || interstice.schema(role.module).is_none() {
        return;
    }
    *joined = true;
    if let Err(e) = interstice.call_reducer(role.module, "join", (role.name.clone(), role.hue)) {
        error!("cannot join: {e}");
    }
}

/// Held keys steer the player.
fn steer(
    mut interstice: Interstice,
    role: Res<Role>,
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time>,
) {
    let axis = |minus: [KeyCode; 2], plus: [KeyCode; 2]| {
        f32::from(keys.any_pressed(plus)) - f32::from(keys.any_pressed(minus))
    };
    let dx = axis(
        [KeyCode::ArrowLeft, KeyCode::KeyA],
        [KeyCode::ArrowRight, KeyCode::KeyD],
    );
    let dy = axis(
        [KeyCode::ArrowDown, KeyCode::KeyS],
        [KeyCode::ArrowUp, KeyCode::KeyW],
    );
    if dx == 0.0 && dy == 0.0 {
        return;
    }
    let step = SPEED * time.delta_secs();
    let args = (role.name.clone(), dx * step, dy * step);
    if let Err(e) = interstice.call_reducer(role.module, "steer", args) {
        error!("cannot steer: {e}");
    }
}

/// What the game draws of a row.
trait Piece: Send + Sync + 'static {
    fn at(&self) -> Vec2;
    /// Colour and size.
    fn look(&self) -> (Color, f32);
    /// Name and score, for players.
    fn label(&self) -> Option<(String, u32)> {
        None
    }
}

macro_rules! player_piece {
    ($t:ty) => {
        impl Piece for $t {
            fn at(&self) -> Vec2 {
                Vec2::new(self.x, self.y)
            }
            fn look(&self) -> (Color, f32) {
                (Color::hsl(self.hue, 0.75, 0.55), 24.0)
            }
            fn label(&self) -> Option<(String, u32)> {
                Some((self.name.clone(), self.score))
            }
        }
    };
}

macro_rules! coin_piece {
    ($t:ty) => {
        impl Piece for $t {
            fn at(&self) -> Vec2 {
                Vec2::new(self.x, self.y)
            }
            fn look(&self) -> (Color, f32) {
                (Color::srgb(1.0, 0.85, 0.2), 12.0)
            }
        }
    };
}

player_piece!(arena::Player);
player_piece!(arena_client::Avatar);
coin_piece!(arena::Coin);
coin_piece!(arena_client::Gem);

/// Sprites for new rows; moved rows move their sprite.
fn show<T: Piece>(
    mut commands: Commands,
    added: Query<(Entity, &Mirrored<T>), Added<Mirrored<T>>>,
    mut moved: Query<(&Mirrored<T>, &mut Transform), Changed<Mirrored<T>>>,
) {
    for (entity, row) in &added {
        let (color, size) = row.0.look();
        commands.entity(entity).insert((
            Sprite::from_color(color, Vec2::splat(size)),
            Transform::from_translation(row.0.at().extend(0.0)),
        ));
    }
    for (row, mut transform) in &mut moved {
        transform.translation = row.0.at().extend(0.0);
    }
}

/// Everyone's score, best first.
fn scoreboard<T: Piece>(
    players: Query<&Mirrored<T>>,
    mut board: Single<&mut Text2d, With<Scoreboard>>,
) {
    let mut scores: Vec<(String, u32)> = players.iter().filter_map(|p| p.0.label()).collect();
    scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let text = scores
        .iter()
        .map(|(name, score)| format!("{name} {score}"))
        .collect::<Vec<_>>()
        .join("   ");
    if board.0 != text {
        board.0 = text;
    }
}
