//! Tokens as secrets: read from a flag, the environment or a file (so they need not
//! appear in a process's argv, which any local user can read in `ps`), and never
//! printed: [`Secret`]'s `Debug` and `Display` show `<redacted>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A token whose value is never formatted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a token cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Both the value and a file were given.
    #[error("give --{flag} or --{flag}-file, not both")]
    Both {
        /// The flag's name, e.g. `token`.
        flag: &'static str,
    },
    /// The file cannot be read.
    #[error("--{flag}-file {}: {source}", path.display())]
    Read {
        /// The flag's name.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The value (or the file) is empty.
    #[error("--{flag} is empty")]
    Empty {
        /// The flag's name.
        flag: &'static str,
    },
}

/// The token of `--flag` / `--flag-file`: the value, or the file's first line (a
/// trailing newline and surrounding blanks are not part of it); `None` if neither.
pub fn read_secret(
    flag: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Secret>, SecretError> {
    let v = match (value, file) {
        (Some(_), Some(_)) => return Err(SecretError::Both { flag }),
        (None, None) => return Ok(None),
        (Some(v), None) => v.to_string(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map_err(|source| SecretError::Read {
                flag,
                path: p.to_path_buf(),
                source,
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if v.is_empty() {
        return Err(SecretError::Empty { flag });
    }
    Ok(Some(Secret::new(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_formatted() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn tokens_come_from_a_value_or_the_first_line_of_a_file() {
        let f = std::env::temp_dir().join(format!("wsload-secret-{}", std::process::id()));
        std::fs::write(&f, "  file-token \nsecond line\n").unwrap();
        assert_eq!(
            read_secret("token", None, Some(&f)).unwrap().unwrap().expose(),
            "file-token"
        );
        assert_eq!(read_secret("token", Some("v"), None).unwrap().unwrap().expose(), "v");
        assert!(read_secret("token", None, None).unwrap().is_none());
        let both = read_secret("token", Some("v"), Some(&f)).unwrap_err();
        assert_eq!(both.to_string(), "give --token or --token-file, not both");
        std::fs::write(&f, "\n").unwrap();
        assert_eq!(
            read_secret("agent-token", None, Some(&f)).unwrap_err().to_string(),
            "--agent-token is empty"
        );
        let _ = std::fs::remove_file(&f);
        let missing = read_secret("token", None, Some(&f)).unwrap_err().to_string();
        assert!(missing.starts_with("--token-file /"), "{missing}");
    }
}
