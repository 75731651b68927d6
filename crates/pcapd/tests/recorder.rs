//! The flight recorder (`PCAP_TRIGGER`) with real traffic in network namespaces: a Python
//! HTTP server in the app namespace (where pcapd captures), `curl` in the peer namespace.
//! Every scenario runs on both capture paths (libpcap, and ring-less under the seccomp filter
//! reproducing gVisor's limits). Checked: one 503 among 200s gives exactly one window file
//! that holds the 503's request and the packets of `before` seconds earlier (and its `.json`);
//! other trigger kinds write their own windows; all-200 traffic writes nothing and
//! logs no packet; the ring stays within its byte bound under a flood; the manual trigger
//! (loopback endpoint and SIGUSR2) works from the app's side and not from elsewhere; a slow
//! reader's zero windows fire one zero-window-burst window (libpcap path only); a storm
//! of 500s respects the cooldown and the hourly cap; SIGTERM closes a window in progress and,
//! with `PCAP_TRIGGER_ON_EXIT=true`, writes the ring.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::gvisor::{restrict, Limits};
use testbed::{ChildGuard, Netns, TestNet};

mod common;
use common::live::{dnsmasq, is_packet, listening, pcapd_command, Running};

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");
const APP_V4: &str = "198.51.100.1";
const PORT: u16 = 8080;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// An HTTP/1.1 server: `/fail` answers 503, `/boom` 500, `/slow` 200 after 1.5 s, `/reset`
/// part of a response and then a TCP reset, `/big` 200 with 8 MB, everything else 200.
const SERVER: &str = r#"
import http.server, socket, struct, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/reset"):
            # Part of a response, then a reset (SO_LINGER 0): a TCP RST after data.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        code = 503 if self.path.startswith("/fail") else 500 if self.path.startswith("/boom") else 200
        body = b"x" * (8 << 20 if self.path.startswith("/big") else 64)
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"#;

fn server(ns: &Netns) -> ChildGuard {
    let mut command = ns.command("python3");
    command
        .args(["-c", SERVER])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = ChildGuard::spawn(&mut command).unwrap();
    testbed::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        listening(ns, "t", PORT)
    })
    .unwrap();
    child
}

/// pcapd as the recorder on the app's eth0, writing into `out`; `PCAP_JSON_LOG=true` would
/// log every packet without the recorder.
fn recorder(net: &TestNet, out: &Path, env: &[(&str, &str)], ring_less: bool) -> Running {
    let run_dir = out.join("run");
    let mut command = pcapd_command(Some(net.app()));
    command
        .env("PCAP_RUN_DIR", &run_dir)
        .env("GCS_MOUNT", out.join("mount"))
        .env("PCAP_IFACE", "eth0")
        .env("PCAP_JSON_LOG", "true")
        .env("PCAP_STATS_SECS", "1")
        .envs(env.iter().copied())
        .arg("--output-dir")
        .arg(out.join("capture"))
        .stdin(Stdio::null());
    if ring_less {
        restrict(&mut command, Limits::Gvisor).unwrap();
    }
    let running = Running::start(command);
    running.wait_for_line("capture ready", |v| message_has(v, "capture ready"));
    running
}

/// A namespace pair named `name` with the HTTP server in the app namespace, and a
/// [`recorder`] there with `env` writing into a new temporary directory.
fn with_recorder(
    name: &str,
    env: &[(&str, &str)],
    ring_less: bool,
) -> (TestNet, tempfile::TempDir, ChildGuard, Running) {
    let net = TestNet::new(name).unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(net.app());
    let pcapd = recorder(&net, out.path(), env, ring_less);
    (net, out, server, pcapd)
}

fn message_has(v: &Value, text: &str) -> bool {
    v["message"].as_str().is_some_and(|m| m.contains(text))
}

/// `curl -s` from `ns` with `args` to `url`, the body discarded, `max_secs` at most; what it
/// wrote (what `-w` asks for).
fn curl(ns: &Netns, max_secs: u32, args: &[&str], url: &str) -> String {
    let out = ns
        .command("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", &max_secs.to_string()])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn get(net: &TestNet, path: &str, trace: bool) {
    let mut command = net.peer().command("curl");
    command.args(["-s", "-o", "/dev/null", "--max-time", "5"]);
    if trace {
        command.args([
            "-H",
            &format!("traceparent: 00-{TRACE}-00f067aa0ba902b7-01"),
        ]);
    }
    let status = command
        .arg(format!("http://{APP_V4}:{PORT}{path}"))
        .status()
        .unwrap();
    assert!(status.success(), "curl {path}");
}

/// Requests `/ok/N` every `every` for `length`; returns when each one completed (Unix
/// seconds): fewer on a loaded machine, where each curl takes longer.
fn steady(net: &TestNet, length: Duration, every: Duration) -> Vec<f64> {
    let start = Instant::now();
    let mut completed = Vec::new();
    while start.elapsed() < length {
        get(net, &format!("/ok/{}", completed.len()), false);
        completed.push(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64(),
        );
        std::thread::sleep(every);
    }
    completed
}

