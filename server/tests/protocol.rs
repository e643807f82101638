//! The wire protocol against a real server, checked with tokio-tungstenite (an
//! independent WebSocket implementation) and Python's `websockets` for compression.

use futures_util::SinkExt;
use redis::AsyncCommands;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use wsload_testkit::*;

/// Session event, 30 counted messages, binary rejection, returns the session id.
/// Every event has exactly the keys and JSON types of the seed's (the fixture's).
async fn check_protocol(url: &str) -> String {
    let (mut ws, session) = open_session(url).await;
    assert_seed_shape(&session);
    let id = session["sessionId"].as_str().expect("sessionId").to_owned();
    let uuid = uuid::Uuid::parse_str(&id).expect("session id is a UUID");
    assert_eq!(uuid.get_version_num(), 4, "session id is a UUID v4");
    let ts = session["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("ISO-8601 timestamp");
    assert!(ts.ends_with('Z'));

    for n in 1..=30 {
        let reply = roundtrip(&mut ws, &format!("message {n}")).await;
        assert_eq!(reply["type"], "response");
        assert_seed_shape(&reply);
        assert_eq!(reply["message"], "Message received successfully!");
        assert_eq!(reply["messageCount"], n);
    }

    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let err = next_json(&mut ws).await;
    assert_eq!(err["type"], "error");
    assert_seed_shape(&err);
    assert_eq!(err["message"], "Failed to process message");
    assert_eq!(err["error"], "Binary messages are not supported");
    // The session goes on, and the binary frame was not counted.
    assert_eq!(roundtrip(&mut ws, "after binary").await["messageCount"], 31);
    ws.close(None).await.unwrap();
    id
}

async fn check_oversize_and_utf8(url: &str, max_payload: usize) {
    // Exactly at the limit is accepted.
    let (mut ws, _) = open_session(url).await;
    assert_eq!(roundtrip(&mut ws, &"a".repeat(max_payload)).await["messageCount"], 1);
    // One byte over closes with 1009.
    ws.send(Message::text("b".repeat(max_payload + 1))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1009));

    let (mut ws, _) = open_session(url).await;
    let bad = Frame::message(vec![0xC3u8, 0x28], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));
}

/// Starts Redis and `instances` server instances using it as their broker, with `extra`
/// server flags: the setup of every test of what Redis carries between instances.
fn redis_server(instances: u16, extra: &[&str]) -> (Redis, WsServer) {
    let redis = Redis::start();
    let redis_url = redis.url();
    let mut args = vec!["--broker", "redis", "--redis-url", &redis_url];
    args.extend_from_slice(extra);
    let server = WsServer::start(instances, &args);
    (redis, server)
}

/// Runs a Python `websockets` client that connects to `url` offering permessage-deflate
/// and then runs `body` (Python indented by 8 spaces, with `ws` the connection and `hdrs`
/// the handshake's response headers): the compression tests need a second, independent
/// client implementation.
async fn deflate_client(url: &str, body: &str) -> std::process::Output {
    let script = format!(
        r#"
import asyncio, json, sys
import websockets
async def main(url):
    async with websockets.connect(url, compression="deflate") as ws:
        hdrs = getattr(ws, "response_headers", None) or ws.response.headers
{body}
asyncio.run(main(sys.argv[1]))
"#
    );
    tokio::process::Command::new("python3")
        .args(["-c", &script, url])
        .output()
        .await
        .expect("python3")
}

#[tokio::test]
async fn redis_protocol_and_counts() {
    let (redis, server) = redis_server(1, &["--max-payload", "64KiB"]);
    let url = server.url(server.port(0));
    let mut conn = redis.conn().await;

    // While open, the hash holds the count.
    let (mut ws, session) = open_session(&url).await;
    let key = format!("session:{}", session["sessionId"].as_str().unwrap());
    for n in 1..=30 {
        assert_eq!(roundtrip(&mut ws, "x").await["messageCount"], n);
    }
    let count: i64 = conn.hget(&key, "messageCount").await.unwrap();
    assert_eq!(count, 30, "Redis holds the count");
    let port: u16 = conn.hget(&key, "port").await.unwrap();
    assert_eq!(port, server.port(0));
    ws.close(None).await.unwrap();

    check_protocol(&url).await;
    check_oversize_and_utf8(&url, 64 * 1024).await;
}

