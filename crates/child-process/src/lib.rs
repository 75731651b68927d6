//! Supervised child processes for `tcpdumpw` (its `tcpdump`s and `pcapd`) and `pcap-init`
//! (the daemons, the mounter).
//!
//! A [`Supervised`] child runs in its own process group, so signals reach everything it
//! started and nothing else. Its output is either inherited or wrapped: lines that are
//! already Cloud Logging JSON objects pass through unchanged, any other line becomes a
//! structured log line naming the program ([`output`]). Exits are noticed by
//! [`Supervised::poll`] (a non-blocking `waitpid` on the child's pid — never `waitpid(-1)`,
//! which would steal other children's statuses in a test process), and the child is restarted
//! with exponential backoff until [`RestartPolicy::max_failures`] consecutive quick failures,
//! after which it has given up and the last lines of its output say why. [`Supervised::stop`]
//! is SIGTERM to the group, a grace period, then SIGKILL.
//!
//! A PID 1 must also reap orphans re-parented to it, at every moment — start-up and shutdown
//! included, not only while it watches. [`reap_orphans`] switches every wait of this crate to
//! `waitpid(-1)` ([`collect_exits`]): statuses of supervised children are kept for their
//! handles, any other (an orphan) is reaped and forgotten.

pub mod output;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::Serialize;

pub use output::{OutputLine, Stream, StreamHandling};

/// How to start a child.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Name used in logs (`tcpdump[eth0]`, `pcapd`, `gcsfuse`).
    pub name: String,
    /// Program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to (or replacing) the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    /// What happens to the child's stdout.
    pub stdout: StreamHandling,
    /// What happens to the child's stderr.
    pub stderr: StreamHandling,
    /// Signal the child gets when this process dies (`PR_SET_PDEATHSIG`), so that a killed
    /// supervisor leaves no child running (a capture writing a file nobody exports).
    pub parent_death_signal: Option<Signal>,
    /// Wrapped lines for which this says `true` go to the tap only, not to the log (answers
    /// the supervisor asked for, such as tcpdump's counters every second).
    pub quiet: Option<fn(&str) -> bool>,
    /// An exit with code 0 means the child's work is done (`tcpdump -c`): it is not
    /// restarted.
    pub done_on_success: bool,
}

impl ChildSpec {
    /// A spec with wrapped stdout and stderr and no extra environment.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        ChildSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdout: StreamHandling::Wrap,
            stderr: StreamHandling::Wrap,
            parent_death_signal: None,
            quiet: None,
            done_on_success: false,
        }
    }

    /// A clean exit (code 0) ends the child for good instead of restarting it.
    pub fn done_on_success(mut self) -> Self {
        self.done_on_success = true;
        self
    }

    /// Keeps the lines `quiet` matches out of the log (they still reach the tap).
    pub fn quiet_lines(mut self, quiet: fn(&str) -> bool) -> Self {
        self.quiet = Some(quiet);
        self
    }

    /// Sets the signal the child gets when this process dies.
    pub fn on_parent_death(mut self, signal: Signal) -> Self {
        self.parent_death_signal = Some(signal);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line, for logs.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// When and how often a child that exits is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Consecutive failures (runs shorter than `stable_after`) before giving up; 0 = never
    /// restart.
    pub max_failures: u32,
    /// Delay before the first restart; doubled after each failure.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// A run at least this long resets the failure count.
    pub stable_after: Duration,
    /// An exit code that means "restarting cannot help" (our daemons exit 2 on an invalid
    /// configuration): the child is given up at once instead of crash-looping.
    pub give_up_on_code: Option<i32>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_failures: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            give_up_on_code: Some(2),
        }
    }
}

impl RestartPolicy {
    /// Never restart.
    pub fn never() -> Self {
        RestartPolicy {
            max_failures: 0,
            ..Self::default()
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// Exit code 0.
    pub fn is_success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => match Signal::try_from(*signal) {
                Ok(name) => write!(f, "signal {name}"),
                Err(_) => write!(f, "signal {signal}"),
            },
        }
    }
}

/// Where a supervised child is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Running with this pid.
    Running {
        /// Process id (also the process group id).
        pid: u32,
        /// When it was started.
        since: Instant,
    },
    /// Exited; will be started again at `at`.
    Restarting {
        /// When.
        at: Instant,
        /// How the last run ended.
        last: Exit,
    },
    /// Exited and will not be restarted (policy exhausted, or restarts disabled).
    GaveUp {
        /// How the last run ended.
        last: Exit,
    },
    /// Stopped on request.
    Stopped {
        /// How it ended.
        exit: Exit,
    },
}

