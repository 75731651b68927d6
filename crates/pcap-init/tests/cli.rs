//! `pcap-init --version`, `--help` and the first log line, run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sidecar_core::config::Daemon;

#[test]
fn version_help_and_first_log_line() {
    testbed::daemon_cli::check(Path::new(env!("CARGO_BIN_EXE_pcap-init")), Daemon::PcapInit);
}
