//! Differential test of `L4.analysis` against tshark's `tcp.analysis.*` on real impaired TCP.
//!
//! The kernel's TCP on both ends, in two namespaces joined by a veth with MTU-sized segments
//! (`gso_max_size 1500`), random loss by iptables (`-m statistic --mode random`) on INPUT and
//! OUTPUT of both namespaces (3 % and 6 %), so segments are lost both before the capture point (the capture
//! never sees them: "previous segment not captured", "ACKed unseen segment") and after it
//! (retransmissions, duplicate ACKs, fast retransmissions). The workloads
//! (`resources/tcp_workloads.py`): HTTP/1.1 keep-alive exchanges, a slow reader with a tiny
//! receive buffer (zero windows, probes, window updates, full windows), an idle connection
//! with one-second TCP keep-alives, the same client port twice (reused ports), an abortive
//! close after data. tcpdump records the app side; a second file is crafted from it with
//! segments swapped and duplicated (reordering and duplication, which no iptables rule
//! makes). Both are read by `pcapd --read` and by tshark, and every TCP segment is compared
//! flag by flag: agreement must reach 99 % per flag, every disagreement is printed, and the
//! initial RTT (and ACK RTT) must be within 1 µs of tshark's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testbed::{ChildGuard, TestNet};

mod common;
use common::live::{clean_env, impair, read_lines, reference_tcpdump, spawn_ready, stop};
use common::reorder::{self, Crafting, Partner};

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");
const WORKLOADS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/resources/tcp_workloads.py"
);
const APP_V4: &str = "198.51.100.1";
const PORT: &str = "8080";

/// The flags compared, by their tshark names after `tcp.analysis.`.
const FLAGS: [&str; 15] = [
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
    "duplicate_ack",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_full",
    "window_update",
    "keep_alive",
    "keep_alive_ack",
    "reused_ports",
];
/// Values compared besides the flags.
const VALUES: [&str; 5] = [
    "duplicate_ack_num",
    "duplicate_ack_frame",
    "acks_frame",
    "ack_rtt",
    "initial_rtt",
];

/// Records the workloads into `file`, with `loss` on each chain.
fn capture(file: &Path, loss: &str) {
    let net = TestNet::new("tcp-analysis").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    impair(net.app(), loss);
    impair(net.peer(), loss);
    let tcpdump = reference_tcpdump(net.app(), file, "tcp");
    let mut server = spawn_ready(
        net.app()
            .command("python3")
            .args([WORKLOADS, "server", APP_V4, PORT])
            .stderr(Stdio::null()),
    );
    let mut client = net.peer().command("python3");
    client
        .args([WORKLOADS, "client", APP_V4, PORT])
        .stdout(Stdio::null());
    let mut client = ChildGuard::spawn(&mut client).unwrap();
    let status = client
        .wait_timeout(Duration::from_secs(180))
        .unwrap()
        .expect("the workloads finish");
    assert!(status.success(), "workloads: {status}");
    // The last FIN/ACKs and the server's TIME_WAIT-free close reach the capture.
    std::thread::sleep(Duration::from_millis(500));
    stop(tcpdump);
    server.kill().unwrap();
}

type Fields = BTreeMap<String, String>;

/// `pcapd --read`: each TCP packet's `L4.analysis` by frame number (tshark's, from 1).
fn ours(file: &Path) -> BTreeMap<u64, Fields> {
    let mut command = Command::new(BIN);
    clean_env(&mut command).stderr(Stdio::null());
    let mut map = BTreeMap::new();
    for v in read_lines(&mut command, file) {
        let Some(num) = v["pcap"]["num"].as_str() else {
            continue;
        };
        let frame = num.parse::<u64>().unwrap() + 1;
        let mut fields = Fields::new();
        if let Some(a) = v["L4"]["analysis"].as_object() {
            for (k, val) in a {
                let text = match (k.as_str(), val) {
                    ("duplicate_ack_frame" | "acks_frame", Value::Number(n)) => {
                        (n.as_u64().unwrap() + 1).to_string()
                    }
                    (_, Value::Bool(true)) => "1".into(),
                    (_, other) => other.to_string(),
                };
                fields.insert(k.clone(), text);
            }
        }
        map.insert(frame, fields);
    }
    map
}

/// tshark's `tcp.analysis.*` by frame number.
fn theirs(file: &Path) -> BTreeMap<u64, Fields> {
    let names: Vec<String> = FLAGS
        .iter()
        .chain(VALUES.iter())
        .map(|name| format!("tcp.analysis.{name}"))
        .collect();
    let mut fields: Vec<&str> = vec!["frame.number"];
    fields.extend(names.iter().map(String::as_str));
    let mut map = BTreeMap::new();
    for row in testbed::tshark::filtered(file, "tcp", &fields).unwrap() {
        let mut cols = row.into_iter();
        let frame = cols.next().unwrap().parse().unwrap();
        let mut fields = Fields::new();
        for (name, value) in FLAGS.iter().chain(VALUES.iter()).zip(cols) {
            if !value.is_empty() {
                fields.insert(name.to_string(), value);
            }
        }
        map.insert(frame, fields);
    }
    map
}

fn seconds(v: Option<&String>) -> Option<f64> {
    v.map(|s| s.parse::<f64>().unwrap())
}

