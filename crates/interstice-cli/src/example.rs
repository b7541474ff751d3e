//! `interstice example <name>`: a headless node running a built-in example module.
//!
//! Example nodes are real nodes: each keeps its key and its tables under the data root
//! (`nodes/<node id>/`, registered in `nodes.toml` as `example-<name>`) and listens for peers
//! on its fixed port. The hello and caller examples trust each other's keys, so
//! `interstice example hello` in one terminal and `interstice example caller` in another is
//! the two-node flow: caller calls `hello` on the hello node and receives its greetings.

use crate::registry::{DataRoot, NodeEntry, RegistryError};
use bevy::app::AppExit;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use interstice::network::NetworkConfig;
use interstice::prelude::*;
use interstice::{NodeIdentity, StorageConfig, TrustedPeers};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The hello module, built from `modules/hello` by this crate's build script.
const HELLO_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello.wasm"));
/// The caller module, built from `modules/caller`.
const CALLER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/caller.wasm"));
/// The graphics module, built from `modules/graphics`.
const GRAPHICS_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/graphics.wasm"));
/// The audio module, built from `modules/audio`.
const AUDIO_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/audio.wasm"));

/// The built-in examples and their fixed ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// A Greetings table, a `hello` reducer, an `init` hook and queries (port 8080).
    Hello,
    /// Calls hello on another node and subscribes to its greetings (port 8081).
    Caller,
    /// Draws and reacts to input with the Gpu and Input authorities (port 8082).
    Graphics,
    /// Plays a tone with the Audio authority (port 8083).
    Audio,
}

impl Example {
    /// The port the example node uses.
    pub fn port(self) -> u16 {
        match self {
            Example::Hello => 8080,
            Example::Caller => 8081,
            Example::Graphics => 8082,
            Example::Audio => 8083,
        }
    }
}

/// Arguments of `interstice example`.
#[derive(Debug, clap::Args)]
pub struct ExampleArgs {
    /// Which example to run.
    #[arg(value_enum)]
    pub name: Example,
    /// Stop after this many frames instead of running until interrupted (Ctrl-C).
    #[arg(long)]
    pub frames: Option<u32>,
    /// Listen here instead of 127.0.0.1 on the example's port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Reach a node the module names somewhere else than its binding says:
    /// `--node hello_node=127.0.0.1:9000` (caller).
    #[arg(long = "node", value_parser = parse_node)]
    pub nodes: Vec<(String, SocketAddr)>,
    /// Caller only: also ask hello to greet this many names (`caller0`, `caller1`, ...) at
    /// start, one call each.
    #[arg(long, default_value_t = 0)]
    pub greet: u32,
    /// Graphics only: save the window as a PNG after `--frames` frames (60 without it), then
    /// exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Graphics only: open the inspector at start (F12 shows and hides it anyway), showing the
    /// rows of `MODULE.TABLE` if given.
    #[arg(long, value_name = "MODULE.TABLE", num_args = 0..=1, default_missing_value = "")]
    pub inspector: Option<String>,
}

fn parse_node(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, address) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=ADDRESS, got `{text}`"))?;
    let address = address
        .parse()
        .map_err(|e| format!("`{address}` is not an address: {e}"))?;
    Ok((name.to_string(), address))
}

