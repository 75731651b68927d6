//! Helpers shared by pcap-init's integration tests.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;
use testbed::ChildGuard;

pub const BIN: &str = env!("CARGO_BIN_EXE_pcap-init");

/// The environment of a pcap-init under test in `dir`, and nothing else: `PATH`, the process
/// graph `dir/graph.toml`, the run directory `dir/run`, the bucket mount `dir/pcap`, a
/// metadata server at `metadata` (where nothing answers), service `svc` revision `svc-001`,
/// a 5 s shutdown.
pub fn clean_env<'c>(command: &'c mut Command, dir: &Path, metadata: &str) -> &'c mut Command {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PCAP_SUPERVISOR_FILE", dir.join("graph.toml"))
        .env("PCAP_RUN_DIR", dir.join("run"))
        .env("GCS_MOUNT", dir.join("pcap"))
        .env("GCE_METADATA_HOST", metadata)
        .env("K_SERVICE", "svc")
        .env("K_REVISION", "svc-001")
        .env("PCAP_SHUTDOWN_SECS", "5")
}

/// Fails the test unless the workspace's `pcap-fsnotify` binary is next to pcap-init.
pub fn assert_fsnotify_built() {
    let bin_dir = Path::new(BIN).parent().unwrap();
    assert!(
        bin_dir.join("pcap-fsnotify").exists(),
        "run `cargo build -p pcap-fsnotify` first"
    );
}

/// pcap-init in `dir` ([`clean_env`], metadata at a port nothing listens on) with `env` on
/// top, stdout piped; killed on drop, so a failing assertion leaves none behind.
pub fn start(dir: &Path, env: &[(&str, &str)]) -> ChildGuard {
    let closed_port = testbed::free_port().unwrap();
    ChildGuard::spawn(
        clean_env(
            &mut Command::new(BIN),
            dir,
            &format!("127.0.0.1:{closed_port}"),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped()),
    )
    .unwrap()
}

/// Every line of `stdout`, parsed, once it ends.
pub fn json_lines(stdout: ChildStdout) -> JoinHandle<Vec<Value>> {
    std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str::<Value>(&l).unwrap())
            .collect()
    })
}
