//! Certificate checks pinned to trusted fingerprints, for both ends of a connection.

use super::identity::fingerprint;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, Error, SignatureScheme};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// The fingerprints a node accepts connections from and to. Shared, so trusting a peer
/// (`node add`) takes effect for the next handshake.
#[derive(Debug, Clone, Default)]
pub struct TrustedPeers(Arc<RwLock<BTreeSet<String>>>);

impl TrustedPeers {
    /// Trusts a fingerprint.
    pub fn trust(&self, fingerprint: impl Into<String>) {
        if let Ok(mut set) = self.0.write() {
            set.insert(fingerprint.into());
        }
    }

    /// Stops trusting a fingerprint.
    pub fn revoke(&self, fingerprint: &str) {
        if let Ok(mut set) = self.0.write() {
            set.remove(fingerprint);
        }
    }

    /// Reads a trust file: one hex fingerprint per line; blank lines and `#` comments are
    /// ignored. A missing file is an empty set; a line that is not a SHA-256 fingerprint is an
    /// error naming its line.
    pub fn load(path: &std::path::Path) -> std::io::Result<TrustedPeers> {
        let peers = TrustedPeers::default();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(peers),
            Err(e) => return Err(e),
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}:{}: not a SHA-256 fingerprint: {line:?}",
                        path.display(),
                        number + 1
                    ),
                ));
            }
            peers.trust(line.to_ascii_lowercase());
        }
        Ok(peers)
    }

    /// Writes the trust file read by [`TrustedPeers::load`] (atomically: a temporary file
    /// renamed over it).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut text =
            String::from("# Fingerprints of the nodes this node trusts, one per line.\n");
        for print in self.fingerprints() {
            text.push_str(&print);
            text.push('\n');
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// The trusted fingerprints, sorted.
    pub fn fingerprints(&self) -> Vec<String> {
        self.0
            .read()
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a fingerprint is trusted.
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.0.read().is_ok_and(|set| set.contains(fingerprint))
    }

    /// Whether a certificate belongs to a trusted peer.
    pub fn accepts(&self, certificate: &CertificateDer<'_>) -> bool {
        let print = fingerprint(certificate.as_ref());
        self.0.read().is_ok_and(|set| set.contains(&print))
    }
}

fn untrusted() -> Error {
    Error::General("peer certificate is not trusted by this node".into())
}

/// Checks the other side's certificate against the trusted fingerprints, as a client (server
/// names are ignored: nodes are named by their keys) and as a server (a client certificate is
/// required).
#[derive(Debug)]
pub(crate) struct Pinned {
    pub trusted: TrustedPeers,
    pub provider: Arc<CryptoProvider>,
    /// Trust on first use: record the certificate's fingerprint here and accept it (only for
    /// [`probe_fingerprint`](super::endpoint::probe_fingerprint), which sends nothing over
    /// such a connection).
    pub first_use: Option<Arc<std::sync::Mutex<Option<String>>>>,
    /// Accept any key: an open node's door for strangers
    /// ([`Admission::AnyKey`](super::endpoint::Admission::AnyKey)), or a dial that pins the key
    /// itself afterwards ([`Dial::AnyKey`](super::endpoint::Dial::AnyKey)). The peer still
    /// proves that it holds the key it presents (TLS checks its signature); only *which* key
    /// is left to the caller.
    pub any_key: bool,
}

impl Pinned {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        if let Some(seen) = &self.first_use {
            if let Ok(mut seen) = seen.lock() {
                *seen = Some(fingerprint(end_entity.as_ref()));
            }
            return Ok(());
        }
        if self.any_key || self.trusted.accepts(end_entity) {
            Ok(())
        } else {
            Err(untrusted())
        }
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_files_round_trip_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("interstice-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trusted");
        assert!(TrustedPeers::load(&path).unwrap().fingerprints().is_empty());
        let peers = TrustedPeers::default();
        peers.trust("ab".repeat(32));
        peers.trust("cd".repeat(32));
        peers.save(&path).unwrap();
        let back = TrustedPeers::load(&path).unwrap();
        assert_eq!(back.fingerprints(), peers.fingerprints());
        std::fs::write(
            &path,
            format!("{}\n# a comment\n\nnot-a-key\n", "ab".repeat(32)),
        )
        .unwrap();
        let error = TrustedPeers::load(&path).unwrap_err().to_string();
        assert!(error.contains(":4:"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
