//! `pcap-fsnotify`: exports every completed capture file, and loses none silently.
//!
//! [`run`] watches the capture directory (`GCS_MOUNT-tmp`) with inotify. A file is complete
//! when its writer closes it (close-after-write), not when the next file appears; files found
//! at start-up are complete unless some process still has them open for writing (read from
//! `/proc`). Only capture file names ([`CaptureFileName`]) are touched.
//!
//! Complete files are exported oldest first by a few worker threads through an
//! [`export::Destination`] (optionally gzipped), and deleted only once the destination has
//! confirmed them. A failure is logged with the file and the reason and retried with
//! exponential backoff; a file that can never be exported (a FIFO, a directory) is kept and
//! reported. A byte budget bounds the directory: when it is exceeded, the configured policy
//! picks completed files to give up, each logged by name.
//!
//! On shutdown (SIGTERM) it drains: waits (bounded) for the writers' last files to close,
//! exports everything left — compressing only while the time budget allows — and ends with
//! one line counting what was exported and naming what was not ([`Summary`]).
//!
//! - [`backlog`]: the table of known files and the budget policy.
//! - [`cli`]: the command line and which destination a configuration picks.
//! - [`procfs`]: which files are still open for writing.
//! - [`manifest`]: the completeness manifest written into the bucket, and its verification.

pub mod backlog;
pub mod cli;
pub mod manifest;
pub mod procfs;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use export::{CommitGate, Compression, Delivery, Destination, Export, ExportError};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use serde::Serialize;
use sidecar_core::config::BacklogPolicy;
use sidecar_core::log::{self, Severity};
use sidecar_core::naming::CaptureFileName;
use sidecar_core::readiness::{ReadySignal, FSNOTIFY_READY_FILE, FSNOTIFY_SUMMARY_FILE};
use sidecar_core::shutdown::Shutdown;

use backlog::{Backlog, Entry, State};
use manifest::{Manifest, Record};

/// How the exporter behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The watched capture directory (`GCS_MOUNT-tmp`).
    pub capture_dir: PathBuf,
    /// Object path put before every file name (`PROJECT/SERVICE/…`); empty for none.
    pub bucket_path: String,
    /// Whether and how files are compressed.
    pub compression: Compression,
    /// Byte budget of the capture directory; 0 means no limit.
    pub budget_bytes: u64,
    /// What to give up when the budget is exceeded.
    pub policy: BacklogPolicy,
    /// Concurrent exports.
    pub workers: usize,
    /// First retry delay; doubled on each failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Time budget of the drain after shutdown is requested (`PCAP_SHUTDOWN_SECS`).
    pub shutdown_budget: Duration,
    /// Where the "watch installed" readiness file is raised (`PCAP_RUN_DIR`); `None` for no
    /// signal.
    pub run_dir: Option<PathBuf>,
    /// How often new manifest records are delivered as the next part (`PCAP_MANIFEST_SECS`).
    pub manifest_every: Duration,
}

impl Settings {
    /// Defaults for everything but the directory and the path.
    pub fn new(capture_dir: PathBuf, bucket_path: String) -> Self {
        Settings {
            capture_dir,
            bucket_path,
            compression: Compression::Gzip { level: 1 },
            budget_bytes: 0,
            policy: BacklogPolicy::DropOldest,
            workers: 2,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            shutdown_budget: Duration::from_secs(9),
            run_dir: None,
            manifest_every: Duration::from_secs(60),
        }
    }
}

/// What happened, reported in the final line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files exported (or found already exported) and deleted locally.
    pub exported: u64,
    /// Bytes read from exported files.
    pub exported_bytes: u64,
    /// Bytes stored at the destination.
    pub stored_bytes: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Files not exported: still in the capture directory (or vanished), by name.
    pub not_exported: Vec<String>,
    /// Files given up by the budget policy, by name.
    pub dropped: Vec<String>,
    /// Milliseconds the drain took.
    pub drain_ms: u64,
    /// The last manifest part this exporter wrote (`…/MANIFEST.jsonl`, `…/MANIFEST-<n>.jsonl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl Summary {
    /// Nothing was lost: every file seen was exported.
    pub fn is_complete(&self) -> bool {
        self.not_exported.is_empty() && self.dropped.is_empty()
    }
}

/// Why the exporter could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The capture directory could not be created or read.
    #[error("capture directory {}: {source}", path.display())]
    CaptureDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The inotify watch could not be installed.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: notify::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
}

/// This program's name in pcap-init's process graph (and its shutdown plan).
const PROGRAM: &str = "pcap-fsnotify";
/// Time kept back from the drain budget for the last manifest part, the final line and the
/// exit.
const DRAIN_RESERVE: Duration = Duration::from_millis(1000);
/// Of that, what is kept for logging the manifest's records and the final line.
const REPORT_MARGIN: Duration = Duration::from_millis(300);
/// Of the reserve, what is kept from exports still under way for the last manifest part and
/// the report.
const COMMIT_RESERVE: Duration = Duration::from_millis(700);
/// Longest wait for writers to close their last files after shutdown.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Retry delay while draining: the time budget is short.
const DRAIN_BACKOFF: Duration = Duration::from_millis(200);
/// A full rescan of the directory catches anything inotify missed.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
const STATS_EVERY: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(500);
/// Assumed compression speed per worker before one has been measured (bytes/s).
const INITIAL_RATE: f64 = 40e6;

enum Msg {
    Fs(notify::Result<Event>),
    Done(Box<Outcome>),
    Shutdown,
}

struct Job {
    name: CaptureFileName,
    path: PathBuf,
    object: String,
    compression: Compression,
    /// Where the writers' drop journals are (`PCAP_RUN_DIR`), for the manifest.
    run_dir: Option<PathBuf>,
}

