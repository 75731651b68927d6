//! `hc-probe --version`, `--help` and the first log line, run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sidecar_core::config::Daemon;

#[test]
fn version_help_and_first_log_line() {
    testbed::daemon_cli::check(Path::new(env!("CARGO_BIN_EXE_hc-probe")), Daemon::HcProbe);
}

/// hc-probe reads two variables (and PCAP_DEBUG, as every daemon): its help shows them and
/// nothing of the capture, and a variable it does not read cannot stop it.
#[test]
fn help_fits_the_probe() {
    let exe = env!("CARGO_BIN_EXE_hc-probe");
    let output = std::process::Command::new(exe)
        .env_clear()
        .arg("--help")
        .output()
        .expect("hc-probe runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for shown in [
        "--hc-port",
        "[env: PCAP_HC_PORT]",
        "--run-dir",
        "[env: PCAP_RUN_DIR]",
    ] {
        assert!(help.contains(shown), "{shown} missing: {help}");
    }
    for hidden in [
        "PCAP_FILTER",
        "PCAP_PORTS",
        "PCAP_GCS_BUCKET",
        "PCAP_CRON_EXP",
    ] {
        assert!(!help.contains(hidden), "{hidden} listed: {help}");
    }
    let flags = help.matches("\n  --").count() + help.matches("\n      --").count();
    assert!(flags <= 6, "too many flags for hc-probe: {help}");

    let output = std::process::Command::new(exe)
        .env_clear()
        .env("PCAP_PORTS", "not-a-port")
        .env("PCAP_HC_PORT", "http")
        .output()
        .expect("hc-probe runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["variable"], "PCAP_HC_PORT");
}
