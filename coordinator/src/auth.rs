//! Token authentication for agents and control clients, with least privilege: each
//! token grants roles, compared in constant time.
//!
//! - `--agent-token`: register as an agent (the `AgentLink` service) and nothing else.
//! - `--control-token`: start and stop runs, and everything a viewer may do.
//! - `--viewer-token`: watch runs, read summaries, list runs and agents.
//! - `--token`: every role (the single shared token of earlier versions).
//!
//! A token given for several roles has them all. An unknown token is UNAUTHENTICATED;
//! a known token used beyond its roles is PERMISSION_DENIED.

use subtle::ConstantTimeEq;
use tonic::{Request, Status};
use wsload_common::Secret;

/// Why no token policy can be built from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither a (non-empty) token nor an explicit `--insecure`.
    #[error("give --token (or WSLOAD_TOKEN, or --token-file), or role tokens (--agent-token, --control-token, --viewer-token), or run without one with an explicit --insecure")]
    NoToken,
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Register as an agent.
    Agent,
    /// Start and stop runs.
    Control,
    /// Watch runs, read summaries, list runs and agents.
    View,
}

/// The roles a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// May register as an agent.
    pub agent: bool,
    /// May start and stop runs.
    pub control: bool,
    /// May read.
    pub view: bool,
}

impl Roles {
    /// Every role (`--token`, `--insecure`).
    pub const ALL: Roles = Roles {
        agent: true,
        control: true,
        view: true,
    };

    /// Whether `role` is granted (control implies view).
    pub fn allows(self, role: Role) -> bool {
        match role {
            Role::Agent => self.agent,
            Role::Control => self.control,
            Role::View => self.view || self.control,
        }
    }

    fn union(self, o: Roles) -> Roles {
        Roles {
            agent: self.agent || o.agent,
            control: self.control || o.control,
            view: self.view || o.view,
        }
    }
}

/// The tokens of a coordinator, by role.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Every role.
    pub all: Option<Secret>,
    /// Agents only.
    pub agent: Option<Secret>,
    /// Start/stop and read.
    pub control: Option<Secret>,
    /// Read only.
    pub viewer: Option<Secret>,
}

/// The token policy of a coordinator.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Each accepted `Bearer <token>` header value with its roles; empty with `insecure`.
    tokens: Vec<(Secret, Roles)>,
    /// Explicitly insecure: no check, every role.
    insecure: bool,
}

/// The roles the interceptor granted a request (in its extensions).
#[derive(Debug, Clone, Copy)]
pub struct Granted(pub Roles);

impl Auth {
    /// One token for every role; no token without `--insecure` is a usage error.
    pub fn new(token: Option<String>, insecure: bool) -> Result<Auth, AuthError> {
        Auth::with_roles(
            Tokens {
                all: token.filter(|t| !t.is_empty()).map(Secret::new),
                ..Tokens::default()
            },
            insecure,
        )
    }

    /// Tokens by role; none at all without `--insecure` is a usage error.
    pub fn with_roles(t: Tokens, insecure: bool) -> Result<Auth, AuthError> {
        let agent = Roles {
            agent: true,
            ..Roles::default()
        };
        let control = Roles {
            control: true,
            view: true,
            ..Roles::default()
        };
        let viewer = Roles {
            view: true,
            ..Roles::default()
        };
        let mut tokens: Vec<(Secret, Roles)> = Vec::new();
        for (tok, roles) in [
            (t.all, Roles::ALL),
            (t.agent, agent),
            (t.control, control),
            (t.viewer, viewer),
        ] {
            let Some(tok) = tok.filter(|t| !t.expose().is_empty()) else {
                continue;
            };
            let header = Secret::new(format!("Bearer {}", tok.expose()));
            match tokens.iter_mut().find(|(h, _)| *h == header) {
                Some((_, r)) => *r = r.union(roles),
                None => tokens.push((header, roles)),
            }
        }
        if tokens.is_empty() && !insecure {
            return Err(AuthError::NoToken);
        }
        // With tokens as well as --insecure, the tokens are checked (as before roles).
        let insecure = insecure && tokens.is_empty();
        Ok(Auth { tokens, insecure })
    }

    /// An explicitly insecure policy (every caller has every role).
    pub fn insecure() -> Auth {
        Auth {
            tokens: Vec::new(),
            insecure: true,
        }
    }

