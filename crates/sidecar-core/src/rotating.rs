//! [`RotatingFile`]: the one core every writer of capture files the sidecar names itself is
//! built on (pcapd's `.json` files, and its `.pcap` files on the ring-less path). It
//! allocates names ([`crate::naming`]), opens files private and never over an existing one,
//! rotates on a period, and closes with `sync_data` (pcap-fsnotify exports a file once its
//! writer closes it). Encoders on top decide what goes in: a header when a file opens, then
//! their records.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

use crate::naming::CaptureFileName;

#[derive(Debug)]
struct OpenFile {
    writer: BufWriter<File>,
    name: CaptureFileName,
    path: PathBuf,
    opened: Instant,
    /// Bytes handed to the writer, header included.
    len: u64,
}

/// The rotating capture files of one interface and extension in one directory.
#[derive(Debug)]
pub struct RotatingFile {
    dir: PathBuf,
    iface: String,
    ext: String,
    period: Option<Duration>,
    buffer: usize,
    current: Option<OpenFile>,
    /// The previous file may already have been exported (moved away), so the directory
    /// alone cannot prove a name unused: the last one is remembered.
    last_name: Option<CaptureFileName>,
    closed: Vec<PathBuf>,
}

impl RotatingFile {
    /// Files `<iface>_part_<time>Z[-n].<ext>` in `dir` (created private if missing), due for
    /// rotation every `period` (`None` or zero: one file until closed), written through a
    /// buffer of `buffer` bytes (0: every write reaches the file at once).
    pub fn new(
        dir: &Path,
        iface: &str,
        ext: &str,
        period: Option<Duration>,
        buffer: usize,
    ) -> io::Result<Self> {
        crate::private::private_dir(dir)?;
        Ok(RotatingFile {
            dir: dir.to_path_buf(),
            iface: iface.to_string(),
            ext: ext.to_string(),
            period: period.filter(|p| !p.is_zero()),
            buffer,
            current: None,
            last_name: None,
            closed: Vec::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The extension, without the dot.
    pub fn ext(&self) -> &str {
        &self.ext
    }

    /// The file being written, if any.
    pub fn current(&self) -> Option<&Path> {
        self.current.as_ref().map(|f| f.path.as_path())
    }

    /// The name of the file being written, if any.
    pub fn current_name(&self) -> Option<&CaptureFileName> {
        self.current.as_ref().map(|f| &f.name)
    }

    /// Bytes written to the current file so far (0 when none is open).
    pub fn len(&self) -> u64 {
        self.current.as_ref().map_or(0, |f| f.len)
    }

    /// Whether no file is open.
    pub fn is_empty(&self) -> bool {
        self.current.is_none()
    }

    /// A name later than every earlier one of this writer and free in the directory: the
    /// same second as the last file gets the next `-n` suffix.
    fn next_name(&mut self, now: DateTime<Utc>, tag: Option<&str>) -> CaptureFileName {
        let mut name = CaptureFileName::new(&self.iface, now.trunc_subsecs(0), &self.ext);
        if let Some(tag) = tag {
            name = name.tagged(tag);
        }
        if let Some(last) = &self.last_name {
            if last.started == name.started && last.tag == name.tag {
                name.seq = last.seq + 1;
            }
        }
        let name = name.unused_in(&self.dir);
        self.last_name = Some(name.clone());
        name
    }

    /// Opens a new file with `header` written and flushed (an idle capture still leaves a
    /// valid file), unless one is open already.
    pub fn open(&mut self, header: &[u8]) -> io::Result<()> {
        self.open_named(header, Utc::now(), None)
    }

    /// Like [`RotatingFile::open`], with the name's time `started` and tag `tag`
    /// (`<iface>_part_<started>Z_<tag>.<ext>`: the flight recorder's windows).
    pub fn open_named(
        &mut self,
        header: &[u8],
        started: DateTime<Utc>,
        tag: Option<&str>,
    ) -> io::Result<()> {
        if self.current.is_some() {
            return Ok(());
        }
        let name = self.next_name(started, tag);
        let path = self.dir.join(name.to_string());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::private::FILE_MODE)
            .open(&path)?;
        let mut writer = BufWriter::with_capacity(self.buffer, file);
        writer.write_all(header)?;
        writer.flush()?;
        self.current = Some(OpenFile {
            writer,
            name,
            path,
            opened: Instant::now(),
            len: header.len() as u64,
        });
        Ok(())
    }

    /// Appends `bytes` to the open file (buffered).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let open = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("no capture file open"))?;
        open.writer.write_all(bytes)?;
        open.len += bytes.len() as u64;
        Ok(())
    }

    /// Hands buffered bytes to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(open) => open.writer.flush(),
            None => Ok(()),
        }
    }

    /// When the current file's period ends, if it rotates at all.
    pub fn deadline(&self) -> Option<Instant> {
        let period = self.period?;
        self.current.as_ref().map(|f| f.opened + period)
    }

    /// Whether the current file's period is over at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }

    /// Flushes and closes the current file (if any), with `sync_data`: it surfaces
    /// write-back errors a plain close would hide, and rotation is rare enough
    /// (every `PCAP_ROTATE_SECS`) that its cost does not matter.
    pub fn close(&mut self) -> io::Result<()> {
        let Some(mut open) = self.current.take() else {
            return Ok(());
        };
        let flushed = open.writer.flush();
        // Without a second flush attempt: what failed above is not written again.
        let (file, _) = open.writer.into_parts();
        let synced = file.sync_data();
        drop(file);
        self.closed.push(open.path);
        flushed.and(synced)
    }

    /// Closes the current file cut back to its first `len` bytes (the end of the last
    /// complete record): what a failed write left half-written goes.
    pub fn close_at(&mut self, len: u64) -> io::Result<()> {
        let Some(mut open) = self.current.take() else {
            return Ok(());
        };
        // Records before `len` may still be buffered; a failure here is cut away below.
        let _ = open.writer.flush();
        let (file, _) = open.writer.into_parts();
        // Never longer than what reached the file: a cut must not append zeros.
        let cut = file
            .metadata()
            .and_then(|meta| file.set_len(len.min(meta.len())));
        let synced = file.sync_data();
        drop(file);
        self.closed.push(open.path);
        cut.and(synced)
    }

    /// Every file closed so far, oldest first.
    pub fn closed(&self) -> &[PathBuf] {
        &self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_repeat_even_when_the_last_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatingFile::new(dir.path(), "eth0", "json", None, 0).unwrap();
        files.open(b"").unwrap();
        files.write(b"a\n").unwrap();
        files.close().unwrap();
        let first = files.closed()[0].clone();
        // The exporter moved the file away: the name must still not come back.
        std::fs::remove_file(&first).unwrap();
        files.open(b"").unwrap();
        files.close().unwrap();
        assert_ne!(files.closed()[0], files.closed()[1]);
    }

    #[test]
    fn header_first_then_records_and_a_cut_back_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatingFile::new(dir.path(), "any", "pcap", None, 4096).unwrap();
        files.open(b"HDR").unwrap();
        files.write(b"one").unwrap();
        let mark = files.len();
        files.write(b"half").unwrap();
        files.close_at(mark).unwrap();
        assert_eq!(std::fs::read(&files.closed()[0]).unwrap(), b"HDRone");
    }

    #[test]
    fn due_only_with_a_period_and_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let period = Some(Duration::from_millis(1));
        let mut files = RotatingFile::new(dir.path(), "lo", "json", period, 0).unwrap();
        assert!(!files.is_due(Instant::now() + Duration::from_secs(1)));
        files.open(b"").unwrap();
        assert!(files.is_due(Instant::now() + Duration::from_secs(1)));
        let mut forever = RotatingFile::new(dir.path(), "lo", "json", None, 0).unwrap();
        forever.open(b"").unwrap();
        assert!(!forever.is_due(Instant::now() + Duration::from_secs(3600)));
    }
}
