//! The run state machine driven directly: no channels, no sockets, a paused clock.

use std::time::Duration;

use wsload_proto::pb::{batch_ack::State, coordinator_message::Body, BatchAck, MetricWindow, RunState as WireState};

use super::*;
use crate::hub::OnAgentLoss;
use crate::plan::PlanArgs;

fn request(args: PlanArgs, min_agents: usize, on_loss: OnAgentLoss) -> RunRequest {
    let plan = PlanArgs {
        target: Some("ws://127.0.0.1:1/ws".into()),
        ..args
    }
    .validate()
    .unwrap();
    RunRequest {
        plan,
        min_agents,
        on_loss,
        thresholds: Vec::new(),
        allow_over_capacity: false,
    }
}

/// 20 sessions in 4 batches of 5, all at once.
fn four_batches() -> PlanArgs {
    PlanArgs {
        sessions: Some(20),
        batch_size: Some(5),
        batch_interval: Some("0".into()),
        ..Default::default()
    }
}

fn candidate(conn: u64) -> Candidate {
    Candidate {
        conn,
        name: format!("a{conn}"),
        capacity: 100,
        offset_us: 1_000 * conn as i64,
    }
}

/// What the effects send, as (connection, message kind), plus the assigned batch ids.
fn sent(fx: &Effects) -> Vec<(u64, &'static str)> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Send { conn, body } => Some((
                *conn,
                match body {
                    Body::Assign(_) => "assign",
                    Body::Start(_) => "start",
                    Body::Stop(_) => "stop",
                    _ => "other",
                },
            )),
            _ => None,
        })
        .collect()
}

fn assigned_batches(fx: &Effects, to: u64) -> Vec<u64> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Send {
                conn,
                body: Body::Assign(a),
            } if *conn == to => Some(a.batches.iter().map(|b| b.batch_id).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn stop_reason(fx: &Effects) -> Option<String> {
    fx.0.iter().find_map(|e| match e {
        Effect::Send {
            body: Body::Stop(s), ..
        } => Some(s.reason.clone()),
        _ => None,
    })
}

fn ack(run: &RunState, batch_id: u64, state: State) -> BatchAck {
    BatchAck {
        run_id: run.id.clone(),
        batch_id,
        state: state as i32,
        detail: String::new(),
    }
}

fn begun(args: PlanArgs, on_loss: OnAgentLoss) -> (RunState, Effects) {
    let mut run = RunState::new("run-t".into(), request(args, 2, on_loss), Duration::from_secs(5));
    let fx = run.tick(&[candidate(1), candidate(2)]);
    (run, fx)
}

#[tokio::test(start_paused = true)]
async fn a_run_assigns_starts_stops_and_completes() {
    let (mut run, fx) = begun(four_batches(), OnAgentLoss::Continue);
    assert_eq!(
        fx.0.iter().filter(|e| matches!(e, Effect::Enlist { .. })).count(),
        2,
        "both agents enlisted"
    );
    assert_eq!(
        sent(&fx),
        vec![(1, "assign"), (1, "start"), (2, "assign"), (2, "start")]
    );
    let mut ids = assigned_batches(&fx, 1);
    ids.extend(assigned_batches(&fx, 2));
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 3], "every batch assigned exactly once");
    // The barrier start is in each agent's own clock.
    let starts: Vec<i64> =
        fx.0.iter()
            .filter_map(|e| match e {
                Effect::Send {
                    body: Body::Start(s), ..
                } => Some(s.start_unix_micros),
                _ => None,
            })
            .collect();
    assert_eq!(starts[1] - starts[0], 1_000);
    assert_eq!(run.state().0, WireState::Running);

    for b in 0..4 {
        let owner = if assigned_batches(&fx, 1).contains(&b) { 1 } else { 2 };
        assert!(run.on_ack(owner, &ack(&run, b, State::Started)).is_empty());
        assert!(sent(&run.tick(&[])).is_empty(), "not done yet");
        run.on_ack(owner, &ack(&run, b, State::Done));
    }
    let fx = run.tick(&[]);
    assert_eq!(sent(&fx), vec![(1, "stop"), (2, "stop")]);
    assert_eq!(stop_reason(&fx).as_deref(), Some("completed"));
    assert_eq!(run.state().0, WireState::Draining);
    run.on_run_finished(1);
    run.tick(&[]);
    assert!(!run.is_finished(), "agent 2 has not finished");
    run.on_run_finished(2);
    run.tick(&[]);
    assert!(run.is_finished());
    assert_eq!(run.state().0, WireState::Completed);
    let ended = run.into_report();
    assert_eq!(ended.report.outcome, RunOutcome::Completed);
}

