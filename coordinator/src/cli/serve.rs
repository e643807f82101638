//! `ws-coordinator serve`: the daemon for agents and remote control.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeOpts;
use crate::auth::Auth;
use crate::dashboard::{self, DashboardError, Feed};
use crate::exit::{CliError, OK};
use crate::hub::{Hub, HubConfig, OutDir};
use crate::run_store::RunStore;

/// Binds `--listen` and serves until `cancel`.
pub async fn serve(opts: ServeOpts, cancel: CancellationToken) -> Result<u8, CliError> {
    let auth = opts.roles.auth(&opts.auth)?;
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
    let state_dir = opts.state_dir.clone().unwrap_or_else(|| opts.out.join(".wsload-state"));
    let (store, opened) = RunStore::open(&state_dir).map_err(CliError::op)?;
    for why in &opened.skipped {
        eprintln!("ws-coordinator: warning: skipped an unreadable run record: {why}");
    }
    for id in &opened.interrupted {
        eprintln!("ws-coordinator: run {id} was in progress when the coordinator stopped: listed as interrupted");
    }
    let config = HubConfig {
        out: OutDir::PerRun(opts.out.clone()),
        agent_wait: opts.agent_wait,
        heartbeat_timeout: opts.heartbeat_timeout,
        store: Some(store),
    };
    let dashboard = match opts.dashboard {
        Some(a) => Some(dashboard::bind(a, &auth).await.map_err(|e| match e {
            DashboardError::NeedsToken(_) => CliError::bad_input(e),
            DashboardError::Bind { .. } => CliError::op(e),
        })?),
        None => {
            let a = dashboard::DEFAULT_ADDR.parse().expect("a valid address");
            match dashboard::bind(a, &auth).await {
                Ok(b) => Some(b),
                Err(e) => {
                    eprintln!("ws-coordinator: no dashboard: {e} (choose one with --dashboard)");
                    None
                }
            }
        }
    };
    let feed = Feed::new();
    let (hub, hub_task) = Hub::spawn_with_feed(config, feed.clone(), cancel.clone());
    eprintln!(
        "ws-coordinator: serving agents and control on {addr}; reports under {}",
        opts.out.display()
    );
    let dash_task = dashboard.map(|b| {
        eprintln!("ws-coordinator: dashboard on {}", b.url());
        tokio::spawn(dashboard::serve(b, feed, hub.clone(), cancel.clone()))
    });
    let r = crate::server::serve(listener, hub, auth, tls, cancel.clone()).await;
    cancel.cancel();
    let _ = hub_task.await;
    if let Some(t) = dash_task {
        let _ = t.await;
    }
    r.map_err(|e| CliError::op(format!("gRPC server failed: {e}")))?;
    Ok(OK)
}
