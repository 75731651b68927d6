//! The completeness manifest: one JSON line per capture file, written into the bucket path
//! through the same destination as the files, so that the bucket alone proves nothing is
//! missing.
//!
//! Records are appended to `PCAP_RUN_DIR/`[`LOCAL_FILE`] as outcomes happen (it survives a
//! restart of the exporter within the instance); the drain's end delivers that file as
//! [`OBJECT`] (`MANIFEST-<n>.jsonl` when the name is taken). [`verify`] checks a downloaded
//! folder against its manifests (`pcap-fsnotify --verify DIR`, `scripts/verify-bucket`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sidecar_core::naming::CaptureFileName;

/// The manifest's file name in `PCAP_RUN_DIR` while the exporter runs.
pub const LOCAL_FILE: &str = "MANIFEST.jsonl";
/// The manifest's object name (in the instance's bucket path).
pub const OBJECT: &str = "MANIFEST.jsonl";

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// In the bucket under `object`.
    Exported,
    /// Deleted unexported by the budget policy (`reason` names it).
    Dropped,
    /// Not exported (`reason` says why): still local, vanished, or not a file.
    NotExported,
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The capture file's name.
    pub file: String,
    /// The object's name relative to the manifest (exported files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Bytes of the capture file.
    pub bytes: u64,
    /// Bytes of the object (compressed size when compressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
    /// Packets (pcap records) or JSON lines in the file, when it could be read.
    #[serde(default)]
    pub packets: Option<u64>,
    /// Time of the first packet.
    #[serde(default)]
    pub first: Option<DateTime<Utc>>,
    /// Time of the last packet.
    #[serde(default)]
    pub last: Option<DateTime<Utc>>,
    /// Packets the kernel dropped during the file's period. libpcap reports drops per
    /// handle, not per file: not known to the exporter (`null`).
    #[serde(default)]
    pub kernel_drops: Option<u64>,
    /// Entries pcapd's queue dropped during the file's period (`null`: not known here).
    #[serde(default)]
    pub queue_drops: Option<u64>,
    /// CRC32C of the object's bytes, as Cloud Storage shows it (base64, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
    /// Why, when not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Packets and time span of a capture file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    /// Packets (pcap) or lines (JSON).
    pub packets: Option<u64>,
    /// First packet.
    pub first: Option<DateTime<Utc>>,
    /// Last packet.
    pub last: Option<DateTime<Utc>>,
}

/// Reads a capture file's packet count and time span: pcap record headers, or JSON lines
/// (their `pcap.date`). Anything unreadable gives `None`s, never an error.
pub fn contents(path: &Path, name: &CaptureFileName) -> Contents {
    // Never open a FIFO (it would block) or follow a symlink: regular files only.
    if !fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
        return Contents::default();
    }
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    else {
        return Contents::default();
    };
    let reader = BufReader::with_capacity(256 * 1024, file);
    if name.ext == "json" {
        json_contents(reader)
    } else {
        pcap_contents(reader).unwrap_or_default()
    }
}

fn pcap_contents(mut reader: impl Read) -> Option<Contents> {
    let mut header = [0u8; 24];
    reader.read_exact(&mut header).ok()?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let (little, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        _ => return None,
    };
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut contents = Contents {
        packets: Some(0),
        ..Contents::default()
    };
    let mut record = [0u8; 16];
    let mut skip = Vec::new();
    // A record cut short (the writer was killed) ends the count: it holds no whole packet.
    while reader.read_exact(&mut record).is_ok() {
        let (seconds, fraction, captured) = (
            word(&record[0..4]),
            word(&record[4..8]),
            word(&record[8..12]),
        );
        skip.resize(captured.min(1 << 24) as usize, 0);
        if captured > 1 << 24 || reader.read_exact(&mut skip).is_err() {
            break;
        }
        let nanos = if nanos {
            fraction
        } else {
            fraction.saturating_mul(1000)
        };
        let at = DateTime::from_timestamp(i64::from(seconds), nanos);
        contents.packets = contents.packets.map(|n| n + 1);
        if contents.first.is_none() {
            contents.first = at;
        }
        contents.last = at;
    }
    Some(contents)
}

fn json_contents(reader: impl BufRead) -> Contents {
    let mut contents = Contents {
        packets: Some(0),
        ..Contents::default()
    };
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        contents.packets = contents.packets.map(|n| n + 1);
        let date = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["pcap"]["date"].as_str().map(str::to_string))
            .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| d.with_timezone(&Utc));
        if contents.first.is_none() {
            contents.first = date;
        }
        if date.is_some() {
            contents.last = date;
        }
    }
    contents
}

