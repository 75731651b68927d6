//! `hc-probe`: the sidecar's TCP startup probe.
//!
//! Cloud Run's startup probe (`tcpSocket`) and the app containers that depend on the sidecar
//! must see the port open only when packets are really being captured. [`run`] therefore
//! listens on `PCAP_HC_PORT` exactly while the capture-ready signal
//! ([`sidecar_core::readiness`]) is up, accepts and immediately closes connections, closes
//! the port again when readiness goes away (including a `tcpdumpw` that died without
//! cleaning up), and stops on shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use clap::Command;
use serde::Serialize;
use sidecar_core::config::Config;
use sidecar_core::log::{self, Severity};
use sidecar_core::readiness::{self, Readiness};
use sidecar_core::shutdown::Shutdown;

/// What the probe listens on and where it reads readiness.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Address and port of the probe (`0.0.0.0:PCAP_HC_PORT`).
    pub listen: SocketAddr,
    /// `PCAP_RUN_DIR`.
    pub run_dir: PathBuf,
    /// How often readiness is re-read; also the longest delay before a new probe is
    /// accepted (the kernel completes the handshake meanwhile).
    pub check_every: Duration,
}

/// The command line: `hc-probe` has no flags of its own, only the configuration's.
pub fn command() -> Command {
    Command::new("hc-probe")
        .about("TCP startup probe: listens on PCAP_HC_PORT only while capture is ready")
}

impl ProbeSettings {
    /// Every address on `PCAP_HC_PORT`, readiness from `PCAP_RUN_DIR`.
    pub fn from_config(config: &Config) -> Self {
        ProbeSettings {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.hc_port)),
            run_dir: config.run_dir.clone(),
            check_every: Duration::from_millis(100),
        }
    }
}

/// Counts reported when the probe stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProbeSummary {
    /// Connections accepted (and closed).
    pub accepted: u64,
    /// Times the port was opened.
    pub opened: u64,
    /// Times the port was closed because readiness went away.
    pub withdrawn: u64,
}

#[derive(Serialize)]
struct PortEvent<'a> {
    port: u16,
    readiness: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
}

#[derive(Serialize)]
struct BindFailed<'a> {
    port: u16,
    error: &'a str,
}

fn describe(readiness: &Readiness) -> (&'static str, Option<&str>, Option<u32>) {
    match readiness {
        Readiness::Ready { pid, detail } => ("ready", Some(detail.as_str()), Some(*pid)),
        Readiness::NotReady => ("not-ready", None, None),
        Readiness::Stale { pid } => ("stale: raiser exited", None, Some(*pid)),
    }
}

/// Runs the probe until `shutdown` is requested.
pub fn run(settings: &ProbeSettings, shutdown: &Shutdown) -> io::Result<ProbeSummary> {
    let port = settings.listen.port();
    let mut summary = ProbeSummary::default();
    let mut listener: Option<TcpListener> = None;
    let mut last_bind_error: Option<String> = None;
    let mut errors = AcceptErrors::default();
    log::event(
        Severity::Info,
        "waiting for capture readiness",
        &PortEvent {
            port,
            readiness: "not-ready",
            detail: None,
            pid: None,
        },
    );
    while !shutdown.is_requested() {
        let readiness = readiness::check(&settings.run_dir);
        let (state, detail, pid) = describe(&readiness);
        match (readiness.is_ready(), listener.is_some()) {
            (true, false) => match bind(settings.listen) {
                Ok(bound) => {
                    listener = Some(bound);
                    last_bind_error = None;
                    summary.opened += 1;
                    log::event(
                        Severity::Notice,
                        "capture ready: accepting startup probes",
                        &PortEvent {
                            port,
                            readiness: state,
                            detail,
                            pid,
                        },
                    );
                }
                Err(error) => {
                    // Retried on the next check; logged once per distinct error.
                    let text = error.to_string();
                    if last_bind_error.as_deref() != Some(text.as_str()) {
                        log::event(
                            Severity::Error,
                            "cannot listen for startup probes",
                            &BindFailed { port, error: &text },
                        );
                        last_bind_error = Some(text);
                    }
                }
            },
            (false, true) => {
                if let Some(bound) = listener.take() {
                    summary.accepted += errors.accept(&bound, port);
                }
                summary.withdrawn += 1;
                log::event(
                    Severity::Warning,
                    "capture not ready: stopped accepting startup probes",
                    &PortEvent {
                        port,
                        readiness: state,
                        detail,
                        pid,
                    },
                );
            }
            _ => {}
        }
        if let Some(bound) = &listener {
            summary.accepted += errors.accept(bound, port);
        }
        shutdown.wait_timeout(settings.check_every);
    }
    if let Some(bound) = listener.take() {
        summary.accepted += errors.accept(&bound, port);
    }
    log::event(Severity::Info, "stopped", &summary);
    Ok(summary)
}

fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    // std sets SO_REUSEADDR on Unix, so the port can be re-opened right after a close.
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Accepts every queued connection and closes it at once: a TCP probe only needs the
/// handshake. Returns how many were accepted and the error that stopped it, if any.
///
/// No accept error ends the probe: `EMFILE`/`ENFILE` (descriptors exhausted), `ENOBUFS`,
/// `ENOMEM`, `EPROTO` or a network error on one connection are transient, and exiting
/// would make pcap-init give the probe up after a few quick failures — failing the startup
/// probe of a sidecar that captures fine. The connection stays queued (or was dropped by
/// the kernel) and the next check tries again.
pub fn accept_pending(listener: &TcpListener) -> (u64, Option<io::Error>) {
    let mut accepted = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                drop(stream);
                accepted += 1;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return (accepted, None),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return (accepted, Some(error)),
        }
    }
}

/// Accept errors, logged once per distinct error (they repeat on every check).
#[derive(Default)]
struct AcceptErrors {
    last: Option<String>,
}

impl AcceptErrors {
    fn accept(&mut self, listener: &TcpListener, port: u16) -> u64 {
        let (accepted, error) = accept_pending(listener);
        match error {
            Some(error) => {
                let text = error.to_string();
                if self.last.as_deref() != Some(text.as_str()) {
                    log::event(
                        Severity::Warning,
                        "cannot accept a startup probe now; trying again at the next check",
                        &BindFailed { port, error: &text },
                    );
                    self.last = Some(text);
                }
            }
            None => self.last = None,
        }
        accepted
    }
}
