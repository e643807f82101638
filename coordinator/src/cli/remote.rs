//! Commands against a remote coordinator over the Control API.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use wsload_common::{auth_interceptor, BearerAuth, ClientTls};
use wsload_proto::pb::{
    control_client::ControlClient, GetSummaryRequest, ListAgentsRequest, ListRunsRequest, StartRunRequest,
    StopRunRequest, Summary, WatchRunRequest,
};

use super::{RemoteOpts, RunOpts, RunRef, TlsClientOpts, TokenOpts};
use crate::exit::{self, CliError, OK};
use crate::plan::Plan;
use crate::progress::ProgressView;

/// A connected control client.
pub type Client = ControlClient<InterceptedService<Channel, BearerAuth>>;

/// Connects to `url` with the token (or explicit --insecure).
pub async fn connect(url: &str, auth: &TokenOpts, tls: &TlsClientOpts) -> Result<Client, CliError> {
    let token = auth.token()?;
    if token.is_none() && !auth.insecure {
        return Err(CliError::bad_input(
            "give --token (or WSLOAD_TOKEN, or --token-file), or an explicit --insecure",
        ));
    }
    let tls = ClientTls::load(tls.tls_ca.as_deref(), tls.tls_domain.clone()).map_err(CliError::bad_input)?;
    let channel = wsload_common::endpoint(url, tls.as_ref())
        .map_err(|e| CliError::bad_input(format!("bad --remote: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| CliError::op(format!("cannot reach coordinator {url}: {e}")))?;
    let max = wsload_proto::limits::MAX_MESSAGE_BYTES;
    Ok(ControlClient::with_interceptor(channel, auth_interceptor(token))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max))
}

fn status_err(s: tonic::Status) -> CliError {
    match s.code() {
        tonic::Code::InvalidArgument => CliError::bad_input(s.message()),
        _ => CliError::op(format!("coordinator: {}", s.message())),
    }
}

/// Prints a summary in the results.txt spirit.
pub fn print_summary(s: &Summary) {
    println!("run {}: {}", s.run_id, s.state);
    println!(
        "  sessions {} (completed {}), failed connections {}",
        s.sessions, s.sessions_completed, s.failed_connections
    );
    println!(
        "  messages sent {}, responses {}, server events {}",
        s.messages_sent, s.responses, s.server_events
    );
    println!(
        "  duration {:.1}s, throughput {:.1} msg/s",
        s.duration_seconds, s.messages_per_second
    );
    println!(
        "  rtt p50 {:.2}ms p90 {:.2}ms p99 {:.2}ms p99.9 {:.2}ms max {:.2}ms",
        s.rtt_p50_ms, s.rtt_p90_ms, s.rtt_p99_ms, s.rtt_p999_ms, s.rtt_max_ms
    );
    if !s.errors.is_empty() {
        println!("  errors {:?}", s.errors);
    }
    if s.lost_sessions > 0 || !s.lost_agents.is_empty() {
        println!(
            "  lost agents {:?}, lost sessions {}, reassigned batches {}",
            s.lost_agents, s.lost_sessions, s.reassigned_batches
        );
    }
    for t in &s.thresholds {
        println!(
            "  threshold {} observed {} {}",
            t.expr,
            t.observed,
            if t.passed { "PASS" } else { "FAIL" }
        );
    }
    if !s.report_dir.is_empty() {
        println!("  report (on the coordinator): {}", s.report_dir);
    }
}

/// `run --remote`: submit, follow, summarise.
pub async fn run_remote(
    url: &str,
    opts: &RunOpts,
    plan: &Plan,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<u8, CliError> {
    let mut client = connect(url, &opts.auth, &opts.tls_client).await?;
    let req = StartRunRequest {
        plan: Some(plan.to_pb()),
        min_agents: u32::try_from(opts.agents).unwrap_or(u32::MAX),
        thresholds: opts.thresholds.clone(),
        agent_loss: opts.on_agent_loss.to_pb() as i32,
        allow_over_capacity: opts.allow_over_capacity,
        ..Default::default()
    };
    let run_id = client.start_run(req).await.map_err(status_err)?.into_inner().run_id;
    eprintln!("ws-coordinator: started {run_id} on {url}");
    let mut stream = client
        .watch_run(WatchRunRequest { run_id: run_id.clone() })
        .await
        .map_err(status_err)?
        .into_inner();
    let progress = ProgressView::new(opts.quiet);
    let mut stop_sent = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled(), if !stop_sent => {
                stop_sent = true;
                let _ = client.stop_run(StopRunRequest { run_id: run_id.clone() }).await;
            }
            p = stream.message() => match p {
                Ok(Some(p)) if p.done => break,
                Ok(Some(p)) => progress.show(&p),
                _ => break,
            }
        }
    }
    drop(progress);
    let mut summary = client
        .get_summary(GetSummaryRequest { run_id: run_id.clone() })
        .await
        .map_err(status_err)?
        .into_inner();
    for _ in 0..50 {
        if summary.finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        summary = client
            .get_summary(GetSummaryRequest { run_id: run_id.clone() })
            .await
            .map_err(status_err)?
            .into_inner();
    }
    print_summary(&summary);
    let verdict = exit::RunVerdict {
        state: summary.run_state(),
        reason: &summary.state_reason,
        has_thresholds: !summary.thresholds.is_empty(),
        thresholds_passed: summary.thresholds.iter().all(|t| t.passed),
        sessions_failed: summary.sessions_failed,
    };
    let code = exit::for_run(verdict, opts.allow_failures);
    if let Some(note) = exit::failures_note(code, summary.sessions_failed) {
        eprintln!("{note}");
    }
    Ok(code)
}

/// `agents --remote URL`.
pub async fn agents(o: RemoteOpts) -> Result<u8, CliError> {
    let mut client = connect(&o.remote, &o.auth, &o.tls).await?;
    let list = client
        .list_agents(ListAgentsRequest {})
        .await
        .map_err(status_err)?
        .into_inner()
        .agents;
    println!(
        "{:<20} {:<22} {:>12} {:>6} {:>7} {:>7} {:>10} {:>15} {:>5}",
        "NAME", "PEER", "MAX_SESSIONS", "CORES", "MEM%", "CPU%", "OFFSET_US", "NOFILE", "BUSY"
    );
    for a in &list {
        println!(
            "{:<20} {:<22} {:>12} {:>6} {:>7.1} {:>7.1} {:>10} {:>15} {:>5}",
            a.name,
            a.peer,
            a.max_sessions,
            a.cores,
            a.memory_used_percent,
            a.cpu_percent,
            a.clock_offset_micros,
            format!("{}/{}", a.nofile_soft, a.nofile_hard),
            a.busy
        );
    }
    println!("{} agent(s)", list.len());
    Ok(OK)
}

/// `runs --remote URL`: one line per run, newest first.
pub async fn runs(o: RemoteOpts) -> Result<u8, CliError> {
    let mut client = connect(&o.remote, &o.auth, &o.tls).await?;
    let list = client
        .list_runs(ListRunsRequest {})
        .await
        .map_err(status_err)?
        .into_inner()
        .runs;
    println!(
        "{:<18} {:<26} {:<12} {:>10} {:>9}  REPORT",
        "RUN", "STARTED", "STATE", "SESSIONS", "DURATION"
    );
    for s in &list {
        let started = chrono::DateTime::from_timestamp_micros(s.started_unix_micros)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let state = s.state.split(':').next().unwrap_or_default();
        println!(
            "{:<18} {:<26} {:<12} {:>10} {:>8.1}s  {}",
            s.run_id, started, state, s.sessions, s.duration_seconds, s.report_dir
        );
    }
    println!("{} run(s)", list.len());
    Ok(OK)
}

/// `status --remote URL [--run ID]`.
pub async fn status(o: RunRef) -> Result<u8, CliError> {
    let mut client = connect(&o.remote.remote, &o.remote.auth, &o.remote.tls).await?;
    let s = client
        .get_summary(GetSummaryRequest { run_id: o.run_id })
        .await
        .map_err(status_err)?
        .into_inner();
    print_summary(&s);
    Ok(OK)
}

/// `stop --remote URL [--run ID]`.
pub async fn stop(o: RunRef) -> Result<u8, CliError> {
    let mut client = connect(&o.remote.remote, &o.remote.auth, &o.remote.tls).await?;
    let r = client
        .stop_run(StopRunRequest {
            run_id: o.run_id.clone(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    println!(
        "{}",
        if r.stopped {
            "stopping"
        } else {
            "the run had already ended"
        }
    );
    Ok(OK)
}
