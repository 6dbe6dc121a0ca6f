//! Every error code the program API answers is documented next to the operation that gives
//! it: in the OpenAPI document's responses, and in `docs/API.md`'s list, generated from that
//! document (set `CLICKLEDGER_WRITE_DOCS=1` to write it; the test then checks what it wrote).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use serde_json::Value;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md");

fn document() -> Value {
    serde_json::from_str(&clickledger_api::openapi_json()).unwrap()
}

/// The codes in backticks of a response description.
fn codes_in(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_string)
        .collect()
}

/// The codes each response of an operation gives; 401, 403 and 503 are the same everywhere.
fn response_codes(status: &str, response: &Value) -> Vec<String> {
    match status {
        "401" => vec!["unauthenticated".into()],
        "403" => vec!["forbidden".into()],
        "503" => vec!["unavailable".into()],
        _ => codes_in(response["description"].as_str().unwrap_or_default()),
    }
}

/// `docs/API.md`'s list: one row per operation and error status.
fn generated_list(document: &Value) -> String {
    let mut rows = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let codes = response_codes(status, response);
                let shown: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
                rows.push(format!("| `{} {path}` | {status} | {} |", method.to_uppercase(), shown.join(", ")));
            }
        }
    }
    format!("| operation | status | codes |\n|---|---|---|\n{}\n", rows.join("\n"))
}

/// Every code a handler of the crate can answer with: the literal codes of `ApiError`'s
/// constructors in `api/src`, the program's rule codes (422), and the fixed ones.
fn codes_the_code_answers() -> BTreeSet<String> {
    let mut codes: BTreeSet<String> = [
        "unauthenticated",
        "forbidden",
        "unavailable",
        "internal",
        "bad_json",
        "bad_query",
        "body_timeout",
        "body_too_large",
    ]
    .map(String::from)
    .into();
    codes.extend(model::program::ProgramError::CODES.map(String::from));
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in std::fs::read_dir(source).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for constructor in ["bad_request(", "not_found(", "conflict("] {
            for (at, _) in text.match_indices(constructor) {
                let rest = text[at + constructor.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    codes.insert(literal[..literal.find('"').unwrap()].to_string());
                }
            }
        }
    }
    codes
}

#[test]
fn every_code_the_api_answers_is_documented_on_an_operation() {
    let document = document();
    let mut documented = BTreeSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                documented.extend(response_codes(status, response));
            }
        }
    }
    documented.insert("internal".into());
    documented.insert("unknown_route".into());
    let undocumented: Vec<String> = codes_the_code_answers().difference(&documented).cloned().collect();
    assert!(undocumented.is_empty(), "answered but documented on no operation: {undocumented:?}");
}

#[test]
fn api_md_lists_the_codes_of_every_operation() {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let open = "<!-- errors -->\n";
    let start = page.find(open).expect("docs/API.md has no <!-- errors --> block") + open.len();
    let end = start + page[start..].find("<!-- /errors -->").expect("an end marker");
    let generated = format!("{}{}{}", &page[..start], generated_list(&document()), &page[end..]);
    if std::env::var("CLICKLEDGER_WRITE_DOCS").is_ok_and(|value| value == "1") {
        std::fs::write(PAGE, &generated).unwrap();
        return;
    }
    assert!(
        page == generated,
        "docs/API.md's list of error codes differs from the OpenAPI document: run \
         CLICKLEDGER_WRITE_DOCS=1 cargo test -p clickledger-api --test error_docs"
    );
}
