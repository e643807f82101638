//! `/api/events?run=ID`: the run's points and statuses as server-sent events. The
//! first event is a `snapshot` (history + status + run list); a browser that falls
//! behind the bounded feed gets a fresh `snapshot` instead of the events it missed,
//! so nothing queues up for it. Without `run`, the stream follows the newest run and
//! resyncs when a new one starts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::feed::{Event, Feed};
use super::routes::run_param;
use super::Dashboard;

/// One browser's stream state.
struct Follow {
    feed: Feed,
    rx: broadcast::Receiver<Arc<Event>>,
    /// The run asked for ("" = follow the newest).
    wanted: String,
    /// The run shown now.
    shown: String,
    /// Send a snapshot next.
    resync: bool,
}

impl Follow {
    fn snapshot(&mut self) -> Option<SseEvent> {
        self.resync = false;
        let json = self.feed.snapshot_json(&self.wanted)?;
        if self.wanted.is_empty() {
            self.shown = self.feed.runs().first().map(|r| r.run_id.clone()).unwrap_or_default();
        }
        Some(SseEvent::default().event("snapshot").data(json))
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if self.resync {
                return self.snapshot();
            }
            match self.rx.recv().await {
                Ok(ev) => {
                    let mine = ev.run_id == self.shown || (ev.run_id.is_empty() && ev.name == "status");
                    if mine {
                        return Some(SseEvent::default().event(ev.name).data(ev.data.as_str()));
                    }
                    if self.wanted.is_empty() && !ev.run_id.is_empty() {
                        self.resync = true; // a new run started: show it
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "a dashboard fell behind; resyncing it");
                    self.rx = self.rx.resubscribe();
                    self.resync = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The event stream (ends when the coordinator shuts down).
pub async fn events(State(st): State<Dashboard>, uri: Uri) -> axum::response::Response {
    let wanted = run_param(&uri);
    let mut f = Follow {
        rx: st.feed.subscribe(),
        feed: st.feed.clone(),
        shown: wanted.clone(),
        wanted,
        resync: true,
    };
    let first = f.snapshot();
    if first.is_none() {
        return (axum::http::StatusCode::NOT_FOUND, "no such run\n").into_response();
    }
    let rest = stream::unfold(f, |mut f| async move { f.next().await.map(|e| (e, f)) });
    let s: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> = Box::pin(
        stream::iter(first)
            .chain(rest)
            .map(Ok)
            .take_until(st.cancel.clone().cancelled_owned()),
    );
    Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
