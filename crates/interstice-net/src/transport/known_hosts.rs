//! Trust on first use for nodes reached by address: the key a node presented the first time
//! it was dialed is pinned to its address (in a file, like SSH's `known_hosts`), and every
//! later connection to that address must present the same key. An [`Invite`] carries the
//! address and the key together, so nothing is left to first use.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use thiserror::Error;

/// Why a node's key was not accepted (or could not be remembered).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PinError {
    /// The node at this address presents another key than the one pinned for it.
    #[error(
        "the node at {address} presents key {presented}, but key {pinned} was pinned for that \
         address{where_}: refusing it. If its owner really changed its key, remove that line \
         and join again",
        where_ = .file.as_ref().map(|f| format!(" (in {})", f.display())).unwrap_or_default()
    )]
    KeyChanged {
        /// The address dialed.
        address: SocketAddr,
        /// The fingerprint pinned for it.
        pinned: String,
        /// The fingerprint it presented.
        presented: String,
        /// The file holding the pin.
        file: Option<PathBuf>,
    },
    /// The pins could not be read or written.
    #[error("known hosts file {}: {message}", .file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// What [`KnownHosts::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// The key is the one pinned for the address.
    Known,
    /// Nothing was pinned for the address: this key is, from now on.
    FirstUse,
}

/// Keys pinned to addresses, shared (clones see the same pins) and saved to a file when one
/// is given.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    file: Option<PathBuf>,
    pins: Arc<RwLock<BTreeMap<SocketAddr, String>>>,
}

fn is_fingerprint(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl KnownHosts {
    /// Pins kept in memory only.
    pub fn in_memory() -> KnownHosts {
        KnownHosts::default()
    }

    /// Reads the pins in `file` (one `ADDRESS FINGERPRINT` per line; blank lines and `#`
    /// comments ignored; a missing file has none) and saves every new pin there.
    pub fn load(file: &Path) -> Result<KnownHosts, PinError> {
        let error = |message: String| PinError::File {
            file: file.to_path_buf(),
            message,
        };
        let mut pins = BTreeMap::new();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                for (number, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    let mut words = line.split_whitespace();
                    let (Some(address), Some(print), None) =
                        (words.next(), words.next(), words.next())
                    else {
                        return Err(error(format!(
                            "line {}: expected `ADDRESS FINGERPRINT`, found {line:?}",
                            number + 1
                        )));
                    };
                    let address: SocketAddr = address
                        .parse()
                        .map_err(|e| error(format!("line {}: {address:?}: {e}", number + 1)))?;
                    if !is_fingerprint(print) {
                        return Err(error(format!(
                            "line {}: not a SHA-256 fingerprint: {print:?}",
                            number + 1
                        )));
                    }
                    pins.insert(address, print.to_ascii_lowercase());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(e.to_string())),
        }
        Ok(KnownHosts {
            file: Some(file.to_path_buf()),
            pins: Arc::new(RwLock::new(pins)),
        })
    }

    /// The file the pins are saved in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The key pinned for `address`.
    pub fn pinned(&self, address: SocketAddr) -> Option<String> {
        self.pins.read().ok()?.get(&address).cloned()
    }

    /// Accepts `presented` for `address` if it is the pinned key, or pins it if none is (trust
    /// on first use, saved at once).
    pub fn check(&self, address: SocketAddr, presented: &str) -> Result<PinOutcome, PinError> {
        match self.pinned(address) {
            Some(pinned) if pinned.eq_ignore_ascii_case(presented) => Ok(PinOutcome::Known),
            Some(pinned) => Err(self.changed(address, pinned, presented)),
            None => {
                self.insert(address, presented)?;
                Ok(PinOutcome::FirstUse)
            }
        }
    }

    /// Pins `fingerprint` for `address` (from an [`Invite`]); refused if another key is pinned
    /// there already.
    pub fn pin(&self, address: SocketAddr, fingerprint: &str) -> Result<(), PinError> {
        match self.pinned(address) {
            Some(pinned) if pinned.eq_ignore_ascii_case(fingerprint) => Ok(()),
            Some(pinned) => Err(self.changed(address, pinned, fingerprint)),
            None => self.insert(address, fingerprint),
        }
    }

    fn changed(&self, address: SocketAddr, pinned: String, presented: &str) -> PinError {
        PinError::KeyChanged {
            address,
            pinned,
            presented: presented.to_ascii_lowercase(),
            file: self.file.clone(),
        }
    }

    fn insert(&self, address: SocketAddr, fingerprint: &str) -> Result<(), PinError> {
        let text = {
            let Ok(mut pins) = self.pins.write() else {
                return Ok(());
            };
            pins.insert(address, fingerprint.to_ascii_lowercase());
            let mut text = String::from(
                "# Keys of the nodes reached by address, pinned the first time they answered.\n",
            );
            for (address, print) in pins.iter() {
                text.push_str(&format!("{address} {print}\n"));
            }
            text
        };
        let Some(file) = &self.file else {
            return Ok(());
        };
        let error = |e: std::io::Error| PinError::File {
            file: file.clone(),
            message: e.to_string(),
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(error)?;
        std::fs::rename(&tmp, file).map_err(error)
    }
}

/// An invitation to a node: its address and its key's fingerprint, written `ADDRESS/FINGERPRINT`
/// (`203.0.113.7:8090/3f9a…`, 64 hex digits). Joining with it pins the key before the first
/// connection, so not even the first one is taken on trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Where the node listens.
    pub address: SocketAddr,
    /// Its key's SHA-256 fingerprint (lower-case hex).
    pub fingerprint: String,
}

