//! `interstice node ...`: the node registry, starting a node, and asking one how it is.

use crate::client::{ask, with_node};
use crate::home::{CliError, Home, file_error, resolve};
use crate::registry::NodeEntry;
use bevy::prelude::*;
use interstice::network::NetworkConfig;
use interstice::prelude::*;
use interstice::{NodeIdentity, StorageConfig, TrustedPeers};
use interstice_net::message::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `interstice node ...`
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Registers a node that runs elsewhere, trusting the key it presents (shown, so it can be
    /// checked; `--fingerprint`, or an invite, insists on a known one).
    Add {
        /// A name for it.
        name: String,
        /// Its UDP address, host:port, or an invite (`ADDRESS/FINGERPRINT`, from `node invite`).
        address: String,
        /// Refuse unless the node's key has this SHA-256 fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Creates a local node: a key, a data directory, a registry entry. This CLI is its owner
    /// (it may publish and remove modules there).
    Create {
        /// A name for it.
        name: String,
        /// The UDP port it listens on (127.0.0.1).
        port: u16,
    },
    /// Makes a new local node holding another local node's logged tables as they were after
    /// transaction TX, or the last one by logical time TIME (from its history; the node must
    /// be stopped). The original is left as it is; stateful tables start empty (they keep no
    /// history).
    Restore {
        /// The node to read (its name or id).
        node: String,
        /// The last transaction (log position, as `interstice history` shows it) to include,
        /// or a logical time (a number with ms, s, m or h): the last transaction at or before it.
        #[arg(long, value_name = "TX|TIME")]
        to: crate::point::Point,
        /// The new node's name.
        #[arg(long, value_name = "NEW_NAME")]
        into: String,
        /// The UDP port it will listen on (127.0.0.1; a free one when not given).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Lists the known nodes.
    List,
    /// Forgets a node (a local node's data directory is kept).
    Remove {
        /// Its name or id.
        node: String,
    },
    /// Renames a node.
    Rename {
        /// Its name or id.
        old: String,
        /// The new name.
        new: String,
    },
    /// Shows a node's entry, key and data directory.
    Show {
        /// Its name or id.
        node: String,
    },
    /// Runs a local node in this terminal until Ctrl-C (which shuts it down cleanly).
    Start {
        /// Its name or id.
        node: String,
        /// Stop after this many frames (for scripts and tests).
        #[arg(long)]
        frames: Option<u32>,
        /// Let in peers whose keys the node has never seen (a game host): they may call public
        /// reducers, run public queries and subscribe to public tables, nothing else.
        #[arg(long)]
        open: bool,
    },
    /// Prints an invite to a local node: its address and key, for `node add` or a game's
    /// `--join` elsewhere (which then pin the key without trusting the first connection).
    Invite {
        /// Its name or id.
        node: String,
    },
    /// Measures a node's round-trip time.
    Ping {
        /// Its name or id.
        node: String,
        /// How many pings.
        #[arg(long, default_value_t = 5)]
        count: u32,
    },
    /// Prints (or writes to `out`) a node's public schema as a node binding (TOML).
    Schema {
        /// Its name or id.
        node: String,
        /// A file to write instead of printing.
        out: Option<PathBuf>,
    },
}

/// Runs a node command.
pub fn run(home: &Home, command: NodeCommand) -> Result<(), CliError> {
    match command {
        NodeCommand::Add {
            name,
            address,
            fingerprint,
        } => add(home, name, address, fingerprint),
        NodeCommand::Create { name, port } => create(home, name, port),
        NodeCommand::Restore {
            node,
            to,
            into,
            port,
        } => crate::restore::restore(home, &node, to, &into, port),
        NodeCommand::List => {
            let registry = home.root.load_registry()?;
            if registry.nodes.is_empty() {
                println!(
                    "no nodes yet: `interstice node create <name> <port>` or `interstice node add <name> <address>`"
                );
            }
            for e in &registry.nodes {
                println!(
                    "{:<20} {:<22} {} {}",
                    e.name,
                    e.address,
                    e.id,
                    if e.local { "local" } else { "remote" }
                );
            }
            Ok(())
        }
        NodeCommand::Remove { node } => {
            let mut registry = home.root.load_registry()?;
            let entry = registry.remove(&node)?;
            home.root.save_registry(&registry)?;
            println!("removed node `{}` ({})", entry.name, entry.id);
            if entry.local {
                println!(
                    "its data is kept in {}",
                    home.root.node_dir(&entry.id).display()
                );
            }
            Ok(())
        }
        NodeCommand::Rename { old, new } => {
            let mut registry = home.root.load_registry()?;
            registry.rename(&old, &new)?;
            home.root.save_registry(&registry)?;
            println!("renamed `{old}` to `{new}`");
            Ok(())
        }
        NodeCommand::Show { node } => {
            let e = home.node(&node)?;
            println!("name:    {}", e.name);
            println!("id:      {}", e.id);
            println!("address: {}", e.address);
            println!("kind:    {}", if e.local { "local" } else { "remote" });
            if e.local {
                let dir = home.root.node_dir(&e.id);
                if let Ok(identity) = NodeIdentity::load_or_create(&dir) {
                    println!("key:     {}", identity.fingerprint());
                }
                println!("data:    {}", dir.display());
            }
            Ok(())
        }
        NodeCommand::Start { node, frames, open } => start(home, &node, frames, open),
        NodeCommand::Invite { node } => {
            let entry = home.node(&node)?;
            if !entry.local {
                return Err(CliError::Usage(format!(
                    "`{}` runs elsewhere: ask its owner for an invite",
                    entry.name
                )));
            }
            let dir = home.root.node_dir(&entry.id);
            let identity = NodeIdentity::load_or_create(&dir).map_err(file_error(dir))?;
            let invite = interstice_net::transport::Invite {
                address: resolve(&entry.address)?,
                fingerprint: identity.fingerprint(),
            };
            println!("{invite}");
            if invite.address.ip().is_loopback() {
                eprintln!(
                    "(the node listens on {}: only this machine can use that address)",
                    entry.address
                );
            }
            Ok(())
        }
        NodeCommand::Ping { node, count } => ping(home, &home.node(&node)?, count),
        NodeCommand::Schema { node, out } => {
            let entry = home.node(&node)?;
            let text = schema(home, &entry)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &text).map_err(file_error(path.clone()))?;
                    println!(
                        "wrote the public schema of `{}` to {}",
                        entry.name,
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

fn add(
    home: &Home,
    name: String,
    address: String,
    expected: Option<String>,
) -> Result<(), CliError> {
    // An invite says which key to expect.
    let (address, expected) = if address.contains('/') {
        let invite: interstice_net::transport::Invite = address.parse().map_err(CliError::Usage)?;
        if let Some(given) = &expected
            && !given.eq_ignore_ascii_case(&invite.fingerprint)
        {
            return Err(CliError::Usage(format!(
                "--fingerprint {given} and the invite's key {} differ",
                invite.fingerprint
            )));
        }
        (invite.address.to_string(), Some(invite.fingerprint))
    } else {
        (address, expected)
    };
    let addr = resolve(&address)?;
    let fingerprint = crate::client::runtime()?
        .block_on(interstice_net::transport::probe_fingerprint(
            addr,
            &home.identity,
        ))
        .map_err(|e| CliError::Unreachable {
            name: name.clone(),
            address: address.clone(),
            reason: e.to_string(),
            cli: home.identity.fingerprint(),
        })?;
    if let Some(expected) = expected
        && !expected.eq_ignore_ascii_case(&fingerprint)
    {
        return Err(CliError::Refused(format!(
            "the node at {address} presents key {fingerprint}, not {expected}: not added"
        )));
    }
    let id = interstice_net::transport::node_id_of(&fingerprint);
    let mut registry = home.root.load_registry()?;
    registry.add(NodeEntry {
        name: name.clone(),
        address: address.clone(),
        id: id.clone(),
        local: false,
    })?;
    home.trust(&fingerprint)?;
    home.root.save_registry(&registry)?;
    println!("added node `{name}` at {address}");
    println!("  id:  {id}");
    println!("  key: {fingerprint} (trusted from now on; check it with the node's owner)");
    println!(
        "  for it to answer, it must trust this CLI's key: {}",
        home.identity.fingerprint()
    );
    Ok(())
}

fn create(home: &Home, name: String, port: u16) -> Result<(), CliError> {
    let identity =
        NodeIdentity::generate().map_err(|e| CliError::Other(format!("generating a key: {e}")))?;
    register_local(home, &name, port, &identity)
}

/// Registers a local node of this key, listening on `port` of 127.0.0.1: its key and trust
/// files in its data directory (which may hold data already), this CLI as its owner, its
/// registry entry.
pub(crate) fn register_local(
    home: &Home,
    name: &str,
    port: u16,
    identity: &NodeIdentity,
) -> Result<(), CliError> {
    let id = identity.node_id();
    let entry = NodeEntry {
        name: name.to_string(),
        address: format!("127.0.0.1:{port}"),
        id: id.clone(),
        local: true,
    };
    let mut registry = home.root.load_registry()?;
    registry.add(entry.clone())?;
    let dir = home.root.node_dir(&id);
    identity.save(&dir).map_err(file_error(dir.clone()))?;
    // This CLI may reach it and administer it.
    let cli = TrustedPeers::default();
    cli.trust(home.identity.fingerprint());
    for file in ["trusted", "admins"] {
        let path = dir.join(file);
        cli.save(&path).map_err(file_error(path))?;
    }
    home.root.save_registry(&registry)?;
    println!("created node `{name}` ({id}) on {}", entry.address);
    println!("  key:  {}", identity.fingerprint());
    println!("  data: {}", dir.display());
    println!("start it with `interstice node start {name}`");
    Ok(())
}

#[derive(Resource)]
struct FrameLimit(Option<u32>);

fn stop_after(limit: Res<FrameLimit>, mut frames: Local<u32>, mut exit: MessageWriter<AppExit>) {
    *frames += 1;
    if limit.0.is_some_and(|max| *frames >= max) {
        exit.write(AppExit::Success);
    }
}

/// A node that cannot listen (its port is taken) has nothing to do: it stops with an error.
fn stop_if_not_listening(
    status: Res<interstice::network::NetworkStatus>,
    mut exit: MessageWriter<AppExit>,
) {
    if status.error.is_some() {
        exit.write(AppExit::error());
    }
}

fn start(home: &Home, node: &str, frames: Option<u32>, open: bool) -> Result<(), CliError> {
    let entry = home.node(node)?;
    if !entry.local {
        return Err(CliError::Usage(format!(
            "`{}` runs elsewhere ({}); only local nodes (`interstice node create`) start here",
            entry.name, entry.address
        )));
    }
    let dir = home.root.node_dir(&entry.id);
    let identity = NodeIdentity::load_or_create(&dir)
        .map(Arc::new)
        .map_err(file_error(dir.clone()))?;
    let load = |file: &str| {
        let path = dir.join(file);
        TrustedPeers::load(&path).map_err(file_error(path))
    };
    let mut network = NetworkConfig::new(resolve(&entry.address)?, identity);
    network.trusted = load("trusted")?;
    network.admins = load("admins")?;
    network.open = open;
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::log::LogPlugin::default(),
        bevy::app::TerminalCtrlCHandlerPlugin,
        IntersticePlugin::default()
            .with_storage(StorageConfig::new(&dir))
            .with_network(network),
    ))
    .insert_resource(FrameLimit(frames))
    .add_systems(Last, (stop_after, stop_if_not_listening));
    interstice::run_single_threaded(&mut app);
    info!(
        "node `{}` ({}) listening on {}, data in {}; Ctrl-C stops it",
        entry.name,
        entry.id,
        entry.address,
        dir.display()
    );
    if open {
        info!(
            "open: peers with unknown keys may call public reducers, run public queries and \
             subscribe to public tables (nothing else)"
        );
    }
    app.set_runner(|app| interstice::run_node(app, Duration::from_secs_f64(1.0 / 60.0)));
    match app.run() {
        // 130: Ctrl-C, a clean stop (everything committed was already made durable).
        AppExit::Success => {
            info!("node `{}` stopped", entry.name);
            Ok(())
        }
        AppExit::Error(code) if code.get() == 130 => {
            info!("node `{}` stopped (Ctrl-C)", entry.name);
            Ok(())
        }
        AppExit::Error(_) => Err(CliError::Other(format!(
            "node `{}` stopped with an error (see the log above)",
            entry.name
        ))),
    }
}

fn ping(home: &Home, node: &NodeEntry, count: u32) -> Result<(), CliError> {
    let name = node.name.clone();
    with_node(home, node, |peer| async move {
        let mut rtts = Vec::new();
        for _ in 0..count.max(1) {
            let started = Instant::now();
            match ask(&peer, &Message::Ping { nonce: 1 }).await? {
                Message::Pong { .. } => rtts.push(started.elapsed()),
                other => return Err(CliError::Other(format!("unexpected answer {other:?}"))),
            }
        }
        rtts.sort();
        println!(
            "node `{name}` ({}): {} pings, min {:?}, median {:?}, max {:?}",
            peer.node_id,
            rtts.len(),
            rtts[0],
            rtts[rtts.len() / 2],
            rtts[rtts.len() - 1]
        );
        // A node older than the status request answers with an error: say so, not fail.
        let storage = match ask(&peer, &Message::StatusRequest { request: 1 }).await {
            Ok(Message::Status { storage, .. }) => crate::text::printable(&storage).into_owned(),
            Ok(other) => format!(
                "unknown (answered {})",
                crate::text::printable(&format!("{other:?}"))
            ),
            Err(e) => format!("unknown ({e})"),
        };
        println!("storage: {storage}");
        Ok(())
    })
}

/// A node's public schemas, as a node binding named after it.
pub fn schema(home: &Home, node: &NodeEntry) -> Result<String, CliError> {
    let modules = public_schemas(home, node)?;
    let binding = interstice::abi::NodeBinding {
        node: interstice::abi::NodeDependency {
            name: node.name.replace('-', "_"),
            address: node.address.clone(),
        },
        modules,
    };
    toml::to_string_pretty(&binding).map_err(|e| CliError::Other(e.to_string()))
}

/// The public schemas a node serves.
pub fn public_schemas(
    home: &Home,
    node: &NodeEntry,
) -> Result<Vec<interstice::ModuleSchema>, CliError> {
    with_node(home, node, |peer| async move {
        crate::calls::schemas(&peer).await
    })
}
