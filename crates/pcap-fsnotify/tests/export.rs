//! Drives the real `pcap-fsnotify` binary against real destinations: a plain directory, an
//! rclone FUSE mount of a fake-gcs-server bucket, and the fake-gcs-server JSON API, with
//! faults (emulator down, mount gone, unreadable files) and SIGTERM drains.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use sidecar_core::readiness::{self, FSNOTIFY_READY_FILE};
use testbed::pcapgen;
use testbed::{FuseMount, GcsEmulator, MetadataServer};

const BUCKET_PATH: &str = "proj/svc/us-central1/svc-00001-abc/20260101T000000Z/inst-1";

struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    root: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts the binary with `GCS_MOUNT=<root>/pcap` (capture dir `<root>/pcap-tmp`) and
    /// waits for its "watch installed" signal.
    fn start(root: &Path, env: &[(&str, String)]) -> Daemon {
        fs::create_dir_all(root.join("pcap")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pcap-fsnotify"))
            .env_clear()
            .env("GCS_MOUNT", root.join("pcap"))
            .env("PCAP_RUN_DIR", root.join("run"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--bucket-path", BUCKET_PATH])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let daemon = Daemon {
            child,
            lines,
            root: root.to_path_buf(),
        };
        let run = root.join("run");
        daemon.wait(
            "the watch-installed signal",
            Duration::from_secs(20),
            || readiness::check_named(&run, FSNOTIFY_READY_FILE).is_ready(),
        );
        daemon
    }

    /// An exporter with a 1 MiB backlog budget, copying files as they are (no gzip).
    fn start_over_budget(root: &Path) -> Daemon {
        Daemon::start(
            root,
            &[
                ("PCAP_BACKLOG_MB", "1".into()),
                ("PCAP_COMPRESS", "false".into()),
            ],
        )
    }

    fn capture_dir(&self) -> PathBuf {
        self.root.join("pcap-tmp")
    }

    fn export_dir(&self) -> PathBuf {
        self.root.join("pcap").join(BUCKET_PATH)
    }

    fn logs(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    fn wait(&self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}; log:\n{}",
            self.lines.lock().unwrap().join("\n")
        );
    }

    fn sigterm(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}; log:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status (within `timeout`) and the final summary line.
    fn stop(&mut self, timeout: Duration) -> (ExitStatus, Value) {
        self.sigterm();
        let status = self.wait_exit(timeout);
        (status, self.summary())
    }

    /// Waits (`timeout` at most) until `n` files are exported into `export`.
    fn wait_finished(&self, what: &str, export: &Path, n: usize, timeout: Duration) {
        self.wait(what, timeout, || finished(export) == n);
    }

    /// The final summary line.
    fn summary(&self) -> Value {
        self.logs()
            .into_iter()
            .rev()
            .find(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("export finished"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no summary; log:\n{}",
                    self.lines.lock().unwrap().join("\n")
                )
            })
    }
}

fn name(iface: &str, second: u32) -> String {
    format!("{iface}_part_20260101T0000{second:02}Z.pcap")
}

