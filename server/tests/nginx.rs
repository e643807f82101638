//! nginx with the repository's config in front of 12 instances: the sessions of
//! one source address spread evenly.

use wsload_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_address_spreads_over_all_12_instances() {
    let redis = Redis::start();
    let server = WsServer::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = Nginx::start(&server.ports());
    let url = nginx.url();

    // 1,200 sessions from 127.0.0.1, opened 50 at a time.
    let mut sessions = Vec::with_capacity(1200);
    for _ in 0..24 {
        let batch: Vec<_> = (0..50).map(|_| tokio::spawn(open_session_owned(url.clone()))).collect();
        for h in batch {
            sessions.push(h.await.unwrap());
        }
    }
    assert_eq!(sessions.len(), 1200);
    let mut per_instance = Vec::new();
    for port in server.ports() {
        per_instance.push(metric(port, "ws_connections_open").await as u64);
    }
    assert_eq!(per_instance.iter().sum::<u64>(), 1200, "{per_instance:?}");
    for (i, n) in per_instance.iter().enumerate() {
        assert!(
            (70..=130).contains(n),
            "instance {} holds {n} sessions: {per_instance:?}",
            i + 1
        );
    }
    // Through nginx the protocol is intact.
    let (mut ws, _) = open_session(&url).await;
    for n in 1..=3 {
        assert_eq!(roundtrip(&mut ws, "via nginx").await["messageCount"], n);
    }
    // /healthz is passed through.
    assert_eq!(http_get(nginx.port(), "/healthz").await.0, 200);
}

async fn open_session_owned(url: String) -> Ws {
    open_session(&url).await.0
}