fn pcap_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_string()
}

fn tshark(file: &Path, filter: &str, field: &str) -> Vec<String> {
    testbed::tshark::filtered(file, filter, &[field])
        .unwrap()
        .into_iter()
        .map(|row| row.concat())
        .collect()
}

fn epoch(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|e| panic!("time {text:?}: {e}"))
}

fn rfc3339(text: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

/// The final stats line's counter.
fn final_stat(lines: &[Value], name: &str) -> u64 {
    let stats = lines
        .iter()
        .rfind(|l| l["message"] == "pcapd stats" && l["final"] == true)
        .unwrap_or_else(|| panic!("no final stats line: {lines:?}"));
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

fn one_503_among_200s_exports_exactly_one_window(ring_less: bool) {
    let net = TestNet::new(if ring_less { "rec-503-rl" } else { "rec-503" }).unwrap();
    let out = tempfile::tempdir().unwrap();
    let capture = out.path().join("capture");
    let _server = server(net.app());
    let pcapd = recorder(
        &net,
        out.path(),
        &[
            ("PCAP_TRIGGER", "http:5xx"),
            ("PCAP_TRIGGER_BEFORE_SECS", "2"),
            ("PCAP_TRIGGER_AFTER_SECS", "1"),
            ("PCAP_RING_SECS", "10"),
            ("PCAP_JSON", "true"),
            ("GOOGLE_CLOUD_PROJECT", "recorder-project"),
        ],
        ring_less,
    );
    let before = steady(&net, Duration::from_secs(4), Duration::from_millis(150));
    get(&net, "/fail", true);
    steady(&net, Duration::from_secs(3), Duration::from_millis(150));
    pcapd.wait_for_line("the window closed", |v| {
        message_has(v, "window of http5xx closed")
    });
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0), "{lines:?}");

    assert!(
        !lines.iter().any(is_packet),
        "no packet is logged by the recorder"
    );
    let files = pcap_files(&capture);
    assert_eq!(files.len(), 1, "exactly one window: {files:?}");
    let name = file_name(&files[0]);
    assert!(
        name.starts_with("eth0_part_") && name.ends_with("Z_http5xx.pcap"),
        "{name}"
    );
    let parsed = sidecar_core::naming::CaptureFileName::parse(&name).unwrap();
    assert_eq!(
        parsed.tag.as_deref(),
        Some("http5xx"),
        "pcap-fsnotify's parser accepts it"
    );

    let fired: Vec<&Value> = lines
        .iter()
        .filter(|l| message_has(l, "flight recorder: http5xx fired"))
        .collect();
    assert_eq!(fired.len(), 1, "{lines:?}");
    let fired = fired[0];
    assert_eq!(fired["trigger"], "http5xx");
    assert_eq!(fired["detail"], "HTTP status 503");
    assert_eq!(fired["trace"], TRACE, "{fired}");
    assert_eq!(
        fired["logging.googleapis.com/trace"],
        format!("projects/recorder-project/traces/{TRACE}"),
        "the line links to its trace"
    );
    assert!(
        fired["flow"].as_str().is_some_and(|f| !f.is_empty()),
        "{fired}"
    );
    assert_eq!(fired["files"], serde_json::json!([name]));
    let t = rfc3339(fired["trigger_time"].as_str().unwrap());

    // The 503's request is in the window, and so is the 503.
    let requests = tshark(
        &files[0],
        "http.request.uri == \"/fail\"",
        "frame.time_epoch",
    );
    assert_eq!(requests.len(), 1, "the 503's request");
    let responses = tshark(&files[0], "http.response.code == 503", "frame.time_epoch");
    assert_eq!(responses.len(), 1, "the 503");
    // Packets from `before` (2 s) earlier: the steady 200s every ~150 ms reach back that far.
    let times: Vec<f64> = tshark(&files[0], "frame", "frame.time_epoch")
        .iter()
        .map(|t| epoch(t))
        .collect();
    let (first, last) = (times[0], *times.last().unwrap());
    assert!(
        first >= t - 2.0 - 1e-3,
        "nothing before the window: {first} vs {t}"
    );
    // The 200s that completed between 1.5 s and 0.5 s before the trigger (margins for a
    // loaded machine, where curl exits a while after its last packet) are all in the
    // window: the ring gave the past.
    let due: Vec<f64> = before
        .iter()
        .copied()
        .filter(|c| (t - 1.5..=t - 0.5).contains(c))
        .collect();
    assert!(
        !due.is_empty(),
        "requests before the trigger: {before:?} vs {t}"
    );
    assert!(
        first <= due[0],
        "the ring gave the packets of 2 s before: {first} vs {t}, {due:?}"
    );
    assert!(
        last <= t + 1.0 + 1e-3,
        "nothing after the window: {last} vs {t}"
    );
    assert!(
        last >= t + 0.5,
        "live packets after the trigger: {last} vs {t}"
    );
    let ok_before = tshark(&files[0], "http.response.code == 200", "frame.time_epoch")
        .iter()
        .filter(|x| epoch(x) < t)
        .count();
    assert!(
        ok_before >= due.len(),
        "200s before the 503: {ok_before}, {} due",
        due.len()
    );
    assert_eq!(final_stat(&lines, "trigger_windows"), 1);
    assert_eq!(
        final_stat(&lines, "window_packets"),
        times.len() as u64,
        "the counter matches the file"
    );

    // PCAP_JSON=true: the window's .json, one line per packet of the .pcap, same name.
    let jsons: Vec<PathBuf> = std::fs::read_dir(&capture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(jsons.len(), 1, "{jsons:?}");
    assert_eq!(file_name(&jsons[0]), name.replace(".pcap", ".json"));
    assert_eq!(final_stat(&lines, "window_json_dropped"), 0);
    let entries: Vec<Value> = std::fs::read_to_string(&jsons[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), times.len(), "one entry per packet");
    let error = entries
        .iter()
        .find(|e| e["severity"] == "ERROR")
        .unwrap_or_else(|| panic!("the 503's entry: {entries:?}"));
    assert!(
        error["logging.googleapis.com/trace"]
            .as_str()
            .is_some_and(|t| t.ends_with(TRACE)),
        "{error}"
    );
}

#[test]
fn one_503_among_200s_exports_exactly_one_window_on_the_libpcap_path() {
    one_503_among_200s_exports_exactly_one_window(false);
}

#[test]
fn one_503_among_200s_exports_exactly_one_window_on_the_ring_less_path() {
    one_503_among_200s_exports_exactly_one_window(true);
}

#[test]
fn all_200_traffic_writes_and_logs_nothing() {
    for ring_less in [false, true] {
        let (net, out, _server, pcapd) = with_recorder(
            "rec-200",
            &[("PCAP_TRIGGER", "http:5xx,http:404,dns:servfail")],
            ring_less,
        );
        steady(&net, Duration::from_secs(3), Duration::from_millis(100));
        let (code, lines) = pcapd.terminate();
        assert_eq!(code, Some(0), "{lines:?}");
        assert!(!lines.iter().any(is_packet), "no packet logged");
        assert_eq!(
            pcap_files(&out.path().join("capture")),
            Vec::<PathBuf>::new()
        );
        assert_eq!(final_stat(&lines, "triggers"), 0);
        assert!(final_stat(&lines, "ring_packets") > 50, "the ring recorded");
        assert!(
            final_stat(&lines, "translated") > 50,
            "triggers were evaluated"
        );
    }
}

/// Peak resident memory of a process, KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        .unwrap()
}