/// 100 text messages written at once, with a binary frame among them: the server
/// counts what it read in a few broker calls, yet every reply comes in order with
/// the counter after its own message, the binary frame's error in its place.
async fn check_pipelined_burst(url: &str) -> String {
    let (mut ws, session) = open_session(url).await;
    for n in 1..=100 {
        ws.feed(Message::text(format!("burst {n}"))).await.unwrap();
        if n == 50 {
            ws.feed(Message::binary(vec![1u8])).await.unwrap();
        }
    }
    ws.flush().await.unwrap();
    for n in 1..=100 {
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "response", "{reply}");
        assert_eq!(reply["messageCount"], n, "{reply}");
        if n == 50 {
            assert_eq!(next_json(&mut ws).await["type"], "error");
        }
    }
    ws.close(None).await.unwrap();
    session["sessionId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_pipelined_burst_is_counted_in_order() {
    let (redis, server) = redis_server(1, &["--server-event-interval", "0"]);
    let id = check_pipelined_burst(&server.url(server.port(0))).await;
    let count: i64 = redis
        .conn()
        .await
        .hget(format!("session:{id}"), "messageCount")
        .await
        .unwrap();
    assert_eq!(count, 100, "Redis holds the count");
    let memory = WsServer::memory(&[]);
    check_pipelined_burst(&memory.url(memory.port(0))).await;
}

#[tokio::test]
async fn memory_broker_protocol() {
    let server = WsServer::start(
        2,
        &[
            "--broker",
            "memory",
            "--server-event-interval",
            "0",
            "--max-payload",
            "64KiB",
        ],
    );
    for port in server.ports() {
        check_protocol(&server.url(port)).await;
    }
    check_oversize_and_utf8(&server.url(server.port(0)), 64 * 1024).await;
    // Two sessions count independently.
    let (mut a, _) = open_session(&server.url(server.port(0))).await;
    let (mut b, _) = open_session(&server.url(server.port(1))).await;
    assert_eq!(roundtrip(&mut a, "1").await["messageCount"], 1);
    assert_eq!(roundtrip(&mut a, "2").await["messageCount"], 2);
    assert_eq!(roundtrip(&mut b, "1").await["messageCount"], 1);
}

#[tokio::test]
async fn publish_reaches_clients_on_two_instances() {
    let (redis, server) = redis_server(2, &["--server-event-interval", "0"]);
    let (mut a, _) = open_session(&server.url(server.port(0))).await;
    let (mut b, _) = open_session(&server.url(server.port(1))).await;
    let out = run_ws_server(&["--redis-url", &redis.url(), "publish", "hello from the test"]);
    assert!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "published to 2 subscribed instance(s)"
    );
    for ws in [&mut a, &mut b] {
        let ev = next_json(ws).await;
        assert_eq!(ev["type"], "server-event");
        assert_seed_shape(&ev);
        assert_eq!(ev["message"], "hello from the test");
        chrono::DateTime::parse_from_rfc3339(ev["timestamp"].as_str().unwrap()).unwrap();
    }
}

