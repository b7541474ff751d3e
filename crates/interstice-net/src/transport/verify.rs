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
}

impl Pinned {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        if self.trusted.accepts(end_entity) {
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
