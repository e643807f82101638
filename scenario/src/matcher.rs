//! Tests on incoming messages (expect, request replies, listen filters, handlers)
//! and captures of values from them. A message is parsed as JSON at most once, and
//! only when a test needs it.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;
use serde_json_path::JsonPath;
use wsload_proto::pb;

use crate::template::{Scope, Template, Vars};

/// One incoming data message as the tests see it.
#[derive(Debug)]
pub struct Incoming<'a> {
    data: &'a [u8],
    text: bool,
    json: OnceLock<Option<Value>>,
}

impl<'a> Incoming<'a> {
    /// A text (`text` true) or binary message.
    pub fn new(data: &'a [u8], text: bool) -> Self {
        Incoming {
            data,
            text,
            json: OnceLock::new(),
        }
    }

    /// The message as text, if it is a text message.
    pub fn text(&self) -> Option<&'a str> {
        if self.text {
            std::str::from_utf8(self.data).ok()
        } else {
            None
        }
    }

    /// The message parsed as JSON (once), if it is JSON text.
    pub fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| {
                if self.text {
                    serde_json::from_slice(self.data).ok()
                } else {
                    None
                }
            })
            .as_ref()
    }

    /// The value `path` selects (the first node), if any.
    pub fn select(&self, path: &JsonPath) -> Option<&Value> {
        path.query(self.json()?).first()
    }
}

/// A value's text for comparisons: a JSON string by its content, anything else by its
/// JSON text (so `3` equals `"3"`).
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

#[derive(Debug, Clone)]
enum Test {
    Exists(bool),
    Equals(Template),
    Regex(Regex),
    Contains(String),
    Any,
}

/// A compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    path: Option<JsonPath>,
    test: Test,
}

/// Why a matcher or capture cannot be compiled: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MatchError {
    /// `json`, `equals`, `regex`...
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Parses a JSON path, naming the field on error.
pub fn parse_path(field: &'static str, path: &str) -> Result<JsonPath, MatchError> {
    if ends_in_a_cut_unicode_escape(path) {
        return Err(MatchError {
            field,
            reason: format!(
                "`{path}` is not a JSON path (it ends inside a \\u escape); write e.g. $.type or $.data[0].id"
            ),
        });
    }
    JsonPath::parse(path).map_err(|e| MatchError {
        field,
        reason: format!("`{path}` is not a JSON path ({e}); write e.g. $.type or $.data[0].id"),
    })
}

/// Whether `path` ends with an escaping `\u` (an odd run of backslashes, then `u`):
/// serde_json_path 0.7.2 panics on it ("we do not use streaming parsers"; found by the
/// `scenario_matcher` fuzz target), and no valid path ends so (the escape needs four
/// hex digits, a closing quote and more).
fn ends_in_a_cut_unicode_escape(path: &str) -> bool {
    let Some(rest) = path.strip_suffix('u') else {
        return false;
    };
    let backslashes = rest.bytes().rev().take_while(|&b| b == b'\\').count();
    backslashes % 2 == 1
}

fn parse_regex(field: &'static str, re: &str) -> Result<Regex, MatchError> {
    Regex::new(re).map_err(|e| MatchError {
        field,
        reason: format!("`{re}` is not a regular expression: {e}"),
    })
}

