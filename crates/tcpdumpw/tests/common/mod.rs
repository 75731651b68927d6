//! Helpers shared by tcpdumpw's integration tests: a running `tcpdumpw` with a clean
//! environment, its own temporary directory and its log.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use sidecar_core::readiness::{self, Readiness};
use testbed::{wait_for, ChildGuard, Netns};

pub const BIN: &str = env!("CARGO_BIN_EXE_tcpdumpw");

/// Fails the test unless the pcapd that tcpdumpw runs next to it is built (`cargo test -p
/// tcpdumpw` does not build it).
pub fn assert_pcapd_built() {
    let pcapd = Path::new(BIN).with_file_name("pcapd");
    assert!(
        pcapd.is_file(),
        "{} is missing: run `cargo build -p pcapd` first",
        pcapd.display()
    );
}

/// The files of `dir` whose extension is `ext`, sorted by name (none when `dir` is missing).
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
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

/// A running `tcpdumpw` with a directory of its own: the bucket mount `pcap`, the capture
/// directory `pcap-tmp`, the run directory `run` and the log `log` (stdout and stderr).
pub struct Sidecar {
    pub child: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl Sidecar {
    /// tcpdumpw inside `ns` with only `env` (and the directories) in its environment.
    pub fn start(ns: &Netns, env: &[(&str, &str)], args: &[&str]) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn(&mut ns.command(BIN), dir, env, args)
    }

    /// [`Sidecar::start`] with `PATH` under `env` (tcpdumpw runs pcapd next to it, which
    /// must be built), restricted like gVisor when `gvisor` is set.
    pub fn start_with_path(ns: &Netns, env: &[(&str, &str)], gvisor: bool) -> Sidecar {
        assert_pcapd_built();
        let path = std::env::var("PATH").unwrap_or_default();
        let mut all = vec![("PATH", path.as_str())];
        all.extend_from_slice(env);
        let mut command = ns.command(BIN);
        if gvisor {
            testbed::gvisor::restrict_like_gvisor(&mut command).unwrap();
        }
        Self::spawn(&mut command, tempfile::tempdir().unwrap(), &all, &[])
    }

    /// Runs `command` (tcpdumpw, or what execs it) as [`Sidecar::start`] does, in `dir`.
    pub fn spawn(
        command: &mut Command,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Sidecar {
        let log = File::create(dir.path().join("log")).unwrap();
        command
            .args(args)
            .env_clear()
            .env("GCS_MOUNT", dir.path().join("pcap"))
            .env("PCAP_RUN_DIR", dir.path().join("run"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Sidecar {
            child: ChildGuard::spawn(command).unwrap(),
            dir,
        }
    }

    pub fn capture_dir(&self) -> PathBuf {
        self.dir.path().join("pcap-tmp")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap()
    }

    /// The whole log lines written so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        let text = self.log_text();
        testbed::complete_lines(&text)
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Log lines (tcpdumpw's own, and its children's passed through) whose message
    /// contains `text`.
    pub fn matching(&self, text: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| message_contains(l, text))
            .collect()
    }

    /// Index of the first log line whose message contains `text`.
    pub fn find(&self, text: &str) -> Option<usize> {
        self.lines().iter().position(|l| message_contains(l, text))
    }

    pub fn count(&self, text: &str) -> usize {
        self.matching(text).len()
    }

    /// Waits (20 s at most) until `times` log lines contain `text`.
    pub fn wait_log(&mut self, text: &str, times: usize) {
        let result = wait_for(
            text,
            Duration::from_secs(20),
            Duration::from_millis(50),
            || {
                if self.count(text) >= times {
                    Ok(())
                } else {
                    Err(self.log_text())
                }
            },
        );
        if let Err(error) = result {
            panic!("{error}");
        }
    }

    /// Whether the readiness signal is raised.
    pub fn is_ready(&self) -> bool {
        matches!(readiness::check(&self.run_dir()), Readiness::Ready { .. })
    }

    /// Waits (20 s at most) for the readiness signal.
    pub fn wait_ready(&self) {
        self.wait_ready_in(&self.run_dir());
    }

    /// Waits (20 s at most) for the readiness signal in `run` (tcpdumpw's run directory, or
    /// one of its pcapds').
    pub fn wait_ready_in(&self, run: &Path) {
        let result = wait_for(
            "capture ready",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || match readiness::check(run) {
                Readiness::Ready { .. } => Ok(()),
                other => Err(format!("{}: {other:?}", run.display())),
            },
        );
        if let Err(error) = result {
            panic!("{error}\n{}", self.log_text());
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.wait_exit(Duration::from_secs(20))
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.child.wait_timeout(timeout).unwrap() {
            Some(status) => status,
            None => panic!(
                "tcpdumpw still running after {timeout:?}\n{}",
                self.log_text()
            ),
        }
    }

    /// The capture directory's files with extension `ext`, sorted by name.
    pub fn files(&self, ext: &str) -> Vec<PathBuf> {
        files(&self.capture_dir(), ext)
    }
}

fn message_contains(line: &Value, text: &str) -> bool {
    line["message"].as_str().is_some_and(|m| m.contains(text))
}
