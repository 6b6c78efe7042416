//! TLS for client streams: the configured certificate, or one generated on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The PEM data is not a certificate chain and key.
    #[error("{path}: {error}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate and key are: configured, or generated in `<data_dir>/tls/`.
pub fn cert_paths(config: &Config) -> (PathBuf, PathBuf) {
    match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = config.data_dir.join("tls");
            (dir.join("cert.pem"), dir.join("key.pem"))
        }
    }
}

/// Writes a self-signed certificate for `domain` (and `localhost`) unless one exists.
/// Returns true if it generated one.
pub fn ensure_self_signed(cert: &Path, key: &Path, domain: &str) -> Result<bool, TlsError> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| TlsError::Io { path, error }
    };
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut names = vec![domain.to_string()];
    if domain != "localhost" {
        names.push("localhost".to_string());
    }
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::write(cert, generated.cert.pem()).map_err(io(cert))?;
    write_private(key, generated.signing_key.serialize_pem().as_bytes()).map_err(io(key))?;
    Ok(true)
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// Builds the rustls server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = |path: &Path, error: String| TlsError::Pem {
        path: path.to_path_buf(),
        error,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(cert, "no certificate found".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    // XEP-0368: direct TLS clients offer ALPN `xmpp-client`. One that offers only other
    // protocols is refused in the handshake; one that offers none is served.
    cfg.alpn_protocols = vec![b"xmpp-client".to_vec()];
    Ok(Arc::new(cfg))
}

/// The server's TLS configuration per `config`, generating a certificate if needed.
pub fn load(config: &Config) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert, key) = cert_paths(config);
    if config.tls.cert.is_none() && ensure_self_signed(&cert, &key, &config.domain)? {
        tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
    }
    server_config(&cert, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("t/cert.pem"), dir.path().join("t/key.pem"));
        assert!(ensure_self_signed(&c, &k, "example.com").unwrap());
        assert!(!ensure_self_signed(&c, &k, "example.com").unwrap());
        server_config(&c, &k).unwrap();
        std::fs::write(&c, "not pem").unwrap();
        assert!(matches!(server_config(&c, &k), Err(TlsError::Pem { .. })));
    }
}
