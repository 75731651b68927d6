//! The ordered start, the watch, and the ordered shutdown of the process graph.
//!
//! Start: each program of the graph whose condition holds is started in order, and the next
//! one only after it is ready (a mount visible in `/proc/self/mountinfo`, a readiness file
//! raised by a live process) — with a timeout that ends start-up with an actionable error.
//! Watch: crashed programs are restarted by their [`Supervised`] handle; when one gives up,
//! the readiness gate (`hc-probe`) is stopped so the startup probe fails instead of lying.
//! Shutdown: programs stop in `stop_order`, each bounded, all within the shutdown budget; a
//! second signal shortens every remaining grace period.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use child_process::{ChildSpec, Event, Exit, State, Supervised};
use serde::Serialize;
use sidecar_core::deadline::{self, ShutdownPlan};
use sidecar_core::log::{self, Severity};
use sidecar_core::readiness;
use sidecar_core::shutdown::Shutdown;

use crate::graph::{expand, GraphError, ProcessGraph, Program, ReadyKind, When};

/// Everything the ordered start, watch and stop need.
#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    /// The programs.
    pub graph: ProcessGraph,
    /// Values of `${NAME}` in the graph.
    pub vars: BTreeMap<String, String>,
    /// Environment given to every program (the configuration, so flags reach children).
    pub env: Vec<(String, String)>,
    /// `PCAP_RUN_DIR`.
    pub run_dir: PathBuf,
    /// Whether programs with `when = "fuse"` run.
    pub fuse: bool,
    /// Directories to create before anything starts (capture dir, run dir, mount point).
    pub directories: Vec<PathBuf>,
    /// The export directory, created once the mount (if any) is ready.
    pub export_dir: Option<PathBuf>,
    /// Budget for the whole shutdown.
    pub shutdown_budget: Duration,
    /// Reap every child with `waitpid(-1)` (PID 1 must also reap orphans).
    pub reap_orphans: bool,
    /// Name of the program whose port reports readiness; stopped when another gives up.
    pub gate: Option<String>,
}

/// Why the process graph could not be started or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The graph is wrong.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A directory could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A program could not be started or did not become ready.
    #[error("{0}")]
    StartFailed(String),
}

/// How one program stopped.
#[derive(Debug, Clone, Serialize)]
pub struct StopReport {
    /// Program name.
    pub program: String,
    /// How it ended.
    pub exit: String,
    /// Whether that counts as a clean stop.
    pub clean: bool,
    /// Time it took, in milliseconds.
    pub took_ms: u128,
}

/// The shutdown's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownSummary {
    /// Per program, in stop order.
    pub stopped: Vec<StopReport>,
    /// Whole shutdown, in milliseconds.
    pub total_ms: u128,
    /// Files exported, and any not exported, as pcap-fsnotify reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesReport>,
    /// Whether every program stopped cleanly and no file was lost.
    pub clean: bool,
}

/// The exporter's final counts (from its summary file).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FilesReport {
    /// Files exported.
    #[serde(default)]
    pub exported: u64,
    /// Files left unexported, by name.
    #[serde(default)]
    pub not_exported: Vec<String>,
    /// Files given up by the backlog policy, by name.
    #[serde(default)]
    pub dropped: Vec<String>,
}

