//! The program and report API: authenticated JSON over HTTP on its own listener, so admin
//! traffic never competes with clicks. Every change to the program is a program change event
//! on the log (docs/DECISIONS.md, "Program configuration is a log too"), applied to this
//! process's program before the answer, so the tracking edge sharing it behaves differently
//! from the next request on. docs/API.md describes the endpoints; docs/openapi.json is
//! generated from this crate ([`openapi`]).
//!
//! - [`state`]: the log and store behind one object-safe facade, and [`state::ApiState::commit`],
//!   the one place program changes are checked and written.
//! - [`auth`]: who may call, by scope; [`credentials`]: API keys (hashed, constant-time);
//!   [`keys`]: making and revoking them, and advertisers' postback secrets.
//! - [`offers`], [`members`], [`enrolments`], [`links`]: the program a manager edits.
//! - [`money`]: pending conversions and decisions, refunds, subscriptions, bills.
//! - [`program_file`]: loading and exporting a whole program file.
//! - [`reports`]: the reports, read from the store.
//! - [`error`], [`page`], [`lookup`]: error bodies, pagination, and ids.
//!
//! The model types in the document (offers, members, lines, bills, ...) describe themselves:
//! `clickledger-model`'s `openapi` feature derives their schemas from their serde attributes.

pub mod adjustments;
pub mod auth;
pub mod credentials;
pub mod enrolments;
pub mod error;
pub mod export;
pub mod join;
pub mod keys;
pub mod links;
pub mod lookup;
pub mod members;
pub mod metrics;
pub mod money;
pub mod offers;
pub mod page;
pub mod program_file;
pub mod reports;
pub mod serve;
pub mod state;
pub mod ui;
pub mod webhooks;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::ApiState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "clickledger program API",
        version = "1",
        description = "Offers, members, payout options, links, codes, approvals, refunds, bills and reports. \
            Authenticate with `Authorization: Bearer <key>`. Errors are `{\"error\": \"<code>\", \"message\": \"...\"}`; \
            lists are `{\"items\": [...], \"next\": <cursor or null>}`. See docs/API.md."
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "keys", description = "API keys and their scopes"),
        (name = "offers", description = "Advertisers, offers and payout options"),
        (name = "members", description = "Sign-up and member status"),
        (name = "enrolments", description = "Members in offers, payout options and per-member payout values"),
        (name = "links and codes", description = "Tracking links, deep links and promo codes"),
        (name = "conversions and money", description = "Approvals, refunds, subscriptions and bills"),
        (name = "program", description = "The program file"),
        (name = "reports", description = "Reports read from the store"),
        (name = "webhooks", description = "Webhook endpoints and the delivery log of postbacks and webhooks"),
    )
)]
struct ApiDoc;

/// `Authorization: Bearer <key>` as the `api_key` security scheme.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key")).build(),
            ),
        );
    }
}

/// Every operation that needs a key reads or writes the log or the store, and answers 503
/// `unavailable` (with `Retry-After`) when they cannot take the request now. Applied to the
/// document once every route is in it ([`openapi`]).
struct Unavailable;

impl Modify for Unavailable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let unavailable =
            error("`unavailable`: the log or the store cannot take the request now; retry after `Retry-After`");
        // Every request body is read within the API's limits (`serve::ApiLimits`).
        let too_slow = error("`body_timeout`: the body did not arrive within the body timeout");
        let too_large = error("`body_too_large`: the body is larger than the body limit (8 MiB by default)");
        for item in openapi.paths.paths.values_mut() {
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                if operation.security.is_some() {
                    operation.responses.responses.insert("503".to_string(), unavailable.clone().into());
                }
                if operation.request_body.is_some() {
                    operation.responses.responses.insert("408".to_string(), too_slow.clone().into());
                    operation.responses.responses.insert("413".to_string(), too_large.clone().into());
                    let bad_body = "`bad_body`: the body could not be read";
                    match operation.responses.responses.get_mut("400") {
                        Some(utoipa::openapi::RefOr::T(response)) => {
                            response.description = format!("{}, {bad_body}", response.description);
                        }
                        _ => {
                            operation.responses.responses.insert("400".to_string(), error(bad_body).into());
                        }
                    }
                }
            }
        }
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    status: String,
}

/// Liveness: no key needed.
#[utoipa::path(get, path = "/healthz", tag = "program", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// Every route with its OpenAPI operation: one list, so a route cannot be served without
/// being documented.
fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::list_advertisers, keys::create_advertiser))
        .routes(routes!(keys::rotate_secret))
        .routes(routes!(offers::list_offers, offers::create_offer))
        .routes(routes!(offers::get_offer, offers::edit_offer))
        .routes(routes!(offers::pause_offer))
        .routes(routes!(offers::resume_offer))
        .routes(routes!(offers::expire_offer))
        .routes(routes!(offers::add_payout_option))
        .routes(routes!(offers::replace_payout_option, offers::remove_payout_option))
        .routes(routes!(members::list_members, members::sign_up))
        .routes(routes!(members::get_member, members::edit_member, members::delete_member))
        .routes(routes!(members::change_status))
        .routes(routes!(enrolments::list_enrolments, enrolments::enrol, enrolments::edit_enrolments))
        .routes(routes!(links::list_links, links::create_link))
        .routes(routes!(links::activate_links))
        .routes(routes!(links::list_codes, links::create_code))
        .routes(routes!(links::activate_codes))
        .routes(routes!(links::edit_code))
        .routes(routes!(links::refresh_code))
        .routes(routes!(money::list_pending))
        .routes(routes!(money::decide))
        .routes(routes!(money::refund))
        .routes(routes!(adjustments::reverse))
        .routes(routes!(adjustments::adjust))
        .routes(routes!(money::list_subscriptions))
        .routes(routes!(money::edit_subscription))
        .routes(routes!(money::cancel_subscription))
        .routes(routes!(money::run_bills))
        .routes(routes!(money::list_bills))
        .routes(routes!(money::mark_paid))
        .routes(routes!(program_file::load, program_file::export))
        .routes(routes!(reports::conversions))
        .routes(routes!(reports::summary))
        .routes(routes!(reports::rejections))
        .routes(routes!(reports::rejected_conversions))
        .routes(routes!(reports::history))
        .routes(routes!(reports::lines))
        .routes(routes!(reports::timeseries))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::get_webhook, webhooks::edit_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::resend_delivery))
}

/// The OpenAPI document of every route (checked in as docs/openapi.json).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    Unavailable.modify(&mut document);
    document
}

/// The document as it is checked in: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub fn router(state: ApiState) -> Router {
    let (router, _document) = routes().split_for_parts();
    let routes = router.merge(join::routes()).merge(ui::routes()).fallback(unknown_route).with_state(state);
    // CSV downloads ask the routes again for each page (`export`).
    let pages = routes.clone();
    routes.route_layer(axum::middleware::from_fn(move |request, next| export::csv(pages.clone(), request, next)))
}

async fn unknown_route() -> error::ApiError {
    error::ApiError::not_found("unknown_route", "no such endpoint; see docs/API.md")
}

/// Serve the API on `listener` with `limits` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    limits: serve::ApiLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve_router(listener, router(state), limits, shutdown).await
}
