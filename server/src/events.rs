//! Server events: the periodic publisher (one across all instances and machines,
//! chosen by a lease in the broker) and the relay from the broker to the clients.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::hub::Hub;
use crate::protocol;

/// Every `interval`, takes or renews the lease and, while holding it, publishes
/// the periodic server event. The lease outlives two intervals, so a dead
/// publisher is replaced within about two intervals.
pub async fn publish_periodically(broker: Broker, holder: String, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut leader = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match broker.acquire_lease(&holder, interval * 2).await {
            Ok(held) => {
                if held != leader {
                    tracing::info!(holder = %holder, leader = held, "server-event publisher lease changed");
                    leader = held;
                }
                if held {
                    let event = protocol::server_event(protocol::SERVER_EVENT_MESSAGE, &protocol::now_iso());
                    if let Err(e) = broker.publish(event).await {
                        tracing::warn!(error = %e, "server event not published");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "publisher lease unavailable"),
        }
    }
}

/// Relays every server event from the broker to every client of the hub; the
/// payload is serialised once by the publisher and shared by all sends. A paced
/// broadcast (`--fan-out-rate`) ends early at shutdown.
pub async fn relay(hub: Arc<Hub>, broker: Broker, shutdown: CancellationToken) {
    let mut events = broker.subscribe(shutdown.clone());
    while let Some(payload) = events.recv().await {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = hub.broadcast(&payload) => {}
        }
    }
}
