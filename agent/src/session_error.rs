//! How a session failed: one kind per cause, counted per window and sent to the
//! coordinator by its [`SessionError::as_str`] name (the keys of the wire's `errors`
//! map and of every report).

/// Why a session did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionError {
    /// The run was stopped (or the agent shut down) while the session was open or waiting.
    Aborted,
    /// TCP connect + upgrade did not finish within the connect timeout.
    ConnectTimeout,
    /// The target refused the TCP connection.
    ConnectRefused,
    /// Any other TCP connect failure (unreachable, no route, out of ports...).
    ConnectError,
    /// No socket could be created (typically out of file descriptors).
    SocketError,
    /// The socket could not be bound to its `--source-ips` address.
    BindError,
    /// The TLS handshake of a `wss://` target failed (e.g. an unknown certificate).
    TlsError,
    /// The HTTP upgrade to WebSocket failed.
    HandshakeError,
    /// The `session` event did not arrive within the connect timeout.
    SessionTimeout,
    /// The server closed the connection (or it broke) before the session was done.
    PrematureClose,
    /// The server sent an `error` event.
    ErrorEvent,
    /// The server sent something the protocol does not allow at that point.
    ProtocolError,
    /// A message could not be written.
    SendError,
    /// No response for the response timeout while responses were outstanding.
    ResponseTimeout,
    /// A `response` whose `messageCount` matches no message awaiting its response.
    UnmatchedResponse,
    /// Scenario: no message matched an expect step within its timeout.
    ExpectTimeout,
    /// Scenario: a strict expect step's message did not match.
    ExpectMismatch,
    /// Scenario: a listen step for a count did not receive it within its timeout.
    ListenTimeout,
    /// Scenario: no pong within the ping step's timeout.
    PingTimeout,
    /// Scenario: a message no step or handler claimed, with `fail_on_unexpected`.
    UnexpectedMessage,
    /// Scenario: a connect step's URL is not a usable ws:// or wss:// URL.
    BadTarget,
    /// Scenario: a connect step's host is not in the agent's `--allow-target` list.
    TargetNotAllowed,
    /// Scenario: a connect step's host does not resolve.
    ResolveError,
    /// Scenario with reconnect: a request still awaiting its reply when the connection
    /// was lost (the session itself goes on over a new connection).
    Dropped,
}

impl SessionError {
    /// Every kind, in declaration order.
    pub const ALL: [SessionError; 24] = [
        SessionError::Aborted,
        SessionError::ConnectTimeout,
        SessionError::ConnectRefused,
        SessionError::ConnectError,
        SessionError::SocketError,
        SessionError::BindError,
        SessionError::TlsError,
        SessionError::HandshakeError,
        SessionError::SessionTimeout,
        SessionError::PrematureClose,
        SessionError::ErrorEvent,
        SessionError::ProtocolError,
        SessionError::SendError,
        SessionError::ResponseTimeout,
        SessionError::UnmatchedResponse,
        SessionError::ExpectTimeout,
        SessionError::ExpectMismatch,
        SessionError::ListenTimeout,
        SessionError::PingTimeout,
        SessionError::UnexpectedMessage,
        SessionError::BadTarget,
        SessionError::TargetNotAllowed,
        SessionError::ResolveError,
        SessionError::Dropped,
    ];

    /// The name on the wire and in reports, e.g. `connect_refused`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionError::Aborted => "aborted",
            SessionError::ConnectTimeout => "connect_timeout",
            SessionError::ConnectRefused => "connect_refused",
            SessionError::ConnectError => "connect_error",
            SessionError::SocketError => "socket_error",
            SessionError::BindError => "bind_error",
            SessionError::TlsError => "tls_error",
            SessionError::HandshakeError => "handshake_error",
            SessionError::SessionTimeout => "session_timeout",
            SessionError::PrematureClose => "premature_close",
            SessionError::ErrorEvent => "error_event",
            SessionError::ProtocolError => "protocol_error",
            SessionError::SendError => "send_error",
            SessionError::ResponseTimeout => "response_timeout",
            SessionError::UnmatchedResponse => "unmatched_response",
            SessionError::ExpectTimeout => "expect_timeout",
            SessionError::ExpectMismatch => "expect_mismatch",
            SessionError::ListenTimeout => "listen_timeout",
            SessionError::PingTimeout => "ping_timeout",
            SessionError::UnexpectedMessage => "unexpected_message",
            SessionError::BadTarget => "bad_target",
            SessionError::TargetNotAllowed => "target_not_allowed",
            SessionError::ResolveError => "resolve_error",
            SessionError::Dropped => "dropped",
        }
    }

    /// Whether the connection is still in a state to close it cleanly with 1000: the
    /// session was stopped, or the server is alive but did not give what was expected
    /// in time. After a broken or misbehaving connection the socket is just dropped.
    pub const fn closes_with_normal(self) -> bool {
        matches!(
            self,
            SessionError::Aborted
                | SessionError::ErrorEvent
                | SessionError::ResponseTimeout
                | SessionError::SessionTimeout
                | SessionError::ExpectTimeout
                | SessionError::ExpectMismatch
                | SessionError::ListenTimeout
                | SessionError::PingTimeout
                | SessionError::UnexpectedMessage
        )
    }
}

/// Why a session failed, as it is counted: one of the fixed kinds, an HTTP status
/// that refused the upgrade (`http_503`), or the kind a scenario handler failed it
/// with (an index into the program's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A fixed kind.
    Session(SessionError),
    /// The upgrade was answered with this HTTP status instead of 101.
    Http(u16),
    /// A scenario handler's `fail` kind, by index.
    Handler(u16),
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        Failure::Session(e)
    }
}

impl Failure {
    /// Whether the connection is alive enough to close it with 1000.
    pub fn closes_with_normal(self) -> bool {
        match self {
            Failure::Session(e) => e.closes_with_normal(),
            Failure::Http(_) => false,
            Failure::Handler(_) => true,
        }
    }

    /// The counted name; handler kinds are looked up in `handler_kinds`.
    pub fn name(self, handler_kinds: &[std::sync::Arc<str>]) -> String {
        match self {
            Failure::Session(e) => e.as_str().to_owned(),
            Failure::Http(status) => format!("http_{status}"),
            Failure::Handler(i) => handler_kinds
                .get(usize::from(i))
                .map_or_else(|| format!("handler_{i}"), |k| k.to_string()),
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names are a contract with every coordinator and report reader.
    #[test]
    fn wire_names_are_unique_snake_case() {
        let names: std::collections::BTreeSet<_> = SessionError::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), SessionError::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert_eq!(SessionError::ConnectRefused.to_string(), "connect_refused");
        assert_eq!(SessionError::UnmatchedResponse.as_str(), "unmatched_response");
    }

    #[test]
    fn only_a_live_connection_closes_with_1000() {
        let clean: Vec<_> = SessionError::ALL
            .into_iter()
            .filter(|e| e.closes_with_normal())
            .collect();
        assert_eq!(
            clean,
            [
                SessionError::Aborted,
                SessionError::SessionTimeout,
                SessionError::ErrorEvent,
                SessionError::ResponseTimeout,
                SessionError::ExpectTimeout,
                SessionError::ExpectMismatch,
                SessionError::ListenTimeout,
                SessionError::PingTimeout,
                SessionError::UnexpectedMessage,
            ]
        );
    }
}
