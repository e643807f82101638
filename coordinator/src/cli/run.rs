//! `ws-coordinator run`: one self-contained run (listener, hub, local agents), or a
//! run submitted to a remote `serve` daemon with `--remote`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wsload_agent::AgentOpts;

use super::RunOpts;
use crate::auth::Auth;
use crate::dashboard::{self, DashboardError, Feed};
use crate::exit::{self, CliError};
use crate::hub::{Finished, Hub, HubConfig, OutDir, RunRequest};
use crate::plan::Plan;
use crate::progress::ProgressView;
use crate::thresholds::Threshold;

/// Validates, binds `--listen`, runs, prints the summary; returns the exit code.
pub async fn run(opts: RunOpts, cancel: CancellationToken) -> Result<u8, CliError> {
    let plan = opts.plan.validate().map_err(CliError::bad_input)?;
    thresholds_for(&opts, &plan)?;
    if let Some(w) = crate::capacity::batch_cap_warning(&plan) {
        eprintln!("ws-coordinator: {w}");
    }
    if let Some(url) = &opts.remote {
        return super::remote::run_remote(url, &opts, &plan, cancel).await;
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| CliError::op(format!("cannot listen on {}: {e}", opts.listen)))?;
    let (code, finished) = run_on(listener, opts, cancel).await?;
    println!("{}", crate::report::text::render(&finished.report));
    println!("report written to {}", finished.summary.report_dir);
    if let Some(note) = exit::failures_note(code, finished.report.totals.sessions_failed()) {
        eprintln!("{note}");
    }
    Ok(code)
}

/// Runs on a bound listener; returns the exit code and the finished run.
pub async fn run_on(
    listener: TcpListener,
    opts: RunOpts,
    cancel: CancellationToken,
) -> Result<(u8, Finished), CliError> {
    let plan = opts.plan.validate().map_err(CliError::bad_input)?;
    let thresholds = thresholds_for(&opts, &plan)?;
    let local = opts.local_agents.unwrap_or(if opts.agents == 0 { 1 } else { 0 });
    if let Some(ca) = opts.target_ca.as_deref().filter(|_| local > 0) {
        wsload_agent::target_tls::connector(Some(ca))
            .map_err(|e| CliError::bad_input(format!("invalid --target-ca: {e}")))?;
    }
    if local + opts.agents == 0 {
        return Err(CliError::bad_input(
            "--local-agents 0 with --agents 0: no agent would run the load",
        ));
    }
    // Local-only runs need no flags: a random token protects the listener.
    let token = opts.auth.token()?;
    let (auth, agent_token) = if opts.agents == 0 && token.is_none() && !opts.auth.insecure {
        let t = uuid::Uuid::new_v4().simple().to_string();
        (Auth::new(Some(t.clone()), false).map_err(CliError::bad_input)?, Some(t))
    } else {
        let auth = Auth::new(token.clone(), opts.auth.insecure).map_err(CliError::bad_input)?;
        (auth, token)
    };
    let addr = listener.local_addr().map_err(CliError::op)?;
    let identity = opts.tls.identity()?;
    let scheme = if identity.is_some() { "https" } else { "http" };
    if identity.is_some() && opts.tls_client.tls_ca.is_none() && local > 0 {
        return Err(CliError::bad_input(
            "with --tls-cert, local agents need --tls-ca (the CA that signed it)",
        ));
    }
    let dial = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };

    let all = CancellationToken::new();
    let config = HubConfig {
        out: OutDir::Exact(opts.out.clone()),
        agent_wait: opts.agent_wait,
        heartbeat_timeout: opts.heartbeat_timeout,
        store: None,
    };
    let dashboard = match opts.dashboard {
        Some(a) => Some(dashboard::bind(a, &auth).await.map_err(|e| match e {
            DashboardError::NeedsToken(_) => CliError::bad_input(e),
            DashboardError::Bind { .. } => CliError::op(e),
        })?),
        None => None,
    };
    let feed = Feed::new();
    let (hub, hub_task) = Hub::spawn_with_feed(config, feed.clone(), all.clone());
    let dash_task = dashboard.map(|b| {
        eprintln!("ws-coordinator: dashboard on {}", b.url());
        tokio::spawn(dashboard::serve(b, feed, hub.clone(), all.clone()))
    });
    let server = tokio::spawn(crate::server::serve(listener, hub.clone(), auth, identity, all.clone()));
    let mut agents = Vec::new();
    for i in 0..local {
        let mut o = AgentOpts::local(format!("{scheme}://{dial}"), format!("local-{i}"), agent_token.clone());
        o.target_ca.clone_from(&opts.target_ca);
        if scheme == "https" {
            o.tls_ca.clone_from(&opts.tls_client.tls_ca);
            o.tls_domain = Some(opts.tls_client.tls_domain.clone().unwrap_or_else(|| "localhost".into()));
        }
        let c = all.clone();
        agents.push(tokio::spawn(async move {
            if let Err(e) = wsload_agent::run(o, c).await {
                tracing::error!("local agent failed: {e}");
            }
        }));
    }
    if opts.agents > 0 {
        eprintln!(
            "ws-coordinator: listening on {addr}, waiting for {} external agent(s)",
            opts.agents
        );
    }
    let result = follow(&hub, &opts, plan, thresholds, local, &cancel).await;
    let _ = hub.shutdown_agents("run finished".into()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    all.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for a in agents {
            let _ = a.await;
        }
        let _ = server.await;
        let _ = hub_task.await;
        if let Some(t) = dash_task {
            let _ = t.await;
        }
    })
    .await;
    let finished = result?;
    let r = &finished.report;
    let verdict = exit::RunVerdict {
        state: r.outcome.run_state(),
        reason: r.outcome.reason(),
        has_thresholds: !r.thresholds.is_empty(),
        thresholds_passed: r.thresholds_passed(),
        sessions_failed: r.totals.sessions_failed(),
    };
    let code = exit::for_run(verdict, opts.allow_failures);
    Ok((code, finished))
}

