//! Client side of the optional TLS on the gRPC link (rustls via tonic): the CA that
//! signed the coordinator's certificate and the name to verify.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

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
    pub fn load(ca: Option<&Path>, domain: Option<String>) -> Result<Option<ClientTls>, String> {
        let Some(ca) = ca else { return Ok(None) };
        let ca_pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        Ok(Some(ClientTls { ca_pem, domain }))
    }
}

/// An endpoint for `url`, with TLS when `tls` is given (required for `https://`).
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, String> {
    let e = Endpoint::from_shared(url.to_string()).map_err(|e| format!("bad URL {url}: {e}"))?;
    match tls {
        Some(t) => {
            let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&t.ca_pem));
            if let Some(d) = &t.domain {
                c = c.domain_name(d.clone());
            }
            e.tls_config(c).map_err(|e| format!("TLS configuration: {e}"))
        }
        None if url.starts_with("https://") => {
            Err(format!("{url} is https://: give --tls-ca (the CA of its certificate)"))
        }
        None => Ok(e),
    }
}
