//! Optional TLS on the gRPC link: a coordinator with a certificate, an in-process
//! agent and an external `ws-agent` process both dialing https:// with the CA.

mod common;

use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;
use wsload_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_connect_over_tls() {
    let dir = out_dir("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let (ca_pem, cert_pem, key_pem) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert_pem, leaf.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();

    let (addr, _stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = dir.join("report");
    let opts = run_opts(&[
        "--target",
        &target,
        "--sessions",
        "40",
        "--batch-size",
        "10",
        "--messages-per-session",
        "2",
        "--agents",
        "1",
        "--local-agents",
        "1",
        "--token",
        "tls-token",
        "--out",
        out.to_str().unwrap(),
        "--tls-cert",
        cert_pem.to_str().unwrap(),
        "--tls-key",
        key_pem.to_str().unwrap(),
        "--tls-ca",
        ca_pem.to_str().unwrap(),
    ]);
    let _remote = agent_process(
        &format!("https://127.0.0.1:{port}"),
        "tls-agent",
        &[
            "--token",
            "tls-token",
            "--tls-ca",
            ca_pem.to_str().unwrap(),
            "--tls-domain",
            "localhost",
        ],
    );
    let (code, f) = run_within(Duration::from_secs(60), listener, opts, CancellationToken::new()).await;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(f.report.agents.len(), 2);
    assert_eq!(
        (f.report.totals.sessions_opened, f.report.totals.responses_received),
        (40, 80)
    );
}
