//! Known bot user agents: their clicks and conversions are recorded with `bot = true` and never
//! counted. Matching is a case-insensitive substring search over one automaton.

use aho_corasick::AhoCorasick;

/// Crawlers, link-preview fetchers and headless browsers. Plain HTTP clients (curl, load
/// generators) are not on the list: integrations and tests use them legitimately.
const BOT_MARKERS: &[&str] = &[
    "bot/",
    "bot;",
    "bot ",
    "crawler",
    "spider",
    "slurp",
    "googlebot",
    "bingbot",
    "duckduckbot",
    "baiduspider",
    "yandexbot",
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "linkedinbot",
    "slackbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "applebot",
    "petalbot",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "bytespider",
    "gptbot",
    "ccbot",
    "claudebot",
    "headlesschrome",
    "phantomjs",
    "prerender",
    "lighthouse",
    "pingdom",
    "uptimerobot",
    "statuscake",
];

#[derive(Clone, Debug)]
pub struct BotFilter {
    markers: Option<AhoCorasick>,
}

impl BotFilter {
    pub fn new() -> Self {
        // The markers are fixed literals, which the builder always accepts.
        let markers = AhoCorasick::builder().ascii_case_insensitive(true).build(BOT_MARKERS).ok();
        Self { markers }
    }

    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        match (&self.markers, user_agent) {
            (Some(markers), Some(agent)) => markers.is_match(agent),
            _ => false,
        }
    }
}

impl Default for BotFilter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawlers_are_bots_and_browsers_are_not() {
        let filter = BotFilter::new();
        assert!(filter.is_bot(Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")));
        assert!(filter.is_bot(Some("facebookexternalhit/1.1")));
        assert!(filter.is_bot(Some("Mozilla/5.0 HeadlessChrome/120.0")));
        assert!(!filter.is_bot(Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15")));
        assert!(!filter.is_bot(Some("curl/8.5.0")));
        assert!(!filter.is_bot(None));
    }
}
