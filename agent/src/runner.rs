//! Executes one run's assignment: waits for the barrier start, starts batches at
//! their scheduled offsets (bounded by max active batches and held back while the
//! memory throttle is on), aggregates outcomes into per-second windows (with the
//! agent's own CPU use and scheduler lag, [`crate::load`]) and reports
//! acknowledgements, windows and the final `RunFinished` through `out`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsload_proto::pb::{
    agent_message::Body, batch_ack::State, AgentMessage, Batch, BatchAck, ResourceSample, RunFinished,
};

use crate::load::LoadMeter;
use crate::metrics::{Event, MetricNames, Window};
use crate::session::{run_session, SessionCtx};

/// Capacity of the session-event channel (bounded: sessions wait if the aggregator lags).
const EVENT_CHANNEL: usize = 16_384;
/// Most events the aggregator takes per turn.
const EVENT_DRAIN: usize = 4096;

/// Inputs of one run on this agent.
pub struct RunInput {
    /// The run's id, echoed in every report.
    pub run_id: String,
    /// Batches known at start; more may arrive on `more`.
    pub batches: Vec<Batch>,
    /// Most batches in progress at once on this agent.
    pub max_active_batches: usize,
    /// Per-session settings; `events` is replaced by the runner's own channel.
    pub session: SessionTemplate,
    /// What the windows' step, count and failure ids are called.
    pub names: Arc<MetricNames>,
}

/// A [`SessionCtx`] without its event channel.
pub type SessionTemplate = Box<dyn Fn(mpsc::Sender<Event>) -> SessionCtx + Send + Sync>;

/// Handles shared with the link task.
pub struct RunLinks {
    /// The run start instant (local clock), sent once by the link.
    pub start: tokio::sync::oneshot::Receiver<Instant>,
    /// Extra batches (reassigned from lost agents).
    pub more: mpsc::Receiver<Vec<Batch>>,
    /// Outbound messages to the coordinator.
    pub out: mpsc::Sender<AgentMessage>,
    /// Latest resource sample (for throttling and windows).
    pub resources: watch::Receiver<ResourceSample>,
    /// Open-session gauge published for heartbeats.
    pub open_sessions: watch::Sender<u64>,
}

fn ack(run_id: &str, batch_id: u64, state: State) -> AgentMessage {
    AgentMessage {
        body: Some(Body::BatchAck(BatchAck {
            run_id: run_id.into(),
            batch_id,
            state: state as i32,
            detail: String::new(),
        })),
        ..Default::default()
    }
}

/// Runs until `cancel` (stop, shutdown, grace period) and then reports `RunFinished`.
pub async fn run(input: RunInput, mut links: RunLinks, cancel: CancellationToken) {
    let run_id = input.run_id.clone();
    let start = tokio::select! {
        _ = cancel.cancelled() => None,
        s = &mut links.start => s.ok(),
    };
    if let Some(start) = start {
        sleep_until(start).await;
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL);
        let agg = tokio::spawn(aggregate(
            Window::new(input.names.clone()),
            run_id.clone(),
            start,
            ev_rx,
            links.out.clone(),
            links.resources.clone(),
            links.open_sessions.clone(),
        ));
        schedule(&input, &mut links, start, ev_tx, &cancel).await;
        let _ = agg.await;
    }
    let _ = links
        .out
        .send(AgentMessage {
            body: Some(Body::RunFinished(RunFinished { run_id })),
            ..Default::default()
        })
        .await;
}