impl std::fmt::Display for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.fingerprint)
    }
}

impl std::str::FromStr for Invite {
    type Err = String;

    fn from_str(text: &str) -> Result<Invite, String> {
        let text = text.trim();
        let Some((address, print)) = text.rsplit_once('/') else {
            return Err(format!(
                "{text:?} is not an invite: expected ADDRESS/FINGERPRINT, such as \
                 127.0.0.1:8090/{}",
                "0".repeat(64)
            ));
        };
        let address: SocketAddr = address
            .parse()
            .map_err(|e| format!("the invite's address {address:?}: {e}"))?;
        if !is_fingerprint(print) {
            return Err(format!(
                "the invite's key {print:?} is not a SHA-256 fingerprint (64 hex digits)"
            ));
        }
        Ok(Invite {
            address,
            fingerprint: print.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn first_use_pins_and_a_changed_key_is_refused_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested").join("known_hosts");
        let hosts = KnownHosts::load(&file).unwrap();
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        assert_eq!(hosts.check(address(1), &a), Ok(PinOutcome::FirstUse));
        assert_eq!(hosts.check(address(1), &a), Ok(PinOutcome::Known));
        // Another address is another node.
        assert_eq!(hosts.check(address(2), &b), Ok(PinOutcome::FirstUse));
        let again = KnownHosts::load(&file).unwrap();
        assert_eq!(again.pinned(address(1)), Some(a.clone()));
        let refused = again.check(address(1), &b).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&a) && message.contains(&b) && message.contains("known_hosts"),
            "{message}"
        );
        assert_eq!(again.pin(address(1), &a), Ok(()));
        assert!(again.pin(address(1), &b).is_err());
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            format!("# pins\n127.0.0.1:1 {}\nnonsense\n", "ab".repeat(32)),
        )
        .unwrap();
        let error = KnownHosts::load(&file).unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        std::fs::write(&file, "127.0.0.1:1 abc\n").unwrap();
        let error = KnownHosts::load(&file).unwrap_err().to_string();
        assert!(error.contains("fingerprint"), "{error}");
    }

    #[test]
    fn invites_round_trip_and_bad_ones_say_the_form() {
        let invite = Invite {
            address: address(8090),
            fingerprint: "0f".repeat(32),
        };
        let text = invite.to_string();
        assert_eq!(text.parse::<Invite>(), Ok(invite));
        let ipv6: Invite = format!("[::1]:8090/{}", "AB".repeat(32)).parse().unwrap();
        assert_eq!(ipv6.fingerprint, "ab".repeat(32));
        for bad in ["127.0.0.1:8090", "127.0.0.1:8090/xyz", "nowhere/00"] {
            assert!(bad.parse::<Invite>().is_err(), "{bad}");
        }
        let error = "127.0.0.1:8090".parse::<Invite>().unwrap_err();
        assert!(error.contains("ADDRESS/FINGERPRINT"), "{error}");
    }
}
