//! The scenario engine: runs one session of a compiled scenario.
//!
//! Steps run in order; loops are start/end markers with jump targets, so the engine
//! is one loop over a program counter with a small stack of loop frames. Every wait
//! (expect, request, listen, think, ping, loop pacing) keeps reading the socket, and
//! every incoming message is offered, in this order, to the pending requests (by
//! correlation value, else in send order), to the step being waited on, to the
//! scenario's handlers, and else counted as unexpected. Send times are the
//! *intended* ones: an open loop's iteration k is due at its start + k x interval
//! whether or not the session kept up, and latency is timed from there.

mod dispatch;
mod fanout;
mod pending;
mod reconnect;
mod wait;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wsload_proto::pb::Pacing;
use wsload_scenario::program::{Op, Payload, StepOp};
use wsload_scenario::{Scenario, Template, Vars};

use crate::metrics::{Event, StepEvent};
use crate::session::{transport, SessionCtx};
use crate::session_error::Failure;
use crate::session_error::SessionError;
use crate::ws::{Frame, Ws};

use pending::{Pending, PendingSet};
use wait::Goal;

/// Bytes of a burst queued before they are written anyway (a long burst does not
/// grow the queue without bound).
const BURST_FLUSH: usize = 16 * 1024;

/// One loop being executed.
#[derive(Debug, Clone, Copy)]
struct LoopFrame {
    /// Index of its start marker.
    start: usize,
    /// Iteration running now (0-based).
    iteration: u64,
    /// When the loop was due to start (open pacing counts from here).
    began: Instant,
    /// When a duration-bounded loop ends.
    until: Option<Instant>,
}

/// A session running a scenario.
struct Script<'a> {
    ctx: &'a SessionCtx,
    sc: &'a Scenario,
    /// Session index in the run.
    index: u64,
    ws: Option<Ws>,
    rng: fastrand::Rng,
    /// Messages sent so far (`{{seq}}` of the last one).
    seq: u64,
    /// Captured session variables, by slot.
    captures: Vec<Option<Arc<str>>>,
    /// This session's row of each feeder it reads (by feeder index).
    rows: Vec<Option<Arc<[Arc<str>]>>>,
    loops: Vec<LoopFrame>,
    pending: PendingSet,
    /// When the next step is due (the intended time, for coordinated omission).
    due: Instant,
    /// Fan-out trackers of listen steps, by operation index.
    trackers: Vec<(usize, fanout::Tracker)>,
    /// The session ended because a connect step failed (counted as a failed connection).
    connect_failed: bool,
    /// Reconnecting (scenarios with a reconnect policy).
    reconnect: reconnect::State,
}

/// Runs session `index` (rank `rank` within its scenario) to its end and reports it.
pub async fn run(ctx: &SessionCtx, sc: &Scenario, index: u64, rank: u64, cancel: &CancellationToken) {
    let program = &*ctx.program;
    let mut rng = fastrand::Rng::with_seed(index ^ 0x5eed_5eed);
    let mut rows = Vec::new();
    if !sc.feeders.is_empty() {
        rows = vec![None; program.feeders.len()];
        for f in &sc.feeders {
            let f = usize::from(*f);
            rows[f] = Some(program.feeders[f].row(rank, &mut rng));
        }
    }
    let mut s = Script {
        ctx,
        sc,
        index,
        ws: None,
        rng,
        seq: 0,
        captures: vec![None; sc.captures.len()],
        rows,
        loops: Vec::new(),
        pending: PendingSet::default(),
        due: Instant::now(),
        trackers: Vec::new(),
        connect_failed: false,
        reconnect: reconnect::State::default(),
    };
    let _ = ctx.events.send(Event::Started).await;
    let result = s.execute(cancel).await;
    Box::pin(s.finish(result)).await;
}

