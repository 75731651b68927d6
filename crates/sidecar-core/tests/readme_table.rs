//! The README's configuration table lists exactly the variables of `VARS`, with their
//! defaults, so the documentation cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sidecar_core::config::VARS;

#[test]
fn readme_configuration_table_matches_the_variables() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("a '## Configuration' section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let name = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            let default = cells[1].trim_matches('`').to_string();
            (name, default)
        })
        .collect();
    let documented: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    let known: Vec<&str> = VARS.iter().map(|v| v.name).collect();
    assert_eq!(documented, known, "README table rows must follow VARS");
    for (var, (_, default)) in VARS.iter().zip(&rows) {
        assert_eq!(
            default,
            var.default.unwrap_or("(unset)"),
            "default of {} in the README",
            var.name
        );
    }
}
