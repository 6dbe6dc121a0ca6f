//! What `clickledger` prints when it is ready: where it listens, where the admin key is (never
//! the key itself), and commands to try, built from the program it loaded.

use std::net::SocketAddr;
use std::path::Path;

use model::program::Program;
use model::time::Timestamp;

/// Where the bootstrap admin key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Made on the first start and kept in this file (mode 0600).
    File(std::path::PathBuf),
    /// `CLICKLEDGER_ADMIN_KEY` or `--admin-key`.
    Setting,
}

impl KeySource {
    /// The shell words that put the key in a command.
    fn in_a_command(&self) -> String {
        match self {
            KeySource::File(path) => format!("$(cat {})", path.display()),
            KeySource::Setting => "$CLICKLEDGER_ADMIN_KEY".to_string(),
        }
    }

    fn describe(&self) -> String {
        match self {
            KeySource::File(path) => format!("in {}", path.display()),
            KeySource::Setting => "the one set in CLICKLEDGER_ADMIN_KEY (or --admin-key)".to_string(),
        }
    }
}

/// The banner for a running clickledger whose program is `program`.
pub fn banner(edge: SocketAddr, api: SocketAddr, data: &Path, program: &Program, key: &KeySource) -> String {
    let settings = program.settings();
    let mut text = format!(
        "clickledger is running: program {:?} ({} offers, {} members), data in {}.\n\n  \
         tracking edge  http://{edge}\n  program API    http://{api}   (admin key: {})\n  \
         dashboard      http://{api}/ui/   (sign in with the admin key; members with their own keys)\n  \
         sign-up page   http://{api}/join?parent=<member>\n\n",
        settings.name,
        program.offers().count(),
        program.members().count(),
        data.display(),
        key.describe()
    );
    let bearer = format!("-H \"Authorization: Bearer {}\"", key.in_a_command());
    match example(program) {
        Some(example) => {
            text.push_str("Try it:\n");
            text.push_str(&format!(
                "  click     curl -si 'http://{edge}/c?offer={offer}&member={member}' | grep -i -E '^(location|set-cookie)'\n",
                offer = example.offer,
                member = example.member
            ));
            text.push_str(&format!(
                "  pixel     curl -s -o /dev/null -w '%{{http_code}}\\n' -b 'clk_v=<clk_v from the click>' \
                 'http://{edge}/px?offer={offer}&order_id=A-1&amount=129.90'\n",
                offer = example.offer
            ));
            if let Some(code) = &example.code {
                text.push_str(&format!(
                    "  postback  curl -s 'http://{edge}/pb?code={code}&order_id=A-2&amount=80.00&token=<postback secret of {}>'\n",
                    example.advertiser
                ));
            }
        }
        None => text.push_str(
            "The program has no offer with an approved, enrolled member yet: load a program file \
             (--program FILE) or use the API (docs/API.md).\n",
        ),
    }
    text.push_str(&format!("  report    curl -s {bearer} 'http://{api}/v1/reports/conversions'\n"));
    text.push_str(&format!("  summary   curl -s {bearer} 'http://{api}/v1/reports/summary?by=member'\n"));
    text.push_str("\nCtrl-C stops.");
    text
}

/// What the commands to try use: an offer, an approved member enrolled in it, a code of the
/// offer usable now (if any), the offer's advertiser. An offer with a code is preferred, and
/// then the code's own member, so the click and the code speak of one member.
struct Example {
    offer: String,
    member: String,
    code: Option<String>,
    advertiser: String,
}

fn example(program: &Program) -> Option<Example> {
    let now = Timestamp::now();
    let earns = |offer: &model::program::Offer, member: &model::program::Member| {
        member.is_approved() && program.enrolment(&offer.id, &member.id).is_some_and(|enrolment| enrolment.active)
    };
    let candidates: Vec<Example> = program
        .offers()
        .filter(|offer| !offer.paused && !offer.is_expired_at(now))
        .filter_map(|offer| {
            let code = program.codes().find(|grant| {
                grant.offer == offer.id
                    && grant.is_usable_at(now)
                    && program.member(&grant.member).is_some_and(|member| earns(offer, member))
            });
            let member = match code {
                Some(grant) => program.member(&grant.member)?,
                None => program.members().find(|member| earns(offer, member))?,
            };
            Some(Example {
                offer: offer.id.to_string(),
                member: member.id.to_string(),
                code: code.map(|grant| grant.code.to_string()),
                advertiser: offer.advertiser.to_string(),
            })
        })
        .collect();
    let with_code = candidates.iter().position(|candidate| candidate.code.is_some());
    candidates.into_iter().nth(with_code.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use model::program::ProgramFile;

    use super::*;

    fn program(toml: &str) -> Program {
        let mut program = Program::new();
        for change in ProgramFile::from_toml(toml).unwrap().into_changes() {
            program.apply(change).unwrap();
        }
        program
    }

    fn addresses() -> (SocketAddr, SocketAddr) {
        ("127.0.0.1:8080".parse().unwrap(), "127.0.0.1:8081".parse().unwrap())
    }

    #[test]
    fn the_banner_uses_the_loaded_program_and_never_shows_the_key() {
        let (edge, api) = addresses();
        let sample = program(crate::SAMPLE_PROGRAM);
        let key = KeySource::File(Path::new("data").join("admin-key"));
        let text = banner(edge, api, Path::new("data"), &sample, &key);
        assert!(text.contains("/c?offer=summer&member=jane"), "{text}");
        assert!(text.contains("/pb?code=JANE20&"), "{text}");
        assert!(text.contains("token=<postback secret of acme>"), "{text}");
        assert!(text.contains("Bearer $(cat data/admin-key)"), "{text}");
        assert!(text.contains("admin key: in data/admin-key"), "{text}");
        assert!(text.contains(&format!("dashboard      http://{api}/ui/")), "{text}");
        assert!(!text.contains("acme-postback-secret"), "no secret is printed: {text}");

        let other = program(
            r#"
            [settings]
            name = "Other"
            currency = "EUR"
            [[advertiser]]
            id = "globex"
            name = "Globex"
            secrets = [{ secret = "globex-secret-0000000001" }]
            [[offer]]
            id = "winter"
            advertiser = "globex"
            name = "Winter"
            url = "https://globex.example.com/"
            currency = "EUR"
            default_payout = "flat"
            [[offer.payout_options]]
            id = "flat"
            name = "sale"
            rule = { type = "cpa", per_conversion = [{ from = 1, value = "2.00" }] }
            [[member]]
            id = "kim"
            name = "Kim"
            status = "approved"
            joined_at = "2026-01-01T00:00:00Z"
            [[enrolment]]
            offer = "winter"
            member = "kim"
            "#,
        );
        let text = banner(edge, api, Path::new("data"), &other, &KeySource::Setting);
        assert!(text.contains("/c?offer=winter&member=kim"), "{text}");
        assert!(!text.contains("summer") && !text.contains("JANE20"), "nothing of the sample: {text}");
        assert!(!text.contains("/pb?code="), "no code, no code postback: {text}");
        assert!(text.contains("Bearer $CLICKLEDGER_ADMIN_KEY"), "{text}");
        assert!(text.contains("the one set in CLICKLEDGER_ADMIN_KEY"), "{text}");
    }

    #[test]
    fn an_empty_program_says_how_to_load_one() {
        let (edge, api) = addresses();
        let text = banner(edge, api, Path::new("data"), &Program::new(), &KeySource::Setting);
        assert!(text.contains("no offer with an approved, enrolled member yet"), "{text}");
    }
}
