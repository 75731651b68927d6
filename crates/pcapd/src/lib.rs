//! `pcapd`: the capturer/translator. Reads packets from libpcap (one interface or `any`), from
//! a ring-less `AF_PACKET` socket (gVisor, `docs/capture-paths.md`), or from a pcap/pcapng
//! file (`--read`, gzip too), translates each into one Cloud Logging JSON line, and writes
//! the lines to stdout and/or rotating `.json` files. On the ring-less path it can also write
//! the `.pcap` files tcpdump would have written ([`pcap_files`], `--write-pcap`).
//!
//! - [`source`]: opening a live handle (snaplen, kernel buffer, immediate mode, promiscuous,
//!   BPF filter), a ring-less socket, or a file; [`Source`] yields packets.
//! - [`run`] / [`run_with`]: the daemon as a library call: capture thread → [`pipeline`]
//!   (byte-bounded queue, sharded workers, ordered merge, one writer per output) → stats
//!   every `stats_every` and at exit → drain inward with a deadline on shutdown (live
//!   capture; a file is drained fully: every packet read becomes a line).
//! - [`Translators`]: the pipeline's [`pipeline::Factory`] of `render` translators, which
//!   [`run`] uses; [`run_with`] takes any factory.
//! - [`settings`]: command-line flags and configuration → [`Settings`].

mod capture;
pub mod endpoint;
pub mod json_windows;
pub mod pcap_files;
pub mod recorder;
pub mod settings;
pub mod source;
mod translate;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline::{Monitor, Output, Overflow, Pipeline, RotatingFiles, Snapshot, Stdout};
use serde::Serialize;
use sidecar_core::drops::DropJournal;
use sidecar_core::log::{self, Severity};
use sidecar_core::readiness::ReadySignal;
use sidecar_core::shutdown::Shutdown;

pub use settings::Settings;
pub use source::{KernelStats, LiveSettings, Source, SourceInfo, SourceSettings};
pub use translate::{RenderTranslator, Translators};

/// Why `pcapd` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libpcap rejected the BPF filter.
    #[error("libpcap rejected the capture filter {filter:?}: {message}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// libpcap's message.
        message: String,
    },
    /// The interface could not be opened for capture.
    #[error("cannot capture on interface {iface:?}: {message}")]
    Device {
        /// The interface.
        iface: String,
        /// libpcap's (or our) message.
        message: String,
    },
    /// The capture file could not be read.
    #[error("cannot read capture file {path:?}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Capture failed while running.
    #[error("capture on {iface:?} failed: {message}")]
    Capture {
        /// The interface (or file label).
        iface: String,
        /// libpcap's message.
        message: String,
    },
    /// An output could not be set up.
    #[error("cannot write output {path:?}: {source}")]
    Output {
        /// Directory or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Settings that do not make sense together.
    #[error("{0}")]
    Settings(String),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

impl Error {
    /// The process exit code for this error: 2 for what the user must fix in the
    /// configuration (a filter libpcap rejects, inconsistent settings), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Filter { .. } | Error::Settings(_) => sidecar_core::exit::BAD_CONFIG,
            _ => sidecar_core::exit::FAILURE,
        }
    }
}

/// Where `pcapd`'s own log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogTarget {
    /// stdout, like every daemon (Cloud Logging reads it).
    #[default]
    Stdout,
    /// stderr: used by `--read`, whose stdout carries only packet lines.
    Stderr,
}