impl Matcher {
    /// Compiles the wire form; templates may use the variables of `scope`.
    pub fn compile(m: &pb::Matcher, scope: &Scope) -> Result<Matcher, MatchError> {
        use pb::matcher::Test as T;
        let path = if m.json.is_empty() {
            None
        } else {
            Some(parse_path("json", &m.json)?)
        };
        let test = match &m.test {
            None => match path {
                Some(_) => Test::Exists(true),
                None => {
                    return Err(MatchError {
                        field: "match",
                        reason: "give a test: json, equals, regex, contains, exists or any".into(),
                    })
                }
            },
            Some(T::Exists(b)) => Test::Exists(*b),
            Some(T::Equals(t)) => Test::Equals(Template::parse(t, scope).map_err(|e| MatchError {
                field: "equals",
                reason: e.0,
            })?),
            Some(T::Regex(r)) => Test::Regex(parse_regex("regex", r)?),
            Some(T::Contains(c)) => Test::Contains(c.clone()),
            Some(T::Any(true)) => Test::Any,
            Some(T::Any(false)) => {
                return Err(MatchError {
                    field: "any",
                    reason: "`any = false` matches nothing; leave it out".into(),
                })
            }
        };
        if matches!(test, Test::Any) && path.is_some() {
            return Err(MatchError {
                field: "any",
                reason: "`any` takes no json path".into(),
            });
        }
        Ok(Matcher { path, test })
    }

    /// Whether `msg` passes, with templates rendered from `vars`.
    pub fn matches(&self, msg: &Incoming<'_>, vars: &Vars<'_>, rng: &mut fastrand::Rng) -> bool {
        if let Test::Any = self.test {
            return true;
        }
        let subject: Option<Cow<'_, str>> = match &self.path {
            None => msg.text().map(Cow::Borrowed),
            Some(p) => msg.select(p).map(value_text),
        };
        match (&self.test, subject) {
            (Test::Exists(want), s) => s.is_some() == *want,
            (_, None) => false,
            (Test::Equals(t), Some(s)) => match t.constant() {
                Some(c) => s.as_bytes() == c.as_ref(),
                None => s == t.render_string(vars, rng),
            },
            (Test::Regex(r), Some(s)) => r.is_match(&s),
            (Test::Contains(c), Some(s)) => s.contains(c.as_str()),
            (Test::Any, _) => true,
        }
    }

    /// For a `json` + `equals` matcher: the path whose value is the correlation key,
    /// and the template of the expected key. Replies are then found by key, not by
    /// trying every pending request.
    pub fn correlation(&self) -> Option<(&JsonPath, &Template)> {
        match (&self.path, &self.test) {
            (Some(p), Test::Equals(t)) => Some((p, t)),
            _ => None,
        }
    }

    /// Whether the matcher reads the step's UUID.
    pub fn uses_uuid(&self) -> bool {
        matches!(&self.test, Test::Equals(t) if t.uses_uuid())
    }
}

/// A compiled capture: where to read the value and which session slot takes it.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Session variable slot.
    pub slot: u16,
    path: Option<JsonPath>,
    regex: Option<Regex>,
}

impl Capture {
    /// Compiles the wire form into `slot`.
    pub fn compile(c: &pb::Capture, slot: u16) -> Result<Capture, MatchError> {
        let path = if c.json.is_empty() {
            None
        } else {
            Some(parse_path("capture.json", &c.json)?)
        };
        let regex = if c.regex.is_empty() {
            None
        } else {
            let r = parse_regex("capture.regex", &c.regex)?;
            if r.captures_len() < 2 {
                return Err(MatchError {
                    field: "capture.regex",
                    reason: format!("`{}` has no capture group ( ) to take the value from", c.regex),
                });
            }
            Some(r)
        };
        Ok(Capture { slot, path, regex })
    }

