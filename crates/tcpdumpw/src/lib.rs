//! `tcpdumpw`, the capture orchestrator.
//!
//! [`run`] builds and validates the capture filter ([`capture_filter`], the `bpf-filter`
//! crate), picks the capture path (`packet_socket::detect`: libpcap's packet rings, or the
//! ring-less path gVisor needs), selects interfaces ([`ifaces`]), and on the schedule of
//! [`runs`] starts, per interface, one supervised `tcpdump` writing rotating `.pcap` files
//! and, when JSON output is on, one `pcapd` with the same filter ([`capture`]); on the
//! ring-less path a single `pcapd` per interface writes both. It raises the capture-ready signal
//! `hc-probe` reads once every capture child is listening (with cron: once the schedule is
//! armed), picks up interfaces that appear later, follows `PCAP_HOSTS` address changes, and
//! on shutdown stops every child with SIGTERM so the last files are complete. `docs/tcpdumpw.md`
//! describes the behaviour for users.

pub mod capture;
pub mod cli;
mod daemon;
pub mod ifaces;
pub mod runs;

use std::path::PathBuf;
use std::time::Duration;

use bpf_filter::{FilterError, FilterPlan, FilterSpec, Resolver};
use child_process::RestartPolicy;
use serde::Serialize;
use sidecar_core::config::Config;
use sidecar_core::exit;
use sidecar_core::log::{self, Severity};
use sidecar_core::shutdown::Shutdown;

/// Message of the line that reports the capture filter.
pub const FILTER_MESSAGE: &str = "effective capture filter";
/// Message of the line that reports raised readiness.
pub const READY_MESSAGE: &str = "capture running: readiness raised";
/// Message of the line that lists the interface decisions.
pub const INTERFACES_MESSAGE: &str = "interfaces selected";
/// Start of the line that names the capture path and why.
pub const CAPTURE_PATH_MESSAGE: &str = "capture path";

/// Builds the capture filter for `config`, excluding the sidecar's own endpoints read from
/// `env` (`GCE_METADATA_HOST`, `STORAGE_EMULATOR_HOST`), and has libpcap compile it.
pub fn capture_filter(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    resolver: &dyn Resolver,
) -> Result<FilterPlan, FilterError> {
    let spec = FilterSpec::from(config);
    let endpoints = bpf_filter::self_endpoints(&spec, env)?;
    bpf_filter::build(&spec, &endpoints, resolver)
}

#[derive(Serialize)]
struct FilterFailure<'a> {
    variable: String,
    value: &'a str,
}

/// Logs why the filter could not be built (one ERROR line naming the variable) and returns
/// the exit code: [`exit::BAD_CONFIG`] for the user's settings, [`exit::FAILURE`] otherwise.
pub fn report_filter_error(error: &FilterError) -> i32 {
    log::event(
        Severity::Error,
        &error.to_string(),
        &FilterFailure {
            variable: error.variable(),
            value: error.value(),
        },
    );
    if error.is_config() {
        exit::BAD_CONFIG
    } else {
        exit::FAILURE
    }
}

/// `--print-filter`: one NOTICE line with the filter (`filter`, `source`, `variables`,
/// `excluded`, `resolved_hosts`) and [`exit::OK`], or one ERROR line and a non-zero code.
pub fn print_filter(config: &Config) -> i32 {
    match capture_filter(
        config,
        &|name| std::env::var(name).ok(),
        &bpf_filter::SystemResolver,
    ) {
        Ok(plan) => {
            log::event(Severity::Notice, FILTER_MESSAGE, &plan);
            exit::OK
        }
        Err(error) => report_filter_error(&error),
    }
}

/// Knobs of [`run`] that are not user configuration (command-line flags of `tcpdumpw`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How often interfaces are listed again, to capture those that appear later.
    pub rescan_every: Duration,
    /// How often `PCAP_HOSTS` names are resolved again.
    pub hosts_refresh_every: Duration,
    /// How long start-up waits for an interface that matches `PCAP_IFACE`.
    pub iface_wait: Duration,
    /// Kernel capture buffer per tcpdump (`-B`), KiB.
    pub buffer_kib: u32,
    /// The tcpdump program.
    pub tcpdump: PathBuf,
    /// The pcapd program.
    pub pcapd: PathBuf,
    /// Restarts of a capture child that exits.
    pub restart: RestartPolicy,
}

