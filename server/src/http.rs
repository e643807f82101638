//! The HTTP side of an instance: accepts TCP connections, upgrades WebSocket
//! requests on any path, and answers `GET /healthz` and `GET /metrics`. Once
//! upgraded, the connection leaves hyper: its task gets the bare `TcpStream`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use crate::connection;
use crate::instance::Instance;
use crate::ws::{close_code, handshake};

type Reply = Response<Full<Bytes>>;

/// Accepts connections until the instance shuts down, then asks every WebSocket
/// to close with 1001; returns the tracker of the WebSocket connections still
/// open, so the caller can wait for them.
pub async fn accept_loop(listener: TcpListener, instance: Arc<Instance>) -> TaskTracker {
    let sockets = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = instance.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let instance = instance.clone();
        let sockets = sockets.clone();
        tokio::spawn(async move {
            let shutdown = instance.shutdown.clone();
            let handshake_timeout = instance.opts.handshake_timeout;
            let svc = service_fn(move |req| {
                let instance = instance.clone();
                let sockets = sockets.clone();
                async move { Ok::<_, Infallible>(route(req, instance, &sockets).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    // Connections registering from now on see the shutdown themselves.
    instance.hub.close_all(close_code::GOING_AWAY);
    sockets
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn wants_websocket<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn route(mut req: Request<Incoming>, instance: Arc<Instance>, sockets: &TaskTracker) -> Reply {
    if wants_websocket(&req) {
        return upgrade(&mut req, instance, sockets);
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            if instance.broker.healthy().await {
                text(StatusCode::OK, "ok\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "broker unavailable\n")
            }
        }
        (&Method::GET, "/metrics") => {
            let body = instance.metrics.render(instance.port, instance.broker.latency());
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        _ => text(StatusCode::UPGRADE_REQUIRED, "expected a WebSocket upgrade\n"),
    }
}

fn upgrade(req: &mut Request<Incoming>, instance: Arc<Instance>, sockets: &TaskTracker) -> Reply {
    let metrics = &instance.metrics;
    let open = metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    if open as usize >= instance.opts.max_connections {
        metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        metrics.connections_rejected.fetch_add(1, Ordering::Relaxed);
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many connections\n");
    }
    let accepted = match handshake::accept(req, instance.deflate.is_some()) {
        Ok(a) => a,
        Err(e) => {
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            return text(StatusCode::BAD_REQUEST, format!("bad WebSocket upgrade: {e}\n"));
        }
    };
    let ticket = match instance.admission.admit() {
        Ok(t) => t,
        Err(why) => {
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            metrics.shed(why);
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("overloaded ({})\n", why.as_str()),
            );
        }
    };
    let on_upgrade = hyper::upgrade::on(req);
    let timeout = instance.opts.handshake_timeout;
    let tracker = sockets.clone();
    let deflate = accepted.deflate;
    // The upgrade runs in a short-lived task; the connection gets a task of its
    // own, so the upgrade's state is not carried for the session's life.
    sockets.spawn(async move {
        let upgraded = match tokio::time::timeout(timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => upgraded.downcast::<TokioIo<TcpStream>>(),
            _ => {
                instance.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        };
        match upgraded {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                let setup = Instant::now();
                let serve = connection::start(stream, parts.read_buf, deflate, instance).await;
                ticket.finish(setup.elapsed());
                tracker.spawn(serve);
            }
            Err(_) => {
                tracing::error!("upgraded connection is not a TcpStream");
                instance.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    });
    accepted.response.map(|()| Full::new(Bytes::new()))
}
