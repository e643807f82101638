//! Redaction of secrets a URL may carry, before it is logged or written to a report:
//! the password of its userinfo and the values of query parameters whose names say
//! they are credentials (`token`, `api_key`, `password`, `sig`...).

/// Replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// Query parameter names (lowercase) whose values are credentials; a name matches
/// when it contains one of these.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "session",
    "jwt",
    "credential",
    "code",
];

/// `url` with its password and credential-like query values replaced by
/// [`REDACTED`]; a string that is not a URL is returned as it is.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret { REDACTED.to_string() } else { v.into_owned() },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_credential_params_are_redacted() {
        assert_eq!(
            redact_url("wss://bob:hunter2@h:9/ws?room=1&access_token=abc&apiKey=k"),
            "wss://bob:REDACTED@h:9/ws?room=1&access_token=REDACTED&apiKey=REDACTED"
        );
        assert_eq!(redact_url("ws://127.0.0.1:9001/ws"), "ws://127.0.0.1:9001/ws");
        assert_eq!(redact_url("ws://h/?a=1"), "ws://h/?a=1");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
