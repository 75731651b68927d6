//! The documentation points only at things that exist: every relative Markdown link, every
//! repository path (`crates/…`, `docs/…`, `scripts/…` …) and every `file.rs`/`file.md` name
//! in a Markdown file resolves to a file or folder of the repository; and no comment or
//! document cites the project's private planning notes ("CONTRACT §N", "issue N"), which
//! are not in the repository.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file of the repository (relative, `/`-separated), without build output.
fn files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            files(&entry.path(), &path, out);
        } else {
            out.push(path);
        }
    }
}

/// Relative Markdown link targets: `[text](target)`.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        if !(target.is_empty()
            || target.starts_with('#')
            || target.contains("://")
            || target.starts_with("mailto:"))
        {
            found.push(target.to_string());
        }
    }
    found
}

/// GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces
/// as `-`.
fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

const TOP: &[&str] = &[
    "crates/",
    "docs/",
    "docker/",
    "scripts/",
    "supervisor/",
    "tests/",
];

/// Words that name a repository path or a Rust/Markdown file.
fn paths(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "`'\"()[]<>,;|*".contains(c))
        .map(|w| w.split('#').next().unwrap_or(w))
        .map(|w| w.trim_end_matches(['.', ':', '!', '?']))
        .filter(|w| !w.contains("://") && !w.starts_with('/') && !w.contains('$'))
        .filter(|w| !w.contains('{') && !w.contains('…'))
        .filter(|w| {
            TOP.iter().any(|top| w.starts_with(top))
                || w.ends_with(".rs")
                || (w.ends_with(".md") && w.len() > 3)
        })
        .map(str::to_string)
        .collect()
}

fn resolves(word: &str, md_dir: &Path, root: &Path, all: &BTreeSet<String>) -> bool {
    let word = word.trim_end_matches('/');
    if md_dir.join(word).exists() || root.join(word).exists() {
        return true;
    }
    // `src/main.rs` inside a crate's section, or a bare `schedule.rs`: some file ends so.
    all.iter()
        .any(|f| f == word || f.ends_with(&format!("/{word}")))
}

#[test]
fn markdown_links_and_paths_point_somewhere() {
    let root = root();
    let mut all = Vec::new();
    files(&root, "", &mut all);
    let set: BTreeSet<String> = all.iter().cloned().collect();
    let mut broken = Vec::new();
    for md in all.iter().filter(|f| f.ends_with(".md")) {
        let text = std::fs::read_to_string(root.join(md)).expect("readable");
        let dir = root.join(md).parent().expect("a folder").to_path_buf();
        for target in links(&text) {
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = dir.join(file);
            if !path.exists() {
                broken.push(format!("{md}: link to {target}"));
            } else if !anchor.is_empty() && file.ends_with(".md") {
                let linked = std::fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&linked).contains(anchor) {
                    broken.push(format!("{md}: link to a missing heading {target}"));
                }
            }
        }
        for word in paths(&text) {
            if !resolves(&word, &dir, &root, &set) {
                broken.push(format!("{md}: path {word}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn nothing_cites_notes_that_are_not_in_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, "", &mut all);
    let mut found = Vec::new();
    for file in all.iter().filter(|f| {
        [".rs", ".md", ".toml", ".yaml", "Containerfile"]
            .iter()
            .any(|ext| f.ends_with(ext))
            || f.starts_with("scripts/")
    }) {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            // This file spells the patterns out.
            let cites_issue = lower.match_indices("issue ").any(|(at, m)| {
                let after = &lower[at + m.len()..];
                after.starts_with(|c: char| c.is_ascii_digit())
                    && !lower[..at].trim_end().ends_with("libpnet")
            });
            if !file.ends_with("docs_links.rs")
                && (line.contains("CONTRACT §")
                    || line.contains("pcap-cli.md")
                    || line.contains("reference's §")
                    || cites_issue)
            {
                found.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_checks_catch_what_they_should() {
    assert_eq!(
        links("see [x](docs/a.md#b) and [y](https://e.com)"),
        ["docs/a.md#b"]
    );
    assert!(
        anchors("## Cron expressions\n### 1. The bucket, and more\n").is_superset(&BTreeSet::from(
            [
                "cron-expressions".to_string(),
                "1-the-bucket-and-more".to_string()
            ]
        ))
    );
    assert_eq!(
        paths("run `scripts/test`, read crates/x/src/lib.rs. and main.rs"),
        ["scripts/test", "crates/x/src/lib.rs", "main.rs"]
    );
    let root = root();
    let set = BTreeSet::from(["crates/a/src/main.rs".to_string()]);
    assert!(resolves("src/main.rs", &root, &root, &set));
    assert!(!resolves("src/nowhere.rs", &root, &root, &set));
}
