//! The seed's four server events, from the one fixture file
//! (`fixtures/seed-events.json`) that the server's tests, the agent's tests and the
//! test servers here all read: what the test servers send, and what the real
//! server's events are checked against.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The fixture file, verbatim.
pub const SEED_EVENTS_JSON: &str = include_str!("../../fixtures/seed-events.json");

/// The event kinds, as their `type` field says.
pub const KINDS: [&str; 4] = ["session", "response", "error", "server-event"];

fn events() -> &'static Map<String, Value> {
    static EVENTS: OnceLock<Map<String, Value>> = OnceLock::new();
    EVENTS.get_or_init(|| serde_json::from_str(SEED_EVENTS_JSON).expect("fixtures/seed-events.json is a JSON object"))
}

/// The fixture's example of event `kind`.
pub fn event(kind: &str) -> Value {
    events()
        .get(kind)
        .unwrap_or_else(|| panic!("no `{kind}` event in the fixture"))
        .clone()
}

/// The example of `kind` with `field` set to `value`, as text.
fn with(kind: &str, field: &str, value: Value) -> String {
    let mut e = event(kind);
    assert!(e.get(field).is_some(), "the `{kind}` event has no `{field}`");
    e[field] = value;
    e.to_string()
}

/// A `session` event, as text.
pub fn session() -> String {
    event("session").to_string()
}

/// The `response` event to the session's message number `count`, as text.
pub fn response(count: u64) -> String {
    with("response", "messageCount", count.into())
}

/// An `error` event with `cause` in its `error` field, as text.
pub fn error(cause: &str) -> String {
    with("error", "error", cause.into())
}

/// A `server-event` with `message`, as text.
pub fn server_event(message: &str) -> String {
    with("server-event", "message", message.into())
}

/// JSON type of a value, for comparing shapes.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Fails unless `actual` has exactly the keys of the fixture's event of the same
/// `type`, each with the fixture's JSON type.
pub fn assert_seed_shape(actual: &Value) {
    let kind = actual["type"]
        .as_str()
        .unwrap_or_else(|| panic!("an event without a string `type`: {actual}"));
    let expected = event(kind);
    let (Some(want), Some(got)) = (expected.as_object(), actual.as_object()) else {
        panic!("an event is a JSON object: {actual}");
    };
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "keys of the `{kind}` event: {actual}");
    for (key, value) in want {
        assert_eq!(
            json_type(&got[key]),
            json_type(value),
            "JSON type of `{key}` in the `{kind}` event: {actual}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_the_four_events() {
        for kind in KINDS {
            let e = event(kind);
            assert_eq!(e["type"], kind);
            assert_seed_shape(&e);
        }
        assert_eq!(events().len(), KINDS.len());
    }

    #[test]
    fn built_events_keep_their_shape() {
        for text in [session(), response(7), error("boom"), server_event("hi")] {
            assert_seed_shape(&serde_json::from_str(&text).unwrap());
        }
        let r: Value = serde_json::from_str(&response(7)).unwrap();
        assert_eq!(
            (r["messageCount"].as_u64(), r["message"].as_str()),
            (Some(7), Some("Message received successfully!"))
        );
    }

    #[test]
    #[should_panic(expected = "keys of the `response` event")]
    fn an_extra_key_is_caught() {
        assert_seed_shape(&serde_json::json!({"type": "response", "message": "m", "messageCount": 1, "extra": 0}));
    }

    #[test]
    #[should_panic(expected = "JSON type of `messageCount`")]
    fn a_wrong_type_is_caught() {
        assert_seed_shape(&serde_json::json!({"type": "response", "message": "m", "messageCount": "1"}));
    }
}
