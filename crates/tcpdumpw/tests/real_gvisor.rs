//! tcpdumpw (and the pcapd it starts) inside real gVisor: Debian's `runsc`, the sandbox Cloud
//! Run's first generation runs containers in, started with `runsc --net-raw --network=none
//! do` (packet sockets allowed, as on Cloud Run; only loopback). The other ring-less tests
//! reproduce gVisor's limits with seccomp; this one asks gVisor itself. Inside the sandbox
//! (`resources/gvisor_loopback.sh`) tcpdumpw captures loopback with the filter `udp port
//! 5000` while 10 datagrams go to port 5000 and 10 to port 5001, then gets SIGTERM. The
//! sandbox writes into this test's temporary directory (`-force-overlay=false`).
//!
//! Where `runsc` cannot start a sandbox here (no ptrace or KVM for it), the test prints
//! `SKIPPED` with the reason; a missing `runsc` is a failure (`scripts/install-deps`
//! installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn runsc(args: &[&str]) -> Output {
    Command::new("runsc")
        .args(["--net-raw", "--network=none", "do", "-quiet"])
        .args(args)
        .output()
        .expect("runsc is installed by scripts/install-deps")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn tcpdumpw_in_real_gvisor_takes_the_ring_less_path_and_captures_what_the_filter_keeps() {
    let probe = runsc(&["true"]);
    if !probe.status.success() {
        eprintln!(
            "SKIPPED: runsc cannot start a sandbox here: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_tcpdumpw")).parent().unwrap();
    assert!(
        bin.join("pcapd").is_file(),
        "pcapd is missing next to tcpdumpw: run `cargo build -p pcapd` first"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/gvisor_loopback.sh");
    let dir = tempfile::tempdir().unwrap();
    let out = runsc(&[
        "-force-overlay=false",
        script.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        bin.to_str().unwrap(),
    ]);
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    assert!(out.status.success(), "{out:?}\n{log}");
    assert!(log.ends_with("tcpdumpw exit 0\n"), "{log}");
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    // tcpdumpw asked the kernel, gVisor refused the ring, and the log says so.
    let path = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("capture path"))
                && l["logging.googleapis.com/labels"]["module"] == "tcpdumpw"
        })
        .unwrap_or_else(|| panic!("no capture path line:\n{log}"));
    assert_eq!(path["path"], "ring-less", "{path}");
    assert_eq!(path["forced"], false, "{path}");
    assert!(
        path["probe_error"]
            .as_str()
            .is_some_and(|e| e.contains("ENOPROTOOPT")),
        "{path}"
    );
    assert!(
        path["gvisor_hint"]
            .as_str()
            .is_some_and(|h| h.contains("gVisor")),
        "{path}"
    );
    assert!(
        !log.contains("tcpdump["),
        "no tcpdump runs on this path:\n{log}"
    );

    // The .pcap files pcapd wrote hold exactly the datagrams the filter keeps.
    let capture = dir.path().join("pcap-tmp");
    let pcaps = files(&capture, "pcap");
    assert!(!pcaps.is_empty(), "no .pcap file:\n{log}");
    let mut ports = Vec::new();
    for file in &pcaps {
        ports.extend(testbed::tshark::field_lines(file, &["udp.dstport"]).unwrap());
    }
    assert_eq!(ports, vec!["5000".to_string(); 10], "{pcaps:?}");

    // And the JSON has one line per packet.
    let json: usize = files(&capture, "json")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(json, 10, "{log}");
}
