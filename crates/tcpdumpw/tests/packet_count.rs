//! `PCAP_PACKET_COUNT` under tcpdumpw, on the libpcap path (tcpdump gets `-c`, pcapd stops
//! itself) and on the ring-less path (pcapd alone, under the seccomp filter reproducing
//! gVisor's limits), with real traffic in a network namespace: each output holds exactly N
//! packets, the run ends when every child has its N, nothing is restarted, and tcpdumpw
//! stays up (and ready) until SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sidecar_core::readiness::{self, Readiness};
use testbed::gvisor::restrict_like_gvisor;
use testbed::{wait_for, ChildGuard, TestNet};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn packet_count_under_tcpdumpw(gvisor: bool) {
    let pcapd = Path::new(env!("CARGO_BIN_EXE_tcpdumpw")).with_file_name("pcapd");
    assert!(pcapd.is_file(), "run `cargo build -p pcapd` first");
    let net = TestNet::new(if gvisor { "tdw-count-rl" } else { "tdw-count" }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = File::create(dir.path().join("log")).unwrap();
    let mut command = net.app().command(env!("CARGO_BIN_EXE_tcpdumpw"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GCS_MOUNT", dir.path().join("pcap"))
        .env("PCAP_RUN_DIR", dir.path().join("run"))
        .env("PCAP_IFACE", "eth")
        .env("PCAP_JSON", "true")
        .env("PCAP_ROTATE_SECS", "0")
        .env("PCAP_FILTER", "icmp")
        .env("PCAP_PACKET_COUNT", "6")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if gvisor {
        restrict_like_gvisor(&mut command).unwrap();
    }
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let log_text = || std::fs::read_to_string(dir.path().join("log")).unwrap();
    let run = dir.path().join("run");
    let ready = || match readiness::check(&run) {
        Readiness::Ready { .. } => Ok(()),
        other => Err(format!("{other:?}")),
    };
    wait_for(
        "capture ready",
        Duration::from_secs(20),
        Duration::from_millis(20),
        ready,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    net.peer().ping("198.51.100.1", 10).unwrap();
    wait_for(
        "the run to end",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            if log_text()
                .contains("capture run 1 complete: every interface captured PCAP_PACKET_COUNT=6")
            {
                Ok(())
            } else {
                Err("running".to_string())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "tcpdumpw stays up");
    assert!(ready().is_ok(), "and ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap_or_else(|| panic!("tcpdumpw still running\n{}", log_text()));
    assert!(status.success(), "{status:?}\n{}", log_text());
    let text = log_text();
    assert!(!text.contains("restarting"), "nothing restarted:\n{text}");
    let capture = dir.path().join("pcap-tmp");
    let pcaps = files(&capture, "pcap");
    assert_eq!(pcaps.len(), 1, "{pcaps:?}\n{text}");
    assert_eq!(
        testbed::tshark::count(&pcaps[0]).unwrap(),
        6,
        "{:?}",
        pcaps[0]
    );
    let jsons = files(&capture, "json");
    let packets: usize = jsons
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(packets, 6, "{jsons:?}");
}

#[test]
fn packet_count_on_the_libpcap_path() {
    packet_count_under_tcpdumpw(false);
}

#[test]
fn packet_count_on_the_ring_less_path() {
    packet_count_under_tcpdumpw(true);
}
