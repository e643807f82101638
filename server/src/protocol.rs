//! The wire contract: the JSON events the server sends, exactly as the seed defined them.

use bytes::Bytes;
use serde::Serialize;

/// `message` of every response event.
pub const RESPONSE_MESSAGE: &str = "Message received successfully!";
/// `message` of every error event.
pub const ERROR_MESSAGE: &str = "Failed to process message";
/// `error` of the event that answers a binary frame.
pub const BINARY_NOT_SUPPORTED: &str = "Binary messages are not supported";
/// `message` of the periodic server event.
pub const SERVER_EVENT_MESSAGE: &str = "This is a server-side event";

/// A server-to-client event.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event<'a> {
    /// First event of every connection.
    #[serde(rename_all = "camelCase")]
    Session { session_id: &'a str, timestamp: &'a str },
    /// Answer to one text message; `messageCount` is the session's counter after it.
    #[serde(rename_all = "camelCase")]
    Response { message: &'a str, message_count: i64 },
    /// A message could not be processed; the connection stays open.
    Error { message: &'a str, error: &'a str },
    /// A broadcast to every client of every instance.
    ServerEvent { message: &'a str, timestamp: &'a str },
}

impl Event<'_> {
    /// Serialises the event once; the bytes can be shared by any number of sends.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("events always serialise"))
    }
}

/// The `session` event.
pub fn session(session_id: &str, timestamp: &str) -> Bytes {
    Event::Session { session_id, timestamp }.to_bytes()
}

/// The `response` event for the session's new counter value.
pub fn response(message_count: i64) -> Bytes {
    Event::Response {
        message: RESPONSE_MESSAGE,
        message_count,
    }
    .to_bytes()
}

/// The `error` event with its cause.
pub fn error(cause: &str) -> Bytes {
    Event::Error {
        message: ERROR_MESSAGE,
        error: cause,
    }
    .to_bytes()
}

/// The `server-event` event.
pub fn server_event(message: &str, timestamp: &str) -> Bytes {
    Event::ServerEvent { message, timestamp }.to_bytes()
}

/// Now as ISO-8601 in UTC with microseconds (`2026-12-01T22:00:00.123456Z`): still
/// what JavaScript's `Date` parses, and precise enough to time a broadcast's fan-out.
pub fn now_iso() -> String {
    // Microseconds: listeners time the fan-out of a server event from this stamp.
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_match_the_seed() {
        assert_eq!(
            &session("abc", "2024-01-01T00:00:00.000Z")[..],
            br#"{"type":"session","sessionId":"abc","timestamp":"2024-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(
            &response(7)[..],
            br#"{"type":"response","message":"Message received successfully!","messageCount":7}"#
        );
        assert_eq!(
            &error("boom")[..],
            br#"{"type":"error","message":"Failed to process message","error":"boom"}"#
        );
        assert_eq!(
            &server_event("hi", "t")[..],
            br#"{"type":"server-event","message":"hi","timestamp":"t"}"#
        );
    }
}
