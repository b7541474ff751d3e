//! `interstice example <name>`: a headless node running a built-in example module.

use bevy::app::{AppExit, ScheduleRunnerPlugin};
use bevy::log::LogPlugin;
use bevy::prelude::*;
use interstice::prelude::*;
use std::time::Duration;

/// The hello module, built from `modules/hello` by this crate's build script.
const HELLO_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello.wasm"));

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
}

/// Errors of `interstice example`.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The example is not part of this build yet.
    #[error("the `{0:?}` example is not available yet: this build ships `hello` only")]
    NotAvailable(Example),
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

/// Runs an example node.
pub fn run(args: ExampleArgs) -> Result<(), ExampleError> {
    if args.name != Example::Hello {
        return Err(ExampleError::NotAvailable(args.name));
    }
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
            1.0 / 60.0,
        ))),
        LogPlugin::default(),
        IntersticePlugin::default().with_module_bytes("hello (built in)", HELLO_WASM),
    ))
    .insert_resource(FrameLimit(args.frames))
    .init_resource::<Demo>()
    .add_systems(Startup, announce)
    .add_systems(Update, greet.in_set(IntersticeSystems::Ingest))
    .add_systems(Update, report.in_set(IntersticeSystems::Publish))
    .add_systems(Last, stop_after_frames);
    let port = args.name.port();
    info!(
        "example node `hello` starting (port {port} is reserved for peers; this build has no networking yet)"
    );
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(_) => Err(ExampleError::Failed),
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
        match interstice.call_reducer("hello", "hello", (name.to_string(),)) {
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
