//! Where an incoming message goes: a pending request's reply, the step being waited
//! on, a handler, or the unexpected tally.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wsload_scenario::matcher::value_text;
use wsload_scenario::program::Op;
use wsload_scenario::Incoming;

use super::fanout::{identity, sent_at_micros, Tracker};
use super::pending::Pending;
use super::wait::Goal;
use super::Script;
use crate::metrics::{Event, StepEvent};
use crate::session_error::Failure;
use crate::session_error::SessionError;
use crate::ws::{Frame, OpCode};

impl Script<'_> {
    /// Offers one data message to the pending requests, the goal, the handlers.
    pub(super) async fn dispatch(&mut self, frame: &Frame, goal: &mut Goal) -> Result<(), Failure> {
        let now = Instant::now();
        let msg = Incoming::new(frame.payload(), frame.opcode() == OpCode::Text);
        if let Some(p) = self.claim(&msg) {
            let op = &self.sc.ops[p.op];
            self.emit(Event::Response {
                intended: now - p.intended,
                actual: now - p.actual,
            })
            .await;
            self.step_event(op, StepEvent::Done(Some(now - p.intended))).await;
            if let Op::Request { captures, .. } = &op.op {
                self.capture(captures, &msg);
            }
            return Ok(());
        }
        match goal {
            Goal::Expect { op } => {
                let op = *op;
                let Op::Expect {
                    matcher,
                    captures,
                    strict,
                } = &self.sc.ops[op].op
                else {
                    unreachable!("an expect goal points at an expect step")
                };
                let mut rng = self.rng.clone();
                let hit = matcher.matches(&msg, &self.vars(self.seq, uuid::Uuid::nil()), &mut rng);
                self.rng = rng;
                if hit {
                    self.capture(captures, &msg);
                    *goal = Goal::Met;
                    return Ok(());
                }
                if *strict {
                    self.step_event(&self.sc.ops[op], StepEvent::Failed).await;
                    return Err(Failure::Session(SessionError::ExpectMismatch));
                }
            }
            Goal::Listen { op, left, .. } if *left > 0 => {
                let op_i = *op;
                let Op::Listen { filter, fanout, .. } = &self.sc.ops[op_i].op else {
                    unreachable!("a listen goal points at a listen step")
                };
                let hit = match filter {
                    None => true,
                    Some(m) => {
                        let mut rng = self.rng.clone();
                        let hit = m.matches(&msg, &self.vars(self.seq, uuid::Uuid::nil()), &mut rng);
                        self.rng = rng;
                        hit
                    }
                };
                if hit {
                    *left -= 1;
                    let ev = match fanout {
                        None => StepEvent::Message {
                            latency: None,
                            duplicate: false,
                            out_of_order: false,
                        },
                        Some(f) => {
                            let sent = msg.select(&f.sent_at).and_then(sent_at_micros);
                            match sent {
                                None => StepEvent::Message {
                                    latency: None,
                                    duplicate: false,
                                    out_of_order: false,
                                },
                                Some(sent) => {
                                    let id = match &f.id {
                                        Some(p) => msg.select(p).map_or(sent as u64, identity),
                                        None => sent as u64,
                                    };
                                    let stream = f.stream.as_ref().and_then(|p| msg.select(p)).map_or(0, identity);
                                    let now_us = self.coordinator_micros(now);
                                    let d = self.tracker(op_i).deliver(stream, id, sent, now_us);
                                    StepEvent::Message {
                                        latency: Some(Duration::from_micros(d.latency_us)),
                                        duplicate: d.duplicate,
                                        out_of_order: d.out_of_order,
                                    }
                                }
                            }
                        }
                    };
                    self.step_event(&self.sc.ops[op_i], ev).await;
                    return Ok(());
                }
            }
            _ => {}
        }
        self.handle(&msg).await
    }

    fn tracker(&mut self, op: usize) -> &mut Tracker {
        let i = match self.trackers.iter().position(|(o, _)| *o == op) {
            Some(i) => i,
            None => {
                self.trackers.push((op, Tracker::default()));
                self.trackers.len() - 1
            }
        };
        &mut self.trackers[i].1
    }

    /// The pending request this message answers, if any.
    fn claim(&mut self, msg: &Incoming<'_>) -> Option<Pending> {
        if self.pending.is_empty() {
            return None;
        }
        let ops = &self.sc.ops;
        let keyed: Vec<usize> = self.pending.keyed_ops().collect();
        for op in keyed {
            if let Op::Request { reply: Some(m), .. } = &ops[op].op {
                if let Some((path, _)) = m.correlation() {
                    if let Some(v) = msg.select(path) {
                        if let Some(p) = self.pending.take_keyed(op, &value_text(v)) {
                            return Some(p);
                        }
                    }
                }
            }
        }
        let mut rng = self.rng.clone();
        let mut pending = std::mem::take(&mut self.pending);
        let found = pending.take_ordered(|p| match &ops[p.op].op {
            Op::Request { reply: None, .. } => true,
            Op::Request { reply: Some(m), .. } => m.matches(msg, &self.vars(p.seq, p.uuid), &mut rng),
            _ => false,
        });
        self.pending = pending;
        self.rng = rng;
        found
    }

    /// Stores the captured values of a matched message.
    fn capture(&mut self, captures: &[wsload_scenario::matcher::Capture], msg: &Incoming<'_>) {
        for c in captures {
            if let Some(v) = c.take(msg) {
                self.captures[usize::from(c.slot)] = Some(Arc::from(v));
            }
        }
    }

    /// Runs the first matching handler's action, else counts the message unexpected.
    async fn handle(&mut self, msg: &Incoming<'_>) -> Result<(), Failure> {
        use wsload_scenario::program::{Action, Payload};
        let sc = self.sc;
        for h in &sc.handlers {
            let mut rng = self.rng.clone();
            let hit = h
                .matcher
                .matches(msg, &self.vars(self.seq, uuid::Uuid::nil()), &mut rng);
            self.rng = rng;
            if !hit {
                continue;
            }
            return match &h.action {
                Action::Count(id) => {
                    self.emit(Event::Count(*id)).await;
                    Ok(())
                }
                Action::Fail(kind) => Err(Failure::Handler(*kind)),
                Action::Reply(t) => {
                    self.seq += 1;
                    let f = self.frame(&Payload::Text(t.clone()), self.seq, uuid::Uuid::nil());
                    self.write(f).await?;
                    self.emit(Event::Sent(1, None)).await;
                    Ok(())
                }
                Action::Ignore => Ok(()),
            };
        }
        self.emit(Event::Unexpected).await;
        if sc.fail_on_unexpected {
            return Err(Failure::Session(SessionError::UnexpectedMessage));
        }
        Ok(())
    }
}
