//! Shared by the integration tests: real modules built to wasm, and a headless app.

#![allow(dead_code)]

use bevy::prelude::*;
use interstice::network::NetworkStatus;
use interstice::prelude::*;
use interstice::{Database, EngineConfig, Modules};
use interstice_build::build_workspace_modules;
use interstice_net::transport::{NodeIdentity, PeerEndpoint, TransportError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Every module the tests use, built once per test binary.
pub fn wasm(package: &str) -> Vec<u8> {
    static BUILT: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let packages = [
            "hello",
            "kitchen",
            "gpu_holder",
            "gpu_rival",
            "bench",
            "watcher",
            "timer",
            "bank",
            "teller",
            "greeter",
            "caller",
            "gatekeeper",
            "filer",
            "swarm",
            "arena",
            "hostile",
            "deep_describe",
            "notebook",
        ];
        let paths = build_workspace_modules(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            &packages,
        )
        .expect("building the test modules");
        packages
            .iter()
            .zip(paths)
            .map(|(p, path)| (p.to_string(), std::fs::read(path).expect("reading wasm")))
            .collect()
    });
    built
        .get(package)
        .unwrap_or_else(|| panic!("no test module {package}"))
        .clone()
}

/// A headless app with the plugin and no modules.
pub fn app_with(engine: EngineConfig) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_engine(engine),
    ));
    app.update();
    app
}

/// A headless app with default limits.
pub fn app() -> App {
    app_with(EngineConfig::default())
}

/// Loads a module into a running app.
pub fn load(app: &mut App, package: &str) -> Result<(), interstice::LoadError> {
    let bytes = wasm(package);
    app.world_mut()
        .resource_scope(|world, mut modules: Mut<Modules>| {
            let mut db = world.resource_mut::<Database>();
            modules.load(&mut db, &bytes).map(drop)
        })
}

/// Runs `f` with the `Interstice` parameter, as a game system would.
pub fn with_api<R>(app: &mut App, f: impl FnOnce(&mut Interstice) -> R) -> R {
    let mut state: bevy::ecs::system::SystemState<Interstice> =
        bevy::ecs::system::SystemState::new(app.world_mut());
    let mut api = state
        .get_mut(app.world_mut())
        .expect("the Interstice resources exist");
    let r = f(&mut api);
    state.apply(app.world_mut());
    r
}

/// Queues a reducer call, runs one frame and returns its outcome.
pub fn call<A: interstice::abi::typed::Args>(
    app: &mut App,
    module: &str,
    reducer: &str,
    args: A,
) -> Result<(), interstice::CallError> {
    let id = with_api(app, |api| api.queue_reducer(module, reducer, args))?;
    app.update();
    let messages = app.world().resource::<Messages<ReducerOutcome>>();
    let mut cursor = messages.get_cursor();
    let outcome = cursor
        .read(messages)
        .find(|o| o.id == id)
        .cloned()
        .expect("an outcome for every invocation");
    outcome.result
}

/// Runs a query.
pub fn query<A: interstice::abi::typed::Args, R: interstice::IntersticeType>(
    app: &mut App,
    module: &str,
    name: &str,
    args: A,
) -> Result<R, interstice::CallError> {
    with_api(app, |api| api.query(module, name, args))
}

/// A node persisting with `storage`, loading the named test modules at startup.
pub fn persisting_node(storage: interstice::StorageConfig, modules: &[&str]) -> App {
    let mut plugin = IntersticePlugin::default().with_storage(storage);
    for module in modules {
        plugin = plugin.with_module_bytes(*module, wasm(module));
    }
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin));
    app.update();
    app
}

/// Connects to the node at `addr` (key `node`) as `identity`, on the current runtime.
pub async fn connect(
    identity: &interstice_net::transport::NodeIdentity,
    addr: std::net::SocketAddr,
    node: &str,
) -> interstice_net::transport::Peer {
    let trust = interstice_net::transport::TrustedPeers::default();
    trust.trust(node.to_string());
    let endpoint = interstice_net::transport::PeerEndpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        identity,
        trust,
    )
    .unwrap();
    let peer = endpoint.connect(addr).await.expect("handshake");
    // The endpoint must outlive the test's use of the connection.
    std::mem::forget(endpoint);
    peer
}

/// Runs `work` on a runtime and a thread of its own, so one client cannot starve another.
pub fn on_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
}

/// Runs `client` on its own thread while the node keeps updating; returns what it returned.
pub fn with_client<T: Send + 'static>(
    app: &mut App,
    client: impl FnOnce() -> T + Send + 'static,
) -> T {
    let handle = std::thread::spawn(client);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !handle.is_finished() {
        app.update();
        assert!(
            std::time::Instant::now() < deadline,
            "the client did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    handle.join().expect("client thread")
}

/// A tokio runtime for a client thread.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `app` until its node listens, and returns where.
pub fn listening(app: &mut App) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.update();
        let status = app.world().resource::<NetworkStatus>();
        if let Some(addr) = status.local_addr {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "the node never listened ({:?})",
            status.error
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Dials the node at `addr` as `identity`, a key it has never seen, taking whatever key the
/// node presents.
pub async fn dial_as_stranger(
    identity: NodeIdentity,
    addr: SocketAddr,
) -> (
    PeerEndpoint,
    Result<interstice_net::transport::Peer, TransportError>,
) {
    let endpoint = PeerEndpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        &identity,
        Default::default(),
    )
    .unwrap();
    let peer = endpoint
        .connect_with(addr, interstice_net::transport::Dial::AnyKey)
        .await;
    (endpoint, peer)
}

/// Builds a one-table module named `versioned` from `fields` (extra fields of its row) and
/// returns its wasm: two calls give two versions of one module.
pub fn versioned_module(dir: &Path, fields: &str, insert: &str) -> Vec<u8> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/interstice-sdk");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"versioned\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ninterstice-sdk = {{ path = \"{}\" }}\n\n[profile.wasm-module]\ninherits = \"release\"\ndebug = false\nstrip = true\n\n[workspace]\n",
            sdk.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            "use interstice_sdk::*;\ninterstice_module!();\n#[table]\npub struct Item {{\n    #[primary_key(auto_inc)]\n    pub id: u64,\n    pub name: String,\n{fields}}}\n#[reducer]\nfn add(ctx: ReducerContext, name: String) -> Result<(), HostError> {{\n    ctx.current.tables.item().insert(Item {{ id: 0, name{insert} }})?;\n    Ok(())\n}}\n#[query]\nfn names(ctx: QueryContext) -> Vec<String> {{\n    ctx.current.tables.item().scan().map(|i| i.name).collect()\n}}\n"
        ),
    )
    .unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("versioned-target");
    let built = interstice_build::ModuleBuild::new(dir.join("Cargo.toml"), target)
        .package("versioned")
        .quiet(true)
        .run()
        .expect("building the versioned module");
    std::fs::read(&built[0]).unwrap()
}
