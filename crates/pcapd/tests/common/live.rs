//! Live-capture helpers shared by the integration tests: a running pcapd with its stdout
//! collected, a reference tcpdump in the same namespace, a graceful stop, tshark's count.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

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
    testbed::tshark::count(file).unwrap()
}

pub fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Packet lines carry the `pcap` section; pcapd's own log lines do not.
pub fn is_packet(v: &Value) -> bool {
    v.get("pcap").is_some_and(Value::is_object)
}

/// pcapd's "capture ready" log line.
pub fn ready_line(v: &Value) -> bool {
    v["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("capture ready"))
}

/// A running `pcapd` whose stdout lines are collected by a thread.
pub struct Running {
    child: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `command` with its stdout collected line by line.
    pub fn start(mut command: Command) -> Running {
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut command).unwrap();
        let stdout = child.child_mut().stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (20 s at most) for a stdout line matching `predicate`, and returns it parsed.
    pub fn wait_for_line(&self, what: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        testbed::wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .map(|l| parse(l))
                .find(|v| predicate(v));
            found.is_some()
        })
        .unwrap_or_else(|e| {
            panic!(
                "waiting for {what}: {e}; lines: {:?}",
                self.lines.lock().unwrap()
            )
        });
        found.unwrap()
    }

    /// Waits (20 s at most) until `count` stdout lines match `predicate`.
    pub fn wait_for_lines(&self, what: &str, count: usize, predicate: impl Fn(&Value) -> bool) {
        testbed::wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| predicate(&parse(l)))
                .count()
                >= count
        })
        .unwrap_or_else(|e| {
            panic!(
                "waiting for {count} × {what}: {e}; lines: {:?}",
                self.lines.lock().unwrap()
            )
        });
    }

    /// Waits (bounded) for the process to exit by itself; the exit code and every line.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, Vec<Value>) {
        let status = self
            .child
            .wait_timeout(timeout)
            .unwrap()
            .expect("pcapd exits by itself");
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let lines = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| parse(l))
            .collect();
        (status.code(), lines)
    }

    /// SIGTERM, then the exit code and every stdout line.
    pub fn terminate(mut self) -> (Option<i32>, Vec<Value>) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let status = self
            .child
            .wait_timeout(Duration::from_secs(15))
            .unwrap()
            .expect("pcapd exits after SIGTERM");
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let lines = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| parse(l))
            .collect();
        (status.code(), lines)
    }
}
