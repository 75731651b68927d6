//! One shutdown deadline for the whole process graph.
//!
//! Before the fix pcap-init stopped programs one after another and killed pcap-fsnotify when
//! its share of `PCAP_SHUTDOWN_SECS` was spent, while pcap-fsnotify planned its drain with
//! the whole `PCAP_SHUTDOWN_SECS` from its own SIGTERM: behind a capture program that took
//! 3 s of a 5 s budget to stop, the exporter was SIGKILLed mid-drain and no report named the
//! files it had not exported (this test failed: "no export report").
//!
//! Needs the workspace's `pcap-fsnotify` binary next to `pcap-init` (`cargo build -p
//! pcap-fsnotify`; `cargo test --workspace` builds it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use common::{assert_fsnotify_built, json_lines, start};

#[test]
fn issue_14_the_exporter_reports_every_unexported_file_before_pcap_init_kills_it() {
    assert_fsnotify_built();
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("capture.started");
    // The bucket is never mounted: every export fails (retryably) until the deadline.
    let graph = format!(
        r#"
[[program]]
name = "pcap-fsnotify"
command = ["${{BIN_DIR}}/pcap-fsnotify", "--bucket-path", "${{BUCKET_PATH}}"]
restart = {{ max_failures = 5 }}
stop_order = 2
drain = true
[program.ready]
kind = "file"
path = "fsnotify.ready"
timeout_secs = 20

[[program]]
name = "capture"
command = ["/bin/sh", "-c", "trap 'sleep 3; exit 0' TERM; touch {started}; sleep 1000 & wait"]
stop_order = 1
"#,
        started = started.display()
    );
    std::fs::write(dir.path().join("graph.toml"), graph).unwrap();
    let capture_dir = dir.path().join("pcap-tmp");
    std::fs::create_dir_all(&capture_dir).unwrap();
    let files = [
        "eth0_part_20260101T000001Z.pcap",
        "eth0_part_20260101T000002Z.pcap",
    ];
    for file in files {
        std::fs::write(capture_dir.join(file), vec![7u8; 100_000]).unwrap();
    }
    let mut init = start(dir.path(), &[("PCAP_GCS_BUCKET", "never-mounted")]);
    let reader = json_lines(init.child_mut().stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the graph did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    kill(Pid::from_raw(init.id() as i32), Signal::SIGTERM).unwrap();
    let status = init.child_mut().wait().unwrap();
    let took = signalled.elapsed();
    let lines = reader.join().unwrap();
    let text = || {
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(status.code(), Some(1), "files were lost: not 0\n{}", text());
    assert!(took < Duration::from_millis(5500), "{took:?}\n{}", text());
    // The exporter's own report, before its kill, naming both files.
    let report = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("export finished"))
        })
        .unwrap_or_else(|| panic!("no report from the exporter\n{}", text()));
    assert_eq!(report["not_exported"], serde_json::json!(files));
    // Its exit 1 after the drain is its report, not a death: it is not started again (a
    // second exporter would export after the report, and nothing would record it).
    assert!(
        !lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("was waiting for its restart at shutdown"))),
        "{}",
        text()
    );
    let drain = lines
        .iter()
        .find(|l| l["message"] == "shutdown: exporting every remaining file")
        .unwrap();
    assert_eq!(drain["deadline_from"], "pcap-init");
    // pcap-init's last line carries it, and the exporter was not killed.
    let last = lines.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("0 files exported, 2 not exported"),
        "{last}"
    );
    let exporter = last["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["program"] == "pcap-fsnotify")
        .unwrap();
    assert_eq!(exporter["exit"], "exit code 1", "{exporter}");
}

/// Found by the fault-injection suite: SIGTERM while the exporter waited for its
/// restart (killed a moment before) stopped nothing and drained nothing — "no export report",
/// every file left unexported. A program marked `drain` is started once more to drain.
#[test]
fn issue_14_an_exporter_killed_just_before_sigterm_is_started_again_to_drain() {
    assert_fsnotify_built();
    let dir = tempfile::tempdir().unwrap();
    let graph = r#"
[[program]]
name = "pcap-fsnotify"
command = ["${BIN_DIR}/pcap-fsnotify", "--bucket-path", "${BUCKET_PATH}"]
stop_order = 1
drain = true
[program.ready]
kind = "file"
path = "fsnotify.ready"
timeout_secs = 20
"#;
    std::fs::write(dir.path().join("graph.toml"), graph).unwrap();
    let mut init = start(dir.path(), &[]);
    let reader = json_lines(init.child_mut().stdout.take().unwrap());
    let ready = dir.path().join("run/fsnotify.ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the exporter did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signal: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    let exporter = i32::try_from(signal["pid"].as_u64().unwrap()).unwrap();
    // Files closed while the exporter is down, then the exporter dies and SIGTERM follows.
    let capture_dir = dir.path().join("pcap-tmp");
    kill(Pid::from_raw(exporter), Signal::SIGKILL).unwrap();
    let files = [
        "eth0_part_20260101T000001Z.pcap",
        "eth0_part_20260101T000002Z.pcap",
    ];
    for file in files {
        std::fs::write(capture_dir.join(file), vec![7u8; 100_000]).unwrap();
    }
    kill(Pid::from_raw(init.id() as i32), Signal::SIGTERM).unwrap();
    let status = init.child_mut().wait().unwrap();
    let lines = reader.join().unwrap();
    let text = lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(status.code(), Some(0), "{text}");
    let last = lines.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("2 files exported, none lost"),
        "{text}"
    );
    for file in files {
        assert!(!capture_dir.join(file).exists(), "{file} left behind");
    }
}
