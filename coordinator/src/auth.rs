//! Shared-token authentication for agents and control clients (constant-time compare).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// The token policy of a coordinator.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Every call must carry `authorization: Bearer <token>`.
    Token(Arc<str>),
    /// Explicitly insecure: no check.
    Insecure,
}

impl Auth {
    /// Builds the policy; no token without `--insecure` is a usage error.
    pub fn new(token: Option<String>, insecure: bool) -> Result<Auth, String> {
        match (token, insecure) {
            (Some(t), _) if !t.is_empty() => Ok(Auth::Token(t.into())),
            (_, true) => Ok(Auth::Insecure),
            _ => Err("give --token (or WSLOAD_TOKEN), or run without one with an explicit --insecure".into()),
        }
    }

    /// Whether `presented` (the header value) matches, in constant time.
    pub fn accepts(&self, presented: Option<&[u8]>) -> bool {
        match self {
            Auth::Insecure => true,
            Auth::Token(t) => {
                let expected = format!("Bearer {t}");
                presented.is_some_and(|p| p.len() == expected.len() && bool::from(p.ct_eq(expected.as_bytes())))
            }
        }
    }

    /// A tonic interceptor enforcing the policy.
    pub fn interceptor(&self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        let auth = self.clone();
        move |req: Request<()>| {
            let presented = req.metadata().get(wsload_proto::AUTH_HEADER).map(|v| v.as_bytes());
            if auth.accepts(presented) {
                Ok(req)
            } else {
                tracing::warn!(peer = ?req.remote_addr(), "rejected a call with a missing or wrong token");
                Err(Status::unauthenticated(
                    "missing or wrong token (authorization: Bearer <token>)",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_must_match_exactly() {
        let a = Auth::new(Some("s3cret".into()), false).unwrap();
        assert!(a.accepts(Some(b"Bearer s3cret")));
        assert!(!a.accepts(Some(b"Bearer s3cre")));
        assert!(!a.accepts(Some(b"Bearer s3cret2")));
        assert!(!a.accepts(None));
        assert!(Auth::new(None, false).is_err());
        assert!(Auth::new(None, true).unwrap().accepts(None));
    }
}