/// Something [`Supervised::poll`] noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The child exited; it will be restarted after `restart_in`.
    Exited {
        /// How it ended.
        exit: Exit,
        /// Delay before the restart.
        restart_in: Duration,
    },
    /// The child was started again.
    Restarted {
        /// Its new pid.
        pid: u32,
    },
    /// The child finished its work (exit code 0 with [`ChildSpec::done_on_success`]); it
    /// is not restarted and is now [`State::Stopped`].
    Finished {
        /// How it ended.
        exit: Exit,
    },
    /// The child exited and will not be restarted.
    GaveUp {
        /// How the last run ended.
        exit: Exit,
    },
}

/// Failures to start or signal a child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started.
    #[error("cannot start {name} ({command}): {source}")]
    Spawn {
        /// Child name.
        name: String,
        /// Command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A child process under supervision.
pub struct Supervised {
    spec: ChildSpec,
    policy: RestartPolicy,
    state: State,
    failures: u32,
    starts: u32,
    tap: Option<Sender<OutputLine>>,
    recent: Arc<Mutex<output::Recent>>,
    /// An exit status collected by someone else's `waitpid(-1)` (PID 1's reaper).
    reaped: Option<(u32, Exit)>,
}

#[derive(Serialize)]
struct ChildEvent<'a> {
    program: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_in_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    last_output: Vec<String>,
}

impl Supervised {
    /// Starts the child now. Every output line is also sent to `tap` when given (how
    /// `tcpdumpw` sees tcpdump's "listening on" line).
    pub fn start(
        spec: ChildSpec,
        policy: RestartPolicy,
        tap: Option<Sender<OutputLine>>,
    ) -> Result<Self, Error> {
        let mut child = Supervised {
            spec,
            policy,
            state: State::Stopped {
                exit: Exit::Code(0),
            },
            failures: 0,
            starts: 0,
            tap,
            recent: Arc::new(Mutex::new(output::Recent::default())),
            reaped: None,
        };
        child.spawn()?;
        Ok(child)
    }