impl FilesReport {
    fn read(run_dir: &Path) -> Option<FilesReport> {
        let text = std::fs::read(run_dir.join(readiness::FSNOTIFY_SUMMARY_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn lost_nothing(&self) -> bool {
        self.not_exported.is_empty() && self.dropped.is_empty()
    }
}

struct Running {
    program: Program,
    child: Supervised,
}

#[derive(Serialize)]
struct ReadyEvent<'a> {
    program: &'a str,
    waited_ms: u128,
}

/// Starts the graph, watches it until `shutdown`, then stops it in order.
pub fn run(
    settings: &LifecycleSettings,
    shutdown: &Shutdown,
) -> Result<ShutdownSummary, LifecycleError> {
    if settings.reap_orphans {
        // Every wait from here on (start-up, watch, shutdown) reaps orphans too.
        child_process::reap_orphans(true);
    }
    // A summary or a plan left by an earlier run must not be taken for this one's.
    let _ = std::fs::remove_file(settings.run_dir.join(readiness::FSNOTIFY_SUMMARY_FILE));
    ShutdownPlan::remove(&settings.run_dir);
    // The exporter's manifest records and part number of an earlier instance run (kept
    // across exporter restarts within this one).
    for file in ["MANIFEST.jsonl", "MANIFEST.sending", "MANIFEST.next"] {
        let _ = std::fs::remove_file(settings.run_dir.join(file));
    }
    for directory in &settings.directories {
        sidecar_core::private::private_dir(directory).map_err(|source| {
            LifecycleError::Directory {
                path: directory.clone(),
                source,
            }
        })?;
    }
    let mut running: Vec<Running> = Vec::new();
    for program in &settings.graph.programs {
        if program.when == When::Fuse && !settings.fuse {
            continue;
        }
        if shutdown.is_requested() {
            break;
        }
        match start_one(settings, program, shutdown) {
            Ok(child) => {
                let is_mount = program.ready.kind == ReadyKind::Mount;
                running.push(Running {
                    program: program.clone(),
                    child,
                });
                if is_mount {
                    if let Err(error) = create_export_dir(settings) {
                        // Never leave the mounter (or anything started) running behind.
                        log::critical(&error.to_string());
                        stop_all(settings, &mut running, shutdown);
                        return Err(error);
                    }
                }
            }
            Err(error) => {
                log::critical(&error.to_string());
                stop_all(settings, &mut running, shutdown);
                return Err(error);
            }
        }
    }
    if !settings
        .graph
        .programs
        .iter()
        .any(|p| p.ready.kind == ReadyKind::Mount)
        || !settings.fuse
    {
        if let Err(error) = create_export_dir(settings) {
            log::critical(&error.to_string());
            stop_all(settings, &mut running, shutdown);
            return Err(error);
        }
    }
    log::notice("all programs started");
    watch(settings, &mut running, shutdown);
    Ok(stop_all(settings, &mut running, shutdown))
}

fn create_export_dir(settings: &LifecycleSettings) -> Result<(), LifecycleError> {
    if let Some(dir) = &settings.export_dir {
        std::fs::create_dir_all(dir).map_err(|source| LifecycleError::Directory {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

fn spec_for(settings: &LifecycleSettings, program: &Program) -> Result<ChildSpec, GraphError> {
    let mut words = Vec::with_capacity(program.command.len());
    for word in &program.command {
        words.push(expand(&program.name, word, &settings.vars)?);
    }
    let mut spec = ChildSpec::new(program.name.clone(), words.remove(0)).args(words);
    for (key, value) in &settings.env {
        spec = spec.env(key, value);
    }
    spec.stdout = program.stream_handling();
    spec.stderr = program.stream_handling();
    Ok(spec)
}

fn start_one(
    settings: &LifecycleSettings,
    program: &Program,
    shutdown: &Shutdown,
) -> Result<Supervised, LifecycleError> {
    let spec = spec_for(settings, program)?;
    let mut child = Supervised::start(spec, program.restart_policy(), None)
        .map_err(|e| LifecycleError::StartFailed(e.to_string()))?;
    let ready_path = expand(&program.name, &program.ready.path, &settings.vars)?;
    let started = Instant::now();
    let timeout = program.ready_timeout();
    loop {
        let ready = match program.ready.kind {
            ReadyKind::None => true,
            ReadyKind::Mount => is_mount_point(Path::new(&ready_path)),
            ReadyKind::File => readiness::check_named(&settings.run_dir, &ready_path).is_ready(),
        };
        if ready {
            log::event(
                Severity::Info,
                &format!("{} is ready", program.name),
                &ReadyEvent {
                    program: &program.name,
                    waited_ms: started.elapsed().as_millis(),
                },
            );
            return Ok(child);
        }
        if let Some(Event::GaveUp { exit }) = child.poll() {
            child.stop(Duration::from_secs(1));
            return Err(LifecycleError::StartFailed(not_ready_message(
                settings,
                program,
                &ready_path,
                started.elapsed(),
                &format!("it exited ({exit}) and was given up on"),
            )));
        }
        if started.elapsed() >= timeout {
            // Stopped gracefully, like everything else, so it can leave its files behind.
            child.stop(Duration::from_secs(1));
            return Err(LifecycleError::StartFailed(not_ready_message(
                settings,
                program,
                &ready_path,
                started.elapsed(),
                "timed out",
            )));
        }
        if settings.reap_orphans {
            reap_orphans_now();
        }
        if shutdown.wait_timeout(Duration::from_millis(50)) {
            return Ok(child);
        }
    }
}

fn not_ready_message(
    settings: &LifecycleSettings,
    program: &Program,
    ready_path: &str,
    waited: Duration,
    why: &str,
) -> String {
    let hint = expand(&program.name, &program.ready.hint, &settings.vars)
        .unwrap_or_else(|_| program.ready.hint.clone());
    let what = match program.ready.kind {
        ReadyKind::Mount => match settings.vars.get("PCAP_GCS_BUCKET") {
            Some(bucket) => format!("bucket {bucket} not mounted at {ready_path}"),
            None => format!("{ready_path} not mounted"),
        },
        _ => format!("{} not ready", program.name),
    };
    let mut message = format!("{what} after {} s ({why})", waited.as_secs());
    if !hint.is_empty() {
        message.push_str(": ");
        message.push_str(&hint);
    }
    message
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (field 5, octal escapes).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    let wanted = wanted.trim_end_matches('/');
    table.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mount| unescape_mountinfo(mount) == wanted)
    })
}

fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(byte) => out.push(byte as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn watch(settings: &LifecycleSettings, running: &mut [Running], shutdown: &Shutdown) {
    let mut gate_closed = false;
    while !shutdown.wait_timeout(Duration::from_millis(100)) {
        if settings.reap_orphans {
            reap_orphans_now();
        }
        let mut gave_up = None;
        for entry in running.iter_mut() {
            match entry.child.poll() {
                Some(Event::GaveUp { exit }) => {
                    gave_up = Some((entry.program.name.clone(), exit));
                }
                // A killed mounter leaves a dead mount ("transport endpoint is not
                // connected") on which its restart fails: release it first.
                Some(Event::Exited { .. }) if entry.program.ready.kind == ReadyKind::Mount => {
                    unmount_if_needed(settings, &entry.program);
                }
                _ => {}
            }
        }
        if let (Some((name, exit)), false) = (gave_up, gate_closed) {
            if let Some(gate) = running
                .iter_mut()
                .find(|r| Some(&r.program.name) == settings.gate.as_ref())
            {
                if gate.program.name != name {
                    log::critical(&format!(
                        "{name} failed for good ({exit}): stopping {} so the startup probe fails",
                        gate.program.name
                    ));
                    gate.child.stop(Duration::from_secs(1));
                    gate_closed = true;
                }
            }
        }
    }
}

/// A draining program (the exporter) caught waiting for its restart is started now and
/// waited for (until ready, at most half of its time) before it is stopped, so it drains and
/// reports instead of leaving every file unexported and unreported.
fn restart_to_drain(settings: &LifecycleSettings, entry: &mut Running, kill_at: Instant) {
    // An exit not noticed yet (killed a moment ago) becomes a pending restart first.
    let _ = entry.child.poll();
    match entry.child.restart_now() {
        // Running: perhaps restarted a moment ago (by that poll, or just before the signal),
        // its signal handler not installed yet — wait for its readiness all the same.
        None => {}
        Some(Err(error)) => {
            log::error(&format!(
                "{} could not be started to drain: {error}",
                entry.program.name
            ));
            return;
        }
        Some(Ok(pid)) => log::warning(&format!(
            "{} was waiting for its restart at shutdown: started it (pid {pid}) to drain",
            entry.program.name
        )),
    }
    if !matches!(entry.child.state(), State::Running { .. }) {
        return;
    }
    let Ok(ready_path) = expand(
        &entry.program.name,
        &entry.program.ready.path,
        &settings.vars,
    ) else {
        return;
    };
    let wait_until = Instant::now() + kill_at.saturating_duration_since(Instant::now()) / 2;
    while Instant::now() < wait_until {
        let ready = match entry.program.ready.kind {
            ReadyKind::File => readiness::check_named(&settings.run_dir, &ready_path).is_ready(),
            ReadyKind::Mount => is_mount_point(Path::new(&ready_path)),
            ReadyKind::None => true,
        };
        if ready {
            return;
        }
        if settings.reap_orphans {
            reap_orphans_now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Time kept for each program that stops after another one.
const STOP_RESERVE: Duration = Duration::from_millis(300);

/// PID 1: reaps orphans now (children's statuses are kept for their handles).
fn reap_orphans_now() {
    for (pid, exit) in child_process::collect_exits() {
        log::debug(&format!("reaped orphan {pid} ({exit})"));
    }
}

fn stop_all(
    settings: &LifecycleSettings,
    running: &mut [Running],
    shutdown: &Shutdown,
) -> ShutdownSummary {
    let started = Instant::now();
    // One deadline for the whole graph, counted from the signal (not from now: the watch
    // loop may have taken a moment to notice it).
    let deadline = shutdown.requested_at().unwrap_or(started) + settings.shutdown_budget;
    let mut order: Vec<usize> = (0..running.len()).collect();
    order.sort_by_key(|&i| (running[i].program.stop_order, std::cmp::Reverse(i)));
    // The instant each program is killed if still running: a little time is kept for every
    // program that stops after it. Written down before anyone is signalled, so each daemon
    // plans against the same instants (see sidecar_core::deadline).
    let kill_at: Vec<Instant> = (0..order.len())
        .map(|position| {
            let later = (order.len() - position - 1) as u32;
            deadline
                .checked_sub(STOP_RESERVE * later)
                .unwrap_or(started)
        })
        .collect();
    let plan = ShutdownPlan {
        supervisor_pid: std::process::id(),
        deadline_unix_ms: deadline::unix_ms(deadline),
        kill_unix_ms: order
            .iter()
            .zip(&kill_at)
            .map(|(&i, &at)| (running[i].program.name.clone(), deadline::unix_ms(at)))
            .collect(),
    };
    if let Err(error) = plan.write(&settings.run_dir) {
        log::error(&format!(
            "cannot hand the shutdown deadline down ({error}); programs plan with PCAP_SHUTDOWN_SECS"
        ));
    }
    let mut stopped = Vec::with_capacity(order.len());
    for (position, &index) in order.iter().enumerate() {
        let entry = &mut running[index];
        let mut grace = kill_at[position]
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        if shutdown.signals_received() >= 2 {
            grace = Duration::from_millis(100);
        }
        let t0 = Instant::now();
        if entry.program.drain {
            restart_to_drain(settings, entry, kill_at[position]);
        }
        let was_stopped = matches!(entry.child.state(), State::Stopped { .. });
        let mut exit = entry.child.stop(grace);
        // Exit 0, death by SIGTERM, or 143 (128 + SIGTERM: how many programs report having
        // honoured it) all mean the program stopped as asked.
        let sigterm = nix::sys::signal::Signal::SIGTERM as i32;
        let as_asked = |exit: Exit| {
            matches!(exit, Exit::Code(0))
                || exit == Exit::Signal(sigterm)
                || exit == Exit::Code(128 + sigterm)
        };
        // An exporter that wrote its report has drained (its exit 1 says files were not
        // exported): started again, it would export after its report, unrecorded.
        let reported = FilesReport::read(&settings.run_dir).is_some();
        if entry.program.drain && !as_asked(exit) && t0.elapsed() < grace && !reported {
            // It had died on its own a moment before (its exit not noticed yet): start it
            // once more so that it drains, then stop it again.
            restart_to_drain(settings, entry, kill_at[position]);
            if matches!(entry.child.state(), State::Running { .. }) {
                let grace = kill_at[position]
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(200));
                exit = entry.child.stop(grace);
            }
        }
        let clean = was_stopped || as_asked(exit);
        stopped.push(StopReport {
            program: entry.program.name.clone(),
            exit: exit.to_string(),
            clean,
            took_ms: t0.elapsed().as_millis(),
        });
        if entry.program.ready.kind == ReadyKind::Mount {
            unmount_if_needed(settings, &entry.program);
        }
    }
    if settings.reap_orphans {
        reap_orphans_now();
    }
    let files = FilesReport::read(&settings.run_dir);
    let clean = stopped.iter().all(|s| s.clean) && files.as_ref().is_none_or(|f| f.lost_nothing());
    ShutdownSummary {
        stopped,
        total_ms: started.elapsed().as_millis(),
        files,
        clean,
    }
}

fn unmount_if_needed(settings: &LifecycleSettings, program: &Program) {
    let Ok(path) = expand(&program.name, &program.ready.path, &settings.vars) else {
        return;
    };
    if !is_mount_point(Path::new(&path)) {
        return;
    }
    // The mounter normally unmounts on SIGTERM; a lazy unmount releases what it left.
    for command in [["fusermount3", "-u", "-z"], ["umount", "-l", "--"]] {
        let status = std::process::Command::new(command[0])
            .args(&command[1..])
            .arg(&path)
            .status();
        if status.is_ok_and(|s| s.success()) {
            return;
        }
    }
    log::error(&format!(
        "{path} is still mounted after {} stopped",
        program.name
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Discovered;
    use crate::graph::DEFAULT_GRAPH;
    use sidecar_core::config::Config;

    /// The settings pcap-init builds for `vars` (and nothing else) in the environment.
    fn settings_for(vars: &[(&str, &str)]) -> LifecycleSettings {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let config = Config::from_lookup(&lookup).unwrap_or_else(|e| panic!("{e:?}"));
        let discovered = Discovered {
            project: Some("my-project".into()),
            region: Some("us-central1".into()),
            instance: Some("0123abcd".into()),
            service: Some("hello".into()),
            revision: Some("hello-00001-abc".into()),
            startup: chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default(),
        };
        let graph = ProcessGraph::parse(DEFAULT_GRAPH).unwrap_or_else(|e| panic!("{e}"));
        crate::supervisor_settings(&config, &discovered, graph)
    }

    /// The command line of `name` in the default graph, as it would be spawned.
    fn command_of(settings: &LifecycleSettings, name: &str) -> Vec<String> {
        let program = settings
            .graph
            .programs
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} is in the default graph"));
        let spec = spec_for(settings, program).unwrap_or_else(|e| panic!("{e}"));
        std::iter::once(spec.program.display().to_string())
            .chain(spec.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn the_bucket_is_mounted_with_this_gcsfuse_command_line() {
        let settings = settings_for(&[("PCAP_GCS_BUCKET", "my-bucket"), ("GCS_MOUNT", "/pcap")]);
        assert!(settings.fuse, "a bucket with PCAP_GCS_FUSE unset mounts it");
        assert_eq!(
            command_of(&settings, "gcsfuse"),
            [
                "gcsfuse",
                "--foreground",
                "--implicit-dirs",
                "--log-format=json",
                "--log-severity=info",
                "--file-mode=600",
                "--dir-mode=700",
                "my-bucket",
                "/pcap",
            ]
        );
        // Files are moved under the bucket path inside the mount.
        assert_eq!(
            settings.export_dir.as_deref(),
            Some(Path::new(
                "/pcap/my-project/hello/us-central1/hello-00001-abc/20260528T202640Z/0123abcd"
            ))
        );
        let fsnotify = command_of(&settings, "pcap-fsnotify");
        assert_eq!(
            fsnotify[1..],
            [
                "--bucket-path",
                "my-project/hello/us-central1/hello-00001-abc/20260528T202640Z/0123abcd"
            ]
        );
    }

    #[test]
    fn gcsfuse_runs_only_for_a_bucket_with_fuse() {
        let api = settings_for(&[("PCAP_GCS_BUCKET", "my-bucket"), ("PCAP_GCS_FUSE", "false")]);
        assert!(!api.fuse, "PCAP_GCS_FUSE=false uploads through the API");
        assert_eq!(api.export_dir, None, "nothing is moved into GCS_MOUNT");
        let directory = settings_for(&[("GCS_MOUNT", "/mnt/volume")]);
        assert!(
            !directory.fuse,
            "no bucket: a plain directory (volume mount)"
        );
        assert_eq!(
            directory
                .export_dir
                .as_deref()
                .map(|d| d.starts_with("/mnt/volume/my-project")),
            Some(true)
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(Path::new("/proc/self")));
    }
}
