//! Where a click goes. A requested deep link is used only if it is an absolute `http(s)` URL
//! on one of the offer's allowed hosts, with no credentials and no port of its own; anything
//! else — `//evil.com`, `https://evil.com@ok.com`, `ok.com.evil.com`, `javascript:`, a host
//! without scheme, a look-alike IDN host — falls back to the offer URL. The URL is parsed
//! with the WHATWG rules browsers use and the redirect carries its normalised form, so what is
//! checked is what the browser opens.

use url::{Host, Url};

/// The deep link if it is allowed, normalised.
pub fn allowed_deep_link(requested: &str, allowed_hosts: &[String]) -> Option<Url> {
    if requested.is_empty() || requested.len() > 2048 || requested.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let url = Url::parse(requested).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if url.port().is_some() {
        return None;
    }
    let Some(Host::Domain(host)) = url.host() else {
        return None;
    };
    allowed_hosts.iter().any(|allowed| allowed == host).then_some(url)
}

/// `url` with `param=click_id` added to its query, before any fragment. `url` is an offer URL
/// or a deep link already validated; `param` is `[A-Za-z0-9_]` and a click id is base64url,
/// so neither needs escaping and no parse is needed on the hot path.
pub fn with_click_id(url: &str, param: &str, click_id: &str) -> String {
    let (base, fragment) = match url.find('#') {
        Some(hash) => url.split_at(hash),
        None => (url, ""),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut destination = String::with_capacity(url.len() + param.len() + click_id.len() + 2);
    destination.push_str(base);
    destination.push_str(separator);
    destination.push_str(param);
    destination.push('=');
    destination.push_str(click_id);
    destination.push_str(fragment);
    destination
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["ok.com".to_string(), "shop.ok.com".to_string()]
    }

    #[test]
    fn allowed_hosts_pass_normalised() {
        let allowed = |url: &str| allowed_deep_link(url, &hosts()).map(String::from);
        assert_eq!(allowed("https://ok.com/p/1?x=2#top"), Some("https://ok.com/p/1?x=2#top".into()));
        assert_eq!(allowed("HTTPS://OK.COM/p"), Some("https://ok.com/p".into()));
        assert_eq!(allowed("http://shop.ok.com"), Some("http://shop.ok.com/".into()));
        assert_eq!(allowed("https://ok.com:443/p"), Some("https://ok.com/p".into()), "the default port is no port");
    }

    #[test]
    fn open_redirect_attempts_fall_back() {
        for attempt in [
            "//evil.com",
            "//evil.com/ok.com",
            "https://evil.com@ok.com",
            "https://ok.com@evil.com",
            "https://user:pass@ok.com/",
            "https://ok.com.evil.com/",
            "https://evil.com/?ok.com",
            "https://evilok.com/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(document.domain)",
            "data:text/html,<script>alert(1)</script>",
            "ok.com/path",
            "evil.com",
            "https://оk.com/",
            "https://xn--k-0tb.com/",
            "https://ok.com:8443/",
            "https://ok.com./",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://ok.com/\nLocation: https://evil.com",
            "ftp://ok.com/",
            "",
        ] {
            assert_eq!(allowed_deep_link(attempt, &hosts()), None, "{attempt:?}");
        }
    }

    #[test]
    fn backslashes_are_read_as_browsers_read_them() {
        // WHATWG treats "\" like "/" in http(s) URLs: the host stays ok.com.
        let url = allowed_deep_link("https://ok.com\\@evil.com/", &hosts()).unwrap();
        assert_eq!(url.host_str(), Some("ok.com"));
    }

    #[test]
    fn the_click_id_is_appended_to_the_query() {
        assert_eq!(
            with_click_id("https://ok.com/p?utm=x#frag", "click_id", "AbC-_1"),
            "https://ok.com/p?utm=x&click_id=AbC-_1#frag"
        );
        assert_eq!(with_click_id("https://ok.com/", "irclickid", "X"), "https://ok.com/?irclickid=X");
        assert_eq!(with_click_id("https://ok.com/p?", "c", "X"), "https://ok.com/p?c=X");
        assert_eq!(with_click_id("https://ok.com/p?a=1&", "c", "X"), "https://ok.com/p?a=1&c=X");
        assert_eq!(with_click_id("https://ok.com/p#top", "c", "X"), "https://ok.com/p?c=X#top");
        // What a browser would make of it parses back to the same click id.
        let parsed = Url::parse(&with_click_id("https://ok.com/p?utm=x#frag", "click_id", "AbC-_1")).unwrap();
        assert_eq!(
            parsed.query_pairs().find(|(key, _)| key == "click_id").map(|(_, value)| value.into_owned()),
            Some("AbC-_1".into())
        );
    }
}
