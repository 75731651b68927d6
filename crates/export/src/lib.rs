//! Export of completed capture files: streaming gzip and the destinations they go to.
//!
//! - [`Compression`] and [`encode`]: a file is read once, optionally gzipped on the fly
//!   ([`flate2`] with the `zlib-rs` backend), and counted and checksummed (CRC32C) as it goes,
//!   so memory does not grow with the file size.
//! - [`Destination`]: one interface, two implementations.
//!   - [`DirectoryDestination`]: a plain directory or a gcsfuse bucket mount (temporary name,
//!     sync, close — where gcsfuse reports failed uploads — rename without replacing;
//!     temporary names a killed run left are deleted at start-up).
//!   - [`GcsApiDestination`]: the Cloud Storage JSON API, with a "does not exist"
//!     precondition and a CRC32C check of the stored object; [`credentials`] finds its
//!     Application Default Credentials.
//! - [`ExportError`]: every failure, with [`ExportError::is_retryable`] telling the caller
//!   whether trying again can help.
//!
//! An object that already exists under the final name with the same content counts as
//! delivered (a previous run exported it but could not delete the local file); one with other
//! content is a [`ExportError::Conflict`]: it is never overwritten.

pub mod credentials;
mod directory;
mod encode;
mod error;
mod gcs;

pub use directory::DirectoryDestination;
pub use encode::{encode, open_source, Compression, Encoded, Source};
pub use error::ExportError;
pub use gcs::{GcsApiDestination, GcsApiSettings, DEFAULT_GCS_ENDPOINT};

use std::path::Path;

/// One file to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Export<'a> {
    /// The local (capture) file.
    pub source: &'a Path,
    /// The object name relative to the destination root, `/`-separated, including the
    /// `.gz` suffix when compressed (e.g. `proj/svc/…/eth0_part_20260101T000000Z.pcap.gz`).
    pub object: &'a str,
    /// Whether to gzip on the way.
    pub compression: Compression,
    /// Checked just before the object becomes visible under its final name: once closed,
    /// nothing more is committed (see [`CommitGate`]).
    pub gate: Option<&'a CommitGate>,
}

/// Lets an exporter stop at its deadline knowing exactly what was committed.
///
/// Exports [`CommitGate::enter`] before they start; [`CommitGate::stop`] refuses new ones,
/// waits (bounded) for those under way, then closes: a delivery still running after that
/// (blocked on a hung mount) checks [`CommitGate::may_commit`] before its commit and gives
/// up, so the exporter's report of what was not exported stays true.
#[derive(Debug, Default)]
pub struct CommitGate {
    stopping: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    under_way: std::sync::atomic::AtomicUsize,
}

/// An export under way; leaves the gate when dropped.
#[derive(Debug)]
pub struct Entered<'a>(&'a CommitGate);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0
            .under_way
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CommitGate {
    /// Starts an export, unless the gate is stopping.
    pub fn enter(&self) -> Option<Entered<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        // Counted first, checked second: `stop` either sees this export or it sees the flag.
        self.under_way.fetch_add(1, SeqCst);
        let entered = Entered(self);
        (!self.stopping.load(SeqCst)).then_some(entered)
    }

    /// Whether a commit may still happen.
    pub fn may_commit(&self) -> bool {
        !self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Refuses new exports, waits up to `wait` for those under way, then closes. Returns
    /// whether none was still under way.
    pub fn stop(&self, wait: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.stopping.store(true, SeqCst);
        let until = std::time::Instant::now() + wait;
        while self.under_way.load(SeqCst) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.closed.store(true, SeqCst);
        self.under_way.load(SeqCst) == 0
    }
}

/// What a successful delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where the object now is (a path or a `gs://` URL).
    pub location: String,
    /// Bytes read from the local file.
    pub bytes_read: u64,
    /// Bytes stored (compressed size when compressed).
    pub bytes_stored: u64,
    /// The object was already there with identical content; nothing was written.
    pub already_present: bool,
    /// CRC32C (Castagnoli) of the bytes stored, as the object holds them.
    pub crc32c: u32,
}

/// A CRC32C the way Cloud Storage shows it (`crc32c` metadata): base64 of the 4 big-endian
/// bytes.
pub fn crc32c_base64(crc: u32) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// CRC32C of everything `reader` yields.
pub fn crc32c_of(mut reader: impl std::io::Read) -> std::io::Result<u32> {
    let mut crc = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(crc),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Somewhere completed files go. Implementations are used from several threads at once.
pub trait Destination: Send + Sync {
    /// Delivers one file. On `Ok` the object is complete under its final name and the local
    /// file may be deleted; on `Err` nothing is visible under the final name.
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError>;

    /// A short description for logs (`directory /pcap`, `gs://bucket via JSON API`).
    fn describe(&self) -> String;

    /// Deletes what a killed earlier run left under `prefix` (its temporary names, never a
    /// final name). Called once at start-up; returns what was deleted. Destinations that
    /// commit atomically leave nothing.
    fn clean_up(&self, prefix: &str) -> Result<Vec<String>, ExportError> {
        let _ = prefix;
        Ok(Vec::new())
    }
}

/// Checks an object name: relative, `/`-separated, no empty, `.` or `..` segments, no NUL.
pub fn check_object_name(name: &str) -> Result<(), ExportError> {
    let invalid = |reason: &str| ExportError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.contains('\0') {
        return Err(invalid("contains NUL"));
    }
    if name.starts_with('/') {
        return Err(invalid("absolute"));
    }
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(invalid("has an empty, '.' or '..' segment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_checked() {
        assert!(check_object_name("a/b/eth0_part_20260101T000000Z.pcap.gz").is_ok());
        for bad in ["", "/a", "a//b", "a/../b", "./a", "a/", "a\0b"] {
            let error = check_object_name(bad).unwrap_err();
            assert!(!error.is_retryable(), "{bad:?}");
        }
    }
}