async fn schedule(
    input: &RunInput,
    links: &mut RunLinks,
    start: Instant,
    ev_tx: mpsc::Sender<Event>,
    cancel: &CancellationToken,
) {
    let ctx = Arc::new((input.session)(ev_tx.clone()));
    let mut pending: BinaryHeap<Reverse<(u64, u64, u64, u64)>> = BinaryHeap::new();
    let push = |pending: &mut BinaryHeap<_>, b: &Batch| {
        pending.push(Reverse((b.start_offset_ms, b.batch_id, b.sessions, b.first_session)));
    };
    for b in &input.batches {
        push(&mut pending, b);
    }
    let mut active: JoinSet<()> = JoinSet::new();
    let max_active = input.max_active_batches.max(1);
    loop {
        let next = pending
            .peek()
            .map(|Reverse((off, ..))| start + Duration::from_millis(*off));
        let can_start = next.is_some() && active.len() < max_active;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(more) = links.more.recv() => for b in &more { push(&mut pending, b) },
            Some(_) = active.join_next(), if !active.is_empty() => {}
            _ = sleep_until(next.unwrap_or(start)), if can_start => {
                if links.resources.borrow().throttled {
                    let t = Instant::now();
                    sleep(Duration::from_millis(100)).await;
                    let _ = ev_tx.send(Event::Throttled(t.elapsed())).await;
                    continue;
                }
                let Some(Reverse((_, batch_id, sessions, first))) = pending.pop() else { continue };
                let _ = links.out.send(ack(&input.run_id, batch_id, State::Started)).await;
                let (ctx, out, run_id, cancel) = (ctx.clone(), links.out.clone(), input.run_id.clone(), cancel.clone());
                active.spawn(async move {
                    // A TaskTracker costs less per session than a JoinSet entry.
                    let tracker = TaskTracker::new();
                    for i in first..first + sessions {
                        tracker.spawn(run_session(ctx.clone(), i, cancel.clone()));
                    }
                    tracker.close();
                    tracker.wait().await;
                    let _ = out.send(ack(&run_id, batch_id, State::Done)).await;
                });
            }
        }
    }
    // Cancelled: sessions see the same token and close; wait for them to report.
    while active.join_next().await.is_some() {}
}

/// Owns the window; closes one per second (aligned on the run start) until every
/// event sender is gone, then flushes the last partial window.
async fn aggregate(
    mut w: Window,
    run_id: String,
    start: Instant,
    mut rx: mpsc::Receiver<Event>,
    out: mpsc::Sender<AgentMessage>,
    resources: watch::Receiver<ResourceSample>,
    open_sessions: watch::Sender<u64>,
) {
    let mut second: i64 = 0;
    let window_end = |s: i64| start + Duration::from_secs(u64::try_from(s + 1).unwrap_or(0));
    let mut meter = LoadMeter::start();
    let mut send = |w: &mut Window, second: i64| {
        let res = Some(*resources.borrow());
        let mut m = w.take(&run_id, second, res);
        m.load = Some(meter.take());
        AgentMessage {
            body: Some(Body::Metrics(m)),
            ..Default::default()
        }
    };
    let mut batch = Vec::with_capacity(EVENT_DRAIN);
    loop {
        tokio::select! {
            // Drained many at a time: the aggregator is one task among thousands of
            // sessions, and taking one event per turn of the scheduler let the channel
            // fill up, which stalled every session on its next event.
            n = rx.recv_many(&mut batch, EVENT_DRAIN) => {
                if n == 0 {
                    break;
                }
                for ev in batch.drain(..) {
                    w.record(ev);
                }
                // Live, not once a second: the memory throttle divides RSS by it.
                let active = w.active();
                open_sessions.send_if_modified(|v| std::mem::replace(v, active) != active);
            }
            _ = sleep_until(window_end(second)) => {
                let _ = open_sessions.send(w.active());
                let _ = out.send(send(&mut w, second)).await;
                second += 1;
            }
        }
    }
    let _ = open_sessions.send(0);
    let _ = out.send(send(&mut w, second)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog of events is taken in one turn of the scheduler, so events land in
    /// the window of the second they were sent in, not in a later one. (Taking one
    /// event per turn, as before, let thousands of sessions' events pile up and show
    /// up seconds later as a burst.)
    #[tokio::test(start_paused = true)]
    async fn a_backlog_lands_in_the_window_it_was_sent_in() {
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL);
        for _ in 0..10_000 {
            ev_tx.try_send(Event::Connected(Duration::from_millis(1))).unwrap();
        }
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let (_res_tx, res_rx) = watch::channel(ResourceSample::default());
        let (open_tx, _open_rx) = watch::channel(0);
        let agg = tokio::spawn(aggregate(
            Window::default(),
            "r".into(),
            Instant::now(),
            ev_rx,
            out_tx,
            res_rx,
            open_tx,
        ));
        // One turn for the aggregator, then second 0 ends.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let Some(AgentMessage {
            body: Some(Body::Metrics(w)),
            ..
        }) = out_rx.recv().await
        else {
            panic!("no window")
        };
        assert_eq!(w.second, 0);
        assert_eq!(w.counters.unwrap().connects_ok, 10_000);
        assert_eq!(w.active_sessions, 10_000);
        drop(ev_tx);
        agg.await.unwrap();
    }
}