impl LogTarget {
    /// Writes one Cloud Logging line.
    pub fn event<F: Serialize + ?Sized>(self, severity: Severity, message: &str, fields: &F) {
        match self {
            LogTarget::Stdout => log::event(severity, message, fields),
            LogTarget::Stderr => {
                if log::enabled(severity) {
                    let mut line =
                        log::format_line("pcapd", severity, message, fields, chrono::Utc::now());
                    line.push('\n');
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
            }
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Packets read from the source.
    pub read: u64,
    /// Final pipeline counters.
    pub pipeline: Snapshot,
    /// Final kernel counters (live capture).
    pub kernel: Option<KernelStats>,
    /// `.json` files completed (closed), oldest first.
    pub files: Vec<PathBuf>,
    /// `.pcap` files written by pcapd (`--write-pcap`), oldest first.
    pub pcap_files: Vec<PathBuf>,
    /// Whether the drain finished before its deadline (plus grace).
    pub complete: bool,
    /// Why capture stopped early, if it failed (the exit code should be non-zero).
    pub capture_error: Option<String>,
}

/// The periodic and final stats line.
#[derive(Debug, Serialize)]
struct StatsLine<'a> {
    iface: &'a str,
    #[serde(rename = "final")]
    last: bool,
    /// Packets read from libpcap (or the file).
    received: u64,
    kernel_received: Option<u64>,
    kernel_dropped: Option<u64>,
    kernel_if_dropped: Option<u64>,
    queue_dropped: u64,
    shutdown_dropped: u64,
    translated: u64,
    translate_errors: u64,
    translate_panics: u64,
    written: BTreeMap<&'a str, u64>,
    lost: BTreeMap<&'a str, u64>,
    output_errors: u64,
    queue_bytes: usize,
    queue_peak_bytes: usize,
    queue_cap_bytes: usize,
    /// The translators' state budget and cap counters.
    #[serde(flatten)]
    translator: BTreeMap<&'static str, u64>,
}

fn stats_line<'a>(
    iface: &'a str,
    last: bool,
    snapshot: &'a Snapshot,
    kernel: Option<KernelStats>,
    translator: Vec<(&'static str, u64)>,
) -> StatsLine<'a> {
    StatsLine {
        iface,
        last,
        received: snapshot.received,
        kernel_received: kernel.map(|k| k.received),
        kernel_dropped: kernel.map(|k| k.dropped),
        kernel_if_dropped: kernel.map(|k| k.if_dropped),
        queue_dropped: snapshot.dropped.queue_full,
        shutdown_dropped: snapshot.dropped.shutdown,
        translated: snapshot.translated,
        translate_errors: snapshot.translate_errors,
        translate_panics: snapshot.translate_panics,
        written: snapshot
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), o.lines))
            .collect(),
        lost: snapshot
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), o.lost_lines))
            .collect(),
        output_errors: snapshot.outputs.iter().map(|o| o.errors).sum(),
        queue_bytes: snapshot.queued_bytes,
        queue_peak_bytes: snapshot.peak_queued_bytes,
        queue_cap_bytes: snapshot.queue_cap_bytes,
        translator: translator.into_iter().collect(),
    }
}

#[derive(Serialize)]
struct ReadyEvent<'a> {
    iface: &'a str,
    linktype: i32,
    filter: Option<&'a str>,
    filter_mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture_path: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [String],
    write_pcap: bool,
    live: bool,
    workers: usize,
    ordered: bool,
    outputs: Vec<&'a str>,
}

#[derive(Serialize)]
struct OutputErrorEvent<'a> {
    output: &'a str,
    error: &'a str,
    lost_lines: u64,
}

/// Runs `pcapd` with the `render` translator until the file ends, `settings.duration`
/// passes, or `shutdown` is requested.
pub fn run(settings: &Settings, shutdown: &Shutdown) -> Result<Summary, Error> {
    let recorder = settings.recorder.as_ref().map(|r| {
        let stats = Arc::new(recorder::RecorderStats::default());
        let (sink, rx) = recorder::channel(r.triggers.clone(), Arc::clone(&stats));
        RecorderParts { sink, rx, stats }
    });
    let triggers = recorder.as_ref().map(|parts| Arc::clone(&parts.sink));
    let translators =
        |info: &SourceInfo| Translators::new(settings.translator.clone(), info, triggers);
    run_inner(settings, shutdown, translators, recorder)
}

/// The flight recorder's channel and counters, made before the translators that feed it.
struct RecorderParts {
    sink: Arc<recorder::TriggerSink>,
    rx: std::sync::mpsc::Receiver<recorder::Fired>,
    stats: Arc<recorder::RecorderStats>,
}

