//! Dialing a coordinator: the endpoint for its URL, with the optional TLS of the gRPC
//! listener (rustls via tonic: the CA that signed the coordinator's certificate and
//! the name to verify).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Why a coordinator URL or its TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadCa {
        /// The `--tls-ca` path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The URL is not one tonic can dial.
    #[error("bad URL {url}: {source}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// tonic's reason.
        source: tonic::transport::Error,
    },
    /// The TLS settings were refused.
    #[error("TLS configuration: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// An `https://` URL without a CA to verify the coordinator with.
    #[error("{url} is https://: give --tls-ca (the CA of its certificate)")]
    HttpsWithoutCa {
        /// The URL as given.
        url: String,
    },
}

/// TLS settings for dialing a coordinator over `https://`.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM of the CA certificate(s) to trust.
    pub ca_pem: Vec<u8>,
    /// Name to verify in the server certificate (default: the URL's host).
    pub domain: Option<String>,
}

impl ClientTls {
    /// Reads the CA file; `None` when no CA is given.
    pub fn load(ca: Option<&Path>, domain: Option<String>) -> Result<Option<ClientTls>, ClientError> {
        let Some(ca) = ca else { return Ok(None) };
        let ca_pem = std::fs::read(ca).map_err(|source| ClientError::ReadCa {
            path: ca.to_path_buf(),
            source,
        })?;
        Ok(Some(ClientTls { ca_pem, domain }))
    }
}

/// An endpoint for `url`, with TLS when `tls` is given (required for `https://`).
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, ClientError> {
    let e = Endpoint::from_shared(url.to_string()).map_err(|source| ClientError::BadUrl {
        url: url.to_string(),
        source,
    })?;
    match tls {
        Some(t) => {
            let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&t.ca_pem));
            if let Some(d) = &t.domain {
                c = c.domain_name(d.clone());
            }
            e.tls_config(c).map_err(ClientError::Tls)
        }
        None if url.starts_with("https://") => Err(ClientError::HttpsWithoutCa { url: url.to_string() }),
        None => Ok(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_urls_and_files_are_typed_errors() {
        assert!(matches!(endpoint("not a url", None), Err(ClientError::BadUrl { .. })));
        assert!(matches!(
            endpoint("https://127.0.0.1:1", None),
            Err(ClientError::HttpsWithoutCa { .. })
        ));
        assert!(endpoint("http://127.0.0.1:1", None).is_ok());
        let missing = Path::new("/nonexistent/wsload-ca.pem");
        let Err(e) = ClientTls::load(Some(missing), None) else {
            panic!("read a missing file")
        };
        assert!(matches!(&e, ClientError::ReadCa { path, .. } if path == missing), "{e}");
        assert!(ClientTls::load(None, None).unwrap().is_none());
    }
}
