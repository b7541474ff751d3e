//! The CLI's own state under the data root: its key (`cli/identity.*.der`), the nodes it
//! trusts (`cli/trusted`), and the node registry (`nodes.toml`, `nodes/<node id>/`).

use crate::registry::{DataRoot, NodeEntry, RegistryError};
use interstice::{NodeIdentity, TrustedPeers};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why a command failed. Printed as `error: ...` with exit code 1.
#[derive(Debug, Error)]
pub enum CliError {
    /// The registry or data root.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No node of that name or id.
    #[error(
        "unknown node `{0}`: `interstice node list` shows the known ones; `interstice node add <name> <address>` adds one"
    )]
    UnknownNode(String),
    /// A node address that does not resolve.
    #[error("`{0}` is not an address (host:port)")]
    BadAddress(String),
    /// The node did not answer.
    #[error(
        "cannot reach node `{name}` at {address}: {reason}\n  is it running (`interstice node start {name}`), and does it trust this CLI's key {cli}?"
    )]
    Unreachable {
        /// Its name.
        name: String,
        /// Where it was looked for.
        address: String,
        /// What the transport said.
        reason: String,
        /// The CLI's fingerprint.
        cli: String,
    },
    /// The node answered, and said no.
    #[error("{0}")]
    Refused(String),
    /// The command was used wrongly (bad arguments for the target, ...).
    #[error("{0}")]
    Usage(String),
    /// Building a module failed.
    #[error("build failed: {0}")]
    Build(String),
    /// Something else.
    #[error("{0}")]
    Other(String),
}

/// The CLI's data root, identity and trust.
#[derive(Clone)]
pub struct Home {
    /// The data root.
    pub root: DataRoot,
    /// The CLI's key.
    pub identity: Arc<NodeIdentity>,
}

/// Maps an I/O error on `path` to [`CliError::File`].
pub fn file_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> CliError {
    move |source| CliError::File { path, source }
}

impl Home {
    /// Opens the data root (`dir`, or the OS default), creating the CLI's key on first use.
    pub fn open(dir: Option<PathBuf>) -> Result<Home, CliError> {
        let root = match dir {
            Some(dir) => DataRoot::at(dir),
            None => DataRoot::os_default()?,
        };
        let cli_dir = root.path().join("cli");
        let identity = NodeIdentity::load_or_create(&cli_dir)
            .map(Arc::new)
            .map_err(file_error(cli_dir))?;
        Ok(Home { root, identity })
    }

    fn trust_file(&self) -> PathBuf {
        self.root.path().join("cli").join("trusted")
    }

    /// The keys the CLI trusts: its trust file, plus the keys of local nodes.
    pub fn trusted(&self) -> Result<TrustedPeers, CliError> {
        let path = self.trust_file();
        let trusted = TrustedPeers::load(&path).map_err(file_error(path))?;
        for entry in self.root.load_registry()?.nodes.iter().filter(|e| e.local) {
            if let Ok(identity) = NodeIdentity::load_or_create(&self.root.node_dir(&entry.id)) {
                trusted.trust(identity.fingerprint());
            }
        }
        Ok(trusted)
    }

    /// Trusts a key from now on (`node add`).
    pub fn trust(&self, fingerprint: &str) -> Result<(), CliError> {
        let path = self.trust_file();
        let trusted = TrustedPeers::load(&path).map_err(file_error(path.clone()))?;
        trusted.trust(fingerprint);
        trusted.save(&path).map_err(file_error(path))
    }

    /// The registered node of that name or id.
    pub fn node(&self, name_or_id: &str) -> Result<NodeEntry, CliError> {
        self.root
            .load_registry()?
            .find(name_or_id)
            .cloned()
            .ok_or_else(|| CliError::UnknownNode(name_or_id.to_string()))
    }
}

/// Resolves `host:port`.
pub fn resolve(address: &str) -> Result<SocketAddr, CliError> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::BadAddress(address.to_string()))
}