struct Outcome {
    name: CaptureFileName,
    object: String,
    compression: Compression,
    result: Result<Delivery, ExportError>,
    elapsed: Duration,
    /// Deleting the local file after a confirmed export failed.
    delete_error: Option<io::Error>,
}

#[derive(Serialize)]
struct Started<'a> {
    capture_dir: &'a Path,
    destination: &'a str,
    bucket_path: &'a str,
    compress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    compress_level: Option<u32>,
    budget_bytes: u64,
    policy: &'a str,
    workers: usize,
}

#[derive(Serialize)]
struct FileEvent<'a> {
    file: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct Exported<'a> {
    file: &'a str,
    object: &'a str,
    location: &'a str,
    bytes: u64,
    stored_bytes: u64,
    compressed: bool,
    already_present: bool,
    attempts: u32,
    elapsed_ms: u64,
}

#[derive(Serialize)]
struct Failed<'a> {
    file: &'a str,
    object: &'a str,
    reason: String,
    kind: &'a str,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<u64>,
}

#[derive(Serialize)]
struct ManifestProblem<'a> {
    object: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Undelivered<'a> {
    record: &'a Record,
}

#[derive(Serialize)]
struct Dropped<'a> {
    file: &'a str,
    bytes: u64,
    policy: &'a str,
    budget_bytes: u64,
    backlog_bytes: u64,
}

#[derive(Serialize)]
struct Stats {
    pending_files: usize,
    pending_bytes: u64,
    in_flight: usize,
    exported: u64,
    retries: u64,
    dropped: usize,
}

#[derive(Serialize)]
struct DrainStarted {
    pending_files: usize,
    pending_bytes: u64,
    open_files: usize,
    budget_ms: u64,
    /// Who set the deadline: `pcap-init` (its plan) or `PCAP_SHUTDOWN_SECS`.
    deadline_from: &'static str,
}

#[derive(Serialize)]
struct Leftover<'a> {
    object: &'a str,
}

#[derive(Serialize)]
struct Problem<'a> {
    error: &'a str,
}

/// Runs the exporter until `shutdown` is requested and the drain is over.
pub fn run(
    settings: &Settings,
    destination: Arc<dyn Destination>,
    shutdown: &Shutdown,
) -> Result<Summary, RunError> {
    let dir = &settings.capture_dir;
    sidecar_core::private::private_dir(dir).map_err(|source| RunError::CaptureDir {
        path: dir.clone(),
        source,
    })?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let events = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(Msg::Fs(event));
    })
    .map_err(|source| RunError::Watch {
        path: dir.clone(),
        source,
    })?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|source| RunError::Watch {
            path: dir.clone(),
            source,
        })?;

    let forward = tx.clone();
    let waiter = shutdown.clone();
    std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            while !waiter.wait_timeout(Duration::from_secs(3600)) {}
            let _ = forward.send(Msg::Shutdown);
        })
        .map_err(RunError::Thread)?;

    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let gate = Arc::new(CommitGate::default());
    let manifest = settings.run_dir.as_deref().map(Manifest::new);
    for index in 0..settings.workers.max(1) {
        let jobs = Arc::clone(&jobs_rx);
        let done = tx.clone();
        let destination = Arc::clone(&destination);
        let gate = Arc::clone(&gate);
        let manifest = manifest.clone();
        std::thread::Builder::new()
            .name(format!("export-{index}"))
            .spawn(move || worker(&jobs, &done, destination.as_ref(), &gate, manifest.as_ref()))
            .map_err(RunError::Thread)?;
    }
    drop(tx);

    let description = destination.describe();
    let (compress, compress_level) = match settings.compression {
        Compression::Gzip { level } => (true, Some(level)),
        Compression::None => (false, None),
    };
    log::event(
        Severity::Notice,
        "exporting completed capture files",
        &Started {
            capture_dir: dir,
            destination: &description,
            bucket_path: &settings.bucket_path,
            compress,
            compress_level,
            budget_bytes: settings.budget_bytes,
            policy: settings.policy.as_str(),
            workers: settings.workers.max(1),
        },
    );

    let mut exporter = Exporter {
        settings,
        destination: Arc::clone(&destination),
        cleaned_up: false,
        backlog: Backlog::default(),
        summary: Summary::default(),
        in_flight: 0,
        exports_healthy: false,
        jobs: jobs_tx,
        rate: INITIAL_RATE,
        drain: None,
        vanished: Vec::new(),
        unknown_writers: None,
        manifest,
        manifest_part: None,
        gate,
    };
    // The watch is installed before the scan, so no file falls between the two.
    exporter.scan();
    let _ready = match &settings.run_dir {
        Some(run_dir) => {
            match ReadySignal::raise_named(
                run_dir,
                FSNOTIFY_READY_FILE,
                std::process::id(),
                &format!("watching {}", dir.display()),
            ) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    log::event(
                        Severity::Error,
                        "cannot raise the readiness signal",
                        &Problem {
                            error: &error.to_string(),
                        },
                    );
                    None
                }
            }
        }
        None => None,
    };
    let summary = exporter.event_loop(&rx);
    drop(watcher);
    if let Some(run_dir) = &settings.run_dir {
        // pcap-init reads this for the sidecar's last log line (files exported / lost).
        if let Err(error) = write_summary(run_dir, &summary) {
            log::event(
                Severity::Warning,
                "cannot write the export summary",
                &Problem {
                    error: &error.to_string(),
                },
            );
        }
    }
    Ok(summary)
}

/// Writes `summary` to `<run_dir>/`[`FSNOTIFY_SUMMARY_FILE`] (temporary name, then rename).
fn write_summary(run_dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let text = serde_json::to_vec(summary).map_err(std::io::Error::other)?;
    let temporary = run_dir.join(format!(".{FSNOTIFY_SUMMARY_FILE}.tmp"));
    fs::write(&temporary, text)?;
    fs::rename(&temporary, run_dir.join(FSNOTIFY_SUMMARY_FILE))
}