impl Script<'_> {
    /// Reports `ev`; only a full channel waits, in a boxed future, so the many places
    /// a session reports from keep no room for a channel send in its task.
    async fn emit(&self, ev: Event) {
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(ev)) = self.ctx.events.try_send(ev) {
            let _ = Box::pin(self.ctx.events.send(ev)).await;
        }
    }

    async fn step_event(&self, op: &StepOp, ev: StepEvent) {
        if let Some(id) = op.name {
            self.emit(Event::Step { id, ev }).await;
        }
    }

    /// The template variables for a message with `seq` and `uuid`.
    fn vars(&self, seq: u64, uuid: uuid::Uuid) -> Vars<'_> {
        Vars {
            session: self.index,
            agent: &self.ctx.agent,
            scenario: &self.sc.name,
            seq,
            iteration: self.loops.last().map_or(0, |f| f.iteration),
            uuid,
            now_us: self.coordinator_micros(self.due),
            captures: &self.captures,
            rows: &self.rows,
        }
    }

    /// Renders `t` (shared bytes when it has no hole).
    fn render(&mut self, t: &Template, seq: u64, uuid: uuid::Uuid) -> Bytes {
        if let Some(c) = t.constant() {
            return c.clone();
        }
        let mut rng = self.rng.clone();
        let b = t.render(&self.vars(seq, uuid), &mut rng);
        self.rng = rng;
        b
    }

    /// `t` as microseconds since the epoch in the coordinator's clock.
    fn coordinator_micros(&self, t: Instant) -> i64 {
        let now = Instant::now();
        let wall = wsload_common::time::now_unix_micros();
        let at = if t <= now {
            wall - i64::try_from((now - t).as_micros()).unwrap_or(0)
        } else {
            wall + i64::try_from((t - now).as_micros()).unwrap_or(0)
        };
        at - self.ctx.clock_offset.load(Ordering::Relaxed)
    }

    /// The frame of a payload.
    fn frame(&mut self, p: &Payload, seq: u64, uuid: uuid::Uuid) -> Frame {
        match p {
            Payload::Binary(b) => Frame::binary(b.clone()),
            Payload::Text(t) => Frame::text(self.render(t, seq, uuid)),
        }
    }

    /// Sends `frame`. Inside a burst loop it is only queued (up to [`BURST_FLUSH`]
    /// bytes), so that the burst goes out in few writes, as the built-in protocol's
    /// does; every wait writes what is queued first.
    async fn write(&mut self, frame: Frame) -> Result<(), Failure> {
        let burst = self.pacing() == Pacing::Burst;
        let ws = self.ws.as_mut().ok_or(Failure::Session(SessionError::PrematureClose))?;
        let sent = if burst {
            ws.feed(&frame);
            if ws.unsent() < BURST_FLUSH {
                return Ok(());
            }
            ws.flush().await
        } else {
            ws.send(frame).await
        };
        sent.map_err(|_| Failure::Session(SessionError::SendError))
    }

    /// The pacing of the innermost loop (outside loops: closed).
    fn pacing(&self) -> Pacing {
        self.loops
            .last()
            .and_then(|f| match &self.sc.ops[f.start].op {
                Op::LoopStart(l) => Some(l.pacing),
                _ => None,
            })
            .unwrap_or(Pacing::Closed)
    }

    /// After a wait: the next step is due now, unless it was due later anyway.
    fn caught_up(&mut self) {
        self.due = self.due.max(Instant::now());
    }

    /// Runs the steps; a lost connection, with a reconnect policy and attempts left,
    /// resumes them at the connect step that opened it (see [`reconnect`]).
    async fn execute(&mut self, cancel: &CancellationToken) -> Result<(), Failure> {
        let mut pc = 0;
        loop {
            match self.steps(pc, cancel).await {
                Err(f) if self.may_reconnect(f) => pc = Box::pin(self.connection_lost()).await,
                r => return r,
            }
        }
    }

    /// Runs the steps from `pc` to the end, then collects the replies still due.
    async fn steps(&mut self, mut pc: usize, cancel: &CancellationToken) -> Result<(), Failure> {
        let ops = &self.sc.ops;
        while pc < ops.len() {
            if cancel.is_cancelled() {
                return Err(Failure::Session(SessionError::Aborted));
            }
            let op = &ops[pc];
            match &op.op {
                // Boxed, like every phase that is not a wait: the session's task keeps only
                // what a waiting session needs (its connect and close states are large).
                Op::Connect(c) => Box::pin(self.connect(pc, c, cancel)).await?,
                Op::Send(p) => {
                    self.seq += 1;
                    let uuid = if p.uses_uuid() {
                        uuid::Uuid::new_v4()
                    } else {
                        uuid::Uuid::nil()
                    };
                    let f = self.frame(p, self.seq, uuid);
                    self.write(f).await?;
                    self.emit(Event::Sent(1, None)).await;
                    self.step_event(op, StepEvent::Done(None)).await;
                }
                Op::Request { payload, reply, .. } => {
                    self.seq += 1;
                    let seq = self.seq;
                    let needs_uuid = payload.uses_uuid() || reply.as_ref().is_some_and(|m| m.uses_uuid());
                    let uuid = if needs_uuid {
                        uuid::Uuid::new_v4()
                    } else {
                        uuid::Uuid::nil()
                    };
                    let key = reply
                        .as_ref()
                        .and_then(|m| m.correlation())
                        .map(|(_, t)| self.render(t, seq, uuid));
                    let f = self.frame(payload, seq, uuid);
                    let before = Instant::now();
                    let intended = self.due.min(before);
                    self.write(f).await?;
                    let now = Instant::now();
                    self.emit(Event::Sent(1, Some(before - intended))).await;
                    let p = Pending {
                        op: pc,
                        intended,
                        actual: now,
                        deadline: now + op.timeout,
                        seq,
                        uuid,
                    };
                    match key {
                        Some(k) => self.pending.insert_keyed(String::from_utf8_lossy(&k).into_owned(), p),
                        None => self.pending.insert_ordered(p),
                    }
                    if self.pacing() == Pacing::Closed {
                        self.wait(Goal::Replies, None, cancel).await?;
                        self.caught_up();
                    }
                }
                Op::Expect { .. } => {
                    let started = Instant::now();
                    self.wait(Goal::Expect { op: pc }, Some(started + op.timeout), cancel)
                        .await?;
                    self.step_event(op, StepEvent::Done(Some(started.elapsed()))).await;
                    self.caught_up();
                }
                Op::Listen { duration, count, .. } => {
                    let started = Instant::now();
                    let until = started + duration.unwrap_or(op.timeout);
                    let goal = Goal::Listen {
                        op: pc,
                        left: count.unwrap_or(u64::MAX),
                        must_fill: duration.is_none(),
                    };
                    self.wait(goal, Some(until), cancel).await?;
                    self.step_event(op, StepEvent::Done(None)).await;
                    self.caught_up();
                }
                Op::Think(t) => {
                    let pause = t.sample(&mut self.rng);
                    self.due = self.due.max(Instant::now()) + pause;
                    self.wait(Goal::Sleep, Some(self.due), cancel).await?;
                }
                Op::Ping(payload) => {
                    let started = Instant::now();
                    self.write(Frame::ping(payload.clone())).await?;
                    self.wait(Goal::Pong, Some(started + op.timeout), cancel).await?;
                    self.step_event(op, StepEvent::Done(Some(started.elapsed()))).await;
                    self.caught_up();
                }
                Op::Close { code, reason } => {
                    // Replies still outstanding are collected first.
                    self.wait(Goal::Replies, None, cancel).await?;
                    let started = Instant::now();
                    // The socket moves into the boxed close (see `wait`'s close reply).
                    let closing = self
                        .ws
                        .take()
                        .map(|ws| Box::pin(transport::close_owned(ws, *code, reason.as_bytes(), op.timeout)));
                    if let Some(closing) = closing {
                        closing.await;
                        self.emit(Event::Disconnected).await;
                    }
                    self.step_event(op, StepEvent::Done(Some(started.elapsed()))).await;
                    self.caught_up();
                }
                Op::LoopStart(l) => {
                    let began = self.due.max(Instant::now());
                    self.loops.push(LoopFrame {
                        start: pc,
                        iteration: 0,
                        began,
                        until: l.duration.map(|d| began + d),
                    });
                }
                Op::LoopEnd { start } => {
                    let Op::LoopStart(l) = &ops[*start].op else {
                        unreachable!("a loop end points at its start")
                    };
                    let due = self.due;
                    let frame = self.loops.last_mut().expect("inside a loop");
                    frame.iteration += 1;
                    let k = frame.iteration;
                    let next_due = match l.pacing {
                        Pacing::Open => frame.began + l.interval.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX)),
                        Pacing::Closed => due.max(Instant::now()) + l.interval,
                        Pacing::Burst | Pacing::Unspecified => due,
                    };
                    let more = l.count.is_none_or(|c| k < c) && frame.until.is_none_or(|u| next_due < u);
                    if more {
                        self.due = next_due;
                        if next_due > Instant::now() {
                            self.wait(Goal::Sleep, Some(next_due), cancel).await?;
                        }
                        pc = *start + 1;
                        continue;
                    }
                    self.loops.pop();
                    if matches!(l.pacing, Pacing::Open | Pacing::Burst) {
                        // The replies of an open or burst loop are awaited at its end.
                        self.wait(Goal::Replies, None, cancel).await?;
                        self.caught_up();
                    }
                }
            }
            pc += 1;
        }
        self.wait(Goal::Replies, None, cancel).await
    }

    /// Runs connect step `pc`: a first connect, or (after a lost connection) tries to
    /// reconnect until one succeeds or the attempts run out.
    async fn connect(
        &mut self,
        pc: usize,
        c: &wsload_scenario::program::Connect,
        cancel: &CancellationToken,
    ) -> Result<(), Failure> {
        let op = &self.sc.ops[pc];
        loop {
            self.before_reconnect_try(cancel).await?;
            let vars = self.vars(self.seq, uuid::Uuid::nil());
            let opened = transport::open_scripted(self.ctx, c, &vars, self.index, cancel).await;
            match opened {
                Ok((ws, took)) => {
                    match self.reconnect.dropped_at.take() {
                        Some(at) => {
                            self.reconnect.tries = 0;
                            self.emit(Event::Reconnected(at.elapsed())).await;
                        }
                        None => self.emit(Event::Connected(took)).await,
                    }
                    self.step_event(op, StepEvent::Done(Some(took))).await;
                    self.ws = Some(ws);
                    self.reconnect.resume = Some((pc, self.loops.clone()));
                    self.caught_up();
                    return Ok(());
                }
                Err(f) => {
                    self.step_event(op, StepEvent::Failed).await;
                    if self.reconnect.dropped_at.is_none() {
                        self.connect_failed = true;
                        return Err(f);
                    }
                    if !self.retry_reconnect(f) {
                        // Out of attempts: the try's failure is the session's.
                        return Err(f);
                    }
                    // A failed try is counted by its kind; the session goes on trying.
                    self.emit(Event::Failed(f)).await;
                }
            }
        }
    }

    /// Reports the end and closes a socket still open.
    async fn finish(&mut self, result: Result<(), Failure>) {
        if let Some(mut ws) = self.ws.take() {
            if result.is_ok() || result.is_err_and(Failure::closes_with_normal) {
                transport::close(&mut ws, 1000, b"", Duration::from_secs(2)).await;
            }
            self.emit(Event::Disconnected).await;
        }
        match result {
            // A failed connect ends the session as a failed connection, counted there.
            Err(f) if self.connect_failed => self.emit(Event::ConnectFailed(f)).await,
            Err(f) => {
                self.emit(Event::Failed(f)).await;
                self.emit(Event::Ended { ok: false }).await;
            }
            Ok(()) => self.emit(Event::Ended { ok: true }).await,
        }
    }
}
