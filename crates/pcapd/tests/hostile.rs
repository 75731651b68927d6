//! Hostile traffic cannot exhaust `pcapd`. Each case writes a pcap file with a
//! generator from `common::hostile`, runs the real `pcapd --read` with defaults, and checks
//! the bounds: peak RSS of the child ≤ 96 MiB, no line over the entry limit (200 KiB), one
//! line per packet, nothing dropped, bounded time. Also: an offline read is complete
//! whatever stops it (no drain deadline for files).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::hostile::{self, assert_bounded, read_measured, under_test, write_file};
use common::live::clean_env;
use testbed::synth;

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");

fn file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn http_frames(v: &Value) -> bool {
    v["HTTP"]["proto"] == "HTTP/2"
}

/// A stop requested during `--read` (SIGTERM, Ctrl-C) stops reading the file,
/// but everything read is translated, however slowly stdout is consumed: no drain deadline
/// applies to files (before, what the 2 s drain budget — here 10 ms — did not reach was
/// dropped as `shutdown_dropped`).
#[test]
fn offline_read_translates_everything_read_even_after_sigterm_and_a_slow_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "mixed.pcap");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    synth::write_pcap(&mut out, 20_000, 11).unwrap();
    std::io::Write::flush(&mut out).unwrap();
    drop(out);
    let mut child = testbed::ChildGuard::new(
        clean_env(&mut Command::new(under_test(BIN)))
            .args(["--queue-mib", "1", "--drain-ms", "10", "--read"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.child_mut().stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut reader = BufReader::new(child.child_mut().stdout.take().unwrap());
    let mut line = String::new();
    let mut lines = 0u64;
    // Read a little, so the queue is full and translation waits on stdout.
    while lines < 1_000 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        lines += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // Longer than the 10 ms drain budget before reading on.
    std::thread::sleep(Duration::from_millis(500));
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        assert!(line.ends_with('\n'));
        lines += 1;
    }
    let status = child.wait_timeout(Duration::from_secs(120)).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let stderr = stderr.join().unwrap();
    let stats: Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "pcapd stats" && v["final"] == true)
        .expect("final stats");
    let received = stats["received"].as_u64().unwrap();
    assert!(
        received > 2_000,
        "the file was still being read at SIGTERM: {stats}"
    );
    assert_eq!(stats["shutdown_dropped"], 0, "{stats}");
    assert_eq!(lines, received, "one line per packet read: {stats}");
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
}

/// The measured HPACK bomb: 11.3 GB RSS and 122 MB lines before the decoded-size caps.
#[test]
fn hpack_bomb_of_the_issue_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "bomb.pcap");
    let packets = write_file(&path, |w| hostile::hpack_bomb(w, 300));
    let run = read_measured(BIN, &path, &[], Some(&http_frames));
    assert_bounded("hpack bomb", &run, packets, Duration::from_secs(60));
    // The caps are visible: in the entries and in the stats line.
    let truncated = run
        .kept
        .iter()
        .filter(|v| {
            v["HTTP"]["frames"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["headers_truncated"] == true))
        })
        .count();
    assert!(
        truncated >= 300,
        "{truncated} entries mark a cut header list"
    );
    assert!(run.stats["h2_header_lists_truncated"].as_u64().unwrap() >= 3_000);
    assert!(run.stats["h2_header_fields_omitted"].as_u64().unwrap() > 0);
}

#[test]
fn hpack_table_size_games_and_huffman_edges_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "games.pcap");
    let packets = write_file(&path, |w| hostile::hpack_games(w, 300));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("hpack games", &run, packets, Duration::from_secs(60));
}

#[test]
fn continuation_flood_stays_bounded_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "continuation.pcap");
    let packets = write_file(&path, |w| hostile::continuation_flood(w, 300));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("continuation flood", &run, packets, Duration::from_secs(60));
    assert!(run.stats["h2_continuation_floods"].as_u64().unwrap() >= 1);
}

#[test]
fn rapid_reset_flood_stays_bounded_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "reset.pcap");
    let packets = write_file(&path, |w| hostile::rapid_reset(w, 300));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("rapid reset", &run, packets, Duration::from_secs(60));
    assert!(run.stats["h2_streams_skipped"].as_u64().unwrap() > 0);
}

/// The 177 MiB case: 20,000 h2c connections each leaving a 4 KB dynamic-table entry
/// and a partly received frame. The state budget (32 MiB) evicts the least recently used.
#[test]
fn twenty_thousand_h2c_connections_holding_state_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "state.pcap");
    let packets = write_file(&path, |w| hostile::h2_state_flood(w, 20_000, 4_000));
    let evicted = |v: &Value| v["state_evicted"] == true;
    let run = read_measured(BIN, &path, &[], Some(&evicted));
    assert_bounded("h2c state flood", &run, packets, Duration::from_secs(120));
    let budget = run.stats["state_budget_bytes"].as_u64().unwrap();
    assert_eq!(budget, 32 << 20);
    assert!(
        run.stats["state_evicted_flows"].as_u64().unwrap() > 0,
        "{}",
        run.stats
    );
    // The budget holds (give or take one packet's growth per worker).
    let peak = run.stats["state_peak_bytes"].as_u64().unwrap();
    assert!(peak <= budget + (1 << 20), "{}", run.stats);
    // Each worker gave its share back at the end.
    assert_eq!(run.stats["state_bytes"], 0, "{}", run.stats);
    // The first connection's state was evicted: its last request says so, and the
    // reference to its dynamic entry is listed as unknown.
    let last = run.kept.last().expect("entries of evicted flows");
    let frame = &last["HTTP"]["frames"][0];
    assert_eq!(frame["unknown_dynamic"], serde_json::json!([62]), "{last}");
    assert_eq!(frame["hpack_unsynced"], true, "{last}");
}