fn worker(
    jobs: &Mutex<Receiver<Job>>,
    done: &Sender<Msg>,
    destination: &dyn Destination,
    gate: &CommitGate,
    manifest: Option<&Manifest>,
) {
    loop {
        let job = {
            let Ok(receiver) = jobs.lock() else { return };
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let started = Instant::now();
        let contents = manifest::contents(&job.path, &job.name, job.run_dir.as_deref());
        let entered = gate.enter();
        let result = match entered {
            Some(_) => destination.deliver(&Export {
                source: &job.path,
                object: &job.object,
                compression: job.compression,
                gate: Some(gate),
            }),
            None => Err(ExportError::Stopped {
                target: job.object.clone(),
            }),
        };
        // Recorded before the local file goes: a kill in between leaves a file that is
        // exported again (and recognised), never an object no record names.
        if let (Ok(delivery), Some(manifest)) = (&result, manifest) {
            let file = job.name.to_string();
            if let Err(error) =
                manifest.append(&exported_record(&file, &job.object, delivery, contents))
            {
                log::event(
                    Severity::Error,
                    "cannot write the manifest",
                    &Problem {
                        error: &error.to_string(),
                    },
                );
            }
        }
        // Delete right away, in the worker: the file is memory on Cloud Run.
        let delete_error = match &result {
            Ok(_) => match fs::remove_file(&job.path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => Some(error),
                _ => None,
            },
            Err(_) => None,
        };
        let outcome = Outcome {
            name: job.name,
            object: job.object,
            compression: job.compression,
            result,
            elapsed: started.elapsed(),
            delete_error,
        };
        let sent = done.send(Msg::Done(Box::new(outcome)));
        // Left after its outcome is sent: once nothing is under way, every outcome is there.
        drop(entered);
        if sent.is_err() {
            return;
        }
    }
}

/// The manifest record of an exported file.
fn exported_record(
    file: &str,
    object: &str,
    delivery: &Delivery,
    contents: manifest::Contents,
) -> Record {
    Record {
        object: object.rsplit('/').next().map(str::to_string),
        bytes: delivery.bytes_read,
        stored_bytes: Some(delivery.bytes_stored),
        crc32c: Some(export::crc32c_base64(delivery.crc32c)),
        ..not_exported_record(file, 0, contents, manifest::Outcome::Exported, None)
    }
}

struct Drain {
    started: Instant,
    deadline: Instant,
    close_wait_until: Instant,
}

struct Exporter<'a> {
    settings: &'a Settings,
    destination: Arc<dyn Destination>,
    /// Leftovers of a killed earlier run have been deleted at the destination.
    cleaned_up: bool,
    backlog: Backlog,
    summary: Summary,
    in_flight: usize,
    /// The last export succeeded: then idle workers are not "behind" (see the budget).
    exports_healthy: bool,
    jobs: Sender<Job>,
    /// Measured compression speed per worker (bytes/s), smoothed.
    rate: f64,
    drain: Option<Drain>,
    vanished: Vec<String>,
    /// Why the last `/proc` snapshot was incomplete, if it was.
    unknown_writers: Option<String>,
    /// The completeness manifest (with a run directory only).
    manifest: Option<Manifest>,
    /// The manifest part on its way: (part number, object) or (object, why not).
    manifest_part: Option<Receiver<PartResult>>,
    /// Closed at the end, so that nothing is committed after the report.
    gate: Arc<CommitGate>,
}

type PartResult = Result<(u32, String), (String, String)>;

/// Delivers the cut manifest part as the next part number (or the next free one: a name
/// taken by an earlier drain of the same path is skipped, never overwritten).
fn deliver_part(
    destination: &dyn Destination,
    manifest: &Manifest,
    bucket_path: &str,
) -> PartResult {
    let source = manifest.sending_path();
    let first = manifest.next_part();
    let mut last_object = String::new();
    for part in first..first.saturating_add(100) {
        let leaf = manifest::part_name(part);
        let object = if bucket_path.is_empty() {
            leaf
        } else {
            format!("{bucket_path}/{leaf}")
        };
        match destination.deliver(&Export {
            source,
            object: &object,
            compression: Compression::None,
            gate: None,
        }) {
            Ok(_) => return Ok((part, object)),
            Err(ExportError::Conflict { .. }) => last_object = object,
            Err(error) => return Err((object, error.to_string())),
        }
    }
    Err((last_object, "100 part names taken".into()))
}