    /// The captured value, if the message has it.
    pub fn take(&self, msg: &Incoming<'_>) -> Option<String> {
        let whole: Cow<'_, str> = match &self.path {
            None => Cow::Borrowed(msg.text()?),
            Some(p) => value_text(msg.select(p)?),
        };
        match &self.regex {
            None => Some(whole.into_owned()),
            Some(r) => r.captures(&whole)?.get(1).map(|m| m.as_str().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::matcher::Test as T;

    /// Found by the `scenario_matcher` fuzz target: a path ending in `\u` made the JSON
    /// path crate panic; it is refused with a clear error (input kept as
    /// `fuzz/corpus/scenario_matcher/regress-cut-unicode-escape`).
    #[test]
    fn a_path_ending_inside_a_unicode_escape_is_refused_not_a_panic() {
        for path in [r#"$["\u"#, r#"$[?@.a=="\u"#, r#"$.i7Ams["i\\e\u"#, r#"$["\\\u"#] {
            let e = parse_path("json", path).unwrap_err();
            assert!(e.reason.contains("ends inside a \\u escape"), "{path}: {e}");
        }
        // An escaped backslash then `u` is no escape: the crate's own error.
        let e = parse_path("json", r#"$["\\u"#).unwrap_err();
        assert!(!e.reason.contains("escape"), "{e}");
        assert!(parse_path("json", r#"$["\u0041"]"#).is_ok());
    }

    fn vars() -> Vars<'static> {
        Vars {
            session: 0,
            agent: "a",
            scenario: "s",
            seq: 4,
            iteration: 0,
            uuid: uuid::Uuid::nil(),
            now_us: 0,
            captures: &[],
            rows: &[],
        }
    }

    fn m(json: &str, test: Option<T>) -> Matcher {
        Matcher::compile(
            &pb::Matcher {
                json: json.into(),
                test,
            },
            &Scope::default(),
        )
        .unwrap()
    }

    fn check(matcher: &Matcher, msg: &str) -> bool {
        matcher.matches(&Incoming::new(msg.as_bytes(), true), &vars(), &mut fastrand::Rng::new())
    }

    #[test]
    fn json_tests() {
        let msg = r#"{"type":"response","messageCount":4,"data":{"items":[{"id":"x"}]}}"#;
        assert!(check(&m("$.type", Some(T::Equals("response".into()))), msg));
        assert!(!check(&m("$.type", Some(T::Equals("error".into()))), msg));
        assert!(check(&m("$.messageCount", Some(T::Equals("{{seq}}".into()))), msg));
        assert!(check(&m("$.data.items[0].id", None), msg));
        assert!(check(&m("$.missing", Some(T::Exists(false))), msg));
        assert!(check(&m("$.type", Some(T::Regex("^resp".into()))), msg));
        assert!(check(&m("$.type", Some(T::Contains("spon".into()))), msg));
        assert!(!check(&m("$.type", None), "not json"));
        assert!(check(&m("", Some(T::Any(true))), "not json"));
        assert!(check(&m("", Some(T::Regex("^not".into()))), "not json"));
        assert!(check(
            &m("", Some(T::Equals("hello 4".replace('4', "{{seq}}")))),
            "hello 4"
        ));
    }

    #[test]
    fn captures_take_values() {
        let msg = r#"{"sessionId":"abc","n":5,"url":"/x?token=t0k&y=1"}"#;
        let inc = Incoming::new(msg.as_bytes(), true);
        let cap = |json: &str, regex: &str| {
            Capture::compile(
                &pb::Capture {
                    var: "v".into(),
                    json: json.into(),
                    regex: regex.into(),
                },
                0,
            )
            .unwrap()
            .take(&inc)
        };
        assert_eq!(cap("$.sessionId", "").as_deref(), Some("abc"));
        assert_eq!(cap("$.n", "").as_deref(), Some("5"));
        assert_eq!(cap("$.url", "token=(\\w+)").as_deref(), Some("t0k"));
        assert_eq!(cap("$.nope", ""), None);
    }

    #[test]
    fn bad_paths_and_regexes_are_named() {
        let e = Matcher::compile(
            &pb::Matcher {
                json: "$.[".into(),
                test: None,
            },
            &Scope::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "json");
        let e = Matcher::compile(
            &pb::Matcher {
                json: String::new(),
                test: Some(T::Regex("(".into())),
            },
            &Scope::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "regex");
        let e = Capture::compile(
            &pb::Capture {
                var: "v".into(),
                json: String::new(),
                regex: "abc".into(),
            },
            0,
        )
        .unwrap_err();
        assert!(e.reason.contains("no capture group"));
    }
}
