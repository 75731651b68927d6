//! The capture-ready signal between `tcpdumpw` (which raises it) and `hc-probe` (which opens
//! the startup-probe port only while it is up).
//!
//! The signal is the file `<PCAP_RUN_DIR>/capture.ready` holding the raiser's pid. It is
//! written under a temporary name and renamed, so a reader never sees half a file. A reader
//! treats it as up only while that pid is alive: if `tcpdumpw` is killed with SIGKILL and
//! cannot remove the file, readiness still goes away.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the signal inside the run directory.
pub const READY_FILE: &str = "capture.ready";

/// File name of `pcap-fsnotify`'s signal: its watch on the capture directory is installed
/// (use with [`ReadySignal::raise_named`] and [`check_named`]; `supervisor/processes.toml`
/// names the same file).
pub const FSNOTIFY_READY_FILE: &str = "fsnotify.ready";
/// pcap-fsnotify's final export summary (JSON: `exported`, `not_exported`, `dropped`, …),
/// written in the run directory when it stops; pcap-init reports it in its last line.
pub const FSNOTIFY_SUMMARY_FILE: &str = "fsnotify.summary.json";

#[derive(Debug, Serialize, Deserialize)]
struct ReadyRecord {
    pid: u32,
    since: String,
    detail: String,
}

/// A raised readiness signal; withdrawn when dropped.
#[derive(Debug)]
pub struct ReadySignal {
    path: PathBuf,
}

impl ReadySignal {
    /// Raises the signal for this process. `detail` says what is ready (logged by readers).
    pub fn raise(run_dir: &Path, detail: &str) -> io::Result<ReadySignal> {
        Self::raise_for(run_dir, std::process::id(), detail)
    }

    /// Raises the signal on behalf of another process (used by tests and by a supervisor
    /// that knows its child is ready).
    pub fn raise_for(run_dir: &Path, pid: u32, detail: &str) -> io::Result<ReadySignal> {
        Self::raise_named(run_dir, READY_FILE, pid, detail)
    }

    /// Raises another daemon's signal, named `file` inside `run_dir` (e.g. pcap-fsnotify's
    /// "watch installed"), for process `pid`.
    pub fn raise_named(
        run_dir: &Path,
        file: &str,
        pid: u32,
        detail: &str,
    ) -> io::Result<ReadySignal> {
        fs::create_dir_all(run_dir)?;
        let path = run_dir.join(file);
        let temporary = run_dir.join(format!(".{file}.{pid}.tmp"));
        let record = ReadyRecord {
            pid,
            since: chrono::Utc::now().to_rfc3339(),
            detail: detail.to_string(),
        };
        let text = serde_json::to_string(&record).map_err(io::Error::other)?;
        fs::write(&temporary, text)?;
        fs::rename(&temporary, &path)?;
        Ok(ReadySignal { path })
    }

    /// Withdraws the signal now.
    pub fn withdraw(self) {
        // Drop does the work.
    }
}

impl Drop for ReadySignal {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a reader sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Raised by a live process.
    Ready {
        /// The raiser.
        pid: u32,
        /// Its description.
        detail: String,
    },
    /// No signal.
    NotReady,
    /// A signal left behind by a process that no longer runs.
    Stale {
        /// The dead raiser.
        pid: u32,
    },
}

impl Readiness {
    /// Is capture ready?
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready { .. })
    }
}

/// Reads the capture-ready signal in `run_dir`.
pub fn check(run_dir: &Path) -> Readiness {
    check_named(run_dir, READY_FILE)
}

/// Reads the signal named `file` in `run_dir`.
pub fn check_named(run_dir: &Path, file: &str) -> Readiness {
    let Ok(text) = fs::read_to_string(run_dir.join(file)) else {
        return Readiness::NotReady;
    };
    let Ok(record) = serde_json::from_str::<ReadyRecord>(&text) else {
        return Readiness::NotReady;
    };
    if process_alive(record.pid) {
        Readiness::Ready {
            pid: record.pid,
            detail: record.detail,
        }
    } else {
        Readiness::Stale { pid: record.pid }
    }
}

/// Whether `pid` is a running (not zombie) process, read from `/proc`.
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name, which may contain spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_check_withdraw() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        assert_eq!(check(&run), Readiness::NotReady);
        let signal = ReadySignal::raise(&run, "eth0 capturing").unwrap();
        assert_eq!(
            check(&run),
            Readiness::Ready {
                pid: std::process::id(),
                detail: "eth0 capturing".into()
            }
        );
        signal.withdraw();
        assert_eq!(check(&run), Readiness::NotReady);
    }

    #[test]
    fn a_dead_raiser_is_stale_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let signal = ReadySignal::raise_for(dir.path(), pid, "gone").unwrap();
        assert_eq!(check(dir.path()), Readiness::Stale { pid });
        assert!(!check(dir.path()).is_ready());
        drop(signal);
    }

    #[test]
    fn a_garbled_file_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(READY_FILE), "{not json").unwrap();
        assert_eq!(check(dir.path()), Readiness::NotReady);
    }
}
