//! `pcap-fsnotify --version`, `--help` and the first log line, run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sidecar_core::config::Daemon;

#[test]
fn version_help_and_first_log_line() {
    testbed::daemon_cli::check(
        Path::new(env!("CARGO_BIN_EXE_pcap-fsnotify")),
        Daemon::PcapFsnotify,
    );
}

/// With the API upload, the start-up log says which credentials are used (here the
/// metadata server, Application Default Credentials' last step), and never a token.
#[test]
fn the_api_upload_names_its_credential_source_at_start() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let root = tempfile::tempdir().unwrap();
    let metadata = testbed::MetadataServer::start().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(root.path().join("pcap")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcap-fsnotify"))
        .env_clear()
        .env("HOME", &home)
        .env("GCS_MOUNT", root.path().join("pcap"))
        .env("PCAP_RUN_DIR", root.path().join("run"))
        .env("PCAP_GCS_BUCKET", "bkt")
        .env("PCAP_GCS_FUSE", "false")
        .env("GCE_METADATA_HOST", metadata.host())
        .args(["--bucket-path", "p"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut found = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.contains("Cloud Storage API credentials") {
            found = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = found.expect("a credentials line");
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    let message = line["message"].as_str().unwrap_or("");
    assert!(
        message.contains("metadata server") && message.contains(&metadata.host()),
        "{message}"
    );
    assert!(!line.to_string().contains("ya29"), "{line}");
}
