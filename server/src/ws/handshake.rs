//! The opening handshake (RFC 6455 4.2) on hyper's HTTP/1.1 upgrade, and the
//! permessage-deflate negotiation (RFC 7692 7.1): the server accepts an offer it
//! can honor without context takeover in either direction, and declines the rest.

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};

/// Why an upgrade request was refused (the 400 response says so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// No `Sec-WebSocket-Key`.
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// A `Sec-WebSocket-Version` other than 13.
    #[error("Sec-WebSocket-Version must be 13")]
    BadVersion,
}

/// An accepted upgrade: the 101 response, and whether compression was agreed.
#[derive(Debug)]
pub struct Accepted {
    /// The `101 Switching Protocols` response.
    pub response: Response<()>,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
}

/// Answers an upgrade request; `compression` says whether the server offers
/// permessage-deflate at all.
pub fn accept<B>(req: &Request<B>, compression: bool) -> Result<Accepted, HandshakeError> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::MissingKey)?;
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(HandshakeError::BadVersion);
    }
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key);
    let agreed = compression.then(|| negotiate_deflate(req.headers())).flatten();
    if let Some(terms) = &agreed {
        builder = builder.header(header::SEC_WEBSOCKET_EXTENSIONS, terms.as_str());
    }
    let response = builder.body(()).expect("static header names and valid values");
    Ok(Accepted {
        response,
        deflate: agreed.is_some(),
    })
}

/// The response terms for the first permessage-deflate offer this server can
/// honor, if any.
pub fn negotiate_deflate(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(answer_offer)
}

/// The answer to one offer: the server never keeps context between messages and
/// asks the client not to either, so neither side holds a window between messages.
fn answer_offer(offer: &str) -> Option<String> {
    let mut params = offer.split(';').map(str::trim);
    if params.next() != Some("permessage-deflate") {
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut server_window = false;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        let bits = value.map(|v| v.parse::<u8>().ok().filter(|b| (8..=15).contains(b)));
        match (name, bits) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            // The client may use any window: inflating with 15 bits reads them all.
            ("client_max_window_bits", None | Some(Some(_))) => {}
            // The server deflates with a 15-bit window; a smaller one is declined.
            ("server_max_window_bits", Some(Some(15))) => server_window = true,
            _ => return None,
        }
    }
    let mut terms = String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if server_window {
        terms.push_str("; server_max_window_bits=15");
    }
    Some(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/ws");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const BASE: [(&str, &str); 2] = [
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn accepts_the_rfc_example() {
        let a = accept(&request(&BASE), true).unwrap();
        assert_eq!(a.response.status(), 101);
        assert_eq!(
            a.response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(!a.deflate);
        assert!(a.response.headers().get("sec-websocket-extensions").is_none());
    }

    #[test]
    fn refuses_bad_requests() {
        assert_eq!(
            accept(&request(&BASE[1..]), true).unwrap_err(),
            HandshakeError::MissingKey
        );
        let v12 = [BASE[0], ("sec-websocket-version", "12")];
        assert_eq!(accept(&request(&v12), true).unwrap_err(), HandshakeError::BadVersion);
    }

    #[test]
    fn negotiates_deflate_it_can_honor() {
        let answer = |offer: &str| {
            let mut h = BASE.to_vec();
            h.push(("sec-websocket-extensions", offer));
            let a = accept(&request(&h), true).unwrap();
            assert_eq!(a.deflate, a.response.headers().contains_key("sec-websocket-extensions"));
            a.response
                .headers()
                .get("sec-websocket-extensions")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let plain = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        // Python websockets' and browsers' offers.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits").as_deref(),
            Some(plain)
        );
        assert_eq!(answer("permessage-deflate").as_deref(), Some(plain));
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits=10; server_no_context_takeover").as_deref(),
            Some(plain)
        );
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=15").as_deref(),
            Some(&*format!("{plain}; server_max_window_bits=15"))
        );
        // Declined: a window the server does not use, unknown or repeated parameters;
        // the next acceptable offer is taken.
        assert_eq!(answer("permessage-deflate; server_max_window_bits=10"), None);
        assert_eq!(answer("permessage-deflate; mystery"), None);
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits; client_max_window_bits"),
            None
        );
        assert_eq!(answer("x-webkit-deflate-frame"), None);
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=10, permessage-deflate").as_deref(),
            Some(plain)
        );
        // Compression turned off: nothing is negotiated.
        let mut h = BASE.to_vec();
        h.push(("sec-websocket-extensions", "permessage-deflate"));
        assert!(!accept(&request(&h), false).unwrap().deflate);
    }
}