    fn spawn(&mut self) -> Result<u32, Error> {
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.spec.stdout.stdio())
            .stderr(self.spec.stderr.stdio())
            // Own process group: group signals reach the child and its children only.
            .process_group(0);
        if let Some(signal) = self.spec.parent_death_signal {
            let parent = std::process::id();
            // SAFETY: between fork and exec only async-signal-safe calls are made: prctl,
            // getppid and kill are plain system calls, and nothing allocates.
            #[allow(unsafe_code)]
            unsafe {
                command.pre_exec(move || {
                    nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
                    // The parent may have died before the prctl: then act as if it just did.
                    if nix::unistd::getppid().as_raw() as u32 != parent {
                        let _ = nix::sys::signal::raise(signal);
                    }
                    Ok(())
                });
            }
        }
        // Registered under the lock, so a PID 1 collecting exits meanwhile cannot take this
        // child's status for an orphan's.
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            name: self.spec.name.clone(),
            command: self.spec.command_line(),
            source,
        })?;
        let pid = child.id();
        children.insert(pid);
        drop(children);
        if let Some(stdout) = child.stdout.take() {
            output::forward(
                &self.spec.name,
                Stream::Stdout,
                stdout,
                self.tap.clone(),
                self.recent.clone(),
                self.spec.quiet,
            );
        }
        if let Some(stderr) = child.stderr.take() {
            output::forward(
                &self.spec.name,
                Stream::Stderr,
                stderr,
                self.tap.clone(),
                self.recent.clone(),
                self.spec.quiet,
            );
        }
        // The status is collected with waitpid on the pid (see poll); the handle is not
        // needed any more and dropping it neither waits nor kills.
        drop(child);
        self.starts += 1;
        self.state = State::Running {
            pid,
            since: Instant::now(),
        };
        let command_line = self.spec.command_line();
        sidecar_core::log::event(
            sidecar_core::log::Severity::Info,
            &format!("started {}", self.spec.name),
            &ChildEvent {
                program: &self.spec.name,
                pid: Some(pid),
                exit: None,
                restart_in_ms: None,
                command: Some(&command_line),
                last_output: Vec::new(),
            },
        );
        Ok(pid)
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The spec, to change before the next restart (a capture that must write to a new file
    /// name each time it starts).
    pub fn spec_mut(&mut self) -> &mut ChildSpec {
        &mut self.spec
    }

    /// Current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The pid while running.
    pub fn pid(&self) -> Option<u32> {
        match self.state {
            State::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// How many times the child was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The last lines the child printed (most recent last).
    pub fn recent_output(&self) -> Vec<String> {
        self.recent.lock().map(|r| r.lines()).unwrap_or_default()
    }

    /// Hands over an exit status reaped elsewhere (a PID 1 that reaps every child with
    /// `waitpid(-1)`); returns whether `pid` is this child's.
    pub fn notify_exit(&mut self, pid: u32, exit: Exit) -> bool {
        if self.pid() == Some(pid) {
            self.reaped = Some((pid, exit));
            true
        } else {
            false
        }
    }

    fn reap(&mut self, pid: u32) -> Option<Exit> {
        let exit = match self.reaped.take() {
            Some((reaped, exit)) if reaped == pid => Some(exit),
            _ => try_reap(pid),
        }?;
        // The child is gone; whatever it started in its group must not outlive it (a restart
        // would run beside the old helpers, and nothing would ever stop them). The group id
        // stays reserved while any member lives, so this reaches only those members.
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        Some(exit)
    }

    /// Reaps the child if it exited and restarts it when due. Never blocks.
    pub fn poll(&mut self) -> Option<Event> {
        match self.state.clone() {
            State::Running { pid, since } => {
                let exit = self.reap(pid)?;
                if self.spec.done_on_success && exit.is_success() {
                    self.state = State::Stopped { exit };
                    sidecar_core::log::event(
                        sidecar_core::log::Severity::Info,
                        &format!("{} finished ({exit})", self.spec.name),
                        &ChildEvent {
                            program: &self.spec.name,
                            pid: Some(pid),
                            exit: Some(exit.to_string()),
                            restart_in_ms: None,
                            command: None,
                            last_output: self.recent_output(),
                        },
                    );
                    return Some(Event::Finished { exit });
                }
                let ran_for = since.elapsed();
                if ran_for >= self.policy.stable_after {
                    self.failures = 0;
                }
                self.failures += 1;
                let hopeless = self
                    .policy
                    .give_up_on_code
                    .is_some_and(|code| exit == Exit::Code(code));
                if hopeless || self.failures > self.policy.max_failures {
                    self.state = State::GaveUp { last: exit };
                    self.log_exit(Some(pid), exit, None, sidecar_core::log::Severity::Error);
                    return Some(Event::GaveUp { exit });
                }
                let delay = self.policy.backoff(self.failures);
                self.state = State::Restarting {
                    at: Instant::now() + delay,
                    last: exit,
                };
                self.log_exit(
                    Some(pid),
                    exit,
                    Some(delay),
                    sidecar_core::log::Severity::Warning,
                );
                Some(Event::Exited {
                    exit,
                    restart_in: delay,
                })
            }
            State::Restarting { at, last } if Instant::now() >= at => match self.spawn() {
                Ok(pid) => Some(Event::Restarted { pid }),
                Err(error) => {
                    sidecar_core::log::error(&error.to_string());
                    self.state = State::GaveUp { last };
                    Some(Event::GaveUp { exit: last })
                }
            },
            _ => None,
        }
    }

    fn log_exit(
        &self,
        pid: Option<u32>,
        exit: Exit,
        restart_in: Option<Duration>,
        severity: sidecar_core::log::Severity,
    ) {
        let message = match restart_in {
            Some(_) => format!("{} exited ({exit}); restarting", self.spec.name),
            None => format!("{} exited ({exit}); giving up", self.spec.name),
        };
        sidecar_core::log::event(
            severity,
            &message,
            &ChildEvent {
                program: &self.spec.name,
                pid,
                exit: Some(exit.to_string()),
                restart_in_ms: restart_in.map(|d| d.as_millis()),
                command: None,
                last_output: self.recent_output(),
            },
        );
    }

    /// Sends `signal` to the child's process group while it runs.
    pub fn signal(&self, signal: Signal) -> bool {
        match self.pid() {
            Some(pid) => killpg(Pid::from_raw(pid as i32), signal).is_ok(),
            None => false,
        }
    }

    /// Starts a child that waits for its restart, or was stopped, right away (at shutdown,
    /// so that it can drain). Returns the new pid, or `None` when it is running or was given
    /// up.
    pub fn restart_now(&mut self) -> Option<Result<u32, Error>> {
        match self.state {
            State::Restarting { .. } | State::Stopped { .. } => Some(self.spawn()),
            _ => None,
        }
    }

    /// Stops the child: SIGTERM to its group, up to `grace` to exit, then SIGKILL. A child
    /// waiting for a restart is simply not restarted. Returns how it ended.
    pub fn stop(&mut self, grace: Duration) -> Exit {
        let exit = match self.state.clone() {
            State::Running { pid, .. } => {
                let group = Pid::from_raw(pid as i32);
                let _ = killpg(group, Signal::SIGTERM);
                let deadline = Instant::now() + grace;
                loop {
                    if let Some(exit) = self.reap(pid) {
                        break exit;
                    }
                    if Instant::now() >= deadline {
                        let _ = killpg(group, Signal::SIGKILL);
                        break reap_blocking(pid);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            State::Restarting { last, .. } | State::GaveUp { last } => last,
            State::Stopped { exit } => exit,
        };
        self.state = State::Stopped { exit };
        exit
    }
}

/// Stops several children at once: SIGTERM to every group first, then one shared `grace`
/// for all of them, then SIGKILL to those still running. Stopping them one after the other
/// would let each use up the whole grace period. Returns how each ended, in order.
pub fn stop_all(children: &mut [&mut Supervised], grace: Duration) -> Vec<Exit> {
    for child in children.iter() {
        child.signal(Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut exits: Vec<Option<Exit>> = vec![None; children.len()];
    loop {
        for (child, exit) in children.iter_mut().zip(exits.iter_mut()) {
            if exit.is_none() {
                *exit = match child.state.clone() {
                    State::Running { pid, .. } => child.reap(pid),
                    State::Restarting { last, .. } | State::GaveUp { last } => Some(last),
                    State::Stopped { exit } => Some(exit),
                };
            }
        }
        if exits.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    children
        .iter_mut()
        .zip(exits)
        .map(|(child, exit)| {
            let exit = match (exit, child.state.clone()) {
                (Some(exit), _) => exit,
                (None, State::Running { pid, .. }) => {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    reap_blocking(pid)
                }
                (None, _) => Exit::Code(-1),
            };
            child.state = State::Stopped { exit };
            exit
        })
        .collect()
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Never leave a running child behind (tests, panics).
        if let State::Running { pid, .. } = self.state {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = reap_blocking(pid);
        }
    }
}

fn to_exit(status: WaitStatus) -> Option<Exit> {
    match status {
        WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
        WaitStatus::Signaled(_, signal, _) => Some(Exit::Signal(signal as i32)),
        _ => None,
    }
}

/// Reaps any exited child of this process without blocking: `(pid, exit)`. Only for PID 1,
/// which must also reap orphans re-parented to it; hand each result to
/// [`Supervised::notify_exit`].
pub fn reap_any() -> Option<(u32, Exit)> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(status) => {
                if let (Some(pid), Some(exit)) = (status.pid(), to_exit(status)) {
                    return Some((pid.as_raw() as u32, exit));
                }
            }
        }
    }
}

/// Whether every wait reaps orphans too (PID 1).
static ORPHAN_REAPER: AtomicBool = AtomicBool::new(false);
/// Pids of supervised children that have not been reaped yet.
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// Exit statuses of supervised children collected by `waitpid(-1)` before their handle
/// asked for them.
static COLLECTED: Mutex<BTreeMap<u32, Exit>> = Mutex::new(BTreeMap::new());

/// Makes every wait of this crate (polls, stops, start-up waits of the caller's loop that
/// poll) reap orphans as well: for a process running as PID 1. Never in a test process
/// with other children, whose statuses it would take.
pub fn reap_orphans(enable: bool) {
    ORPHAN_REAPER.store(enable, Ordering::SeqCst);
}

/// Reaps every exited child without blocking: supervised children's statuses are kept for
/// their handles, orphans are reaped and forgotten. Returns the orphans' pids and exits.
pub fn collect_exits() -> Vec<(u32, Exit)> {
    let mut orphans = Vec::new();
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    while let Some((pid, exit)) = reap_any() {
        if children.contains(&pid) {
            COLLECTED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid, exit);
        } else {
            orphans.push((pid, exit));
        }
    }
    orphans
}

fn forget_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// A non-blocking `waitpid` for one pid.
fn try_reap(pid: u32) -> Option<Exit> {
    if ORPHAN_REAPER.load(Ordering::SeqCst) {
        let _ = collect_exits();
        let exit = COLLECTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)?;
        forget_child(pid);
        return Some(exit);
    }
    let exit = match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
        Ok(status) => to_exit(status),
        // Someone else reaped it (e.g. PID 1's orphan reaper): it is gone all the same.
        Err(Errno::ECHILD) => Some(Exit::Code(-1)),
        Err(_) => None,
    };
    if exit.is_some() {
        forget_child(pid);
    }
    exit
}

fn reap_blocking(pid: u32) -> Exit {
    if ORPHAN_REAPER.load(Ordering::SeqCst) {
        // Orphans keep being reaped while this child is waited for.
        loop {
            if let Some(exit) = try_reap(pid) {
                return exit;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    forget_child(pid);
    loop {
        match waitpid(Pid::from_raw(pid as i32), None) {
            Ok(status) => {
                if let Some(exit) = to_exit(status) {
                    return exit;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return Exit::Code(-1),
        }
    }
}
