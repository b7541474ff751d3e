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

/// The node id bound to a fingerprint: its first 128 bits as a UUID (version 8, the
/// application-defined layout).
pub fn node_id_of(fingerprint: &str) -> String {
    let hex: Vec<u8> = fingerprint
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| b.to_ascii_lowercase())
        .chain(std::iter::repeat(b'0'))
        .take(32)
        .collect();
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let variant = b"89ab"[usize::from(nibble(hex[16]) & 0x3)];
    let part = |r: std::ops::Range<usize>| String::from_utf8_lossy(&hex[r]).into_owned();
    format!(
        "{}-{}-8{}-{}{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        variant as char,
        part(17..20),
        part(20..32)
    )
}

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
    /// use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<NodeIdentity> {
        let cert_path = dir.join("identity.cert.der");
        let key_path = dir.join("identity.key.der");
        if cert_path.is_file() && key_path.is_file() {
            return Ok(NodeIdentity {
                certificate: CertificateDer::from(std::fs::read(&cert_path)?),
                key: std::fs::read(&key_path)?,
            });
        }
        if cert_path.exists() || key_path.exists() {
            return Err(std::io::Error::other(format!(
                "{} holds half an identity (certificate or key missing); refusing to replace it",
                dir.display()
            )));
        }
        let identity = NodeIdentity::generate().map_err(std::io::Error::other)?;
        identity.save(dir)?;
        Ok(identity)
    }

    /// Writes this identity into `dir` (created if needed); refuses to replace one there.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_private(&dir.join("identity.key.der"), &self.key)?;
        // The certificate last: its presence says the identity is complete.
        std::fs::write(dir.join("identity.cert.der"), self.certificate.as_ref())
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
    fn node_ids_are_uuids_bound_to_the_fingerprint() {
        let a = node_id_of(&"ab".repeat(32));
        assert_eq!(a, "abababab-abab-8bab-abab-abababababab");
        assert_ne!(a, node_id_of(&"ac".repeat(32)));
        let id = node_id_of(&fingerprint(b"some certificate"));
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
