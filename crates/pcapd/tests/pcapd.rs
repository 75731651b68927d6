//! The real `pcapd` binary: files translated with `--read` (pcap, pcapng, gzip) compared with
//! tshark's and tcpdump's counts, and live capture in network namespaces this test creates
//! (ping, HTTP) compared with a reference `tcpdump -w` in the same namespace; filters,
//! rotation by timer, SIGTERM, readiness, ordered output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{ChildGuard, TestNet};

use common::live::{
    is_packet, parse, pcapd_command, ready_line, reference_tcpdump, stop, tshark_count, Running,
};
use testbed::synth;

fn generate(dir: &Path, name: &str, packets: u64) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    synth::write_pcap(&mut file, packets, 7).unwrap();
    std::io::Write::flush(&mut file).unwrap();
    path
}

fn tool_lines(program: &str, args: &[&str]) -> usize {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {args:?}");
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

fn num(v: &Value) -> u64 {
    let n = &v["pcap"]["num"];
    n.as_u64()
        .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("pcap.num in {v}"))
}

/// Checks the envelope every packet line must have (docs/json.md).
fn assert_envelope(v: &Value) {
    for key in ["pcap", "timestamp", "severity", "message", "iface"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    for key in ["id", "num", "date"] {
        assert!(v["pcap"].get(key).is_some(), "missing pcap.{key}: {v}");
    }
}

fn read(file: &Path, extra: &[&str]) -> Output {
    pcapd_command(None)
        .arg("--read")
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn packet_lines(out: &Output) -> Vec<Value> {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "no cut last line");
    text.lines().map(parse).collect()
}

#[test]
fn read_gives_exactly_one_json_line_per_packet_like_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "mixed.pcap", 20_000);
    let out = read(&file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = packet_lines(&out);
    assert!(
        lines.iter().all(is_packet),
        "stdout holds packet lines only"
    );
    assert_eq!(lines.len(), tshark_count(&file));
    assert_eq!(lines.len(), 20_000);
    let mut nums: Vec<u64> = lines.iter().map(num).collect();
    lines.iter().for_each(assert_envelope);
    nums.sort_unstable();
    assert_eq!(nums, (0..20_000).collect::<Vec<_>>(), "each packet once");
    // The stats line went to stderr and accounts for every packet.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stats = stderr
        .lines()
        .map(parse)
        .find(|v| v["message"] == "pcapd stats" && v["final"] == true)
        .expect("final stats line");
    assert_eq!(stats["received"], 20_000);
    assert_eq!(stats["written"]["stdout"], 20_000);
    assert_eq!(stats["queue_dropped"], 0);
}

#[test]
fn read_accepts_pcapng_and_gzip_by_magic() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "plain.pcap", 3_000);
    let ng = dir.path().join("capture.pcapng");
    let status = Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(&file)
        .arg(&ng)
        .status()
        .unwrap();
    assert!(status.success());
    // A gzip file with a misleading name: detection is by content.
    let gz = dir.path().join("compressed.pcapng");
    let compressed = Command::new("gzip").arg("-c").arg(&ng).output().unwrap();
    std::fs::write(&gz, compressed.stdout).unwrap();
    for input in [&ng, &gz] {
        let out = read(input, &[]);
        assert!(
            out.status.success(),
            "{input:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = packet_lines(&out);
        assert_eq!(lines.len(), tshark_count(input), "{input:?}");
        assert_eq!(lines.len(), 3_000, "{input:?}");
    }
    // A truncated .gz is an error, not a silent short read.
    let bytes = std::fs::read(&gz).unwrap();
    let cut = dir.path().join("cut.pcap.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = read(&cut, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("gzip"));
}

#[test]
fn read_filter_restricts_like_tcpdump() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "mixed.pcap", 5_000);
    for filter in ["icmp or icmp6", "udp port 53", "arp"] {
        let out = read(&file, &["--filter", filter]);
        assert!(out.status.success());
        let expected = tool_lines("tcpdump", &["-nn", "-r", file.to_str().unwrap(), filter]);
        assert!(expected > 0);
        assert_eq!(packet_lines(&out).len(), expected, "{filter}");
    }
}

