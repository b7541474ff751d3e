//! `interstice node restore`: a new local node holding another's logged tables as of a past
//! transaction, rebuilt from its history (`interstice_core::storage::history::restore`).

use crate::home::{CliError, Home};
use crate::point::Point;
use interstice::NodeIdentity;
use interstice::core::storage::history;
use interstice::core::{EngineConfig, Modules};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

/// The schemas of the modules installed in a data directory, read without running them.
fn installed_schemas(dir: &Path) -> Result<Vec<interstice::abi::ModuleSchema>, CliError> {
    let modules_dir = dir.join("modules");
    let engine = Modules::new(EngineConfig::default())
        .map_err(|e| CliError::Other(format!("the wasm engine: {e}")))?;
    let mut files: Vec<_> = match std::fs::read_dir(&modules_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CliError::Other(format!("{}: {e}", modules_dir.display()))),
    };
    files.sort();
    files
        .iter()
        .map(|path| {
            let wasm = std::fs::read(path)
                .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
            engine
                .inspect(&wasm)
                .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
        })
        .collect()
}

/// A free UDP port on 127.0.0.1.
fn free_port() -> Result<u16, CliError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Other(format!("finding a free port: {e}")))
}

/// The data directory of the local node `node`, which must be stopped: `what` (a command)
/// reads it, and a running node owns it.
pub fn stopped_node_dir(home: &Home, node: &str, what: &str) -> Result<PathBuf, CliError> {
    let entry = home.node(node)?;
    if !entry.local {
        return Err(CliError::Usage(format!(
            "`{node}` runs elsewhere: {what} reads a local node's data directory"
        )));
    }
    // A running node owns its data directory: its port is taken while it runs.
    let address: SocketAddr = entry
        .address
        .parse()
        .map_err(|e| CliError::Other(format!("the address of `{node}`: {e}")))?;
    if UdpSocket::bind(address).is_err() {
        return Err(CliError::Refused(format!(
            "node `{node}` is running ({address} is taken): stop it first, {what} reads its \
             data directory"
        )));
    }
    Ok(home.root.node_dir(&entry.id))
}

/// `interstice node restore <node> --to TX|TIME --into NEW_NAME [--port P]`.
pub fn restore(
    home: &Home,
    node: &str,
    to: Point,
    into: &str,
    port: Option<u16>,
) -> Result<(), CliError> {
    if home.root.load_registry()?.find(into).is_some() {
        return Err(CliError::Usage(format!(
            "a node named `{into}` exists already: pick another name"
        )));
    }
    let source = stopped_node_dir(home, node, "restore")?;
    let logged = history::logged_tables_of(&installed_schemas(&source)?);
    let identity =
        NodeIdentity::generate().map_err(|e| CliError::Other(format!("generating a key: {e}")))?;
    let port = match port {
        Some(port) => port,
        None => free_port()?,
    };
    let target = home.root.node_dir(&identity.node_id());
    let to = match to {
        Point::Tx(tx) => tx,
        Point::Time(ms) => history::last_seq_at(&source, ms)
            .map_err(|e| CliError::Refused(format!("cannot restore `{node}`: {e}")))?
            .ok_or_else(|| {
                CliError::Refused(format!(
                    "cannot restore `{node}`: nothing it kept was committed by logical time \
                     {ms} ms"
                ))
            })?,
    };
    let restored = history::restore(&source, &logged, to, &target)
        .map_err(|e| CliError::Refused(format!("cannot restore `{node}`: {e}")))?;
    crate::node::register_local(home, into, port, &identity)?;
    println!(
        "`{into}` holds the logged tables of `{node}` as of transaction {to}: {} transactions \
         replayed when it starts (logical time {} ms), {} modules; stateful tables start empty",
        restored.transactions, restored.time, restored.modules
    );
    Ok(())
}