impl Exporter<'_> {
    fn event_loop(&mut self, rx: &Receiver<Msg>) -> Summary {
        let mut last_scan = Instant::now();
        let mut last_stats = Instant::now();
        let mut last_manifest = Instant::now();
        loop {
            let now = Instant::now();
            if let Some((close_wait_until, deadline)) = self
                .drain
                .as_ref()
                .map(|d| (d.close_wait_until, d.deadline))
            {
                if now >= close_wait_until {
                    self.force_open_ready();
                } else {
                    self.recheck_open();
                }
                if !self.backlog.has_work() || now >= deadline {
                    self.stop_commits(rx);
                    return self.finish();
                }
            }
            // Before dispatching, so the policy, not the worker's pick, decides what goes.
            self.enforce_budget();
            self.dispatch(now);
            let mut wake = now + TICK;
            if let Some(at) = self.backlog.next_retry() {
                wake = wake.min(at);
            }
            if let Some(drain) = &self.drain {
                wake = wake
                    .min(drain.deadline)
                    .min(now + Duration::from_millis(100));
            }
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(Msg::Fs(event)) => self.on_fs(event),
                Ok(Msg::Done(outcome)) => self.on_done(*outcome),
                Ok(Msg::Shutdown) => self.start_drain(),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop_commits(rx);
                    return self.finish();
                }
            }
            let now = Instant::now();
            if now.duration_since(last_scan) >= RESCAN_EVERY {
                last_scan = now;
                self.scan();
            }
            self.enforce_budget();
            if now.duration_since(last_stats) >= STATS_EVERY {
                last_stats = now;
                self.stats();
            }
            // Not while exports fail (the part would block the loop on the same failure) nor
            // while draining (the drain's end writes the last part).
            self.finish_manifest_part(Duration::ZERO, false);
            if now.duration_since(last_manifest) >= self.settings.manifest_every
                && self.exports_healthy
                && self.drain.is_none()
            {
                last_manifest = now;
                self.start_manifest_part();
            }
        }
    }

    /// When this process is killed: at the end of the drain's reserve, or (no drain) a
    /// shutdown budget from now.
    fn kill_at(&self) -> Instant {
        self.drain.as_ref().map_or_else(
            || Instant::now() + self.settings.shutdown_budget,
            |d| d.deadline + DRAIN_RESERVE,
        )
    }

    /// No commit after this: exports under way get a moment to finish (their outcomes are
    /// taken in), the others give up before their commit. What the report then says was
    /// not exported is not in the bucket.
    fn stop_commits(&mut self, rx: &Receiver<Msg>) {
        let wait = self
            .kill_at()
            .saturating_duration_since(Instant::now())
            .saturating_sub(COMMIT_RESERVE);
        let settled = self.gate.stop(wait);
        while let Ok(message) = rx.try_recv() {
            if let Msg::Done(outcome) = message {
                self.on_done(*outcome);
            }
        }
        if !settled {
            log::warning("exports still under way at the deadline will not be committed");
        }
    }

    /// Hands the oldest ready files to idle workers.
    fn dispatch(&mut self, now: Instant) {
        while self.in_flight < self.settings.workers.max(1) {
            let Some(entry) = self.backlog.take_next(now) else {
                return;
            };
            let compression = self.compression_for(&entry, now);
            let object = self.object_name(&entry, compression);
            let job = Job {
                name: entry.name.clone(),
                path: entry.path.clone(),
                object,
                compression,
                run_dir: self.settings.run_dir.clone(),
            };
            if self.jobs.send(job).is_err() {
                // No worker left (cannot happen while the loop runs); keep the file.
                if let Some(e) = self.backlog.get_mut(&entry.name) {
                    e.state = State::Ready;
                }
                return;
            }
            self.in_flight += 1;
        }
    }

    /// While draining, compress only if the pending bytes can be compressed in about half
    /// of the time left; otherwise send files as they are (larger, but in time).
    fn compression_for(&self, entry: &Entry, now: Instant) -> Compression {
        let Some(drain) = &self.drain else {
            return self.settings.compression;
        };
        if self.settings.compression == Compression::None {
            return Compression::None;
        }
        let pending: u64 = self
            .backlog
            .iter()
            .filter(|e| matches!(e.state, State::Ready | State::Waiting(_) | State::Open))
            .map(|e| e.size)
            .sum::<u64>()
            + entry.size;
        let workers = self.settings.workers.max(1) as f64;
        let needed = pending as f64 / (self.rate * workers);
        let left = drain.deadline.saturating_duration_since(now).as_secs_f64();
        if needed <= left * 0.5 {
            self.settings.compression
        } else {
            Compression::None
        }
    }

    fn object_name(&self, entry: &Entry, compression: Compression) -> String {
        let file = format!("{}{}", entry.export_name(), compression.suffix());
        if self.settings.bucket_path.is_empty() {
            file
        } else {
            format!("{}/{file}", self.settings.bucket_path)
        }
    }

    fn on_fs(&mut self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                log::event(
                    Severity::Warning,
                    "watch error; rescanning the capture directory",
                    &Problem {
                        error: &error.to_string(),
                    },
                );
                self.scan();
                return;
            }
        };
        if event.need_rescan() {
            log::warning("inotify queue overflowed; rescanning the capture directory");
            self.scan();
            return;
        }
        for path in &event.paths {
            let Some(name) = capture_name(path) else {
                continue;
            };
            match event.kind {
                EventKind::Create(_) => self.backlog.observe_open(name, path.clone()),
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    self.complete(name, path);
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::To))
                | EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                    // Renamed into place: complete unless a writer still holds it.
                    if path.exists() {
                        let open = procfs::open_for_writing(&self.settings.capture_dir);
                        self.note_unknown_writers(&open.unknown);
                        if open.may_be_open(&canonical(path)) {
                            self.backlog.observe_open(name, path.clone());
                        } else {
                            self.complete(name, path);
                        }
                    } else {
                        self.backlog.forget(&name);
                    }
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                    self.backlog.forget(&name);
                }
                _ => {}
            }
        }
    }

    fn complete(&mut self, name: CaptureFileName, path: &Path) {
        let size = fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0);
        let file = name.to_string();
        if self
            .backlog
            .observe_complete(name, path.to_path_buf(), size)
        {
            log::event(
                Severity::Debug,
                "capture file complete",
                &FileEvent {
                    file: &file,
                    bytes: size,
                },
            );
        }
    }

    /// Reads the whole directory: new files are complete unless open for writing; known
    /// open files whose writer is gone (a missed event, a killed writer) become complete.
    fn scan(&mut self) {
        if !self.cleaned_up {
            self.clean_up_destination();
        }
        let dir = &self.settings.capture_dir;
        let files = match survey(dir, procfs::open_for_writing) {
            Ok(files) => files,
            Err(error) => {
                log::event(
                    Severity::Error,
                    "cannot read the capture directory",
                    &Problem {
                        error: &error.to_string(),
                    },
                );
                return;
            }
        };
        self.note_unknown_writers(&files.unknown);
        for (name, path, open) in files.files {
            if open {
                self.backlog.observe_open(name, path);
            } else {
                self.complete(name, &path);
            }
        }
    }

    /// Deletes the temporary objects a killed earlier run left (never a final name); tried
    /// again at every rescan until it worked (the mount may not be there yet).
    fn clean_up_destination(&mut self) {
        match self.destination.clean_up(&self.settings.bucket_path) {
            Ok(removed) => {
                self.cleaned_up = true;
                for object in removed {
                    log::event(
                        Severity::Warning,
                        "deleted a partial object left by a killed run",
                        &Leftover { object: &object },
                    );
                }
            }
            Err(error) => log::event(
                Severity::Warning,
                "cannot clean up partial objects of an earlier run yet",
                &Problem {
                    error: &error.to_string(),
                },
            ),
        }
    }

    /// `/proc` could not show every writer: files are then complete only by their close
    /// event (or the drain's close wait). Logged once per distinct reason.
    fn note_unknown_writers(&mut self, unknown: &Option<String>) {
        if unknown.is_some() && *unknown != self.unknown_writers {
            log::event(
                Severity::Warning,
                "cannot see every process's open files; files wait for their close event",
                &Problem {
                    error: unknown.as_deref().unwrap_or_default(),
                },
            );
        }
        self.unknown_writers = unknown.clone();
    }

    fn on_done(&mut self, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let file = outcome.name.to_string();
        match outcome.result {
            Ok(delivery) => {
                self.exports_healthy = true;
                let attempts = self
                    .backlog
                    .remove(&outcome.name)
                    .map_or(1, |e| e.attempts + 1);
                if let Compression::Gzip { .. } = outcome.compression {
                    if outcome.elapsed > Duration::from_millis(50) && delivery.bytes_read > 0 {
                        let measured = delivery.bytes_read as f64 / outcome.elapsed.as_secs_f64();
                        self.rate = 0.5 * self.rate + 0.5 * measured;
                    }
                }
                // Its manifest record was written by the worker, before the local file went.
                self.summary.exported += 1;
                self.summary.exported_bytes += delivery.bytes_read;
                self.summary.stored_bytes += delivery.bytes_stored;
                log::event(
                    Severity::Info,
                    "exported",
                    &Exported {
                        file: &file,
                        object: &outcome.object,
                        location: &delivery.location,
                        bytes: delivery.bytes_read,
                        stored_bytes: delivery.bytes_stored,
                        compressed: outcome.compression != Compression::None,
                        already_present: delivery.already_present,
                        attempts,
                        elapsed_ms: outcome.elapsed.as_millis() as u64,
                    },
                );
                if let Some(error) = outcome.delete_error {
                    // The next scan finds it again and recognises the exported object.
                    log::event(
                        Severity::Warning,
                        "exported file could not be deleted; it will be checked again",
                        &Failed {
                            file: &file,
                            object: &outcome.object,
                            reason: error.to_string(),
                            kind: "delete",
                            attempt: attempts,
                            retry_in_ms: None,
                        },
                    );
                }
            }
            Err(error) => {
                // Only the destination failing means exports have fallen behind: a name
                // conflict (exported under the next name at once), a vanished or unreadable
                // local file say nothing about it.
                if destination_failed(&error) {
                    self.exports_healthy = false;
                }
                self.on_failure(&outcome.name, &outcome.object, &error)
            }
        }
    }

    fn on_failure(&mut self, name: &CaptureFileName, object: &str, error: &ExportError) {
        let draining = self.drain.is_some();
        let (min, max) = (self.settings.min_backoff, self.settings.max_backoff);
        let Some(entry) = self.backlog.get_mut(name) else {
            return;
        };
        entry.attempts += 1;
        let attempt = entry.attempts;
        let file = name.to_string();
        let reason = error.to_string();
        match error {
            ExportError::Conflict { .. } => {
                // Another object already holds this name: never overwrite, take the next
                // free name instead (`-<n>` before the extension).
                entry.seq_bump += 1;
                entry.state = State::Ready;
                log::event(
                    Severity::Warning,
                    "an object with other content has this name; exporting under the next name",
                    &Failed {
                        file: &file,
                        object,
                        reason,
                        kind: error.kind(),
                        attempt,
                        retry_in_ms: Some(0),
                    },
                );
            }
            ExportError::Vanished { .. } => {
                self.backlog.remove(name);
                self.vanished.push(file.clone());
                self.record(not_exported_record(
                    &file,
                    0,
                    manifest::Contents::default(),
                    manifest::Outcome::NotExported,
                    Some(format!("vanished before it was exported: {reason}")),
                ));
                log::event(
                    Severity::Error,
                    "capture file vanished before it was exported",
                    &Failed {
                        file: &file,
                        object,
                        reason,
                        kind: error.kind(),
                        attempt,
                        retry_in_ms: None,
                    },
                );
            }
            ExportError::NotAFile { .. } | ExportError::InvalidName { .. } => {
                entry.state = State::Rejected;
                log::event(
                    Severity::Error,
                    "cannot export this file; it is kept and reported",
                    &Failed {
                        file: &file,
                        object,
                        reason,
                        kind: error.kind(),
                        attempt,
                        retry_in_ms: None,
                    },
                );
            }
            // Everything else may heal (network, bucket, mount, permissions): never forget.
            _ => {
                let delay = if draining {
                    DRAIN_BACKOFF
                } else {
                    backoff(min, max, attempt)
                };
                entry.state = State::Waiting(Instant::now() + delay);
                self.summary.retries += 1;
                log::event(
                    Severity::Warning,
                    "export failed; will retry",
                    &Failed {
                        file: &file,
                        object,
                        reason,
                        kind: error.kind(),
                        attempt,
                        retry_in_ms: Some(delay.as_millis() as u64),
                    },
                );
            }
        }
    }

    fn enforce_budget(&mut self) {
        let budget = self.settings.budget_bytes;
        if budget == 0 {
            return;
        }
        // Files being written grow without events we act on: refresh their sizes.
        for entry in self.backlog.iter_mut() {
            if entry.state == State::Open {
                entry.size = fs::symlink_metadata(&entry.path).map_or(entry.size, |m| m.len());
            }
        }
        let backlog_bytes = self.backlog.bytes();
        let spare = if self.exports_healthy {
            self.settings.workers.max(1).saturating_sub(self.in_flight)
        } else {
            0
        };
        for victim in self
            .backlog
            .over_budget(budget, self.settings.policy, spare)
        {
            let Some(entry) = self.backlog.remove(&victim) else {
                continue;
            };
            let file = entry.file();
            let contents =
                manifest::contents(&entry.path, &entry.name, self.settings.run_dir.as_deref());
            if let Err(error) = fs::remove_file(&entry.path) {
                if error.kind() != io::ErrorKind::NotFound {
                    // Could not give it up: keep it known so it is still exported later.
                    log::event(
                        Severity::Error,
                        "backlog over budget but a file could not be deleted",
                        &Problem {
                            error: &format!("{file}: {error}"),
                        },
                    );
                    self.backlog
                        .observe_complete(entry.name, entry.path, entry.size);
                    continue;
                }
            }
            log::event(
                Severity::Error,
                "capture directory over its byte budget: deleted a completed file without exporting it",
                &Dropped {
                    file: &file,
                    bytes: entry.size,
                    policy: self.settings.policy.as_str(),
                    budget_bytes: budget,
                    backlog_bytes,
                },
            );
            self.record(not_exported_record(
                &file,
                entry.size,
                contents,
                manifest::Outcome::Dropped,
                Some(format!(
                    "budget policy {}: directory over PCAP_BACKLOG_MB ({budget} bytes)",
                    self.settings.policy.as_str()
                )),
            ));
            self.summary.dropped.push(file);
        }
    }

    /// Appends a record to the manifest (a failure is logged: the files are unaffected).
    fn record(&mut self, record: Record) {
        let Some(manifest) = &self.manifest else {
            return;
        };
        if let Err(error) = manifest.append(&record) {
            log::event(
                Severity::Error,
                "cannot write the manifest",
                &Problem {
                    error: &error.to_string(),
                },
            );
        }
    }

    /// Starts delivering the records not yet in the bucket as the next manifest part, next
    /// to the files, on a thread of its own: a destination that hangs (a FUSE mount whose
    /// backend went away) must never stop the event loop, nor the final report. Returns
    /// whether a part is on its way.
    fn start_manifest_part(&mut self) -> bool {
        let Some(manifest) = &self.manifest else {
            return false;
        };
        if self.manifest_part.is_some() {
            return true;
        }
        match manifest.cut() {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                log::event(
                    Severity::Warning,
                    "cannot cut a manifest part; its records stay local",
                    &Problem {
                        error: &error.to_string(),
                    },
                );
                return false;
            }
        }
        let manifest = manifest.clone();
        let bucket_path = self.settings.bucket_path.clone();
        let destination = Arc::clone(&self.destination);
        let (done, result) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("manifest".into())
            .spawn(move || {
                let result = deliver_part(&*destination, &manifest, &bucket_path);
                // Forgotten at once: a kill between the two repeats its records in the next
                // part (harmless), a wider window would make that likely.
                if let Ok((part, _)) = &result {
                    if let Err(error) = manifest.delivered(*part) {
                        log::event(
                            Severity::Warning,
                            "manifest part delivered but not forgotten locally; its records may be delivered twice",
                            &Problem {
                                error: &error.to_string(),
                            },
                        );
                    }
                }
                let _ = done.send(result);
            });
        match spawned {
            Ok(_) => {
                self.manifest_part = Some(result);
                true
            }
            Err(error) => {
                log::event(
                    Severity::Warning,
                    "cannot start a thread for a manifest part",
                    &Problem {
                        error: &error.to_string(),
                    },
                );
                false
            }
        }
    }

    /// Waits up to `wait` for the part on its way. `Some(true)`: delivered; `Some(false)`:
    /// refused (its records go with the next part); `None`: still on its way, or none.
    fn finish_manifest_part(&mut self, wait: Duration, last: bool) -> Option<bool> {
        let result = match self.manifest_part.as_ref()?.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => Err(("".into(), "the thread ended".into())),
        };
        self.manifest_part = None;
        match result {
            Ok((_, object)) => {
                self.summary.manifest = Some(object);
                Some(true)
            }
            Err((object, reason)) => {
                if !last {
                    log::event(
                        Severity::Warning,
                        "cannot write a manifest part now; its records go with the next part",
                        &ManifestProblem {
                            object: &object,
                            reason: &reason,
                        },
                    );
                }
                Some(false)
            }
        }
    }

    /// The last part, at the end: delivered if the destination takes it before `kill_at`
    /// (less a margin for the report), otherwise logged record by record, so that the
    /// outcome of every file still reaches somewhere durable.
    fn deliver_last_manifest_part(&mut self, kill_at: Instant) {
        let time_left = || {
            kill_at
                .saturating_duration_since(Instant::now())
                .saturating_sub(REPORT_MARGIN)
        };
        // A part still on its way from before the drain.
        let mut delivered = match self.manifest_part {
            Some(_) => self.finish_manifest_part(time_left(), true),
            None => Some(true),
        };
        if delivered.is_some() && self.start_manifest_part() {
            delivered = self.finish_manifest_part(time_left(), true);
        }
        if delivered == Some(true) {
            return;
        }
        let Some(manifest) = &self.manifest else {
            return;
        };
        log::event(
            Severity::Error,
            "cannot write the manifest to the destination; its records follow in the log",
            &ManifestProblem {
                object: manifest::OBJECT,
                reason: if delivered.is_none() {
                    "the destination did not answer in time"
                } else {
                    "the destination refused it"
                },
            },
        );
        for record in manifest.records() {
            log::event(
                Severity::Error,
                "manifest record not delivered",
                &Undelivered { record: &record },
            );
        }
    }

    fn stats(&self) {
        log::event(
            Severity::Info,
            "export stats",
            &Stats {
                pending_files: self.backlog.count(|s| s != State::InFlight),
                pending_bytes: self.backlog.bytes(),
                in_flight: self.in_flight,
                exported: self.summary.exported,
                retries: self.summary.retries,
                dropped: self.summary.dropped.len(),
            },
        );
    }

    fn start_drain(&mut self) {
        if self.drain.is_some() {
            return;
        }
        let now = Instant::now();
        // pcap-init's plan says when this process is killed; run on its own, the whole
        // PCAP_SHUTDOWN_SECS counts from this signal. The final report is due before that.
        let planned = self
            .settings
            .run_dir
            .as_deref()
            .and_then(|run_dir| sidecar_core::deadline::time_left(run_dir, PROGRAM));
        let deadline_from = if planned.is_some() {
            "pcap-init"
        } else {
            "PCAP_SHUTDOWN_SECS"
        };
        let budget = planned
            .unwrap_or(self.settings.shutdown_budget)
            .saturating_sub(DRAIN_RESERVE);
        let drain = Drain {
            started: now,
            deadline: now + budget,
            close_wait_until: now + CLOSE_WAIT.min(budget / 3),
        };
        self.scan();
        // Failed files get one more prompt try each instead of their long backoff.
        for entry in self.backlog.iter_mut() {
            if let State::Waiting(_) = entry.state {
                entry.state = State::Ready;
            }
        }
        log::event(
            Severity::Notice,
            "shutdown: exporting every remaining file",
            &DrainStarted {
                pending_files: self.backlog.count(|s| s != State::Rejected),
                pending_bytes: self.backlog.bytes(),
                open_files: self.backlog.count(|s| s == State::Open),
                budget_ms: budget.as_millis() as u64,
                deadline_from,
            },
        );
        self.drain = Some(drain);
    }

    /// During the close wait: open files whose writer has gone are complete.
    fn recheck_open(&mut self) {
        if self.backlog.count(|s| s == State::Open) == 0 {
            return;
        }
        let open = procfs::open_for_writing(&self.settings.capture_dir);
        self.note_unknown_writers(&open.unknown);
        let closed: Vec<(CaptureFileName, PathBuf)> = self
            .backlog
            .iter()
            .filter(|e| e.state == State::Open && !open.may_be_open(&canonical(&e.path)))
            .map(|e| (e.name.clone(), e.path.clone()))
            .collect();
        for (name, path) in closed {
            self.complete(name, &path);
        }
    }

    /// After the close wait: export what is there, even if a writer still holds it.
    fn force_open_ready(&mut self) {
        let still_open: Vec<(CaptureFileName, PathBuf)> = self
            .backlog
            .iter()
            .filter(|e| e.state == State::Open)
            .map(|e| (e.name.clone(), e.path.clone()))
            .collect();
        for (name, path) in still_open {
            log::event(
                Severity::Warning,
                "file still open for writing at shutdown; exporting what it holds",
                &FileEvent {
                    file: &name.to_string(),
                    bytes: fs::symlink_metadata(&path).map_or(0, |m| m.len()),
                },
            );
            self.complete(name, &path);
        }
    }

    fn finish(&mut self) -> Summary {
        let left: Vec<(String, PathBuf, CaptureFileName, u64, State)> = self
            .backlog
            .iter()
            .map(|e| (e.file(), e.path.clone(), e.name.clone(), e.size, e.state))
            .collect();
        for (file, path, name, size, state) in left {
            let reason = match state {
                State::Rejected => "cannot be exported (not a regular file); kept",
                State::InFlight => "export still in progress at the shutdown deadline; kept",
                State::Waiting(_) => "export failing at the shutdown deadline; kept",
                State::Open | State::Ready => "not exported before the shutdown deadline; kept",
            };
            let size = fs::symlink_metadata(&path).map_or(size, |m| m.len());
            let contents = manifest::contents(&path, &name, self.settings.run_dir.as_deref());
            self.record(not_exported_record(
                &file,
                size,
                contents,
                manifest::Outcome::NotExported,
                Some(reason.to_string()),
            ));
        }
        self.deliver_last_manifest_part(self.kill_at());
        let mut summary = self.summary.clone();
        summary.not_exported = self.vanished.clone();
        summary
            .not_exported
            .extend(self.backlog.iter().map(Entry::file));
        summary.drain_ms = self
            .drain
            .as_ref()
            .map_or(0, |d| d.started.elapsed().as_millis() as u64);
        let (severity, message) = if summary.is_complete() {
            (
                Severity::Notice,
                format!(
                    "export finished: {} files exported, none lost",
                    summary.exported
                ),
            )
        } else {
            (
                Severity::Error,
                format!(
                    "export finished: {} files exported, {} not exported, {} dropped by the budget policy",
                    summary.exported,
                    summary.not_exported.len(),
                    summary.dropped.len()
                ),
            )
        };
        log::event(severity, &message, &summary);
        summary
    }
}

