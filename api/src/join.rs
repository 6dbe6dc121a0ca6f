//! The public sign-up page (AffiliateShop's `affsignup?AID=`): `GET /join?parent={member}`
//! shows a form, `POST /join` signs the member up `pending` under that parent through the
//! program API's own sign-up ([`crate::members::add_member`]); a program manager approves them
//! (`POST /v1/members/{member}/status`), which pays the parent's recruiting commission.
//!
//! No key: anyone may ask to join. What a visitor can do is bounded: the member is only
//! `pending` (it earns nothing until approved), the parent must be an approved member, and the
//! page takes at most [`SIGN_UPS_PER_MINUTE`] sign-ups a minute in all (`429` beyond).

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Router};
use model::ids::MemberId;
use model::program::MemberStatus;
use serde::Deserialize;

use crate::members::{SignUp, add_member};
use crate::state::ApiState;

/// Sign-ups the page takes per minute, over every visitor.
pub const SIGN_UPS_PER_MINUTE: u32 = 60;

/// The page's routes, served on the API's listener.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/join", axum::routing::get(form).post(join))
}

#[derive(Debug, Deserialize)]
pub struct JoinQuery {
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct JoinForm {
    pub parent: Option<String>,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub handle: String,
}

/// The approved member named by `parent`, if any.
fn referrer(state: &ApiState, parent: Option<&str>) -> Result<Option<(MemberId, String)>, String> {
    let Some(parent) = parent.filter(|parent| !parent.is_empty()) else {
        return Ok(None);
    };
    let found = MemberId::new(parent).ok().and_then(|id| {
        state
            .program
            .read(|program| {
                program
                    .member(&id)
                    .filter(|member| member.status == MemberStatus::Approved)
                    .map(|member| member.name.clone())
            })
            .map(|name| (id, name))
    });
    found.map(Some).ok_or_else(|| format!("{parent} is not a member who can recruit: ask them for their link again"))
}

async fn form(State(state): State<ApiState>, Query(query): Query<JoinQuery>) -> Response {
    match referrer(&state, query.parent.as_deref()) {
        Ok(parent) => page(StatusCode::OK, &sign_up_form(parent.as_ref(), None, &JoinForm::empty())),
        Err(problem) => page(StatusCode::NOT_FOUND, &sign_up_form(None, Some(&problem), &JoinForm::empty())),
    }
}

impl JoinForm {
    fn empty() -> Self {
        Self { parent: None, id: String::new(), name: String::new(), handle: String::new() }
    }
}

async fn join(State(state): State<ApiState>, Form(sent): Form<JoinForm>) -> Response {
    let parent = match referrer(&state, sent.parent.as_deref()) {
        Ok(parent) => parent,
        Err(problem) => return page(StatusCode::UNPROCESSABLE_ENTITY, &sign_up_form(None, Some(&problem), &sent)),
    };
    if !take_a_sign_up() {
        let problem = "Too many sign-ups right now: try again in a minute.";
        return page(StatusCode::TOO_MANY_REQUESTS, &sign_up_form(parent.as_ref(), Some(problem), &sent));
    }
    let body = SignUp {
        id: sent.id.trim().to_string(),
        name: sent.name.trim().to_string(),
        parent: parent.as_ref().map(|(id, _)| id.to_string()),
        handle: Some(sent.handle.trim().to_string()).filter(|handle| !handle.is_empty()),
        status: None,
        cookie_window: None,
        minimum_payout: None,
        postbacks: Vec::new(),
    };
    match add_member(&state, "join", body).await {
        Ok(member) => page(StatusCode::CREATED, &thanks(&member.id, &member.name, parent.as_ref())),
        Err(error) => {
            let (status, _) = error.status_and_code();
            page(status, &sign_up_form(parent.as_ref(), Some(&error.to_string()), &sent))
        }
    }
}

/// One sign-up of the minute's allowance, if any is left.
fn take_a_sign_up() -> bool {
    static WINDOW: Mutex<Option<(Instant, u32)>> = Mutex::new(None);
    let mut window = WINDOW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (started, taken) = window.get_or_insert((Instant::now(), 0));
    if started.elapsed().as_secs() >= 60 {
        *started = Instant::now();
        *taken = 0;
    }
    if *taken >= SIGN_UPS_PER_MINUTE {
        return false;
    }
    *taken += 1;
    true
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Join the affiliate program</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f5f6f8; color: #1d2330; margin: 0; }}
main {{ max-width: 28rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 12px; box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin-top: 1rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem; margin-top: .3rem; border: 1px solid #c5cad3; border-radius: 6px; font-size: 1rem; }}
button {{ margin-top: 1.5rem; width: 100%; padding: .7rem; background: #2456d6; color: #fff; border: 0; border-radius: 6px; font-size: 1rem; cursor: pointer; }}
.referrer {{ background: #eef3ff; padding: .6rem .8rem; border-radius: 6px; }}
.problem {{ background: #fdecec; color: #8a1c1c; padding: .6rem .8rem; border-radius: 6px; }}
.hint {{ color: #5b6475; font-size: .85rem; }}
</style></head>
<body><main>{body}</main></body></html>"#
    );
    (status, Html(html)).into_response()
}

fn sign_up_form(parent: Option<&(MemberId, String)>, problem: Option<&str>, sent: &JoinForm) -> String {
    let mut html = String::from("<h1>Join the affiliate program</h1>");
    if let Some((id, name)) = parent {
        html.push_str(&format!(
            r#"<p class="referrer" id="referrer">Invited by <strong>{}</strong></p>"#,
            escape(name)
        ));
        html.push_str(&format!(
            r#"<form method="post" action="/join"><input type="hidden" name="parent" value="{}">"#,
            escape(id.as_str())
        ));
    } else {
        html.push_str(r#"<form method="post" action="/join">"#);
    }
    if let Some(problem) = problem {
        html.push_str(&format!(r#"<p class="problem" id="problem" role="alert">{}</p>"#, escape(problem)));
    }
    html.push_str(&format!(
        r#"<label for="id">Username</label><input id="id" name="id" required maxlength="64" pattern="[A-Za-z0-9._-]+" value="{}">
<p class="hint">Letters, digits, dot, dash and underscore; it names your links.</p>
<label for="name">Your name</label><input id="name" name="name" required maxlength="200" value="{}">
<label for="handle">Social handle (optional)</label><input id="handle" name="handle" maxlength="64" placeholder="@you" value="{}">
<button type="submit" id="join">Ask to join</button></form>"#,
        escape(&sent.id),
        escape(&sent.name),
        escape(&sent.handle)
    ));
    html
}

fn thanks(id: &MemberId, name: &str, parent: Option<&(MemberId, String)>) -> String {
    let invited = parent.map_or_else(String::new, |(_, parent)| format!(", invited by {}", escape(parent)));
    format!(
        r#"<h1 id="thanks">Thank you, {}</h1><p>Your request to join as <strong>{}</strong>{invited} is waiting for the program manager's approval. You will earn from your links once it is approved.</p>"#,
        escape(name),
        escape(id.as_str())
    )
}
