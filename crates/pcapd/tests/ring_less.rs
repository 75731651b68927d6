//! pcapd on the ring-less capture path: run on its own, it detects gVisor's limits
//! (reproduced with the seccomp filter of `testbed::gvisor`), captures from an `AF_PACKET`
//! socket, filters in user space and writes `.pcap` files; the packets equal those of a
//! reference tcpdump (ring path) capturing the same traffic with the same filter, VLAN tags
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use testbed::gvisor::{restrict, Limits};
use testbed::{Netns, TestNet};

mod common;
use common::live::{
    is_packet, pcapd_command, reference_tcpdump, stop, tcpdump_on, tshark_count, Running,
};

const APP_V4: &str = "198.51.100.1";

fn pcapd(ns: &Netns, out: &Path, env: &[(&str, &str)], gvisor: bool) -> Command {
    pcapd_with(ns, out, env, gvisor.then_some(Limits::Gvisor))
}

fn pcapd_with(ns: &Netns, out: &Path, env: &[(&str, &str)], limits: Option<Limits>) -> Command {
    let mut command = pcapd_command(Some(ns));
    command
        .env("PCAP_IFACE", "eth0")
        .env("PCAP_JSON_LOG", "true")
        .envs(env.iter().copied())
        .args(["--write-pcap", "true", "--output-dir"])
        .arg(out)
        .stdin(Stdio::null());
    if let Some(limits) = limits {
        restrict(&mut command, limits).unwrap();
    }
    command
}

fn pcap_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

/// `tshark -T fields -e FIELDS` rows of a file (fields separated by tabs).
fn tshark_rows(file: &Path, fields: &[&str]) -> Vec<String> {
    testbed::tshark::field_lines(file, fields).unwrap()
}

fn message_contains(line: &Value, text: &str) -> bool {
    line["message"].as_str().is_some_and(|m| m.contains(text))
}

#[test]
fn pcapd_detects_gvisor_limits_and_captures_without_rings() {
    let net = TestNet::new("pcapd-gvisor").unwrap();
    let out = tempfile::tempdir().unwrap();
    let reference = out.path().join("reference.pcap");
    let tcpdump = reference_tcpdump(net.app(), &reference, "icmp");
    let running = Running::start(pcapd(
        net.app(),
        out.path(),
        &[("PCAP_FILTER", "icmp")],
        true,
    ));
    let ready = running.wait_for_line("ready", |v| message_contains(v, "capture ready"));
    assert_eq!(ready["filter_mode"], "user-space", "{ready}");
    assert_eq!(ready["capture_path"], "ring-less");
    net.peer().ping(APP_V4, 5).unwrap();
    // Excluded by the filter: UDP to a port that answers nothing (the unreachable reply is
    // ICMP and counted by both).
    let _ = net
        .peer()
        .command("bash")
        .args(["-c", &format!("echo x > /dev/udp/{APP_V4}/9")])
        .status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, lines) = running.terminate();
    stop(tcpdump);
    assert_eq!(code, Some(0), "{lines:?}");

    let path = lines
        .iter()
        .find(|l| message_contains(l, "capture path: ring-less"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(
        path["probe_error"], "ENOPROTOOPT (Protocol not available)",
        "{path}"
    );
    assert_eq!(path["forced"], false);

    let packets: Vec<&Value> = lines.iter().filter(|l| is_packet(l)).collect();
    let expected = tshark_count(&reference);
    assert_eq!(expected, 11, "5 requests, 5 replies, 1 port unreachable");
    assert_eq!(packets.len(), expected, "JSON lines vs reference tcpdump");
    let files = pcap_files(out.path())
        .into_iter()
        .filter(|f| f != &reference)
        .collect::<Vec<_>>();
    assert_eq!(files.len(), 1, "{files:?}");
    let fields = [
        "frame.len",
        "frame.cap_len",
        "ip.src",
        "ip.dst",
        "icmp.type",
    ];
    assert_eq!(
        tshark_rows(&files[0], &fields),
        tshark_rows(&reference, &fields),
        "the .pcap file has the reference's packets"
    );
}

/// Sends Ethernet frames from `ns`'s eth0 with a raw socket: `tagged` UDP datagrams in VLAN
/// 10 and `untagged` ones without a tag, broadcast.
fn send_frames(ns: &Netns, tagged: usize, untagged: usize) {
    let script = format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
def ip_udp(i):
    udp = struct.pack("!HHHH", 4000, 4001, 8 + 4, 0) + struct.pack("!I", i)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                     bytes([10, 99, 0, 2]), bytes([10, 99, 0, 1]))
    return ip + udp
head = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 2])
for i in range({tagged}):
    s.send(head + struct.pack("!HH", 0x8100, 10) + b"\x08\x00" + ip_udp(i))
