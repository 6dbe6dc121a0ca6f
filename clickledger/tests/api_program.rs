//! The program API on the embedded deployment: every endpoint's success, its validation
//! errors (each with its code), missing and wrong-scope keys, keys that survive a restart, and
//! the history of every change with its actor and time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use api_support::*;
use serde_json::{Value, json};

fn offer(id: &str) -> Value {
    json!({
        "id": id,
        "advertiser": "acme",
        "name": "Winter sale",
        "url": "https://shop.example.com/winter",
        "currency": "USD",
        "deep_link_hosts": ["shop.example.com"],
        "default_payout": "standard",
        "payout_options": [
            {"id": "standard", "name": "sale", "rule": {"type": "cps", "rate": [{"from": 1, "value": "0.10"}]}, "tier2": "0.5"},
            {"id": "clicks", "name": "click", "rule": {"type": "cpc", "per_click": [{"from": 1, "value": "0.10"}, {"from": 1001, "value": "0.20"}]}}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_have_scopes_are_checked_and_survive_a_restart() {
    let app = start().await;
    let api = app.api();
    // No key, an unknown key, a malformed header.
    let (status, body) = call(api, "GET", "/v1/offers", None, None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "unauthenticated"));
    let (status, body) = call(api, "GET", "/v1/reports/summary", Some("not-a-key"), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "unauthenticated"));
    let response = raw(api, "GET", "/v1/offers", None, None, "application/json").await;
    assert_eq!(response.status, 401);

    // An analyst key reads reports and changes nothing.
    let made = admin(api, "POST", "/v1/keys", Some(json!({"name": "analyst-1", "scope": "analyst"})), 201).await;
    assert_eq!((made["name"].as_str().unwrap(), made["scope"].as_str().unwrap()), ("analyst-1", "analyst"));
    let analyst = made["key"].as_str().unwrap().to_string();
    assert_eq!(analyst.len(), 64);
    let (status, _) = call(api, "GET", "/v1/reports/conversions", Some(&analyst), None).await;
    assert_eq!(status, 200);
    let (status, body) = call(api, "POST", "/v1/offers/summer/pause", Some(&analyst), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "forbidden"));
    let (status, body) =
        call(api, "POST", "/v1/keys", Some(&analyst), Some(json!({"name": "x", "scope": "admin"}))).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "forbidden"));

    // An advertiser key is a postback key for its advertiser: nothing on the API.
    let made = admin(
        api,
        "POST",
        "/v1/keys",
        Some(json!({"name": "acme-pb", "scope": "advertiser", "advertiser": "acme"})),
        201,
    )
    .await;
    let advertiser_key = made["key"].as_str().unwrap().to_string();
    let (status, body) = call(api, "GET", "/v1/reports/summary", Some(&advertiser_key), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "forbidden"));
    let pixel =
        common::get(app.edge(), &format!("/pb?code=JANE20&order_id=K-1&amount=10.00&token={advertiser_key}")).await;
    assert_eq!(pixel.status, 200, "{}", pixel.body);

    // Validation of new keys.
    refused(api, "POST", "/v1/keys", Some(json!({"name": "analyst-1", "scope": "analyst"})), 409, "key_exists").await;
    refused(api, "POST", "/v1/keys", Some(json!({"name": "bad name!", "scope": "analyst"})), 422, "invalid").await;
    refused(api, "POST", "/v1/keys", Some(json!({"name": "adv", "scope": "advertiser"})), 422, "invalid").await;
    refused(
        api,
        "POST",
        "/v1/keys",
        Some(json!({"name": "adv", "scope": "advertiser", "advertiser": "nobody"})),
        404,
        "unknown_advertiser",
    )
    .await;
    refused(api, "POST", "/v1/keys", Some(json!({"name": "k", "scope": "root"})), 400, "bad_json").await;
    refused(api, "POST", "/v1/keys", Some(json!({"name": "k", "scope": "admin", "extra": 1})), 400, "bad_json").await;
    refused(api, "DELETE", "/v1/keys/nobody", None, 404, "unknown_key").await;

    // The list shows names and scopes, never keys or hashes.
    let list = admin(api, "GET", "/v1/keys", None, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&analyst) && !list.to_string().contains("hash"));

    // Revoking the advertiser key ends it at the edge too.
    let revoked = admin(api, "DELETE", "/v1/keys/acme-pb", None, 200).await;
    assert!(revoked["revoked_at"].is_string());
    let pixel =
        common::get(app.edge(), &format!("/pb?code=JANE20&order_id=K-2&amount=10.00&token={advertiser_key}")).await;
    assert_eq!(pixel.status, 401, "{}", pixel.body);
    refused(api, "DELETE", "/v1/keys/acme-pb", None, 409, "key_revoked").await;
    refused(api, "POST", "/v1/keys", Some(json!({"name": "acme-pb", "scope": "analyst"})), 422, "key_revoked").await;

    // Keys are program changes: after a restart the analyst key still works.
    let data = app.dir.path().to_path_buf();
    app.running.stop().await.unwrap();
    let running = start_in(&data).await;
    let (status, _) = call(running.api, "GET", "/v1/reports/summary", Some(&analyst), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(running.api, "GET", "/v1/reports/summary", Some(&advertiser_key), None).await;
    assert_eq!(status, 401);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_and_payout_options_are_created_edited_paused_and_expired() {
    let app = start().await;
    let api = app.api();
    let created = admin(api, "POST", "/v1/offers", Some(offer("winter")), 201).await;
    assert_eq!(created["cookie_window"], "30d");
    assert_eq!(created["attribution"], "last_click");
    assert_eq!(created["code_precedence"], "code");
    refused(api, "POST", "/v1/offers", Some(offer("winter")), 409, "offer_exists").await;
    let mut negative = offer("neg");
    negative["payout_options"][0]["rule"]["rate"][0]["value"] = json!("-0.1");
    refused(api, "POST", "/v1/offers", Some(negative), 422, "negative_value").await;
    let mut overlapping = offer("overlap");
    overlapping["payout_options"][1]["rule"]["per_click"][1]["from"] = json!(1);
    refused(api, "POST", "/v1/offers", Some(overlapping), 422, "invalid_tiers").await;
    let mut stranger = offer("stranger");
    stranger["advertiser"] = json!("nobody");
    refused(api, "POST", "/v1/offers", Some(stranger), 422, "unknown_advertiser").await;
    let mut no_default = offer("nodefault");
    no_default["default_payout"] = json!("vip");
    refused(api, "POST", "/v1/offers", Some(no_default), 422, "unknown_payout_option").await;
    refused(api, "POST", "/v1/offers", Some(json!({"id": "x"})), 400, "bad_json").await;

    // Edit: first click, 60-day window, code precedence link; the id cannot change.
    let edited = admin(
        api,
        "PATCH",
        "/v1/offers/winter",
        Some(json!({"cookie_window": "60d", "attribution": "first_click", "code_precedence": "link"})),
        200,
    )
    .await;
    assert_eq!((edited["cookie_window"].as_str(), edited["attribution"].as_str()), (Some("60d"), Some("first_click")));
    assert_eq!(edited["code_precedence"], "link");
    let reset = admin(api, "PATCH", "/v1/offers/winter", Some(json!({"cookie_window": null})), 200).await;
    assert_eq!(reset["cookie_window"], "30d");
    refused(api, "PATCH", "/v1/offers/winter", Some(json!({"id": "other"})), 400, "immutable_field").await;
    refused(api, "PATCH", "/v1/offers/winter", Some(json!({"default_payout": "gold"})), 422, "unknown_payout_option")
        .await;
    refused(api, "PATCH", "/v1/offers/winter", Some(json!({"url": "ftp://x"})), 422, "invalid").await;
    refused(api, "PATCH", "/v1/offers/nowhere", Some(json!({"name": "x"})), 404, "unknown_offer").await;
    refused(api, "GET", "/v1/offers/bad%20id", None, 400, "bad_offer").await;

    // Pause, resume, expire.
    assert_eq!(admin(api, "POST", "/v1/offers/winter/pause", None, 200).await["paused"], true);
    assert_eq!(admin(api, "POST", "/v1/offers/winter/resume", None, 200).await["paused"], false);
    let expired =
        admin(api, "POST", "/v1/offers/winter/expire", Some(json!({"at": "2030-01-01T00:00:00Z"})), 200).await;
    assert_eq!(expired["expires_at"], "2030-01-01T00:00:00.000Z");

    // Payout options: add (order bands, monthly tiers, pending with hold, recurring), replace, remove.
    let bands = json!({"id": "bands", "name": "sale", "rule": {"type": "order_bands", "bands": [
        {"up_to": "100", "rate": "0.10"}, {"up_to": "300", "rate": "0.20"}, {"rate": "0.30"}]}});
    let with_bands = admin(api, "POST", "/v1/offers/winter/payout-options", Some(bands), 201).await;
    assert_eq!(with_bands["payout_options"].as_array().unwrap().len(), 3);
    let monthly = json!({"id": "monthly", "name": "accu_sale", "pending": true, "hold": "30d", "tier2": "0.5", "tier3": "0.25",
        "recurring": {"name": "subscriptionsales", "rate": "0.10", "every": {"days": 14}},
        "rule": {"type": "accumulated", "thresholds": [{"from": "0", "rate": "0.10"}, {"from": "300", "rate": "0.20"}, {"from": "600", "rate": "0.30"}]}});
    admin(api, "POST", "/v1/offers/winter/payout-options", Some(monthly), 201).await;
    refused(
        api,
        "POST",
        "/v1/offers/winter/payout-options",
        Some(
            json!({"id": "bands", "name": "x", "rule": {"type": "cpa", "per_conversion": [{"from": 1, "value": "5"}]}}),
        ),
        422,
        "duplicate_payout_option",
    )
    .await;
    refused(api, "POST", "/v1/offers/winter/payout-options", Some(json!({"id": "h", "name": "x", "hold": "1d", "rule": {"type": "cpa", "per_conversion": [{"from": 1, "value": "5"}]}})), 422, "invalid").await;
    let replaced = admin(
        api,
        "PUT",
        "/v1/offers/winter/payout-options/clicks",
        Some(json!({"id": "clicks", "name": "sale", "rule": {"type": "cpa_cps", "amount": "5", "rate": "0.05"}})),
        200,
    )
    .await;
    assert_eq!(replaced["payout_options"][1]["rule"], json!({"type": "cpa_cps", "amount": "5", "rate": "0.05"}));
    refused(
        api,
        "PUT",
        "/v1/offers/winter/payout-options/clicks",
        Some(
            json!({"id": "other", "name": "x", "rule": {"type": "cpa", "per_conversion": [{"from": 1, "value": "5"}]}}),
        ),
        400,
        "immutable_field",
    )
    .await;
    refused(
        api,
        "PUT",
        "/v1/offers/winter/payout-options/gold",
        Some(
            json!({"id": "gold", "name": "x", "rule": {"type": "cpa", "per_conversion": [{"from": 1, "value": "5"}]}}),
        ),
        404,
        "unknown_payout_option",
    )
    .await;
    refused(api, "DELETE", "/v1/offers/winter/payout-options/standard", None, 409, "payout_option_is_default").await;
    // jane is paid by summer's vip option: it cannot go while she is.
    refused(api, "DELETE", "/v1/offers/summer/payout-options/vip", None, 422, "payout_option_in_use").await;
    let removed = admin(api, "DELETE", "/v1/offers/winter/payout-options/bands", None, 200).await;
    assert_eq!(removed["payout_options"].as_array().unwrap().len(), 3);

    let listed = admin(api, "GET", "/v1/offers?limit=2", None, 200).await;
    assert_eq!(items(&listed).len(), 2);
    assert_eq!(listed["next"], "2");
    let rest = admin(api, "GET", "/v1/offers?limit=2&cursor=2", None, 200).await;
    let ids: Vec<&str> = items(&listed).iter().chain(items(&rest)).map(|offer| offer["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["hosting", "summer", "winter"]);
    assert_eq!(rest["next"], Value::Null);
    refused(api, "GET", "/v1/offers?limit=0", None, 400, "bad_limit").await;
    refused(api, "GET", "/v1/offers?cursor=abc", None, 400, "bad_cursor").await;
    refused(api, "GET", "/v1/offers?sort=name", None, 400, "bad_query").await;

    // Advertisers and their postback secret.
    let made = admin(api, "POST", "/v1/advertisers", Some(json!({"id": "globex", "name": "Globex"})), 201).await;
    assert_eq!(made["valid_secrets"], 1);
    refused(api, "POST", "/v1/advertisers", Some(json!({"id": "globex", "name": "Globex"})), 409, "advertiser_exists")
        .await;
    refused(api, "POST", "/v1/advertisers", Some(json!({"id": "x y", "name": "X"})), 400, "bad_advertiser").await;
    let rotated = admin(api, "POST", "/v1/advertisers/acme/rotate-secret", Some(json!({"grace": "1h"})), 200).await;
    assert_eq!(rotated["valid_secrets"], 2);
    let new_secret = rotated["secret"].as_str().unwrap();
    let accepted =
        common::get(app.edge(), &format!("/pb?code=JANE20&order_id=R-1&amount=10.00&token={new_secret}")).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    postback(app.edge(), "code=JANE20&order_id=R-2&amount=10.00").await;
    let ended = admin(api, "POST", "/v1/advertisers/acme/rotate-secret", Some(json!({"grace": "0s"})), 200).await;
    assert_eq!(ended["valid_secrets"], 1);
    let old = common::get(app.edge(), &format!("/pb?code=JANE20&order_id=R-3&amount=10.00&token={new_secret}")).await;
    assert_eq!(old.status, 401, "{}", old.body);
    refused(api, "POST", "/v1/advertisers/nobody/rotate-secret", Some(json!({})), 404, "unknown_advertiser").await;
    let advertisers = admin(api, "GET", "/v1/advertisers", None, 200).await;
    assert!(!advertisers.to_string().contains(POSTBACK_SECRET));
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_sign_up_change_status_and_recruiting_pays_the_parent() {
    let app = start().await;
    let api = app.api();
    let signed = admin(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "kim", "name": "Kim", "parent": "jane", "handle": "@kim.k", "minimum_payout": "25.00"})),
        201,
    )
    .await;
    assert_eq!((signed["status"].as_str(), signed["parent"].as_str()), (Some("pending"), Some("jane")));
    refused(api, "POST", "/v1/members", Some(json!({"id": "kim", "name": "Kim"})), 409, "member_exists").await;
    refused(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "lee", "name": "Lee", "parent": "nobody"})),
        404,
        "unknown_member",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "lee", "name": "Lee", "status": "stopped"})),
        400,
        "bad_status",
    )
    .await;
    refused(api, "POST", "/v1/members", Some(json!({"id": "lee", "name": ""})), 422, "invalid").await;
    refused(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "lee", "name": "Lee", "minimum_payout": "-1"})),
        422,
        "negative_value",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "lee", "name": "Lee", "handle": "not a handle"})),
        422,
        "invalid",
    )
    .await;

    // pending -> stopped is not a move a manager makes; pending -> approved pays jane 5.00.
    refused(api, "POST", "/v1/members/kim/status", Some(json!({"status": "stopped"})), 409, "bad_transition").await;
    refused(api, "POST", "/v1/members/kim/status", Some(json!({"status": "gone"})), 400, "bad_status").await;
    let approved = admin(api, "POST", "/v1/members/kim/status", Some(json!({"status": "approved"})), 200).await;
    assert_eq!(approved["status"], "approved");
    let by_kim = |page: &Value| -> Vec<Value> {
        items(page).iter().filter(|line| line["description"] == "Recruiting: kim approved").cloned().collect()
    };
    let lines =
        eventually(api, "/v1/lines?member=jane", "jane's recruiting commission", |page| !by_kim(page).is_empty()).await;
    let line = &by_kim(&lines)[0];
    assert_eq!(
        (line["kind"].as_str(), line["tier"].as_u64(), line["amount"].as_str(), line["status"].as_str()),
        (Some("recruiting"), Some(1), Some("5.00"), Some("approved"))
    );
    assert_eq!(
        (
            line["earned_by"].as_str(),
            line["earned_at"].as_str().map(|at| at >= approved["joined_at"].as_str().unwrap())
        ),
        (Some("jane"), Some(true))
    );

    let edited =
        admin(api, "PATCH", "/v1/members/kim", Some(json!({"cookie_window": "7d", "name": "Kim K"})), 200).await;
    assert_eq!((edited["cookie_window"].as_str(), edited["name"].as_str()), (Some("7d"), Some("Kim K")));
    refused(api, "PATCH", "/v1/members/kim", Some(json!({"parent": "tom"})), 400, "immutable_field").await;
    refused(api, "PATCH", "/v1/members/kim", Some(json!({"status": "approved"})), 400, "immutable_field").await;
    refused(api, "PATCH", "/v1/members/kim", Some(json!({"cookie_window": "400d"})), 422, "invalid").await;

    assert_eq!(
        admin(api, "POST", "/v1/members/kim/status", Some(json!({"status": "stopped"})), 200).await["status"],
        "stopped"
    );
    assert_eq!(
        admin(api, "POST", "/v1/members/kim/status", Some(json!({"status": "disabled"})), 200).await["status"],
        "disabled"
    );
    let listed = admin(api, "GET", "/v1/members?status=disabled", None, 200).await;
    assert_eq!(items(&listed).iter().map(|member| member["id"].as_str().unwrap()).collect::<Vec<_>>(), ["kim"]);
    let children = admin(api, "GET", "/v1/members?parent=jane", None, 200).await;
    assert_eq!(
        items(&children).iter().map(|member| member["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["kim", "tom"]
    );
    assert_eq!(admin(api, "DELETE", "/v1/members/kim", None, 200).await["status"], "deleted");
    refused(api, "POST", "/v1/members/kim/status", Some(json!({"status": "approved"})), 422, "member_deleted").await;
    refused(api, "DELETE", "/v1/members/kim", None, 422, "member_deleted").await;
    refused(api, "GET", "/v1/members/nobody", None, 404, "unknown_member").await;
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_links_and_codes() {
    let app = start().await;
    let api = app.api();
    admin(api, "POST", "/v1/members", Some(json!({"id": "kim", "name": "Kim", "status": "approved"})), 201).await;
    admin(
        api,
        "POST",
        "/v1/members",
        Some(json!({"id": "lee", "name": "Lee", "status": "approved", "handle": "@lee"})),
        201,
    )
    .await;

    // Enrol a set with the default option, then move them and raise their rate.
    let enrolled =
        admin(api, "POST", "/v1/offers/summer/enrolments", Some(json!({"members": ["kim", "lee"]})), 201).await;
    assert_eq!(enrolled.as_array().unwrap().len(), 2);
    assert_eq!(enrolled[0]["payout_option"], Value::Null);
    refused(api, "POST", "/v1/offers/summer/enrolments", Some(json!({"members": ["kim"]})), 409, "already_enrolled")
        .await;
    refused(
        api,
        "POST",
        "/v1/offers/hosting/enrolments",
        Some(json!({"members": ["kim"], "payout_option": "gold"})),
        422,
        "unknown_payout_option",
    )
    .await;
    refused(api, "POST", "/v1/offers/hosting/enrolments", Some(json!({"members": ["nobody"]})), 422, "unknown_member")
        .await;
    refused(api, "POST", "/v1/offers/hosting/enrolments", Some(json!({"members": []})), 400, "no_members").await;
    refused(api, "POST", "/v1/offers/nowhere/enrolments", Some(json!({"members": ["kim"]})), 404, "unknown_offer")
        .await;
    let hosting = admin(
        api,
        "POST",
        "/v1/offers/hosting/enrolments",
        Some(json!({"members": ["kim"], "payout_option": "hosting"})),
        201,
    )
    .await;
    assert_eq!(hosting[0]["payout_option"], "hosting");

    let moved = admin(
        api,
        "PATCH",
        "/v1/offers/summer/enrolments",
        Some(json!({"members": ["kim", "lee"], "payout_option": "vip"})),
        200,
    )
    .await;
    assert!(moved.as_array().unwrap().iter().all(|enrolment| enrolment["payout_option"] == "vip"));
    let raised = admin(
        api,
        "PATCH",
        "/v1/offers/summer/enrolments",
        Some(json!({"members": ["lee"],
        "payout_override": {"type": "cps", "rate": [{"from": 1, "value": "0.20"}]}})),
        200,
    )
    .await;
    assert_eq!(raised[0]["payout_override"]["rate"][0]["value"], "0.20");
    let terms = admin(
        api,
        "PATCH",
        "/v1/offers/hosting/enrolments",
        Some(json!({"members": ["kim"],
        "recurring_override": {"rate": "0.15", "every": {"days": 14}}})),
        200,
    )
    .await;
    assert_eq!(terms[0]["recurring_override"], json!({"rate": "0.15", "every": {"days": 14}}));
    let back = admin(
        api,
        "PATCH",
        "/v1/offers/summer/enrolments",
        Some(json!({"members": ["kim"], "payout_option": null})),
        200,
    )
    .await;
    assert_eq!(back[0]["payout_option"], Value::Null);
    refused(
        api,
        "PATCH",
        "/v1/offers/hosting/enrolments",
        Some(json!({"members": ["lee"], "active": false})),
        422,
        "not_enrolled",
    )
    .await;
    refused(
        api,
        "PATCH",
        "/v1/offers/summer/enrolments",
        Some(json!({"members": ["lee"],
        "payout_override": {"type": "cps", "rate": [{"from": 1, "value": "1.5"}]}})),
        422,
        "invalid",
    )
    .await;
    let listed = admin(api, "GET", "/v1/offers/summer/enrolments", None, 200).await;
    assert_eq!(items(&listed).len(), 5);

    // Links: named from member and offer, deep links only to allowed hosts.
    let link = admin(api, "POST", "/v1/links", Some(json!({"offer": "summer", "member": "kim"})), 201).await;
    assert_eq!((link["code"].as_str(), link["active"].as_bool()), (Some("kim-summer"), Some(true)));
    let deep = admin(
        api,
        "POST",
        "/v1/links",
        Some(json!({"offer": "summer", "member": "kim", "deep_url": "https://shop.example.com/p/9"})),
        201,
    )
    .await;
    assert_eq!(deep["code"], "kim-summer-2");
    refused(
        api,
        "POST",
        "/v1/links",
        Some(json!({"offer": "summer", "member": "kim", "deep_url": "https://evil.example.net/"})),
        422,
        "deep_link_not_allowed",
    )
    .await;
    refused(api, "POST", "/v1/links", Some(json!({"offer": "hosting", "member": "lee"})), 422, "not_enrolled").await;
    refused(
        api,
        "POST",
        "/v1/links",
        Some(json!({"offer": "summer", "member": "kim", "code": "jane-summer"})),
        409,
        "link_exists",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/links",
        Some(json!({"offer": "summer", "member": "kim", "code": "no spaces"})),
        400,
        "bad_link_code",
    )
    .await;

    // Codes: from the handle, unique, with dates.
    let code =
        admin(api, "POST", "/v1/codes", Some(json!({"offer": "summer", "member": "lee", "suffix": "20"})), 201).await;
    assert_eq!(code["code"], "LEE20");
    let jane =
        admin(api, "POST", "/v1/codes", Some(json!({"offer": "summer", "member": "jane", "suffix": "20"})), 201).await;
    assert_eq!(jane["code"], "JANE20-2");
    let named = admin(
        api,
        "POST",
        "/v1/codes",
        Some(json!({"offer": "summer", "member": "kim", "code": "kimsummer",
        "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-09-01T00:00:00Z"})),
        201,
    )
    .await;
    assert_eq!(
        (named["code"].as_str(), named["ends_at"].as_str()),
        (Some("KIMSUMMER"), Some("2026-09-01T00:00:00.000Z"))
    );
    refused(
        api,
        "POST",
        "/v1/codes",
        Some(json!({"offer": "summer", "member": "kim", "code": "JANE20"})),
        409,
        "code_exists",
    )
    .await;
    refused(api, "POST", "/v1/codes", Some(json!({"offer": "hosting", "member": "lee"})), 422, "not_enrolled").await;
    refused(
        api,
        "POST",
        "/v1/codes",
        Some(json!({"offer": "summer", "member": "kim", "code": "bad code"})),
        400,
        "bad_code",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/codes",
        Some(json!({"offer": "summer", "member": "kim", "code": "X1",
        "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"})),
        422,
        "invalid",
    )
    .await;
    let dated = admin(
        api,
        "PATCH",
        "/v1/codes/KIMSUMMER",
        Some(json!({"ends_at": "2026-12-01T00:00:00Z", "starts_at": null})),
        200,
    )
    .await;
    assert_eq!(
        (dated["starts_at"].clone(), dated["ends_at"].as_str()),
        (Value::Null, Some("2026-12-01T00:00:00.000Z"))
    );
    refused(api, "PATCH", "/v1/codes/NOPE", Some(json!({"active": false})), 404, "unknown_code").await;

    // Refresh: the old code is deactivated, a new one issued to the same member.
    let refreshed = admin(api, "POST", "/v1/codes/LEE20/refresh", Some(json!({})), 200).await;
    assert_eq!((refreshed["old"]["code"].as_str(), refreshed["old"]["active"].as_bool()), (Some("LEE20"), Some(false)));
    assert_eq!(
        (refreshed["new"]["code"].as_str(), refreshed["new"]["member"].as_str()),
        (Some("LEE20-2"), Some("lee"))
    );
    let again = admin(api, "POST", "/v1/codes/LEE20-2/refresh", Some(json!({})), 200).await;
    assert_eq!(again["new"]["code"], "LEE20-3");
    let chosen = admin(api, "POST", "/v1/codes/LEE20-3/refresh", Some(json!({"code": "LEESUMMER"})), 200).await;
    assert_eq!(chosen["new"]["code"], "LEESUMMER");
    refused(api, "POST", "/v1/codes/LEESUMMER/refresh", Some(json!({"code": "JANE20"})), 409, "code_exists").await;

    // Bulk (de)activation by name or by offer and members.
    let off = admin(
        api,
        "POST",
        "/v1/links/activation",
        Some(json!({"offer": "summer", "members": ["kim"], "active": false})),
        200,
    )
    .await;
    assert_eq!(
        off.as_array()
            .unwrap()
            .iter()
            .map(|link| (link["code"].as_str().unwrap(), link["active"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [("kim-summer", false), ("kim-summer-2", false)]
    );
    let on =
        admin(api, "POST", "/v1/links/activation", Some(json!({"codes": ["kim-summer"], "active": true})), 200).await;
    assert_eq!(on[0]["active"], true);
    refused(api, "POST", "/v1/links/activation", Some(json!({"active": true})), 400, "nothing_selected").await;
    refused(api, "POST", "/v1/links/activation", Some(json!({"codes": ["nope"], "active": true})), 404, "unknown_link")
        .await;
    let codes_off = admin(
        api,
        "POST",
        "/v1/codes/activation",
        Some(json!({"codes": ["JANE20", "JANE20-2"], "active": false})),
        200,
    )
    .await;
    assert!(codes_off.as_array().unwrap().iter().all(|code| code["active"] == false));
    refused(api, "POST", "/v1/codes/activation", Some(json!({"codes": ["NOPE"], "active": true})), 404, "unknown_code")
        .await;
    let janes = admin(api, "GET", "/v1/codes?member=jane", None, 200).await;
    assert_eq!(
        items(&janes).iter().map(|code| code["code"].as_str().unwrap()).collect::<Vec<_>>(),
        ["JANE20", "JANE20-2"]
    );
    let kims = admin(api, "GET", "/v1/links?member=kim&offer=summer", None, 200).await;
    assert_eq!(items(&kims).len(), 2);
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_file_loads_in_one_call_and_the_history_lists_every_change_with_actor_and_time() {
    let app = start().await;
    let api = app.api();
    let made = admin(api, "POST", "/v1/keys", Some(json!({"name": "ops", "scope": "admin"})), 201).await;
    let ops = made["key"].as_str().unwrap().to_string();
    let file = r#"
[[offer]]
id = "autumn"
advertiser = "acme"
name = "Autumn"
url = "https://shop.example.com/autumn"
currency = "USD"
default_payout = "sale"
[[offer.payout_options]]
id = "sale"
name = "sale"
rule = { type = "cpa", per_conversion = [{ from = 1, value = "5" }] }

[[enrolment]]
offer = "autumn"
member = "tom"
"#;
    let loaded = raw(api, "POST", "/v1/program", Some(&ops), Some(file), "application/toml").await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(loaded.json(), json!({"changes": 2, "keys": ["offer:autumn", "enrolment:autumn:tom"]}));
    let again = raw(api, "POST", "/v1/program", Some(&ops), Some(file), "application/toml").await;
    assert_eq!(again.json(), json!({"changes": 0, "keys": []}));
    let broken = raw(api, "POST", "/v1/program", Some(&ops), Some("[[offer]]\nid = 1"), "application/toml").await;
    assert_eq!((broken.status, broken.json()["error"].as_str().unwrap()), (400, "bad_toml"));
    let refused_file = raw(
        api,
        "POST",
        "/v1/program",
        Some(&ops),
        Some("[[enrolment]]\noffer = \"nowhere\"\nmember = \"tom\"\n"),
        "application/toml",
    )
    .await;
    assert_eq!((refused_file.status, refused_file.json()["error"].as_str().unwrap()), (422, "unknown_offer"));
    let exported = raw(api, "GET", "/v1/program", Some(&ops), None, "application/json").await;
    assert_eq!(exported.header("content-type"), Some("application/toml"));
    let reloaded = model::program::ProgramFile::from_toml(&exported.body).unwrap();
    assert_eq!(
        reloaded.offers.iter().map(|offer| offer.id.as_str()).collect::<Vec<_>>(),
        ["autumn", "hosting", "summer"]
    );

    // More changes by ops, then the history: every change, its actor and time, oldest first.
    let (status, _) = call(api, "POST", "/v1/offers/autumn/pause", Some(&ops), None).await;
    assert_eq!(status, 200);
    let (status, _) =
        call(api, "POST", "/v1/codes", Some(&ops), Some(json!({"offer": "autumn", "member": "tom", "suffix": "5"})))
            .await;
    assert_eq!(status, 201);
    let history =
        eventually(api, "/v1/reports/history?offer=autumn", "the autumn history", |page| items(page).len() == 4).await;
    let entries: Vec<(&str, &str)> = items(&history)
        .iter()
        .map(|entry| (entry["key"].as_str().unwrap(), entry["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("offer:autumn", "key:ops"),
            ("enrolment:autumn:tom", "key:ops"),
            ("offer:autumn", "key:ops"),
            ("code:TOM5", "key:ops")
        ]
    );
    assert_eq!(items(&history)[2]["change"]["state"]["paused"], true);
    for entry in items(&history) {
        assert!(model::Timestamp::parse(entry["at"].as_str().unwrap()).is_ok(), "{entry}");
    }
    // The whole history also has the sample program (loaded at start), ops' key, and hides secrets.
    let all = eventually(api, "/v1/reports/history?limit=1000", "the key change", |page| {
        items(page).iter().any(|entry| entry["key"] == "api_key:ops")
    })
    .await;
    let key_entry = items(&all).iter().find(|entry| entry["key"] == "api_key:ops").unwrap();
    assert_eq!(
        (key_entry["actor"].as_str(), key_entry["change"]["state"]["hash"].as_str()),
        (Some("key:bootstrap"), Some("***"))
    );
    assert_eq!(items(&all)[0]["actor"], "program-file");
    assert!(!all.to_string().contains(POSTBACK_SECRET));
    let (status, body) = call(api, "GET", "/v1/nothing-here", Some(&ops), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "unknown_route"));
    app.running.stop().await.unwrap();
}

/// Every GET operation accepts each query parameter the OpenAPI document gives it and refuses
/// any other with `400 bad_query`: what is documented is what is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_query_parameter_is_taken_and_no_other() {
    let app = start().await;
    let api = app.api();
    let document: Value = serde_json::from_str(&api::openapi_json()).unwrap();
    let value = |path: &str, name: &str| match name {
        "status" if path.starts_with("/v1/deliveries") => "dead",
        "from" => "2026-01-01T00:00:00Z",
        "to" => "2027-01-01T00:00:00Z",
        "offer" => "summer",
        "member" | "parent" => "jane",
        "status" => "approved",
        "reason" => "no_click_in_window",
        "order_id" => "A-1",
        "order_key" => "acme:A-1",
        "by" => "member",
        "limit" => "10",
        "cursor" => "0",
        "destination" => "webhook:finance",
        "event" => "commission.approved",
        "notice" => "0af1",
        "interval" => "hour",
        other => panic!("no test value for the parameter {other}"),
    };
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(operation) = item.get("get") else {
            continue;
        };
        let path = path.replace("{offer}", "summer").replace("{member}", "jane");
        let query: Vec<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| {
                let name = parameter["name"].as_str().unwrap();
                format!("{name}={}", value(&path, name))
            })
            .collect();
        if query.is_empty() {
            continue;
        }
        let (status, body) = call(api, "GET", &format!("{path}?{}", query.join("&")), Some(ADMIN), None).await;
        assert_eq!(status, 200, "GET {path} with every documented parameter: {body}");
        refused(api, "GET", &format!("{path}?{}&undocumented=1", query.join("&")), None, 400, "bad_query").await;
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} operations with query parameters");
}

/// Keys made on the first start are readable by this user only, and the banner says where the
/// admin key is without printing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_keys_are_private_and_the_banner_does_not_print_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let running = clickledger::start(clickledger::AppConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        program: None,
        click_keys: None,
        admin_key: None,
        edge: ingest::EdgeArgs::default(),
        api_limits: api::serve::ApiLimits::default(),
        notify: notifier::NotifyArgs::default(),
        clock: pipeline::wall_clock(),
    })
    .await
    .unwrap();
    for name in ["admin-key", "click-keys"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let banner = running.banner();
    assert!(!banner.contains(&running.admin_key), "{banner}");
    assert!(banner.contains(&format!("admin key: in {}", dir.path().join("admin-key").display())), "{banner}");
    assert!(banner.contains("/c?offer=summer&member=jane"), "{banner}");
    running.stop().await.unwrap();
}

/// The API cuts off slow and oversized requests like the edge does, and the one-process
/// binary gives its edge every setting the standalone `ingest` takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_large_requests_are_cut_off_and_every_edge_setting_is_honoured() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let edge_settings = ingest::EdgeArgs {
        secure_cookie: Some(true),
        body_limit: Some(1024),
        body_timeout_ms: Some(300),
        header_timeout_ms: Some(300),
        ..ingest::EdgeArgs::default()
    };
    let limits = api::serve::ApiLimits {
        header_timeout: std::time::Duration::from_millis(300),
        body_timeout: std::time::Duration::from_millis(300),
        body_limit: 4096,
    };
    let running = clickledger::start(clickledger::AppConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        program: None,
        click_keys: Some(common::CLICK_KEYS.into()),
        admin_key: Some(ADMIN.into()),
        edge: edge_settings,
        api_limits: limits,
        notify: notifier::NotifyArgs::default(),
        clock: pipeline::wall_clock(),
    })
    .await
    .unwrap();
    let (api, edge) = (running.api, running.edge);

    // The API: headers that never finish are cut off; a body that stalls is 408; one too
    // large is 413.
    let mut stalled = tokio::net::TcpStream::connect(api).await.unwrap();
    stalled.write_all(b"GET /v1/offers HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), stalled.read_to_end(&mut buffer)).await;
    assert!(closed.is_ok() && !String::from_utf8_lossy(&buffer).contains("200 OK"));
    let mut slow = tokio::net::TcpStream::connect(api).await.unwrap();
    let head = format!(
        "POST /v1/members HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), slow.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("body_timeout"), "{answer}");
    let large = format!("{{\"id\":\"big\",\"name\":\"{}\"}}", "x".repeat(5000));
    let response = raw(api, "POST", "/v1/members", Some(ADMIN), Some(&large), "application/json").await;
    assert_eq!((response.status, response.json()["error"].as_str()), (413, Some("body_too_large")));

    // The edge: the secure cookie, the body limit and the body timeout it was given.
    let click = common::get(edge, "/c?offer=summer&member=jane").await;
    assert!(click.header("set-cookie").unwrap().contains("; Secure"), "{:?}", click.header("set-cookie"));
    let big_postback = format!("code=JANE20&order_id=B-1&token={POSTBACK_SECRET}&sub={}", "y".repeat(2000));
    let response =
        common::request(edge, "POST", "/pb", &[("Content-Type", "application/x-www-form-urlencoded")], &big_postback)
            .await;
    assert_eq!(response.status, 413, "{}", response.body);
    let mut slow_edge = tokio::net::TcpStream::connect(edge).await.unwrap();
    slow_edge
        .write_all(b"POST /pb HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 50\r\n\r\ncode=")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), slow_edge.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    running.stop().await.unwrap();
}