#[test]
fn a_filter_libpcap_rejects_exits_2_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "few.pcap", 10);
    let out = read(&file, &["--filter", "tcp port eighty"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tcp port eighty"),
        "names the filter: {stderr}"
    );
    assert!(
        stderr.contains("syntax error") || stderr.contains("unknown"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // Same for a live capture: before any packet is read.
    let out = pcapd_command(None)
        .args(["--iface", "lo", "--json-log", "--filter", "host 999.1.1.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .map(parse)
        .find(|v| v["severity"] == "CRITICAL")
        .unwrap();
    assert!(
        line["message"].as_str().unwrap().contains("999.1.1.1"),
        "{line}"
    );
}

#[test]
fn ordered_mode_keeps_exact_capture_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "mixed.pcap", 20_000);
    let out = pcapd_command(None)
        .args(["--read", file.to_str().unwrap(), "--workers", "3"])
        .env("PCAP_ORDERED", "true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let nums: Vec<u64> = packet_lines(&out).iter().map(num).collect();
    assert_eq!(nums, (0..20_000).collect::<Vec<_>>());
}

fn final_stats(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|v| v["message"] == "pcapd stats" && v["final"] == true)
        .expect("a final stats line")
}

#[test]
fn live_capture_in_a_namespace_matches_a_reference_tcpdump() {
    let net = match TestNet::new("pcapd-live") {
        Ok(net) => net,
        Err(e) => panic!("network namespaces are required: {e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("ready");
    // IPv4 only: the veth's own IPv6 chatter (MLD, router solicitations) is not ours.
    let filter = "ip";
    let mut command = pcapd_command(Some(net.app()));
    command
        .args([
            "--iface",
            "eth0",
            "--json-log",
            "--filter",
            filter,
            "--stats-secs",
            "1",
        ])
        .arg("--ready-dir")
        .arg(&run_dir);
    let pcapd = Running::start(command);
    pcapd.wait_for_line("readiness", ready_line);
    assert!(sidecar_core::readiness::check(&run_dir).is_ready());
    let reference = dir.path().join("reference.pcap");
    let tcpdump = reference_tcpdump(net.app(), &reference, filter);

    let mut server = ChildGuard::spawn(
        net.peer()
            .command("python3")
            .args(["-m", "http.server", "8080", "--bind", "198.51.100.2"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    net.app()
        .run(
            "ping",
            ["-c", "10", "-i", "0.05", "-W", "1", "198.51.100.2"],
        )
        .unwrap();
    testbed::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        net.app()
            .run(
                "curl",
                ["-sf", "-o", "/dev/null", "http://198.51.100.2:8080/"],
            )
            .is_ok()
    })
    .unwrap();
    for _ in 0..3 {
        net.app()
            .run(
                "curl",
                ["-sf", "-o", "/dev/null", "http://198.51.100.2:8080/"],
            )
            .unwrap();
    }
    server.kill().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Stop tcpdump first so it cannot see more than pcapd did.
    stop(tcpdump);
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    assert!(
        !sidecar_core::readiness::check(&run_dir).is_ready(),
        "withdrawn at exit"
    );
    let packets: Vec<&Value> = lines.iter().filter(|v| is_packet(v)).collect();
    packets.iter().for_each(|v| assert_envelope(v));
    let expected = tshark_count(&reference);
    let stats = final_stats(&lines);
    let dropped =
        stats["kernel_dropped"].as_u64().unwrap() + stats["queue_dropped"].as_u64().unwrap();
    assert!(
        expected >= 20 + 3 * 6,
        "reference saw the traffic: {expected}"
    );
    // pcapd started first and stopped last: it saw at least what tcpdump saw, minus drops.
    assert!(
        packets.len() + dropped as usize >= expected,
        "pcapd {} (+{dropped} dropped) vs tcpdump {expected}",
        packets.len()
    );
    // … and nothing else happened on the link, so not more either (the same IPv4 traffic).
    assert_eq!(packets.len(), expected, "same packets as the reference");
    assert_eq!(stats["received"].as_u64().unwrap(), packets.len() as u64);
    assert!(
        lines
            .iter()
            .any(|v| v["message"] == "pcapd stats" && v["final"] == false),
        "periodic stats"
    );
}

#[test]
fn live_filter_keeps_only_icmp() {
    let net = TestNet::new("pcapd-icmp").unwrap();
    let mut command = pcapd_command(Some(net.app()));
    command.args(["--iface", "eth0", "--json-log", "--filter", "icmp"]);
    let pcapd = Running::start(command);
    pcapd.wait_for_line("readiness", ready_line);
    net.app()
        .run("ping", ["-c", "5", "-i", "0.05", "-W", "1", "198.51.100.2"])
        .unwrap();
    // TCP traffic that must not show up: a refused connection.
    let _ = net
        .app()
        .run("curl", ["-s", "--max-time", "2", "http://198.51.100.2:9/"]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let packets: Vec<&Value> = lines.iter().filter(|v| is_packet(v)).collect();
    assert_eq!(packets.len(), 10, "5 requests and 5 replies");
}

#[test]
fn files_rotate_on_a_timer_and_the_last_one_is_closed_at_sigterm() {
    let net = TestNet::new("pcapd-rotate").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("capture");
    let mut command = pcapd_command(Some(net.app()));
    command
        .args([
            "--iface",
            "eth0",
            "--json",
            "--rotate-secs",
            "1",
            "--filter",
            "icmp",
        ])
        .arg("--output-dir")
        .arg(&out_dir);
    let pcapd = Running::start(command);
    pcapd.wait_for_line("readiness", ready_line);
    let pid = pcapd.pid();
    let mut ping = ChildGuard::spawn(
        net.app()
            .command("ping")
            .args(["-i", "0.1", "198.51.100.2"])
            .stdout(Stdio::null()),
    )
    .unwrap();
    let started = Instant::now();
    // While running: closed files exist, and pcapd holds at most the newest one open.
    testbed::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        json_files(&out_dir).len() >= 3
    })
    .unwrap();
    let open = open_files(pid);
    let files = json_files(&out_dir);
    let closed: Vec<&PathBuf> = files.iter().filter(|f| !open.contains(f)).collect();
    assert!(closed.len() >= 2, "rotated files are closed: open {open:?}");
    assert!(open.len() <= 1, "one file open at a time: {open:?}");
    ping.kill().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let stats = final_stats(&lines);
    let mut total = 0;
    for file in json_files(&out_dir) {
        let name = file.file_name().unwrap().to_str().unwrap();
        let parsed = sidecar_core::naming::CaptureFileName::parse(name).expect(name);
        assert_eq!(
            (parsed.iface.as_str(), parsed.ext.as_str()),
            ("eth0", "json")
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with('\n'), "{name} ends with a complete line");
        for line in text.lines() {
            assert!(is_packet(&parse(line)), "{name}");
            total += 1;
        }
    }
    assert!(total > 20);
    assert_eq!(
        stats["written"]["files"].as_u64().unwrap(),
        total,
        "every written line is in a file"
    );
    assert_eq!(stats["received"].as_u64().unwrap(), total);
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// Stand-in translator for in-process runs: one line with the packet number and length.
struct StandInTranslator;

/// Stand-in translators for every worker.
fn stand_in(_source: &pcapd::SourceInfo) -> impl pipeline::Factory {
    |_worker| StandInTranslator
}

impl pipeline::Translate for StandInTranslator {
    fn translate(
        &mut self,
        packet: &wire::CapturedPacket<'_>,
        out: &mut Vec<u8>,
    ) -> pipeline::Translation {
        use std::io::Write;
        writeln!(
            out,
            "{{\"pcap\":{{\"num\":{}}},\"len\":{}}}",
            packet.num,
            packet.data.len()
        )
        .unwrap();
        pipeline::Translation::Ok
    }
}

#[test]
fn run_is_a_library_call_that_reads_a_file_into_one_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "mixed.pcap", 4_000);
    let out = dir.path().join("out");
    let mut settings = pcapd::Settings::read(&file);
    settings.stdout = false;
    settings.label = Some("file0".into());
    settings.files = Some(pcapd::settings::FileSettings {
        dir: out.clone(),
        rotate: None,
    });
    let shutdown = sidecar_core::shutdown::Shutdown::new();
    let summary = pcapd::run_with(&settings, &shutdown, stand_in).unwrap();
    assert!(summary.complete && summary.capture_error.is_none());
    assert_eq!(summary.read, 4_000);
    assert_eq!(summary.pipeline.written("files"), 4_000);
    assert_eq!(summary.files.len(), 1);
    assert!(summary.files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("file0_part_"));
    let text = std::fs::read_to_string(&summary.files[0]).unwrap();
    assert_eq!(text.lines().map(parse).filter(is_packet).count(), 4_000);
}

#[test]
fn run_stops_a_live_capture_on_shutdown_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = pcapd::Settings::live("lo");
    settings.stdout = false;
    settings.files = Some(pcapd::settings::FileSettings {
        dir: dir.path().into(),
        rotate: None,
    });
    let shutdown = sidecar_core::shutdown::Shutdown::new();
    let trigger = shutdown.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        trigger.trigger();
    });
    let started = Instant::now();
    let summary = pcapd::run_with(&settings, &shutdown, stand_in).unwrap();
    stopper.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    assert!(summary.complete && summary.capture_error.is_none());
    assert!(
        summary.kernel.is_some(),
        "kernel counters of a live capture"
    );
    assert_eq!(summary.pipeline.received, summary.read);
}

