//! The signal that ends a binary cleanly.

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, `docker stop`): both mean the
/// same clean shutdown. The `ws-agent` and `ws-coordinator` binaries cancel their one
/// shutdown token when it resolves.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
