//! The orchestrator loop behind [`crate::run`].
//!
//! One thread owns every child. It sleeps on the channel that receives the children's output
//! lines (the child-process tap), which is also woken by SIGCHLD and by the shutdown request, so a
//! child's exit or a "listening on" line is handled at once; a short tick bounds the sleep for
//! schedules, rescans and restarts that are due.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bpf_filter::{ExcludedEndpoint, FilterPlan, FilterSpec, ResolvedHost, SystemResolver};
use child_process::{ChildSpec, Event, OutputLine, State, Stream, Supervised};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sidecar_core::config::trigger::Trigger;
use sidecar_core::config::Config;
use sidecar_core::drops::DropJournal;
use sidecar_core::log::{self, Severity};
use sidecar_core::manual_trigger;
use sidecar_core::naming::CaptureFileName;
use sidecar_core::readiness::{self, Readiness, ReadySignal};
use sidecar_core::shutdown::Shutdown;

use crate::capture::{self, CaptureSettings, NameGuard};
use crate::ifaces::{self, Choice};
use crate::runs::{Action, Mode, Runs};
use crate::{
    Error, RunOptions, Summary, CAPTURE_PATH_MESSAGE, FILTER_MESSAGE, INTERFACES_MESSAGE,
    READY_MESSAGE,
};
use packet_socket::CapturePath;

/// Longest sleep of the loop.
const TICK: Duration = Duration::from_millis(250);
/// A file is idle once this many seconds past its rotation period without being rotated.
const IDLE_SLACK_SECS: i64 = 2;
/// Size of a pcap file without packets (the global header).
const PCAP_HEADER_BYTES: u64 = wire::pcapfile::GLOBAL_HEADER_LEN as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcpdump,
    Pcapd,
}

struct Child {
    kind: Kind,
    process: Supervised,
    listening: bool,
    /// It captured its `PCAP_PACKET_COUNT` packets and exited: done for this run.
    done: bool,
}

impl Child {
    fn alive(&self) -> bool {
        matches!(
            self.process.state(),
            State::Running { .. } | State::Restarting { .. }
        )
    }
}

struct Capture {
    children: Vec<Child>,
}

impl Capture {
    fn alive(&self) -> bool {
        self.children.iter().any(Child::alive)
    }

    /// Every live child has its handle open (and at least one lives).
    fn listening(&self) -> bool {
        self.alive()
            && self
                .children
                .iter()
                .filter(|c| c.alive())
                .all(|c| c.listening)
    }
}

#[derive(Serialize)]
struct InterfacesEvent<'a> {
    prefix: &'a str,
    loopback: bool,
    selected: Vec<&'a str>,
    interfaces: &'a [Choice],
}

#[derive(Serialize)]
struct ScheduleEvent<'a> {
    cron: &'a str,
    timezone: &'a str,
    timeout_secs: u64,
    next_run: Option<String>,
}

#[derive(Serialize)]
struct RunEvent<'a> {
    run: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    interfaces: &'a [String],
}

#[derive(Serialize)]
struct SkipEvent {
    due: String,
    running: u32,
    next_run: Option<String>,
}

#[derive(Serialize)]
struct IfaceEvent<'a> {
    iface: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct StoppedEvent<'a> {
    program: &'a str,
    exit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_file: Option<String>,
}

#[derive(Serialize)]
struct FilterChange<'a> {
    old_filter: &'a str,
    new_filter: &'a str,
    old_hosts: &'a [ResolvedHost],
    new_hosts: &'a [ResolvedHost],
}

#[derive(Serialize)]
struct ReadyEvent<'a> {
    interfaces: &'a [String],
}

#[derive(Serialize)]
struct GaveUpEvent<'a> {
    program: &'a str,
    last_output: Vec<String>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Daemon<'a> {
    config: &'a Config,
    options: RunOptions,
    shutdown: &'a Shutdown,
    settings: CaptureSettings,
    plan: FilterPlan,
    endpoints: Vec<ExcludedEndpoint>,
    runs: Runs,
    /// Interfaces chosen by the last scan.
    selected: Vec<Choice>,
    captures: BTreeMap<String, Capture>,
    /// Interfaces whose capture failed for good: not retried until they disappear.
    failed: BTreeSet<String>,
    guard: NameGuard,
    tap: Sender<OutputLine>,
    ready: Option<ReadySignal>,
    summary: Summary,
    last_rescan: Instant,
    last_refresh: Instant,
    last_idle_check: Instant,
    /// Each interface's tcpdump drops, journalled for the manifest (see `poll_counters`).
    drops: BTreeMap<String, DropJournal>,
    last_counters_poll: Instant,
    /// Raised by a manual trigger (endpoint or SIGUSR2): pass it on to every pcapd.
    manual: Arc<AtomicBool>,
}

