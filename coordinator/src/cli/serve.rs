//! `ws-coordinator serve`: the daemon for agents and remote control.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeOpts;
use crate::auth::Auth;
use crate::exit::{CliError, OK};
use crate::hub::{Hub, HubConfig, OutDir};

/// Binds `--listen` and serves until `cancel`.
pub async fn serve(opts: ServeOpts, cancel: CancellationToken) -> Result<u8, CliError> {
    let auth = Auth::new(opts.auth.token.clone(), opts.auth.insecure).map_err(CliError::bad_input)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| CliError::op(format!("cannot listen on {}: {e}", opts.listen)))?;
    serve_on(listener, opts, auth, cancel).await
}

/// Serves on an already bound listener until `cancel`.
pub async fn serve_on(
    listener: TcpListener,
    opts: ServeOpts,
    auth: Auth,
    cancel: CancellationToken,
) -> Result<u8, CliError> {
    let addr = listener.local_addr().map_err(CliError::op)?;
    let tls = opts.tls.identity()?;
    let config = HubConfig {
        out: OutDir::PerRun(opts.out.clone()),
        agent_wait: opts.agent_wait,
        heartbeat_timeout: opts.heartbeat_timeout,
    };
    let (hub, hub_task) = Hub::spawn(config, cancel.clone());
    eprintln!(
        "ws-coordinator: serving agents and control on {addr}; reports under {}",
        opts.out.display()
    );
    let r = crate::server::serve(listener, hub, auth, tls, cancel.clone()).await;
    cancel.cancel();
    let _ = hub_task.await;
    r.map_err(|e| CliError::op(format!("gRPC server failed: {e}")))?;
    Ok(OK)
}
