//! Arena: a small multiplayer game. Players steer a square around an arena and pick up coins
//! for points. The rules live in `modules/arena`, on the host's node, which is *open*: anyone
//! may join with nothing copied beforehand. A guest's game runs its own node with
//! `modules/arena_client`, which calls the host's reducers and subscribes to its tables over
//! UDP (QUIC); the guest pins the host's key the first time it joins (or takes it from an
//! invite) and refuses a different key later.
//!
//! ```text
//! cargo run -p arena-game -- --host                    # on one machine: prints an invite
//! cargo run -p arena-game -- --join 192.168.1.20:8090  # on another: by address...
//! cargo run -p arena-game -- --join 192.168.1.20:8090/3f9a…  # ...or by invite
//! ```
//!
//! Arrow keys or WASD steer; Escape leaves the arena (Enter joins again); F12 opens the
//! inspector. A guest's own square moves at once (predicted), the others glide (interpolated
//! 100 ms behind the host). The host keeps the arena — scores included — in its data directory
//! (`--data-dir`, by default the OS data directory's `interstice/arena`).

mod hud;
mod pieces;
mod play;
mod trace;

use bevy::prelude::*;
use clap::Parser;
use interstice::network::{Invite, KnownHosts, NetworkConfig};
use interstice::prelude::*;
use interstice::{NodeIdentity, StorageConfig};
use interstice_inspector::IntersticeInspectorPlugin;
use pieces::Moves;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ARENA_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/arena.wasm"));
const CLIENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/arena_client.wasm"));

/// The port a host listens on unless told otherwise.
const DEFAULT_PORT: u16 = 8090;

#[derive(Parser, Debug)]
#[command(about = "A small multiplayer game on Interstice")]
struct Args {
    /// Host the arena (its rules run on this node, open to anyone who joins).
    #[arg(long, conflicts_with = "join")]
    host: bool,
    /// Join the arena hosted at HOST:PORT, or by the invite the host printed
    /// (ADDRESS/FINGERPRINT).
    #[arg(long, value_name = "ADDRESS|INVITE")]
    join: Option<String>,
    /// Where this node listens (host: 0.0.0.0:8090; guest: any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Your name in the arena (`host` or `guest` by default).
    #[arg(long)]
    name: Option<String>,
    /// Your colour's hue in degrees.
    #[arg(long)]
    hue: Option<f32>,
    /// Where keys, pinned hosts and (for the host) the arena are kept.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Save the window as a PNG after `--frames` frames (120 without it), then exit.
    #[arg(long, value_name = "PNG")]
    screenshot: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u32>,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<f32>,
    /// Steer by itself instead of by keys: `circle` (round and round). For tests and demos.
    #[arg(long, value_name = "PLAN")]
    autopilot: Option<trace::Autopilot>,
    /// Write what each frame shows (positions, inputs, the status line) as JSON lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

/// Which side this game plays.
#[derive(Resource, Clone)]
pub struct Role {
    /// The module the game talks to: `arena` (host) or `arena_client` (guest).
    pub module: &'static str,
    pub name: String,
    pub hue: f32,
    /// The host's address, for a guest.
    pub host: Option<SocketAddr>,
    /// What the host shows others to join with.
    pub invite: Option<String>,
}

impl Role {
    pub fn is_host(&self) -> bool {
        self.host.is_none()
    }
}

/// A key in `dir`, created on first use.
fn node_key(dir: &Path) -> Result<Arc<NodeIdentity>, String> {
    NodeIdentity::load_or_create(dir)
        .map(Arc::new)
        .map_err(|e| format!("node key in {}: {e}", dir.display()))
}

/// An address others can reach this machine at, for the invite: the listening address, or
/// when it listens on every interface, the one its default route leaves from (no packet is
/// sent).
fn reachable(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr());
    match outward {
        Ok(local) if !local.ip().is_unspecified() => SocketAddr::new(local.ip(), listen.port()),
        _ => SocketAddr::from(([127, 0, 0, 1], listen.port())),
    }
}