/// tcpdumpw hosts the manual trigger's endpoint for all its pcapds: the reason goes to the
/// reason file, then the loop sends SIGUSR2 to every pcapd, which reads it.
struct ManualHost {
    run_dir: std::path::PathBuf,
    manual: Arc<AtomicBool>,
    tap: std::sync::Mutex<Sender<OutputLine>>,
}

impl ManualHost {
    fn raise(&self) {
        self.manual.store(true, Ordering::SeqCst);
        if let Ok(tap) = self.tap.lock() {
            let _ = tap.send(wake_line());
        }
    }
}

impl manual_trigger::Host for ManualHost {
    fn trigger(&self, reason: &str) {
        if let Err(error) = manual_trigger::write_reason(&self.run_dir, reason) {
            log::warning(&format!(
                "manual trigger: cannot write its reason to {}: {error}",
                self.run_dir.display()
            ));
        }
        self.raise();
    }
}

/// With the `manual` trigger: serves its endpoint, and takes SIGUSR2 (forwarded to every
/// pcapd as a plain signal). Stopped when the returned values are dropped / closed.
fn start_manual(
    config: &Config,
    manual: &Arc<AtomicBool>,
    tap: &Sender<OutputLine>,
) -> Result<
    (
        Option<manual_trigger::Endpoint>,
        Option<signal_hook::iterator::Handle>,
    ),
    Error,
> {
    let Some(recorder) = config
        .recorder
        .as_ref()
        .filter(|r| r.triggers.contains(&Trigger::Manual))
    else {
        return Ok((None, None));
    };
    let host = Arc::new(ManualHost {
        run_dir: config.run_dir.clone(),
        manual: Arc::clone(manual),
        tap: std::sync::Mutex::new(tap.clone()),
    });
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR2])
        .map_err(|e| Error::ManualTrigger(format!("cannot handle SIGUSR2: {e}")))?;
    let handle = signals.handle();
    let signal_host = Arc::clone(&host);
    let spawned = std::thread::Builder::new()
        .name("sigusr2".into())
        .spawn(move || {
            for _ in signals.forever() {
                // A plain signal: no reason file, or a pcapd would take an endpoint's reason.
                manual_trigger::clear_reason(&signal_host.run_dir);
                signal_host.raise();
            }
        });
    if let Err(error) = spawned {
        handle.close();
        return Err(Error::ManualTrigger(format!(
            "cannot handle SIGUSR2: {error}"
        )));
    }
    let port = recorder.port;
    match manual_trigger::start(port, host) {
        Ok(endpoint) => Ok((Some(endpoint), Some(handle))),
        Err(error) => {
            handle.close();
            Err(Error::ManualTrigger(format!(
                "cannot listen on 127.0.0.1:{port} for the manual trigger (PCAP_TRIGGER_PORT): {error}"
            )))
        }
    }
}

#[derive(Serialize)]
struct ManualEvent<'a> {
    interfaces: Vec<&'a str>,
}

/// A line on the tap that only wakes the loop (SIGCHLD, shutdown).
fn wake_line() -> OutputLine {
    OutputLine {
        program: String::new(),
        stream: Stream::Stdout,
        text: String::new(),
    }
}

/// Wakes the loop on SIGCHLD and on shutdown; stops when `done` is set (and the returned
/// handle closed).
fn start_wakers(
    tap: &Sender<OutputLine>,
    shutdown: &Shutdown,
    done: &Arc<AtomicBool>,
) -> Option<signal_hook::iterator::Handle> {
    let sigchld = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGCHLD]) {
        Ok(mut signals) => {
            let tap = tap.clone();
            let done = done.clone();
            let handle = signals.handle();
            let spawned = std::thread::Builder::new()
                .name("sigchld".into())
                .spawn(move || {
                    for _ in signals.forever() {
                        if done.load(Ordering::SeqCst) || tap.send(wake_line()).is_err() {
                            break;
                        }
                    }
                });
            if spawned.is_err() {
                handle.close();
            }
            Some(handle)
        }
        // The tick still notices exits, a little later.
        Err(error) => {
            log::warning(&format!("cannot watch SIGCHLD: {error}"));
            None
        }
    };
    let tap = tap.clone();
    let shutdown = shutdown.clone();
    let done = done.clone();
    let _ = std::thread::Builder::new()
        .name("shutdown-wake".into())
        .spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if shutdown.wait_timeout(Duration::from_secs(1)) {
                    let _ = tap.send(wake_line());
                    break;
                }
            }
        });
    sigchld
}

