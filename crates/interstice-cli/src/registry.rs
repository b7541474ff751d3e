//! Where nodes live on this machine: the data root, its `nodes.toml` registry of known nodes,
//! and one directory per node.
//!
//! ```text
//! <OS data dir>/interstice/          (or an explicit root)
//!   nodes.toml                       [[node]] name, address, id (UUID), local
//!   nodes/<node id>/                 a node's data directory (see `Storage`)
//! ```

use interstice::core::disk::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the registry could not be used.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The OS has no data directory for this user.
    #[error("no data directory is known for this user; give one explicitly")]
    NoDataDir,
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `nodes.toml` is not valid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A node with this name or id is registered already.
    #[error("a node named or identified `{0}` is registered already")]
    Duplicate(String),
    /// No node has this name or id.
    #[error("no node named or identified `{0}`")]
    NotFound(String),
    /// Names are non-empty, at most 64 characters of letters, digits, `-` and `_`.
    #[error("invalid node name `{0}`: use letters, digits, '-' and '_' (at most 64)")]
    InvalidName(String),
}

/// One known node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Friendly name.
    pub name: String,
    /// `host:port` it listens on.
    pub address: String,
    /// Its id (a UUID), which names its data directory when it is local.
    pub id: String,
    /// Whether its data lives on this machine (created here rather than added).
    #[serde(default)]
    pub local: bool,
}

/// The contents of `nodes.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistry {
    /// Known nodes, in the order they were added.
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeEntry>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl NodeRegistry {
    /// The node with this name or id.
    pub fn find(&self, name_or_id: &str) -> Option<&NodeEntry> {
        self.nodes
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
    }

    /// Registers a node; names and ids are unique.
    pub fn add(&mut self, entry: NodeEntry) -> Result<(), RegistryError> {
        if !valid_name(&entry.name) {
            return Err(RegistryError::InvalidName(entry.name));
        }
        if let Some(clash) = [&entry.name, &entry.id]
            .into_iter()
            .find(|key| self.find(key).is_some())
        {
            return Err(RegistryError::Duplicate(clash.clone()));
        }
        self.nodes.push(entry);
        Ok(())
    }

    /// Forgets a node and returns it.
    pub fn remove(&mut self, name_or_id: &str) -> Result<NodeEntry, RegistryError> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name_or_id || n.id == name_or_id)
            .ok_or_else(|| RegistryError::NotFound(name_or_id.into()))?;
        Ok(self.nodes.remove(i))
    }

    /// Renames a node.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), RegistryError> {
        if !valid_name(new) {
            return Err(RegistryError::InvalidName(new.into()));
        }
        if self.find(new).is_some() {
            return Err(RegistryError::Duplicate(new.into()));
        }
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == old || n.id == old)
            .ok_or_else(|| RegistryError::NotFound(old.into()))?;
        node.name = new.into();
        Ok(())
    }
}

/// The root under which nodes keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoot {
    root: PathBuf,
}

impl DataRoot {
    /// The OS data directory's `interstice` folder (`~/.local/share/interstice` on Linux).
    pub fn os_default() -> Result<DataRoot, RegistryError> {
        interstice::core::storage::os_data_root()
            .map(DataRoot::at)
            .ok_or(RegistryError::NoDataDir)
    }

    /// An explicit root (tests, games that embed the plugin).
    pub fn at(root: impl Into<PathBuf>) -> DataRoot {
        DataRoot { root: root.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `nodes.toml`.
    pub fn registry_path(&self) -> PathBuf {
        self.root.join("nodes.toml")
    }

    /// The data directory of the node with this id.
    pub fn node_dir(&self, id: &str) -> PathBuf {
        self.root.join("nodes").join(id)
    }

    /// Reads `nodes.toml` (an absent file is an empty registry).
    pub fn load_registry(&self) -> Result<NodeRegistry, RegistryError> {
        let path = self.registry_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(NodeRegistry::default());
            }
            Err(source) => return Err(RegistryError::Io { path, source }),
        };
        toml::from_str(&text).map_err(|e| RegistryError::Invalid {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes `nodes.toml` atomically.
    pub fn save_registry(&self, registry: &NodeRegistry) -> Result<(), RegistryError> {
        let path = self.registry_path();
        let text = toml::to_string_pretty(registry).map_err(|e| RegistryError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::create_dir_all(&self.root).map_err(|source| RegistryError::Io {
            path: self.root.clone(),
            source,
        })?;
        write_atomic(&path, text.as_bytes()).map_err(|source| RegistryError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_created_found_renamed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = DataRoot::at(dir.path());
        assert_eq!(root.load_registry().unwrap(), NodeRegistry::default());
        let local = |name: &str, address: &str, id: &str| NodeEntry {
            name: name.into(),
            address: address.into(),
            id: id.into(),
            local: true,
        };
        let a = local("alpha", "127.0.0.1:8080", "a1");
        let mut registry = root.load_registry().unwrap();
        registry.add(a.clone()).unwrap();
        assert!(matches!(
            registry.add(local("alpha", "127.0.0.1:9000", "a2")),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            registry.add(local("bad name", "x", "a3")),
            Err(RegistryError::InvalidName(_))
        ));
        root.save_registry(&registry).unwrap();

        let mut registry = root.load_registry().unwrap();
        assert_eq!(registry.find(&a.id), Some(&a));
        assert_eq!(root.node_dir(&a.id), dir.path().join("nodes").join("a1"));
        registry
            .add(NodeEntry {
                name: "remote".into(),
                address: "10.0.0.2:8080".into(),
                id: "c0ffee".into(),
                local: false,
            })
            .unwrap();
        registry.rename("alpha", "beta").unwrap();
        root.save_registry(&registry).unwrap();

        let text = std::fs::read_to_string(root.registry_path()).unwrap();
        assert!(
            text.contains("[[node]]") && text.contains("name = \"beta\""),
            "{text}"
        );
        let mut again = root.load_registry().unwrap();
        assert_eq!(again, registry);
        assert_eq!(again.remove("c0ffee").unwrap().name, "remote");
        assert!(matches!(
            again.remove("c0ffee"),
            Err(RegistryError::NotFound(_))
        ));
    }

    #[test]
    fn a_broken_registry_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = DataRoot::at(dir.path());
        std::fs::write(root.registry_path(), "[[node]]\nname = 3\n").unwrap();
        let err = root.load_registry().unwrap_err();
        assert!(err.to_string().contains("nodes.toml"), "{err}");
    }
}
