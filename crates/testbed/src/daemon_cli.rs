//! What every daemon's command line must do, checked against the real binary: `--version`
//! with the revision and build date, `--help` listing exactly the variables the daemon
//! reads (clap showing their environment names, never their values), and the version in
//! the first log line.

use std::path::Path;
use std::process::{Command, Output};

use sidecar_core::config::{Daemon, VARS};

fn run(exe: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(exe)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", exe.display()))
}

/// The revision the build script should have stamped, found here with git independently:
/// `unknown` in a source tree without `.git`.
pub fn expected_revision() -> String {
    if let Ok(given) = std::env::var("PCAP_SIDECAR_REVISION") {
        if !given.trim().is_empty() {
            return given.trim().to_string();
        }
    }
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// `--version`: `<name> <version> (revision <rev>, built <YYYY-MM-DD>)`.
pub fn check_version(exe: &Path, daemon: Daemon) {
    let output = run(exe, &[], &["--version"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.trim();
    let prefix = format!(
        "{} {} (revision {}, built ",
        daemon.name(),
        env!("CARGO_PKG_VERSION"),
        expected_revision()
    );
    let date = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version printed {line:?}, expected {prefix}YYYY-MM-DD)"));
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3
            && [4, 2, 2] == [parts[0].len(), parts[1].len(), parts[2].len()]
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "build date {date:?}"
    );
}

/// `--help`: every variable the daemon reads with its flag and `[env: NAME]` under a group
/// heading, no other variable, no value from the environment.
pub fn check_help(exe: &Path, daemon: Daemon) {
    let secret = "/value-that-must-not-show";
    let env: Vec<(&str, &str)> = VARS
        .iter()
        .filter(|v| v.name != "PCAP_DEBUG")
        .map(|v| (v.name, secret))
        .collect();
    let output = run(exe, &env, &["--help"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains(secret), "{help}");
    for var in VARS {
        let flag = format!("--{} ", var.flag);
        let env_name = format!("[env: {}]", var.name);
        if var.read_by(daemon) {
            assert!(help.contains(&flag), "{} missing: {help}", var.flag);
            assert!(help.contains(&env_name), "{env_name} missing: {help}");
            assert!(help.contains(&format!("\n{}:\n", var.group.heading())));
        } else {
            assert!(!help.contains(&flag), "{} listed: {help}", var.flag);
            assert!(!help.contains(&env_name), "{} listed: {help}", var.name);
        }
    }
}

/// The first log line carries the version label; here the line of a bad `PCAP_DEBUG`, which
/// every daemon reads (clap takes it from the environment).
pub fn check_first_line(exe: &Path) {
    let output = run(exe, &[("PCAP_DEBUG", "loud")], &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().next().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(first).expect("a JSON line");
    assert_eq!(line["variable"], "PCAP_DEBUG", "{first}");
    assert_eq!(
        line["logging.googleapis.com/labels"]["version"],
        format!("{}+{}", env!("CARGO_PKG_VERSION"), expected_revision()),
        "{first}"
    );
}

/// All three checks.
pub fn check(exe: &Path, daemon: Daemon) {
    check_version(exe, daemon);
    check_help(exe, daemon);
    check_first_line(exe);
}
