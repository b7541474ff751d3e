//! A node's identity: a key pair and a self-signed certificate, named by the SHA-256
//! fingerprint of the certificate. Peers trust each other by fingerprint (trust on first use,
//! or given explicitly), never through a certificate authority.

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
        let identity = NodeIdentity::generate().map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(&key_path, &identity.key)?;
        std::fs::write(&cert_path, identity.certificate.as_ref())?;
        Ok(identity)
    }

    /// This node's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.certificate.as_ref())
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}
