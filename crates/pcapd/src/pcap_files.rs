//! `.pcap` files written by pcapd itself, for the ring-less capture path where tcpdump cannot
//! run (libpcap ≥ 1.10 needs packet rings). They match what `tcpdump -w FILE -G SECS -s
//! SNAPLEN` writes on the ring path:
//!
//! - names `<iface>_part_<YYYYMMDDTHHMMSS>Z.<ext>` (UTC, the time the file was opened), a
//!   `-<n>` suffix instead of overwriting an existing file;
//! - classic pcap, microsecond timestamps, native byte order, the snap length and link type
//!   of the capture (Ethernet, or Linux cooked v1 for `any`);
//! - a new file when a packet arrives after the rotation period, and also — unlike tcpdump,
//!   which needs `tcpdumpw` to restart it — when an interface goes quiet with packets in the
//!   current file, so they are exported on time; a file without packets is left open;
//! - every file closed (close-after-write, what `pcap-fsnotify` waits for) on rotation and
//!   at stop.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use sidecar_core::naming::CaptureFileName;

/// Classic pcap magic, microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// How often buffered packets reach the file at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where and how `.pcap` files are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapSettings {
    /// The capture directory.
    pub dir: PathBuf,
    /// File extension (`PCAP_FILE_EXT`).
    pub ext: String,
    /// Rotation period (`PCAP_ROTATE_SECS`); `None`: one file until stop.
    pub rotate: Option<Duration>,
    /// Snap length written in the file header (`PCAP_SNAPSHOT_LENGTH`).
    pub snaplen: u32,
}

struct Current {
    file: BufWriter<File>,
    name: CaptureFileName,
    started: DateTime<Utc>,
    packets: u64,
    flushed: Instant,
}

/// The rotating `.pcap` files of one interface.
pub struct PcapFiles {
    settings: PcapSettings,
    iface: String,
    linktype: u32,
    current: Option<Current>,
    /// Names of the files closed so far, oldest first.
    closed: Vec<PathBuf>,
    /// Packets not written because a file could not be opened or written.
    lost: u64,
    /// The last write error, until reported.
    error: Option<String>,
}

