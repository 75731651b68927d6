//! [`ExportError`]: why a delivery failed, and whether trying again can help.

use std::io;
use std::path::PathBuf;

/// A failed delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The local file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The local file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The local file disappeared before it could be exported.
    #[error("{} vanished before it was exported", path.display())]
    Vanished {
        /// The local file.
        path: PathBuf,
    },
    /// The local path is not a regular file (a directory, a FIFO, a socket …).
    #[error("{} is not a regular file but a {kind}", path.display())]
    NotAFile {
        /// The local path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Writing, syncing, closing or renaming at the destination failed.
    #[error("cannot write {target}: {source}")]
    Write {
        /// The object or path being written.
        target: String,
        /// The cause.
        source: io::Error,
    },
    /// An object with other content already exists under the final name; it is never
    /// overwritten.
    #[error("{target} already exists with different content")]
    Conflict {
        /// The existing object.
        target: String,
    },
    /// The stored object does not match what was sent.
    #[error("{target}: integrity check failed: {detail}")]
    Integrity {
        /// The object.
        target: String,
        /// What differed.
        detail: String,
    },
    /// The storage service answered with an HTTP error.
    #[error("{context}: HTTP {status}: {detail}")]
    Http {
        /// The request.
        context: String,
        /// The status code.
        status: u16,
        /// The body (shortened).
        detail: String,
    },
    /// The storage service could not be reached or the exchange broke off.
    #[error("{context}: {detail}")]
    Transport {
        /// The request.
        context: String,
        /// The cause.
        detail: String,
    },
    /// No access token could be obtained.
    #[error("no access token: {detail}")]
    Credentials {
        /// The cause.
        detail: String,
    },
    /// The exporter is stopping: the object was not committed (its local file is kept).
    #[error("not committed: the exporter is stopping ({target})")]
    Stopped {
        /// The object.
        target: String,
    },
    /// The object name is unusable.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl ExportError {
    /// Whether trying the same delivery again later can succeed. A conflict is not retryable
    /// under the same name (the caller may choose another name).
    pub fn is_retryable(&self) -> bool {
        match self {
            ExportError::Read { source, .. } => source.kind() != io::ErrorKind::NotFound,
            ExportError::Vanished { .. }
            | ExportError::NotAFile { .. }
            | ExportError::Conflict { .. }
            | ExportError::InvalidName { .. } => false,
            // 4xx other than timeout/rate limit/auth (a token may be refreshed) is the
            // request's fault: repeating it verbatim cannot help.
            ExportError::Http { status, .. } => {
                matches!(status, 401 | 403 | 408 | 429) || *status >= 500
            }
            ExportError::Write { .. }
            | ExportError::Stopped { .. }
            | ExportError::Integrity { .. }
            | ExportError::Transport { .. }
            | ExportError::Credentials { .. } => true,
        }
    }

    /// A short machine-readable kind for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ExportError::Read { .. } => "read",
            ExportError::Vanished { .. } => "vanished",
            ExportError::NotAFile { .. } => "not-a-file",
            ExportError::Write { .. } => "write",
            ExportError::Conflict { .. } => "conflict",
            ExportError::Integrity { .. } => "integrity",
            ExportError::Http { .. } => "http",
            ExportError::Transport { .. } => "transport",
            ExportError::Credentials { .. } => "credentials",
            ExportError::InvalidName { .. } => "invalid-name",
            ExportError::Stopped { .. } => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let http = |status| ExportError::Http {
            context: "x".into(),
            status,
            detail: String::new(),
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(404).is_retryable());
        let gone = ExportError::Read {
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(!gone.is_retryable());
        assert!(ExportError::Write {
            target: "t".into(),
            source: io::Error::from(io::ErrorKind::Other)
        }
        .is_retryable());
        assert!(!ExportError::Conflict { target: "t".into() }.is_retryable());
    }
}
