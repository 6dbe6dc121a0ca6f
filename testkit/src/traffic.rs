//! Traffic through the edge: a scripted day with every kind of event, and a busy day drawn
//! from a seeded generator.

use std::net::SocketAddr;

use crate::http::{Response, Shopper, get, post_form, postback, request};

/// The scripted day: clicks (unique, repeated, bots, CPC tiers), pixels, click-id and code
/// postbacks, a duplicate order, a pending sale, a refund and a subscription. Returns the
/// order ids it used. Decisions and the clock are the caller's.
pub async fn scripted_day(edge: SocketAddr) -> ScriptedDay {
    let ok = |response: &Response, what: &str| {
        assert!(matches!(response.status, 200 | 302), "{what}: {} {}", response.status, response.body)
    };
    // Visitor A clicks kid's store link and buys (3-tier chain).
    let (browser_a, browser_b) = (Shopper::new("a"), Shopper::new("b"));
    let a = browser_a.get(edge, "/c?offer=store&member=kid").await;
    ok(&a, "click a");
    let visitor_a = a.visitor();
    // Visitor B clicks kid then solo: the last click wins.
    let b = browser_b.get(edge, "/c?offer=store&member=kid").await;
    let visitor_b = b.visitor();
    ok(&browser_b.get_with_cookie(edge, "/c?offer=store&member=solo", &visitor_b).await, "click b2");
    // CPC: four visitors click solo's clicks link (tiers 0.10, 0.10, 0.20, 0.20), one twice, and a bot.
    let mut cpc_visitors = Vec::new();
    for n in 0..4 {
        let browser = Shopper::new(format!("cpc-{n}"));
        let response = browser.get(edge, "/c?offer=clicks&member=solo").await;
        ok(&response, "cpc click");
        cpc_visitors.push((browser, response.visitor()));
    }
    let (first_browser, first_visitor) = &cpc_visitors[0];
    ok(&first_browser.get_with_cookie(edge, "/c?offer=clicks&member=solo", first_visitor).await, "repeat click");
    let bot = request(
        edge,
        "GET",
        "/c?offer=clicks&member=solo",
        &[("User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1)")],
        "",
    )
    .await;
    ok(&bot, "bot click");
    // Pixels: A buys O1, B buys O2, C never clicked.
    ok(
        &browser_a.get_with_cookie(edge, "/px?offer=store&order_id=O1&amount=129.90&currency=USD", &visitor_a).await,
        "pixel O1",
    );
    ok(&browser_b.get_with_cookie(edge, "/px?offer=store&order_id=O2&amount=50.00", &visitor_b).await, "pixel O2");
    ok(&get(edge, "/px?offer=store&order_id=O3&amount=75.00").await, "pixel O3");
    // Code postbacks: solo's code for O4; kid's code for O1 again, later: the advertiser's
    // postback replaces the pixel (`superseded_by_postback`).
    let pb = |query: String| async move { postback(edge, &query).await };
    ok(&pb("code=SOLO5&order_id=O4&amount=80.00".into()).await, "postback O4");
    ok(&pb("code=KID10&order_id=O1&amount=129.90".into()).await, "postback O1");
    // A pending sale through a click id.
    let d = Shopper::new("d").get(edge, "/c?offer=pend&member=kid").await;
    ok(&pb(format!("click_id={}&order_id=O5&amount=200.00", d.click_id())).await, "pending O5");
    // A subscription: setup 50, then 29.95 a month.
    let e = Shopper::new("e").get(edge, "/c?offer=hosting&member=kid").await;
    ok(&pb(format!("click_id={}&order_id=O6&amount=50.00&recurring_amount=29.95", e.click_id())).await, "hosting O6");
    // A partial refund of O1.
    ok(&post_form(edge, "/pb/refund", "order_id=O1&amount=29.90&refund_id=r1").await, "refund O1");
    ScriptedDay { visitor_a, visitor_b }
}

#[derive(Debug)]
pub struct ScriptedDay {
    pub visitor_a: String,
    pub visitor_b: String,
}

