//! `ws-server publish "text"`: one server event to every client of every instance.

use crate::broker::Broker;
use crate::config::{BrokerKind, PublishOpts, ServerOpts};
use crate::{protocol, worker, ServerError};

/// Publishes the event; returns how many instances received it.
pub async fn run(opts: &ServerOpts, publish: &PublishOpts) -> Result<usize, ServerError> {
    if opts.broker_kind() != BrokerKind::Redis {
        return Err(ServerError::Usage(
            "publish needs the redis broker (--broker redis or REDIS_URL): the memory broker lives inside one server process".into(),
        ));
    }
    let broker: Broker = worker::broker(opts)?;
    let event = protocol::server_event(&publish.text, &protocol::now_iso());
    broker
        .publish(event)
        .await
        .map_err(|e| ServerError::Failed(format!("cannot publish to {}: {e}", opts.redis_url())))
}