/// The capture files of a directory, each with whether a writer may still hold it.
struct Survey {
    files: Vec<(CaptureFileName, PathBuf, bool)>,
    unknown: Option<String>,
}

/// Lists `dir`'s capture files and asks `snapshot` which are open for writing.
///
/// The listing is read to the end *before* the snapshot: a file a writer creates after the
/// snapshot is then either not listed or listed while open (tcpdump creates and opens in one
/// call). Reading the entries lazily after the snapshot counted such a file as complete.
fn survey(dir: &Path, snapshot: impl FnOnce(&Path) -> procfs::OpenFiles) -> io::Result<Survey> {
    let mut listed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(name) = capture_name(&path) {
            listed.push((name, path));
        }
    }
    let open = snapshot(dir);
    let files = listed
        .into_iter()
        .map(|(name, path)| {
            let may_be_open = open.may_be_open(&canonical(&path));
            (name, path, may_be_open)
        })
        .collect();
    Ok(Survey {
        files,
        unknown: open.unknown,
    })
}

/// A manifest record for a file that was not exported (or the base of an exported one).
fn not_exported_record(
    file: &str,
    bytes: u64,
    contents: manifest::Contents,
    outcome: manifest::Outcome,
    reason: Option<String>,
) -> Record {
    Record {
        file: file.to_string(),
        object: None,
        bytes,
        stored_bytes: None,
        packets: contents.packets,
        first: contents.first,
        last: contents.last,
        kernel_drops: contents.drops.and_then(|d| d.kernel),
        queue_drops: contents.drops.and_then(|d| d.queue),
        crc32c: None,
        trigger: CaptureFileName::parse(file).and_then(|name| name.tag),
        outcome,
        reason,
    }
}