    /// Whether every caller is let in (`--insecure` without tokens).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The roles of `presented` (the header value), checked against every token in
    /// constant time; `None` for an unknown or missing token.
    pub fn roles(&self, presented: Option<&[u8]>) -> Option<Roles> {
        if self.insecure {
            return Some(Roles::ALL);
        }
        let p = presented?;
        let mut found = None;
        for (header, roles) in &self.tokens {
            let h = header.expose().as_bytes();
            if p.len() == h.len() && bool::from(p.ct_eq(h)) {
                found = Some(*roles);
            }
        }
        found
    }

    /// Whether `presented` is a known token (of any role).
    pub fn accepts(&self, presented: Option<&[u8]>) -> bool {
        self.roles(presented).is_some()
    }

    /// An interceptor admitting known tokens and recording their roles for
    /// [`require`]; with `needed`, also refusing tokens without that role.
    pub fn interceptor(&self, needed: Option<Role>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        let auth = self.clone();
        move |mut req: Request<()>| {
            let presented = req.metadata().get(wsload_proto::AUTH_HEADER).map(|v| v.as_bytes());
            let Some(roles) = auth.roles(presented) else {
                tracing::warn!(peer = ?req.remote_addr(), "rejected a call with a missing or wrong token");
                return Err(Status::unauthenticated(
                    "missing or wrong token (authorization: Bearer <token>)",
                ));
            };
            if let Some(role) = needed {
                if !roles.allows(role) {
                    tracing::warn!(peer = ?req.remote_addr(), ?role, "refused a call beyond its token's roles");
                    return Err(denied(role));
                }
            }
            req.extensions_mut().insert(Granted(roles));
            Ok(req)
        }
    }
}

fn denied(role: Role) -> Status {
    Status::permission_denied(match role {
        Role::Agent => "this token may not register as an agent (use the agent token)",
        Role::Control => "this token may not start or stop runs (use the control token)",
        Role::View => "this token may not read runs (use the viewer or control token)",
    })
}

/// Refuses `req` unless the interceptor granted it `role` (PERMISSION_DENIED).
pub fn require<T>(req: &Request<T>, role: Role) -> Result<(), Status> {
    match req.extensions().get::<Granted>() {
        Some(Granted(r)) if r.allows(role) => Ok(()),
        _ => Err(denied(role)),
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
        assert_eq!(Auth::new(None, false).unwrap_err(), AuthError::NoToken);
        assert_eq!(Auth::new(Some(String::new()), false).unwrap_err(), AuthError::NoToken);
        assert!(Auth::new(None, true).unwrap().accepts(None));
        assert_eq!(a.roles(Some(b"Bearer s3cret")), Some(Roles::ALL));
    }

    #[test]
    fn role_tokens_grant_only_their_roles() {
        let t = |s: &str| Some(Secret::new(s));
        let a = Auth::with_roles(
            Tokens {
                agent: t("ag"),
                control: t("ctl"),
                viewer: t("view"),
                all: None,
            },
            false,
        )
        .unwrap();
        let ag = a.roles(Some(b"Bearer ag")).unwrap();
        assert!(ag.allows(Role::Agent) && !ag.allows(Role::Control) && !ag.allows(Role::View));
        let ctl = a.roles(Some(b"Bearer ctl")).unwrap();
        assert!(!ctl.allows(Role::Agent) && ctl.allows(Role::Control) && ctl.allows(Role::View));
        let v = a.roles(Some(b"Bearer view")).unwrap();
        assert!(!v.allows(Role::Agent) && !v.allows(Role::Control) && v.allows(Role::View));
        assert!(a.roles(Some(b"Bearer other")).is_none());
        // The same token for two roles has both.
        let both = Auth::with_roles(
            Tokens {
                agent: t("same"),
                control: t("same"),
                ..Tokens::default()
            },
            false,
        )
        .unwrap();
        let r = both.roles(Some(b"Bearer same")).unwrap();
        assert!(r.allows(Role::Agent) && r.allows(Role::Control));
        // Tokens and --insecure: the tokens are still checked.
        let checked = Auth::with_roles(
            Tokens {
                viewer: t("v"),
                ..Tokens::default()
            },
            true,
        )
        .unwrap();
        assert!(checked.roles(None).is_none());
        assert!(format!("{a:?}").contains("<redacted>") && !format!("{a:?}").contains("ctl"));
    }
}
