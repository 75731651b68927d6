//! Helpers shared by the end-to-end tests (`e2e.rs`, `image.rs`): the daemons' location, the
//! app traffic with trace headers, a reference capture, and the checks of exported files
//! (names, gzip, merge, packets against the reference, JSON lines and trace ids) and of the
//! bucket layout.

// Each test file uses a different subset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use testbed::{ChildGuard, MetadataConfig, Netns, TestNet};

pub const SERVICE: &str = "hello";
pub const REVISION: &str = "hello-00001-abc";
pub const APP_PORT: u16 = 8080;

pub const DAEMONS: [&str; 5] = [
    "pcap-init",
    "tcpdumpw",
    "pcapd",
    "pcap-fsnotify",
    "hc-probe",
];

/// `target/debug/`, where cargo put the daemons: this executable is `target/debug/deps/e2e-…`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf();
    let missing: Vec<&str> = DAEMONS
        .iter()
        .copied()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "daemons {missing:?} are missing from {}: run `cargo build -p pcap-init -p tcpdumpw \
         -p pcapd -p pcap-fsnotify -p hc-probe` (or `cargo test --workspace`) first",
        dir.display()
    );
    dir
}

pub fn message(line: &Value) -> &str {
    line["message"].as_str().unwrap_or("")
}

/// `n` HTTP requests from `net`'s peer to the app on `APP_PORT`, numbered from `first`
/// (`/?request=N`), spread over `over`, each with its own `traceparent` and
/// `X-Cloud-Trace-Context` headers (sampled for even numbers). Returns the trace ids sent.
pub fn traffic(net: &TestNet, first: usize, n: usize, over: Duration) -> Vec<String> {
    let gap = over / u32::try_from(n).unwrap();
    let mut traces = Vec::new();
    for i in first..first + n {
        let started = Instant::now();
        let trace = format!(
            "{:032x}",
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_0000_u128 + i as u128
        );
        let span = format!("{:016x}", 0x00f0_67aa_0ba9_0000_u64 + i as u64);
        let flag = if i % 2 == 0 { "01" } else { "00" };
        let out = net
            .peer()
            .run(
                "curl",
                [
                    "-sS".to_string(),
                    "--max-time".to_string(),
                    "10".to_string(),
                    "-o".to_string(),
                    "/dev/null".to_string(),
                    "-w".to_string(),
                    "%{http_code}".to_string(),
                    "-H".to_string(),
                    format!("traceparent: 00-{trace}-{span}-{flag}"),
                    "-H".to_string(),
                    format!(
                        "X-Cloud-Trace-Context: {trace}/{}",
                        u64::from_str_radix(&span, 16).unwrap()
                    ),
                    format!("http://{}:{APP_PORT}/?request={i}", net.app().ipv4()),
                ],
            )
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
        traces.push(trace);
        std::thread::sleep(gap.saturating_sub(started.elapsed()));
    }
    traces
}

