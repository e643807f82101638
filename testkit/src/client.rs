//! WebSocket client helpers on tokio-tungstenite, an implementation independent of
//! the server's (yawc): connect, read the next JSON event, send and read the reply,
//! read the close code. Every read is bounded, so a missing event fails the test.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect or one read may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Connects with small buffers (tungstenite's defaults cost ~135 KB per client).
pub async fn connect(url: &str) -> Ws {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let (ws, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
    .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    ws
}

/// The next text frame as JSON (pings are answered by tungstenite while reading).
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("no message within 10 s")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("valid JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Connects and returns the socket with its session event.
pub async fn open_session(url: &str) -> (Ws, Value) {
    let mut ws = connect(url).await;
    let session = next_json(&mut ws).await;
    assert_eq!(session["type"], "session", "first event must be the session event");
    (ws, session)
}

/// Sends a text message and returns the reply.
pub async fn roundtrip(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::text(text)).await.expect("send");
    next_json(ws).await
}

/// Sends a text message and returns the reply, skipping the periodic server events
/// that may come before it.
pub async fn reply_to(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::text(text)).await.expect("send");
    loop {
        let v = next_json(ws).await;
        if v["type"] != "server-event" {
            return v;
        }
    }
}

/// Reads until the server closes; returns the close code (None on a bare EOF or when
/// nothing closes within 10 s).
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
        }
    }
}
