//! The dashboard and members' portal: a page app served by the API's listener (`/ui/`) that
//! reads and acts through the program API's own routes — the same handlers, checks and error
//! codes as `curl`, no second path to the program (docs/DASHBOARD.md).
//!
//! Signing in trades an API key for a session: `POST /ui/session` with the key sets the cookie
//! `clickledger_session` (`HttpOnly`, `SameSite=Strict`, 12 hours) and answers the session's
//! CSRF token; the API then takes the cookie in place of `Authorization` ([`session_caller`]),
//! looking the key up again on every request, so a revoked key's sessions end at once. A
//! request that changes something with the cookie must carry `X-CSRF-Token`.
//!
//! The assets are compiled in: `assets/index.html`, `assets/app.js`, `assets/app.css`, and
//! Chart.js 4.6.2 (`assets/chart.umd.min.js`, MIT, from `npm pack chart.js@4.6.2`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, hash_key};
use crate::error::{ApiError, JsonBody};
use crate::state::ApiState;

/// The session cookie's name.
pub const COOKIE: &str = "clickledger_session";
/// How long a session lasts.
const SESSION_FOR: Duration = Duration::from_secs(12 * 3600);

const INDEX: &str = include_str!("../assets/index.html");
const APP: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const CHART: &str = include_str!("../assets/chart.umd.min.js");

/// Signed-in sessions of this process.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

#[derive(Debug, Clone)]
struct Session {
    /// The SHA-256 of the key signed in with.
    key_hash: String,
    csrf: String,
    until: Instant,
}

fn random_token() -> String {
    format!("{:032x}{:032x}", ulid::Ulid::new().random(), ulid::Ulid::new().random())
}

impl Sessions {
    fn open(&self, key_hash: String) -> (String, String) {
        let (id, csrf) = (random_token(), random_token());
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, session| session.until > Instant::now());
        sessions.insert(id.clone(), Session { key_hash, csrf: csrf.clone(), until: Instant::now() + SESSION_FOR });
        (id, csrf)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(id).filter(|session| session.until > Instant::now()).cloned()
    }

    fn close(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|cookie| cookie.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string))
    })
}

/// The caller of a request signed in with a session cookie: its key looked up again, and, for
/// a request that changes something, its CSRF token checked.
pub fn session_caller(parts: &Parts, state: &ApiState) -> Result<Caller, ApiError> {
    let id = cookie_value(&parts.headers).ok_or(ApiError::Unauthenticated)?;
    let session = state.sessions.get(&id).ok_or(ApiError::Unauthenticated)?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let token = parts.headers.get("x-csrf-token").and_then(|value| value.to_str().ok());
        if token != Some(session.csrf.as_str()) {
            return Err(ApiError::Forbidden("change anything without the session's X-CSRF-Token"));
        }
    }
    state.program.read(|program| state.keys.find(program, &session.key_hash)).ok_or(ApiError::Unauthenticated)
}

/// The dashboard's routes.
pub fn routes() -> Router<ApiState> {
    use axum::routing::get;
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/{*page}", get(index))
        .route("/ui/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP) }))
        .route("/ui/assets/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/ui/assets/chart.js", get(|| async { asset("text/javascript; charset=utf-8", CHART) }))
        .route("/ui/session", get(current).post(sign_in).delete(sign_out))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn index() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
        // Scripts and styles from this origin only; no frames of it elsewhere.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    ];
    (headers, INDEX).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub key: String,
}

/// Who is signed in, and the token their changes carry.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub name: String,
    pub scope: &'static str,
    pub member: Option<String>,
    pub csrf: String,
    /// The program's name and time zone, for the pages' titles and charts.
    pub program: String,
    pub time_zone: String,
}

fn view(state: &ApiState, caller: &Caller, csrf: String) -> SessionView {
    let (program, time_zone) =
        state.program.read(|program| (program.settings().name.clone(), program.settings().time_zone.clone()));
    SessionView {
        name: caller.name.clone(),
        scope: caller.scope.as_str(),
        member: caller.member.as_ref().map(ToString::to_string),
        csrf,
        program,
        time_zone,
    }
}

async fn sign_in(State(state): State<ApiState>, JsonBody(body): JsonBody<SignIn>) -> Result<Response, ApiError> {
    let hash = hash_key(body.key.trim());
    let caller = state.program.read(|program| state.keys.find(program, &hash)).ok_or(ApiError::Unauthenticated)?;
    if caller.scope == model::program::KeyScope::Advertiser {
        return Err(ApiError::Forbidden("sign in to the dashboard (advertiser keys are for postbacks)"));
    }
    let (id, csrf) = state.sessions.open(hash);
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_FOR.as_secs());
    let mut response = (StatusCode::CREATED, Json(view(&state, &caller, csrf))).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn current(State(state): State<ApiState>, headers: HeaderMap) -> Result<Json<SessionView>, ApiError> {
    let id = cookie_value(&headers).ok_or(ApiError::Unauthenticated)?;
    let session = state.sessions.get(&id).ok_or(ApiError::Unauthenticated)?;
    let caller =
        state.program.read(|program| state.keys.find(program, &session.key_hash)).ok_or(ApiError::Unauthenticated)?;
    Ok(Json(view(&state, &caller, session.csrf)))
}

async fn sign_out(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers) {
        state.sessions.close(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(expired) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, expired);
    }
    response
}

/// Sessions shared by the API's handlers.
pub fn sessions() -> Arc<Sessions> {
    Arc::new(Sessions::default())
}
