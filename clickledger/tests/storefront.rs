//! A storefront on another site than the tracker, in headless Chromium with third-party cookies
//! blocked: the tracker is `localhost:<edge>`, the shop `127.0.0.1:<shop>` (another site).
//! A plain pixel on the shop's thank-you page cannot be attributed (the tracker's visitor cookie
//! is not sent with it); the same sale through the first-party script `/t.js` is, by the click
//! id it kept in the shop's own cookie. Screenshots of the pages are kept in
//! `docs/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use api_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shop: a landing page and two thank-you pages, one with a plain pixel and one with the
/// script. Each page loads `/t.js` from the tracker.
async fn shop(edge: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tracker = format!("http://localhost:{}", edge.port());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let tracker = tracker.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
                let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let path = target.split('?').next().unwrap_or("/");
                let order = target.split("order=").nth(1).unwrap_or("none").to_string();
                let script = format!(r#"<script src="{tracker}/t.js" data-offer="shop"></script>"#);
                let body = match path {
                    "/landing" => format!(
                        "<h1>Summer sandals</h1><p>Welcome to the shop.</p>{script}\
                         <p id=kept></p><script>document.getElementById('kept').textContent = \
                         'click id kept: ' + (clickledger.clickId() ? 'yes' : 'no');</script>"
                    ),
                    "/thanks-plain" => format!(
                        "<h1>Thank you</h1><p>Order {order}, a plain pixel.</p>\
                         <img id=pixel src=\"{tracker}/px?offer=shop&order_id={order}&amount=40.00\" \
                         onload=\"document.title='sent'\" onerror=\"document.title='sent'\">"
                    ),
                    "/thanks" => format!(
                        "<h1>Thank you</h1><p>Order {order}, through the script.</p>{script}\
                         <script>clickledger.convert({{order_id: '{order}', amount: '40.00'}})\
                         .then(function () {{ document.title = 'sent'; }});</script>"
                    ),
                    _ => "<h1>Shop</h1>".to_string(),
                };
                let page = format!("<!doctype html><html><head><title>shop</title></head><body>{body}</body></html>");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    address
}

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots").join(name)
}

/// Needs Chromium and chromedriver, which the test command installs.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium and chromedriver: the test command (deploy/test.sh) installs them and runs this"]
    async fn the_first_party_script_attributes_what_a_blocked_cookie_cannot() {
        let app = start().await;
        let (api, edge) = (app.api(), app.edge());
        let shop = shop(edge).await;
        let offer = json!({"id": "shop", "advertiser": "acme", "name": "Shop", "currency": "USD",
            "url": format!("http://127.0.0.1:{}/landing", shop.port()), "default_payout": "sale",
            "payout_options": [{"id": "sale", "name": "sale", "rule": {"type": "cps", "rate": [{"from": 1, "value": "0.10"}]}}]});
        admin(api, "POST", "/v1/offers", Some(offer), 201).await;
        admin(api, "POST", "/v1/offers/shop/enrolments", Some(json!({"members": ["jane"]})), 201).await;

        let browser = testkit::browser::Browser::start().await;
        // The shopper follows jane's link on the tracker and lands on the shop.
        browser.open(&format!("http://localhost:{}/c?offer=shop&member=jane", edge.port())).await;
        assert!(browser.url().await.starts_with(&format!("http://127.0.0.1:{}/landing?click_id=", shop.port())));
        browser.wait_for("document.getElementById('kept').textContent === 'click id kept: yes'").await;
        browser.screenshot(&screenshot("storefront-landing.png")).await;

        // A plain pixel from the shop's page: the tracker's cookie stays home.
        browser.open(&format!("http://127.0.0.1:{}/thanks-plain?order=T-1", shop.port())).await;
        browser.wait_for("document.title === 'sent'").await;
        let unattributed =
            eventually(api, "/v1/conversions/rejected?order_id=T-1", "T-1 rejected", |page| items(page).len() == 1)
                .await;
        assert_eq!(
            (items(&unattributed)[0]["reason"].as_str(), items(&unattributed)[0]["evidence"].as_str()),
            (Some("no_click_in_window"), Some("none")),
            "no cookie reached the tracker"
        );

        // The same sale through the script: attributed by the click id the shop's cookie kept.
        browser.open(&format!("http://127.0.0.1:{}/thanks?order=T-2", shop.port())).await;
        browser.wait_for("document.title === 'sent'").await;
        browser.screenshot(&screenshot("storefront-thanks.png")).await;
        let page =
            eventually(api, "/v1/reports/conversions?order_id=T-2", "T-2 attributed", |page| items(page).len() == 1)
                .await;
        let row = &items(&page)[0];
        assert_eq!(
            (row["member"].as_str(), row["via"].as_str(), row["commission"].as_str()),
            (Some("jane"), Some("click_id"), Some("4.00"))
        );
        browser.quit().await;
        app.running.stop().await.unwrap();
    }
}