impl std::fmt::Debug for PcapFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFiles")
            .field("iface", &self.iface)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PcapFiles {
    /// Opens the first file now.
    pub fn create(settings: PcapSettings, iface: &str, linktype: i32) -> io::Result<PcapFiles> {
        let mut files = PcapFiles {
            settings,
            iface: iface.to_string(),
            linktype: u32::try_from(linktype).unwrap_or(1),
            current: None,
            closed: Vec::new(),
            lost: 0,
            error: None,
        };
        files.current = Some(files.open(Utc::now())?);
        Ok(files)
    }

    fn open(&self, now: DateTime<Utc>) -> io::Result<Current> {
        let name = CaptureFileName::new(&self.iface, now.trunc_subsecs(0), &self.settings.ext)
            .unused_in(&self.settings.dir);
        let path = self.settings.dir.join(name.to_string());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(sidecar_core::private::FILE_MODE)
            .open(&path)?;
        let mut file = BufWriter::with_capacity(256 * 1024, file);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&MAGIC_MICROS.to_ne_bytes());
        header.extend_from_slice(&2u16.to_ne_bytes());
        header.extend_from_slice(&4u16.to_ne_bytes());
        header.extend_from_slice(&0i32.to_ne_bytes());
        header.extend_from_slice(&0u32.to_ne_bytes());
        header.extend_from_slice(&self.settings.snaplen.to_ne_bytes());
        header.extend_from_slice(&self.linktype.to_ne_bytes());
        file.write_all(&header)?;
        // The header reaches the file at once: an idle capture still has a valid file.
        file.flush()?;
        Ok(Current {
            file,
            name,
            started: now,
            packets: 0,
            flushed: Instant::now(),
        })
    }

    fn due(&self, now: DateTime<Utc>) -> bool {
        match (&self.current, self.settings.rotate) {
            (Some(current), Some(rotate)) => {
                (now - current.started).to_std().unwrap_or_default() >= rotate
            }
            (None, _) => true,
            (Some(_), None) => false,
        }
    }

    /// Closes the current file (if any) and opens the next one.
    fn rotate(&mut self, now: DateTime<Utc>) {
        self.close_current();
        match self.open(now) {
            Ok(current) => self.current = Some(current),
            Err(error) => {
                self.error = Some(format!(
                    "cannot create a .{} file in {}: {error}",
                    self.settings.ext,
                    self.settings.dir.display()
                ));
            }
        }
    }

    fn close_current(&mut self) {
        if let Some(mut current) = self.current.take() {
            if let Err(error) = current.file.flush() {
                self.error = Some(format!("cannot write {}: {error}", current.name));
            }
            self.closed
                .push(self.settings.dir.join(current.name.to_string()));
            // Dropping the writer closes the file: pcap-fsnotify's close-after-write.
        }
    }

    /// Writes one packet (`data` already cut to the snap length).
    pub fn write(&mut self, ts_sec: i64, ts_nsec: u32, wire_len: u32, data: &[u8]) {
        let now = Utc::now();
        if self.due(now) {
            self.rotate(now);
        }
        let Some(current) = self.current.as_mut() else {
            self.lost += 1;
            return;
        };
        let caplen = data.len().min(self.settings.snaplen as usize);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&u32::try_from(ts_sec).unwrap_or(0).to_ne_bytes());
        record[4..8].copy_from_slice(&(ts_nsec.min(999_999_999) / 1000).to_ne_bytes());
        record[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
        record[12..16].copy_from_slice(&wire_len.max(caplen as u32).to_ne_bytes());
        let written = current
            .file
            .write_all(&record)
            .and_then(|()| current.file.write_all(&data[..caplen]));
        match written {
            Ok(()) => current.packets += 1,
            Err(error) => {
                self.lost += 1;
                self.error = Some(format!("cannot write {}: {error}", current.name));
                // A fresh file is tried at the next rotation.
                self.current = None;
            }
        }
    }

    /// Called when the capture is idle (and every few packets): flushes, and closes a file
    /// that holds packets once its rotation period is over.
    pub fn tick(&mut self) {
        let now = Utc::now();
        let rotate = self
            .current
            .as_ref()
            .is_some_and(|current| current.packets > 0)
            && self.due(now);
        if rotate {
            self.rotate(now);
            return;
        }
        if let Some(current) = self.current.as_mut() {
            if current.flushed.elapsed() >= FLUSH_EVERY {
                current.flushed = Instant::now();
                if let Err(error) = current.file.flush() {
                    self.error = Some(format!("cannot write {}: {error}", current.name));
                }
            }
        }
    }

    /// A write error not reported yet.
    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    /// Packets lost to write errors.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Closes the last file; returns every file closed, oldest first.
    pub fn close(mut self) -> Vec<PathBuf> {
        self.close_current();
        std::mem::take(&mut self.closed)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, rotate: Option<Duration>) -> PcapSettings {
        PcapSettings {
            dir: dir.to_path_buf(),
            ext: "pcap".into(),
            rotate,
            snaplen: 96,
        }
    }

    #[test]
    fn writes_classic_microsecond_pcap() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PcapFiles::create(settings(dir.path(), None), "eth0", 1).unwrap();
        files.write(1_700_000_000, 123_456_789, 1500, &[0xab; 200]);
        files.write(1_700_000_001, 5, 60, &[0xcd; 60]);
        let closed = files.close();
        assert_eq!(closed.len(), 1);
        let name = closed[0].file_name().unwrap().to_str().unwrap();
        assert!(CaptureFileName::parse(name).is_some(), "{name}");
        assert!(name.starts_with("eth0_part_") && name.ends_with(".pcap"));
        let bytes = std::fs::read(&closed[0]).unwrap();
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(0), MAGIC_MICROS);
        assert_eq!((u32_at(16), u32_at(20)), (96, 1), "snaplen, linktype");
        // First record: cut to the snap length, original length kept, microseconds.
        assert_eq!(
            (u32_at(24), u32_at(28), u32_at(32), u32_at(36)),
            (1_700_000_000, 123_456, 96, 1500)
        );
        let second = 24 + 16 + 96;
        assert_eq!(u32_at(second + 8), 60);
        assert_eq!(bytes.len(), second + 16 + 60);
    }

    #[test]
    fn rotation_closes_files_with_packets_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PcapFiles::create(
            settings(dir.path(), Some(Duration::from_millis(1))),
            "any",
            113,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // Idle with an empty file: kept open.
        files.tick();
        assert_eq!(files.closed.len(), 0);
        files.write(1, 0, 10, &[1; 10]);
        std::thread::sleep(Duration::from_millis(5));
        files.tick();
        // The empty first file was rotated by the packet, the packet's file by the tick.
        assert_eq!(files.closed.len(), 2);
        let closed = files.close();
        assert_eq!(closed.len(), 3);
        let mut names: Vec<_> = closed.iter().map(|p| p.to_path_buf()).collect();
        names.dedup();
        assert_eq!(names.len(), 3, "never the same name twice: {names:?}");
        assert!(closed.iter().all(|p| p.exists()));
    }
}
