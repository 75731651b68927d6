//! The one error type of the test bed, so helpers can report failures instead of panicking.

use std::fmt;
use std::time::Duration;

/// Result alias used by every fallible helper in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while setting up or using a test-bed part.
///
/// Every variant carries enough context (what was being done, logs of the
/// child process when there are any) to diagnose a failing test from its output alone.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call or a spawned command failed to run.
    Io {
        /// What the helper was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command ran but exited unsuccessfully.
    Command {
        /// The command line, for copy-and-paste reproduction.
        command: String,
        /// Exit status and captured stderr.
        detail: String,
    },
    /// An HTTP request failed (transport error or unexpected status).
    Http {
        /// What the helper was doing.
        context: String,
        /// The HTTP status, when the server answered at all.
        status: Option<u16>,
        /// Error text or response body.
        detail: String,
    },
    /// A bounded wait ran out of time.
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long the helper waited.
        waited: Duration,
        /// Last observed state, to tell "almost" from "never".
        detail: String,
    },
    /// A helper process exited or misbehaved; `log` holds its captured output.
    Process {
        /// What the helper was doing.
        context: String,
        /// Tail of the process log.
        log: String,
    },
    /// The environment lacks something the helper needs (root, a binary, a device).
    Unsupported(String),
    /// A server answered with data the helper could not understand.
    Protocol(String),
    /// The caller passed an argument the helper cannot use (e.g. a bad bucket name).
    InvalidInput(String),
}

impl Error {
    /// Wraps an I/O error with a description of what was being attempted.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Command { command, detail } => write!(f, "command `{command}` failed: {detail}"),
            Error::Http {
                context,
                status: Some(status),
                detail,
            } => write!(f, "{context}: HTTP {status}: {detail}"),
            Error::Http {
                context,
                status: None,
                detail,
            } => write!(f, "{context}: {detail}"),
            Error::Timeout {
                what,
                waited,
                detail,
            } => write!(
                f,
                "timed out after {:.1}s waiting for {what}; last state: {detail}",
                waited.as_secs_f64()
            ),
            Error::Process { context, log } => write!(f, "{context}; process log:\n{log}"),
            Error::Unsupported(why) => write!(f, "unsupported environment: {why}"),
            Error::Protocol(why) => write!(f, "unexpected answer: {why}"),
            Error::InvalidInput(why) => write!(f, "invalid input: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
