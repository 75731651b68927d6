//! `PCAP_PACKET_COUNT`, like `tcpdump -c`: `pcapd --read` translates only the first N
//! packets of a file, and a live pcapd (libpcap path, and ring-less under the seccomp filter
//! reproducing gVisor's limits) stops by itself after N packets of real traffic, exit 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use testbed::gvisor::{restrict, Limits};
use testbed::TestNet;

mod common;
use common::live::{is_packet, parse, ready_line, Running};

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");

#[test]
fn read_stops_after_the_packet_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.pcap");
    let mut out = std::fs::File::create(&file).unwrap();
    testbed::synth::write_pcap(&mut out, 100, 7).unwrap();
    drop(out);
    for (count, expected) in [("7", 7), ("0", 100), ("1000", 100)] {
        let output = Command::new(BIN)
            .arg("--read")
            .arg(&file)
            .env_clear()
            .env("GCS_MOUNT", dir.path().join("mount"))
            .env("PCAP_RUN_DIR", dir.path().join("run"))
            .env("PCAP_PACKET_COUNT", count)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let lines = String::from_utf8(output.stdout).unwrap();
        let packets = lines.lines().map(parse).filter(is_packet).count();
        assert_eq!(packets, expected, "PCAP_PACKET_COUNT={count}");
    }
}

fn live_stops_after_the_packet_count(ring_less: bool) {
    let net = TestNet::new(if ring_less { "pcount-rl" } else { "pcount" }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut command = net.app().command(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GCS_MOUNT", dir.path().join("mount"))
        .env("PCAP_RUN_DIR", dir.path().join("run"))
        .env("PCAP_IFACE", "eth0")
        .env("PCAP_JSON_LOG", "true")
        .env("PCAP_FILTER", "icmp")
        .env("PCAP_PACKET_COUNT", "6")
        .stdin(Stdio::null());
    if ring_less {
        restrict(&mut command, Limits::Gvisor).unwrap();
    }
    let pcapd = Running::start(command);
    pcapd.wait_for_line("capture ready", ready_line);
    // 10 echo requests and 10 replies; pcapd keeps the first 6 and exits.
    net.peer().ping("198.51.100.1", 10).unwrap();
    let (code, lines) = pcapd.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| is_packet(l)).count(),
        6,
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("6 packets captured (PCAP_PACKET_COUNT)"))),
        "{lines:?}"
    );
}

#[test]
fn live_capture_stops_after_the_packet_count_on_the_libpcap_path() {
    live_stops_after_the_packet_count(false);
}

#[test]
fn live_capture_stops_after_the_packet_count_on_the_ring_less_path() {
    live_stops_after_the_packet_count(true);
}