#[tokio::test]
async fn a_paced_broadcast_reaches_every_client_at_the_fan_out_rate() {
    // 100 clients/s = one client per 10 ms tick: 30 clients take at least 29 ticks.
    let (redis, server) = redis_server(1, &["--server-event-interval", "0", "--fan-out-rate", "100"]);
    let url = server.url(server.port(0));
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(open_session(&url).await.0);
    }
    let mut conn = redis.conn().await;
    let start = std::time::Instant::now();
    let event = r#"{"type":"server-event","message":"paced","timestamp":"t"}"#;
    let _: i64 = conn.publish("server-event", event).await.unwrap();
    let arrivals = futures_util::future::join_all(clients.iter_mut().map(|ws| async move {
        let ev = next_json(ws).await;
        assert_eq!(ev["message"], "paced");
        start.elapsed()
    }))
    .await;
    assert_eq!(arrivals.len(), 30);
    let last = arrivals.iter().max().unwrap();
    assert!(
        *last >= Duration::from_millis(280),
        "30 clients at 100/s are reached over >= 290 ms, the last after {last:?}"
    );
    assert_eq!(metric(server.port(0), "ws_server_events_sent_total").await, 30.0);
}

#[tokio::test]
async fn periodic_server_events_have_exactly_one_publisher() {
    let (_redis, server) = redis_server(3, &["--server-event-interval", "500ms"]);
    let (mut ws, _) = open_session(&server.url(server.port(2))).await;
    // Over ~2.6 s one publisher sends 5 events (at 0.5 s intervals), not 3 x 5.
    let start = std::time::Instant::now();
    let mut events = 0;
    while start.elapsed() < Duration::from_millis(2600) {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(200), futures_util::StreamExt::next(&mut ws)).await
        {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["type"], "server-event");
            assert_seed_shape(&v);
            assert_eq!(v["message"], "This is a server-side event");
            events += 1;
        }
    }
    assert!(
        (4..=6).contains(&events),
        "one publisher at 500 ms gives ~5 events in 2.6 s, got {events}"
    );
}

#[tokio::test]
async fn permessage_deflate_with_python_websockets() {
    // Threshold 0: the server compresses its (small) responses too, so both
    // directions carry compressed frames.
    let server = WsServer::memory(&["--compression-threshold", "0"]);
    let body = r#"
        ext = hdrs.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in ext, ext
        ev = json.loads(await ws.recv())
        assert ev["type"] == "session", ev
        for n in range(1, 21):
            await ws.send("compressible " * 50)
            r = json.loads(await ws.recv())
            assert r["messageCount"] == n, r
        print("ok", ext)"#;
    let out = deflate_client(&server.url(server.port(0)), body).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok permessage-deflate"), "{stdout}");
}

#[tokio::test]
async fn compression_can_be_turned_off() {
    let server = WsServer::memory(&["--compression", "false"]);
    let body = r#"
        print("ext=" + hdrs.get("Sec-WebSocket-Extensions", ""))"#;
    let out = deflate_client(&server.url(server.port(0)), body).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ext=");
}

/// Reads one frame header + payload from a raw socket: (first byte, payload).
async fn read_raw_frame<R: tokio::io::AsyncRead + Unpin>(s: &mut R) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        len = u64::from(s.read_u16().await.unwrap());
    } else if len == 127 {
        len = s.read_u64().await.unwrap();
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

#[tokio::test]
async fn server_frames_are_compressed_on_the_wire() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    for (threshold, expect_compressed) in [("0", true), ("256", false)] {
        let server = WsServer::memory(&["--compression-threshold", threshold]);
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port(0)))
            .await
            .unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .await
        .unwrap();
        let mut reader = BufReader::new(&mut s);
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            headers.push_str(&line);
        }
        assert!(headers.starts_with("HTTP/1.1 101"), "{headers}");
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions: permessage-deflate"),
            "{headers}"
        );
        let (b0, payload) = read_raw_frame(&mut reader).await;
        assert_eq!(b0 & 0x0f, 1, "text frame");
        assert_eq!(b0 & 0x40 != 0, expect_compressed, "RSV1 with threshold {threshold}");
        let text = if expect_compressed {
            // RFC 7692: append the removed sync-flush tail, inflate without expecting an end.
            let mut data = payload.clone();
            data.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(4096);
            flate2::Decompress::new(false)
                .decompress_vec(&data, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            String::from_utf8(out).unwrap()
        } else {
            String::from_utf8(payload).unwrap()
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "session");
    }
}