/// Errors of `interstice example`.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The graphics example needs a display.
    #[error(
        "no display: the graphics example opens a window on an X11 display (set DISPLAY; under Wayland, XWayland provides one), or run it headless with `xvfb-run interstice example graphics`"
    )]
    NoDisplay,
    /// An option was given to an example that has no use for it.
    #[error("{0}")]
    Usage(String),
    /// The data root or the node registry could not be used.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The node's trust file could not be read or written.
    #[error("trust file {path}: {source}")]
    Trust {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node key could not be read or created.
    #[error("node key in {path}: {source}")]
    Identity {
        /// The node directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The app exited with an error.
    #[error("the example node stopped with an error")]
    Failed,
}

/// Greets these names when the node starts.
const NAMES: [&str; 3] = ["World", "Bevy", "Interstice"];

#[derive(Resource, Default)]
struct Demo {
    pending: usize,
    reported: bool,
}

#[derive(Resource)]
struct FrameLimit(Option<u32>);

/// The registered example node `example-<name>`, with its key: created (key first, the node
/// id derived from it) on first use.
fn example_node(
    root: &DataRoot,
    example: Example,
) -> Result<(NodeEntry, Arc<NodeIdentity>), ExampleError> {
    let name = format!("example-{}", format!("{example:?}").to_lowercase());
    let mut registry = root.load_registry()?;
    let load = |id: &str| {
        let path = root.node_dir(id);
        NodeIdentity::load_or_create(&path)
            .map(Arc::new)
            .map_err(|source| ExampleError::Identity { path, source })
    };
    if let Some(entry) = registry.find(&name).cloned() {
        let identity = load(&entry.id)?;
        return Ok((entry, identity));
    }
    let identity = Arc::new(
        NodeIdentity::generate().map_err(|e| ExampleError::Identity {
            path: root.path().to_path_buf(),
            source: std::io::Error::other(e),
        })?,
    );
    let entry = NodeEntry {
        name,
        address: format!("127.0.0.1:{}", example.port()),
        id: identity.node_id(),
        local: true,
    };
    // The key first, where the node id (derived from it) says; then the registry entry.
    let dir = root.node_dir(&entry.id);
    identity
        .save(&dir)
        .map_err(|source| ExampleError::Identity { path: dir, source })?;
    registry.add(entry.clone())?;
    root.save_registry(&registry)?;
    Ok((entry, identity))
}

/// Runs an example node.
pub fn run(args: ExampleArgs, data_dir: Option<PathBuf>) -> Result<(), ExampleError> {
    let (wasm, label) = match args.name {
        Example::Hello => (HELLO_WASM, "hello (built in)"),
        Example::Caller => (CALLER_WASM, "caller (built in)"),
        Example::Graphics => (GRAPHICS_WASM, "graphics (built in)"),
        Example::Audio => (AUDIO_WASM, "audio (built in)"),
    };
    if args.name == Example::Graphics && std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        return Err(ExampleError::NoDisplay);
    }
    if args.inspector.is_some() && args.name != Example::Graphics {
        return Err(ExampleError::Usage(
            "--inspector is for the graphics example (the others have no window)".into(),
        ));
    }
    if args.screenshot.is_some() && args.name != Example::Graphics {
        return Err(ExampleError::Usage(
            "--screenshot is for the graphics example (the others have no window)".into(),
        ));
    }
    let root = match &data_dir {
        Some(dir) => DataRoot::at(dir),
        None => DataRoot::os_default()?,
    };
    let (entry, identity) = example_node(&root, args.name)?;
    // The two examples trust each other's keys (created here if they do not exist yet).
    let (_, hello) = example_node(&root, Example::Hello)?;
    let (_, caller) = example_node(&root, Example::Caller)?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], args.name.port())));
    let node_dir = root.node_dir(&entry.id);
    // The node's trust file (`nodes/<id>/trusted`): what it had, plus the other example.
    let trust_file = node_dir.join("trusted");
    let trust_error = |source| ExampleError::Trust {
        path: trust_file.clone(),
        source,
    };
    let trusted = TrustedPeers::load(&trust_file).map_err(trust_error)?;
    trusted.trust(hello.fingerprint());
    trusted.trust(caller.fingerprint());
    trusted.save(&trust_file).map_err(trust_error)?;
    let mut network = NetworkConfig::new(listen, identity.clone());
    network.trusted = trusted;
    network.nodes.extend(args.nodes.iter().cloned());

    let interstice = IntersticePlugin::default()
        .with_storage(StorageConfig::new(&node_dir))
        .with_module_bytes(label, wasm)
        .with_network(network);
    let mut app = App::new();
    if args.name == Example::Graphics {
        // A window: Bevy's own runner paces frames with the display.
        app.add_plugins((
            crate::window::plugins("Interstice — graphics example"),
            interstice,
            interstice_render::IntersticeRenderPlugin::default(),
            interstice_input::IntersticeInputPlugin,
            interstice_inspector::IntersticeInspectorPlugin {
                open: args.inspector.is_some(),
                table: args
                    .inspector
                    .as_deref()
                    .and_then(|t| t.split_once('.'))
                    .map(|(m, t)| (m.to_string(), t.to_string())),
                ..Default::default()
            },
        ));
        if let Some(path) = &args.screenshot {
            interstice_render::screenshot::screenshot_after(
                &mut app,
                path,
                args.frames.unwrap_or(60),
            );
        }
    } else {
        app.add_plugins((MinimalPlugins, LogPlugin::default(), interstice));
        // A node: 60 frames a second, and a frame at once when a peer's request arrives.
        interstice::run_single_threaded(&mut app);
        app.set_runner(|app| interstice::run_node(app, Duration::from_secs_f64(1.0 / 60.0)));
    }
    if args.name == Example::Audio {
        app.add_plugins(interstice_audio::IntersticeAudioPlugin::default())
            .add_systems(Last, report_audio);
    }
    if args.screenshot.is_none() {
        app.insert_resource(FrameLimit(args.frames))
            .add_systems(Last, stop_after_frames);
    }
    match args.name {
        Example::Hello => {
            app.init_resource::<Demo>()
                .add_systems(Startup, announce)
                .add_systems(Update, greet.in_set(IntersticeSystems::Ingest))
                .add_systems(Update, report.in_set(IntersticeSystems::Publish));
        }
        Example::Caller => {
            app.insert_resource(CallerDemo { greet: args.greet })
                .add_systems(Update, caller_greets.in_set(IntersticeSystems::Ingest));
        }
        Example::Graphics | Example::Audio => {}
    }
    info!(
        "example node `{}` (id {}, key {}) listening on {listen}, data in {}",
        entry.name,
        entry.id,
        identity.fingerprint(),
        node_dir.display()
    );
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(_) => Err(ExampleError::Failed),
    }
}