/// Out-of-order segments waiting for gaps that never fill: 2,000 connections × 150
/// segments of 1.4 kB (420 MB if held) stay within the state budget; the per-connection
/// bound and the eviction are counted.
#[test]
fn out_of_order_segments_held_for_gaps_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "held.pcap");
    let packets = write_file(&path, |w| hostile::out_of_order_flood(w, 2_000, 150));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded(
        "out-of-order flood",
        &run,
        packets,
        Duration::from_secs(120),
    );
    let stat = |k: &str| {
        run.stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {}", run.stats))
    };
    let budget = stat("state_budget_bytes");
    eprintln!(
        "held {} over budget {} B evicted flows {} peak {} B of {budget}",
        stat("tcp_stream_held_segments"),
        stat("tcp_stream_over_budget_bytes"),
        stat("state_evicted_flows"),
        stat("state_peak_bytes")
    );
    assert!(stat("tcp_stream_held_segments") > 100_000, "{}", run.stats);
    // 128 segments per connection at most: the rest are not held, and counted.
    assert!(
        stat("tcp_stream_over_budget_bytes") >= 2_000 * 22 * 1_400,
        "{}",
        run.stats
    );
    assert!(stat("state_evicted_flows") > 0, "{}", run.stats);
    assert!(
        stat("state_peak_bytes") <= budget + (1 << 20),
        "{}",
        run.stats
    );
    assert_eq!(stat("state_bytes"), 0, "{}", run.stats);
}

/// The entry-size guard: with a small `PCAP_MAX_ENTRY_BYTES`, entries of the HPACK bomb are
/// cut least important first, marked, counted; the envelope stays whole.
#[test]
fn entries_over_the_configured_size_are_cut_marked_and_keep_their_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "bomb.pcap");
    let packets = write_file(&path, |w| hostile::hpack_bomb(w, 50));
    let truncated = |v: &Value| v.get("truncated").is_some();
    let run = read_measured(
        BIN,
        &path,
        &[("PCAP_MAX_ENTRY_BYTES", "8192")],
        Some(&truncated),
    );
    assert_eq!(run.lines, packets);
    assert!(run.max_line <= 8192, "a line of {} bytes", run.max_line);
    assert!(run.kept.len() >= 50, "{} entries cut", run.kept.len());
    assert_eq!(
        run.stats["entries_cut"].as_u64(),
        Some(run.kept.len() as u64),
        "{}",
        run.stats
    );
    for v in &run.kept {
        let t = &v["truncated"];
        assert_eq!(t["limit"], 8192);
        assert!(t["size"].as_u64().unwrap() > 8192);
        assert_eq!(t["cut"][0], "raw", "least important first: {t}");
        for key in ["severity", "message", "pcap", "timestamp", "flow"] {
            assert!(v.get(key).is_some(), "{key} kept: {v}");
        }
        assert!(v["pcap"]["num"].is_string() && v["pcap"]["date"].is_string());
    }
}

#[test]
fn a_million_tiny_flows_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "tiny.pcap");
    let packets = write_file(&path, |w| hostile::tiny_flows(w, 1_000_000));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("tiny flows", &run, packets, Duration::from_secs(120));
}

#[test]
fn very_many_headers_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "headers.pcap");
    let packets = write_file(&path, |w| hostile::many_headers(w, 50));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("many headers", &run, packets, Duration::from_secs(60));
}

#[test]
fn pipelined_http1_flood_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "pipelined.pcap");
    let packets = write_file(&path, |w| hostile::pipelined_http1(w, 2_000));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("pipelined HTTP/1", &run, packets, Duration::from_secs(60));
}

#[test]
fn dns_compression_chains_and_loops_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "dns.pcap");
    let packets = write_file(&path, |w| hostile::dns_chains(w, 2_000));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("DNS chains", &run, packets, Duration::from_secs(60));
}

#[test]
fn tls_hellos_with_thousands_of_extensions_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "tls.pcap");
    let packets = write_file(&path, |w| hostile::tls_hellos(w, 1_000));
    let run = read_measured(BIN, &path, &[], None);
    assert_bounded("TLS hellos", &run, packets, Duration::from_secs(60));
}

/// Redaction holds at any segment boundary. Every cut point of HTTP/1.1 and h2c
/// requests and responses carrying Authorization, Cookie, Set-Cookie and a configured header
/// (also as HPACK dynamic-table references), split in two or joined mid-way; no secret
/// appears anywhere in the output, whole or in part, as text or hex, at DEBUG and INFO.
#[test]
fn redaction_holds_at_every_cut_point_http1_and_h2c() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "cuts.pcap");
    let secrets = hostile::secrets(13);
    let packets = write_file(&path, |w| hostile::redaction_corpus(w, &secrets));
    for verbosity in ["DEBUG", "INFO"] {
        let out = clean_env(&mut Command::new(under_test(BIN)))
            .env("PCAP_REDACT_HEADERS", "X-Api-Key")
            .env("PCAP_VERBOSITY", verbosity)
            .arg("--read")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stdout.lines().count() as u64, packets, "{verbosity}");
        let leaked = hostile::leaks(&stdout, &secrets);
        if !leaked.is_empty() {
            let line = stdout
                .lines()
                .find(|l| !hostile::leaks(l, &secrets).is_empty())
                .unwrap();
            panic!(
                "{verbosity}: {} leaks, e.g. {:?} in {line}",
                leaked.len(),
                &leaked[..leaked.len().min(5)]
            );
        }
        assert!(hostile::leaks(&stderr, &secrets).is_empty());
        // The redaction is visible where the headers were decoded (DEBUG lists headers).
        if verbosity == "DEBUG" {
            assert!(stdout.contains("[REDACTED]"));
        }
    }
}