/// Compares one capture; returns (flag, segments with it per tshark) for the coverage check.
fn compare(name: &str, file: &Path) -> BTreeMap<&'static str, usize> {
    let ours = ours(file);
    let theirs = theirs(file);
    assert!(
        theirs.len() > 500,
        "{name}: only {} TCP segments",
        theirs.len()
    );
    let empty = Fields::new();
    let mut seen = BTreeMap::new();
    let mut failures = Vec::new();
    println!("{name}: {} TCP segments", theirs.len());
    println!(
        "  {:<24} {:>7} {:>7} {:>9} agreement",
        "flag", "tshark", "pcapd", "disagree"
    );
    for flag in FLAGS {
        let mut disagree = Vec::new();
        let (mut t, mut o) = (0, 0);
        for (frame, tf) in &theirs {
            let of = ours.get(frame).unwrap_or(&empty);
            let (a, b) = (tf.contains_key(flag), of.contains_key(flag));
            t += usize::from(a);
            o += usize::from(b);
            if a != b {
                disagree.push(format!("#{frame} tshark={a} pcapd={b}"));
            }
        }
        let agreement = 1.0 - disagree.len() as f64 / theirs.len() as f64;
        println!(
            "  {flag:<24} {t:>7} {o:>7} {:>9} {:.4}",
            disagree.len(),
            agreement
        );
        for d in &disagree {
            println!("    disagreement {flag}: {d}");
        }
        if agreement < 0.99 {
            failures.push(format!("{flag}: agreement {agreement:.4}"));
        }
        seen.insert(flag, t);
    }
    // Duplicate-ACK numbers and frames, acknowledged frames: exact; RTTs within 1 µs.
    let mut value_disagreements = 0usize;
    let (mut rtts, mut worst_rtt, mut irtts, mut worst_irtt) = (0usize, 0f64, 0usize, 0f64);
    for (frame, tf) in &theirs {
        let of = ours.get(frame).unwrap_or(&empty);
        for key in ["duplicate_ack_num", "duplicate_ack_frame", "acks_frame"] {
            if tf.get(key) != of.get(key) {
                value_disagreements += 1;
                println!(
                    "    disagreement {key}: #{frame} tshark={:?} pcapd={:?}",
                    tf.get(key),
                    of.get(key)
                );
            }
        }
        match (seconds(tf.get("ack_rtt")), seconds(of.get("ack_rtt"))) {
            (Some(a), Some(b)) => {
                rtts += 1;
                worst_rtt = worst_rtt.max((a - b).abs());
            }
            (None, None) => {}
            (a, b) => {
                value_disagreements += 1;
                println!("    disagreement ack_rtt: #{frame} tshark={a:?} pcapd={b:?}");
            }
        }
        // pcapd writes the initial RTT once, on the segment completing the handshake;
        // tshark repeats it on every later segment.
        if let Some(b) = seconds(of.get("initial_rtt")) {
            match seconds(tf.get("initial_rtt")) {
                Some(a) => {
                    irtts += 1;
                    worst_irtt = worst_irtt.max((a - b).abs());
                }
                None => {
                    value_disagreements += 1;
                    println!("    disagreement initial_rtt: #{frame} tshark=None pcapd={b}");
                }
            }
        }
    }
    println!(
        "  ACK RTTs compared {rtts}, worst difference {:.3} µs; initial RTTs compared {irtts}, worst difference {:.3} µs; value disagreements {value_disagreements}",
        worst_rtt * 1e6,
        worst_irtt * 1e6
    );
    assert!(worst_rtt < 1e-6 && worst_irtt < 1e-6, "{name}: RTTs differ");
    assert!(irtts >= 3, "{name}: handshakes seen");
    let checked = theirs.len() * 3;
    assert!(
        (value_disagreements as f64) < 0.01 * checked as f64,
        "{name}: {value_disagreements} value disagreements"
    );
    assert!(failures.is_empty(), "{name}: {failures:?}");
    seen
}

#[test]
fn tcp_analysis_agrees_with_tshark_on_impaired_kernel_tcp() {
    let tmp = tempfile::tempdir().unwrap();
    // TCP_ANALYSIS_KEEP=1 keeps the captures (their directory is printed) for a closer look.
    let (dir, _cleanup) = if std::env::var_os("TCP_ANALYSIS_KEEP").is_some() {
        (tmp.keep(), None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    println!("captures in {}", dir.display());
    let lossy = dir.join("lossy.pcap");
    let lossier = dir.join("lossier.pcap");
    let crafted = dir.join("reordered.pcap");
    capture(&lossy, "0.03");
    capture(&lossier, "0.06");
    // In every 40th TCP data segment, it and the next data segment of the same direction
    // are swapped; every 57th is sent twice.
    reorder::craft(
        &lossy,
        &crafted,
        Crafting {
            swap_every: 40,
            partner: Partner::FirstData,
            dup_every: 57,
        },
    );
    let mut seen = compare("3 % loss per chain", &lossy);
    for (name, file) in [
        ("6 % loss per chain", &lossier),
        ("3 % loss, reordered and duplicated", &crafted),
    ] {
        for (flag, n) in compare(name, file) {
            *seen.entry(flag).or_default() += n;
        }
    }
    // The workloads exercise the flags they are there for (by tshark's count).
    for flag in [
        "retransmission",
        "out_of_order",
        "lost_segment",
        "duplicate_ack",
        "zero_window",
        "window_update",
        "keep_alive",
        "keep_alive_ack",
        "reused_ports",
    ] {
        assert!(seen[flag] > 0, "no {flag} in the captures: {seen:?}");
    }
}
