//! A node's identity: a key pair and a self-signed certificate, named by the SHA-256
//! fingerprint of the certificate. Peers trust each other by fingerprint (trust on first use,
//! or given explicitly), never through a certificate authority.
//!
//! The node id — the UUID modules see in `connect(node_id)` — is derived from the fingerprint
//! ([`node_id_of`]), so it is bound to the key: a peer cannot claim another node's id without
//! its key.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A node's key and certificate.
#[derive(Debug)]
pub struct NodeIdentity {
    certificate: CertificateDer<'static>,
    key: Vec<u8>,
}

/// The hex SHA-256 of a DER certificate: how peers name and pin each other.
pub fn fingerprint(certificate: &[u8]) -> String {
    Sha256::digest(certificate)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use interstice_abi::node_id_of;

/// Writes `bytes` to `path` readable by the owner only (the private key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl NodeIdentity {
    /// A fresh identity.
    pub fn generate() -> Result<NodeIdentity, rcgen::Error> {
        let certified = rcgen::generate_simple_self_signed(vec!["interstice-node".to_string()])?;
        Ok(NodeIdentity {
            certificate: certified.cert.der().clone(),
            key: certified.signing_key.serialize_der(),
        })
    }

    /// The identity kept in `dir` (`identity.cert.der`, `identity.key.der`), created on first
    /// use. Two processes creating it at once end up with the same one: the key file is
    /// created exclusively, and whoever loses waits for the winner's certificate.
    pub fn load_or_create(dir: &Path) -> std::io::Result<NodeIdentity> {
        if let Some(identity) = Self::load_complete(dir)? {
            return Ok(identity);
        }
        if !dir.join("identity.key.der").exists() {
            let identity = NodeIdentity::generate().map_err(std::io::Error::other)?;
            match identity.save(dir) {
                Ok(()) => return Ok(identity),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        // Someone else is writing it (or a crash left half of it): give them a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if let Some(identity) = Self::load_complete(dir)? {
                return Ok(identity);
            }
        }
        Err(std::io::Error::other(format!(
            "{} holds half an identity (certificate or key missing); refusing to replace it",
            dir.display()
        )))
    }

    /// The identity in `dir` if both of its files are there.
    fn load_complete(dir: &Path) -> std::io::Result<Option<NodeIdentity>> {
        let cert_path = dir.join("identity.cert.der");
        let key_path = dir.join("identity.key.der");
        if !(cert_path.is_file() && key_path.is_file()) {
            return Ok(None);
        }
        Ok(Some(NodeIdentity {
            certificate: CertificateDer::from(std::fs::read(&cert_path)?),
            key: std::fs::read(&key_path)?,
        }))
    }

    /// Writes this identity into `dir` (created if needed); refuses to replace one there.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_private(&dir.join("identity.key.der"), &self.key)?;
        // The certificate last, renamed into place whole: its presence says the identity is
        // complete, to this process and to any other loading it at the same time.
        let partial = dir.join(format!("identity.cert.der.{}.partial", std::process::id()));
        std::fs::write(&partial, self.certificate.as_ref())?;
        std::fs::rename(&partial, dir.join("identity.cert.der"))
    }

    /// This node's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.certificate.as_ref())
    }

    /// This node's id (a UUID bound to its key, see [`node_id_of`]).
    pub fn node_id(&self) -> String {
        node_id_of(&self.fingerprint())
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    pub(crate) fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_creating_one_identity_at_once_share_it() {
        let dir =
            std::env::temp_dir().join(format!("interstice-identity-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    NodeIdentity::load_or_create(&dir).map(|i| i.fingerprint())
                })
            })
            .collect();
        let prints: Vec<String> = racers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect();
        assert!(prints.windows(2).all(|w| w[0] == w[1]), "{prints:?}");
        assert_eq!(
            NodeIdentity::load_or_create(&dir).unwrap().fingerprint(),
            prints[0]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_an_identity_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("interstice-identity-half-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("identity.key.der"), b"key without a certificate").unwrap();
        let refused = NodeIdentity::load_or_create(&dir).unwrap_err();
        assert!(
            refused.to_string().contains("half an identity"),
            "{refused}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn node_ids_are_uuids_bound_to_the_fingerprint() {
        let a = node_id_of(&"ab".repeat(32));
        assert_eq!(a, "abababab-abab-8bab-abab-abababababab");
        assert_ne!(a, node_id_of(&"ac".repeat(32)));
        let id = node_id_of(&fingerprint(b"some certificate"));
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