fn the_ring_stays_within_its_byte_bound_under_a_flood(ring_less: bool) {
    let net = TestNet::new("rec-flood").unwrap();
    let out = tempfile::tempdir().unwrap();
    let pcapd = recorder(
        &net,
        out.path(),
        &[
            ("PCAP_TRIGGER", "http:5xx"),
            ("PCAP_RING_MB", "4"),
            ("PCAP_RING_SECS", "3600"),
            ("PCAP_TRIGGER_BEFORE_SECS", "60"),
        ],
        ring_less,
    );
    // About 3 s of 1400-byte UDP datagrams as fast as Python sends them: hundreds of MiB.
    let flood = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nb=b'x'*1400\nend=time.time()+3\nn=0\nwhile time.time()<end:\n    s.sendto(b,('{APP_V4}',9))\n    n+=1\nprint(n)"
    );
    let sent = net.peer().run("python3", ["-c", &flood]).unwrap();
    let sent: u64 = String::from_utf8(sent.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let hwm = vm_hwm_kib(pcapd.pid());
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let cap = 4u64 << 20;
    let peak = final_stat(&lines, "ring_peak_bytes");
    let packets = final_stat(&lines, "ring_packets");
    let evicted = final_stat(&lines, "ring_evicted_bytes_bound");
    eprintln!("sent {sent} datagrams; ring peak {peak} B, {packets} packets, {evicted} evicted; VmHWM {hwm} KiB");
    assert!(
        sent * 1400 > 8 * cap,
        "the flood is far larger than the ring: {sent}"
    );
    assert!(peak <= cap, "ring peak {peak} over its bound {cap}");
    assert!(peak >= cap * 3 / 4, "the ring was filled: {peak}");
    assert!(evicted > 0, "the oldest packets were evicted and counted");
    // The kernel buffer (4 MiB), the translation queue (8 MiB), the state budget and the
    // 4 MiB ring: far less than what was sent.
    assert!(hwm < 64 * 1024, "peak RSS {hwm} KiB");
}

