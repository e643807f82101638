//! The supervisor: 12 worker processes, a killed worker comes back on its port
//! while the other 11 keep their sessions.

use std::time::Duration;
use wsload_testkit::*;

fn worker_pid(port: u16) -> Option<i32> {
    // The worker is the process whose command line says `worker --port <port>`.
    let needle = format!("worker\0--port\0{port}\0");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(&needle) && String::from_utf8_lossy(&cmd).contains("ws-server") {
                return Some(pid);
            }
        }
    }
    None
}

#[tokio::test]
async fn killed_worker_returns_on_the_same_port_others_keep_sessions() {
    let redis = Redis::start();
    let server = WsServer::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let mut sessions = Vec::new();
    for port in server.ports() {
        sessions.push((port, open_session(&server.url(port)).await.0));
    }
    let victim = server.port(4);
    let old = worker_pid(victim).expect("a worker process per port");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGKILL).unwrap();
    // The supervisor keeps the instance's socket: a client connecting while the
    // worker is down waits in the backlog instead of being refused, and the new
    // worker serves it.
    let early = tokio::net::TcpStream::connect(("127.0.0.1", victim))
        .await
        .expect("not refused while the worker restarts");
    let early = tokio_tungstenite::MaybeTlsStream::Plain(early);
    let waiting = tokio::spawn(tokio_tungstenite::client_async(server.url(victim), early));
    wait_until_async(
        Duration::from_secs(2),
        &format!("a new worker on port {victim}"),
        || async move { worker_pid(victim).is_some_and(|p| p != old) },
    )
    .await
    .unwrap();
    let (mut early, _) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the early client is served")
        .unwrap()
        .expect("its upgrade succeeds");
    assert_eq!(next_json(&mut early).await["type"], "session");
    assert_eq!(roundtrip(&mut early, "early").await["messageCount"], 1);
    // The new worker serves.
    let (mut fresh, _) = open_session(&server.url(victim)).await;
    assert_eq!(roundtrip(&mut fresh, "x").await["messageCount"], 1);
    // The other 11 kept their sessions (their counters continue).
    for (port, ws) in sessions.iter_mut() {
        if *port == victim {
            continue;
        }
        assert_eq!(roundtrip(ws, "still here").await["messageCount"], 1, "port {port}");
    }
}

#[tokio::test]
async fn memory_supervisor_sigterm_closes_all_with_1001() {
    let mut server = WsServer::start(3, &["--broker", "memory"]);
    let mut sessions = Vec::new();
    for port in server.ports() {
        sessions.push(open_session(&server.url(port)).await.0);
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    for mut ws in sessions {
        assert_eq!(close_code(&mut ws).await, Some(1001));
    }
    let status = server.wait(Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success());
}
