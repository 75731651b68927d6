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

/// Runs `pcapd --read` on a small generated capture with `env` and `args` added; the set of
/// `pcap.id` values of its packet lines.
fn run_ids(env: &[(&str, &str)], args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("few.pcap");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    testbed::synth::write_pcap(&mut out, 5, 7).unwrap();
    std::io::Write::flush(&mut out).unwrap();
    drop(out);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pcapd"))
        .env_clear()
        .envs(env.iter().copied())
        .arg("--read")
        .arg(&file)
        .args(args)
        .output()
        .expect("pcapd runs");
    assert!(output.status.success(), "{output:?}");
    let mut ids: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["pcap"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 5);
    ids.dedup();
    ids
}

/// An own flag's variable is read when the flag is not given, the flag wins over it, and a
/// blank variable counts as unset (a new random id).
#[test]
fn own_flag_wins_over_its_variable() {
    assert_eq!(run_ids(&[("PCAP_RUN_ID", "from-env")], &[]), ["from-env"]);
    assert_eq!(
        run_ids(&[("PCAP_RUN_ID", "from-env")], &["--run-id", "from-flag"]),
        ["from-flag"]
    );
    let random = run_ids(&[("PCAP_RUN_ID", "  ")], &[]);
    assert!(
        random.len() == 1 && random[0].starts_with("pcapd/"),
        "{random:?}"
    );
}