for i in range({untagged}):
    s.send(head + b"\x08\x00" + ip_udp(100 + i))
"#
    );
    let out = ns
        .command("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The kernel strips VLAN tags on receive and reports them aside (`PACKET_AUXDATA`): the
/// ring-less path puts them back before filtering, as libpcap does, so a `vlan` filter
/// selects the same packets and the files hold the same bytes.
#[test]
fn vlan_tags_are_restored_and_filtered_like_libpcap() {
    let net = TestNet::new("pcapd-vlan").unwrap();
    let out = tempfile::tempdir().unwrap();
    let reference = out.path().join("reference.pcap");
    let filter = "vlan 10 and udp";
    let tcpdump = reference_tcpdump(net.app(), &reference, filter);
    let seccomp_dir = out.path().join("seccomp");
    let forced_dir = out.path().join("forced");
    std::fs::create_dir_all(&seccomp_dir).unwrap();
    std::fs::create_dir_all(&forced_dir).unwrap();
    let env = [("PCAP_FILTER", filter)];
    let under_seccomp = Running::start(pcapd(net.app(), &seccomp_dir, &env, true));
    let mut forced_env = env.to_vec();
    forced_env.push(("PCAP_COMPAT", "true"));
    let forced = Running::start(pcapd(net.app(), &forced_dir, &forced_env, false));
    // `any`: Linux cooked v2 headers, which carry no VLAN tag (neither libpcap's nor ours):
    // every UDP datagram, tagged or not, with the same headers as tcpdump's.
    let any_dir = out.path().join("any");
    std::fs::create_dir_all(&any_dir).unwrap();
    let any_reference = out.path().join("any-reference.pcap");
    let any_filter = "udp port 4001";
    let any_tcpdump = tcpdump_on(net.app(), "any", &any_reference, any_filter, &[]);
    let any_env = [("PCAP_FILTER", any_filter), ("PCAP_IFACE", "any")];
    let on_any = Running::start(pcapd(net.app(), &any_dir, &any_env, true));
    for running in [&under_seccomp, &forced, &on_any] {
        running.wait_for_line("ready", |v| message_contains(v, "capture ready"));
    }
    send_frames(net.peer(), 4, 3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (a, _) = under_seccomp.terminate();
    let (b, _) = forced.terminate();
    let (c, _) = on_any.terminate();
    stop(tcpdump);
    stop(any_tcpdump);
    assert_eq!((a, b, c), (Some(0), Some(0), Some(0)));
    let fields = [
        "frame.len",
        "vlan.id",
        "ip.src",
        "ip.dst",
        "udp.dstport",
        "ip.id",
    ];
    let expected = tshark_rows(&reference, &fields);
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert!(
        expected.iter().all(|row| row.contains("\t10\t")),
        "{expected:?}"
    );
    for dir in [&seccomp_dir, &forced_dir] {
        let files = pcap_files(dir);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(
            tshark_rows(&files[0], &fields),
            expected,
            "{}",
            dir.display()
        );
    }
    let any_fields = [
        "sll.pkttype",
        "sll.etype",
        "sll.ifindex",
        "sll.hatype",
        "sll.src.eth",
        "frame.len",
        "ip.id",
    ];
    let expected = tshark_rows(&any_reference, &any_fields);
    assert_eq!(expected.len(), 7, "{expected:?}");
    let files = pcap_files(&any_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(tshark_rows(&files[0], &any_fields), expected, "any");
}

/// A gVisor that also lacks `PACKET_AUXDATA`, `SO_TIMESTAMPNS` and `PACKET_STATISTICS`: the
/// original length still comes from `MSG_TRUNC` (here with packets cut to a 60-byte snap
/// length), timestamps are microseconds (`SO_TIMESTAMP`), drops are unknown — and the notes
/// of the ready line say all of it.
#[test]
fn fallbacks_when_more_socket_options_are_refused() {
    let net = TestNet::new("pcapd-strict").unwrap();
    let out = tempfile::tempdir().unwrap();
    let reference = out.path().join("reference.pcap");
    let tcpdump = reference_tcpdump(net.app(), &reference, "icmp");
    let dir = out.path().join("strict");
    std::fs::create_dir_all(&dir).unwrap();
    let env = [
        ("PCAP_FILTER", "icmp"),
        ("PCAP_SNAPSHOT_LENGTH", "60"),
        ("PCAP_STATS_SECS", "1"),
    ];
    let running = Running::start(pcapd_with(net.app(), &dir, &env, Some(Limits::Strict)));
    let ready = running.wait_for_line("ready", |v| message_contains(v, "capture ready"));
    let notes = ready["notes"].to_string();
    for refused in [
        "PACKET_AUXDATA refused",
        "SO_TIMESTAMP)",
        "PACKET_STATISTICS refused",
    ] {
        assert!(notes.contains(refused), "{refused}: {notes}");
    }
    net.peer().ping(APP_V4, 3).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (code, lines) = running.terminate();
    stop(tcpdump);
    assert_eq!(code, Some(0), "{lines:?}");
    let stats = lines
        .iter()
        .rfind(|l| message_contains(l, "pcapd stats"))
        .unwrap();
    assert_eq!(stats["kernel_dropped"], Value::Null, "unknown: {stats}");
    let files = pcap_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    // 98-byte echo packets cut to 60: the original length survives.
    let fields = ["frame.len", "frame.cap_len", "ip.src", "icmp.type"];
    let rows = tshark_rows(&files[0], &fields);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r.starts_with("98\t60\t")), "{rows:?}");
    let expected: Vec<String> = tshark_rows(&reference, &["frame.len", "ip.src", "icmp.type"]);
    let got: Vec<String> = tshark_rows(&files[0], &["frame.len", "ip.src", "icmp.type"]);
    assert_eq!(got, expected);
    // Microsecond timestamps close to the reference's.
    let times = |file: &Path| -> Vec<f64> {
        tshark_rows(file, &["frame.time_epoch"])
            .iter()
            .map(|t| t.parse().unwrap())
            .collect()
    };
    for (a, b) in times(&files[0]).iter().zip(times(&reference)) {
        assert!((a - b).abs() < 0.01, "{a} vs {b}");
    }
}

/// A flood the filter rejects entirely never keeps the capture loop from seeing SIGTERM (each
/// read returns to it, packet or not).
#[test]
fn stops_promptly_under_a_flood_the_filter_rejects() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let net = TestNet::new("pcapd-flood").unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(pcapd(
        net.app(),
        out.path(),
        &[("PCAP_FILTER", "icmp")],
        true,
    ));
    running.wait_for_line("ready", |v| message_contains(v, "capture ready"));
    let flooding = Arc::new(AtomicBool::new(true));
    let socket = net
        .peer()
        .enter(|| std::net::UdpSocket::bind(("198.51.100.2", 0)).unwrap())
        .unwrap();
    let flood = {
        let flooding = Arc::clone(&flooding);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while flooding.load(Ordering::Relaxed) {
                let _ = socket.send_to(&[0u8; 32], (APP_V4, 9));
                sent += 1;
            }
            sent
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    let (code, lines) = running.terminate();
    let took = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let sent = flood.join().unwrap();
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "stopped after {took:?}"
    );
    assert!(sent > 1000, "a flood: {sent} datagrams");
    let udp: Vec<&Value> = lines
        .iter()
        .filter(|l| is_packet(l) && l["L4"]["dst"] == 9)
        .collect();
    assert!(udp.is_empty(), "the filter kept UDP: {}", udp.len());
}