pub(crate) fn run(
    config: &Config,
    shutdown: &Shutdown,
    options: RunOptions,
) -> Result<Summary, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let spec = FilterSpec::from(config);
    let endpoints = bpf_filter::self_endpoints(&spec, &env)?;
    let plan = bpf_filter::build(&spec, &endpoints, &SystemResolver)?;
    log::event(Severity::Notice, FILTER_MESSAGE, &plan);

    let detection = packet_socket::detect(config.compat);
    log::event(
        Severity::Info,
        &format!(
            "{CAPTURE_PATH_MESSAGE}: {} ({}){}",
            detection.path,
            detection.reason,
            match detection.path {
                _ if config.recorder.is_some() =>
                    "; flight recorder (PCAP_TRIGGER): no tcpdump, pcapd keeps the ring and writes the trigger windows",
                CapturePath::Ring => "; tcpdump writes the .pcap files",
                CapturePath::RingLess =>
                    "; no tcpdump: pcapd reads AF_PACKET sockets with recvmmsg and writes the .pcap files",
            }
        ),
        &detection,
    );
    let ring_less = detection.path == CapturePath::RingLess;
    if ring_less && config.snaplen >= packet_socket::MAX_SNAPLEN {
        return Err(Error::CapturePath(
            packet_socket::Error::Snaplen(config.snaplen).to_string(),
        ));
    }

    let dir = config.capture_dir();
    sidecar_core::private::private_dir(&dir).map_err(|source| Error::CaptureDir {
        path: dir.clone(),
        source,
    })?;
    let settings = CaptureSettings {
        dir,
        ext: config.file_ext.clone(),
        snaplen: config.snaplen,
        rotate_secs: config.rotate_secs,
        buffer_kib: options.buffer_kib,
        filter: plan.text.clone(),
        tcpdump: options.tcpdump.clone(),
        pcapd: options.pcapd.clone(),
        run_dir: config.run_dir.clone(),
        config_env: config.to_env(),
        ring_less,
        pcap_files: config.tcpdump,
        recorder: config.recorder.is_some(),
        packet_count: config.packet_count,
    };

    let (tap, lines) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let sigchld = start_wakers(&tap, shutdown, &done);
    let manual = Arc::new(AtomicBool::new(false));
    let (endpoint, sigusr2) = match start_manual(config, &manual, &tap) {
        Ok(started) => started,
        Err(error) => {
            done.store(true, Ordering::SeqCst);
            if let Some(handle) = sigchld {
                handle.close();
            }
            return Err(error);
        }
    };

    let mut daemon = Daemon {
        config,
        shutdown,
        settings,
        plan,
        endpoints,
        runs: Runs::new(Mode::Continuous, Utc::now()),
        selected: Vec::new(),
        captures: BTreeMap::new(),
        failed: BTreeSet::new(),
        guard: NameGuard::default(),
        tap,
        ready: None,
        summary: Summary::default(),
        last_rescan: Instant::now(),
        last_refresh: Instant::now(),
        last_idle_check: Instant::now(),
        drops: BTreeMap::new(),
        last_counters_poll: Instant::now(),
        options,
        manual,
    };
    let result = daemon.main_loop(&lines);
    drop(endpoint);
    if let Some(handle) = sigusr2 {
        handle.close();
    }
    daemon.stop_captures("shutdown");
    // tcpdump's last words carry its final drop count.
    let quiet_from = Instant::now() + Duration::from_millis(300);
    while let Ok(line) = lines.recv_timeout(quiet_from.saturating_duration_since(Instant::now())) {
        daemon.on_line(&line);
    }
    // Withdrawn before returning: nothing is captured any more.
    daemon.ready = None;
    done.store(true, Ordering::SeqCst);
    if let Some(handle) = sigchld {
        handle.close();
    }
    let summary = std::mem::take(&mut daemon.summary);
    log::event(Severity::Notice, "tcpdumpw stopped", &summary);
    result.map(|()| summary)
}