#[derive(Resource)]
struct CallerDemo {
    greet: u32,
}

/// Caller: asks hello for `--greet` greetings once, at start.
fn caller_greets(mut interstice: Interstice, demo: Res<CallerDemo>, mut done: Local<bool>) {
    if *done || interstice.schema("caller").is_none() {
        return;
    }
    *done = true;
    if demo.greet > 0 {
        match interstice.queue_reducer("caller", "greet_many", ("caller".to_string(), demo.greet)) {
            Ok(_) => info!("asked hello_node for {} greetings", demo.greet),
            Err(e) => error!("cannot call caller.greet_many: {e}"),
        }
    }
}

fn announce(interstice: Interstice) {
    match interstice.schema("hello") {
        Some(schema) => info!(
            "module `{}` {}: tables [{}], reducers [{}], queries [{}]",
            schema.name,
            schema.version,
            schema
                .tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            schema
                .reducers
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            schema
                .queries
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => error!("the hello module did not load"),
    }
}

fn greet(mut interstice: Interstice, mut demo: ResMut<Demo>, mut started: Local<bool>) {
    if std::mem::replace(&mut *started, true) || interstice.schema("hello").is_none() {
        return;
    }
    for name in NAMES {
        match interstice.queue_reducer("hello", "hello", (name.to_string(),)) {
            Ok(id) => {
                info!("queued hello({name:?}) as invocation {}", id.0);
                demo.pending += 1;
            }
            Err(e) => error!("cannot call hello({name:?}): {e}"),
        }
    }
}

fn report(
    mut outcomes: MessageReader<ReducerOutcome>,
    mut interstice: Interstice,
    mut demo: ResMut<Demo>,
) {
    for outcome in outcomes.read() {
        match &outcome.result {
            Ok(()) => info!(
                "invocation {} {}.{} committed",
                outcome.id.0, outcome.module, outcome.reducer
            ),
            Err(e) => warn!(
                "invocation {} {}.{} failed: {e}",
                outcome.id.0, outcome.module, outcome.reducer
            ),
        }
        demo.pending = demo.pending.saturating_sub(1);
    }
    if demo.pending == 0 && !demo.reported && interstice.schema("hello").is_some() {
        demo.reported = true;
        match interstice.query::<_, u64>("hello", "greeting_count", ()) {
            Ok(count) => info!("query greeting_count() = {count}"),
            Err(e) => error!("query greeting_count failed: {e}"),
        }
        match interstice.query::<_, Vec<String>>("hello", "greetings_for", ("World".to_string(),)) {
            Ok(greetings) => info!("query greetings_for(\"World\") = {greetings:?}"),
            Err(e) => error!("query greetings_for failed: {e}"),
        }
        info!("hello example node is running; press Ctrl-C to stop");
    }
}

/// Audio: what the device played, once a second.
fn report_audio(
    stats: Res<interstice_audio::AudioStats>,
    time: Res<Time<Real>>,
    mut next: Local<f64>,
) {
    let now = time.elapsed_secs_f64();
    if now >= *next {
        *next = now + 1.0;
        info!(
            "audio on `{}` ({} Hz, {} channels): {} frames played, {} frames of silence for lack of samples",
            stats.device,
            stats.sample_rate,
            stats.channels,
            stats.played_frames,
            stats.underrun_frames
        );
    }
}

fn stop_after_frames(
    limit: Res<FrameLimit>,
    mut frames: Local<u32>,
    mut exit: MessageWriter<AppExit>,
) {
    *frames += 1;
    if limit.0.is_some_and(|max| *frames >= max) {
        exit.write(AppExit::Success);
    }
}
