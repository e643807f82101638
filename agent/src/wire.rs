//! The target server's JSON messages, as the agent reads them.

use serde::Deserialize;

/// One text frame from the server.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// Sent once when the connection opens.
    #[serde(rename = "session")]
    Session {
        /// The server's session id.
        #[serde(rename = "sessionId", default)]
        session_id: String,
    },
    /// Reply to one client message; `messageCount` is the per-session counter.
    #[serde(rename = "response")]
    Response {
        /// 1 for the first message of the session, 2 for the second...
        #[serde(rename = "messageCount")]
        message_count: u64,
    },
    /// The server failed to process a message.
    #[serde(rename = "error")]
    Error {
        /// The server's error detail.
        #[serde(default)]
        error: Option<String>,
    },
    /// A broadcast.
    #[serde(rename = "server-event")]
    ServerEvent,
    /// Anything else (counted as a protocol error by the session).
    #[serde(other)]
    Other,
}

/// Parses a text frame; `None` when it is not a JSON object with a `type`.
pub fn parse(text: &[u8]) -> Option<ServerMessage> {
    serde_json::from_slice(text).ok()
}

/// The text of client message `seq` padded to about `payload_size` bytes.
pub fn client_message(seq: u64, payload_size: usize) -> String {
    let mut s = format!("{{\"type\":\"message\",\"seq\":{seq},\"pad\":\"");
    let pad = payload_size.saturating_sub(s.len() + 2);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's four events: the one fixture the server's tests check the real
    /// server against and the test servers send.
    const SEED_EVENTS: &str = include_str!("../../fixtures/seed-events.json");

    #[test]
    fn parses_the_server_contract() {
        let events: serde_json::Value = serde_json::from_str(SEED_EVENTS).unwrap();
        let event = |kind: &str| serde_json::to_vec(&events[kind]).unwrap();
        let field = |kind: &str, name: &str| events[kind][name].clone();
        assert_eq!(
            parse(&event("session")),
            Some(ServerMessage::Session {
                session_id: field("session", "sessionId").as_str().unwrap().into()
            })
        );
        assert_eq!(
            parse(&event("response")),
            Some(ServerMessage::Response {
                message_count: field("response", "messageCount").as_u64().unwrap()
            })
        );
        assert_eq!(
            parse(&event("error")),
            Some(ServerMessage::Error {
                error: Some(field("error", "error").as_str().unwrap().into())
            })
        );
        assert_eq!(parse(&event("server-event")), Some(ServerMessage::ServerEvent));
        assert_eq!(events.as_object().unwrap().len(), 4, "one example of each event");
        assert_eq!(parse(br#"{"type":"zzz"}"#), Some(ServerMessage::Other));
        assert_eq!(parse(b"nope"), None);
    }

    #[test]
    fn payload_is_padded() {
        assert_eq!(client_message(1, 200).len(), 200);
        assert!(client_message(1, 0).len() < 40);
    }
}