/// Runs `pcapd` with the translators `factory` makes for the opened source (tests use a
/// stand-in).
pub fn run_with<F: pipeline::Factory>(
    settings: &Settings,
    shutdown: &Shutdown,
    factory: impl FnOnce(&SourceInfo) -> F,
) -> Result<Summary, Error> {
    run_inner(settings, shutdown, factory, None)
}

fn run_inner<F: pipeline::Factory>(
    settings: &Settings,
    shutdown: &Shutdown,
    factory: impl FnOnce(&SourceInfo) -> F,
    recorder_parts: Option<RecorderParts>,
) -> Result<Summary, Error> {
    let logs = settings.logs;
    check_has_output(settings)?;
    if let Some(detection) = &settings.capture_path {
        log_capture_path(logs, detection);
    }
    let label = settings.file_label();
    let source = Source::open(&settings.source, settings.filter.as_deref(), &label)?;
    let info = source.info().clone();
    let iface = info.interface.name.clone();
    let factory = Arc::new(factory(&info));

    let outputs = open_outputs(settings, &iface)?;
    let pcap = open_pcap_files(settings, &iface, info.linktype)?;
    let (recorder, recorder_stats, endpoint) =
        start_recorder(settings, &info, &iface, recorder_parts)?;
    let recorder_counters = move || {
        recorder_stats
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    };
    let counters = || {
        let mut counters = factory.counters();
        counters.extend(recorder_counters());
        counters
    };
    let sinks = capture::Sinks {
        translate: settings.stdout || settings.files.is_some() || recorder.is_some(),
        pcap,
        recorder,
        pace: None,
        count: settings.packet_count,
        logs,
    };
    let output_names: Vec<&str> = settings.output_names();
    let running = start_pipeline(
        settings,
        source,
        &info,
        Arc::clone(&factory),
        outputs,
        sinks,
    )?;

    let _ready_signal = announce_ready(settings, &info, &running.pipeline_settings, output_names);
    let watched = running.watch(settings, shutdown, &counters);
    Ok(running.shut_down(settings, watched, endpoint, &counters))
}

/// Before touching the device: a configuration error must not depend on capture rights.
fn check_has_output(settings: &Settings) -> Result<(), Error> {
    if !settings.stdout
        && settings.files.is_none()
        && settings.pcap.is_none()
        && settings.recorder.is_none()
    {
        return Err(Error::Settings(
            "pcapd has no output: set PCAP_JSON_LOG=true (stdout) and/or PCAP_JSON=true (files), or --write-pcap=true"
                .into(),
        ));
    }
    Ok(())
}

/// The JSON outputs: stdout and/or rotating `.json` files.
fn open_outputs(settings: &Settings, iface: &str) -> Result<Vec<Box<dyn Output>>, Error> {
    let mut outputs: Vec<Box<dyn Output>> = Vec::new();
    if settings.stdout {
        outputs.push(Box::new(Stdout));
    }
    if let Some(files) = &settings.files {
        let rotating =
            RotatingFiles::new(&files.dir, iface, "json", files.rotate).map_err(|source| {
                Error::Output {
                    path: files.dir.clone(),
                    source,
                }
            })?;
        outputs.push(Box::new(rotating));
    }
    Ok(outputs)
}