/// Whether `error` is the destination failing (rather than this one file).
fn destination_failed(error: &ExportError) -> bool {
    !matches!(
        error,
        ExportError::Conflict { .. }
            | ExportError::Stopped { .. }
            | ExportError::Vanished { .. }
            | ExportError::NotAFile { .. }
            | ExportError::InvalidName { .. }
            | ExportError::Read { .. }
    )
}

fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    min.saturating_mul(factor).min(max)
}

fn capture_name(path: &Path) -> Option<CaptureFileName> {
    let name = path.file_name()?.to_str()?;
    // Already-compressed names are outputs, not capture files.
    CaptureFileName::parse(name).filter(|n| !n.gzip)
}

fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map_or_else(|_| path.to_path_buf(), |p| p.join(name)),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_record_names_its_trigger_and_others_none() {
        let contents = manifest::Contents::default();
        let outcome = manifest::Outcome::Exported;
        let window = not_exported_record(
            "eth0_part_20261206T031500Z_http5xx.pcap",
            0,
            contents,
            outcome,
            None,
        );
        assert_eq!(window.trigger.as_deref(), Some("http5xx"));
        let line = serde_json::to_string(&window).unwrap();
        assert!(line.contains(r#""trigger":"http5xx""#), "{line}");
        let plain = not_exported_record(
            "eth0_part_20261206T031500Z.pcap",
            0,
            contents,
            outcome,
            None,
        );
        assert_eq!(plain.trigger, None);
        assert!(!serde_json::to_string(&plain).unwrap().contains("trigger"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(10);
        assert_eq!(backoff(min, max, 1), min);
        assert_eq!(backoff(min, max, 2), Duration::from_secs(1));
        assert_eq!(backoff(min, max, 4), Duration::from_secs(4));
        assert_eq!(backoff(min, max, 50), max);
    }

    /// Regression test (failed before the fix: the file created right after the `/proc`
    /// snapshot was listed as complete, so it would have been exported and deleted while
    /// still written).
    #[test]
    fn issue_14_a_file_created_after_the_proc_snapshot_is_never_complete() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("eth0_part_20260101T000000Z.pcap");
        fs::write(&old, b"closed").unwrap();
        let late = dir.path().join("eth0_part_20260101T000100Z.pcap");
        let mut writer = None;
        let survey = survey(dir.path(), |d| {
            let snapshot = procfs::open_for_writing(d);
            // tcpdump rotates right after the snapshot was taken.
            writer = Some(fs::File::create(&late).unwrap());
            snapshot
        })
        .unwrap();
        assert!(writer.is_some());
        for (name, _, open) in &survey.files {
            if name.to_string() == "eth0_part_20260101T000100Z.pcap" {
                assert!(*open, "listed as complete while a writer holds it");
            }
        }
        assert!(survey
            .files
            .iter()
            .any(|(n, _, open)| n.to_string() == "eth0_part_20260101T000000Z.pcap" && !open));
    }

    /// Regression test (failed before the fix: when `/proc/<pid>/fd` could not be read,
    /// every file counted as complete).
    #[test]
    fn issue_14_an_incomplete_proc_snapshot_completes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("eth0_part_20260101T000000Z.pcap"), b"x").unwrap();
        let survey = survey(dir.path(), |_| procfs::OpenFiles {
            paths: Default::default(),
            unknown: Some("/proc/7/fd: Permission denied".into()),
        })
        .unwrap();
        assert_eq!(survey.files.len(), 1);
        assert!(survey.files[0].2, "an unknown writer may still hold it");
    }

    #[test]
    fn only_capture_names_are_touched() {
        assert!(capture_name(Path::new("/d/eth0_part_20260101T000000Z.pcap")).is_some());
        assert!(capture_name(Path::new("/d/eth0_part_20260101T000000Z.pcap.gz")).is_none());
        assert!(capture_name(Path::new("/d/TCPDUMPW_EXITED")).is_none());
        assert!(capture_name(Path::new("/d/.eth0_part_20260101T000000Z.pcap.tmp")).is_none());
    }
}