fn the_manual_trigger_works_from_loopback_only_and_on_sigusr2(ring_less: bool) {
    let net = TestNet::new("rec-manual").unwrap();
    let out = tempfile::tempdir().unwrap();
    let capture = out.path().join("capture");
    let _server = server(net.app());
    let port = "18346";
    let pcapd = recorder(
        &net,
        out.path(),
        &[
            ("PCAP_TRIGGER", "manual"),
            ("PCAP_TRIGGER_PORT", port),
            ("PCAP_TRIGGER_BEFORE_SECS", "1"),
            ("PCAP_TRIGGER_AFTER_SECS", "0"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "0"),
        ],
        ring_less,
    );
    steady(&net, Duration::from_secs(2), Duration::from_millis(100));
    // From elsewhere: the endpoint listens on loopback only.
    let refused = net
        .peer()
        .command("curl")
        .args(["-s", "-X", "POST", "--max-time", "3"])
        .arg(format!("http://{APP_V4}:{port}/trigger?reason=remote"))
        .status()
        .unwrap();
    assert_eq!(refused.code(), Some(7), "curl: connection refused");
    let local = curl(
        net.app(),
        3,
        &["-w", "%{http_code}"],
        &format!("http://127.0.0.1:{port}/trigger?reason=remote"),
    );
    assert_eq!(local, "405", "GET is refused");
    steady(&net, Duration::from_millis(500), Duration::from_millis(100));
    for (n, address) in ["127.0.0.1", "[::1]"].into_iter().enumerate() {
        let posted = curl(
            net.app(),
            3,
            &["-X", "POST", "-w", "%{http_code}"],
            &format!("http://{address}:{port}/trigger?reason=deploy+v2"),
        );
        assert_eq!(posted, "202", "{address}");
        pcapd.wait_for_lines("the window closed", n + 1, |v| {
            message_has(v, "window of manual closed")
        });
        steady(
            &net,
            Duration::from_millis(1500),
            Duration::from_millis(100),
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pcapd.pid() as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .unwrap();
    pcapd.wait_for_line("SIGUSR2's window", |v| {
        message_has(v, "manual fired") && v["detail"] == "SIGUSR2"
    });
    steady(
        &net,
        Duration::from_millis(1500),
        Duration::from_millis(100),
    );
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
    let fired: Vec<&Value> = lines
        .iter()
        .filter(|l| message_has(l, "flight recorder: manual fired"))
        .collect();
    assert_eq!(fired.len(), 3, "{fired:?}");
    assert_eq!(fired[0]["detail"], "reason=deploy v2");
    assert!(lines.iter().all(|l| !message_has(l, "reason=remote")));
    let files = pcap_files(&capture);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert!(file_name(file).ends_with("_manual.pcap"), "{file:?}");
        assert!(
            !tshark(file, "http.response.code == 200", "frame.number").is_empty(),
            "{file:?} holds the second before the trigger"
        );
    }
}

fn a_storm_of_500s_respects_the_cooldown_and_the_hourly_cap(ring_less: bool) {
    let (net, out, _server, pcapd) = with_recorder(
        "rec-storm",
        &[
            ("PCAP_TRIGGER", "http:500"),
            ("PCAP_TRIGGER_BEFORE_SECS", "1"),
            ("PCAP_TRIGGER_AFTER_SECS", "0"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "2"),
            ("PCAP_TRIGGER_MAX_PER_HOUR", "2"),
        ],
        ring_less,
    );
    // A window merges the storm's triggers up to 4 × (1 + 0) s from its start (and stays
    // open 1 s longer for late triggers), then 2 s of cooldown from its end: windows at
    // about 0 s and 5 s, the cap from about 10 s on.
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(14) {
        get(&net, "/boom", false);
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
    let files = pcap_files(&out.path().join("capture"));
    assert_eq!(files.len(), 2, "{files:?}");
    let fired = lines
        .iter()
        .filter(|l| message_has(l, "flight recorder: http500 fired"))
        .count();
    assert_eq!(fired, 2);
    let triggers = final_stat(&lines, "triggers");
    let merged = final_stat(&lines, "triggers_merged");
    let cooldown = final_stat(&lines, "triggers_suppressed_cooldown");
    let cap = final_stat(&lines, "triggers_suppressed_cap");
    eprintln!("sent {sent}: triggers {triggers}, merged {merged}, cooldown {cooldown}, cap {cap}");
    assert!(merged > 0 && cooldown > 0 && cap > 0);
    assert_eq!(triggers, 2 + merged + cooldown + cap);
    let logged = |reason: &str| {
        lines
            .iter()
            .filter(|l| l["reason"] == reason && message_has(l, "suppressed"))
            .count()
    };
    assert_eq!(logged("cooldown"), 2, "one line per run of suppressions");
    assert_eq!(logged("hourly cap"), 1);
}

fn sigterm_exports_the_window_in_progress_and_the_ring_on_exit(ring_less: bool) {
    let net = TestNet::new("rec-term").unwrap();
    let _server = server(net.app());
    for on_exit in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let pcapd = recorder(
            &net,
            out.path(),
            &[
                ("PCAP_TRIGGER", "http:503"),
                ("PCAP_TRIGGER_AFTER_SECS", "60"),
                (
                    "PCAP_TRIGGER_ON_EXIT",
                    if on_exit { "true" } else { "false" },
                ),
            ],
            ring_less,
        );
        let mut sent = steady(&net, Duration::from_secs(1), Duration::from_millis(100)).len();
        if !on_exit {
            get(&net, "/fail", false);
            pcapd.wait_for_line("the trigger", |v| message_has(v, "http503 fired"));
        }
        sent += steady(&net, Duration::from_secs(1), Duration::from_millis(100)).len();
        let (code, lines) = pcapd.terminate();
        assert_eq!(code, Some(0), "{lines:?}");
        let files = pcap_files(&out.path().join("capture"));
        assert_eq!(files.len(), 1, "{files:?}");
        let name = file_name(&files[0]);
        let kind = if on_exit { "exit" } else { "http503" };
        assert!(name.ends_with(&format!("Z_{kind}.pcap")), "{name}");
        // Every 200 of the run is in the one file (the ring's 60 s hold them all); the
        // last response may still be on its way when SIGTERM arrives.
        let oks = tshark(&files[0], "http.response.code == 200", "frame.number").len();
        assert!(sent >= 5, "{sent} requests");
        assert!(oks + 1 >= sent, "{name}: {oks} 200s of {sent} requests");
    }
}

/// One hour of HTTP/1.1 traffic (`per_sec` exchanges a second, each on its own connection:
/// handshake, request, 1 KiB response, teardown), with every response a 503 during the
/// `incidents` (start second, length in seconds), as a pcap file.
fn hour_of_traffic(
    path: &Path,
    (seconds, per_sec, body_len): (u64, u64, usize),
    incidents: &[(u64, u64)],
) -> u64 {
    use testbed::pcapfile::{Writer, START_MICROS};
    use testbed::synth::{tcp, Ip, ACK, FIN, PSH, SYN};
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut out = Writer::new(file, 65_535).unwrap();
    let client = std::net::Ipv4Addr::new(10, 0, 0, 2);
    let server = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let mut failing = 0;
    for n in 0..seconds * per_sec {
        let second = n / per_sec;
        let fail = incidents
            .iter()
            .any(|(at, len)| (*at..at + len).contains(&second));
        failing += u64::from(fail);
        let mut t = START_MICROS + n * 1_000_000 / per_sec;
        let sport = 20_000 + (n % 40_000) as u16;
        let (c, s) = (1_000u32, 9_000u32);
        let to = Ip::V4(client, server);
        let back = Ip::V4(server, client);
        let request = format!(
            "GET /api/items/{n} HTTP/1.1\r\nHost: app\r\nUser-Agent: bench\r\ntraceparent: 00-{:032x}-00f067aa0ba902b7-01\r\n\r\n",
            n + 1
        );
        let body = "y".repeat(body_len);
        let status = if fail {
            "503 Service Unavailable"
        } else {
            "200 OK"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (rq, rs) = (request.len() as u32, response.len() as u32);
        let packets = [
            tcp(to, sport, 8080, c, 0, SYN, &[], 1),
            tcp(back, 8080, sport, s, c + 1, SYN | ACK, &[], 1),
            tcp(to, sport, 8080, c + 1, s + 1, ACK, &[], 2),
            tcp(
                to,
                sport,
                8080,
                c + 1,
                s + 1,
                PSH | ACK,
                request.as_bytes(),
                3,
            ),
            tcp(back, 8080, sport, s + 1, c + 1 + rq, ACK, &[], 2),
            tcp(
                back,
                8080,
                sport,
                s + 1,
                c + 1 + rq,
                PSH | ACK,
                response.as_bytes(),
                3,
            ),
            tcp(to, sport, 8080, c + 1 + rq, s + 1 + rs, ACK, &[], 4),
            tcp(to, sport, 8080, c + 1 + rq, s + 1 + rs, FIN | ACK, &[], 5),
            tcp(back, 8080, sport, s + 1 + rs, c + 2 + rq, FIN | ACK, &[], 4),
            tcp(to, sport, 8080, c + 2 + rq, s + 2 + rs, ACK, &[], 6),
        ];
        for p in packets {
            out.frame_at(t, &p).unwrap();
            t += 2_000;
        }
    }
    out.finish().unwrap();
    failing
}

/// Bytes a `pcapd --read` writes to stdout and stderr, the files in `dir` and its peak RSS.
fn read_run(file: &Path, dir: &Path, env: &[(&str, &str)]) -> (u64, u64, Vec<(String, u64)>, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M"])
        .arg(BIN)
        .arg("--read")
        .arg(file)
        .arg("--output-dir")
        .arg(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GCS_MOUNT", dir.join("mount"))
        .env("PCAP_RUN_DIR", dir.join("run"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log_bytes = stderr
        .lines()
        .filter(|l| !l.starts_with("maxrss_kib="))
        .map(|l| l.len() as u64 + 1)
        .sum();
    let files = pcap_files(dir)
        .into_iter()
        .map(|p| (file_name(&p), std::fs::metadata(&p).unwrap().len()))
        .collect();
    (out.stdout.len() as u64, log_bytes, files, rss)
}

/// The recorder against continuous capture on one replayed hour with three incidents:
/// `cargo test --release -p pcapd --test recorder -- --ignored --nocapture bench`.
#[test]
#[ignore = "benchmark: one replayed hour of traffic"]
fn bench_recorder_against_continuous_capture() {
    let dir = tempfile::tempdir().unwrap();
    let hour = dir.path().join("hour.pcap");
    let incidents = [(12 * 60, 20), (31 * 60, 5), (47 * 60, 40)];
    let failing = hour_of_traffic(&hour, (3600, 5, 1024), &incidents);
    let pcap_bytes = std::fs::metadata(&hour).unwrap().len();
    let packets = tshark(&hour, "frame", "frame.number").len() as u64;
    eprintln!("input: {packets} packets, {pcap_bytes} B, {failing} 503s in 3 incidents");
    // Continuous capture: tcpdump writes every packet (the input itself), pcapd logs every
    // packet (PCAP_JSON_LOG=true) at DEBUG (the default) and INFO.
    let mut continuous_logged = Vec::new();
    for verbosity in ["DEBUG", "INFO"] {
        let out = dir.path().join(format!("continuous-{verbosity}"));
        let (stdout, logs, _, rss) = read_run(
            &hour,
            &out,
            &[("PCAP_JSON_LOG", "true"), ("PCAP_VERBOSITY", verbosity)],
        );
        eprintln!("continuous {verbosity}: logged {stdout} B of packet JSON + {logs} B of logs; peak RSS {rss} KiB");
        continuous_logged.push(stdout + logs);
    }
    let out = dir.path().join("recorder");
    let (stdout, logs, files, rss) = read_run(
        &hour,
        &out,
        &[("PCAP_JSON_LOG", "true"), ("PCAP_TRIGGER", "http:5xx")],
    );
    let exported: u64 = files.iter().map(|(_, b)| b).sum();
    eprintln!(
        "recorder: windows {files:?}; exported {exported} B; logged {} B; peak RSS {rss} KiB",
        stdout + logs
    );
    eprintln!(
        "ratio exported: continuous/recorder = {:.1}; logged: DEBUG {:.0}, INFO {:.0}",
        pcap_bytes as f64 / exported as f64,
        continuous_logged[0] as f64 / (stdout + logs) as f64,
        continuous_logged[1] as f64 / (stdout + logs) as f64
    );
    assert_eq!(files.len(), 3, "one window per incident: {files:?}");
    assert_eq!(stdout, 0, "the recorder logs no packet");

    // Memory at the default bounds (64 MiB, 60 s): 3 minutes of heavier traffic (about
    // 1.6 MB/s, 16 KiB responses) fill the ring by bytes.
    let heavy = dir.path().join("heavy.pcap");
    hour_of_traffic(&heavy, (180, 100, 16 * 1024), &[]);
    let out = dir.path().join("recorder-heavy");
    let (_, _, _, rss) = read_run(&heavy, &out, &[("PCAP_TRIGGER", "http:5xx")]);
    let (_, _, _, baseline) = read_run(
        &heavy,
        &dir.path().join("json-heavy"),
        &[("PCAP_JSON_LOG", "true"), ("PCAP_VERBOSITY", "INFO")],
    );
    eprintln!(
        "heavy: {} B; recorder at default bounds peak RSS {rss} KiB; pcapd --read with INFO JSON {baseline} KiB",
        std::fs::metadata(&heavy).unwrap().len()
    );
}

fn every_packet_trigger_kind_writes_its_window(ring_less: bool) {
    let net = TestNet::new("rec-kinds").unwrap();
    let out = tempfile::tempdir().unwrap();
    let _server = server(net.app());
    let _dnsmasq = ChildGuard::spawn(&mut dnsmasq(
        net.app(),
        &out.path().join("dnsmasq.pid"),
        &[],
    ))
    .unwrap();
    let grpc_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/grpc_h2c.py");
    let grpc_addr = format!("{APP_V4}:50051");
    let _grpc = ChildGuard::spawn(
        net.app()
            .command("python3")
            .arg(&grpc_script)
            .args(["server", &grpc_addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        ["53", "50051"].iter().all(|port| {
            net.app()
                .run("ss", ["-Hlnt", "sport", "=", &format!(":{port}")])
                .is_ok_and(|out| !out.stdout.is_empty())
        })
    })
    .unwrap();
    let pcapd = recorder(
        &net,
        out.path(),
        &[
            (
                "PCAP_TRIGGER",
                "grpc:!0,latency:>1s,tcp:rst-after-data,tcp:syn-timeout,tcp:rst-burst:10/5s,tcp:retransmission-burst:5/5s,dns:nxdomain,icmp:unreachable",
            ),
            ("PCAP_TRIGGER_BEFORE_SECS", "1"),
            ("PCAP_TRIGGER_AFTER_SECS", "0"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "0"),
        ],
        ring_less,
    );
    let gap = || {
        steady(
            &net,
            Duration::from_millis(2500),
            Duration::from_millis(100),
        )
    };
    gap();
    // One event every 2.5 s (windows of 1 s plus the merge lag never touch); the steady
    // 200s in between, fast and without error, must fire nothing. First a datagram to a
    // closed port: the ICMP port unreachable.
    let _ = net
        .peer()
        .command("bash")
        .args(["-c", &format!("echo x > /dev/udp/{APP_V4}/9")])
        .status();
    gap();
    let dig = net
        .peer()
        .run(
            "dig",
            [
                "+short",
                "+tries=1",
                "@198.51.100.1",
                "nothere.example.test",
            ],
        )
        .unwrap();
    assert!(dig.status.success());
    gap();
    get(&net, "/slow", false);
    gap();
    curl(net.peer(), 3, &[], &format!("http://{APP_V4}:{PORT}/reset"));
    gap();
    let grpc = net
        .peer()
        .run(
            "python3",
            [
                grpc_script.to_str().unwrap(),
                "client",
                &grpc_addr,
                &format!("00-{TRACE}-00f067aa0ba902b7-01"),
            ],
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&grpc.stdout).contains("not found"));
    gap();
    // A connect the app's firewall drops: the SYN is sent again after 1 s.
    net.app()
        .run(
            "iptables",
            ["-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "DROP"],
        )
        .unwrap();
    curl(net.peer(), 2, &[], &format!("http://{APP_V4}:9999/"));
    gap();
    // 15 connects to a port nothing listens on: 15 resets within a second or two.
    let _ = net
        .peer()
        .command("bash")
        .args([
            "-c",
            &format!("for i in $(seq 15); do (echo > /dev/tcp/{APP_V4}/7777) 2>/dev/null; done"),
        ])
        .status();
    gap();
    // 4 MB uploaded to a sink whose firewall drops 30 % of the data segments (after the
    // capture point): the sender retransmits them.
    let _sink = ChildGuard::spawn(
        net.app()
            .command("python3")
            .args([
                "-c",
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8082))\ns.listen()\nc,_=s.accept()\nwhile c.recv(65536):\n    pass\nc.close()",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        net.app()
            .run("ss", ["-Hlnt", "sport", "=", ":8082"])
            .is_ok_and(|out| !out.stdout.is_empty())
    })
    .unwrap();
    net.app()
        .run(
            "iptables",
            [
                "-A",
                "INPUT",
                "-p",
                "tcp",
                "--dport",
                "8082",
                "-m",
                "length",
                "--length",
                "500:65535",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.3",
                "-j",
                "DROP",
            ],
        )
        .unwrap();
    let _ = net
        .peer()
        .command("bash")
        .args([
            "-c",
            &format!("head -c 4000000 /dev/zero > /dev/tcp/{APP_V4}/8082"),
        ])
        .status();
    gap();
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
    let fired: Vec<(String, String)> = lines
        .iter()
        .filter(|l| message_has(l, "flight recorder: ") && message_has(l, " fired"))
        .map(|l| {
            (
                l["trigger"].as_str().unwrap().to_string(),
                l["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The lossy upload may go on retransmitting past one window (cooldown 0 here): each
    // later burst opens a window of its own, so consecutive repeats are allowed.
    let mut fired_kinds: Vec<&str> = fired.iter().map(|(k, _)| k.as_str()).collect();
    fired_kinds.dedup();
    assert_eq!(
        fired_kinds,
        [
            "unreachable",
            "nxdomain",
            "latency",
            "tcprst",
            "grpc",
            "syntimeout",
            "rstburst",
            "retransburst"
        ],
        "{lines:?}"
    );
    assert_eq!(fired[0].1, "ICMP destination unreachable");
    assert_eq!(fired[1].1, "DNS NXDOMAIN");
    assert!(fired[2].1.starts_with("HTTP latency 15"), "{}", fired[2].1);
    assert_eq!(fired[3].1, "TCP reset after data");
    assert_eq!(fired[4].1, "gRPC status 5");
    assert_eq!(fired[5].1, "SYN retransmitted: no SYN-ACK");
    assert!(
        fired[6].1.starts_with("10 × rst-burst within "),
        "{}",
        fired[6].1
    );
    assert!(
        fired[7].1.starts_with("5 × retransmission-burst within "),
        "{}",
        fired[7].1
    );
    let grpc_line = lines
        .iter()
        .find(|l| l["trigger"] == "grpc" && message_has(l, "fired"))
        .unwrap();
    assert_eq!(grpc_line["trace"], TRACE, "{grpc_line}");
    let files = pcap_files(&out.path().join("capture"));
    let kinds: Vec<String> = files
        .iter()
        .map(|f| {
            let name = file_name(f);
            name.rsplit_once("Z_")
                .unwrap()
                .1
                .trim_end_matches(".pcap")
                .to_string()
        })
        .collect();
    let mut expected = vec![
        "grpc",
        "latency",
        "nxdomain",
        "retransburst",
        "rstburst",
        "syntimeout",
        "tcprst",
        "unreachable",
    ];
    let mut sorted = kinds.clone();
    sorted.sort();
    sorted.dedup();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "{files:?}");
    let file_of = |kind: &str| files[kinds.iter().position(|k| k == kind).unwrap()].clone();
    for (kind, filter) in [
        ("unreachable", "icmp.type == 3"),
        ("nxdomain", "dns.flags.rcode == 3"),
        ("tcprst", "tcp.flags.reset == 1"),
    ] {
        assert_eq!(
            tshark(&file_of(kind), filter, "frame.number").len(),
            1,
            "{kind}"
        );
    }
    // The SYN sent again (the first one, 1 s earlier, is at the window's edge).
    assert!(!tshark(
        &file_of("syntimeout"),
        "tcp.dstport == 9999 && tcp.flags.syn == 1",
        "frame.number"
    )
    .is_empty());
    // The slow response is the trigger: its packet is in the window, at the trigger time
    // (the request, 1.5 s earlier, is before the 1 s window).
    let latency = lines
        .iter()
        .find(|l| l["trigger"] == "latency" && message_has(l, "fired"))
        .unwrap();
    let t = rfc3339(latency["trigger_time"].as_str().unwrap());
    let responses = tshark(
        &file_of("latency"),
        "tcp.srcport == 8080 && tcp.len > 0",
        "frame.time_epoch",
    );
    assert!(
        responses.iter().any(|r| (epoch(r) - t).abs() < 1e-3),
        "{responses:?} vs {t}"
    );
}

/// A slow reader (`curl --limit-rate 2k`) of a large response: its receive buffer fills and
/// it advertises zero windows again and again, which fires `tcp:zero-window-burst` once (the
/// cooldown holds back the rest).
#[test]
fn a_slow_reader_fires_one_zero_window_burst_window() {
    let (net, out, _server, pcapd) = with_recorder(
        "rec-zwin",
        &[
            ("PCAP_TRIGGER", "tcp:zero-window-burst:5/10s"),
            // The burst's whole span: its five zero windows are all in the window.
            ("PCAP_TRIGGER_BEFORE_SECS", "10"),
            ("PCAP_TRIGGER_AFTER_SECS", "1"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "60"),
        ],
        false,
    );
    // A small receive buffer, as on a busy client: it fills within seconds at 2 KB/s.
    net.peer()
        .run("sysctl", ["-w", "net.ipv4.tcp_rmem=4096 16384 32768"])
        .unwrap();
    let started = Instant::now();
    let _ = net
        .peer()
        .command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--limit-rate",
            "2k",
            "--max-time",
            "15",
        ])
        .arg(format!("http://{APP_V4}:{PORT}/big"))
        .status();
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
    let fired: Vec<&Value> = lines
        .iter()
        .filter(|l| message_has(l, "flight recorder: ") && message_has(l, " fired"))
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["trigger"], "zerowindowburst", "{fired:?}");
    let detail = fired[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("5 × zero-window-burst within "),
        "{detail}"
    );
    let files = pcap_files(&out.path().join("capture"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        file_name(&files[0]).ends_with("Z_zerowindowburst.pcap"),
        "{files:?}"
    );
    let zero = tshark(
        &files[0],
        "tcp.srcport != 8080 && tcp.window_size_value == 0 && tcp.flags.reset == 0",
        "frame.number",
    );
    assert!(
        zero.len() >= 5,
        "the zero windows are in the window: {zero:?}"
    );
    eprintln!(
        "zero-window burst: {detail}; {} zero-window segments in the window; curl ran {:?}",
        zero.len(),
        started.elapsed()
    );
}

#[test]
fn the_ring_stays_within_its_byte_bound_under_a_flood_on_the_libpcap_path() {
    the_ring_stays_within_its_byte_bound_under_a_flood(false);
}

#[test]
fn the_ring_stays_within_its_byte_bound_under_a_flood_on_the_ring_less_path() {
    the_ring_stays_within_its_byte_bound_under_a_flood(true);
}

#[test]
fn the_manual_trigger_works_from_loopback_only_and_on_sigusr2_on_the_libpcap_path() {
    the_manual_trigger_works_from_loopback_only_and_on_sigusr2(false);
}

#[test]
fn the_manual_trigger_works_from_loopback_only_and_on_sigusr2_on_the_ring_less_path() {
    the_manual_trigger_works_from_loopback_only_and_on_sigusr2(true);
}

#[test]
fn a_storm_of_500s_respects_the_cooldown_and_the_hourly_cap_on_the_libpcap_path() {
    a_storm_of_500s_respects_the_cooldown_and_the_hourly_cap(false);
}

#[test]
fn a_storm_of_500s_respects_the_cooldown_and_the_hourly_cap_on_the_ring_less_path() {
    a_storm_of_500s_respects_the_cooldown_and_the_hourly_cap(true);
}

#[test]
fn sigterm_exports_the_window_in_progress_and_the_ring_on_exit_on_the_libpcap_path() {
    sigterm_exports_the_window_in_progress_and_the_ring_on_exit(false);
}

#[test]
fn sigterm_exports_the_window_in_progress_and_the_ring_on_exit_on_the_ring_less_path() {
    sigterm_exports_the_window_in_progress_and_the_ring_on_exit(true);
}

#[test]
fn every_packet_trigger_kind_writes_its_window_on_the_libpcap_path() {
    every_packet_trigger_kind_writes_its_window(false);
}

#[test]
fn every_packet_trigger_kind_writes_its_window_on_the_ring_less_path() {
    every_packet_trigger_kind_writes_its_window(true);
}