impl Daemon<'_> {
    fn main_loop(&mut self, lines: &Receiver<OutputLine>) -> Result<(), Error> {
        if !self.wait_for_interfaces()? {
            return Ok(());
        }
        self.runs = Runs::new(Mode::from_config(self.config), Utc::now());
        if self.runs.is_cron() {
            self.arm_schedule()?;
        }
        loop {
            if self.shutdown.is_requested() {
                return Ok(());
            }
            while let Some(action) = self.runs.due(Utc::now()) {
                self.handle(action);
            }
            let mut rescan = self.last_rescan.elapsed() >= self.options.rescan_every;
            rescan |= self.poll_children();
            if rescan {
                self.rescan()?;
            }
            if self.plan.has_names()
                && self.last_refresh.elapsed() >= self.options.hosts_refresh_every
            {
                self.refresh_filter();
            }
            if self.last_idle_check.elapsed() >= Duration::from_secs(1) {
                self.close_idle_files();
            }
            if self.last_counters_poll.elapsed() >= Duration::from_secs(1) {
                self.poll_counters();
            }
            self.check_capture()?;

            let sleep = self
                .runs
                .until_next(Utc::now())
                .map_or(TICK, |until| until.min(TICK));
            match lines.recv_timeout(sleep) {
                Ok(line) => self.on_line(&line),
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen (the daemon holds a sender); never spin if it does.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(sleep),
            }
            while let Ok(line) = lines.try_recv() {
                self.on_line(&line);
            }
            if self.manual.swap(false, Ordering::SeqCst) {
                self.forward_manual();
            }
        }
    }

    /// Sends SIGUSR2 to every listening pcapd: each recorder saves its window, with the
    /// reason file's reason. Only once it listens: before its handler, SIGUSR2 would kill it.
    fn forward_manual(&self) {
        let mut interfaces = Vec::new();
        for (iface, capture) in &self.captures {
            for child in &capture.children {
                if child.kind == Kind::Pcapd && child.listening {
                    if let (Some(pid), State::Running { .. }) =
                        (child.process.pid(), child.process.state())
                    {
                        let sent = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGUSR2,
                        );
                        if sent.is_ok() {
                            interfaces.push(iface.as_str());
                        }
                    }
                }
            }
        }
        log::event(
            Severity::Info,
            "manual trigger: passed to the pcapd of every capturing interface",
            &ManualEvent { interfaces },
        );
    }

    /// Waits (bounded) for a first interface to capture on. `Ok(false)`: shutdown meanwhile.
    fn wait_for_interfaces(&mut self) -> Result<bool, Error> {
        let started = Instant::now();
        loop {
            let infos = ifaces::scan().map_err(Error::Interfaces)?;
            let choices = ifaces::choose(&self.config.iface, self.config.loopback, &infos);
            if choices.iter().any(|c| c.selected) {
                self.log_interfaces(&choices);
                self.selected = choices;
                self.last_rescan = Instant::now();
                return Ok(true);
            }
            if started.elapsed() >= self.options.iface_wait {
                let available = infos
                    .iter()
                    .map(|i| format!("{}{}", i.name, if i.up { "" } else { " (down)" }))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.log_interfaces(&choices);
                return Err(Error::NoInterface {
                    prefix: self.config.iface.clone(),
                    waited_secs: self.options.iface_wait.as_secs(),
                    available,
                });
            }
            if self.shutdown.wait_timeout(TICK) {
                return Ok(false);
            }
        }
    }

    fn log_interfaces(&self, choices: &[Choice]) {
        let selected: Vec<&str> = choices
            .iter()
            .filter(|c| c.selected)
            .map(|c| c.name.as_str())
            .collect();
        let severity = if selected.is_empty() {
            Severity::Warning
        } else {
            Severity::Notice
        };
        log::event(
            severity,
            INTERFACES_MESSAGE,
            &InterfacesEvent {
                prefix: &self.config.iface,
                loopback: self.config.loopback,
                selected,
                interfaces: choices,
            },
        );
    }

    fn arm_schedule(&mut self) -> Result<(), Error> {
        let (cron, timezone) = match Mode::from_config(self.config) {
            Mode::Cron {
                schedule, timezone, ..
            // A CRON_TZ=/TZ= prefix overrides PCAP_TIMEZONE: log the zone actually used.
            } => (
                schedule.expression().to_string(),
                schedule.timezone().unwrap_or(timezone),
            ),
            _ => return Ok(()),
        };
        log::event(
            Severity::Notice,
            "capture schedule armed",
            &ScheduleEvent {
                cron: &cron,
                timezone: timezone.name(),
                timeout_secs: self.config.timeout_secs,
                next_run: self.runs.next_run().map(rfc3339),
            },
        );
        if self.config.timeout_secs == 0 {
            log::warning(
                "PCAP_TIMEOUT_SECS=0 with cron: the first run captures until SIGTERM and every later run is skipped",
            );
        }
        self.raise_ready(&format!("capture schedule armed: {cron} ({timezone})"))
    }

    fn raise_ready(&mut self, detail: &str) -> Result<(), Error> {
        if self.ready.is_some() {
            return Ok(());
        }
        let signal = ReadySignal::raise(&self.config.run_dir, detail).map_err(|source| {
            Error::Readiness {
                path: self.config.run_dir.clone(),
                source,
            }
        })?;
        self.ready = Some(signal);
        let interfaces: Vec<String> = self.captures.keys().cloned().collect();
        log::event(
            Severity::Notice,
            READY_MESSAGE,
            &ReadyEvent {
                interfaces: &interfaces,
            },
        );
        Ok(())
    }

    fn selected_names(&self) -> Vec<String> {
        self.selected
            .iter()
            .filter(|c| c.selected)
            .map(|c| c.name.clone())
            .collect()
    }

    fn handle(&mut self, action: Action) {
        match action {
            Action::Start { number, ends } => {
                self.summary.runs = self.runs.started();
                let names = self.selected_names();
                log::event(
                    Severity::Notice,
                    &format!("capture run {number} started"),
                    &RunEvent {
                        run: number,
                        ends: ends.map(rfc3339),
                        next_run: self.runs.next_run().map(rfc3339),
                        interfaces: &names,
                    },
                );
                for name in names {
                    if !self.failed.contains(&name) {
                        self.start_capture(&name);
                    }
                }
            }
            Action::Stop { number } => {
                self.stop_captures(&format!("run {number} complete"));
                let next_run = self.runs.next_run().map(rfc3339);
                let message = if self.runs.is_cron() {
                    format!("capture run {number} complete")
                } else {
                    // The original kept its health port open after a one-shot: so do we, so
                    // a liveness probe on it does not restart a finished instance.
                    format!(
                        "one-shot capture complete after PCAP_TIMEOUT_SECS={} s; tcpdumpw stays up (and ready) until SIGTERM",
                        self.config.timeout_secs
                    )
                };
                log::event(
                    Severity::Notice,
                    &message,
                    &RunEvent {
                        run: number,
                        ends: None,
                        next_run,
                        interfaces: &[],
                    },
                );
            }
            Action::Skip { due, running } => log::event(
                Severity::Warning,
                &format!(
                    "capture run due at {} skipped: run {running} is still capturing",
                    rfc3339(due)
                ),
                &SkipEvent {
                    due: rfc3339(due),
                    running,
                    next_run: self.runs.next_run().map(rfc3339),
                },
            ),
        }
    }

    /// Waits (at most a few seconds) until `iface` may start a capture without reusing a
    /// file name.
    fn wait_for_fresh_name(&self, iface: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.guard.may_start(&self.settings, iface, Utc::now()) {
            if Instant::now() >= deadline || self.shutdown.is_requested() {
                // Only foreign files named in the future can cause this.
                log::warning(&format!(
                    "capture files of {iface} with the current time already exist in {}; starting anyway",
                    self.settings.dir.display()
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_child(&mut self, spec: ChildSpec, kind: Kind) -> Option<Child> {
        match Supervised::start(spec, self.options.restart, Some(self.tap.clone())) {
            Ok(process) => {
                self.summary.child_starts += 1;
                Some(Child {
                    kind,
                    process,
                    listening: false,
                    done: false,
                })
            }
            Err(error) => {
                // Not even startable (program missing): the same as giving up.
                log::error(&error.to_string());
                None
            }
        }
    }

    fn start_capture(&mut self, iface: &str) {
        self.wait_for_fresh_name(iface);
        let now = Utc::now();
        self.guard.note(iface, now);
        let mut children = Vec::new();
        let recorder = self.settings.recorder;
        if self.config.tcpdump && !self.settings.ring_less && !recorder {
            let spec = capture::tcpdump_spec(&self.settings, iface, now);
            children.extend(self.start_child(spec, Kind::Tcpdump));
        }
        // Ring-less: one pcapd captures for both the .pcap files and the JSON outputs.
        let pcapd_writes_pcap = self.settings.ring_less && self.config.tcpdump;
        if self.config.json || self.config.json_log || pcapd_writes_pcap || recorder {
            let spec = capture::pcapd_spec(&self.settings, iface);
            children.extend(self.start_child(spec, Kind::Pcapd));
        }
        if !self.summary.interfaces.iter().any(|i| i == iface) {
            self.summary.interfaces.push(iface.to_string());
        }
        if children.is_empty() {
            self.failed.insert(iface.to_string());
        }
        self.captures
            .insert(iface.to_string(), Capture { children });
    }

    /// Stops every capture child at once (SIGTERM, shared grace, then SIGKILL).
    fn stop_captures(&mut self, why: &str) {
        if self.captures.is_empty() {
            return;
        }
        let captures = std::mem::take(&mut self.captures);
        self.stop(captures, why);
    }

    fn stop(&mut self, mut captures: BTreeMap<String, Capture>, why: &str) {
        let mut grace = Duration::from_secs(self.config.shutdown_secs.clamp(1, 3));
        // At shutdown under pcap-init, the children's grace ends before tcpdumpw's own kill
        // (the graph's one deadline, see sidecar_core::deadline).
        if let Some(left) = sidecar_core::deadline::time_left(&self.config.run_dir, "tcpdumpw") {
            grace = grace.min(
                left.saturating_sub(Duration::from_millis(200))
                    .max(Duration::from_millis(100)),
            );
        }
        let mut processes: Vec<&mut Supervised> = captures
            .values_mut()
            .flat_map(|c| c.children.iter_mut().map(|child| &mut child.process))
            .collect();
        let exits = child_process::stop_all(&mut processes, grace);
        let now = Utc::now();
        let mut index = 0;
        for (iface, capture) in &captures {
            self.guard.note(iface, now);
            for child in &capture.children {
                let exit = exits.get(index).map_or(String::new(), |e| e.to_string());
                index += 1;
                let last_file = match child.kind {
                    Kind::Tcpdump => last_file(&self.settings.dir, iface, &self.settings.ext),
                    Kind::Pcapd if self.settings.ring_less && self.config.tcpdump => {
                        last_file(&self.settings.dir, iface, &self.settings.ext)
                    }
                    Kind::Pcapd => None,
                };
                log::event(
                    Severity::Info,
                    &format!("{} stopped ({why})", child.process.name()),
                    &StoppedEvent {
                        program: child.process.name(),
                        exit,
                        last_file,
                    },
                );
            }
        }
    }

    /// tcpdump rotates on the first packet after the period, so on an interface that went
    /// quiet the current file (and the packets in it) would stay open, unexported, until
    /// traffic resumes. A tcpdump whose file holds packets and is overdue for rotation is
    /// therefore restarted, which closes the file; a file without packets is left open, so
    /// an idle interface does not produce a stream of empty files.
    fn close_idle_files(&mut self) {
        self.last_idle_check = Instant::now();
        if self.settings.rotate_secs == 0 {
            return;
        }
        let overdue = chrono::Duration::seconds(
            i64::try_from(self.settings.rotate_secs).unwrap_or(i64::MAX / 2) + IDLE_SLACK_SECS,
        );
        let now = Utc::now();
        let names: Vec<String> = self.captures.keys().cloned().collect();
        for iface in names {
            let Some(capture) = self.captures.get_mut(&iface) else {
                continue;
            };
            let Some(child) = capture
                .children
                .iter_mut()
                .find(|c| c.kind == Kind::Tcpdump && c.listening)
            else {
                continue;
            };
            let Some(file) = newest_file(&self.settings.dir, &iface, &self.settings.ext) else {
                continue;
            };
            let size =
                std::fs::metadata(self.settings.dir.join(file.to_string())).map_or(0, |m| m.len());
            if now - file.started < overdue || size <= PCAP_HEADER_BYTES {
                continue;
            }
            log::event(
                Severity::Info,
                &format!("closing the idle capture file {file}: no packet since its rotation period ended"),
                &IfaceEvent {
                    iface: &iface,
                    reason: "idle",
                },
            );
            let grace = Duration::from_secs(self.config.shutdown_secs.clamp(1, 3));
            child.process.stop(grace);
            self.guard.note(&iface, Utc::now());
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.guard.may_start(&self.settings, &iface, Utc::now())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.guard.note(&iface, Utc::now());
            let spec = capture::tcpdump_spec(&self.settings, &iface, Utc::now());
            match Supervised::start(spec, self.options.restart, Some(self.tap.clone())) {
                Ok(process) => {
                    child.process = process;
                    child.listening = false;
                    self.summary.child_starts += 1;
                }
                // Stopped for good: the failure check reports it if nothing else captures.
                Err(error) => log::error(&error.to_string()),
            }
        }
    }

    /// Reaps and restarts children. Returns whether one gave up (then interfaces are
    /// scanned again before deciding anything: its interface may simply be gone).
    fn poll_children(&mut self) -> bool {
        let mut gave_up = false;
        let now = Instant::now();
        for (iface, capture) in &mut self.captures {
            for child in &mut capture.children {
                if let State::Restarting { at, .. } = child.process.state() {
                    if now < *at {
                        continue;
                    }
                    if !self.guard.may_start(&self.settings, iface, Utc::now()) {
                        continue;
                    }
                    // A new file name (without rotation) and the current filter.
                    let spec = match child.kind {
                        Kind::Tcpdump => capture::tcpdump_spec(&self.settings, iface, Utc::now()),
                        Kind::Pcapd => capture::pcapd_spec(&self.settings, iface),
                    };
                    child.process.spec_mut().args = spec.args;
                    self.guard.note(iface, Utc::now());
                }
                match child.process.poll() {
                    // tcpdump -c / pcapd exit 0 once they have their packets
                    // (`done_on_success`): done for this run, not restarted.
                    Some(Event::Finished { .. }) => {
                        child.listening = false;
                        child.done = true;
                        self.guard.note(iface, Utc::now());
                        log::info(&format!(
                            "{} captured PCAP_PACKET_COUNT={} packets: done for this run",
                            child.process.name(),
                            self.config.packet_count
                        ));
                    }
                    Some(Event::Exited { .. }) => {
                        child.listening = false;
                        self.guard.note(iface, Utc::now());
                    }
                    Some(Event::Restarted { .. }) => {
                        self.summary.restarts += 1;
                        self.summary.child_starts += 1;
                    }
                    Some(Event::GaveUp { .. }) => {
                        child.listening = false;
                        self.guard.note(iface, Utc::now());
                        gave_up = true;
                        let name = child.process.name().to_string();
                        log::event(
                            Severity::Error,
                            &format!("{name} failed for good: no more restarts"),
                            &GaveUpEvent {
                                program: &name,
                                last_output: child.process.recent_output(),
                            },
                        );
                        self.summary.gave_up.push(name);
                    }
                    None => {}
                }
                if child.kind == Kind::Pcapd && !child.listening {
                    let dir = capture::pcapd_ready_dir(&self.settings, iface);
                    if let Readiness::Ready { pid, .. } = readiness::check(&dir) {
                        child.listening = child.process.pid() == Some(pid);
                    }
                }
            }
        }
        gave_up
    }

    /// Asks every listening tcpdump for its counters (SIGUSR1; answered on stderr, read in
    /// `on_line`): libpcap counts drops per handle, and only tcpdump can read its handle's.
    /// Only once it listens: before that, SIGUSR1 would still kill it.
    fn poll_counters(&mut self) {
        self.last_counters_poll = Instant::now();
        for capture in self.captures.values() {
            for child in &capture.children {
                if child.kind == Kind::Tcpdump && child.listening {
                    if let (Some(pid), State::Running { .. }) =
                        (child.process.pid(), child.process.state())
                    {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGUSR1,
                        );
                    }
                }
            }
        }
    }

    /// Journals a tcpdump's kernel drops; a new tcpdump (its "listening on" line) counts from
    /// zero again.
    fn journal_drops(&mut self, line: &OutputLine) {
        let Some(iface) = line
            .program
            .strip_prefix("tcpdump[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            return;
        };
        let dropped = if capture::says_listening(&line.text) {
            // A new tcpdump: its handle counts from zero, from now on.
            self.drops.insert(
                iface.to_string(),
                DropJournal::new(&self.config.run_dir, "tcpdump", iface),
            );
            Some(0)
        } else {
            capture::kernel_drops(&line.text)
        };
        if let Some(dropped) = dropped {
            if let Some(journal) = self.drops.get_mut(iface) {
                if let Err(error) = journal.record(Some(dropped), None) {
                    log::warning(&format!(
                        "cannot journal tcpdump's drops on {iface} (the manifest will not give drops per file): {error}"
                    ));
                    self.drops.remove(iface);
                }
            }
        }
    }

    fn on_line(&mut self, line: &OutputLine) {
        self.journal_drops(line);
        if !capture::says_listening(&line.text) {
            return;
        }
        for capture in self.captures.values_mut() {
            for child in &mut capture.children {
                if child.kind == Kind::Tcpdump
                    && child.process.name() == line.program
                    && matches!(child.process.state(), State::Running { .. })
                {
                    child.listening = true;
                }
            }
        }
    }

    /// Lists interfaces again: captures start on new ones (during a run) and stop on those
    /// that went away or down.
    fn rescan(&mut self) -> Result<(), Error> {
        self.last_rescan = Instant::now();
        let infos = match ifaces::scan() {
            Ok(infos) => infos,
            Err(error) => {
                log::warning(&format!("cannot list the network interfaces: {error}"));
                return Ok(());
            }
        };
        let choices = ifaces::choose(&self.config.iface, self.config.loopback, &infos);
        let now_selected: BTreeSet<String> = choices
            .iter()
            .filter(|c| c.selected)
            .map(|c| c.name.clone())
            .collect();
        let gone: Vec<String> = self
            .captures
            .keys()
            .filter(|name| !now_selected.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            let reason = choices
                .iter()
                .find(|c| c.name == name)
                .map_or("no longer exists", |c| c.reason.as_str());
            log::event(
                Severity::Notice,
                &format!("interface {name} is gone: its capture stops"),
                &IfaceEvent {
                    iface: &name,
                    reason,
                },
            );
            if let Some(capture) = self.captures.remove(&name) {
                self.stop(BTreeMap::from([(name.clone(), capture)]), "interface gone");
            }
        }
        // A failed interface is tried again once it has gone and come back.
        self.failed.retain(|name| now_selected.contains(name));
        if self.runs.active().is_some() {
            for choice in choices.iter().filter(|c| c.selected) {
                if self.captures.contains_key(&choice.name) || self.failed.contains(&choice.name) {
                    continue;
                }
                log::event(
                    Severity::Notice,
                    &format!("interface {} appeared: its capture starts", choice.name),
                    &IfaceEvent {
                        iface: &choice.name,
                        reason: &choice.reason,
                    },
                );
                self.start_capture(&choice.name);
            }
        }
        let changed = choices
            .iter()
            .filter(|c| c.selected)
            .map(|c| &c.name)
            .ne(self.selected.iter().filter(|c| c.selected).map(|c| &c.name));
        if changed {
            self.log_interfaces(&choices);
        }
        self.selected = choices;
        Ok(())
    }

    /// Resolves `PCAP_HOSTS` again; restarts the captures with the new filter when the
    /// addresses changed. A resolver failure keeps the current filter.
    fn refresh_filter(&mut self) {
        self.last_refresh = Instant::now();
        match self.plan.refresh(
            &FilterSpec::from(self.config),
            &self.endpoints,
            &SystemResolver,
        ) {
            Ok(Some(plan)) => {
                log::event(
                    Severity::Notice,
                    "capture filter changed: host addresses changed; captures restart",
                    &FilterChange {
                        old_filter: &self.plan.text,
                        new_filter: &plan.text,
                        old_hosts: &self.plan.resolved_hosts,
                        new_hosts: &plan.resolved_hosts,
                    },
                );
                self.settings.filter = plan.text.clone();
                self.plan = plan;
                self.summary.filter_changes += 1;
                let running: Vec<String> = self.captures.keys().cloned().collect();
                self.stop_captures("filter changed");
                for name in running {
                    self.start_capture(&name);
                }
            }
            Ok(None) => log::debug("host addresses unchanged"),
            Err(error) => log::warning(&format!(
                "cannot resolve PCAP_HOSTS again; the current filter stays: {error}"
            )),
        }
    }

    /// Raises readiness once every capture listens; fails when none is left.
    fn check_capture(&mut self) -> Result<(), Error> {
        if self.runs.active().is_none() || self.captures.is_empty() {
            return Ok(());
        }
        let counted = self.captures.values().all(|c| {
            c.children.iter().all(|child| child.done || !child.alive())
                && c.children.iter().any(|child| child.done)
        });
        if counted && !self.captures.values().any(Capture::alive) {
            if let Some(number) = self.runs.end_active() {
                self.stop_captures(&format!("run {number} complete"));
                let next_run = self.runs.next_run().map(rfc3339);
                log::event(
                    Severity::Notice,
                    &format!(
                        "capture run {number} complete: every interface captured PCAP_PACKET_COUNT={} packets{}",
                        self.config.packet_count,
                        if self.runs.is_cron() {
                            ""
                        } else {
                            "; tcpdumpw stays up (and ready) until SIGTERM"
                        }
                    ),
                    &RunEvent {
                        run: number,
                        ends: None,
                        next_run,
                        interfaces: &[],
                    },
                );
            }
            return Ok(());
        }
        if !self.captures.values().any(Capture::alive) {
            let detail = self
                .captures
                .values()
                .flat_map(|c| &c.children)
                .map(|child| {
                    let output = child.process.recent_output();
                    let last = output.last().map_or("no output", String::as_str);
                    format!("{}: {last}", child.process.name())
                })
                .collect::<Vec<_>>()
                .join("; ");
            // Withdrawn first: hc-probe must stop answering before the process goes.
            self.ready = None;
            return Err(Error::CaptureFailed { detail });
        }
        let live: Vec<&Capture> = self.captures.values().filter(|c| c.alive()).collect();
        if self.ready.is_none() && live.iter().all(|c| c.listening()) {
            let names: Vec<String> = self
                .captures
                .iter()
                .filter(|(_, c)| c.alive())
                .map(|(name, _)| name.clone())
                .collect();
            self.raise_ready(&format!("capturing on {}", names.join(", ")))?;
        }
        Ok(())
    }
}

/// The newest capture file of `iface` in `dir` (the one its tcpdump writes, or closed last).
fn newest_file(dir: &Path, iface: &str, ext: &str) -> Option<CaptureFileName> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| CaptureFileName::parse(&entry.file_name().to_string_lossy()))
        .filter(|name| name.iface == iface && name.ext == ext && !name.gzip)
        .max_by_key(|name| (name.started, name.seq))
}

fn last_file(dir: &Path, iface: &str, ext: &str) -> Option<String> {
    newest_file(dir, iface, ext).map(|name| name.to_string())
}
