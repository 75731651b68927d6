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

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sidecar_core::rotating::RotatingFile;
use wire::{pcapfile, CapturedPacket, LinkType};

/// How often buffered packets reach the file at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Write buffer of the current file.
const BUFFER_BYTES: usize = 256 * 1024;

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

/// The rotating `.pcap` files of one interface: pcap records on the shared
/// [`RotatingFile`] core.
pub struct PcapFiles {
    files: RotatingFile,
    snaplen: u32,
    /// Global header of every file.
    header: [u8; pcapfile::GLOBAL_HEADER_LEN],
    /// Packets in the current file.
    packets: u64,
    flushed: Instant,
    /// Packets not written because a file could not be opened or written.
    lost: u64,
    /// The last write error, until reported.
    error: Option<String>,
}

impl std::fmt::Debug for PcapFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFiles")
            .field("files", &self.files)
            .field("snaplen", &self.snaplen)
            .finish_non_exhaustive()
    }
}

impl PcapFiles {
    /// Opens the first file now.
    pub fn create(
        settings: PcapSettings,
        iface: &str,
        linktype: LinkType,
    ) -> io::Result<PcapFiles> {
        let files = RotatingFile::new(
            &settings.dir,
            iface,
            &settings.ext,
            settings.rotate,
            BUFFER_BYTES,
        )?;
        let mut pcap = PcapFiles {
            files,
            snaplen: settings.snaplen,
            header: pcapfile::global_header(settings.snaplen, linktype),
            packets: 0,
            flushed: Instant::now(),
            lost: 0,
            error: None,
        };
        pcap.files.open(&pcap.header)?;
        Ok(pcap)
    }

    fn due(&self, now: Instant) -> bool {
        self.files.is_empty() || self.files.is_due(now)
    }

    /// Closes the current file (if any) and opens the next one.
    fn rotate(&mut self) {
        self.close_current();
        match self.files.open(&self.header) {
            Ok(()) => {
                self.packets = 0;
                self.flushed = Instant::now();
            }
            Err(error) => {
                self.error = Some(format!(
                    "cannot create a .{} file in {}: {error}",
                    self.files.ext(),
                    self.files.dir().display()
                ));
            }
        }
    }

    fn close_current(&mut self) {
        let name = self.files.current_name().map(ToString::to_string);
        // Closing is pcap-fsnotify's close-after-write.
        if let Err(error) = self.files.close() {
            self.error = Some(format!(
                "cannot write {}: {error}",
                name.unwrap_or_default()
            ));
        }
    }

    /// Writes one packet (`data` already cut to the snap length).
    pub fn write(&mut self, packet: &CapturedPacket<'_>) {
        if self.due(Instant::now()) {
            self.rotate();
        }
        if self.files.is_empty() {
            self.lost += 1;
            return;
        }
        let (record, caplen) = record_header(self.snaplen, packet);
        let written = self
            .files
            .write(&record)
            .and_then(|()| self.files.write(&packet.data[..caplen]));
        match written {
            Ok(()) => self.packets += 1,
            Err(error) => {
                self.lost += 1;
                let name = self.files.current_name().map(ToString::to_string);
                self.error = Some(format!(
                    "cannot write {}: {error}",
                    name.unwrap_or_default()
                ));
                // A fresh file is tried at the next packet.
                let _ = self.files.close();
            }
        }
    }

    /// Called when the capture is idle (and every few packets): flushes, and closes a file
    /// that holds packets once its rotation period is over.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if self.packets > 0 && self.due(now) {
            self.rotate();
            return;
        }
        if !self.files.is_empty() && self.flushed.elapsed() >= FLUSH_EVERY {
            self.flushed = now;
            if let Err(error) = self.files.flush() {
                let name = self.files.current_name().map(ToString::to_string);
                self.error = Some(format!(
                    "cannot write {}: {error}",
                    name.unwrap_or_default()
                ));
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
        self.files.closed().to_vec()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.files.dir()
    }
}

/// The record header of a packet cut to `snaplen`, and the captured length it gives.
pub(crate) fn record_header(
    snaplen: u32,
    packet: &CapturedPacket<'_>,
) -> ([u8; pcapfile::RECORD_HEADER_LEN], usize) {
    let caplen = packet.data.len().min(snaplen as usize);
    let record = pcapfile::record_header(
        u32::try_from(packet.ts_sec).unwrap_or(0),
        packet.ts_nsec.min(999_999_999) / 1000,
        caplen as u32,
        packet.wire_len.max(caplen as u32),
    );
    (record, caplen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_core::naming::CaptureFileName;

    fn settings(dir: &Path, rotate: Option<Duration>) -> PcapSettings {
        PcapSettings {
            dir: dir.to_path_buf(),
            ext: "pcap".into(),
            rotate,
            snaplen: 96,
        }
    }

    fn packet(ts_sec: i64, ts_nsec: u32, wire_len: u32, data: &[u8]) -> CapturedPacket<'_> {
        CapturedPacket {
            num: 0,
            ts_sec,
            ts_nsec,
            wire_len,
            data,
        }
    }

    #[test]
    fn writes_classic_microsecond_pcap() {
        let dir = tempfile::tempdir().unwrap();
        let mut files =
            PcapFiles::create(settings(dir.path(), None), "eth0", LinkType::Ethernet).unwrap();
        files.write(&packet(1_700_000_000, 123_456_789, 1500, &[0xab; 200]));
        files.write(&packet(1_700_000_001, 5, 60, &[0xcd; 60]));
        let closed = files.close();
        assert_eq!(closed.len(), 1);
        let name = closed[0].file_name().unwrap().to_str().unwrap();
        assert!(CaptureFileName::parse(name).is_some(), "{name}");
        assert!(name.starts_with("eth0_part_") && name.ends_with(".pcap"));
        let bytes = std::fs::read(&closed[0]).unwrap();
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(0), pcapfile::MAGIC_MICRO);
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
            LinkType::LinuxSll,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // Idle with an empty file: kept open.
        files.tick();
        assert_eq!(files.files.closed().len(), 0);
        files.write(&packet(1, 0, 10, &[1; 10]));
        std::thread::sleep(Duration::from_millis(5));
        files.tick();
        // The empty first file was rotated by the packet, the packet's file by the tick.
        assert_eq!(files.files.closed().len(), 2);
        let closed = files.close();
        assert_eq!(closed.len(), 3);
        let mut names: Vec<_> = closed.iter().map(|p| p.to_path_buf()).collect();
        names.dedup();
        assert_eq!(names.len(), 3, "never the same name twice: {names:?}");
        assert!(closed.iter().all(|p| p.exists()));
    }
}
