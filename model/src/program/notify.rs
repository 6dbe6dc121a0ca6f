//! Who is told what happened: partner postbacks (URL templates with macros, on the program, an
//! offer, a member or an enrolment) and webhook endpoints (signed JSON for chosen event
//! types). The notifier resolves a notice to these destinations (docs/NOTIFICATIONS.md).

use serde::{Deserialize, Serialize};

use super::change::ProgramError;
use super::offer::validate_http_url;
use crate::events::NoticeKind;
use crate::ids::WebhookId;

/// The macros a postback template may use, each replaced by its value, URL-encoded.
pub const MACROS: [&str; 16] = [
    "click_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "order_id",
    "amount",
    "currency",
    "payout",
    "status",
    "offer",
    "member",
    "event_id",
    "conversion_id",
    "conversion_time",
];

/// A partner postback: a URL template called (GET) on the chosen events of a conversion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Postback {
    /// `https://partner.example/pb?cid={click_id}&payout={payout}`
    pub url: String,
    /// What fires it: `conversion.attributed` (the default), `commission.created`,
    /// `commission.approved`, `commission.rejected`, `commission.reversed`.
    #[serde(default = "default_postback_events")]
    pub events: Vec<NoticeKind>,
}

fn default_postback_events() -> Vec<NoticeKind> {
    vec![NoticeKind::ConversionAttributed]
}

impl Postback {
    pub(super) fn validate(&self, context: &str) -> Result<(), ProgramError> {
        check_template(&self.url).map_err(|error| error.in_context(context))?;
        if self.events.is_empty() {
            return Err(ProgramError::invalid(format!("{context}: a postback needs at least one event")));
        }
        if let Some(kind) = self.events.iter().find(|kind| !kind.is_postback_event()) {
            return Err(ProgramError::invalid(format!(
                "{context}: a postback cannot fire on {}; webhooks carry it",
                kind.as_str()
            )));
        }
        Ok(())
    }

    pub fn fires_on(&self, kind: NoticeKind) -> bool {
        self.events.contains(&kind)
    }
}

/// A webhook endpoint: signed JSON bodies (`HMAC-SHA256("{timestamp}.{body}")` with its
/// secret) for the event types it subscribes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<NoticeKind>,
    /// The signing secret (`whsec_` and 32 random characters when the API makes it).
    pub secret: String,
    #[serde(default = "active_by_default")]
    pub active: bool,
    #[serde(default)]
    pub description: String,
}

fn active_by_default() -> bool {
    true
}

impl Webhook {
    pub(super) fn validate(&self) -> Result<(), ProgramError> {
        let context = format!("webhook {}", self.id);
        validate_http_url(&self.url)
            .map_err(|why| ProgramError::BadUrl { context: context.clone(), why: why.to_string() })?;
        if self.events.is_empty() {
            return Err(ProgramError::invalid(format!("{context}: subscribe to at least one event")));
        }
        if self.secret.len() < 16 || self.secret.len() > 256 {
            return Err(ProgramError::invalid(format!("{context}: the secret must be 16 to 256 characters")));
        }
        if self.description.len() > 500 {
            return Err(ProgramError::invalid(format!("{context}: the description is over 500 characters")));
        }
        Ok(())
    }

    pub fn fires_on(&self, kind: NoticeKind) -> bool {
        self.active && self.events.contains(&kind)
    }
}

/// Why a template was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    UnknownMacro(String),
    BadUrl(String),
}

impl TemplateError {
    fn in_context(self, context: &str) -> ProgramError {
        match self {
            TemplateError::UnknownMacro(name) => ProgramError::UnknownMacro { context: context.to_string(), name },
            TemplateError::BadUrl(why) => ProgramError::BadUrl { context: context.to_string(), why },
        }
    }
}

/// The parts of a template: text, and macros by name.
enum Part<'a> {
    Text(&'a str),
    Macro(&'a str),
}

fn parts(template: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(TemplateError::BadUrl("a '}' closes no macro".to_string()));
        }
        let Some(close) = rest[open..].find('}').map(|close| open + close) else {
            return Err(TemplateError::BadUrl("a '{' is never closed".to_string()));
        };
        let name = &rest[open + 1..close];
        if !MACROS.contains(&name) {
            return Err(TemplateError::UnknownMacro(name.to_string()));
        }
        parts.push(Part::Text(&rest[..open]));
        parts.push(Part::Macro(name));
        rest = &rest[close + 1..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// Check a postback template: every macro known, and an absolute http(s) URL once they are
/// filled in.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    let filled = render(template, |_| Some("x".to_string()))?;
    validate_http_url(&filled).map_err(|why| TemplateError::BadUrl(why.to_string()))
}

/// Fill in a template: each macro replaced by its value, percent-encoded (everything but
/// `A-Z a-z 0-9 - . _ ~`), or by nothing when it has none.
pub fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
    let mut url = String::with_capacity(template.len() + 64);
    for part in parts(template)? {
        match part {
            Part::Text(text) => url.push_str(text),
            Part::Macro(name) => {
                if let Some(value) = value(name) {
                    encode_into(&value, &mut url);
                }
            }
        }
    }
    Ok(url)
}

fn encode_into(value: &str, url: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Check the postbacks of one entity.
pub(super) fn validate_postbacks(context: &str, postbacks: &[Postback]) -> Result<(), ProgramError> {
    if postbacks.len() > 10 {
        return Err(ProgramError::invalid(format!("{context}: at most 10 postbacks")));
    }
    postbacks.iter().try_for_each(|postback| postback.validate(context))
}

/// The kinds a set of postbacks fires on, as bits ([`NoticeKind::bit`]).
pub(super) fn postback_bits(postbacks: &[Postback]) -> u16 {
    postbacks.iter().flat_map(|postback| postback.events.iter()).fold(0, |bits, kind| bits | kind.bit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn macros_are_replaced_by_their_values_percent_encoded() {
        let url = render("https://p.example/pb?cid={click_id}&s1={sub1}&amt={amount}&none={sub2}", |name| match name {
            "click_id" => Some("AbC.9_~-".to_string()),
            "sub1" => Some("a b&c=d/é".to_string()),
            "amount" => Some("120.50".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(url, "https://p.example/pb?cid=AbC.9_~-&s1=a%20b%26c%3Dd%2F%C3%A9&amt=120.50&none=");
    }

    #[test]
    fn unknown_macros_and_broken_templates_are_refused() {
        assert_eq!(
            check_template("https://p.example/?x={clickid}"),
            Err(TemplateError::UnknownMacro("clickid".into()))
        );
        assert!(matches!(check_template("https://p.example/?x={click_id"), Err(TemplateError::BadUrl(_))));
        assert!(matches!(check_template("https://p.example/?x=click_id}"), Err(TemplateError::BadUrl(_))));
        assert!(matches!(check_template("ftp://p.example/{click_id}"), Err(TemplateError::BadUrl(_))));
        assert!(matches!(check_template("{click_id}"), Err(TemplateError::BadUrl(_))));
        assert_eq!(check_template("https://p.example/pb?cid={click_id}&p={payout}"), Ok(()));
    }
}
