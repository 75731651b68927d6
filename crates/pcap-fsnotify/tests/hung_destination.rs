//! A destination that stops answering — a write blocked on a FUSE mount whose backend is gone
//! — must not stop the exporter: files keep going out, and the drain ends on time with its
//! report. The fault suite found it (`tests/faults.rs`): a manifest part written on the
//! event loop blocked it for good. Here the real directory destination is wrapped so that
//! manifest parts never return, as on that mount.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use export::{Delivery, Destination, DirectoryDestination, Export, ExportError};
use sidecar_core::shutdown::Shutdown;

/// Delivers capture files to a real directory; blocks on manifest parts until released.
struct HangsOnManifest {
    inner: DirectoryDestination,
    release: Mutex<Receiver<()>>,
}

impl Destination for HangsOnManifest {
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        if export.object.contains("MANIFEST") {
            let release = self.release.lock().unwrap();
            while let Err(RecvTimeoutError::Timeout) = release.recv_timeout(Duration::from_secs(1))
            {
            }
            return Err(ExportError::Write {
                target: export.object.to_string(),
                source: std::io::Error::other("released: the test is over"),
            });
        }
        self.inner.deliver(export)
    }

    fn describe(&self) -> String {
        "a directory whose manifest parts never return".into()
    }
}

fn write_capture(dir: &Path, second: u32) {
    let name = format!("eth0_part_20260101T0000{second:02}Z.pcap");
    let mut file = fs::File::create(dir.join(name)).unwrap();
    file.write_all(&[0xd4, 0xc3, 0xb2, 0xa1]).unwrap();
    file.write_all(&[0u8; 20]).unwrap();
}

fn exported(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn issue_14_a_manifest_part_that_never_returns_stops_neither_exports_nor_the_drain() {
    let root = tempfile::tempdir().unwrap();
    let capture = root.path().join("pcap-tmp");
    let out = root.path().join("out");
    let run_dir = root.path().join("run");
    fs::create_dir_all(&capture).unwrap();
    let (release, released): (Sender<()>, Receiver<()>) = mpsc::channel();
    let destination = Arc::new(HangsOnManifest {
        inner: DirectoryDestination::new(&out),
        release: Mutex::new(released),
    });
    let mut settings = pcap_fsnotify::Settings::new(capture.clone(), String::new());
    settings.run_dir = Some(run_dir.clone());
    settings.manifest_every = Duration::from_millis(200);
    settings.shutdown_budget = Duration::from_secs(3);
    settings.compression = export::Compression::None;
    let shutdown = Shutdown::new();
    let exporter = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || pcap_fsnotify::run(&settings, destination, &shutdown))
    };
    let wait = |what: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while exported(&out) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} exported",
                exported(&out)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    write_capture(&capture, 1);
    write_capture(&capture, 2);
    wait("the first files", 2);
    // A manifest part is on its way by now, and never returns.
    std::thread::sleep(Duration::from_millis(600));
    write_capture(&capture, 3);
    write_capture(&capture, 4);
    wait("files after the hung part", 4);

    let stopped = Instant::now();
    shutdown.trigger();
    let deadline = Instant::now() + Duration::from_secs(6);
    while !exporter.is_finished() {
        assert!(Instant::now() < deadline, "the drain did not end on time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let summary = exporter.join().unwrap().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(summary.exported, 4);
    assert_eq!(summary.manifest, None);
    // The records stay local (and were logged): nothing about the files is forgotten.
    let records = fs::read_to_string(run_dir.join("MANIFEST.sending")).unwrap()
        + &fs::read_to_string(run_dir.join("MANIFEST.jsonl")).unwrap_or_default();
    assert_eq!(records.lines().count(), 4, "{records}");
    drop(release);
}

/// Holds each capture-file delivery until released, then delivers it to a real directory
/// (with the exporter's commit gate, as the real destinations get it).
struct HeldDeliveries {
    inner: DirectoryDestination,
    release: Mutex<Receiver<()>>,
}

impl Destination for HeldDeliveries {
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        let _ = self.release.lock().unwrap().recv();
        self.inner.deliver(export)
    }

    fn describe(&self) -> String {
        "a directory whose deliveries wait to be released".into()
    }
}

/// An export still under way at the deadline is reported as not exported; if it finishes
/// after the report (a mount that comes back), it must not commit: the bucket would hold an
/// object the report and the manifest call not exported.
#[test]
fn issue_14_an_export_that_outlives_the_deadline_never_commits_after_the_report() {
    let root = tempfile::tempdir().unwrap();
    let capture = root.path().join("pcap-tmp");
    let out = root.path().join("out");
    fs::create_dir_all(&capture).unwrap();
    let (release, released) = mpsc::channel();
    let destination = Arc::new(HeldDeliveries {
        inner: DirectoryDestination::new(&out),
        release: Mutex::new(released),
    });
    let mut settings = pcap_fsnotify::Settings::new(capture.clone(), String::new());
    settings.run_dir = Some(root.path().join("run"));
    settings.shutdown_budget = Duration::from_secs(2);
    settings.compression = export::Compression::None;
    settings.workers = 1;
    let shutdown = Shutdown::new();
    let exporter = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || pcap_fsnotify::run(&settings, destination, &shutdown))
    };
    write_capture(&capture, 1);
    // Picked up and held.
    std::thread::sleep(Duration::from_millis(800));
    shutdown.trigger();
    let summary = exporter.join().unwrap().unwrap();
    assert_eq!(summary.exported, 0);
    assert_eq!(
        summary.not_exported,
        vec!["eth0_part_20260101T000001Z.pcap".to_string()]
    );
    // The held delivery goes on now, after the report: it must not commit.
    release.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(exported(&out), 0, "an object appeared after the report");
    assert!(capture.join("eth0_part_20260101T000001Z.pcap").exists());
}

#[test]
fn the_commit_gate_refuses_new_exports_waits_for_those_under_way_then_closes() {
    let gate = export::CommitGate::default();
    let under_way = gate.enter().unwrap();
    assert!(gate.may_commit());
    let started = Instant::now();
    // Nothing finishes: it waits the whole time, then closes anyway.
    assert!(!gate.stop(Duration::from_millis(100)));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(!gate.may_commit());
    assert!(gate.enter().is_none());
    drop(under_way);
}