#[tokio::test(start_paused = true)]
async fn waiting_fails_once_the_agent_wait_is_over() {
    let mut run = RunState::new(
        "run-w".into(),
        request(four_batches(), 2, OnAgentLoss::Continue),
        Duration::from_secs(5),
    );
    assert!(run.tick(&[candidate(1)]).is_empty());
    tokio::time::advance(Duration::from_millis(4_900)).await;
    run.tick(&[candidate(1)]);
    assert!(run.is_waiting());
    tokio::time::advance(Duration::from_millis(200)).await;
    run.tick(&[candidate(1)]);
    assert!(run.is_finished());
    let (state, reason, _) = run.state();
    assert_eq!(state, WireState::Failed);
    assert_eq!(reason, "waited for 2 agent(s), only 1 connected");
}

#[tokio::test(start_paused = true)]
async fn a_lost_agents_unstarted_batches_move_and_its_open_sessions_are_lost() {
    let (mut run, fx) = begun(four_batches(), OnAgentLoss::Continue);
    let of_1 = assigned_batches(&fx, 1);
    assert_eq!(of_1.len(), 2);
    run.on_ack(1, &ack(&run, of_1[0], State::Started));
    let fx = run.on_agent_lost(1, LossCause::LinkEnded);
    assert_eq!(sent(&fx), vec![(2, "assign")]);
    assert_eq!(
        assigned_batches(&fx, 2),
        vec![of_1[1]],
        "only the unstarted batch moves"
    );
    assert_eq!(run.lost_sessions, 5);
    assert_eq!(run.reassigned, 1);
    assert_eq!(run.lost_agents(), ["a1".to_string()]);
    // Losing it twice changes nothing.
    assert!(run.on_agent_lost(1, LossCause::Silent).is_empty());
    assert_eq!(run.lost_sessions, 5);
}

