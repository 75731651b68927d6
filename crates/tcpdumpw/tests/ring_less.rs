//! The ring-less capture path (Cloud Run gen1 / gVisor, docs/capture-paths.md), tested without gVisor: the
//! capture runs under a seccomp filter (`testbed::gvisor`) that refuses, with `ENOPROTOOPT`
//! like gVisor, `setsockopt(SOL_PACKET, PACKET_RX_RING | PACKET_VERSION | PACKET_TX_RING)` and
//! `setsockopt(SOL_SOCKET, SO_ATTACH_FILTER)`, in a network namespace with real traffic.
//!
//! - tcpdump itself cannot capture under the filter (what gVisor does to libpcap ≥ 1.10);
//! - tcpdumpw under the filter detects it, logs the fallback and why, starts no tcpdump, and
//!   its pcapd writes `.pcap` files (read back with tshark) and JSON with the filter applied
//!   in user space; a normal tcpdumpw capturing the same traffic at the same time finds the
//!   same packets, on `eth0` and on `any` (Linux cooked v2 headers, like tcpdump's);
//! - `PCAP_COMPAT=true` forces the path on a normal kernel (rotation into several files);
//! - snap length 0 is refused on the path, naming `PCAP_SNAPSHOT_LENGTH`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Sidecar;
use serde_json::Value;
use sidecar_core::naming::CaptureFileName;
use testbed::gvisor::restrict_like_gvisor;
use testbed::{Netns, TestNet};

const APP: &str = "198.51.100.1";
const PEER: &str = "198.51.100.2";
/// Captured: the filter keeps UDP port 5000 only.
const KEPT_PORT: u16 = 5000;
/// Sent too, but excluded by the filter.
const EXCLUDED_PORT: u16 = 5001;
const FILTER_ENV: [(&str, &str); 2] = [("PCAP_L4_PROTOS", "udp"), ("PCAP_PORTS", "5000")];

/// tcpdumpw writing JSON too (`PCAP_JSON=true` under `env`).
fn start(ns: &Netns, env: &[(&str, &str)], gvisor: bool) -> Sidecar {
    let mut all = vec![("PCAP_JSON", "true")];
    all.extend_from_slice(env);
    Sidecar::start_with_path(ns, &all, gvisor)
}

/// What the tests read from a sidecar's outputs.
trait Outputs {
    fn pcap_counts(&self) -> BTreeMap<(String, String), usize>;
    fn json_packets(&self) -> Vec<Value>;
}

impl Outputs for Sidecar {
    /// (protocol, destination port) → packets, over every `.pcap` file (tshark).
    fn pcap_counts(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for file in self.files("pcap") {
            for (proto, port) in tshark_rows(&file) {
                *counts.entry((proto, port)).or_default() += 1;
            }
        }
        counts
    }

