//! Limits: max connections (503), backpressure (slow consumers lose server events,
//! then are closed with 1008), idle timeout with server pings.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};
use wsload_testkit::*;

#[tokio::test]
async fn upgrades_beyond_max_connections_get_503() {
    let server = WsServer::memory(&["--max-connections", "2"]);
    let url = server.url(server.port(0));
    let (_a, _) = open_session(&url).await;
    let (_b, _) = open_session(&url).await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(metric(server.port(0), "ws_connections_rejected_total").await, 1.0);
    assert_eq!(metric(server.port(0), "ws_connections_open").await, 2.0);
}

#[tokio::test]
async fn slow_consumer_is_closed_with_1008() {
    let server = WsServer::memory(&["--max-backpressure", "16KiB"]);
    let port = server.port(0);
    let (mut ws, _) = open_session(&server.url(port)).await;
    // Send without reading: the responses pile up in the kernel buffers, then in the
    // server's queue, until it passes 16 KiB and the server closes the connection.
    let payload = "x".repeat(64);
    let mut sent = 0u64;
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        while sent < 400_000 {
            if ws.send(Message::text(payload.clone())).await.is_err() {
                return true;
            }
            sent += 1;
            if sent % 1000 == 0 && metric(port, "ws_backpressure_closes_total").await == 1.0 {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(closed, "not closed after {sent} unread messages");
    assert_eq!(metric(port, "ws_backpressure_closes_total").await, 1.0);
    // Reading now shows responses and finally the 1008 close.
    let mut responses = 0u64;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => responses += 1,
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            _ => break None,
        }
    };
    assert_eq!(code, Some(1008), "after {responses} responses");
    assert!(responses < sent, "the queue was bounded");
}

#[tokio::test]
async fn idle_clients_are_pinged_and_silent_ones_closed() {
    let server = WsServer::start(
        1,
        &[
            "--broker",
            "memory",
            "--idle-timeout",
            "1500ms",
            "--ping-interval",
            "300ms",
        ],
    );
    let url = server.url(server.port(0));
    // A reading client answers pings (tungstenite does it while reading) and stays.
    let (mut alive, _) = open_session(&url).await;
    // A client that never reads never answers pings and is closed.
    let (mut silent, _) = open_session(&url).await;
    let mut pings = 0;
    let until = std::time::Instant::now() + Duration::from_millis(3000);
    while std::time::Instant::now() < until {
        if let Ok(Some(Ok(Message::Ping(_)))) = tokio::time::timeout(Duration::from_millis(100), alive.next()).await {
            pings += 1;
        }
    }
    assert!(pings >= 5, "pings every 300 ms, got {pings}");
    assert_eq!(roundtrip(&mut alive, "still open").await["messageCount"], 1);
    assert_eq!(close_code(&mut silent).await, Some(1000));
    assert_eq!(metric(server.port(0), "ws_idle_closes_total").await, 1.0);
}

#[tokio::test]
async fn slow_consumer_loses_server_events_first() {
    let redis = Redis::start();
    let server = WsServer::start(
        1,
        &[
            "--redis-url",
            &redis.url(),
            "--max-backpressure",
            "1MiB",
            "--server-event-interval",
            "0",
        ],
    );
    let port = server.port(0);
    // A client that never reads.
    let (_ws, _) = open_session(&server.url(port)).await;
    let mut conn = redis.conn().await;
    let event = format!(
        r#"{{"type":"server-event","message":"{}","timestamp":"t"}}"#,
        "e".repeat(64 * 1024)
    );
    // Up to 64 MiB of events: more than the kernel's socket buffers can absorb.
    for i in 0..1024 {
        let _: i64 = redis::AsyncCommands::publish(&mut conn, "server-event", &event)
            .await
            .unwrap();
        if i % 16 == 15 && metric(port, "ws_backpressure_drops_total").await > 0.0 {
            break;
        }
    }
    assert!(
        metric(port, "ws_backpressure_drops_total").await > 0.0,
        "server events dropped"
    );
    assert_eq!(
        metric(port, "ws_backpressure_closes_total").await,
        0.0,
        "dropping events does not close"
    );
    assert_eq!(metric(port, "ws_connections_open").await, 1.0);
}

#[tokio::test]
async fn a_client_that_never_sends_its_handshake_is_dropped() {
    use tokio::io::AsyncReadExt;
    let server = WsServer::memory(&["--handshake-timeout", "500ms"]);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port(0)))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "connection still open after 5 s"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "dropped after {:?}",
        start.elapsed()
    );
}
