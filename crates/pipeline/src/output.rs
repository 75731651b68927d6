//! Outputs: where complete lines go. The sink thread is the only writer of every output, so
//! lines never interleave; it hands each output whole lines only.
//!
//! - [`Stdout`]: process stdout, written under the stdout lock so the daemon's own log lines
//!   (which take the same lock) never land inside a chunk.
//! - [`RotatingFiles`]: `<iface>_part_<YYYYMMDDTHHMMSS>Z.json` files in a directory, closed
//!   on a timer (`sidecar_core::naming`) so the exporter sees close-after-write, never reusing a name.
//! - [`WriterOutput`]: any `Write` (tests, pipes).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sidecar_core::rotating::RotatingFile;

/// A destination for lines.
pub trait Output: Send {
    /// Short name used in counters (`stdout`, `files`).
    fn name(&self) -> &str;

    /// Writes complete lines. On error nothing of `lines` may remain half-written.
    fn write(&mut self, lines: &[u8]) -> io::Result<()>;

    /// When [`Output::tick`] must run next (rotation), if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Time-driven work (rotation); runs even when no line arrives.
    fn tick(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }

    /// Flushes and closes; called once at the end.
    fn close(&mut self) -> io::Result<()>;

    /// Files this output completed (closed), oldest first.
    fn closed_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Lines to process stdout.
#[derive(Debug, Default)]
pub struct Stdout;

impl Output for Stdout {
    fn name(&self) -> &str {
        "stdout"
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(lines)?;
        out.flush()
    }

    fn close(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

/// Lines to any writer.
#[derive(Debug)]
pub struct WriterOutput<W> {
    name: String,
    writer: W,
}

impl<W: Write + Send> WriterOutput<W> {
    /// An output called `name` writing to `writer`.
    pub fn new(name: &str, writer: W) -> Self {
        WriterOutput {
            name: name.to_string(),
            writer,
        }
    }
}

impl<W: Write + Send> Output for WriterOutput<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        self.writer.write_all(lines)
    }

    fn close(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Rotating `.json` (or other extension) files: JSON lines on the shared
/// [`RotatingFile`] core.
///
/// A file is opened when the first line after a rotation arrives (no empty files) and
/// closed when its period ends, whether or not more lines come.
#[derive(Debug)]
pub struct RotatingFiles {
    files: RotatingFile,
}

impl RotatingFiles {
    /// Files for `iface` with extension `ext` in `dir` (created if missing), rotated every
    /// `period` (`None`: one file until close).
    pub fn new(dir: &Path, iface: &str, ext: &str, period: Option<Duration>) -> io::Result<Self> {
        // Unbuffered: the sink hands whole batches, and a failed one must be cut back.
        let files = RotatingFile::new(dir, iface, ext, period, 0)?;
        Ok(RotatingFiles { files })
    }

    /// The file being written, if any.
    pub fn current(&self) -> Option<&Path> {
        self.files.current()
    }
}

impl Output for RotatingFiles {
    fn name(&self) -> &str {
        "files"
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        self.files.open(b"")?;
        let complete = self.files.len();
        match self.files.write(lines).and_then(|()| self.files.flush()) {
            Ok(()) => Ok(()),
            Err(error) => {
                // Cut back to the last complete line so the closed file stays valid JSON lines.
                let _ = self.files.close_at(complete);
                Err(error)
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.files.deadline()
    }

    fn tick(&mut self, now: Instant) -> io::Result<()> {
        if self.files.is_due(now) {
            self.files.close()
        } else {
            Ok(())
        }
    }

    fn close(&mut self) -> io::Result<()> {
        self.files.close()
    }

    fn closed_files(&self) -> Vec<PathBuf> {
        self.files.closed().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_core::naming::CaptureFileName;

    #[test]
    fn rotation_closes_on_time_and_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut files =
            RotatingFiles::new(dir.path(), "eth0", "json", Some(Duration::from_millis(1))).unwrap();
        files.write(b"{\"a\":1}\n").unwrap();
        let first = files.current().unwrap().to_path_buf();
        std::thread::sleep(Duration::from_millis(5));
        files.tick(Instant::now()).unwrap();
        assert!(files.current().is_none(), "closed by the timer");
        // Simulate the exporter moving the file away: the name must still not come back.
        std::fs::remove_file(&first).unwrap();
        files.write(b"{\"a\":2}\n").unwrap();
        files.close().unwrap();
        let closed = files.closed_files();
        assert_eq!(closed.len(), 2);
        assert_ne!(closed[0], closed[1]);
        let name =
            CaptureFileName::parse(closed[1].file_name().unwrap().to_str().unwrap()).unwrap();
        assert_eq!((name.iface.as_str(), name.ext.as_str()), ("eth0", "json"));
        assert_eq!(std::fs::read(&closed[1]).unwrap(), b"{\"a\":2}\n");
    }

    #[test]
    fn no_lines_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatingFiles::new(dir.path(), "any", "json", None).unwrap();
        files.tick(Instant::now()).unwrap();
        files.close().unwrap();
        assert!(files.closed_files().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
