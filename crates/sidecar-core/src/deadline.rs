//! One shutdown deadline for the whole process graph.
//!
//! When SIGTERM arrives, `pcap-init` fixes the absolute deadline (the signal's time plus
//! `PCAP_SHUTDOWN_SECS`) and plans, for every program, the instant it will be killed if it
//! is still running (programs stop in order; each later one keeps a small reserve). It
//! writes that [`ShutdownPlan`] to `PCAP_RUN_DIR/`[`DEADLINE_FILE`] *before* it signals
//! anyone; each daemon reads its own instant when its SIGTERM arrives and plans against it
//! (the exporter ends its drain, and writes its report, before that instant) instead of
//! assuming it has the whole `PCAP_SHUTDOWN_SECS` from its own signal.
//!
//! Instants are wall-clock Unix milliseconds (processes share no monotonic time value); a
//! clock step during the few seconds of a shutdown is the accepted risk. A plan is only
//! believed when it was written by the reader's parent (pcap-init), so a daemon run on its
//! own never reads a stale one.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The plan's file name in `PCAP_RUN_DIR`.
pub const DEADLINE_FILE: &str = "shutdown.deadline.json";

/// The shutdown plan pcap-init hands down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownPlan {
    /// Pid of the supervisor that wrote the plan (the daemons' parent).
    pub supervisor_pid: u32,
    /// When the whole graph must be down (Unix ms).
    pub deadline_unix_ms: u64,
    /// Per program: when it is killed if still running (Unix ms).
    pub kill_unix_ms: BTreeMap<String, u64>,
}

impl ShutdownPlan {
    /// Writes the plan to `run_dir` (temporary name, then rename: a reader never sees half).
    pub fn write(&self, run_dir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec(self).map_err(io::Error::other)?;
        let temporary = run_dir.join(format!(".{DEADLINE_FILE}.tmp"));
        fs::write(&temporary, text)?;
        fs::rename(&temporary, run_dir.join(DEADLINE_FILE))
    }

    /// Removes a plan left by an earlier run.
    pub fn remove(run_dir: &Path) {
        let _ = fs::remove_file(run_dir.join(DEADLINE_FILE));
    }

    /// The plan in `run_dir`, if this process's parent wrote it.
    pub fn read_from_parent(run_dir: &Path) -> Option<ShutdownPlan> {
        let text = fs::read(run_dir.join(DEADLINE_FILE)).ok()?;
        let plan: ShutdownPlan = serde_json::from_slice(&text).ok()?;
        (plan.supervisor_pid == std::os::unix::process::parent_id()).then_some(plan)
    }

    /// When `program` is killed: its own instant, or the graph's deadline.
    pub fn kill_time(&self, program: &str) -> SystemTime {
        let ms = self
            .kill_unix_ms
            .get(program)
            .copied()
            .unwrap_or(self.deadline_unix_ms);
        UNIX_EPOCH + Duration::from_millis(ms)
    }
}

/// How long `program` has from now before pcap-init kills it, when pcap-init (the parent)
/// planned the shutdown; `None` when run on its own.
pub fn time_left(run_dir: &Path, program: &str) -> Option<Duration> {
    let plan = ShutdownPlan::read_from_parent(run_dir)?;
    Some(
        plan.kill_time(program)
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Wall-clock Unix milliseconds of a future (or past) monotonic instant.
pub fn unix_ms(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = if at >= now {
        SystemTime::now() + (at - now)
    } else {
        SystemTime::now() - (now - at)
    };
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_believed_only_from_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let in_two_seconds = unix_ms(Instant::now() + Duration::from_secs(2));
        let mut plan = ShutdownPlan {
            supervisor_pid: std::os::unix::process::parent_id(),
            deadline_unix_ms: in_two_seconds + 1000,
            kill_unix_ms: BTreeMap::from([("pcap-fsnotify".to_string(), in_two_seconds)]),
        };
        plan.write(dir.path()).unwrap();
        let left = time_left(dir.path(), "pcap-fsnotify").unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_millis(1500));
        let other = time_left(dir.path(), "hc-probe").unwrap();
        assert!(other > Duration::from_millis(2500));
        plan.supervisor_pid = std::process::id();
        plan.write(dir.path()).unwrap();
        assert_eq!(time_left(dir.path(), "pcap-fsnotify"), None);
        ShutdownPlan::remove(dir.path());
        assert_eq!(time_left(dir.path(), "pcap-fsnotify"), None);
    }
}
