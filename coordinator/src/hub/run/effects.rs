//! What the run state machine asks the hub actor to do: it decides, the actor sends.

use wsload_proto::pb::{coordinator_message::Body, Progress};

/// One thing to do on the run's behalf.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Queue `body` to the agent on connection `conn`. A full or closed queue makes
    /// that agent lost (the actor reports it back with [`super::RunState::on_agent_lost`]).
    Send {
        /// Agent connection id.
        conn: u64,
        /// The message.
        body: Body,
    },
    /// The agent on `conn` takes part in the run: the registry marks it busy.
    Enlist {
        /// Agent connection id.
        conn: u64,
    },
    /// Show this progress to the run's watchers (one per complete second, in order).
    Progress(Progress),
}

/// The effects of one call, in the order they must happen.
#[derive(Debug, Default)]
pub struct Effects(pub(super) Vec<Effect>);

impl Effects {
    /// Queues a message to an agent.
    pub(super) fn send(&mut self, conn: u64, body: Body) {
        self.0.push(Effect::Send { conn, body });
    }

    /// Adds any effect.
    pub(super) fn push(&mut self, e: Effect) {
        self.0.push(e);
    }

    /// Appends another call's effects.
    pub(super) fn extend(&mut self, other: Effects) {
        self.0.extend(other.0);
    }

    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = std::vec::IntoIter<Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
