//! The vocabulary every Cloud Logging line of the sidecar shares, whether a daemon's own log
//! line (`sidecar_core::log`) or a packet entry (`render`): [`Severity`], the labels
//! ([`SIDECAR_LABEL`] under [`LABELS_KEY`]) and how much a packet entry says ([`Verbosity`]).
//! A leaf crate, so the packet libraries need no daemon machinery.

use serde::Serialize;

/// The `sidecar` label on every line.
pub const SIDECAR_LABEL: &str = "pcap-sidecar";
/// Key of the labels object Cloud Logging lifts into the entry's labels.
pub const LABELS_KEY: &str = "logging.googleapis.com/labels";

/// Cloud Logging severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Detail for debugging.
    Debug,
    /// Routine information.
    Info,
    /// Normal but significant: start-up, shutdown, where files go.
    Notice,
    /// Something may be wrong; the sidecar carries on.
    Warning,
    /// An operation failed.
    Error,
    /// The sidecar cannot do its job.
    Critical,
}

impl Severity {
    /// The name Cloud Logging expects in `severity`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// Packet JSON detail (`PCAP_VERBOSITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Compact entries.
    Info,
    /// Full analysis.
    Debug,
    /// Connection summaries and anomalies only (packet entries, compact, only for segments
    /// an operator should look at).
    Summary,
}