    /// The packet lines of every `.json` file.
    fn json_packets(&self) -> Vec<Value> {
        self.files("json")
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// (last protocol, UDP destination port) of each packet; tshark must read the file whole.
fn tshark_rows(file: &Path) -> Vec<(String, String)> {
    testbed::tshark::field_lines(file, &["frame.protocols", "udp.dstport"])
        .unwrap()
        .iter()
        .map(|line| {
            let mut fields = line.split('\t');
            let protocols = fields.next().unwrap_or("");
            let proto = if protocols.contains("udp") {
                "udp"
            } else if protocols.contains("icmp") {
                "icmp"
            } else {
                protocols
            };
            (proto.to_string(), fields.next().unwrap_or("").to_string())
        })
        .collect()
}

/// `tcpdump -r FILE`'s link type line (`link-type EN10MB (Ethernet)`).
fn tcpdump_link_type(file: &Path) -> String {
    let output = Command::new("tcpdump")
        .args(["-n", "-c", "1", "-r"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tcpdump -r {}: {output:?}",
        file.display()
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Datagrams sent over loopback inside the app namespace (seen on `any` only).
const LOOPBACK_DATAGRAMS: usize = 10;

/// Sends `count` UDP datagrams from the peer to each of the two ports (a receiver in the app
/// namespace keeps ICMP port-unreachable replies out of the comparison), 3 pings, and
/// [`LOOPBACK_DATAGRAMS`] to the kept port over loopback (which libpcap sees once on `any`,
/// not twice: the outgoing copy is skipped).
fn traffic(net: &TestNet, count: usize) {
    let receivers: Vec<UdpSocket> = net
        .app()
        .enter(|| {
            let mut receivers: Vec<UdpSocket> = [KEPT_PORT, EXCLUDED_PORT]
                .iter()
                .map(|port| UdpSocket::bind((APP, *port)).unwrap())
                .collect();
            let local = UdpSocket::bind(("127.0.0.1", KEPT_PORT)).unwrap();
            let sender = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
            for i in 0..LOOPBACK_DATAGRAMS {
                sender
                    .send_to(format!("local {i}").as_bytes(), ("127.0.0.1", KEPT_PORT))
                    .unwrap();
            }
            receivers.push(local);
            receivers
        })
        .unwrap();
    net.peer()
        .enter(|| {
            let socket = UdpSocket::bind((PEER, 0)).unwrap();
            for i in 0..count {
                for port in [KEPT_PORT, EXCLUDED_PORT] {
                    socket
                        .send_to(format!("datagram {i}").as_bytes(), (APP, port))
                        .unwrap();
                }
                if i % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
        .unwrap();
    net.peer().ping(APP, 3).unwrap();
    // Let the last packets reach both captures before they are stopped.
    std::thread::sleep(Duration::from_millis(300));
    drop(receivers);
}

fn port_count(counts: &BTreeMap<(String, String), usize>, port: u16) -> usize {
    counts
        .get(&("udp".to_string(), port.to_string()))
        .copied()
        .unwrap_or(0)
}

#[test]
fn tcpdump_cannot_capture_under_gvisor_limits() {
    let net = TestNet::new("gv-tcpdump").unwrap();
    let mut command = net.app().command("tcpdump");
    command
        .args([
            "-n",
            "-Z",
            "root",
            "-i",
            "eth0",
            "-c",
            "1",
            "-w",
            "/dev/null",
        ])
        .stdin(Stdio::null());
    restrict_like_gvisor(&mut command).unwrap();
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // libpcap ≥ 1.10 needs TPACKET rings: it gives up before capturing anything.
    assert!(!output.status.success(), "tcpdump captured: {stderr}");
    // tcpdump: can't activate TPACKET_V3 on packet socket: Protocol not available
    assert!(
        stderr.contains("TPACKET_V3") && stderr.contains("Protocol not available"),
        "{stderr}"
    );
    // Without the filter the same command works.
    let mut normal = net.app().command("timeout");
    normal
        .args([
            "1",
            "tcpdump",
            "-n",
            "-Z",
            "root",
            "-i",
            "eth0",
            "-w",
            "/dev/null",
        ])
        .stdin(Stdio::null());
    let output = normal.output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("listening on eth0"),
        "{output:?}"
    );
}

/// A normal tcpdumpw and one under gVisor's limits capture the same traffic at once.
fn compare_paths(tag: &str, iface: &str) {
    let net = TestNet::new(tag).unwrap();
    let mut env = FILTER_ENV.to_vec();
    env.push(("PCAP_IFACE", iface));
    let mut normal = start(net.app(), &env, false);
    let mut gvisor = start(net.app(), &env, true);
    normal.wait_ready();
    gvisor.wait_ready();
    traffic(&net, 200);
    let (a, b) = (normal.terminate(), gvisor.terminate());
    assert!(a.success(), "{a:?}\n{}", normal.log_text());
    assert!(b.success(), "{b:?}\n{}", gvisor.log_text());

    // The start log names the path and why, in tcpdumpw and in its pcapd.
    let path = gvisor.matching("capture path: ring-less");
    assert!(
        path.iter().any(|l| l["reason"]
            .as_str()
            .unwrap_or("")
            .contains("PACKET_VERSION, TPACKET_V3) refused with ENOPROTOOPT")),
        "{}",
        gvisor.log_text()
    );
    assert!(path.iter().any(|l| l["reason"]
        .as_str()
        .unwrap_or("")
        .contains("chosen by tcpdumpw")));
    assert!(!normal.matching("capture path: ring (").is_empty());
    // No tcpdump ran; pcapd's filter ran in user space because the kernel refused it.
    assert!(
        gvisor.matching("tcpdump[").is_empty(),
        "{}",
        gvisor.log_text()
    );
    assert!(!normal.matching("tcpdump[").is_empty());
    let ready = gvisor.matching("capture ready on");
    assert_eq!(ready.len(), 1, "{}", gvisor.log_text());
    assert_eq!(ready[0]["filter_mode"], "user-space");
    assert_eq!(ready[0]["write_pcap"], true);
    assert!(
        ready[0]["notes"]
            .to_string()
            .contains("filter in user space"),
        "{}",
        ready[0]
    );

    // .pcap files: same names as tcpdump's, readable, the link type of the interface.
    let files = gvisor.files("pcap");
    assert!(!files.is_empty(), "{}", gvisor.log_text());
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let parsed = CaptureFileName::parse(name).unwrap();
        assert_eq!(parsed.iface, if iface == "any" { "any" } else { "eth0" });
    }
    let link = tcpdump_link_type(&files[0]);
    let expected = if iface == "any" {
        "LINUX_SLL2"
    } else {
        "EN10MB"
    };
    assert!(link.contains(expected), "{link}");
    assert!(
        tcpdump_link_type(&normal.files("pcap")[0]).contains(expected),
        "both paths write the same link type"
    );

    // The filter applies, and both paths have the same packets.
    let ring = normal.pcap_counts();
    let ring_less = gvisor.pcap_counts();
    let kept = if iface == "any" {
        200 + LOOPBACK_DATAGRAMS
    } else {
        200
    };
    assert_eq!(port_count(&ring_less, KEPT_PORT), kept, "{ring_less:?}");
    assert_eq!(port_count(&ring_less, EXCLUDED_PORT), 0, "{ring_less:?}");
    assert_eq!(ring_less, ring, "ring-less vs ring (tcpdump)");

    // JSON: the same packets.
    let ring_json = normal.json_packets();
    let ring_less_json = gvisor.json_packets();
    assert_eq!(ring_less_json.len(), kept, "{}", gvisor.log_text());
    assert_eq!(ring_json.len(), ring_less_json.len());
    for line in &ring_less_json {
        assert_eq!(line["L4"]["dst"], u64::from(KEPT_PORT), "{line}");
    }
}

#[test]
fn gvisor_limits_fall_back_to_the_ring_less_path_on_eth() {
    compare_paths("gv-eth", "eth");
}

#[test]
fn gvisor_limits_fall_back_to_the_ring_less_path_on_any() {
    compare_paths("gv-any", "any");
}

#[test]
fn pcap_compat_forces_the_ring_less_path() {
    let net = TestNet::new("gv-forced").unwrap();
    let mut env = FILTER_ENV.to_vec();
    env.extend([("PCAP_COMPAT", "true"), ("PCAP_ROTATE_SECS", "1")]);
    let mut sidecar = start(net.app(), &env, false);
    sidecar.wait_ready();
    for _ in 0..3 {
        traffic(&net, 20);
        std::thread::sleep(Duration::from_millis(800));
    }
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}\n{}", sidecar.log_text());
    let path = sidecar.matching("capture path: ring-less (forced by PCAP_COMPAT=true)");
    assert!(!path.is_empty(), "{}", sidecar.log_text());
    assert_eq!(path[0]["forced"], true);
    // The filter runs in user space on this path, also where the kernel would take it.
    let ready = sidecar.matching("capture ready on");
    assert_eq!(ready[0]["filter_mode"], "user-space", "{}", ready[0]);
    // Rotation: several files, each named like tcpdump's, all packets in them.
    let files = sidecar.files("pcap");
    assert!(files.len() >= 2, "{files:?}");
    let counts = sidecar.pcap_counts();
    assert_eq!(port_count(&counts, KEPT_PORT), 60, "{counts:?}");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(sidecar.json_packets().len(), 60);
}

/// `.pcap` files only (no JSON output): pcapd still captures, for the files alone.
#[test]
fn pcap_files_without_json_on_the_ring_less_path() {
    let net = TestNet::new("gv-pcaponly").unwrap();
    let mut env = FILTER_ENV.to_vec();
    env.extend([("PCAP_COMPAT", "true"), ("PCAP_JSON", "false")]);
    let mut sidecar = start(net.app(), &env, false);
    sidecar.wait_ready();
    traffic(&net, 30);
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}\n{}", sidecar.log_text());
    let ready = sidecar.matching("capture ready on");
    assert_eq!(ready[0]["outputs"], serde_json::json!([]), "{}", ready[0]);
    assert_eq!(ready[0]["write_pcap"], true);
    assert_eq!(port_count(&sidecar.pcap_counts(), KEPT_PORT), 30);
    assert!(sidecar.files("json").is_empty());
}

#[test]
fn unlimited_snaplen_is_refused_on_the_ring_less_path() {
    let net = TestNet::new("gv-snaplen").unwrap();
    // Forced: refused by the configuration check.
    let env = [("PCAP_COMPAT", "true"), ("PCAP_SNAPSHOT_LENGTH", "0")];
    let mut forced = start(net.app(), &env, false);
    let status = forced.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{}", forced.log_text());
    assert!(
        forced.log_text().contains("PCAP_SNAPSHOT_LENGTH"),
        "{}",
        forced.log_text()
    );
    // Detected: refused at start, after the detection, naming the variable too.
    let env = [("PCAP_SNAPSHOT_LENGTH", "0")];
    let mut detected = start(net.app(), &env, true);
    let status = detected.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{}", detected.log_text());
    let log = detected.log_text();
    assert!(
        log.contains("PCAP_SNAPSHOT_LENGTH=0 is not supported on the ring-less capture path"),
        "{log}"
    );
    assert!(log.contains("capture path: ring-less"), "{log}");
}
