//! Who may see the dashboard: anyone on a loopback listener; on any other address only
//! holders of the control token, presented once as `Authorization: Bearer TOKEN` or
//! through the login form, which sets an HttpOnly, SameSite=Strict session cookie (a
//! random id: the token never travels back, never appears in a URL).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::DashboardError;
use crate::auth::{Auth, Role, Roles};

/// Name of the session cookie.
pub const COOKIE: &str = "wsload_session";
/// Sessions remembered; the oldest is forgotten first.
const MAX_SESSIONS: usize = 256;

/// The dashboard's access policy.
#[derive(Debug, Clone)]
pub struct DashAuth {
    /// The coordinator's tokens, when one is required (not on loopback).
    tokens: Option<Auth>,
    /// Session ids handed out by the login form, with the roles of the token given.
    sessions: Arc<Mutex<VecDeque<(String, Roles)>>>,
}

impl DashAuth {
    /// Open to everyone (loopback).
    pub fn open() -> DashAuth {
        DashAuth {
            tokens: None,
            sessions: Arc::default(),
        }
    }

    /// The policy of a dashboard on `addr`: loopback is open, anything else needs a
    /// token with the view role (a viewer, control or all-roles token; an agent token
    /// does not do); an insecure coordinator cannot expose its dashboard.
    pub fn for_addr(addr: SocketAddr, control: &Auth) -> Result<DashAuth, DashboardError> {
        if addr.ip().is_loopback() {
            return Ok(DashAuth::open());
        }
        if control.is_insecure() {
            return Err(DashboardError::NeedsToken(addr));
        }
        Ok(DashAuth {
            tokens: Some(control.clone()),
            sessions: Arc::default(),
        })
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.tokens.is_some()
    }

    /// The roles of a bare token (constant time); every role when none is required.
    fn token_roles(&self, presented: &str) -> Option<Roles> {
        match &self.tokens {
            None => Some(Roles::ALL),
            Some(a) => a.roles(Some(format!("Bearer {presented}").as_bytes())),
        }
    }

    /// Whether `presented` is a token that may view the dashboard.
    pub fn token_matches(&self, presented: &str) -> bool {
        self.token_roles(presented).is_some_and(|r| r.allows(Role::View))
    }

    /// The roles of the request: its bearer token's or its session cookie's.
    fn request_roles(&self, headers: &HeaderMap) -> Option<Roles> {
        if self.tokens.is_none() {
            return Some(Roles::ALL);
        }
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(r) = bearer.and_then(|b| self.token_roles(b)) {
            return Some(r);
        }
        let id = session_cookie(headers)?;
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(s, _)| s.len() == id.len() && bool::from(s.as_bytes().ct_eq(id.as_bytes())))
            .map(|(_, r)| *r)
    }

    /// Whether the request may see the dashboard.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        self.request_roles(headers).is_some_and(|r| r.allows(Role::View))
    }

    /// Whether the request may stop runs (the control role).
    pub fn may_control(&self, headers: &HeaderMap) -> bool {
        self.request_roles(headers).is_some_and(|r| r.allows(Role::Control))
    }

    /// A new session id for a successful login with `token`.
    pub fn new_session(&self, token: &str) -> String {
        let roles = self.token_roles(token).unwrap_or_default();
        let id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        s.push_back((id.clone(), roles));
        while s.len() > MAX_SESSIONS {
            s.pop_front();
        }
        id
    }
}

/// The value of the session cookie, if sent.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn loopback_is_open_anything_else_needs_the_token() {
        let tok = Auth::new(Some("s3cret".into()), false).unwrap();
        let open = DashAuth::for_addr("127.0.0.1:1".parse().unwrap(), &Auth::insecure()).unwrap();
        assert!(open.allows(&HeaderMap::new()));
        assert!(DashAuth::for_addr("0.0.0.0:1".parse().unwrap(), &Auth::insecure()).is_err());
        let a = DashAuth::for_addr("0.0.0.0:1".parse().unwrap(), &tok).unwrap();
        let mut h = HeaderMap::new();
        assert!(!a.allows(&h));
        h.insert("authorization", HeaderValue::from_static("Bearer s3cre"));
        assert!(!a.allows(&h));
        h.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        assert!(a.allows(&h));
        let id = a.new_session("s3cret");
        let mut c = HeaderMap::new();
        c.insert("cookie", HeaderValue::from_str(&format!("x=1; {COOKIE}={id}")).unwrap());
        assert!(a.allows(&c));
        c.insert("cookie", HeaderValue::from_static("wsload_session=forged"));
        assert!(!a.allows(&c));
        assert!(a.may_control(&h));
    }

    #[test]
    fn a_viewer_sees_but_cannot_stop_and_an_agent_token_sees_nothing() {
        let tokens = crate::auth::Tokens {
            agent: Some(wsload_common::Secret::new("agent-t")),
            viewer: Some(wsload_common::Secret::new("viewer-t")),
            ..Default::default()
        };
        let auth = Auth::with_roles(tokens, false).unwrap();
        let a = DashAuth::for_addr("0.0.0.0:1".parse().unwrap(), &auth).unwrap();
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer viewer-t"));
        assert!(a.allows(&h));
        assert!(!a.may_control(&h));
        h.insert("authorization", HeaderValue::from_static("Bearer agent-t"));
        assert!(!a.allows(&h));
        assert!(!a.token_matches("agent-t"));
        let id = a.new_session("viewer-t");
        let mut c = HeaderMap::new();
        c.insert("cookie", HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap());
        assert!(a.allows(&c));
        assert!(!a.may_control(&c));
    }
}
