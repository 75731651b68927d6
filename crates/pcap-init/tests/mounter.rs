//! Found by the fault-injection suite: after `kill -9` of the FUSE mounter, its
//! restart failed ("directory already mounted": the dead mount stayed, "transport endpoint
//! is not connected") and was given up, so nothing could be exported any more. pcap-init now
//! releases the dead mount when the mounter exits; this test failed before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::start;

fn wait(what: &str, lines: &Mutex<Vec<String>>, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if testbed::is_mounted(&self.0) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.0)
                .status();
        }
    }
}

#[test]
fn issue_14_a_killed_mounter_is_restarted_on_a_clean_mount_point() {
    testbed::check_fuse().expect("FUSE is required");
    let dir = tempfile::tempdir().unwrap();
    let emulator = testbed::GcsEmulator::start("pcap-bucket").unwrap();
    let mount = dir.path().join("pcap");
    let graph = format!(
        r#"
[[program]]
name = "mounter"
when = "fuse"
command = ["rclone", "mount", ":gcs:${{PCAP_GCS_BUCKET}}", "${{GCS_MOUNT}}", "--gcs-endpoint", "{endpoint}/storage/v1/", "--gcs-anonymous", "--vfs-cache-mode", "off", "--ignore-checksum", "--dir-cache-time", "1s", "--config", "/nonexistent"]
output = "wrap"
restart = {{ max_failures = 3 }}
stop_order = 1
[program.ready]
kind = "mount"
path = "${{GCS_MOUNT}}"
timeout_secs = 30
"#,
        endpoint = emulator.endpoint(),
    );
    std::fs::write(dir.path().join("graph.toml"), graph).unwrap();
    let mut init = start(dir.path(), &[("PCAP_GCS_BUCKET", "pcap-bucket")]);
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let stdout = init.child_mut().stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mounter_pids = |lines: &Mutex<Vec<String>>| -> Vec<u64> {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["message"] == "started mounter")
            .filter_map(|l| l["pid"].as_u64())
            .collect()
    };
    // Whatever happens, no mount is left behind.
    let _unmount = Unmount(mount.clone());
    wait("all programs started", &lines, || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("all programs started"))
    });
    let first = mounter_pids(&lines)[0];
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    wait("a restarted mounter", &lines, || {
        mounter_pids(&lines).len() >= 2
    });
    // The new mount works: a file written there becomes an object.
    wait("a working mount", &lines, || {
        std::fs::write(mount.join("probe.txt"), b"alive").is_ok()
            && emulator
                .list_objects()
                .is_ok_and(|o| o.iter().any(|o| o.name == "probe.txt"))
    });
    kill(Pid::from_raw(init.id() as i32), Signal::SIGTERM).unwrap();
    let status = init.child_mut().wait().unwrap();
    assert!(status.success(), "{}", lines.lock().unwrap().join("\n"));
    assert!(!testbed::is_mounted(&mount));
}