/// SplitMix64: a small seeded generator, so a busy day is the same day every run.
#[derive(Debug)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[(self.next() % choices.len() as u64) as usize]
    }

    /// An amount from 5.00 to 304.99.
    pub fn amount(&mut self) -> String {
        let cents = 500 + self.next() % 30_000;
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

/// A busy day of `visitors` visitors through the edge, with every kind of traffic: store
/// sales on the 3-tier chain and solo, switched last clicks, duplicates by code, refunds,
/// CPC clicks with repeats and bots, pending sales, subscriptions and cancels, conversions
/// without a click. Returns the pending orders with the verdict the manager gives each.
pub async fn busy_day(edge: SocketAddr, seed: u64, visitors: usize) -> Vec<(String, model::events::Verdict)> {
    let mut dice = Dice::new(seed);
    let mut decisions = Vec::new();
    let expect = |response: Response, what: &str| {
        assert!(matches!(response.status, 200 | 202 | 302), "{what}: {} {}", response.status, response.body);
        response
    };
    let postback = |query: String| async move { postback(edge, &query).await };
    let form = |path: &'static str, body: String| async move { post_form(edge, path, &body).await };
    for n in 0..visitors {
        let browser = Shopper::new(n);
        let roll = dice.next() % 100;
        if roll < 45 {
            let first = dice.pick(&["kid", "solo"]);
            let click = expect(browser.get(edge, &format!("/c?offer=store&member={first}")).await, "store click");
            let visitor = click.visitor();
            if dice.chance(30) {
                let second = if first == "kid" { "solo" } else { "kid" };
                expect(
                    browser.get_with_cookie(edge, &format!("/c?offer=store&member={second}"), &visitor).await,
                    "second click",
                );
            }
            if dice.chance(60) {
                let order = format!("S{n}");
                let amount = dice.amount();
                expect(
                    browser
                        .get_with_cookie(edge, &format!("/px?offer=store&order_id={order}&amount={amount}"), &visitor)
                        .await,
                    "pixel",
                );
                if dice.chance(10) {
                    let code = dice.pick(&["KID10", "SOLO5"]);
                    expect(postback(format!("code={code}&order_id={order}&amount={amount}")).await, "duplicate");
                }
                if dice.chance(15) {
                    expect(form("/pb/refund", format!("order_id={order}&amount=3.50&refund_id=r{n}")).await, "refund");
                }
            }
        } else if roll < 65 {
            let click = expect(browser.get(edge, "/c?offer=clicks&member=solo").await, "cpc click");
            let visitor = click.visitor();
            for _ in 0..dice.next() % 3 {
                expect(
                    browser.get_with_cookie(edge, "/c?offer=clicks&member=solo", &visitor).await,
                    "repeat cpc click",
                );
            }
            if dice.chance(20) {
                let bot = request(
                    edge,
                    "GET",
                    "/c?offer=clicks&member=solo",
                    &[("User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0)")],
                    "",
                )
                .await;
                expect(bot, "bot click");
            }
        } else if roll < 80 {
            let click = expect(browser.get(edge, "/c?offer=pend&member=kid").await, "pending click");
            let order = format!("P{n}");
            expect(
                postback(format!("click_id={}&order_id={order}&amount={}", click.click_id(), dice.amount())).await,
                "pending sale",
            );
            let verdict =
                if dice.chance(50) { model::events::Verdict::Approve } else { model::events::Verdict::Reject };
            decisions.push((order, verdict));
        } else if roll < 90 {
            let click = expect(browser.get(edge, "/c?offer=hosting&member=kid").await, "hosting click");
            let order = format!("H{n}");
            let monthly = dice.amount();
            expect(
                postback(format!(
                    "click_id={}&order_id={order}&amount={}&recurring_amount={monthly}",
                    click.click_id(),
                    dice.amount()
                ))
                .await,
                "subscription",
            );
            if dice.chance(30) {
                expect(form("/pb/cancel", format!("order_id={order}")).await, "cancel");
            }
        } else if roll < 95 {
            expect(
                browser.get(edge, &format!("/px?offer=store&order_id=N{n}&amount={}", dice.amount())).await,
                "pixel without click",
            );
        } else {
            let code = dice.pick(&["KID10", "SOLO5"]);
            expect(postback(format!("code={code}&order_id=C{n}&amount={}", dice.amount())).await, "code sale");
        }
    }
    decisions
}