#[test]
fn live_capture_on_any_uses_the_linux_cooked_header() {
    let net = TestNet::new("pcapd-any").unwrap();
    let mut command = pcapd_command(Some(net.app()));
    command.args(["--iface", "any", "--json-log", "--filter", "icmp"]);
    let pcapd = Running::start(command);
    let ready = pcapd.wait_for_line("readiness", ready_line);
    // LINKTYPE_LINUX_SLL (113) or LINUX_SLL2 (276).
    assert!(
        matches!(ready["linktype"].as_i64(), Some(113 | 276)),
        "{ready}"
    );
    net.app()
        .run("ping", ["-c", "4", "-i", "0.05", "-W", "1", "198.51.100.2"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let packets: Vec<&Value> = lines.iter().filter(|v| is_packet(v)).collect();
    assert_eq!(packets.len(), 8, "4 requests and 4 replies, on eth0 only");
    for packet in packets {
        assert_envelope(packet);
        assert!(
            packet.get("ICMP").is_some(),
            "decoded through the cooked header: {packet}"
        );
    }
}

#[test]
fn live_capture_without_an_output_is_a_configuration_error() {
    let out = pcapd_command(None)
        .args(["--iface", "lo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PCAP_JSON_LOG") && stdout.contains("PCAP_JSON"),
        "{stdout}"
    );
    let out = pcapd_command(None)
        .args(["--iface", "lo", "--json-log", "--workers", "zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PCAP_WORKERS"));
}
