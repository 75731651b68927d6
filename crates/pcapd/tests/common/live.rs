//! Live-capture helpers shared by the integration tests: a reference tcpdump in the same
//! namespace, a graceful stop, and tshark's packet count.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use testbed::{ChildGuard, Netns};

/// Reference capture with tcpdump on `eth0` of `ns` (immediate mode, packet-buffered),
/// returned once tcpdump says it is listening.
pub fn reference_tcpdump(ns: &Netns, file: &Path, filter: &str) -> ChildGuard {
    let mut command = ns.command("tcpdump");
    command
        .args([
            "-i",
            "eth0",
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
        ])
        .arg(file)
        .arg(filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let stderr = child.child_mut().stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "tcpdump: {line}");
    std::thread::spawn(move || for _ in reader.lines() {});
    child
}

/// SIGTERM, then waits (bounded) for the exit.
pub fn stop(mut child: ChildGuard) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("exits after SIGTERM");
}

/// Packets in `file`, as tshark counts them.
pub fn tshark_count(file: &Path) -> usize {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark -r {file:?}");
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}
