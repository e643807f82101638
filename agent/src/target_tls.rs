//! TLS for `wss://` targets: rustls (ring) trusting the system's roots plus the CAs of
//! `--target-ca`, and the socket type a session runs on: plain TCP, or TLS over TCP
//! (boxed, so a plain session does not carry the TLS state's size).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Why the TLS connector for `wss://` targets cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetTlsError {
    /// The `--target-ca` file could not be read or holds a malformed PEM.
    #[error("cannot read certificates from {}: {source}", path.display())]
    Read {
        /// The `--target-ca` path.
        path: PathBuf,
        /// The reader's reason.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no PEM certificate.
    #[error("no PEM certificate in {}", path.display())]
    NoCertificate {
        /// The `--target-ca` path.
        path: PathBuf,
    },
    /// A certificate is not usable as a trust anchor.
    #[error("unusable CA certificate in {}: {source}", path.display())]
    Unusable {
        /// The `--target-ca` path.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// A connector for `wss://` targets: the system's roots, plus every certificate in
/// `extra_ca` (a PEM file; for targets with a private or self-signed CA).
pub fn connector(extra_ca: Option<&Path>) -> Result<TlsConnector, TargetTlsError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system stores are skipped: --target-ca may be all that is needed.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|source| TargetTlsError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if certs.is_empty() {
            return Err(TargetTlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        for c in certs {
            roots.add(c).map_err(|source| TargetTlsError::Unusable {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TargetTlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// What a `wss://` session needs: the connector and the name to verify in the
/// target's certificate.
#[derive(Clone)]
pub struct TargetTls {
    /// Shared by every session of the run.
    pub connector: TlsConnector,
    /// The target URL's host (a DNS name or an IP address).
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for TargetTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TargetTls {
    /// The TLS handshake over a connected socket.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<Stream> {
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A session's socket.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("wsload-target-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(e) = connector(Some(&empty)) else {
            panic!("accepted a file without certificates")
        };
        assert!(
            matches!(&e, TargetTlsError::NoCertificate { path } if *path == empty),
            "{e}"
        );
        let missing = dir.join("missing.pem");
        let Err(e) = connector(Some(&missing)) else {
            panic!("accepted a missing file")
        };
        assert!(
            matches!(&e, TargetTlsError::Read { path, .. } if *path == missing),
            "{e}"
        );
        assert!(connector(None).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
