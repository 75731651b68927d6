//! `pcap-init` as PID 1 reaps orphans during start-up and shutdown too,
//! not only in its watch loop.
//!
//! pcap-init runs as PID 1 of a new PID namespace (`unshare --pid --fork`), so processes
//! orphaned by its programs are re-parented to it. Before the fix, orphans that exited while
//! pcap-init waited for a program's readiness, or while it stopped a slow program, stayed
//! zombies until the watch loop (or forever, at shutdown): both tests failed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{clean_env, BIN};

struct Init {
    unshare: Child,
}

impl Drop for Init {
    fn drop(&mut self) {
        // --kill-child: pcap-init (and its namespace) dies with unshare.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Init {
    fn start(dir: &Path, graph: &str) -> Init {
        let graph_file = dir.join("graph.toml");
        std::fs::write(&graph_file, graph).unwrap();
        let closed_port = testbed::free_port().unwrap();
        let unshare = clean_env(
            &mut Command::new("unshare"),
            dir,
            &format!("127.0.0.1:{closed_port}"),
        )
        .args(["--pid", "--fork", "--kill-child", "--"])
        .arg(BIN)
        .env("PCAP_SHUTDOWN_SECS", "8")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
        Init { unshare }
    }

    /// pcap-init's pid as seen from here: unshare's only child.
    fn pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/proc/{0}/task/{0}/children", self.unshare.id());
            if let Some(pid) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.split_whitespace().next().map(|p| p.parse().unwrap()))
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "pcap-init did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits (bounded) for `file`, which a program touches once it runs.
fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Zombie children of `parent`.
fn zombies_of(parent: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            zombies.push(head.split_whitespace().next().unwrap().parse().unwrap());
        }
    }
    zombies
}

fn sh(command: &str) -> String {
    format!(
        "[\"/bin/sh\", \"-c\", {}]",
        serde_json::to_string(command).unwrap()
    )
}

/// Starts orphans that exit after 0.2 s: each subshell exits at once, leaving its `sleep`.
const ORPHANS: &str = "(sleep 0.2 &); (sleep 0.2 &); (sleep 0.2 &)";

#[test]
fn issue_14_orphans_are_reaped_while_start_up_waits_for_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("slow.started");
    let graph = format!(
        r#"
[[program]]
name = "orphaner"
command = {orphaner}
stop_order = 1

[[program]]
name = "slow"
command = {slow}
stop_order = 2
[program.ready]
kind = "file"
path = "slow.ready"
timeout_secs = 20
"#,
        orphaner = sh(&format!("{ORPHANS}; exec sleep 1000")),
        slow = sh(&format!("touch {}; exec sleep 1000", started.display())),
    );
    let init = Init::start(dir.path(), &graph);
    let pid = init.pid();
    // "slow" never becomes ready within this test: pcap-init stays in start-up.
    wait_for(&started);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(init.unshare.id() > 0);
    assert_eq!(
        zombies_of(pid),
        Vec::<u32>::new(),
        "zombies during start-up"
    );
}

#[test]
fn issue_14_orphans_are_reaped_while_shutdown_waits_for_a_slow_program() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("orphaner.started");
    let graph = format!(
        r#"
[[program]]
name = "slow-stop"
command = {slow}
stop_order = 2

[[program]]
name = "orphaner"
command = {orphaner}
stop_order = 1
"#,
        // Leaves orphans when told to stop, then exits.
        orphaner = sh(&format!(
            "trap '{ORPHANS}; exit 0' TERM; touch {}; sleep 1000 & wait",
            started.display()
        )),
        // Takes 3 s to stop.
        slow = sh("trap 'sleep 3; exit 0' TERM; sleep 1000 & wait"),
    );
    let mut init = Init::start(dir.path(), &graph);
    let pid = init.pid();
    wait_for(&started);
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        zombies_of(pid),
        Vec::<u32>::new(),
        "zombies during shutdown"
    );
    let status = init.unshare.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