/// The `--threshold`s, parsed and checked against the plan's named steps and counts.
fn thresholds_for(opts: &RunOpts, plan: &Plan) -> Result<Vec<Threshold>, CliError> {
    let program = plan.program().map_err(CliError::bad_input)?;
    crate::thresholds::parse_for_plan(&opts.thresholds, &program).map_err(CliError::bad_input)
}

async fn follow(
    hub: &Hub,
    opts: &RunOpts,
    plan: Plan,
    thresholds: Vec<Threshold>,
    local: usize,
    cancel: &CancellationToken,
) -> Result<Finished, CliError> {
    let req = RunRequest {
        plan,
        min_agents: local + opts.agents,
        on_loss: opts.on_agent_loss,
        thresholds,
        allow_over_capacity: opts.allow_over_capacity,
    };
    let run_id = hub.start_run(req).await.map_err(CliError::op)?;
    let (tx, mut rx) = mpsc::channel(64);
    hub.watch(run_id.clone(), tx).await.map_err(CliError::op)?;
    let progress = ProgressView::new(opts.quiet);
    let mut stop_sent = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled(), if !stop_sent => {
                stop_sent = true;
                progress.note("ws-coordinator: stopping the run (agents close their sessions)...");
                let _ = hub.stop_run(run_id.clone()).await;
            }
            p = rx.recv() => match p {
                Some(Ok(p)) if p.done => break,
                Some(Ok(p)) => progress.show(&p),
                _ => break,
            }
        }
    }
    drop(progress);
    for _ in 0..600 {
        if let Some(f) = hub.finished(run_id.clone()).await.map_err(CliError::op)? {
            return Ok(f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(CliError::op(format!("run {run_id} did not produce a report")))
}