/// Writes a capture file the way a writer does: create, write, close.
fn write_capture(dir: &Path, file: &str, bytes: &[u8]) {
    let mut handle = fs::File::create(dir.join(file)).unwrap();
    handle.write_all(bytes).unwrap();
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Every file under `dir`, relative, with its bytes — except the completeness manifest
/// (`MANIFEST*.jsonl`, written at the drain's end; its own test checks it).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let leaf = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(base, &path, out);
            } else if !(leaf.starts_with("MANIFEST") && leaf.ends_with(".jsonl")) {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                match fs::read(&path) {
                    Ok(bytes) => {
                        out.insert(rel, bytes);
                    }
                    // A temporary upload file renamed between the listing and the read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// How many files under `dir` carry a final name: an upload in flight is a
/// hidden `.partial` file that must not count as exported.
fn finished(dir: &Path) -> usize {
    tree(dir)
        .keys()
        .filter(|rel| !rel.rsplit('/').next().unwrap_or(rel).starts_with('.'))
        .count()
}

fn capture_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn directory_destination_exports_each_closed_file_once_and_waits_for_open_ones() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(root.path(), &[("PCAP_COMPRESS", "true".into())]);
    let capture = daemon.capture_dir();
    let mut originals = BTreeMap::new();
    // A file still being written: must not be exported until its writer closes it.
    let open_name = name("eth0", 0);
    let mut writer = fs::File::create(capture.join(&open_name)).unwrap();
    let open_bytes = pcapgen::pcap_bytes(99, 300_000);
    writer.write_all(&open_bytes[..100_000]).unwrap();
    for i in 1..=5 {
        let bytes = pcapgen::pcap_bytes(i, 200_000 + i as usize * 10_000);
        write_capture(&capture, &name("eth0", i as u32), &bytes);
        originals.insert(name("eth0", i as u32), bytes);
    }
    fs::write(capture.join("notes.txt"), b"not a capture file").unwrap();
    let export = daemon.export_dir();
    daemon.wait_finished("5 exported files", &export, 5, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !export.join(format!("{open_name}.gz")).exists(),
        "an open file was exported"
    );
    writer.write_all(&open_bytes[100_000..]).unwrap();
    drop(writer);
    originals.insert(open_name.clone(), open_bytes);
    daemon.wait_finished("the closed file", &export, 6, Duration::from_secs(30));
    let exported = tree(&export);
    assert_eq!(
        exported.keys().cloned().collect::<Vec<_>>(),
        originals
            .keys()
            .map(|n| format!("{n}.gz"))
            .collect::<Vec<_>>(),
        "every file once, under its final name, no temporary files"
    );
    for (file, bytes) in &originals {
        assert_eq!(&gunzip(&exported[&format!("{file}.gz")]), bytes, "{file}");
    }
    daemon.wait("local files deleted", Duration::from_secs(10), || {
        capture_files(&capture) == vec!["notes.txt".to_string()]
    });
    let (status, summary) = daemon.stop(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert_eq!(summary["exported"], 6);
    assert_eq!(summary["not_exported"], serde_json::json!([]));
    assert_eq!(summary["severity"], "NOTICE");
    // Every export was logged with its file name.
    let logged: Vec<String> = daemon
        .logs()
        .iter()
        .filter(|l| l["message"] == "exported")
        .map(|l| l["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(logged.len(), 6);
}

#[test]
fn startup_scan_exports_leftovers_and_waits_for_a_file_still_being_written() {
    let root = tempfile::tempdir().unwrap();
    let capture = root.path().join("pcap-tmp");
    fs::create_dir_all(&capture).unwrap();
    let left = pcapgen::pcap_bytes(1, 150_000);
    write_capture(&capture, &name("eth0", 1), &left);
    let growing = pcapgen::pcap_bytes(2, 150_000);
    let mut writer = fs::File::create(capture.join(name("eth0", 2))).unwrap();
    writer.write_all(&growing[..50_000]).unwrap();
    let mut daemon = Daemon::start(root.path(), &[("PCAP_COMPRESS", "false".into())]);
    let export = daemon.export_dir();
    daemon.wait("the leftover file", Duration::from_secs(30), || {
        export.join(name("eth0", 1)).exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!export.join(name("eth0", 2)).exists());
    writer.write_all(&growing[50_000..]).unwrap();
    drop(writer);
    daemon.wait("the completed file", Duration::from_secs(30), || {
        export.join(name("eth0", 2)).exists()
    });
    assert_eq!(fs::read(export.join(name("eth0", 1))).unwrap(), left);
    assert_eq!(fs::read(export.join(name("eth0", 2))).unwrap(), growing);
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
    assert!(capture_files(&capture).is_empty());
}

#[test]
fn unreadable_files_are_reported_and_the_others_still_exported() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(root.path(), &[]);
    let capture = daemon.capture_dir();
    // A directory and a FIFO with capture-file names: root can open anything, not these.
    let dir_name = name("eth0", 1);
    fs::create_dir(capture.join(&dir_name)).unwrap();
    let fifo_name = name("lo", 2);
    nix::unistd::mkfifo(
        &capture.join(&fifo_name),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for i in 3..=5 {
        write_capture(
            &capture,
            &name("eth0", i),
            &pcapgen::pcap_bytes(i.into(), 50_000),
        );
    }
    // The FIFO and the directory emit no close event: the periodic/shutdown scan finds them.
    let export = daemon.export_dir();
    daemon.wait_finished("3 exported files", &export, 3, Duration::from_secs(30));
    let (status, summary) = daemon.stop(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "something was not exported");
    assert_eq!(summary["exported"], 3);
    let mut missing: Vec<String> = summary["not_exported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    missing.sort();
    assert_eq!(missing, vec![dir_name.clone(), fifo_name.clone()]);
    let errors: Vec<Value> = daemon
        .logs()
        .into_iter()
        .filter(|l| l["severity"] == "ERROR" && l["kind"] == "not-a-file")
        .collect();
    for file in [&dir_name, &fifo_name] {
        assert!(
            errors.iter().any(|l| l["file"] == file.as_str()),
            "{file} reported: {errors:?}"
        );
    }
    // Kept, not deleted.
    assert!(capture.join(&dir_name).is_dir());
    assert!(capture.join(&fifo_name).exists());
}

#[test]
fn sigterm_drains_50_mb_in_five_files_within_3_s() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        root.path(),
        &[
            ("PCAP_COMPRESS", "true".into()),
            ("PCAP_SHUTDOWN_SECS", "3".into()),
        ],
    );
    let capture = daemon.capture_dir();
    // Five capture files still being written when SIGTERM arrives, like tcpdump's current
    // files; their writers close them shortly after (tcpdump stopping).
    let mut writers = Vec::new();
    let mut originals = BTreeMap::new();
    for i in 0..5u32 {
        let bytes = pcapgen::pcap_bytes(u64::from(i) + 10, 10 * 1024 * 1024);
        let file = format!("eth{i}_part_20260101T000000Z.pcap");
        let mut writer = fs::File::create(capture.join(&file)).unwrap();
        writer.write_all(&bytes).unwrap();
        writers.push(writer);
        originals.insert(file, bytes);
    }
    let started = Instant::now();
    daemon.sigterm();
    std::thread::sleep(Duration::from_millis(200));
    drop(writers);
    let status = daemon.wait_exit(Duration::from_secs(10));
    let elapsed = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(elapsed < Duration::from_secs(3), "drain took {elapsed:?}");
    let exported = tree(&daemon.export_dir());
    assert_eq!(exported.len(), 5, "{:?}", exported.keys());
    for (file, bytes) in &originals {
        // Compressed when the time budget allowed it, as is otherwise.
        match exported.get(&format!("{file}.gz")) {
            Some(gz) => assert_eq!(&gunzip(gz), bytes),
            None => assert_eq!(exported.get(file), Some(bytes), "{file}"),
        }
    }
    let summary = daemon.summary();
    eprintln!("drain finished {elapsed:?} after SIGTERM: {summary}");
    assert_eq!(summary["exported"], 5);
    assert!(capture_files(&capture).is_empty());
}

#[test]
fn fuse_mount_destination_puts_every_file_in_the_bucket_and_survives_an_unmount() {
    if let Err(reason) = testbed::check_fuse() {
        panic!("FUSE is required for this test: {reason}");
    }
    let root = tempfile::tempdir().unwrap();
    let gcs = GcsEmulator::start("pcap-bucket").unwrap();
    let mut mount = FuseMount::rclone(&gcs, &root.path().join("pcap")).unwrap();
    let mut daemon = Daemon::start(
        root.path(),
        &[
            ("PCAP_GCS_BUCKET", "pcap-bucket".into()),
            ("PCAP_GCS_FUSE", "true".into()),
            ("PCAP_COMPRESS", "true".into()),
        ],
    );
    let capture = daemon.capture_dir();
    let mut originals = BTreeMap::new();
    for i in 1..=3u32 {
        let bytes = pcapgen::pcap_bytes(i.into(), 300_000);
        write_capture(&capture, &name("eth0", i), &bytes);
        originals.insert(name("eth0", i), bytes);
    }
    let objects = |gcs: &GcsEmulator| -> Vec<String> {
        let mut names: Vec<String> = gcs
            .list_objects()
            .map(|list| list.into_iter().map(|o| o.name).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    // A rename on the mount is a copy, then a delete: wait until no temporary object is
    // left beside the final ones.
    let settled = |gcs: &GcsEmulator, n: usize| {
        let names = objects(gcs);
        names.len() == n && names.iter().all(|o| !o.contains(".partial-"))
    };
    daemon.wait("3 objects", Duration::from_secs(60), || settled(&gcs, 3));

    // The mount goes away: files must wait (and be reported), not land in the bare directory.
    mount.unmount().unwrap();
    fs::create_dir_all(root.path().join("pcap")).unwrap();
    for i in 4..=5u32 {
        let bytes = pcapgen::pcap_bytes(i.into(), 300_000);
        write_capture(&capture, &name("eth0", i), &bytes);
        originals.insert(name("eth0", i), bytes);
    }
    daemon.wait("failures reported", Duration::from_secs(30), || {
        daemon.logs().iter().any(|l| {
            l["message"] == "export failed; will retry" && l["file"] == name("eth0", 4).as_str()
        })
    });
    assert!(
        tree(&root.path().join("pcap")).is_empty(),
        "nothing written to the bare directory"
    );
    assert!(capture.join(name("eth0", 4)).exists());
    let _mount = FuseMount::rclone(&gcs, &root.path().join("pcap")).unwrap();
    daemon.wait("5 objects after remount", Duration::from_secs(60), || {
        settled(&gcs, 5)
    });
    let expected: Vec<String> = originals
        .keys()
        .map(|n| format!("{BUCKET_PATH}/{n}.gz"))
        .collect();
    assert_eq!(objects(&gcs), expected, "once each, final names only");
    for (file, bytes) in &originals {
        let object = gcs
            .read_object(&format!("{BUCKET_PATH}/{file}.gz"))
            .unwrap();
        assert_eq!(&gunzip(&object), bytes, "{file}");
    }
    daemon.wait("local files deleted", Duration::from_secs(10), || {
        capture_files(&capture).is_empty()
    });
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
}

/// The environment of an upload through the JSON API to `bucket` of the emulator `gcs`,
/// with credentials from `metadata`.
fn api_env(
    bucket: &str,
    gcs: &GcsEmulator,
    metadata: &MetadataServer,
) -> Vec<(&'static str, String)> {
    vec![
        ("PCAP_GCS_BUCKET", bucket.into()),
        ("PCAP_GCS_FUSE", "false".into()),
        ("STORAGE_EMULATOR_HOST", gcs.endpoint()),
        ("GCE_METADATA_HOST", metadata.host()),
    ]
}

#[test]
fn api_destination_uploads_once_never_overwrites_and_survives_20_s_outage() {
    let root = tempfile::tempdir().unwrap();
    let mut gcs = GcsEmulator::start("api-bucket").unwrap();
    let metadata = MetadataServer::start().unwrap();
    // An object that already holds the first file's name with other content.
    let taken = format!("{BUCKET_PATH}/{}.gz", name("eth0", 1));
    gcs.upload_object(&taken, b"someone else's object").unwrap();
    let mut env = api_env("api-bucket", &gcs, &metadata);
    env.push(("PCAP_COMPRESS", "true".into()));
    let mut daemon = Daemon::start(root.path(), &env);
    let capture = daemon.capture_dir();
    let mut originals = BTreeMap::new();
    let write = |i: u32, originals: &mut BTreeMap<String, Vec<u8>>| {
        let bytes = pcapgen::pcap_bytes(i.into(), 200_000);
        write_capture(&capture, &name("eth0", i), &bytes);
        originals.insert(name("eth0", i), bytes);
    };
    for i in 1..=3 {
        write(i, &mut originals);
    }
    let count = |gcs: &GcsEmulator| gcs.list_objects().map(|l| l.len()).unwrap_or(0);
    daemon.wait("3 uploads", Duration::from_secs(30), || count(&gcs) == 4);

    // The API goes away for 20 s while files keep arriving.
    gcs.stop().unwrap();
    let outage = Instant::now();
    let mut i = 4;
    while outage.elapsed() < Duration::from_secs(20) {
        write(i, &mut originals);
        i += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    gcs.restart().unwrap();
    let total = originals.len() + 1;
    daemon.wait(
        "every upload after the outage",
        Duration::from_secs(60),
        || count(&gcs) == total,
    );
    let capture = daemon.capture_dir();
    daemon.wait("local files deleted", Duration::from_secs(10), || {
        capture_files(&capture).is_empty()
    });
    // The taken name was not overwritten; the file went to the next free name.
    assert_eq!(gcs.read_object(&taken).unwrap(), b"someone else's object");
    let renamed = format!("{BUCKET_PATH}/eth0_part_20260101T000001Z-1.pcap.gz");
    assert_eq!(
        gunzip(&gcs.read_object(&renamed).unwrap()),
        originals[&name("eth0", 1)]
    );
    for (file, bytes) in originals.iter().skip(1) {
        let object = gcs
            .read_object(&format!("{BUCKET_PATH}/{file}.gz"))
            .unwrap();
        assert_eq!(&gunzip(&object), bytes, "{file}");
    }
    let failures = daemon
        .logs()
        .iter()
        .filter(|l| l["message"] == "export failed; will retry" && l["file"].is_string())
        .count();
    assert!(failures > 0, "the outage was reported");
    assert!(
        metadata.requests(MetadataServer::TOKEN) > 0,
        "the token came from the metadata server"
    );
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn over_budget_the_policy_drops_the_oldest_waiting_files_and_names_them() {
    let root = tempfile::tempdir().unwrap();
    let capture = root.path().join("pcap-tmp");
    fs::create_dir_all(&capture).unwrap();
    for i in 1..=4 {
        write_capture(
            &capture,
            &name("eth0", i),
            &pcapgen::pcap_bytes(i.into(), 400_000),
        );
    }
    // The bucket path's first directory is a file: every export fails (retryably), so the
    // backlog cannot shrink by exporting.
    fs::create_dir_all(root.path().join("pcap")).unwrap();
    fs::write(root.path().join("pcap/proj"), b"in the way").unwrap();
    let mut daemon = Daemon::start(
        root.path(),
        &[
            ("PCAP_BACKLOG_MB", "1".into()),
            ("PCAP_BACKLOG_POLICY", "drop-oldest".into()),
            ("PCAP_COMPRESS", "false".into()),
            ("PCAP_SHUTDOWN_SECS", "2".into()),
        ],
    );
    // 4 x 400 kB > 1 MiB: the two oldest go, the two newest stay (and keep being retried).
    daemon.wait("the budget policy", Duration::from_secs(20), || {
        capture_files(&capture) == vec![name("eth0", 3), name("eth0", 4)]
    });
    daemon.wait("retries of the kept files", Duration::from_secs(20), || {
        daemon.logs().iter().any(|l| {
            l["message"] == "export failed; will retry" && l["file"] == name("eth0", 4).as_str()
        })
    });
    let (status, summary) = daemon.stop(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "data was lost, so not 0");
    assert_eq!(
        summary["dropped"],
        serde_json::json!([name("eth0", 1), name("eth0", 2)])
    );
    assert_eq!(
        summary["not_exported"],
        serde_json::json!([name("eth0", 3), name("eth0", 4)])
    );
    let dropped: Vec<String> = daemon
        .logs()
        .iter()
        .filter(|l| l["policy"] == "drop-oldest" && l["file"].is_string())
        .map(|l| l["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dropped, vec![name("eth0", 1), name("eth0", 2)]);
    // Kept files are still there for a later run.
    assert_eq!(
        capture_files(&capture),
        vec![name("eth0", 3), name("eth0", 4)]
    );
}

#[test]
fn a_file_being_written_over_budget_does_not_make_a_healthy_exporter_drop_completed_files() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_over_budget(root.path());
    let capture = daemon.capture_dir();
    let export = daemon.export_dir();
    // One export succeeds first: the exporter is keeping up.
    write_capture(&capture, &name("eth0", 1), &pcapgen::pcap_bytes(1, 10_000));
    daemon.wait_finished("the first export", &export, 1, Duration::from_secs(20));
    // A file still being written holds the directory over its 1 MiB budget on its own
    // (like DEBUG JSON under heavy traffic) …
    let open_name = name("eth0", 2);
    let mut writer = fs::File::create(capture.join(&open_name)).unwrap();
    let big = pcapgen::pcap_bytes(2, 2_000_000);
    writer.write_all(&big).unwrap();
    // … while a completed file arrives: a worker is free, so it is exported, not dropped.
    write_capture(&capture, &name("eth0", 3), &pcapgen::pcap_bytes(3, 400_000));
    daemon.wait_finished("the completed file", &export, 2, Duration::from_secs(20));
    drop(writer);
    daemon.wait_finished(
        "the big file once closed",
        &export,
        3,
        Duration::from_secs(20),
    );
    let (status, summary) = daemon.stop(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "nothing lost");
    assert_eq!(summary["exported"], 3);
    assert_eq!(summary["dropped"], serde_json::json!([]));
}

/// Regression test (failed before the fix: with no export yet confirmed, the completed
/// file was deleted the moment it completed, and so was every later one — no export could
/// ever succeed while the open file held the directory over budget).
#[test]
fn issue_14_an_open_file_over_budget_alone_does_not_make_the_policy_delete_every_completed_file() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_over_budget(root.path());
    let capture = daemon.capture_dir();
    let export = daemon.export_dir();
    // Nothing exported yet, and a file still being written exceeds the budget on its own.
    let mut writer = fs::File::create(capture.join(name("eth0", 1))).unwrap();
    writer
        .write_all(&pcapgen::pcap_bytes(1, 2_000_000))
        .unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    for i in 2..=4u32 {
        write_capture(
            &capture,
            &name("eth0", i),
            &pcapgen::pcap_bytes(i.into(), 100_000),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    daemon.wait("a completed file exported", Duration::from_secs(20), || {
        finished(&export) >= 1
    });
    drop(writer);
    let (status, summary) = daemon.stop(Duration::from_secs(15));
    // Whatever the policy gave up is named; everything else is in the export directory.
    let dropped = summary["dropped"].as_array().unwrap().len();
    assert_eq!(
        finished(&export) + dropped,
        4,
        "every file exported or named as dropped: {summary}"
    );
    assert!(
        summary["exported"].as_u64().unwrap() >= 2,
        "the open file and at least one completed file exported: {summary}"
    );
    assert_eq!(status.code(), Some(if dropped == 0 { 0 } else { 1 }));
}

/// Objects in the emulator bucket, sorted by name.
fn object_names(gcs: &GcsEmulator) -> Vec<String> {
    let mut names: Vec<String> = gcs
        .list_objects()
        .map(|list| list.into_iter().map(|o| o.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether `bytes` is a complete gzip stream of `original`.
fn is_gzip_of(bytes: &[u8], original: &[u8]) -> bool {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .is_ok()
        && out == original
}

/// Regression test (failed before the fix: the exporter wrote the final name directly on
/// the mount, so a kill mid-write left the bytes written so far as the final object —
/// rclone, like gcsfuse, uploads on close, and the kernel closes the file of a killed
/// process).
#[test]
fn issue_14_a_kill_mid_write_on_the_fuse_mount_never_leaves_a_partial_final_object() {
    if let Err(reason) = testbed::check_fuse() {
        panic!("FUSE is required for this test: {reason}");
    }
    let root = tempfile::tempdir().unwrap();
    let gcs = GcsEmulator::start("pcap-bucket").unwrap();
    let _mount = FuseMount::rclone(&gcs, &root.path().join("pcap")).unwrap();
    let capture = root.path().join("pcap-tmp");
    fs::create_dir_all(&capture).unwrap();
    let file = name("eth0", 1);
    let original = pcapgen::pcap_bytes(7, 60_000_000);
    write_capture(&capture, &file, &original);
    let env = [
        ("PCAP_GCS_BUCKET", "pcap-bucket".to_string()),
        ("PCAP_GCS_FUSE", "true".into()),
        ("PCAP_COMPRESS", "true".into()),
        // Slow compression: the kill lands while the object is being written.
        ("PCAP_COMPRESS_LEVEL", "9".into()),
    ];
    let mut daemon = Daemon::start(root.path(), &env);
    let export_dir = daemon.export_dir();
    daemon.wait("the export to start", Duration::from_secs(30), || {
        fs::read_dir(&export_dir).is_ok_and(|mut d| d.next().is_some())
    });
    std::thread::sleep(Duration::from_millis(200));
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    assert!(capture.join(&file).exists(), "the local file is kept");
    // rclone uploads what the killed exporter wrote once the file is released.
    let final_object = format!("{BUCKET_PATH}/{file}.gz");
    let settle = Instant::now();
    while object_names(&gcs).is_empty() && settle.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    for object in object_names(&gcs) {
        let leaf = object.rsplit('/').next().unwrap();
        if !leaf.starts_with('.') {
            assert_eq!(object, final_object);
            let bytes = gcs.read_object(&object).unwrap();
            assert!(
                is_gzip_of(&bytes, &original),
                "{object} is a partial object ({} bytes)",
                bytes.len()
            );
        }
    }

    // The next run deletes the leftover and exports the file whole.
    drop(daemon);
    let mut daemon = Daemon::start(root.path(), &env);
    daemon.wait("the file exported", Duration::from_secs(120), || {
        !capture.join(&file).exists()
    });
    daemon.wait("only the final object", Duration::from_secs(30), || {
        object_names(&gcs) == vec![final_object.clone()]
    });
    assert!(is_gzip_of(
        &gcs.read_object(&final_object).unwrap(),
        &original
    ));
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(15)).success());
}

/// Regression test (failed before the fix: `.name.partial-*` files of a killed run stayed
/// in the export directory forever).
#[test]
fn issue_14_temporary_files_of_a_killed_run_are_deleted_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let export = root.path().join("pcap").join(BUCKET_PATH);
    fs::create_dir_all(&export).unwrap();
    let leftover = export.join(format!(".{}.gz.partial-999999-0", name("eth0", 1)));
    fs::write(&leftover, b"half a gzip").unwrap();
    let unrelated = export.join(format!("{}.gz", name("eth0", 2)));
    fs::write(&unrelated, b"someone else's object").unwrap();
    let mut daemon = Daemon::start(root.path(), &[]);
    daemon.wait("the leftover deleted", Duration::from_secs(10), || {
        !leftover.exists()
    });
    assert!(daemon
        .logs()
        .iter()
        .any(|l| l["message"] == "deleted a partial object left by a killed run"));
    assert_eq!(fs::read(&unrelated).unwrap(), b"someone else's object");
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(15)).success());
}

/// Runs `scripts/verify-bucket DIR` with this build's binary: (exit code, its one line).
fn verify_bucket(dir: &Path) -> (i32, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify-bucket");
    let output = Command::new(script)
        .arg(dir)
        .env("PCAP_FSNOTIFY", env!("CARGO_BIN_EXE_pcap-fsnotify"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {output:?}"));
    (
        output.status.code().unwrap_or(-1),
        serde_json::from_str(line).unwrap(),
    )
}

/// The completeness manifest is written next to the files through the same
/// destination, and `scripts/verify-bucket` proves from the folder alone that nothing is
/// missing — and notices a missing, a corrupted and an unlisted object.
#[test]
fn issue_14_the_manifest_lists_every_file_and_verify_bucket_checks_a_folder_against_it() {
    let root = tempfile::tempdir().unwrap();
    let capture = root.path().join("pcap-tmp");
    fs::create_dir_all(&capture).unwrap();
    // A file that cannot be exported (a FIFO) is named in the manifest with its reason.
    nix::unistd::mkfifo(
        &capture.join(name("eth0", 9)),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let mut daemon = Daemon::start(root.path(), &[("PCAP_COMPRESS", "true".into())]);
    let export = daemon.export_dir();
    let mut originals = BTreeMap::new();
    for i in 1..=3u32 {
        let bytes = pcapgen::pcap_bytes(i.into(), 200_000);
        write_capture(&capture, &name("eth0", i), &bytes);
        originals.insert(name("eth0", i), bytes);
    }
    daemon.wait_finished("3 files exported", &export, 3, Duration::from_secs(30));
    daemon.wait("the FIFO rejected", Duration::from_secs(20), || {
        daemon
            .logs()
            .iter()
            .any(|l| l["file"] == name("eth0", 9).as_str() && l["kind"] == "not-a-file")
    });
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(15));
    let summary = daemon.summary();
    assert_eq!(
        summary["manifest"],
        format!("{BUCKET_PATH}/MANIFEST.jsonl"),
        "{summary}"
    );
    let manifest = fs::read_to_string(export.join("MANIFEST.jsonl")).unwrap();
    let records: Vec<Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "{manifest}");
    for (file, bytes) in &originals {
        let record = records.iter().find(|r| r["file"] == file.as_str()).unwrap();
        assert_eq!(record["outcome"], "exported");
        assert_eq!(record["object"], format!("{file}.gz"));
        assert_eq!(record["bytes"], bytes.len());
        // Packets as capinfos counts them in the original.
        let path = root.path().join(file);
        fs::write(&path, bytes).unwrap();
        let out = Command::new("capinfos")
            .args(["-c", "-M", "-T"])
            .arg(&path)
            .output()
            .unwrap();
        let count: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.split('\t').nth(1))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(record["packets"], count, "{record}");
        assert!(record["first"].is_string() && record["last"].is_string());
    }
    let fifo = records
        .iter()
        .find(|r| r["file"] == name("eth0", 9).as_str())
        .unwrap();
    assert_eq!(fifo["outcome"], "not-exported");
    assert!(fifo["reason"]
        .as_str()
        .unwrap()
        .contains("not a regular file"));

    let (code, line) = verify_bucket(&export);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["verified"], 3);
    assert_eq!(line["not_exported"].as_array().unwrap().len(), 1);

    // Tampering is noticed: a flipped byte, a deleted object, an object nobody listed.
    let first = export.join(format!("{}.gz", name("eth0", 1)));
    let mut bytes = fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&first, bytes).unwrap();
    fs::remove_file(export.join(format!("{}.gz", name("eth0", 2)))).unwrap();
    fs::write(export.join(format!("{}.gz", name("eth0", 7))), b"x").unwrap();
    let (code, line) = verify_bucket(&export);
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line["corrupted"],
        serde_json::json!([format!("{}.gz", name("eth0", 1))])
    );
    assert_eq!(
        line["missing"],
        serde_json::json!([format!("{}.gz", name("eth0", 2))])
    );
    assert_eq!(
        line["unlisted"],
        serde_json::json!([format!("{}.gz", name("eth0", 7))])
    );
}

/// Records in every `MANIFEST*.jsonl` part under `dir`.
fn manifest_records(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten() {
        let leaf = entry.unwrap().file_name().to_string_lossy().into_owned();
        if leaf.starts_with("MANIFEST") && leaf.ends_with(".jsonl") {
            let text = fs::read_to_string(dir.join(&leaf)).unwrap_or_default();
            records.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
    }
    records
}

/// An instance stopped without a drain (kill -9: no SIGTERM, no drain) still leaves a
/// manifest of what it exported: parts are written every `PCAP_MANIFEST_SECS`, and a
/// restarted exporter continues with the next part instead of overwriting one.
#[test]
fn issue_14_manifest_parts_reach_the_bucket_without_a_drain() {
    let root = tempfile::tempdir().unwrap();
    let env = [("PCAP_MANIFEST_SECS", "1".to_string())];
    let mut daemon = Daemon::start(root.path(), &env);
    let export = daemon.export_dir();
    let capture = daemon.capture_dir();
    for i in 1..=2u32 {
        write_capture(
            &capture,
            &name("eth0", i),
            &pcapgen::pcap_bytes(i.into(), 50_000),
        );
    }
    daemon.wait(
        "a manifest part listing both files",
        Duration::from_secs(30),
        || {
            manifest_records(&export)
                .iter()
                .filter(|r| r["outcome"] == "exported")
                .count()
                == 2
        },
    );
    // Killed: no drain, no last part.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let (code, line) = verify_bucket(&export);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["verified"], 2, "{line}");

    // The exporter restarted in the same instance delivers the next part.
    write_capture(&capture, &name("eth0", 3), &pcapgen::pcap_bytes(3, 50_000));
    let mut daemon = Daemon::start(root.path(), &env);
    daemon.wait_finished(
        "the third file exported",
        &export,
        3,
        Duration::from_secs(30),
    );
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(15)).success());
    let (code, line) = verify_bucket(&export);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["verified"], 3, "{line}");
    let manifests = line["manifests"].as_array().unwrap();
    assert!(manifests.len() >= 2, "{line}");
    assert!(manifests.contains(&Value::from("MANIFEST.jsonl")), "{line}");
    // Parts are disjoint: each file is recorded once.
    let records = manifest_records(&export);
    assert_eq!(records.len(), 3, "{records:?}");
}

/// When the destination is gone at the end of the drain, the manifest cannot reach the
/// bucket: its records are logged instead, one line each, so every file's outcome is still
/// written down somewhere durable.
#[test]
fn issue_14_when_the_bucket_refuses_the_last_manifest_part_its_records_are_logged() {
    let root = tempfile::tempdir().unwrap();
    let mut gcs = GcsEmulator::start("gone-bucket").unwrap();
    let metadata = MetadataServer::start().unwrap();
    let mut env = api_env("gone-bucket", &gcs, &metadata);
    env.push(("PCAP_SHUTDOWN_SECS", "2".into()));
    let mut daemon = Daemon::start(root.path(), &env);
    let capture = daemon.capture_dir();
    let (first, second) = (name("eth0", 1), name("eth0", 2));
    write_capture(&capture, &first, &pcapgen::pcap_bytes(1, 50_000));
    daemon.wait("the first upload", Duration::from_secs(30), || {
        gcs.list_objects().map(|l| l.len()).unwrap_or(0) == 1
    });
    gcs.stop().unwrap();
    write_capture(&capture, &second, &pcapgen::pcap_bytes(2, 50_000));
    daemon.wait("a failed upload", Duration::from_secs(30), || {
        daemon
            .logs()
            .iter()
            .any(|l| l["file"] == second.as_str() && l["attempt"].is_number())
    });
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(15));
    let logs = daemon.logs();
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cannot write the manifest to the destination"))),
        "{logs:#?}"
    );
    let logged: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "manifest record not delivered")
        .map(|l| &l["record"])
        .collect();
    let of = |file: &str| {
        logged
            .iter()
            .find(|r| r["file"] == file)
            .unwrap_or_else(|| panic!("no logged record of {file}: {logs:#?}"))
    };
    assert_eq!(of(&first)["outcome"], "exported");
    assert_eq!(of(&second)["outcome"], "not-exported");
    assert!(of(&second)["reason"].is_string());
    gcs.restart().unwrap();
    let objects = object_names(&gcs);
    assert!(
        objects.iter().all(|o| !o.contains("MANIFEST")),
        "{objects:?}"
    );
}
