//! Sessions in Redis: TTL while open, batch cleanup after close, flush on SIGTERM,
//! and surviving a Redis outage.

use futures_util::SinkExt;
use redis::AsyncCommands;
use std::time::{Duration, Instant};
use wsload_testkit::*;

async fn exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    conn.exists(key).await.unwrap()
}

#[tokio::test]
async fn session_hash_has_ttl_and_is_cleaned_after_close() {
    let redis = Redis::start();
    let server = WsServer::start(
        1,
        &[
            "--redis-url",
            &redis.url(),
            "--cleanup-interval",
            "500ms",
            "--session-ttl",
            "60s",
        ],
    );
    let mut conn = redis.conn().await;
    let (mut ws, session) = open_session(&server.url(server.port(0))).await;
    let key = format!("session:{}", session["sessionId"].as_str().unwrap());

    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((1..=60).contains(&ttl), "open session has a TTL, got {ttl}");
    let fields: std::collections::HashMap<String, String> = conn.hgetall(&key).await.unwrap();
    for f in ["instance", "host", "port", "created", "messageCount"] {
        assert!(fields.contains_key(f), "session hash lacks {f}: {fields:?}");
    }
    assert_eq!(fields["instance"], "1");
    assert_eq!(fields["messageCount"], "0");

    ws.close(None).await.unwrap();
    // Timed from when the server has seen the close (a busy machine may take a while
    // to get there): the key goes within the next cleanup intervals.
    let port = server.port(0);
    wait_until_async(Duration::from_secs(5), "the server to see the close", || async move {
        metric(port, "ws_connections_open").await == 0.0
    })
    .await
    .unwrap();
    let closed = Instant::now();
    wait_until_async(
        closed + Duration::from_millis(1500),
        "the session hash to be deleted (3 cleanup intervals)",
        || {
            let (mut conn, key) = (conn.clone(), key.clone());
            async move { !exists(&mut conn, &key).await }
        },
    )
    .await
    .unwrap();
    // The counter moves once Redis has answered the DEL, a moment after the key is gone.
    wait_until_async(
        closed + Duration::from_secs(2),
        "ws_sessions_cleaned_total to count it",
        || async move { metric(port, "ws_sessions_cleaned_total").await >= 1.0 },
    )
    .await
    .unwrap();
    assert_eq!(metric(port, "ws_sessions_cleaned_total").await, 1.0);
}

#[tokio::test]
async fn sigterm_flushes_the_cleanup_queue_and_closes_with_1001() {
    let redis = Redis::start();
    let mut server = WsServer::start(2, &["--redis-url", &redis.url(), "--cleanup-interval", "1h"]);
    let mut conn = redis.conn().await;
    let mut keys = Vec::new();
    let mut open = Vec::new();
    for port in server.ports() {
        for _ in 0..5 {
            let (ws, s) = open_session(&server.url(port)).await;
            keys.push(format!("session:{}", s["sessionId"].as_str().unwrap()));
            open.push(ws);
        }
    }
    // Close half of them: they wait in the queue (the interval is an hour).
    for mut ws in open.drain(..5) {
        ws.close(None).await.unwrap();
    }
    let ports = server.ports();
    let queued = || async {
        let mut n = 0.0;
        for port in &ports {
            n += metric(*port, "ws_cleanup_queue_length").await;
        }
        n
    };
    let queued = &queued;
    wait_until_async(
        Duration::from_secs(10),
        "the 5 closed sessions to be queued",
        move || async move { queued().await == 5.0 },
    )
    .await
    .unwrap();
    for k in &keys {
        assert!(exists(&mut conn, k).await, "queued, not yet deleted");
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    for mut ws in open {
        assert_eq!(close_code(&mut ws).await, Some(1001), "clients see 1001 on shutdown");
    }
    let status = server
        .wait(Duration::from_secs(15))
        .expect("supervisor exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    for k in &keys {
        assert!(!exists(&mut conn, k).await, "{k} deleted at shutdown");
    }
}

#[tokio::test]
async fn redis_outage_is_survived_and_service_resumes() {
    let mut redis = Redis::start();
    let server = WsServer::start(
        1,
        &[
            "--redis-url",
            &redis.url(),
            "--redis-timeout",
            "1s",
            "--server-event-interval",
            "300ms",
        ],
    );
    let port = server.port(0);
    let (mut ws, _) = open_session(&server.url(port)).await;
    assert_eq!(reply_to(&mut ws, "before").await["messageCount"], 1);

    redis.stop();
    let sent = Instant::now();
    let reply = reply_to(&mut ws, "during").await;
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "error event within the timeout"
    );
    assert_eq!(reply["type"], "error", "{reply}");
    assert_seed_shape(&reply);
    assert_eq!(reply["message"], "Failed to process message");
    assert!(reply["error"].as_str().unwrap().starts_with("redis"), "{reply}");
    assert_eq!(http_get(port, "/healthz").await.0, 503, "unhealthy without Redis");

    redis.restart();
    // Service comes back by itself: responses (a fresh count: the old hash died
    // with that Redis) and server events.
    let back = Instant::now();
    let mut count = None;
    while back.elapsed() < Duration::from_secs(10) {
        let r = roundtrip(&mut ws, "after").await;
        match r["type"].as_str() {
            Some("response") => {
                count = r["messageCount"].as_i64();
                break;
            }
            Some("error") | Some("server-event") => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => panic!("unexpected {r}"),
        }
    }
    assert!(count.is_some(), "responses resumed within 10 s");
    let mut got_event = false;
    while back.elapsed() < Duration::from_secs(15) && !got_event {
        got_event = next_json(&mut ws).await["type"] == "server-event";
    }
    assert!(got_event, "server events resumed");
    wait_healthy(port, Duration::from_secs(5)).expect("healthy again");
    ws.send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await
        .unwrap();
}
