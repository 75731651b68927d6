//! Drives the real `hc-probe` binary through readiness transitions with real TCP connects.
//!
//! The probe runs in a network namespace of its own (only `lo`), so the port it is given
//! cannot be taken by any other process while it is closed: "the port opened" can only mean
//! that the probe opened it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sidecar_core::readiness::ReadySignal;

const WAIT: Duration = Duration::from_secs(10);

/// Any port: nothing else listens in the probe's private namespace.
const PORT: u16 = 8080;

struct Probe {
    child: Child,
    lines: mpsc::Receiver<String>,
    // Deleted after `Drop` has killed the probe.
    netns: testbed::Netns,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(run_dir: &Path, extra_env: &[(&str, &str)]) -> Probe {
    let netns = testbed::Netns::loopback_only("hc-probe").unwrap();
    // `ip netns exec` execs the probe: the child's pid is the probe's own.
    let mut child = netns
        .command(env!("CARGO_BIN_EXE_hc-probe"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PCAP_HC_PORT", PORT.to_string())
        .env("PCAP_RUN_DIR", run_dir)
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Probe {
        child,
        lines,
        netns,
    }
}

impl Probe {
    /// A connection to the probe's port, made inside its namespace (the socket stays there).
    fn connect(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        let addr = SocketAddr::from(([127, 0, 0, 1], PORT));
        self.netns
            .enter(|| TcpStream::connect_timeout(&addr, timeout))
            .unwrap()
    }

    fn connects(&self) -> bool {
        self.connect(Duration::from_millis(500)).is_ok()
    }

    /// The port stays closed for a while (it must not open by accident).
    fn stays_closed(&self) {
        for _ in 0..5 {
            assert!(!self.connects(), "port {PORT} opened while not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

fn check_log_line(line: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let severity = value["severity"].as_str().unwrap_or_default();
    assert!(
        ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"].contains(&severity),
        "bad severity in {line}"
    );
    assert_eq!(
        value["logging.googleapis.com/labels"]["module"], "hc-probe",
        "{line}"
    );
    value
}

#[test]
fn listens_only_while_capture_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut probe = start(&run_dir, &[]);
    probe.stays_closed();

    let signal = ReadySignal::raise(&run_dir, "test capture").unwrap();
    eventually("port opens once ready", || probe.connects());
    // The probe accepts and closes: a read sees end of stream.
    let mut stream = probe.connect(WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = [0u8; 8];
    assert_eq!(stream.read(&mut buffer).unwrap(), 0);

    signal.withdraw();
    eventually("port closes when readiness is withdrawn", || {
        !probe.connects()
    });
    probe.stays_closed();

    let again = ReadySignal::raise(&run_dir, "second run").unwrap();
    eventually("port re-opens", || probe.connects());

    // A raiser that died without withdrawing (SIGKILL) does not keep the port open.
    drop(again);
    eventually("port closes again", || !probe.connects());
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = ReadySignal::raise_for(&run_dir, dead_pid, "dead").unwrap();
    probe.stays_closed();
    drop(stale);

    let _ready = ReadySignal::raise(&run_dir, "third run").unwrap();
    eventually("port opens before SIGTERM", || probe.connects());
    kill(Pid::from_raw(probe.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = probe.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hc-probe ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!probe.connects(), "port still open after exit");

    let lines: Vec<String> = probe.lines.try_iter().collect();
    let parsed: Vec<serde_json::Value> = lines.iter().map(|l| check_log_line(l)).collect();
    let opened = parsed
        .iter()
        .filter(|v| v["message"] == "capture ready: accepting startup probes")
        .count();
    let withdrawn = parsed
        .iter()
        .filter(|v| v["message"] == "capture not ready: stopped accepting startup probes")
        .count();
    assert_eq!(opened, 3, "{lines:#?}");
    assert_eq!(withdrawn, 2, "{lines:#?}");
    let last = parsed.last().unwrap();
    assert_eq!(last["message"], "stopped");
    // Every successful connect above was accepted: at least one per opening, plus the read.
    assert!(last["accepted"].as_u64().unwrap() >= 4, "{last}");
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hc-probe"))
        .env_clear()
        .env("PCAP_RUN_DIR", dir.path())
        .env("PCAP_HC_PORT", "99999")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(check_log_line).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["severity"], "ERROR");
    assert_eq!(lines[0]["variable"], "PCAP_HC_PORT");
    assert_eq!(lines[0]["value"], "99999");
}
