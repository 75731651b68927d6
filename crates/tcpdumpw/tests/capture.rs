//! The real `tcpdumpw` capturing real traffic: each test builds two network namespaces (app
//! and peer, joined by `eth0`), runs the binary inside the app namespace with a clean
//! environment and a temporary capture directory, sends traffic between the namespaces only,
//! and reads the `.pcap` files back with `tshark`/`capinfos`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Sidecar;
use serde_json::Value;
use sidecar_core::naming::CaptureFileName;
use sidecar_core::readiness::{self, Readiness};
use testbed::{wait_until, Netns, TestNet};

const APP: &str = "198.51.100.1";
const PEER: &str = "198.51.100.2";
/// A second address of the peer, to tell address filters apart.
const PEER2: &str = "198.51.100.3";

/// The packets of the `.pcap` files, as tshark decodes them.
trait Packets {
    /// Every packet.
    fn packets(&self) -> Vec<Packet>;
    /// The packets of `iface`'s files.
    fn packets_of(&self, iface: &str) -> Vec<Packet>;
}

impl Packets for Sidecar {
    fn packets(&self) -> Vec<Packet> {
        self.files("pcap")
            .iter()
            .flat_map(|f| read_packets(f))
            .collect()
    }

    fn packets_of(&self, iface: &str) -> Vec<Packet> {
        let prefix = format!("{iface}_part_");
        self.files("pcap")
            .iter()
            .filter(|f| {
                f.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .flat_map(|f| read_packets(f))
            .collect()
    }
}

/// One packet as tshark decodes it.
#[derive(Debug, Clone)]
struct Packet {
    time: f64,
    protocols: String,
    src: String,
    dst: String,
    ports: Vec<u16>,
    syn: bool,
    icmp_type: Option<u8>,
}

impl Packet {
    fn echo_request_to(&self, dst: &str) -> bool {
        self.icmp_type == Some(8) && self.dst == dst
    }
}

/// How many ICMP echo requests to `dst` are in `packets`.
fn echo_requests_to(packets: &[Packet], dst: &str) -> usize {
    packets.iter().filter(|p| p.echo_request_to(dst)).count()
}

/// Reads a capture file with tshark; fails the test if tshark finds it damaged.
fn read_packets(file: &Path) -> Vec<Packet> {
    testbed::tshark::field_lines(
        file,
        &[
            "frame.time_epoch",
            "frame.protocols",
            "ip.src",
            "ip.dst",
            "tcp.srcport",
            "tcp.dstport",
            "udp.srcport",
            "udp.dstport",
            "tcp.flags.syn",
            "icmp.type",
        ],
    )
    .unwrap()
    .iter()
    .map(|line| {
        let f: Vec<&str> = line.split('\t').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        Packet {
            time: field(0).parse().unwrap(),
            protocols: field(1).to_string(),
            src: field(2).to_string(),
            dst: field(3).to_string(),
            ports: (4..8).filter_map(|i| field(i).parse().ok()).collect(),
            syn: matches!(field(8), "1" | "True"),
            icmp_type: field(9).split(',').next().and_then(|t| t.parse().ok()),
        }
    })
    .collect()
}

/// A TCP connection attempt (the closed port answers RST: a SYN and a RST on the wire).
fn tcp_attempt(ns: &Netns, to: &str, port: u16) {
    let _ = ns
        .command("timeout")
        .args(["2", "bash", "-c", &format!("exec 3<>/dev/tcp/{to}/{port}")])
        .stderr(Stdio::null())
        .status()
        .unwrap();
}

fn add_peer_address(net: &TestNet) {
    net.peer()
        .run("ip", ["addr", "add", &format!("{PEER2}/24"), "dev", "eth0"])
        .unwrap();
}

/// Runs tcpdumpw with `env`, waits for readiness, sends `traffic`, stops it with SIGTERM and
/// returns the packets of every file.
fn capture_with(tag: &str, env: &[(&str, &str)], traffic: impl Fn(&TestNet)) -> Vec<Packet> {
    let net = TestNet::new(tag).unwrap();
    add_peer_address(&net);
    let mut sidecar = Sidecar::start(net.app(), env, &[]);
    sidecar.wait_ready();
    traffic(&net);
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}\n{}", sidecar.log_text());
    sidecar.packets()
}

#[test]
fn pcap_ports_keeps_only_traffic_of_those_ports() {
    let packets = capture_with("ports", &[("PCAP_PORTS", "8080")], |net| {
        tcp_attempt(net.app(), PEER, 8080);
        tcp_attempt(net.app(), PEER, 9090);
        net.app().ping(PEER, 2).unwrap();
    });
    assert!(
        packets.iter().any(|p| p.syn && p.ports.contains(&8080)),
        "{packets:?}"
    );
    for packet in &packets {
        assert!(packet.ports.contains(&8080), "{packet:?}");
    }
}

#[test]
fn pcap_l4_protos_icmp_keeps_only_icmp() {
    let packets = capture_with("icmp", &[("PCAP_L4_PROTOS", "icmp")], |net| {
        net.app().ping(PEER, 3).unwrap();
        tcp_attempt(net.app(), PEER, 8080);
    });
    assert_eq!(echo_requests_to(&packets, PEER), 3, "{packets:?}");
    for packet in &packets {
        assert!(
            packet.protocols.contains("icmp") && !packet.protocols.contains("tcp"),
            "{packet:?}"
        );
    }
}

#[test]
fn pcap_ipv4_keeps_only_those_addresses() {
    let env = [("PCAP_IPV4", PEER2), ("PCAP_L4_PROTOS", "tcp,udp,icmp")];
    let packets = capture_with("ipv4", &env, |net| {
        net.app().ping(PEER, 2).unwrap();
        net.app().ping(PEER2, 2).unwrap();
    });
    assert_eq!(echo_requests_to(&packets, PEER2), 2, "{packets:?}");
    for packet in &packets {
        assert!(packet.src == PEER2 || packet.dst == PEER2, "{packet:?}");
    }
}

#[test]
fn pcap_tcp_flags_syn_keeps_only_syn_segments() {
    let packets = capture_with("syn", &[("PCAP_TCP_FLAGS", "syn")], |net| {
        for port in [8080, 8081, 8082] {
            tcp_attempt(net.app(), PEER, port);
        }
    });
    // Three SYNs out; the RST+ACK answers carry no SYN and must be left out.
    assert_eq!(packets.len(), 3, "{packets:?}");
    assert!(packets.iter().all(|p| p.syn && p.src == APP), "{packets:?}");
}

#[test]
fn rotation_produces_several_valid_files_and_loses_nothing() {
    let net = TestNet::new("rotate").unwrap();
    let env = [("PCAP_ROTATE_SECS", "1"), ("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &[]);
    sidecar.wait_ready();
    // 20 pings over about 4 seconds.
    net.app()
        .ping_every(PEER, 20, Duration::from_millis(200))
        .unwrap();
    assert!(sidecar.terminate().success());
    let files = sidecar.files("pcap");
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let parsed = CaptureFileName::parse(name).unwrap_or_else(|| panic!("bad name {name}"));
        assert_eq!(parsed.iface, "eth0");
        let capinfos = Command::new("capinfos").arg(file).output().unwrap();
        assert!(capinfos.status.success(), "{name}: {capinfos:?}");
    }
    let requests = echo_requests_to(&sidecar.packets(), PEER);
    assert_eq!(requests, 20, "every packet is in exactly one file");
}

#[test]
fn cron_runs_capture_only_inside_their_windows() {
    let net = TestNet::new("cron").unwrap();
    let env = [
        ("PCAP_USE_CRON", "true"),
        ("PCAP_CRON_EXP", "*/4 * * * * *"),
        ("PCAP_TIMEOUT_SECS", "2"),
        ("PCAP_L4_PROTOS", "icmp"),
    ];
    let mut sidecar = Sidecar::start(net.app(), &env, &[]);
    // Ready once the schedule is armed.
    sidecar.wait_ready();
    assert!(sidecar.find("capture schedule armed").is_some());
    // Pings every 100 ms for about 11 s: they span windows and the gaps between them.
    net.app()
        .ping_every(PEER, 110, Duration::from_millis(100))
        .unwrap();
    assert!(sidecar.terminate().success());

    let files = sidecar.files("pcap");
    assert!(files.len() >= 2, "{files:?}\n{}", sidecar.log_text());
    for file in &files {
        let name = CaptureFileName::parse(file.file_name().unwrap().to_str().unwrap()).unwrap();
        // A run starts on a multiple of 4 s (a fresh second at most later).
        assert!(
            name.started.timestamp() % 4 <= 1,
            "{name}\n{}",
            sidecar.log_text()
        );
    }
    let packets = sidecar.packets();
    let requests = echo_requests_to(&packets, PEER);
    assert!(requests >= 20, "{requests} requests");
    assert!(
        requests < 100,
        "gaps between runs capture nothing: {requests}"
    );
    for packet in &packets {
        let into_window = packet.time - (packet.time / 4.0).floor() * 4.0;
        assert!(
            into_window < 3.0,
            "packet {:.3} s into a window that lasts 2 s",
            into_window
        );
    }
    assert!(sidecar.find("capture run 1 complete").is_some());
    assert!(sidecar.find("capture run 2 started").is_some());
}

fn tcpdump_pids(parent: u32) -> Vec<u32> {
    let output = Command::new("pgrep")
        .args(["-P", &parent.to_string(), "-x", "tcpdump"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_killed_tcpdump_is_restarted_and_capture_continues_without_truncation() {
    let net = TestNet::new("kill").unwrap();
    add_peer_address(&net);
    // No rotation: one fixed name per tcpdump run, the case where reuse would truncate.
    let env = [("PCAP_ROTATE_SECS", "0"), ("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &[]);
    sidecar.wait_ready();
    net.app().ping(PEER, 3).unwrap();
    let pids = tcpdump_pids(sidecar.pid());
    assert_eq!(pids.len(), 1, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sidecar.wait_log("restarting", 1);
    sidecar.wait_log("listening on eth0", 2);
    let again = tcpdump_pids(sidecar.pid());
    assert!(again.len() == 1 && again != pids, "{again:?}");
    net.app().ping(PEER2, 3).unwrap();
    assert!(sidecar.terminate().success());

    let files = sidecar.files("pcap");
    assert!(files.len() >= 2, "{files:?}");
    let first = read_packets(&files[0]);
    assert_eq!(
        echo_requests_to(&first, PEER),
        3,
        "the first file survived the restart: {first:?}"
    );
    let later: Vec<Packet> = files[1..].iter().flat_map(|f| read_packets(f)).collect();
    assert_eq!(echo_requests_to(&later, PEER2), 3, "{later:?}");
    let exited = sidecar.lines().into_iter().find(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("tcpdump[eth0] exited"))
    });
    assert_eq!(exited.unwrap()["severity"], "WARNING");
}

#[test]
fn an_existing_file_name_is_never_reused() {
    let net = TestNet::new("reuse").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let capture_dir = dir.path().join("pcap-tmp");
    std::fs::create_dir_all(&capture_dir).unwrap();
    // Files named after this second and the next, as a previous tcpdumpw left them.
    let now = chrono::Utc::now();
    let mut planted = Vec::new();
    for ahead in 0..2 {
        let at = now + chrono::Duration::seconds(ahead);
        let name = CaptureFileName::new("eth0", chrono::SubsecRound::trunc_subsecs(at, 0), "pcap");
        let path = capture_dir.join(name.to_string());
        std::fs::write(&path, b"earlier capture").unwrap();
        planted.push(path);
    }
    let mut command = net.app().command(env!("CARGO_BIN_EXE_tcpdumpw"));
    let mut sidecar = Sidecar::spawn(&mut command, dir, &[("PCAP_L4_PROTOS", "icmp")], &[]);
    sidecar.wait_ready();
    net.app().ping(PEER, 2).unwrap();
    assert!(sidecar.terminate().success());
    for path in &planted {
        assert_eq!(std::fs::read(path).unwrap(), b"earlier capture", "{path:?}");
    }
    let files = sidecar.files("pcap");
    let new: Vec<&PathBuf> = files.iter().filter(|f| !planted.contains(f)).collect();
    assert_eq!(new.len(), 1, "{files:?}");
    assert_eq!(echo_requests_to(&read_packets(new[0]), PEER), 2);
}

#[test]
fn sigterm_leaves_a_complete_last_file_and_readiness_follows_capture() {
    let net = TestNet::new("sigterm").unwrap();
    let mut sidecar = Sidecar::start(net.app(), &[("PCAP_L4_PROTOS", "icmp")], &[]);
    sidecar.wait_ready();
    // Readiness came after tcpdump said it was listening.
    let listening = sidecar.find("listening on eth0").unwrap();
    let ready = sidecar.find(tcpdumpw::READY_MESSAGE).unwrap();
    assert!(
        listening < ready,
        "listening at line {listening}, ready at {ready}"
    );
    // The last packets right before the signal.
    net.app()
        .ping_every(PEER, 5, Duration::from_millis(10))
        .unwrap();
    let status = sidecar.terminate();
    assert_eq!(status.code(), Some(0), "{}", sidecar.log_text());
    assert_eq!(readiness::check(&sidecar.run_dir()), Readiness::NotReady);
    let files = sidecar.files("pcap");
    assert_eq!(files.len(), 1, "{files:?}");
    let packets = read_packets(&files[0]);
    assert_eq!(echo_requests_to(&packets, PEER), 5);
    assert_eq!(
        packets
            .iter()
            .filter(|p| p.icmp_type == Some(0) && p.src == PEER)
            .count(),
        5,
        "the replies too: {packets:?}"
    );
    // tcpdump was stopped by SIGTERM and ended cleanly.
    let stopped = stopped_cleanly(&sidecar, "tcpdump");
    let last = stopped["last_file"].as_str().unwrap();
    assert_eq!(files[0].file_name().unwrap().to_str().unwrap(), last);
}

/// The log line saying that `program` on eth0 was stopped at shutdown, which must say it
/// exited with code 0.
fn stopped_cleanly(sidecar: &Sidecar, program: &str) -> Value {
    let message = format!("{program}[eth0] stopped (shutdown)");
    let stopped = sidecar
        .lines()
        .into_iter()
        .find(|l| l["message"] == message.as_str())
        .unwrap_or_else(|| panic!("no {message:?}\n{}", sidecar.log_text()));
    assert_eq!(stopped["exit"], "exit code 0");
    stopped
}

fn interface_choice(sidecar: &Sidecar, name: &str) -> Value {
    let line = &sidecar.lines()[sidecar.find(tcpdumpw::INTERFACES_MESSAGE).unwrap()];
    line["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

#[test]
fn loopback_is_captured_only_when_asked_for() {
    let net = TestNet::new("loopback").unwrap();
    for (loopback, expected) in [("false", false), ("true", true)] {
        let mut sidecar = Sidecar::start(net.app(), &[("PCAP_LOOPBACK", loopback)], &[]);
        sidecar.wait_ready();
        let lo = interface_choice(&sidecar, "lo");
        assert_eq!(lo["selected"], expected, "{lo}");
        assert!(
            lo["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("PCAP_LOOPBACK={loopback}")),
            "{lo}"
        );
        assert_eq!(interface_choice(&sidecar, "eth0")["selected"], true);
        tcp_attempt(net.app(), "127.0.0.1", 9);
        assert!(sidecar.terminate().success());
        let lo_packets: Vec<Packet> = sidecar.packets_of("lo");
        if expected {
            assert!(
                lo_packets.iter().any(|p| p.syn && p.ports.contains(&9)),
                "{lo_packets:?}"
            );
        } else {
            assert!(lo_packets.is_empty(), "{lo_packets:?}");
        }
    }
}

#[test]
fn no_matching_interface_is_a_clear_error_in_bounded_time() {
    let net = TestNet::new("nosuch").unwrap();
    let started = Instant::now();
    let mut sidecar = Sidecar::start(
        net.app(),
        &[("PCAP_IFACE", "nosuch")],
        &["--iface-wait-secs=1"],
    );
    let status = sidecar.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "{}", sidecar.log_text());
    assert!(started.elapsed() < Duration::from_secs(15));
    let lines = sidecar.lines();
    let critical = lines.iter().find(|l| l["severity"] == "CRITICAL").unwrap();
    let message = critical["message"].as_str().unwrap();
    assert!(
        message.contains("PCAP_IFACE=nosuch") && message.contains("eth0"),
        "{message}"
    );
    assert!(sidecar.find(tcpdumpw::READY_MESSAGE).is_none());
    assert_eq!(readiness::check(&sidecar.run_dir()), Readiness::NotReady);
    assert!(sidecar.files("pcap").is_empty());
}

#[test]
fn a_capture_that_cannot_start_gives_up_and_exits_non_zero() {
    let net = TestNet::new("giveup").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let capture_dir = dir.path().join("pcap-tmp");
    std::fs::create_dir_all(&capture_dir).unwrap();
    // A read-only capture directory, in a mount namespace of its own (gone with the process).
    let mut command = net.app().command("unshare");
    command.args([
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs -o ro tmpfs \"$1\" && exec \"$2\"",
    ]);
    command
        .arg("sh")
        .arg(&capture_dir)
        .arg(env!("CARGO_BIN_EXE_tcpdumpw"));
    let started = Instant::now();
    let mut sidecar = Sidecar::spawn(&mut command, dir, &[], &[]);
    let status = sidecar.wait_exit(Duration::from_secs(40));
    assert_eq!(status.code(), Some(1), "{}", sidecar.log_text());
    assert!(started.elapsed() < Duration::from_secs(40));
    let failed = sidecar.find("tcpdump[eth0] failed for good").unwrap();
    let line = &sidecar.lines()[failed];
    assert!(
        line["last_output"]
            .to_string()
            .contains("Read-only file system"),
        "{line}"
    );
    let lines = sidecar.lines();
    let critical = lines.iter().find(|l| l["severity"] == "CRITICAL").unwrap();
    assert!(
        critical["message"]
            .as_str()
            .unwrap()
            .contains("capture failed on every interface"),
        "{critical}"
    );
    // Five attempts: the first start and four restarts.
    assert_eq!(sidecar.count("started tcpdump[eth0]"), 5);
    assert!(sidecar.find(tcpdumpw::READY_MESSAGE).is_none());
}

#[test]
fn interfaces_that_appear_later_are_captured() {
    let net = TestNet::new("later").unwrap();
    let env = [("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &["--rescan-secs=1"]);
    sidecar.wait_ready();
    testbed::run(Command::new("ip").args([
        "link",
        "add",
        "eth1",
        "netns",
        net.app().name(),
        "type",
        "veth",
        "peer",
        "name",
        "eth1",
        "netns",
        net.peer().name(),
    ]))
    .unwrap();
    for (ns, address) in [
        (net.app(), "198.51.101.1/24"),
        (net.peer(), "198.51.101.2/24"),
    ] {
        ns.run("ip", ["addr", "add", address, "dev", "eth1"])
            .unwrap();
        ns.run("ip", ["link", "set", "eth1", "up"]).unwrap();
    }
    sidecar.wait_log("interface eth1 appeared", 1);
    sidecar.wait_log("listening on eth1", 1);
    wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        net.app()
            .command("ping")
            .args(["-c", "1", "-W", "1", "198.51.101.2"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .unwrap();
    net.app().ping("198.51.101.2", 3).unwrap();
    assert!(sidecar.terminate().success());
    let eth1: Vec<Packet> = sidecar.packets_of("eth1");
    assert!(echo_requests_to(&eth1, "198.51.101.2") >= 3, "{eth1:?}");
}

/// `/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over `/etc/hosts`; removed on drop.
struct NetnsHosts(PathBuf);

impl NetnsHosts {
    fn new(ns: &Netns, text: &str) -> NetnsHosts {
        let dir = PathBuf::from("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = NetnsHosts(dir);
        hosts.write(text);
        hosts
    }

    /// Rewrites the file in place: the bind mount shows the same inode.
    fn write(&self, text: &str) {
        std::fs::write(self.0.join("hosts"), text).unwrap();
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pcap_hosts_are_resolved_again_and_the_filter_follows() {
    let net = TestNet::new("hosts").unwrap();
    add_peer_address(&net);
    let hosts = NetnsHosts::new(
        net.app(),
        &format!("127.0.0.1 localhost\n{PEER} peer.test\n"),
    );
    let env = [("PCAP_HOSTS", "peer.test"), ("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &["--hosts-refresh-secs=1"]);
    sidecar.wait_ready();
    net.app().ping(PEER, 3).unwrap();
    net.app().ping(PEER2, 3).unwrap();
    hosts.write(&format!("127.0.0.1 localhost\n{PEER2} peer.test\n"));
    sidecar.wait_log("capture filter changed", 1);
    sidecar.wait_log("listening on eth0", 2);
    net.app().ping(PEER, 3).unwrap();
    net.app().ping(PEER2, 3).unwrap();
    assert!(sidecar.terminate().success());

    let change = &sidecar.lines()[sidecar.find("capture filter changed").unwrap()];
    assert!(
        change["old_filter"].as_str().unwrap().contains(PEER),
        "{change}"
    );
    assert!(
        change["new_filter"].as_str().unwrap().contains(PEER2),
        "{change}"
    );
    let packets = sidecar.packets();
    // Before the change only PEER was captured, after it only PEER2.
    assert_eq!(echo_requests_to(&packets, PEER), 3);
    assert_eq!(echo_requests_to(&packets, PEER2), 3);
}

/// The pcapd binary of this workspace, next to tcpdumpw (`cargo build -p pcapd` builds it;
/// `cargo test --workspace` does too).
fn pcapd_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_tcpdumpw")).with_file_name("pcapd");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p pcapd` first",
        path.display()
    );
    path
}

#[test]
fn json_output_runs_pcapd_beside_tcpdump_with_the_same_filter() {
    let net = TestNet::new("json").unwrap();
    let pcapd = pcapd_binary();
    let env = [("PCAP_JSON", "true"), ("PCAP_L4_PROTOS", "icmp")];
    let pcapd_flag = format!("--pcapd={}", pcapd.display());
    let mut sidecar = Sidecar::start(net.app(), &env, &[&pcapd_flag]);
    sidecar.wait_ready();
    // Ready only after both children had their handles open.
    let ready = sidecar.find(tcpdumpw::READY_MESSAGE).unwrap();
    assert!(sidecar.find("listening on eth0").unwrap() < ready);
    assert!(sidecar.find("capture ready on eth0").unwrap() < ready);
    net.app().ping(PEER, 3).unwrap();
    tcp_attempt(net.app(), PEER, 8080);
    let status = sidecar.terminate();
    assert!(status.success(), "{}", sidecar.log_text());

    let pcap_requests = echo_requests_to(&sidecar.packets(), PEER);
    assert_eq!(pcap_requests, 3);
    let json: Vec<Value> = std::fs::read_dir(sidecar.capture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .flat_map(|p| {
            std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    // The same filter: ICMP only, the TCP attempt is in neither output.
    assert!(json.len() >= 6, "{json:?}");
    for entry in &json {
        assert!(entry.get("ICMP").is_some(), "{entry}");
        assert!(
            entry
                .get("L4")
                .is_none_or(|l4| !l4.to_string().contains("TCP")),
            "{entry}"
        );
    }
    stopped_cleanly(&sidecar, "pcapd");
}

#[test]
fn a_timeout_without_cron_is_a_one_shot_capture_and_the_process_stays_up() {
    let net = TestNet::new("oneshot").unwrap();
    let env = [("PCAP_TIMEOUT_SECS", "2"), ("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &[]);
    sidecar.wait_ready();
    let started = Instant::now();
    net.app().ping(PEER, 2).unwrap();
    sidecar.wait_log("one-shot capture complete", 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    // After the capture: no tcpdump, but tcpdumpw is alive and still ready (as the original
    // kept its health port open), and what it sends now is not captured.
    assert!(tcpdump_pids(sidecar.pid()).is_empty());
    net.app().ping(PEER, 3).unwrap();
    assert!(
        sidecar.child.try_wait().unwrap().is_none(),
        "tcpdumpw exited"
    );
    assert!(readiness::check(&sidecar.run_dir()).is_ready());
    assert!(sidecar.terminate().success());
    let requests = echo_requests_to(&sidecar.packets(), PEER);
    assert_eq!(requests, 2, "only the pings inside the capture window");
}

/// `run` called in-process reports failures as values, with the exit code main would use.
/// (Nothing is captured here: the prefix matches no interface of this host.)
#[test]
fn run_in_process_returns_errors_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let gcs_mount = dir.path().join("pcap").display().to_string();
    let run_dir = dir.path().join("run").display().to_string();
    let config = |extra: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = vec![
            ("PCAP_IFACE".into(), "nosuchprefix".into()),
            ("GCS_MOUNT".into(), gcs_mount.clone()),
            ("PCAP_RUN_DIR".into(), run_dir.clone()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        sidecar_core::config::Config::from_lookup(&|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    let shutdown = sidecar_core::shutdown::Shutdown::new();
    let options = tcpdumpw::RunOptions {
        iface_wait: Duration::from_millis(300),
        ..tcpdumpw::RunOptions::default()
    };
    let error = tcpdumpw::run_with(&config(&[]), &shutdown, options.clone()).unwrap_err();
    assert!(
        matches!(error, tcpdumpw::Error::NoInterface { ref prefix, .. } if prefix == "nosuchprefix"),
        "{error}"
    );
    assert_eq!(error.exit_code(), 1);
    let error = tcpdumpw::run_with(
        &config(&[("PCAP_FILTER", "tcp port 99999")]),
        &shutdown,
        options.clone(),
    )
    .unwrap_err();
    assert!(matches!(error, tcpdumpw::Error::Filter(_)), "{error}");
    assert_eq!(error.exit_code(), 2);
    // A shutdown requested before any interface shows up is a clean stop.
    shutdown.trigger();
    let summary = tcpdumpw::run_with(&config(&[]), &shutdown, options).unwrap();
    assert_eq!(summary.runs, 0);
    assert_eq!(readiness::check(Path::new(&run_dir)), Readiness::NotReady);
}

#[test]
fn a_file_left_open_by_a_quiet_interface_is_closed_after_its_period() {
    let net = TestNet::new("idle").unwrap();
    let env = [("PCAP_ROTATE_SECS", "2"), ("PCAP_L4_PROTOS", "icmp")];
    let mut sidecar = Sidecar::start(net.app(), &env, &[]);
    sidecar.wait_ready();
    net.app().ping(PEER, 3).unwrap();
    // Quiet from now on: tcpdump alone would never rotate (it rotates on a packet).
    sidecar.wait_log("closing the idle capture file", 1);
    sidecar.wait_log("listening on eth0", 2);
    wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        sidecar.files("pcap").len() >= 2
    })
    .unwrap();
    let files = sidecar.files("pcap");
    assert_eq!(files.len(), 2, "{files:?}");
    // Closed, hence complete: the packets can be exported before traffic resumes.
    let first = read_packets(&files[0]);
    assert_eq!(echo_requests_to(&first, PEER), 3);
    // The new, empty file is left open: an idle interface does not churn out empty files.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sidecar.count("closing the idle capture file"), 1);
    assert_eq!(sidecar.files("pcap").len(), 2);
    assert!(sidecar.terminate().success());
}

/// Regression test (failed before the fix: tcpdump's files and pcapd's JSON files were
/// 0644, the capture directory 0755).
#[test]
fn issue_14_capture_and_json_files_are_0600_in_a_0700_directory() {
    use std::os::unix::fs::PermissionsExt;
    let net = TestNet::new("perms").unwrap();
    let pcapd = pcapd_binary();
    let env = [
        ("PCAP_JSON", "true"),
        ("PCAP_L4_PROTOS", "icmp"),
        ("PCAP_ROTATE_SECS", "1"),
    ];
    let pcapd_flag = format!("--pcapd={}", pcapd.display());
    let mut sidecar = Sidecar::start(net.app(), &env, &[&pcapd_flag]);
    sidecar.wait_ready();
    net.app().ping(PEER, 3).unwrap();
    let status = sidecar.terminate();
    assert!(status.success(), "{}", sidecar.log_text());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let dir = sidecar.capture_dir();
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "json")));
    assert!(files
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "pcap")));
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

/// Found by the fault-injection suite (failed before the fix): `kill -9` of
/// tcpdumpw left its tcpdump and pcapd running, writing files that never closed (exported
/// half-written at shutdown, and the processes outlived the sidecar). They now get SIGTERM
/// when tcpdumpw dies, and close their files whole.
#[test]
fn issue_14_a_killed_tcpdumpw_leaves_no_capture_running() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let net = TestNet::new("orphans").unwrap();
    let pcapd = pcapd_binary();
    let env = [("PCAP_JSON", "true"), ("PCAP_L4_PROTOS", "icmp")];
    let pcapd_flag = format!("--pcapd={}", pcapd.display());
    let sidecar = Sidecar::start(net.app(), &env, &[&pcapd_flag]);
    sidecar.wait_ready();
    net.app().ping(PEER, 2).unwrap();
    let parent = sidecar.child.id();
    let children: Vec<u32> = Command::new("pgrep")
        .args(["-P", &parent.to_string()])
        .output()
        .unwrap()
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.trim().parse().ok())
        .collect();
    assert!(children.len() >= 2, "tcpdump and pcapd: {children:?}");
    kill(Pid::from_raw(parent as i32), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while children
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "still running after tcpdumpw died: {children:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // They stopped as asked: every pcap file is whole.
    for file in std::fs::read_dir(sidecar.capture_dir()).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            let capinfos = Command::new("capinfos").arg(&path).output().unwrap();
            assert!(
                capinfos.status.success(),
                "{}: {capinfos:?}",
                path.display()
            );
        }
    }
}
