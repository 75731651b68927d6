//! Export benchmark (run by `scripts/bench-export`; not a test).
//!
//! 1. Compression throughput on a generated, realistic 100 MB pcap: the exporter's streaming
//!    gzip (`export::encode`, zlib-rs) at levels 1 (the default), 2 and 6, against `gzip -6`
//!    on the same file in the same run (best of 3 each), printed as a ratio.
//! 2. Export latency: the real `pcap-fsnotify` daemon (path given with `--daemon`) exports a
//!    completed 50 MB file to the directory destination; the time from the writer's close to
//!    the final `.gz` name appearing and the local file being deleted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use export::{encode, open_source, Compression};
use testbed::pcapgen;

const MB: f64 = 1024.0 * 1024.0;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let value = f();
        best = best.min(started.elapsed());
        last = Some(value);
    }
    match last {
        Some(value) => (best, value),
        None => panic!("no run"),
    }
}

fn gzip6(path: &Path) -> u64 {
    let output = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    assert!(output.status.success(), "gzip failed");
    output.stdout.len() as u64
}

fn ours(path: &Path, level: u32) -> u64 {
    let source = open_source(path).unwrap_or_else(|e| panic!("{e}"));
    let mut encoded = encode(source, Compression::Gzip { level });
    encoded
        .copy_to(&mut std::io::sink(), "sink")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut daemon: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        if arg == "--daemon" {
            daemon = args.next().map(PathBuf::from);
        }
    }
    let work = std::env::temp_dir().join(format!("bench-export-{}", std::process::id()));
    fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    let input = work.join("eth0_part_20260101T000000Z.pcap");
    fs::write(&input, pcapgen::pcap_bytes(1, 100 * 1024 * 1024)).unwrap_or_else(|e| panic!("{e}"));
    let size = fs::metadata(&input).map(|m| m.len()).unwrap_or(0) as f64;
    println!("input: generated pcap, {:.1} MB", size / MB);

    let (gzip_time, gzip_size) = best_of(3, || gzip6(&input));
    println!(
        "gzip -6            : {:7.1} MB/s, {:.1} MB out (ratio {:.2})",
        size / MB / gzip_time.as_secs_f64(),
        gzip_size as f64 / MB,
        size / gzip_size as f64
    );
    for level in [1, 2, 6] {
        let (time, out) = best_of(3, || ours(&input, level));
        println!(
            "export gzip level {level}: {:7.1} MB/s, {:.1} MB out (ratio {:.2}); {:.2} x gzip -6 throughput",
            size / MB / time.as_secs_f64(),
            out as f64 / MB,
            size / out as f64,
            gzip_time.as_secs_f64() / time.as_secs_f64()
        );
    }

    if let Some(daemon) = daemon {
        latency(&daemon, &work);
    } else {
        println!("(pass --daemon <path to pcap-fsnotify> for the export latency)");
    }
    let _ = fs::remove_dir_all(&work);
}

fn latency(binary: &Path, work: &Path) {
    let mount = work.join("pcap");
    let capture = work.join("pcap-tmp");
    fs::create_dir_all(&mount).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(binary)
        .env_clear()
        .env("GCS_MOUNT", &mount)
        .env("PCAP_RUN_DIR", work.join("run"))
        .args(["--bucket-path", ""])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let ready = work
        .join("run")
        .join(sidecar_core::readiness::FSNOTIFY_READY_FILE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "pcap-fsnotify did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let bytes = pcapgen::pcap_bytes(2, 50 * 1024 * 1024);
    let mut samples = Vec::new();
    for run in 0..3u32 {
        let file = format!("eth0_part_20260101T00000{run}Z.pcap");
        let mut writer = fs::File::create(capture.join(&file)).unwrap_or_else(|e| panic!("{e}"));
        writer.write_all(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let closed = Instant::now();
        drop(writer);
        let target = mount.join(format!("{file}.gz"));
        let local = capture.join(&file);
        while !target.exists() || local.exists() {
            assert!(closed.elapsed() < Duration::from_secs(30), "not exported");
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(closed.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    let text: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "export latency, 50 MB file, close -> final .gz visible and local file deleted: {} (worst {:.0} ms)",
        text.join(", "),
        samples.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
}