/// `--join`: an invite (address and key) or an address (`host:port`, resolved).
fn target(text: &str) -> Result<(SocketAddr, Option<Invite>), String> {
    if text.contains('/') {
        let invite: Invite = text.parse()?;
        return Ok((invite.address, Some(invite)));
    }
    let address = text
        .to_socket_addrs()
        .map_err(|e| format!("--join {text}: {e} (expected HOST:PORT or an invite)"))?
        .next()
        .ok_or_else(|| format!("--join {text}: no address found"))?;
    Ok((address, None))
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let joining = match (&args.join, args.host) {
        (Some(text), _) => Some(target(text)?),
        (None, true) => None,
        (None, false) => return Err("say --host, or --join ADDRESS (or an invite)".into()),
    };
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        return Err("no display: set DISPLAY (X11), or run under xvfb-run".into());
    }
    let data = match args.data_dir.clone() {
        Some(dir) => dir,
        None => interstice::core::storage::os_data_root()
            .ok_or("no data directory for this user: pass --data-dir")?
            .join("arena"),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| if joining.is_some() { "guest" } else { "host" }.into());
    let mut plugin = IntersticePlugin::default();
    let (network, role) = match &joining {
        None => {
            let dir = data.join("host");
            let identity = node_key(&dir)?;
            let listen = args
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
            let invite = Invite {
                address: reachable(listen),
                fingerprint: identity.fingerprint(),
            };
            println!(
                "hosting the arena on {listen}; its data is in {}",
                dir.display()
            );
            println!("others join with:  arena-game --join {}", invite.address);
            println!("or, checking the key: arena-game --join {invite}");
            let mut network = NetworkConfig::new(listen, identity);
            network.open = true;
            plugin = plugin
                .with_storage(StorageConfig::new(dir.join("node")))
                .with_module_bytes("arena (built in)", ARENA_WASM);
            let role = Role {
                module: "arena",
                name,
                hue: args.hue.unwrap_or(210.0),
                host: None,
                invite: Some(invite.to_string()),
            };
            (network, role)
        }
        Some((address, invite)) => {
            // Each player name its own key: two guests on one machine are two players.
            let dir = data.join(format!("player-{name}"));
            let identity = node_key(&dir)?;
            let known = KnownHosts::load(&dir.join("known_hosts")).map_err(|e| e.to_string())?;
            if let Some(invite) = invite {
                known
                    .pin(invite.address, &invite.fingerprint)
                    .map_err(|e| e.to_string())?;
            }
            let listen = args
                .listen
                .unwrap_or_else(|| interstice_net::transport::any_port_for(*address));
            let mut network = NetworkConfig::new(listen, identity);
            network.known_hosts = Some(known);
            network.nodes.insert("arena_node".into(), *address);
            plugin = plugin.with_module_bytes("arena_client (built in)", CLIENT_WASM);
            let role = Role {
                module: "arena_client",
                name,
                hue: args.hue.unwrap_or(25.0),
                host: Some(*address),
                invite: None,
            };
            (network, role)
        }
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
            // Closing the window leaves the arena first (play::close).
            close_when_requested: false,
            ..default()
        }),
        plugin.with_network(network),
        IntersticeInspectorPlugin::default(),
    ))
    .insert_resource(ClearColor(Color::srgb(0.07, 0.08, 0.1)))
    .insert_resource(role.clone())
    .add_systems(Startup, (setup, hud::setup));
    let me = role.name.clone();
    if role.is_host() {
        app.add_plugins((
            MirrorTable::<arena::Player>::new("arena", "player"),
            MirrorTable::<arena::Coin>::new("arena", "coin"),
            SmoothTable::<Moves<arena::Player>>::new().predict(move |p| p.name == me),
        ));
        add_side::<arena::Player, arena::Coin>(&mut app, &args)?;
    } else {
        app.add_plugins((
            MirrorTable::<arena_client::Avatar>::new("arena_client", "avatar"),
            MirrorTable::<arena_client::Gem>::new("arena_client", "gem"),
            SmoothTable::<Moves<arena_client::Avatar>>::new().predict(move |p| p.name == me),
        ));
        add_side::<arena_client::Avatar, arena_client::Gem>(&mut app, &args)?;
    }
    if let Some(path) = &args.screenshot {
        interstice_render::screenshot::screenshot_after(&mut app, path, args.frames.unwrap_or(120));
    } else if args.frames.is_some() || args.seconds.is_some() {
        app.insert_resource(Limit {
            frames: args.frames,
            seconds: args.seconds,
        })
        .add_systems(Last, stop_after);
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(_) => Err("the game stopped with an error".into()),
    }
}

/// The systems of one side, for its row types.
fn add_side<R, C>(app: &mut App, args: &Args) -> Result<(), String>
where
    R: pieces::PlayerRow + interstice::IntersticeType + PartialEq,
    C: pieces::CoinRow,
{
    app.init_resource::<play::Intent>()
        .init_resource::<play::Presence>()
        .add_systems(
            Update,
            (
                play::keys,
                play::join,
                play::steer::<R>.after(play::keys),
                play::close,
            )
                .in_set(IntersticeSystems::Ingest),
        )
        .add_systems(Update, play::leave_when_answered)
        .add_systems(
            Update,
            (
                pieces::show_players::<R>,
                pieces::show_coins::<C>,
                hud::scoreboard::<R>,
                hud::status::<R>,
            )
                .after(interstice::smooth::SmoothSystems::Update),
        );
    trace::add::<R>(app, args.autopilot, args.trace.as_deref())
}

/// When to stop by itself.
#[derive(Resource)]
struct Limit {
    frames: Option<u32>,
    seconds: Option<f32>,
}

fn stop_after(
    limit: Res<Limit>,
    mut frames: Local<u32>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    *frames += 1;
    if limit.frames.is_some_and(|max| *frames >= max)
        || limit.seconds.is_some_and(|max| time.elapsed_secs() >= max)
    {
        exit.write(AppExit::Success);
    }
}

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
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
