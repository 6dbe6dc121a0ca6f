//! `docs/TRACKING.md` lists, under each endpoint, every code the edge answers there: the lists
//! are generated from `ingest::codes`, and this test fails when the page and the code differ.
//! Set `CLICKLEDGER_WRITE_DOCS=1` to write the lists into the page; the test then checks what
//! it wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clickledger_ingest::codes::{Endpoint, markdown};

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/TRACKING.md");

/// `text` with the block after `<!-- refusals:{name} -->`, up to `<!-- /refusals -->`, replaced
/// by `content`.
fn fill(text: &str, name: &str, content: &str) -> String {
    let open = format!("<!-- refusals:{name} -->\n");
    let start = text.find(&open).unwrap_or_else(|| panic!("docs/TRACKING.md has no {open:?}")) + open.len();
    let end = start + text[start..].find("<!-- /refusals -->").expect("an end marker");
    format!("{}{content}{}", &text[..start], &text[end..])
}

#[test]
fn the_contract_lists_every_code_of_every_endpoint() {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let mut generated = page.clone();
    for endpoint in Endpoint::ALL {
        generated = fill(&generated, endpoint.name(), &markdown(endpoint));
    }
    if std::env::var("CLICKLEDGER_WRITE_DOCS").is_ok_and(|value| value == "1") {
        std::fs::write(PAGE, &generated).unwrap();
        return;
    }
    assert!(
        page == generated,
        "docs/TRACKING.md's lists of codes differ from ingest::codes: run \
         CLICKLEDGER_WRITE_DOCS=1 cargo test -p clickledger-ingest --test contract_docs"
    );
}