/// The manifest being written in `PCAP_RUN_DIR`.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
}

impl Manifest {
    /// The manifest in `run_dir` (appended to if an earlier run of the exporter left one).
    pub fn new(run_dir: &Path) -> Manifest {
        Manifest {
            path: run_dir.join(LOCAL_FILE),
        }
    }

    /// Its local path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (one `write` of one line).
    pub fn append(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(sidecar_core::private::FILE_MODE)
            .open(&self.path)?;
        file.write_all(&line)
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<Record> {
        read_records(&self.path).unwrap_or_default()
    }
}

fn read_records(path: &Path) -> io::Result<Vec<Record>> {
    let reader = BufReader::new(File::open(path)?);
    let mut records = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(serde_json::from_str(&line).map_err(io::Error::other)?);
    }
    Ok(records)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Manifests read.
    pub manifests: Vec<String>,
    /// Records in them.
    pub records: usize,
    /// Exported files whose object is present with the recorded size and CRC32C.
    pub verified: usize,
    /// Exported files whose object is missing.
    pub missing: Vec<String>,
    /// Objects whose size or CRC32C differs from the record.
    pub corrupted: Vec<String>,
    /// Files the manifest says were not exported (dropped or not exported), with reasons.
    pub not_exported: Vec<String>,
    /// Capture objects in the folder that no manifest lists.
    pub unlisted: Vec<String>,
    /// Temporary (`.…partial-…`) objects found.
    pub temporary: Vec<String>,
}

impl Verification {
    /// Everything the manifests list as exported is there, intact, and nothing else is.
    pub fn is_intact(&self) -> bool {
        !self.manifests.is_empty()
            && self.missing.is_empty()
            && self.corrupted.is_empty()
            && self.unlisted.is_empty()
            && self.temporary.is_empty()
    }
}

/// Checks a downloaded instance folder against the manifests in it (`MANIFEST*.jsonl`).
pub fn verify(dir: &Path) -> io::Result<Verification> {
    let mut result = Verification::default();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    let mut listed: BTreeMap<String, Record> = BTreeMap::new();
    for name in &names {
        if name.starts_with("MANIFEST") && name.ends_with(".jsonl") {
            result.manifests.push(name.clone());
            for record in read_records(&dir.join(name))? {
                result.records += 1;
                listed.insert(record.file.clone(), record);
            }
        }
    }
    let mut objects_listed = BTreeSet::new();
    for record in listed.values() {
        match (record.outcome, &record.object) {
            (Outcome::Exported, Some(object)) => {
                objects_listed.insert(object.clone());
                let path = dir.join(object);
                let Ok(file) = File::open(&path) else {
                    result.missing.push(object.clone());
                    continue;
                };
                let size = file.metadata()?.len();
                let crc = export::crc32c_of(BufReader::new(file))?;
                if Some(size) != record.stored_bytes
                    || Some(export::crc32c_base64(crc)) != record.crc32c
                {
                    result.corrupted.push(object.clone());
                } else {
                    result.verified += 1;
                }
            }
            _ => result.not_exported.push(format!(
                "{} ({}: {})",
                record.file,
                serde_json::to_value(record.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                record.reason.as_deref().unwrap_or("no reason")
            )),
        }
    }
    for name in &names {
        if name.contains(".partial-") {
            result.temporary.push(name.clone());
        } else if CaptureFileName::parse(name).is_some() && !objects_listed.contains(name) {
            result.unlisted.push(name.clone());
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(records: &[(u32, u32, usize)]) -> Vec<u8> {
        let mut out = wire::pcapfile::global_header(65535, 1).to_vec();
        for &(sec, usec, len) in records {
            out.extend_from_slice(&wire::pcapfile::record_header(
                sec, usec, len as u32, len as u32,
            ));
            out.extend(std::iter::repeat_n(0u8, len));
        }
        out
    }

    #[test]
    fn pcap_packets_and_time_span_are_counted_and_a_cut_record_ends_the_count() {
        let bytes = pcap(&[
            (1_767_225_600, 5, 60),
            (1_767_225_601, 7, 1500),
            (1_767_225_602, 0, 40),
        ]);
        let c = pcap_contents(&bytes[..]).unwrap();
        assert_eq!(c.packets, Some(3));
        assert_eq!(c.first.unwrap().timestamp_micros(), 1_767_225_600_000_005);
        assert_eq!(c.last.unwrap().timestamp(), 1_767_225_602);
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(pcap_contents(cut).unwrap().packets, Some(2));
        assert!(pcap_contents(&b"not a pcap file at all.."[..]).is_none());
    }
}
