//! The documents code and docs cite: every `docs/NAME.md, "Heading"` in a source file, a
//! script, a schema or a document names a heading that exists, and nothing cites a design
//! document that is not in the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// This file: its examples are not citations.
const THIS_FILE: &str = "clickledger/tests/docs.rs";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every file of the repository a citation may stand in.
fn cited_in() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | "node_modules" | "bench-data" | "data") {
                    folders.push(path);
                }
            } else if ["rs", "sql", "sh", "toml", "lua", "md", "yaml", "yml"]
                .iter()
                .any(|extension| name.ends_with(&format!(".{extension}")))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's text with comment markers and line breaks folded away, so a citation that wraps
/// onto the next comment line reads as one.
fn folded(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.trim_start();
            ["//!", "///", "//", "--", "#"]
                .iter()
                .find_map(|marker| line.strip_prefix(marker))
                .unwrap_or(line)
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headings of a Markdown document, without their `#`s.
fn headings(document: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(document).unwrap_or_default();
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(line.trim_start_matches('#').trim().to_string());
        }
    }
    found
}

/// `(document, heading)` of every citation in `text`: `NAME.md, "Heading"`.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".md, \"") {
        let before = &rest[..at];
        let name_start = before.rfind(|c: char| !(c.is_ascii_uppercase() || c == '_')).map_or(0, |index| index + 1);
        let name = &before[name_start..];
        let after = &rest[at + ".md, \"".len()..];
        let Some(end) = after.find('"') else {
            break;
        };
        if !name.is_empty() {
            found.push((format!("{name}.md"), after[..end].to_string()));
        }
        rest = &after[end..];
    }
    found
}

#[test]
fn every_cited_heading_exists() {
    let mut missing = Vec::new();
    let mut count = 0;
    for file in cited_in().into_iter().filter(|file| !file.ends_with(THIS_FILE)) {
        let text = folded(&std::fs::read_to_string(&file).unwrap_or_default());
        for (document, heading) in citations(&text) {
            count += 1;
            let path =
                if document == "README.md" { root().join(&document) } else { root().join("docs").join(&document) };
            if !headings(&path).contains(&heading) {
                missing.push(format!("{}: {document}, {heading:?}", file.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(count > 20, "only {count} citations found: is the scan reading the files?");
    assert!(missing.is_empty(), "cited headings that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn nothing_cites_a_design_document_outside_the_repository() {
    let mut found = Vec::new();
    for file in cited_in() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            if line.contains("DESIGN decision") || line.contains("DESIGN,") || line.contains("DESIGN.md") {
                found.push(format!("{}:{}: {line}", file.strip_prefix(root()).unwrap().display(), number + 1));
            }
        }
    }
    found.retain(|line| !line.starts_with(THIS_FILE));
    assert!(found.is_empty(), "cite docs/DECISIONS.md instead:\n{}", found.join("\n"));
}

#[test]
fn citations_are_found_across_wrapped_comment_lines() {
    let text = folded("/// see (docs/RULES.md, \"Two\n/// words\") and ARCHITECTURE.md, \"X\".");
    assert_eq!(
        citations(&text),
        [("RULES.md".to_string(), "Two words".to_string()), ("ARCHITECTURE.md".to_string(), "X".to_string())]
    );
}