/// A reference `tcpdump -i eth0` in namespace `ns` writing `path`, capturing from now on.
pub fn reference_capture(ns: &Netns, path: &Path) -> Reference {
    let path = path.to_path_buf();
    let mut child = ChildGuard::spawn(
        ns.command("tcpdump")
            .args(["-n", "-i", "eth0", "-U", "-w"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("reference tcpdump");
    let stderr = child.child_mut().stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            sink.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("reference tcpdump is listening");
    Reference { child, path, lines }
}

/// A reference `tcpdump` capture running next to the sidecar.
pub struct Reference {
    child: ChildGuard,
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Reference {
    /// Stops the reference capture (SIGTERM: it flushes) and returns its stderr lines.
    pub fn stop(mut self) -> (PathBuf, Vec<String>) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.child
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("reference tcpdump exits on SIGTERM");
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap().clone();
        (self.path.clone(), lines)
    }
}

pub fn gunzip(bytes: &[u8], what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{what} is not a valid gzip: {e}"));
    out
}

/// Capture file names (`sidecar_core::naming`), as exported: `<iface>_part_<UTC>Z[-n].<ext>.gz`.
/// The app: `python3 -m http.server` on the app's address port [`APP_PORT`], serving `www`
/// (created, with an `index.html` of `index`), once the peer can connect to it.
pub fn start_app(net: &TestNet, www: &Path, index: &str) -> ChildGuard {
    std::fs::create_dir_all(www).unwrap();
    std::fs::write(www.join("index.html"), index).unwrap();
    let app = ChildGuard::spawn(
        net.app()
            .command("python3")
            .args(["-m", "http.server", &APP_PORT.to_string(), "--bind"])
            .arg(net.app().ipv4().to_string())
            .arg("--directory")
            .arg(www)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("start the app");
    let target = std::net::SocketAddr::from((net.app().ipv4(), APP_PORT));
    testbed::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        net.peer()
            .can_connect(target, Duration::from_secs(1))
            .unwrap_or(false)
    })
    .expect("the app listens");
    app
}

/// Merges the pcap files `inputs` into the classic pcap file `merged` (mergecap).
pub fn mergecap(merged: &Path, inputs: &[PathBuf]) {
    testbed::run(
        Command::new("mergecap")
            .arg("-w")
            .arg(merged)
            .args(["-F", "pcap"])
            .args(inputs),
    )
    .expect("mergecap merges the exported pcaps");
}

/// Pids of the processes named `comm` whose parent is `parent`.
pub fn children_of(parent: u32, comm: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may contain spaces, so split at the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map(|(_, n)| n).unwrap_or_default();
        let ppid = tail
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if name == comm && ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

pub fn is_capture_name(name: &str, ext: &str) -> bool {
    let Some(rest) = name.strip_prefix("eth0_part_") else {
        return false;
    };
    let Some(stamp) = rest.strip_suffix(&format!(".{ext}.gz")) else {
        return false;
    };
    let stamp = stamp.split('-').next().unwrap_or_default();
    stamp.len() == 16
        && stamp.as_bytes()[8] == b'T'
        && stamp.ends_with('Z')
        && stamp[..8]
            .bytes()
            .chain(stamp[9..15].bytes())
            .all(|b| b.is_ascii_digit())
}

/// `tcpdump -r` lines (without timestamps) of the packets of `filter`, as a multiset.
pub fn packets(pcap: &Path, filter: &str) -> BTreeMap<String, usize> {
    let out = testbed::run(
        Command::new("tcpdump")
            .args(["-n", "-t", "-r"])
            .arg(pcap)
            .arg(filter),
    )
    .expect("tcpdump -r");
    let mut set = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        *set.entry(line.to_string()).or_insert(0) += 1;
    }
    set
}

pub fn count(set: &BTreeMap<String, usize>) -> usize {
    set.values().sum()
}

/// Checks the exported files of one run (already decompressed and collected in `files`:
/// name → bytes), merges the pcaps and compares them with the reference capture.
/// The completeness manifest lists exactly the exported capture objects, each
/// with its size and CRC32C.
pub fn check_manifest(files: &BTreeMap<String, Vec<u8>>) {
    let manifest = files
        .get("MANIFEST.jsonl")
        .unwrap_or_else(|| panic!("no MANIFEST.jsonl among {:?}", files.keys()));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(manifest)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a manifest line is JSON"))
        .collect();
    let mut listed = Vec::new();
    for record in &records {
        if record["outcome"] != "exported" {
            continue;
        }
        let object = record["object"].as_str().expect("object").to_string();
        let bytes = files
            .get(&object)
            .unwrap_or_else(|| panic!("{object} listed but not exported"));
        assert_eq!(record["stored_bytes"], bytes.len(), "{record}");
        let crc = export::crc32c_base64(export::crc32c_of(&bytes[..]).unwrap());
        assert_eq!(record["crc32c"], crc.as_str(), "{record}");
        // Every file here was written by a tcpdump or pcapd of this instance: their drop
        // journals give each file its drops (JSON files pass through pcapd's queue too).
        assert!(record["kernel_drops"].is_u64(), "{record}");
        assert_eq!(
            record["queue_drops"].is_u64(),
            object.contains(".json"),
            "{record}"
        );
        listed.push(object);
    }
    let mut captures: Vec<&String> = files
        .keys()
        .filter(|n| is_capture_name(n, "pcap") || is_capture_name(n, "json"))
        .collect();
    captures.sort();
    listed.sort();
    assert_eq!(
        captures.into_iter().cloned().collect::<Vec<_>>(),
        listed,
        "every exported object is in the manifest, and only those"
    );
}

pub fn check_exports(
    work: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    reference: &Path,
    reference_log: &[String],
    traces: &[String],
) {
    let pcaps: Vec<&String> = files
        .keys()
        .filter(|n| is_capture_name(n, "pcap"))
        .collect();
    let jsons: Vec<&String> = files
        .keys()
        .filter(|n| is_capture_name(n, "json"))
        .collect();
    check_manifest(files);
    let others: Vec<&String> = files
        .keys()
        .filter(|n| !is_capture_name(n, "pcap") && !is_capture_name(n, "json"))
        .filter(|n| n.as_str() != "MANIFEST.jsonl")
        .collect();
    assert!(others.is_empty(), "unexpected exported files: {others:?}");
    assert!(
        pcaps.len() >= 3,
        "≥ 2 rotations give ≥ 3 pcap files: {pcaps:?}"
    );
    assert!(!jsons.is_empty(), "JSON files exported: {:?}", files.keys());

    // Decompress, then merge with the README's command.
    let merged_dir = work.join("merged");
    std::fs::create_dir_all(&merged_dir).unwrap();
    let mut inputs = Vec::new();
    for name in &pcaps {
        let pcap = gunzip(&files[*name], name);
        let path = merged_dir.join(name.trim_end_matches(".gz"));
        std::fs::write(&path, pcap).unwrap();
        inputs.push(path);
    }
    let merged = work.join("merged.pcap");
    mergecap(&merged, &inputs);

    // Every packet of the app's traffic the reference saw is in the merged capture.
    let filter = format!("tcp port {APP_PORT}");
    let seen = packets(&merged, &filter);
    let expected = packets(reference, &filter);
    let dropped: usize = reference_log
        .iter()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|(line, n)| seen.get(*line).copied().unwrap_or(0) < **n)
        .map(|(line, _)| line)
        .collect();
    assert!(
        count(&expected) >= traces.len() * 6,
        "the reference saw the requests ({} packets)",
        count(&expected)
    );
    assert!(
        missing.len() <= dropped,
        "{} of {} reference packets missing from the merged capture ({} dropped by the \
         reference's kernel); first missing: {:?}",
        missing.len(),
        count(&expected),
        dropped,
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        count(&seen) <= count(&expected) + dropped,
        "merged capture has {} packets of the app's traffic, reference {}",
        count(&seen),
        count(&expected)
    );
    // Each request and each response is there.
    let merged_text: Vec<String> = packets(&merged, &filter).into_keys().collect();
    let http_requests = merged_text
        .iter()
        .filter(|l| {
            l.contains(&format!("> {}.{APP_PORT}:", "198.51.100.1")) && l.contains("HTTP: GET")
        })
        .count();
    assert_eq!(
        http_requests,
        traces.len(),
        "one GET per curl in the merged capture"
    );

    // JSON: one object per packet per line, from pcapd (a capture independent of tcpdump's).
    let mut json_packets = 0;
    let mut json_app_packets = 0;
    let mut json_requests = Vec::new();
    // Trace id → (request entries, response entries, other entries, sampled flags seen).
    let mut traced: BTreeMap<String, (usize, usize, usize, Vec<bool>)> = BTreeMap::new();
    for name in &jsons {
        let text = String::from_utf8(gunzip(&files[*name], name)).expect("JSON is UTF-8");
        for line in text.lines() {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not a JSON line ({e}): {line}"));
            assert!(
                value["pcap"]["date"].is_string(),
                "{name}: pcap.date: {line}"
            );
            assert!(
                value["pcap"]["ctx"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("projects/test-project/")),
                "{name}: the project id from discovery reaches pcapd: {line}"
            );
            json_packets += 1;
            let l4 = &value["L4"];
            if l4["src"] == APP_PORT || l4["dst"] == APP_PORT {
                json_app_packets += 1;
            }
            let kind = value["HTTP"]["kind"].as_str().unwrap_or("");
            if kind == "request" {
                if let Some(rest) = value["HTTP"]["url"]
                    .as_str()
                    .and_then(|url| url.strip_prefix("/?request="))
                {
                    json_requests.push(rest.to_string());
                }
            }
            if let Some(trace) = value["logging.googleapis.com/trace"].as_str() {
                let span = value["logging.googleapis.com/spanId"]
                    .as_str()
                    .unwrap_or("");
                assert!(
                    span.len() == 16 && span.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{name}: spanId is 16 hex digits: {line}"
                );
                let entry = traced.entry(trace.to_string()).or_default();
                match kind {
                    "request" => entry.0 += 1,
                    "response" => entry.1 += 1,
                    _ => entry.2 += 1,
                }
                if let Some(sampled) = value["logging.googleapis.com/trace_sampled"].as_bool() {
                    entry.3.push(sampled);
                }
            }
        }
    }
    assert!(
        json_app_packets + dropped >= count(&expected) && json_app_packets <= count(&expected),
        "{json_app_packets} JSON lines of the app's traffic for {} packets in the reference",
        count(&expected)
    );
    json_requests.sort_by_key(|n| n.parse::<usize>().unwrap_or(usize::MAX));
    let sent: Vec<String> = (0..traces.len()).map(|i| i.to_string()).collect();
    assert_eq!(json_requests, sent, "every request is in the JSON");
    // The trace ids sent: on the request, its response and the segments of the exchange,
    // under the discovered project, with `trace_sampled` following the header's flag.
    for (i, trace) in traces.iter().enumerate() {
        let key = format!("projects/test-project/traces/{trace}");
        let (requests, responses, others, sampled) = traced
            .get(&key)
            .unwrap_or_else(|| panic!("trace {key} of request {i} is in no JSON line"));
        assert_eq!(*requests, 1, "request {i} carries its trace");
        assert_eq!(*responses, 1, "response {i} carries its request's trace");
        assert!(
            *others >= 1,
            "the ACK/FIN segments of exchange {i} carry its trace"
        );
        let flag = i % 2 == 0;
        assert!(
            sampled.iter().all(|s| *s == flag),
            "trace_sampled of request {i} is {flag}: {sampled:?}"
        );
    }
    eprintln!(
        "exports: {} pcap, {} json; app packets: reference {}, merged {}, dropped {dropped}; \
         JSON lines {json_packets}",
        pcaps.len(),
        jsons.len(),
        count(&expected),
        count(&seen)
    );
    assert!(
        json_packets + dropped >= count(&expected),
        "{json_packets} JSON packet lines for {} packets of the app's traffic",
        count(&expected)
    );
}

pub fn assert_bucket_path(located: &Value) -> String {
    let path = located["bucket_path"]
        .as_str()
        .expect("bucket_path")
        .to_string();
    let parts: Vec<&str> = path.split('/').collect();
    let config = MetadataConfig::default();
    assert_eq!(parts.len(), 6, "{path}");
    assert_eq!(parts[0], config.project_id);
    assert_eq!(parts[1], SERVICE);
    assert_eq!(parts[2], config.region);
    assert_eq!(parts[3], REVISION);
    assert!(
        parts[4].len() == 16 && parts[4].ends_with('Z') && parts[4].as_bytes()[8] == b'T',
        "timestamp segment {:?}",
        parts[4]
    );
    assert_eq!(parts[5], config.instance_id);
    path
}

/// Every object of the emulator's bucket, name → bytes.
pub fn read_bucket(gcs: &testbed::GcsEmulator) -> BTreeMap<String, Vec<u8>> {
    gcs.list_objects()
        .expect("list the bucket")
        .into_iter()
        .map(|o| {
            let bytes = gcs.read_object(&o.name).expect("read an object");
            assert_eq!(bytes.len() as u64, o.size, "{}", o.name);
            (o.name, bytes)
        })
        .collect()
}

/// Objects under `prefix/`, with the prefix removed; fails on anything outside it.
pub fn under_prefix(objects: BTreeMap<String, Vec<u8>>, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let outside: Vec<&String> = objects
        .keys()
        .filter(|n| !n.starts_with(&format!("{prefix}/")) && !n.ends_with('/'))
        .collect();
    assert!(outside.is_empty(), "objects outside {prefix}/: {outside:?}");
    objects
        .into_iter()
        .filter_map(|(name, bytes)| {
            let file = name.strip_prefix(&format!("{prefix}/"))?.to_string();
            (!file.is_empty() && !file.ends_with('/')).then_some((file, bytes))
        })
        .collect()
}

/// Checks the sidecar's last log lines after a SIGTERM: the summary is the last line, clean,
/// with files exported and none lost, and pcap-fsnotify's export summary lost nothing.
/// `dump` is the whole log, for failure messages.
pub fn check_summary(lines: &[Value], dump: &str) {
    let last = lines.last().expect("log lines");
    assert!(
        message(last).starts_with("shutdown complete in ") && message(last).ends_with("none lost"),
        "last line: {last}\n{dump}"
    );
    assert_eq!(last["clean"], true, "{last}");
    assert!(
        last["files"]["exported"].as_u64().unwrap_or(0) > 0,
        "{last}"
    );
    assert_eq!(
        last["files"]["not_exported"],
        serde_json::json!([]),
        "{last}"
    );
    let finished = lines
        .iter()
        .find(|l| message(l).starts_with("export finished"))
        .unwrap_or_else(|| panic!("no export summary:\n{dump}"));
    assert!(
        message(finished).contains("none lost"),
        "pcap-fsnotify lost files: {finished}"
    );
}
