//! What a live `pcapd` costs in memory: the libpcap packet ring it maps is the configured
//! kernel buffer, not twice it. At the default snapshot length (65,536) libpcap would give
//! every packet a 128 KiB block; pcapd caps its own snaplen so frames fit 64 KiB blocks
//! (`settings::RING_SNAPLEN_CAP`). The `.pcap` files (tcpdump) keep the configured length.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use testbed::TestNet;

mod common;
use common::live::{ready_line, Running};

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");

/// KiB resident in `pid`'s mappings of packet sockets (the capture ring).
fn ring_kib(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_socket = false;
    let mut total = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_socket = line
                .split_whitespace()
                .nth(5)
                .is_some_and(|p| p.starts_with("socket:"));
        } else if in_socket {
            if let Some(kib) = line.strip_prefix("Rss:") {
                total += kib
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    total
}

fn ring_of_live_pcapd(snaplen: &str, buffer_mib: &str) -> u64 {
    let net = TestNet::new("pcapd-mem").unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let mut command = net.app().command(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PCAP_RUN_DIR", run_dir.path())
        .env("GCS_MOUNT", run_dir.path().join("mount"))
        .env("PCAP_SNAPSHOT_LENGTH", snaplen)
        .args(["--iface", "eth0", "--json-log", "--buffer-mib", buffer_mib]);
    let pcapd = Running::start(command);
    pcapd.wait_for_line("capture ready", ready_line);
    // libpcap maps the whole ring when the handle activates; give it a moment anyway.
    std::thread::sleep(Duration::from_millis(200));
    let kib = ring_kib(pcapd.pid());
    let (code, _) = pcapd.terminate();
    assert_eq!(code, Some(0));
    kib
}

#[test]
fn the_capture_ring_is_the_configured_buffer_not_twice_it() {
    for (snaplen, buffer_mib) in [("65536", 4u64), ("0", 4), ("65536", 8)] {
        let kib = ring_of_live_pcapd(snaplen, &buffer_mib.to_string());
        let buffer_kib = buffer_mib * 1024;
        assert!(
            kib >= buffer_kib / 2 && kib <= buffer_kib + buffer_kib / 16,
            "snaplen {snaplen}, buffer {buffer_mib} MiB: the ring maps {kib} KiB"
        );
    }
}
