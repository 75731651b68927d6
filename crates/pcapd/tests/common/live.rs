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

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");

/// Reference capture with tcpdump on `eth0` of `ns` (immediate mode, packet-buffered),
/// returned once tcpdump says it is listening.
pub fn reference_tcpdump(ns: &Netns, file: &Path, filter: &str) -> ChildGuard {
    tcpdump_on(ns, "eth0", file, filter, &[])
}

/// [`reference_tcpdump`] on `iface`, with `extra` arguments (such as `-B` for a larger
/// buffer). tcpdump's later stderr lines are printed (shown when the test fails).
pub fn tcpdump_on(
    ns: &Netns,
    iface: &str,
    file: &Path,
    filter: &str,
    extra: &[&str],
) -> ChildGuard {
    let mut command = ns.command("tcpdump");
    command
        .args(["-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root"])
        .args(extra)
        .arg("-w")
        .arg(file)
        .arg(filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let stderr = child.child_mut().stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    // On `any` tcpdump says "data link type LINUX_SLL2" first.
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "tcpdump ended");
    }
    std::thread::spawn(move || {
        for l in reader.lines().map_while(Result::ok) {
            println!("tcpdump: {l}");
        }
    });
    child
}

/// MTU-sized segments on `eth0` of `ns` (`gso_max_size 1500`, as a real NIC gives) and random
/// TCP loss with probability `loss` on its INPUT and OUTPUT chains.
pub fn impair(ns: &Netns, loss: &str) {
    ns.run("ip", ["link", "set", "eth0", "gso_max_size", "1500"])
        .unwrap();
    for chain in ["INPUT", "OUTPUT"] {
        ns.run(
            "iptables",
            [
                "-A",
                chain,
                "-p",
                "tcp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                loss,
                "-j",
                "DROP",
            ],
        )
        .unwrap();
    }
}

/// Whether something listens on `port` (`proto` "t" or "u") in `ns`; asks the kernel, sends
/// nothing, so the readiness probes leave no packets behind.
pub fn listening(ns: &Netns, proto: &str, port: u16) -> bool {
    ns.run(
        "ss",
        [&format!("-Hln{proto}"), "sport", "=", &format!(":{port}")],
    )
    .is_ok_and(|out| !out.stdout.is_empty())
}

/// nghttpd in `ns` serving h2c (no TLS) from `docs` on `port`, once it listens.
pub fn nghttpd(ns: &Netns, docs: &Path, port: u16) -> ChildGuard {
    let child = ChildGuard::spawn(
        ns.command("nghttpd")
            .args(["--no-tls", "-d"])
            .arg(docs)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        listening(ns, "t", port)
    })
    .expect("nghttpd listens");
    child
}

/// Starts `command`, a server that prints `ready` on its stdout once it listens, and waits
/// for that line.
pub fn spawn_ready(command: &mut Command) -> ChildGuard {
    command.stdout(Stdio::piped());
    let mut child = ChildGuard::spawn(command).unwrap();
    let mut ready = String::new();
    BufReader::new(child.child_mut().stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    child
}

/// dnsmasq in `ns` answering for `example.test` on 198.51.100.1 (the app's address) port 53
/// from its own records only, in the foreground, with `extra` options.
pub fn dnsmasq(ns: &Netns, pid_file: &Path, extra: &[&str]) -> Command {
    let mut command = ns.command("dnsmasq");
    command
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=198.51.100.1",
            "--port=53",
            "--local=/example.test/",
        ])
        .args(extra)
        .arg(format!("--pid-file={}", pid_file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// `command` (a pcapd) reading `file`: every line it writes, parsed; fails unless it exits
/// with success.
pub fn read_lines(command: &mut Command, file: &Path) -> Vec<Value> {
    let out = command.arg("--read").arg(file).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(parse)
        .collect()
}

/// pcapd in `ns` (or in the test's own namespace) with [`clean_env`].
pub fn pcapd_command(ns: Option<&Netns>) -> Command {
    let mut command = match ns {
        Some(ns) => ns.command(BIN),
        None => Command::new(BIN),
    };
    clean_env(&mut command);
    command
}

/// A clean environment for a pcapd `command` (the developer's PCAP_* variables must not
/// leak in): `PATH`, and run and mount directories under /tmp.
pub fn clean_env(command: &mut Command) -> &mut Command {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PCAP_RUN_DIR", "/tmp/pcapd-test-run")
        .env("GCS_MOUNT", "/tmp/pcapd-test-mount")
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
    pub fn wait_exit(self, timeout: Duration) -> (Option<i32>, Vec<Value>) {
        self.exit(timeout, "pcapd exits by itself")
    }

    /// SIGTERM, then the exit code and every stdout line.
    pub fn terminate(self) -> (Option<i32>, Vec<Value>) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.exit(Duration::from_secs(15), "pcapd exits after SIGTERM")
    }

    /// Waits `timeout` at most for the exit (`what` says what was expected); the exit code and
    /// every stdout line.
    fn exit(mut self, timeout: Duration, what: &str) -> (Option<i32>, Vec<Value>) {
        let status = self.child.wait_timeout(timeout).unwrap().expect(what);
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