#[tokio::test(start_paused = true)]
async fn an_agent_whose_queue_is_full_is_lost_and_reported_so() {
    let (mut run, _) = begun(four_batches(), OnAgentLoss::Continue);
    run.on_agent_lost(2, LossCause::QueueFull);
    assert_eq!(run.lost_agents(), ["a2 (its message queue was full)".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn the_abort_policy_stops_the_run_when_an_agent_is_lost() {
    let (mut run, _) = begun(four_batches(), OnAgentLoss::Abort);
    let fx = run.on_agent_lost(1, LossCause::Silent);
    assert_eq!(sent(&fx), vec![(2, "stop")]);
    assert_eq!(
        stop_reason(&fx).as_deref(),
        Some("aborted: agent a1 lost (--on-agent-loss abort)")
    );
    run.on_run_finished(2);
    run.tick(&[]);
    assert!(run.is_finished());
    assert_eq!(run.state().0, WireState::Aborted);
}

#[tokio::test(start_paused = true)]
async fn losing_every_agent_fails_the_run() {
    let (mut run, _) = begun(four_batches(), OnAgentLoss::Continue);
    run.on_agent_lost(1, LossCause::LinkEnded);
    let fx = run.on_agent_lost(2, LossCause::LinkEnded);
    assert!(sent(&fx).is_empty(), "nobody left to stop");
    run.tick(&[]);
    assert!(run.is_finished());
    let (state, reason, _) = run.state();
    assert_eq!((state, reason), (WireState::Failed, "every agent was lost (last: a2)"));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_moves_the_batches_and_a_refusal_by_all_fails_the_run() {
    let (mut run, fx) = begun(four_batches(), OnAgentLoss::Continue);
    let refused = BatchAck {
        detail: "bad target".into(),
        ..ack(&run, assigned_batches(&fx, 1)[0], State::Refused)
    };
    let moved = run.on_ack(1, &refused);
    assert_eq!(sent(&moved), vec![(2, "assign")]);
    assert_eq!(run.lost_agents(), ["a1 (refused: bad target)".to_string()]);
    let refused = BatchAck {
        detail: "bad target".into(),
        ..ack(&run, assigned_batches(&fx, 2)[0], State::Refused)
    };
    run.on_ack(2, &refused);
    run.tick(&[]);
    assert!(run.is_finished());
    assert_eq!(run.state().0, WireState::Failed);
}

#[tokio::test(start_paused = true)]
async fn max_duration_aborts_the_run() {
    let args = PlanArgs {
        max_duration: Some("5s".into()),
        ..four_batches()
    };
    let (mut run, _) = begun(args, OnAgentLoss::Continue);
    tokio::time::advance(Duration::from_millis(4_000)).await;
    assert!(sent(&run.tick(&[])).is_empty());
    tokio::time::advance(Duration::from_millis(2_000)).await;
    let fx = run.tick(&[]);
    assert_eq!(sent(&fx), vec![(1, "stop"), (2, "stop")]);
    assert_eq!(stop_reason(&fx).as_deref(), Some("aborted: max duration 5s reached"));
    // Nobody answers: the drain gives up after its timeout.
    tokio::time::advance(DRAIN_TIMEOUT + Duration::from_millis(1)).await;
    run.tick(&[]);
    assert!(run.is_finished());
    assert_eq!(run.state().0, WireState::Aborted);
}

fn window(run: &RunState, second: i64) -> MetricWindow {
    MetricWindow {
        run_id: run.id.clone(),
        second,
        ..Default::default()
    }
}

/// Each second is shown once, in order, when every live agent has sent it.
#[tokio::test(start_paused = true)]
async fn progress_shows_each_complete_second_once_in_order() {
    let (mut run, _) = begun(four_batches(), OnAgentLoss::Continue);
    let shown = |fx: &Effects| -> Vec<i64> {
        fx.0.iter()
            .filter_map(|e| match e {
                Effect::Progress(p) => Some(p.second),
                _ => None,
            })
            .collect()
    };
    // The barrier is BARRIER_LEAD ahead; 2.5 s after it, seconds 0 and 1 are closed
    // and neither is late yet.
    tokio::time::advance(BARRIER_LEAD + Duration::from_millis(2_500)).await;
    for s in 0..3 {
        assert!(shown(&run.on_window(1, &window(&run, s)).unwrap()).is_empty());
    }
    assert_eq!(shown(&run.on_window(2, &window(&run, 0)).unwrap()), vec![0]);
    let (w1, w2) = (window(&run, 1), window(&run, 2));
    assert_eq!(shown(&run.on_window(2, &w1).unwrap()), vec![1]);
    assert!(
        shown(&run.on_window(2, &w2).unwrap()).is_empty(),
        "second 2 is still open"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(shown(&run.tick(&[])), vec![2]);
    assert!(shown(&run.tick(&[])).is_empty(), "nothing is shown twice");
    // A window of another run or of a stranger is ignored.
    let stranger = MetricWindow {
        run_id: "run-other".into(),
        ..window(&run, 3)
    };
    assert!(run.on_window(1, &stranger).unwrap().is_empty());
    assert!(run.on_window(9, &window(&run, 3)).unwrap().is_empty());
}

fn run_with_two_agents(started_ago: Duration) -> RunState {
    let req = request(
        PlanArgs {
            sessions: Some(10),
            ..Default::default()
        },
        2,
        OnAgentLoss::Continue,
    );
    let mut run = RunState::new("run-test".into(), req, Duration::from_secs(1));
    run.phase = Phase::Running;
    run.start = Some((Instant::now() - started_ago, SystemTime::now()));
    for conn in [1, 2] {
        let p = Participant {
            name: format!("a{conn}"),
            weight: 1,
            lost: false,
            finished: false,
            throttled: false,
        };
        run.participants.insert(conn, p);
    }
    run
}

fn report(run: &mut RunState, conn: u64, second: i64) {
    let w = window(run, second);
    run.agg.add_window(conn, &w).unwrap();
}

/// A second is shown once every agent still in the run has sent its window, and
/// not before, unless the late agent is more than LATE_WINDOW behind.
#[tokio::test(start_paused = true)]
async fn a_second_is_complete_when_every_live_agent_sent_it() {
    tokio::time::advance(Duration::from_secs(10)).await;
    let mut run = run_with_two_agents(Duration::from_millis(2500));
    assert_eq!(run.complete_second(), None, "no window yet");
    report(&mut run, 1, 0);
    assert_eq!(run.complete_second(), None, "agent 2 has not sent second 0");
    let mut run = run_with_two_agents(Duration::from_millis(3500));
    for s in 0..3 {
        report(&mut run, 1, s);
    }
    report(&mut run, 2, 0);
    report(&mut run, 2, 1);
    assert_eq!(run.complete_second(), Some(1), "agent 2 has not sent second 2");
    report(&mut run, 2, 2);
    assert_eq!(run.complete_second(), Some(2));
    // Only closed seconds: 3.5 s in, second 3 is still open.
    report(&mut run, 1, 3);
    report(&mut run, 2, 3);
    assert_eq!(run.complete_second(), Some(2));
    // A lost agent is not waited for.
    let mut run = run_with_two_agents(Duration::from_millis(3500));
    for s in 0..3 {
        report(&mut run, 1, s);
    }
    run.participants.get_mut(&2).unwrap().lost = true;
    assert_eq!(run.complete_second(), Some(2));
    // A late agent is waited for at most LATE_WINDOW.
    let mut run = run_with_two_agents(Duration::from_millis(5500));
    for s in 0..5 {
        report(&mut run, 1, s);
    }
    report(&mut run, 2, 0);
    assert_eq!(run.complete_second(), Some(2));
}

/// Progress carries the named steps that did something in the shown second, in plan
/// order, merged across agents (counts summed, percentiles of the merged histogram).
#[tokio::test(start_paused = true)]
async fn progress_shows_the_second_s_named_steps_in_plan_order() {
    let toml: toml::Table = r#"
        [[scenario]]
        name = "chat"
          [[scenario.step]]
          name = "news"
          listen = { duration = "1s" }
          [[scenario.step]]
          name = "echo"
          request = { text = '{"id":"{{uuid}}"}', reply = { json = "$.id", equals = "{{uuid}}" } }
          [[scenario.step]]
          name = "bye"
          close = {}
    "#
    .parse()
    .unwrap();
    let args = PlanArgs {
        scenario: toml["scenario"].as_array().unwrap().clone(),
        ..four_batches()
    };
    let (mut run, _) = begun(args, OnAgentLoss::Continue);
    tokio::time::advance(BARRIER_LEAD + Duration::from_millis(1_500)).await;
    let step = |ok, failed, messages, samples: Vec<u64>| {
        let mut h = wsload_proto::hist::new_histogram();
        samples.into_iter().for_each(|v| h.record(v).unwrap());
        pb::StepWindow {
            ok,
            failed,
            messages,
            latency: wsload_proto::hist::encode(&h).unwrap(),
            ..Default::default()
        }
    };
    let with_steps = |steps: Vec<(&str, pb::StepWindow)>| MetricWindow {
        steps: steps.into_iter().map(|(n, s)| (n.to_owned(), s)).collect(),
        ..window(&run, 0)
    };
    let a = with_steps(vec![
        ("echo", step(3, 1, 0, (1_000..=1_500).collect())),
        ("news", step(0, 0, 40, Vec::new())),
    ]);
    let b = with_steps(vec![("echo", step(2, 0, 0, (1_501..=2_000).collect()))]);
    assert!(run.on_window(1, &a).unwrap().0.is_empty());
    let fx = run.on_window(2, &b).unwrap();
    let Some(Effect::Progress(p)) = fx.0.first() else {
        panic!("second 0 is shown once both agents sent it: {:?}", fx.0)
    };
    let got: Vec<_> = p
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.kind.as_str(),
                s.ok,
                s.failed,
                s.messages,
                s.p50_ms,
                s.p99_ms,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("news", "listen", 0, 0, 40, 0.0, 0.0),
            // 1,000..=2,000 µs merged: the median is 1,500 µs, p99 1,990 µs.
            ("echo", "request", 5, 1, 0, 1.5, 1.99),
        ]
    );
    // The built-in protocol's progress has no steps.
    let (plain, _) = begun(four_batches(), OnAgentLoss::Continue);
    assert!(plain.progress(false).steps.is_empty());
}