/// Default kernel capture buffer: 4 MiB (tcpdump's own default is 2 MiB; bursts on a busy
/// instance overflow it).
pub const DEFAULT_BUFFER_KIB: u32 = 4096;

impl Default for RunOptions {
    fn default() -> Self {
        let pcapd = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("pcapd")))
            .unwrap_or_else(|| PathBuf::from("pcapd"));
        RunOptions {
            rescan_every: Duration::from_secs(5),
            hosts_refresh_every: Duration::from_secs(60),
            iface_wait: Duration::from_secs(10),
            buffer_kib: DEFAULT_BUFFER_KIB,
            tcpdump: PathBuf::from("tcpdump"),
            pcapd,
            // Five quick failures (0.5 + 1 + 2 + 4 s of backoff) and a child is given up:
            // a capture that cannot start says so within seconds, not minutes.
            restart: RestartPolicy {
                max_failures: 4,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(8),
                stable_after: Duration::from_secs(10),
                give_up_on_code: None,
            },
        }
    }
}

/// What a [`run`] did, logged as its last line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Capture runs started (1 without cron).
    pub runs: u32,
    /// Interfaces that had a capture.
    pub interfaces: Vec<String>,
    /// Child processes started, restarts included.
    pub child_starts: u32,
    /// Restarts after a child exited on its own.
    pub restarts: u32,
    /// Children given up (`tcpdump[eth1]`).
    pub gave_up: Vec<String>,
    /// Filter changes after `PCAP_HOSTS` addresses changed.
    pub filter_changes: u32,
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The capture filter could not be built or compiled.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The capture directory could not be created.
    #[error("cannot create the capture directory {path}: {source}")]
    CaptureDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The interfaces could not be listed.
    #[error("cannot list the network interfaces: {0}")]
    Interfaces(std::io::Error),
    /// No interface matched `PCAP_IFACE` within the start-up wait.
    #[error(
        "no interface matches PCAP_IFACE={prefix} after {waited_secs} s (interfaces here: {available}); \
         set PCAP_IFACE to a prefix that is followed by a digit in an interface name, or to 'any'"
    )]
    NoInterface {
        /// `PCAP_IFACE`.
        prefix: String,
        /// How long start-up waited.
        waited_secs: u64,
        /// The interfaces that exist, with their states.
        available: String,
    },
    /// Every capture child gave up: nothing is captured any more.
    #[error("capture failed on every interface: {detail}")]
    CaptureFailed {
        /// Each child's last words.
        detail: String,
    },
    /// The configuration cannot work on the capture path detected at start.
    #[error("{0}")]
    CapturePath(String),
    /// The manual trigger cannot be served (its port, SIGUSR2).
    #[error("{0}")]
    ManualTrigger(String),
    /// The readiness signal could not be written.
    #[error("cannot raise the capture-ready signal in {path}: {source}")]
    Readiness {
        /// The run directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Filter(error) if error.is_config() => exit::BAD_CONFIG,
            Error::CapturePath(_) => exit::BAD_CONFIG,
            _ => exit::FAILURE,
        }
    }
}

/// Runs the capture until `shutdown` is requested (or capture fails for good): see the crate
/// docs. Returns after every child has been stopped and readiness withdrawn.
pub fn run(config: &Config, shutdown: &Shutdown) -> Result<Summary, Error> {
    run_with(config, shutdown, RunOptions::default())
}

/// [`run`] with other [`RunOptions`] (the binary's flags, tests).
pub fn run_with(
    config: &Config,
    shutdown: &Shutdown,
    options: RunOptions,
) -> Result<Summary, Error> {
    daemon::run(config, shutdown, options)
}