/// The `.pcap` files pcapd writes itself (`--write-pcap`).
fn open_pcap_files(
    settings: &Settings,
    iface: &str,
    linktype: wire::LinkType,
) -> Result<Option<pcap_files::PcapFiles>, Error> {
    let pcap = match &settings.pcap {
        Some(pcap) => Some(
            pcap_files::PcapFiles::create(pcap.clone(), iface, linktype).map_err(|source| {
                Error::Output {
                    path: pcap.dir.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    Ok(pcap)
}

/// The flight recorder, its counters and its manual-trigger endpoint, when configured.
type StartedRecorder = (
    Option<recorder::Recorder>,
    Option<Arc<recorder::RecorderStats>>,
    Option<endpoint::Endpoint>,
);

/// Starts the flight recorder (its `.json` windows too) and its manual triggers (SIGUSR2,
/// the local endpoint).
fn start_recorder(
    settings: &Settings,
    info: &SourceInfo,
    iface: &str,
    recorder_parts: Option<RecorderParts>,
) -> Result<StartedRecorder, Error> {
    let logs = settings.logs;
    let (recorder, recorder_stats, endpoint) = match (&settings.recorder, recorder_parts) {
        (Some(r), Some(parts)) => {
            let mut recorder = recorder::Recorder::new(
                r.clone(),
                iface,
                info.linktype,
                parts.rx,
                Arc::clone(&parts.stats),
                logs,
            )
            .map_err(|source| Error::Output {
                path: r.dir.clone(),
                source,
            })?;
            if r.json {
                let json = json_windows::JsonWindows::start(json_windows::JsonSetup {
                    dir: r.dir.clone(),
                    source: render::Source {
                        interface: info.interface.clone(),
                        linktype: info.linktype,
                    },
                    settings: settings.translator.clone(),
                    logs,
                })
                .map_err(|source| Error::Output {
                    path: r.dir.clone(),
                    source,
                })?;
                recorder = recorder.with_json(json);
            }
            let mut endpoint = None;
            if parts.sink.manual() {
                let flag = Arc::new(AtomicBool::new(false));
                signal_hook::flag::register(signal_hook::consts::SIGUSR2, Arc::clone(&flag))
                    .map_err(|e| Error::Settings(format!("cannot handle SIGUSR2: {e}")))?;
                recorder = recorder.with_signal(flag);
                if let Some(port) = r.port {
                    endpoint = Some(
                        endpoint::start(port, Arc::clone(&parts.sink), logs).map_err(|e| {
                            Error::Settings(format!(
                                "cannot listen on 127.0.0.1:{port} for the manual trigger (PCAP_TRIGGER_PORT): {e}"
                            ))
                        })?,
                    );
                }
            }
            (Some(recorder), Some(parts.stats), endpoint)
        }
        _ => (None, None, None),
    };
    Ok((recorder, recorder_stats, endpoint))
}

/// A capture thread feeding a running pipeline.
struct Running {
    iface: String,
    live: bool,
    pipeline_settings: pipeline::Settings,
    pipeline: Pipeline,
    monitor: Monitor,
    stop: Arc<AtomicBool>,
    kernel: capture::SharedKernelStats,
    capture_thread: std::thread::JoinHandle<capture::CaptureEnd>,
}

/// Starts the pipeline's workers and sink, then the capture thread that feeds them.
fn start_pipeline<F: pipeline::Factory>(
    settings: &Settings,
    source: Source,
    info: &SourceInfo,
    factory: Arc<F>,
    outputs: Vec<Box<dyn Output>>,
    mut sinks: capture::Sinks,
) -> Result<Running, Error> {
    let pipeline_settings = pipeline::Settings {
        workers: settings.workers.max(1),
        ordered: settings.ordered,
        queue_bytes: settings.queue_bytes,
        overflow: if info.live {
            Overflow::DropNewest
        } else {
            Overflow::Block
        },
    };
    let (ingest, pipeline) =
        Pipeline::start(&pipeline_settings, factory, outputs).map_err(Error::Thread)?;
    let monitor = pipeline.monitor();
    if sinks.recorder.is_some() && !info.live {
        sinks.pace = Some(monitor.clone());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let kernel: capture::SharedKernelStats = Arc::new(Mutex::new(None));
    let capture_thread = {
        let stop = Arc::clone(&stop);
        let kernel = Arc::clone(&kernel);
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture::run(source, ingest, &stop, &kernel, sinks))
            .map_err(Error::Thread)?
    };
    Ok(Running {
        iface: info.interface.name.clone(),
        live: info.live,
        pipeline_settings,
        pipeline,
        monitor,
        stop,
        kernel,
        capture_thread,
    })
}

/// Raises the readiness signal (live capture) and logs that capture is ready.
fn announce_ready(
    settings: &Settings,
    info: &SourceInfo,
    pipeline_settings: &pipeline::Settings,
    output_names: Vec<&str>,
) -> Option<ReadySignal> {
    let logs = settings.logs;
    let iface = &info.interface.name;
    let ready = ReadyEvent {
        iface,
        linktype: info.linktype.number(),
        filter: settings.filter.as_deref(),
        filter_mode: info.filter_mode,
        capture_path: settings.capture_path.as_ref().map(|d| d.path.as_str()),
        notes: &info.notes,
        write_pcap: settings.pcap.is_some(),
        live: info.live,
        workers: pipeline_settings.workers,
        ordered: pipeline_settings.ordered,
        outputs: output_names,
    };
    let severity = if info.live {
        Severity::Notice
    } else {
        Severity::Info
    };
    // Raised only once the handle is open and the filter installed; withdrawn on return.
    let ready_signal = match (&settings.ready_dir, info.live) {
        (Some(dir), true) => {
            match ReadySignal::raise(dir, &format!("pcapd capturing on {iface}")) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    logs.event(
                        Severity::Warning,
                        &format!(
                            "cannot raise the readiness signal in {}: {error}",
                            dir.display()
                        ),
                        &(),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    // Logged after the signal is raised: whoever reads this line may rely on the signal.
    logs.event(severity, &format!("capture ready on {iface}"), &ready);
    ready_signal
}

/// What the stats loop hands over to the shutdown.
struct Watched {
    reported_errors: u64,
    drops: Option<DropJournal>,
}

/// The translators' and the recorder's counters for the stats line.
type Counters<'a> = &'a dyn Fn() -> Vec<(&'static str, u64)>;

impl Running {
    /// The stats loop: until capture ends, `settings.duration` passes or `shutdown` is
    /// requested, logs stats every `stats_every`, output failures, and drops to the journal.
    fn watch(&self, settings: &Settings, shutdown: &Shutdown, counters: Counters<'_>) -> Watched {
        let logs = settings.logs;
        let iface = &self.iface;
        let started = Instant::now();
        let mut next_stats = started + settings.stats_every;
        let mut reported_errors = 0u64;
        // Live captures journal their drops, so the manifest can give each file its own.
        let mut drops = match (&settings.drops_dir, self.live) {
            (Some(dir), true) => Some(DropJournal::new(dir, "pcapd", iface)),
            _ => None,
        };
        let mut next_drops = started;
        loop {
            if self.capture_thread.is_finished() {
                break;
            }
            if shutdown.wait_timeout(Duration::from_millis(50)) {
                break;
            }
            let now = Instant::now();
            if settings.duration.is_some_and(|d| now - started >= d) {
                break;
            }
            if now >= next_stats {
                next_stats = now + settings.stats_every;
                report_stats(logs, iface, &self.monitor, &self.kernel, counters());
            }
            reported_errors = report_output_errors(logs, &self.monitor, reported_errors);
            if now >= next_drops {
                next_drops = now + Duration::from_secs(1);
                journal_drops(logs, &mut drops, &self.monitor.snapshot(), &self.kernel);
            }
        }
        Watched {
            reported_errors,
            drops,
        }
    }

    /// Stops capture and drains inward: the pipeline (with a deadline when live), the
    /// recorder's last triggers, the final stats line.
    fn shut_down(
        self,
        settings: &Settings,
        watched: Watched,
        endpoint: Option<endpoint::Endpoint>,
        counters: Counters<'_>,
    ) -> Summary {
        let logs = settings.logs;
        let Running {
            iface,
            live,
            pipeline,
            monitor,
            stop,
            kernel,
            capture_thread,
            ..
        } = self;
        let Watched {
            reported_errors,
            mut drops,
        } = watched;
        stop.store(true, Ordering::Relaxed);
        // The capture loop wakes up at least every read timeout, so this join is short.
        let end = capture_thread.join().unwrap_or(capture::CaptureEnd {
            read: 0,
            pcap_files: Vec::new(),
            error: Some(Error::Capture {
                iface: iface.clone(),
                message: "capture thread panicked".into(),
            }),
            recorder: None,
        });
        if let Some(count) = settings.packet_count.filter(|n| end.read >= *n) {
            logs.event(
                Severity::Info,
                &format!("{count} packets captured (PCAP_PACKET_COUNT): capture stopped"),
                &(),
            );
        }
        // Only live capture has a drain budget (Cloud Run's SIGTERM grace): a file is complete,
        // whatever stopped the reading and however long translating what was read takes.
        let finished = if live {
            pipeline.finish(Instant::now() + settings.drain)
        } else {
            pipeline.finish_all()
        };
        report_output_errors(logs, &monitor, reported_errors);
        // After the drain: the triggers of the last packets translated are in the channel now.
        drop(endpoint);
        let mut pcap_files = end.pcap_files;
        if let Some(recorder) = end.recorder {
            pcap_files.extend(recorder.finish());
        }
        let kernel_stats = kernel.lock().ok().and_then(|k| *k);
        let snapshot = finished.snapshot;
        journal_drops(logs, &mut drops, &snapshot, &kernel);
        logs.event(
            Severity::Info,
            "pcapd stats",
            &stats_line(&iface, true, &snapshot, kernel_stats, counters()),
        );
        if !finished.complete {
            logs.event(
                Severity::Error,
                "the drain did not finish in time: some lines may be lost",
                &(),
            );
        }
        let capture_error = end.error.map(|e| e.to_string());
        if let Some(error) = &capture_error {
            logs.event(Severity::Error, error, &());
        }
        Summary {
            read: end.read,
            pipeline: snapshot,
            kernel: kernel_stats,
            files: finished.files,
            pcap_files,
            complete: finished.complete,
            capture_error,
        }
    }
}

/// Message of the start-up line naming the capture path.
pub const CAPTURE_PATH_MESSAGE: &str = "capture path";

#[derive(Serialize)]
struct CapturePathEvent<'a> {
    #[serde(flatten)]
    detection: &'a packet_socket::Detection,
}

/// One INFO line: which capture path, and why.
fn log_capture_path(logs: LogTarget, detection: &packet_socket::Detection) {
    logs.event(
        Severity::Info,
        &format!(
            "{CAPTURE_PATH_MESSAGE}: {} ({})",
            detection.path, detection.reason
        ),
        &CapturePathEvent { detection },
    );
}

/// Appends the cumulative drops to the journal when they changed; a failure is logged once
/// and ends the journal (the capture goes on; the manifest then says `null`).
fn journal_drops(
    logs: LogTarget,
    journal: &mut Option<DropJournal>,
    snapshot: &Snapshot,
    kernel: &capture::SharedKernelStats,
) {
    let Some(writer) = journal.as_mut() else {
        return;
    };
    let kernel = kernel.lock().ok().and_then(|k| *k).map(|k| k.dropped);
    let queue = snapshot.dropped.queue_full + snapshot.dropped.shutdown;
    if let Err(error) = writer.record(kernel, Some(queue)) {
        logs.event(
            Severity::Warning,
            &format!("cannot journal drops (the manifest will not give drops per file): {error}"),
            &(),
        );
        *journal = None;
    }
}

fn report_stats(
    logs: LogTarget,
    iface: &str,
    monitor: &Monitor,
    kernel: &capture::SharedKernelStats,
    translator: Vec<(&'static str, u64)>,
) {
    let snapshot = monitor.snapshot();
    let kernel = kernel.lock().ok().and_then(|k| *k);
    logs.event(
        Severity::Info,
        "pcapd stats",
        &stats_line(iface, false, &snapshot, kernel, translator),
    );
}

/// Logs an output's failure once per new error count (not once per lost line).
fn report_output_errors(logs: LogTarget, monitor: &Monitor, reported: u64) -> u64 {
    let snapshot = monitor.snapshot();
    let errors: u64 = snapshot.outputs.iter().map(|o| o.errors).sum();
    if errors > reported {
        for output in snapshot.outputs.iter().filter(|o| o.errors > 0) {
            logs.event(
                Severity::Error,
                &format!("output {} failed", output.name),
                &OutputErrorEvent {
                    output: &output.name,
                    error: output.last_error.as_deref().unwrap_or("unknown"),
                    lost_lines: output.lost_lines,
                },
            );
        }
    }
    errors
}
