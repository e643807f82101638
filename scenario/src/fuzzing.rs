//! Entry points of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) for the
//! scenario language: templates, and the JSON paths, tests and captures applied to
//! what the target server sends. Each takes arbitrary bytes, must not panic or
//! allocate without bound, and asserts what must hold for any input; the unit tests
//! replay the committed corpora (`fuzz/corpus/<target>/`).

use std::sync::Arc;

use wsload_proto::pb;

use crate::matcher::{Capture, Incoming, Matcher};
use crate::template::{Scope, Template, Vars};

/// Most bytes one template may render to (the server's payload limit is far below).
const MAX_RENDERED: usize = 17 * 1024 * 1024;

/// A scope with one feeder (`users.id`, `users.name`) and two captured variables.
fn scope() -> Scope {
    Scope {
        feeders: vec![("users".into(), vec!["id".into(), "name".into()])],
        captures: vec!["sid".into(), "token".into()],
    }
}

/// Renders `f` with fixed values of every variable (one feeder row, one capture).
fn with_vars<R>(f: impl FnOnce(&Vars<'_>) -> R) -> R {
    let row: Arc<[Arc<str>]> = vec![Arc::from("7"), Arc::from("ann")].into();
    let rows = [Some(row)];
    let captures = [Some(Arc::from("abc")), None];
    let vars = Vars {
        session: 3,
        agent: "agent-1",
        scenario: "chat",
        seq: 2,
        iteration: 1,
        uuid: uuid::Uuid::nil(),
        now_us: 1_700_000_000_000_000,
        captures: &captures,
        rows: &rows,
    };
    f(&vars)
}

/// Target `scenario_template`: a template's text, parsed and rendered.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Template::parse(text, &scope()) else {
        return;
    };
    let mut rng = fastrand::Rng::with_seed(u64::from(data.len() as u32));
    let out = with_vars(|v| t.render_string(v, &mut rng));
    assert!(out.len() <= MAX_RENDERED, "rendered {} bytes", out.len());
    if let Some(c) = t.constant() {
        assert_eq!(&c[..], out.as_bytes(), "a constant renders as itself");
        assert!(!text.contains("{{"));
    }
}

/// Target `scenario_matcher`: NUL-separated fields: a JSON path, the test (first
/// byte: which; the rest: its argument), a capture regex, then the message (first
/// byte: text or binary). The test and the capture run on the message.
pub fn matcher(data: &[u8]) {
    let mut fields = data.splitn(4, |&b| b == 0);
    let text = |f: Option<&[u8]>| String::from_utf8_lossy(f.unwrap_or_default()).into_owned();
    let json = text(fields.next());
    let test = fields.next().unwrap_or_default();
    let regex = text(fields.next());
    let message = fields.next().unwrap_or_default();
    use pb::matcher::Test as T;
    let arg = String::from_utf8_lossy(test.get(1..).unwrap_or_default()).into_owned();
    let test = match test.first().map(|b| b % 7) {
        None | Some(0) => None,
        Some(1) => Some(T::Exists(arg.is_empty())),
        Some(2) => Some(T::Equals(arg)),
        Some(3) => Some(T::Regex(arg)),
        Some(4) => Some(T::Contains(arg)),
        Some(5) => Some(T::Any(true)),
        Some(_) => Some(T::Any(false)),
    };
    let (is_text, body) = match message.split_first() {
        Some((&kind, body)) => (kind & 1 == 0, body),
        None => (true, message),
    };
    let msg = Incoming::new(body, is_text);
    let mut rng = fastrand::Rng::with_seed(7);
    let any = matches!(test, Some(T::Any(true)));
    if let Ok(m) = Matcher::compile(
        &pb::Matcher {
            json: json.clone(),
            test,
        },
        &scope(),
    ) {
        let hit = with_vars(|v| m.matches(&msg, v, &mut rng));
        assert!(hit || !any, "`any` matches every message");
    }
    let capture = pb::Capture {
        var: "v".into(),
        json,
        regex,
    };
    if let Ok(c) = Capture::compile(&capture, 0) {
        if let Some(v) = c.take(&msg) {
            assert!(
                v.len() <= body.len().max(1) * 8 + 64,
                "captured more than the message holds"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use wsload_testkit::fuzz_corpus::replay;

    #[test]
    fn the_fuzz_corpora_replay() {
        assert!(replay("scenario_template", super::template) >= 3);
        assert!(replay("scenario_matcher", super::matcher) >= 3);
    }
}
