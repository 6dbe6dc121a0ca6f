//! The public sign-up page, `/join?parent={member}` (api/src/join.rs): in headless Chromium, a
//! visitor invited by jane asks to join, is signed up `pending` under jane, is approved by the
//! program manager, and jane earns her recruiting commission. Screenshots of the pages are in
//! `docs/screenshots/`. Without a browser: bad input re-shows the form with why, and nothing is
//! written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::path::PathBuf;

use api_support::*;
use serde_json::json;

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_ups_show_the_form_again_with_why_and_write_nothing() {
    let app = start().await;
    let api = app.api();
    let form = |body: &str| {
        let body = body.to_string();
        async move { raw(api, "POST", "/join", None, Some(&body), "application/x-www-form-urlencoded").await }
    };
    let page = common::get(api, "/join?parent=jane").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Invited by <strong>Jane Doe</strong>"), "{}", page.body);
    assert!(page.body.contains(r#"name="parent" value="jane""#));
    let unknown = common::get(api, "/join?parent=nobody").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("nobody is not a member who can recruit"));

    // An id that is not an id, a name taken, an unknown parent: the form again, with why.
    let bad_id = form("parent=jane&id=no+spaces&name=X").await;
    assert_eq!(bad_id.status, 400, "{}", bad_id.body);
    assert!(bad_id.body.contains(r#"id="problem""#) && bad_id.body.contains(r#"value="no spaces""#), "{}", bad_id.body);
    let taken = form("parent=jane&id=tom&name=Another+Tom").await;
    assert_eq!(taken.status, 409);
    assert!(taken.body.contains("member tom exists"));
    let no_parent = form("parent=ghost&id=zed&name=Zed").await;
    assert_eq!(no_parent.status, 422);
    // Markup in a field is shown as text.
    let script = form("parent=jane&id=%3Cb%3E&name=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!script.body.contains("<script>alert(1)"), "{}", script.body);
    let members = admin(api, "GET", "/v1/members?limit=1000", None, 200).await;
    let ids: Vec<&str> = items(&members).iter().map(|member| member["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ann", "jane", "tom"], "nothing was written");
    app.running.stop().await.unwrap();
}

/// Needs Chromium and chromedriver, which the test command installs.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium and chromedriver: the test command (deploy/test.sh) installs them and runs this"]
    async fn a_visitor_invited_by_jane_joins_under_her_and_her_recruiting_commission_follows_approval() {
        let app = start().await;
        let api = app.api();
        let browser = testkit::browser::Browser::start().await;
        browser.open(&format!("http://127.0.0.1:{}/join?parent=jane", api.port())).await;
        browser.wait_for("document.getElementById('referrer').textContent === 'Invited by Jane Doe'").await;
        browser
            .run(
                "document.getElementById('id').value = 'sam'; \
             document.getElementById('name').value = 'Sam Park'; \
             document.getElementById('handle').value = '@sampark'; return true;",
            )
            .await;
        browser.screenshot(&screenshot("join-form.png")).await;
        browser.run("document.getElementById('join').click(); return true;").await;
        browser.wait_for("document.getElementById('thanks') !== null").await;
        let thanks = browser.run("return document.querySelector('main').innerText;").await;
        assert!(thanks.as_str().unwrap().contains("invited by Jane Doe"), "{thanks}");
        browser.screenshot(&screenshot("join-thanks.png")).await;
        browser.quit().await;

        // Pending under jane until approved; the approval pays jane's recruiting commission.
        let sam = admin(api, "GET", "/v1/members/sam", None, 200).await;
        assert_eq!(
            (sam["status"].as_str(), sam["parent"].as_str(), sam["handle"].as_str()),
            (Some("pending"), Some("jane"), Some("@sampark"))
        );
        let history = admin(api, "GET", "/v1/reports/history", None, 200).await;
        assert!(items(&history).iter().any(|change| change["actor"] == "join" && change["key"] == "member:sam"));
        admin(api, "POST", "/v1/members/sam/status", Some(json!({"status": "approved"})), 200).await;
        let lines = eventually(api, "/v1/lines?member=jane", "jane's recruiting commission for sam", |page| {
            items(page).iter().any(|line| line["description"] == "Recruiting: sam approved")
        })
        .await;
        let line = items(&lines).iter().find(|line| line["description"] == "Recruiting: sam approved").unwrap();
        assert_eq!((line["amount"].as_str(), line["kind"].as_str()), (Some("5.00"), Some("recruiting")));
        app.running.stop().await.unwrap();
    }
}
