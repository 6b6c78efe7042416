//! Which server certificates the client trusts.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::ConnectError;

/// Which certificates a client accepts from the server.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The operating system's trusted roots (the usual choice).
    #[default]
    System,
    /// Certificates issued by these CAs (DER).
    Roots(Vec<CertificateDer<'static>>),
    /// Exactly this server certificate (DER), whoever issued it and whatever name it holds:
    /// for development against a server's self-signed certificate. The handshake is still
    /// verified, so only the holder of that certificate's key is accepted.
    Pinned(CertificateDer<'static>),
}

impl Trust {
    /// The CA certificates in a PEM file.
    pub fn ca_file(path: impl AsRef<Path>) -> Result<Trust, ConnectError> {
        Ok(Trust::Roots(read_pem(path.as_ref())?))
    }

    /// The first certificate of a PEM file, pinned (see [`Trust::Pinned`]).
    ///
    /// ```no_run
    /// let trust = lithos_client::Trust::pinned_file("lithos-data/tls/cert.pem").unwrap();
    /// ```
    pub fn pinned_file(path: impl AsRef<Path>) -> Result<Trust, ConnectError> {
        let certs = read_pem(path.as_ref())?;
        certs.into_iter().next().map(Trust::Pinned).ok_or_else(|| {
            ConnectError::Tls(format!("{}: no certificate", path.as_ref().display()))
        })
    }

    /// The rustls configuration for this trust.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        let config = match self {
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = rustls::RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(ConnectError::Tls(
                        "no trusted root certificates found on this system".into(),
                    ));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Roots(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs {
                    roots
                        .add(c.clone())
                        .map_err(|e| ConnectError::Tls(format!("a CA certificate: {e}")))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pinned(cert) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    cert: cert.clone(),
                    provider,
                }))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConnectError::Tls(format!("{}: {e}", path.display())))
}

/// Accepts exactly one certificate, and checks the handshake signatures with its key.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not the pinned one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
