//! The client side of the shared token: every call carries
//! `authorization: Bearer <token>` (the coordinator compares it in constant time).

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A tonic interceptor adding the shared token to every request (nothing without one).
#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    /// `Bearer <token>`, ready to insert; `None` without a token (or one that is not
    /// a valid header value, which the coordinator then refuses as missing).
    value: Option<MetadataValue<Ascii>>,
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert(wsload_proto::AUTH_HEADER, v.clone());
        }
        Ok(req)
    }
}

/// An interceptor adding `token` to every request.
pub fn auth_interceptor(token: Option<String>) -> BearerAuth {
    BearerAuth {
        value: token.and_then(|t| format!("Bearer {t}").parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_as_a_bearer_header() {
        let req = auth_interceptor(Some("s3cret".into())).call(Request::new(())).unwrap();
        let got = req.metadata().get(wsload_proto::AUTH_HEADER).unwrap();
        assert_eq!(got.to_str().unwrap(), "Bearer s3cret");
        let req = auth_interceptor(None).call(Request::new(())).unwrap();
        assert!(req.metadata().get(wsload_proto::AUTH_HEADER).is_none());
    }
}
