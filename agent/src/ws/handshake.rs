//! The client's opening handshake (RFC 6455 4.1) and the permessage-deflate offer
//! (RFC 7692): the request is written in one go, the response read into a buffer
//! that lives only for the handshake. Bytes the server sent after its response
//! (often its first frame) are handed to the frame reader.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

/// The extension offer: no context takeover either way, so no connection keeps a
/// compression window and compressors come from one pool per process.
const DEFLATE_OFFER: &str = "permessage-deflate; client_no_context_takeover; server_no_context_takeover";
/// Longest response head read.
const MAX_RESPONSE: usize = 16 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 64;

/// Why the upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The server answered with another status than 101.
    #[error("HTTP {0} instead of 101")]
    Status(u16),
    /// The response is not a valid upgrade to WebSocket.
    #[error("invalid upgrade response: {0}")]
    Invalid(&'static str),
    /// Reading or writing the socket failed.
    #[error("I/O error during the upgrade")]
    Io,
}

/// What was agreed.
#[derive(Debug)]
pub struct Upgraded {
    /// permessage-deflate (without context takeover) was negotiated.
    pub deflate: bool,
    /// Bytes after the response head (frames the server already sent).
    pub early: Vec<u8>,
}

/// The request head for `url` with `headers` (a scenario's, templated; a `Host`
/// among them replaces the URL's).
pub fn request(url: &Url, key: &str, compression: bool, headers: &[(String, String)]) -> Vec<u8> {
    let mut r = String::with_capacity(256);
    r.push_str("GET ");
    r.push_str(url.path());
    if let Some(q) = url.query() {
        r.push('?');
        r.push_str(q);
    }
    r.push_str(" HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        r.push_str("Host: ");
        r.push_str(url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            r.push(':');
            r.push_str(&port.to_string());
        }
        r.push_str("\r\n");
    }
    r.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    r.push_str(key);
    r.push_str("\r\n");
    if compression {
        r.push_str("Sec-WebSocket-Extensions: ");
        r.push_str(DEFLATE_OFFER);
        r.push_str("\r\n");
    }
    for (name, value) in headers {
        r.push_str(name);
        r.push_str(": ");
        r.push_str(value);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Upgrades `stream` to WebSocket for `url`.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    url: &Url,
    compression: bool,
    headers: &[(String, String)],
) -> Result<Upgraded, HandshakeError> {
    let key = tungstenite::handshake::client::generate_key();
    stream
        .write_all(&request(url, &key, compression, headers))
        .await
        .map_err(|_| HandshakeError::Io)?;
    stream.flush().await.map_err(|_| HandshakeError::Io)?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_RESPONSE {
                return Err(HandshakeError::Invalid("response head too long"));
            }
            buf.reserve(buf.len());
        }
        if stream.read_buf(&mut buf).await.map_err(|_| HandshakeError::Io)? == 0 {
            return Err(HandshakeError::Io);
        }
        if let Some(done) = response(&buf, &key, compression)? {
            return Ok(done);
        }
    }
}

/// Parses the response head in `buf`; `None` while it is incomplete.
pub fn response(buf: &[u8], key: &str, offered: bool) -> Result<Option<Upgraded>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HandshakeError::Invalid("malformed HTTP response")),
    };
    let status = r.code.unwrap_or(0);
    if status != 101 {
        return Err(HandshakeError::Status(status));
    }
    let headers: &[httparse::Header<'_>] = r.headers;
    let header = |name: &'static str| headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name));
    let has_token = |name: &'static str, token: &str| {
        header(name).any(|h| {
            std::str::from_utf8(h.value).is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err(HandshakeError::Invalid("no Upgrade: websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(HandshakeError::Invalid("no Connection: upgrade"));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if !header("sec-websocket-accept").any(|h| h.value == expected.as_bytes()) {
        return Err(HandshakeError::Invalid("wrong Sec-WebSocket-Accept"));
    }
    let mut deflate = false;
    for h in header("sec-websocket-extensions") {
        let v = std::str::from_utf8(h.value).map_err(|_| HandshakeError::Invalid("extensions"))?;
        for ext in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !offered || deflate || !deflate_accepted(ext)? {
                return Err(HandshakeError::Invalid("an extension that was not offered"));
            }
            deflate = true;
        }
    }
    Ok(Some(Upgraded {
        deflate,
        early: buf[len..].to_vec(),
    }))
}

/// Whether the server's permessage-deflate terms are ones this client can keep:
/// the server must not take context over (messages are inflated by pooled,
/// reset decompressors), and the client's window is not narrowed (not offered).
fn deflate_accepted(ext: &str) -> Result<bool, HandshakeError> {
    let mut params = ext.split(';').map(str::trim);
    if params.next() != Some("permessage-deflate") {
        return Ok(false);
    }
    let mut server_no_context = false;
    for p in params {
        let name = p.split_once('=').map_or(p, |(n, _)| n.trim());
        match name {
            "server_no_context_takeover" => server_no_context = true,
            "client_no_context_takeover" | "server_max_window_bits" => {}
            _ => return Err(HandshakeError::Invalid("permessage-deflate parameter not offered")),
        }
    }
    if !server_no_context {
        return Err(HandshakeError::Invalid(
            "permessage-deflate with server context takeover",
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn head(extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n")
    }

    #[test]
    fn writes_the_request_with_host_query_and_headers() {
        let url = Url::parse("ws://127.0.0.1:8080/ws?a=1").unwrap();
        let r = String::from_utf8(request(&url, KEY, true, &[("X-Token".into(), "t".into())])).unwrap();
        assert!(r.starts_with("GET /ws?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"), "{r}");
        assert!(r.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(r.contains(&format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n")));
        assert!(r.ends_with("X-Token: t\r\n\r\n"));
        let url = Url::parse("wss://[::1]/").unwrap();
        let r = String::from_utf8(request(&url, KEY, false, &[("host".into(), "h".into())])).unwrap();
        assert!(!r.contains("Host: [::1]") && r.contains("host: h\r\n"), "{r}");
        assert!(!r.contains("Extensions"));
    }

    #[test]
    fn reads_the_response_and_keeps_early_bytes() {
        let mut wire = head("").into_bytes();
        assert!(response(&wire[..wire.len() - 1], KEY, false).unwrap().is_none());
        wire.extend_from_slice(b"\x81\x02hi");
        let up = response(&wire, KEY, false).unwrap().unwrap();
        assert_eq!((up.deflate, &up.early[..]), (false, &b"\x81\x02hi"[..]));
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        let r = |extra: &str, offered: bool| response(head(extra).as_bytes(), KEY, offered).map(|u| u.unwrap().deflate);
        let plain =
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";
        assert_eq!(r(plain, true), Ok(true));
        assert!(r(plain, false).is_err(), "not offered");
        assert!(r("Sec-WebSocket-Extensions: permessage-deflate\r\n", true).is_err());
        assert!(r(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=9\r\n",
            true
        )
        .is_err());
        assert_eq!(
            response(b"HTTP/1.1 503 Busy\r\n\r\n", KEY, false).err(),
            Some(HandshakeError::Status(503))
        );
        let wrong = head("").replace(ACCEPT, "nope");
        assert!(response(wrong.as_bytes(), KEY, false).is_err());
    }
}
