//! `pcapd --version`, `--help` and the first log line, run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sidecar_core::config::Daemon;

#[test]
fn version_help_and_first_log_line() {
    testbed::daemon_cli::check(Path::new(env!("CARGO_BIN_EXE_pcapd")), Daemon::Pcapd);
}

/// pcapd's own flags read their variables through clap: a bad `PCAP_WORKERS` in the
/// environment stops it, named, before anything is read.
#[test]
fn own_flag_variables_come_from_the_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pcapd"))
        .env_clear()
        .env("PCAP_WORKERS", "0")
        .args(["--read", "/nonexistent.pcap"])
        .output()
        .expect("pcapd runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("PCAP_WORKERS"), "{text}");
}
