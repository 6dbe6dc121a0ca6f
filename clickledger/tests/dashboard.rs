//! The dashboard and members' portal (`/ui/`, api/src/ui.rs) in headless Chromium against the
//! embedded deployment: sign in with a key; the overview's totals and chart show a click and a
//! pixel sent through the edge; a pending conversion is approved; a bill is run and marked
//! paid; the member signs in with her own key and sees exactly her own line. Screenshots of
//! each page are written to `docs/screenshots/`; a failing step names the page and element.
//! Without a browser: the session cookie's flags, CSRF, and a revoked key ending its session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::path::PathBuf;

use api_support::*;
use serde_json::{Value, json};

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots").join(name)
}

/// Jane's sales in `summer` wait for approval (a pending option), and one pixel sale of 80.00.
async fn pending_sale(api: std::net::SocketAddr, edge: std::net::SocketAddr) {
    let review = json!({"id": "review", "name": "sale", "pending": true, "rule": {"type": "cps", "rate": [{"from": 1, "value": "0.10"}]}});
    admin(api, "POST", "/v1/offers/summer/payout-options", Some(review), 201).await;
    admin(
        api,
        "PATCH",
        "/v1/offers/summer/enrolments",
        Some(json!({"members": ["jane"], "payout_option": "review"})),
        200,
    )
    .await;
    let click = common::get(edge, "/c/jane-summer").await;
    let pixel = common::get_with_cookie(edge, "/px?offer=summer&order_id=D-1&amount=80.00", &click.visitor()).await;
    assert_eq!(pixel.status, 200);
    eventually(api, "/v1/conversions/pending", "the pending sale", |page| items(page).len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_http_only_strict_cookies_whose_changes_need_the_csrf_token() {
    let app = start().await;
    let api = app.api();
    let signed =
        raw(api, "POST", "/ui/session", None, Some(&json!({"key": ADMIN}).to_string()), "application/json").await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    let cookie = signed.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = signed.json()["csrf"].as_str().unwrap().to_string();
    let with = |extra: &[(&'static str, String)]| {
        let mut headers = vec![("Cookie", session.clone()), ("Content-Type", "application/json".to_string())];
        headers.extend(extra.iter().cloned());
        headers
    };
    let send = |method: &'static str, path: &'static str, headers: Vec<(&'static str, String)>, body: Value| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        common::request(api, method, path, &headers, &body.to_string()).await
    };
    // Reads with the cookie alone; a change without the token is refused, with it done.
    assert_eq!(send("GET", "/v1/offers", with(&[]), Value::Null).await.status, 200);
    let member = json!({"id": "kim", "name": "Kim"});
    let refused = send("POST", "/v1/members", with(&[]), member.clone()).await;
    assert_eq!((refused.status, refused.reason()), (403, "forbidden".to_string()));
    let wrong = send("POST", "/v1/members", with(&[("X-CSRF-Token", "0".repeat(64))]), member.clone()).await;
    assert_eq!(wrong.status, 403);
    assert_eq!(send("POST", "/v1/members", with(&[("X-CSRF-Token", csrf.clone())]), member).await.status, 201);
    // A wrong key signs nothing in; an advertiser key is not for the dashboard.
    let unknown =
        raw(api, "POST", "/ui/session", None, Some(&json!({"key": "nope"}).to_string()), "application/json").await;
    assert_eq!(unknown.status, 401);
    // A revoked key's session ends at once.
    let made = admin(api, "POST", "/v1/keys", Some(json!({"name": "ops", "scope": "analyst"})), 201).await;
    let ops =
        raw(api, "POST", "/ui/session", None, Some(&json!({"key": made["key"]}).to_string()), "application/json").await;
    let ops_session = ops.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let read = |cookie: String| async move {
        common::request(api, "GET", "/v1/lines", &[("Cookie", &cookie)], "").await.status
    };
    assert_eq!(read(ops_session.clone()).await, 200);
    admin(api, "DELETE", "/v1/keys/ops", None, 200).await;
    assert_eq!(read(ops_session).await, 401);
    // Signing out ends the session.
    assert_eq!(send("DELETE", "/ui/session", with(&[]), Value::Null).await.status, 204);
    assert_eq!(send("GET", "/v1/offers", with(&[]), Value::Null).await.status, 401);
    // The pages: the app shell with a content security policy, its assets, `/` sends there.
    let shell = common::get(api, "/ui/").await;
    assert_eq!(shell.status, 200);
    assert!(shell.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(common::get(api, "/ui/assets/chart.js").await.status, 200);
    assert_eq!(common::get(api, "/").await.header("location"), Some("/ui/"));
    app.running.stop().await.unwrap();
}

/// Needs Chromium and chromedriver, which the test command installs.
mod needs_services {
    use super::*;

    /// Wait for `condition` on `page`, naming both when it never holds.
    async fn on(browser: &testkit::browser::Browser, page: &str, element: &str, condition: &str) {
        let started = tokio::time::Instant::now();
        loop {
            let held = browser.run(&format!("return Boolean({condition});")).await;
            if held == Value::Bool(true) {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(15),
                "page {page}: element {element} never showed ({condition}) at {}",
                browser.url().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn click(browser: &testkit::browser::Browser, page: &str, selector: &str) {
        on(browser, page, selector, &format!("document.querySelector('{selector}')")).await;
        browser.run(&format!("document.querySelector('{selector}').click(); return true;")).await;
    }

    /// Set form fields by element id.
    async fn fill(browser: &testkit::browser::Browser, fields: &[(&str, &str)]) {
        for (id, value) in fields {
            let set = format!("document.getElementById('{id}').value = {}; return true;", json!(value));
            assert_eq!(browser.run(&set).await, json!(true), "field {id}");
        }
    }

    async fn sign_in(browser: &testkit::browser::Browser, base: &str, key: &str) {
        browser.open(&format!("{base}/ui/")).await;
        on(browser, "sign in", "#key", "document.getElementById('key')").await;
        browser.run(&format!("document.getElementById('key').value = '{key}'; return true;")).await;
        click(browser, "sign in", "#sign-in-button").await;
        on(browser, "overview", "#who", "document.getElementById('who')").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium and chromedriver: the test command (deploy/test.sh) installs them and runs this"]
    async fn a_program_manager_approves_and_bills_and_the_member_sees_exactly_her_own_line() {
        let app = start().await;
        let (api, edge) = (app.api(), app.edge());
        pending_sale(api, edge).await;
        let base = format!("http://127.0.0.1:{}", api.port());
        let browser = testkit::browser::Browser::start().await;

        // A wrong key is refused on the sign-in page.
        browser.open(&format!("{base}/ui/")).await;
        on(&browser, "sign in", "#key", "document.getElementById('key')").await;
        browser.run("document.getElementById('key').value = 'not-a-key'; return true;").await;
        click(&browser, "sign in", "#sign-in-button").await;
        on(
            &browser,
            "sign in",
            "#sign-in-problem",
            "document.getElementById('sign-in-problem').textContent === 'That key is not known.'",
        )
        .await;
        browser.screenshot(&screenshot("dashboard-sign-in.png")).await;

        // The overview: the click and the sale in the totals and in the chart.
        sign_in(&browser, &base, ADMIN).await;
        on(&browser, "overview", "#chart-activity", "window.clickledgerCharts['chart-activity']").await;
        let clicks = browser
            .run("return window.clickledgerCharts['chart-activity'].data.datasets[0].data.reduce((a, b) => a + b, 0);")
            .await;
        assert_eq!(clicks, json!(1), "the overview chart's clicks");
        let totals = browser.run("return document.querySelector('[data-total=Conversions]').textContent;").await;
        assert_eq!(totals, json!("1"));
        let revenue = browser.run("return document.querySelector('[data-total=Revenue]').textContent;").await;
        assert_eq!(revenue, json!("80.00"));
        browser.screenshot(&screenshot("dashboard-overview.png")).await;

        // A new offer with two payout options, the first the default.
        browser.open(&format!("{base}/ui/#/offers")).await;
        on(&browser, "offers", "#new-offer", "document.getElementById('new-offer-id')").await;
        fill(
            &browser,
            &[
                ("new-offer-id", "autumn"),
                ("new-offer-name", "Autumn Sale"),
                ("new-offer-url", "https://shop.example.com/autumn"),
                ("new-offer-first_rate", "12"),
                ("new-offer-second_rate", "18"),
            ],
        )
        .await;
        click(&browser, "offers", "#new-offer-submit").await;
        on(
            &browser,
            "offers",
            "#offer-title",
            "document.getElementById('offer-title')?.textContent === 'Autumn Sale (autumn)'",
        )
        .await;
        let autumn = admin(api, "GET", "/v1/offers/autumn", None, 200).await;
        let options: Vec<(&str, &Value)> = autumn["payout_options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|option| (option["id"].as_str().unwrap(), &option["rule"]["rate"][0]["value"]))
            .collect();
        assert_eq!(options, [("standard", &json!("0.12")), ("vip", &json!("0.18"))]);
        assert_eq!(autumn["default_payout"], "standard");

        // A visitor joins under jane; approved on the Members page; put on the vip option of
        // autumn and given a code.
        let joined = raw(
            api,
            "POST",
            "/join",
            None,
            Some("parent=jane&id=sam&name=Sam+Park"),
            "application/x-www-form-urlencoded",
        )
        .await;
        assert_eq!(joined.status, 201, "{}", joined.body);
        browser.open(&format!("{base}/ui/#/members")).await;
        click(&browser, "members", "[data-approve-member=\"sam\"]").await;
        eventually(api, "/v1/members/sam", "sam approved", |member| member["status"] == "approved").await;
        browser.open(&format!("{base}/ui/#/members")).await;
        on(
            &browser,
            "members",
            "#tree",
            "document.querySelector('#tree li[data-member=\"jane\"] li[data-member=\"sam\"]')",
        )
        .await;
        browser.open(&format!("{base}/ui/#/offers?offer=autumn")).await;
        on(&browser, "offers", "#enrol", "document.getElementById('enrol-member')").await;
        fill(&browser, &[("enrol-member", "sam"), ("enrol-option", "vip")]).await;
        click(&browser, "offers", "#enrol-submit").await;
        on(
            &browser,
            "offers",
            "#enrolments",
            "[...document.querySelectorAll('#enrolments td')].some(cell => cell.textContent === 'sam')",
        )
        .await;
        fill(&browser, &[("edit-offer-name", "Autumn Sale 2026")]).await;
        click(&browser, "offers", "#edit-offer-submit").await;
        on(
            &browser,
            "offers",
            "#offer-title",
            "document.getElementById('offer-title')?.textContent === 'Autumn Sale 2026 (autumn)'",
        )
        .await;
        on(&browser, "offers", "#history", "document.querySelectorAll('#history tbody tr').length >= 3").await;
        browser.screenshot(&screenshot("dashboard-offer.png")).await;
        let enrolments = admin(api, "GET", "/v1/offers/autumn/enrolments", None, 200).await;
        assert_eq!(items(&enrolments)[0]["payout_option"], "vip");
        browser.open(&format!("{base}/ui/#/promotions")).await;
        on(&browser, "links and codes", "#new-code", "document.getElementById('new-code-offer')").await;
        fill(&browser, &[("new-code-offer", "autumn"), ("new-code-member", "sam"), ("new-code-code", "SAM18")]).await;
        click(&browser, "links and codes", "#new-code-submit").await;
        on(
            &browser,
            "links and codes",
            "#codes",
            "[...document.querySelectorAll('#codes td')].some(cell => cell.textContent === 'SAM18')",
        )
        .await;
        fill(
            &browser,
            &[("code-dates-code", "SAM18"), ("code-dates-starts", "2026-09-01"), ("code-dates-ends", "2026-12-01")],
        )
        .await;
        click(&browser, "links and codes", "#code-dates-submit").await;
        let dated =
            eventually(api, "/v1/codes?member=sam", "SAM18's dates", |page| !items(page)[0]["ends_at"].is_null()).await;
        assert_eq!(
            (items(&dated)[0]["starts_at"].as_str(), items(&dated)[0]["ends_at"].as_str()),
            (Some("2026-09-01T00:00:00.000Z"), Some("2026-12-01T00:00:00.000Z"))
        );
        browser.screenshot(&screenshot("dashboard-codes.png")).await;
        let codes = admin(api, "GET", "/v1/codes?member=sam", None, 200).await;
        assert_eq!(
            items(&codes)
                .iter()
                .map(|code| (code["code"].as_str().unwrap(), code["offer"].as_str().unwrap()))
                .collect::<Vec<_>>(),
            [("SAM18", "autumn")]
        );

        // The pending sale, approved.
        browser.open(&format!("{base}/ui/#/conversions")).await;
        on(&browser, "conversions", "[data-approve]", "document.querySelector('[data-approve=\"acme:D-1\"]')").await;
        browser.screenshot(&screenshot("dashboard-conversions.png")).await;
        click(&browser, "conversions", "[data-approve=\"acme:D-1\"]").await;
        eventually(api, "/v1/lines?order_id=D-1", "the approved line", |page| {
            items(page).len() == 1 && items(page)[0]["status"] == "approved"
        })
        .await;

        // A bill run, and the bill marked paid.
        browser.open(&format!("{base}/ui/#/bills")).await;
        click(&browser, "bills", "#run-bills").await;
        on(&browser, "bills", "[data-pay]", "document.querySelector('[data-pay]')").await;
        browser.screenshot(&screenshot("dashboard-bills.png")).await;
        click(&browser, "bills", "[data-pay]").await;
        let bills = eventually(api, "/v1/bills?member=jane", "jane's bill paid", |page| {
            items(page).iter().any(|bill| bill["status"] == "paid")
        })
        .await;
        let paid = items(&bills).iter().find(|bill| bill["status"] == "paid").unwrap();
        // 10% of 80.00, and jane's recruiting commissions: tom (5.00) and ann (2.50, Tier 2)
        // of the sample program, and sam (5.00), approved above.
        assert_eq!(paid["total"].as_str(), Some("20.50"));
        on(
            &browser,
            "bills",
            "paid status",
            "[...document.querySelectorAll('#bills .status')].some(cell => cell.textContent === 'paid')",
        )
        .await;
        // A refund of the billed sale, in full: an adjustment of -8.00 for the next bill.
        browser.open(&format!("{base}/ui/#/conversions")).await;
        on(&browser, "conversions", "#refund", "document.getElementById('refund-order_id')").await;
        fill(&browser, &[("refund-order_id", "D-1")]).await;
        click(&browser, "conversions", "#refund-submit").await;
        eventually(api, "/v1/lines?order_id=D-1", "the refund's adjustment", |page| {
            items(page).iter().any(|line| line["kind"] == "adjustment" && line["amount"] == "-8.00")
        })
        .await;
        browser.open(&format!("{base}/ui/#/subscriptions")).await;
        on(&browser, "subscriptions", "#subscriptions", "document.getElementById('subscriptions')").await;
        click(&browser, "subscriptions", "#sign-out").await;
        on(&browser, "sign in", "#key", "document.getElementById('key')").await;

        // Jane signs in with her own key and sees exactly her line; no staff pages.
        let made = admin(
            api,
            "POST",
            "/v1/keys",
            Some(json!({"name": "jane-portal", "scope": "member", "member": "jane"})),
            201,
        )
        .await;
        sign_in(&browser, &base, made["key"].as_str().unwrap()).await;
        assert_eq!(browser.run("return document.getElementById('nav-conversions');").await, Value::Null);
        // Her conversions on her overview: the sale, and no one else's.
        on(
            &browser,
            "overview",
            "#conversion-report",
            "document.querySelectorAll('#conversion-report tbody tr').length > 0",
        )
        .await;
        let orders = browser.run("return [...document.querySelectorAll('#conversion-report tbody tr')].map(row => [row.cells[2].textContent, row.cells[3].textContent]);").await;
        assert_eq!(orders, json!([["jane", "D-1"]]), "her conversions only");
        browser.open(&format!("{base}/ui/#/lines")).await;
        on(&browser, "lines", "#lines", "document.querySelectorAll('#lines tbody tr').length > 0").await;
        let shown = browser
            .run("return [...document.querySelectorAll('#lines tbody tr')].map(row => [...row.cells].map(cell => cell.textContent));")
            .await;
        let expected = admin(api, "GET", "/v1/lines?member=jane", None, 200).await;
        assert_eq!(shown.as_array().unwrap().len(), items(&expected).len(), "her lines, no one else's: {shown}");
        assert!(shown.as_array().unwrap().iter().all(|row| row[1] == "jane"), "{shown}");
        assert!(
            shown
                .as_array()
                .unwrap()
                .iter()
                .any(|row| row[3] == "acme:D-1" && row[6] == "8.00 USD" && row[7] == "paid"),
            "{shown}"
        );
        browser.screenshot(&screenshot("portal-lines.png")).await;
        // Her own code, not sam's; no button that changes anything.
        browser.open(&format!("{base}/ui/#/promotions")).await;
        on(&browser, "links and codes", "#codes", "document.querySelectorAll('#codes tbody tr').length > 0").await;
        let codes = browser
            .run("return [...document.querySelectorAll('#codes tbody tr')].map(row => row.cells[1].textContent);")
            .await;
        assert_eq!(codes, json!(["JANE20"]), "her codes only");
        assert_eq!(
            browser.run("return document.querySelectorAll('[data-refresh], #new-code, #codes-on').length;").await,
            json!(0)
        );
        browser.quit().await;
        app.running.stop().await.unwrap();
    }
}
