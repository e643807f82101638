//! `wss://` targets: nginx terminates TLS with the repository's commented TLS server
//! block enabled (a certificate from a private CA) in front of 12 ws-server
//! instances; the in-process agent trusts that CA through `--target-ca`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{run_opts, run_within};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;
use wsload_testkit::{out_dir, Nginx, WsServer};

/// A CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn plan<'a>(target: &'a str, out: &'a std::path::Path) -> Vec<&'a str> {
    vec![
        "--target",
        target,
        "--sessions",
        "300",
        "--batch-size",
        "100",
        "--batch-interval",
        "100ms",
        "--messages-per-session",
        "5",
        // 100 debug-build TLS handshakes at once on a busy machine: generous.
        "--connect-timeout",
        "30s",
        "--insecure",
        "--out",
        out.to_str().unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_over_wss_through_nginx() {
    let dir = out_dir("wss");
    let (ca, cert, key) = certificates(&dir.join("tls"));
    let server = WsServer::start(12, &["--broker", "memory", "--server-event-interval", "0"]);
    let nginx = Nginx::start_with_tls(&server.ports(), &cert, &key);
    let target = nginx.wss_url();

    // Trusting the CA: every session over TLS, exact counts.
    let out = dir.join("trusted");
    let mut args = plan(&target, &out);
    args.extend(["--target-ca", ca.to_str().unwrap()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (code, f) = run_within(
        Duration::from_secs(60),
        listener,
        run_opts(&args),
        CancellationToken::new(),
    )
    .await;
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(
        (
            t.sessions_opened,
            t.messages_sent,
            t.responses_received,
            t.failed_connections
        ),
        (300, 1500, 1500, 0),
        "{t:?}"
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);

    // Without it the certificate is unknown: every connection fails as tls_error, and
    // the run ends instead of hanging.
    let out = dir.join("untrusted");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_, f) = run_within(
        Duration::from_secs(60),
        listener,
        run_opts(&plan(&target, &out)),
        CancellationToken::new(),
    )
    .await;
    let t = &f.report.totals;
    assert_eq!((t.sessions_opened, t.failed_connections), (0, 300), "{t:?}");
    assert_eq!(t.errors.get("tls_error"), Some(&300), "{:?}", t.errors);
}
