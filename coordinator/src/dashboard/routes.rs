//! The dashboard's HTTP routes. Every route but `/login` is behind [`super::auth`];
//! the stop button's POST also needs an `X-Wsload` header, which a cross-site form
//! cannot send (no CSRF against a loopback dashboard).

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{assets, metrics, sse, Dashboard};

/// The router over `state`.
pub fn router(state: Dashboard) -> Router {
    let protected = Router::new()
        .route("/", get(page))
        .route("/runs/{id}", get(page))
        .route("/runs/{id}/report.html", get(report_html))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript", assets::APP_JS) }),
        )
        .route("/assets/app.css", get(|| async { asset("text/css", assets::APP_CSS) }))
        .route("/api/runs", get(runs))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(sse::events))
        .route("/api/runs/{id}/stop", post(stop))
        .route("/metrics", get(metrics::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/login", get(login_form).post(login))
        .merge(protected)
        .with_state(state)
}

/// 401 (with the login form for a browser, nothing else) unless the request may see
/// the dashboard.
async fn guard(State(st): State<Dashboard>, req: Request, next: Next) -> Response {
    if st.auth.allows(req.headers()) {
        return next.run(req).await;
    }
    let mut r = (StatusCode::UNAUTHORIZED, html(assets::login_page(false))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wsload\""),
    );
    r
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn page() -> Response {
    html(assets::INDEX_HTML.to_owned())
}

/// The `run` query parameter ("" when absent).
pub fn run_param(uri: &Uri) -> String {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "run")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn runs(State(st): State<Dashboard>) -> Response {
    json(serde_json::to_string(&st.feed.runs()).unwrap_or_else(|_| "[]".into()))
}

async fn snapshot(State(st): State<Dashboard>, uri: Uri) -> Response {
    match st.feed.snapshot_json(&run_param(&uri)) {
        Some(s) => json(s),
        None => (StatusCode::NOT_FOUND, "no such run\n").into_response(),
    }
}

async fn stop(State(st): State<Dashboard>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !headers.contains_key("x-wsload") {
        return (StatusCode::FORBIDDEN, "the X-Wsload header is required\n").into_response();
    }
    if !st.auth.may_control(&headers) {
        return (StatusCode::FORBIDDEN, "stopping a run needs a control token\n").into_response();
    }
    match st.hub.stop_run(id).await {
        Ok(true) => json(r#"{"stopped":true}"#.into()),
        Ok(false) => json(r#"{"stopped":false,"reason":"the run had already ended"}"#.into()),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    }
}

async fn report_html(State(st): State<Dashboard>, Path(id): Path<String>) -> Response {
    let Some(dir) = st.feed.report_dir(&id) else {
        return (StatusCode::NOT_FOUND, "no report for this run (yet)\n").into_response();
    };
    let path = PathBuf::from(dir).join(crate::report::REPORT_HTML);
    match tokio::fs::read_to_string(&path).await {
        Ok(s) => html(s),
        Err(e) => (StatusCode::NOT_FOUND, format!("cannot read {}: {e}\n", path.display())).into_response(),
    }
}

async fn login_form(State(st): State<Dashboard>) -> Response {
    if !st.auth.required() {
        return Redirect::to("/").into_response();
    }
    html(assets::login_page(false))
}

/// POST /login with `token=...`: a session cookie and back to `/`, or 401.
async fn login(State(st): State<Dashboard>, method: Method, body: Bytes) -> Response {
    debug_assert_eq!(method, Method::POST);
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !st.auth.required() {
        return Redirect::to("/").into_response();
    }
    if token.is_empty() || !st.auth.token_matches(&token) {
        return (StatusCode::UNAUTHORIZED, html(assets::login_page(true))).into_response();
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        super::auth::COOKIE,
        st.auth.new_session(&token)
    );
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
