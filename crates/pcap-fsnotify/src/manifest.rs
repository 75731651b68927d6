//! The completeness manifest: one JSON line per capture file, written into the bucket path
//! through the same destination as the files, so that the bucket alone proves nothing is
//! missing.
//!
//! Records are appended to `PCAP_RUN_DIR/`[`LOCAL_FILE`] as outcomes happen (it survives a
//! restart of the exporter within the instance). Every `PCAP_MANIFEST_SECS`, and at the end
//! of the drain, the records not yet in the bucket are delivered as the next *part*:
//! [`OBJECT`], then `MANIFEST-1.jsonl`, `MANIFEST-2.jsonl`, … Parts hold disjoint records,
//! so an instance stopped without a drain (killed, out of memory) still leaves in the bucket
//! the records of what it exported up to its last part. [`verify`] checks a downloaded
//! folder against all its parts (`pcap-fsnotify --verify DIR`, `scripts/verify-bucket`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sidecar_core::drops::{self, Drops};
use sidecar_core::naming::CaptureFileName;

/// The manifest's file name in `PCAP_RUN_DIR` while the exporter runs.
pub const LOCAL_FILE: &str = "MANIFEST.jsonl";
/// The manifest's object name (in the instance's bucket path): its first part.
pub const OBJECT: &str = "MANIFEST.jsonl";
/// The number of the next part to deliver, kept in `PCAP_RUN_DIR` across exporter restarts.
pub const NEXT_PART_FILE: &str = "MANIFEST.next";
/// The records cut off for the part being delivered (records keep going to [`LOCAL_FILE`]
/// meanwhile); kept until the part is in the bucket.
pub const SENDING_FILE: &str = "MANIFEST.sending";

/// The object name of part `n` (without the bucket path).
pub fn part_name(n: u32) -> String {
    match n {
        0 => OBJECT.to_string(),
        n => format!("MANIFEST-{n}.jsonl"),
    }
}

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
    /// Packets the kernel dropped during the file's period, from its writer's drop journal
    /// (`null`: no journal, e.g. a file nobody in this instance wrote).
    #[serde(default)]
    pub kernel_drops: Option<u64>,
    /// Entries pcapd's queue dropped during the file's period (JSON files; `null` for files
    /// that do not pass through a queue).
    #[serde(default)]
    pub queue_drops: Option<u64>,
    /// CRC32C of the object's bytes, as Cloud Storage shows it (base64, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    /// The flight recorder's trigger kind of a window file (the name's tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
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
    /// Drops during the file's period, from its writer's journal.
    pub drops: Option<Drops>,
}

/// Reads a capture file's packet count and time span: pcap record headers, or JSON lines
/// (their `pcap.date`); and with `run_dir`, its drops. Anything unreadable gives `None`s,
/// never an error.
pub fn contents(path: &Path, name: &CaptureFileName, run_dir: Option<&Path>) -> Contents {
    // Never open a FIFO (it would block) or follow a symlink: regular files only.
    if !fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
        return Contents::default();
    }
    Contents {
        drops: run_dir.and_then(|run_dir| file_drops(run_dir, path, name)),
        ..packets_and_span(path, name)
    }
}

/// The drops of the writer of `name` during its period: from its start (the time in its
/// name) to the start of the next file of the same interface and kind in its directory —
/// the files of one writer tile time — or until now for the last one. JSON files are
/// pcapd's; `.pcap` files are tcpdump's when tcpdump journals on that interface, otherwise
/// pcapd's (the ring-less path), whose pcap files are written before its queue.
fn file_drops(run_dir: &Path, path: &Path, name: &CaptureFileName) -> Option<Drops> {
    let (writer, queue) = if name.ext == "json" {
        ("pcapd", true)
    } else if drops::has_journal(run_dir, "tcpdump", &name.iface) {
        ("tcpdump", false)
    } else {
        ("pcapd", false)
    };
    let next_start = path
        .parent()
        .and_then(|dir| fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| CaptureFileName::parse(&entry.ok()?.file_name().to_string_lossy()))
        .filter(|other| {
            other.iface == name.iface
                && other.ext == name.ext
                && (other.started, other.seq) > (name.started, name.seq)
        })
        .map(|other| other.started)
        .min();
    let to = next_start.unwrap_or_else(Utc::now);
    let found = drops::between(run_dir, writer, &name.iface, name.started, to)?;
    Some(Drops {
        kernel: found.kernel,
        queue: if queue { found.queue } else { None },
    })
}

fn packets_and_span(path: &Path, name: &CaptureFileName) -> Contents {
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

/// The manifest being written in `PCAP_RUN_DIR`: the records not yet delivered.
#[derive(Debug, Clone)]
pub struct Manifest {
    path: PathBuf,
    sending: PathBuf,
    next_part: PathBuf,
    /// Export workers append, the event loop cuts: a record must never land in a part
    /// already on its way.
    lock: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Manifest {
    /// The manifest in `run_dir` (appended to if an earlier run of the exporter left one).
    pub fn new(run_dir: &Path) -> Manifest {
        Manifest {
            path: run_dir.join(LOCAL_FILE),
            sending: run_dir.join(SENDING_FILE),
            next_part: run_dir.join(NEXT_PART_FILE),
            lock: std::sync::Arc::default(),
        }
    }

    /// Cuts the next part: the records so far join those of a part not delivered yet, in
    /// [`Manifest::sending_path`]. Returns whether there is a part to deliver. New records
    /// go on to the local file meanwhile.
    pub fn cut(&self) -> io::Result<bool> {
        let _only_me = self
            .lock
            .lock()
            .map_err(|_| io::Error::other("manifest lock"))?;
        let has = |path: &Path| fs::metadata(path).is_ok_and(|m| m.len() > 0);
        if has(&self.path) {
            if has(&self.sending) {
                let records = fs::read(&self.path)?;
                OpenOptions::new()
                    .append(true)
                    .open(&self.sending)?
                    .write_all(&records)?;
                fs::remove_file(&self.path)?;
            } else {
                fs::rename(&self.path, &self.sending)?;
            }
        }
        Ok(has(&self.sending))
    }

    /// The part being delivered.
    pub fn sending_path(&self) -> &Path {
        &self.sending
    }

    /// The number of the next part (0 when none was delivered in this instance).
    pub fn next_part(&self) -> u32 {
        fs::read_to_string(&self.next_part)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The cut part is in the bucket as part `n`: forget it locally, and deliver the next
    /// part as `n + 1`. The number is written first: if the removal fails, a record is
    /// delivered twice (harmless for [`verify`]), never a part overwritten.
    pub fn delivered(&self, n: u32) -> io::Result<()> {
        fs::write(&self.next_part, format!("{}\n", n.saturating_add(1)))?;
        fs::remove_file(&self.sending)
    }

    /// Appends one record (one `write` of one line).
    pub fn append(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let _only_me = self
            .lock
            .lock()
            .map_err(|_| io::Error::other("manifest lock"))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(sidecar_core::private::FILE_MODE)
            .open(&self.path)?;
        file.write_all(&line)
    }

    /// Every record not delivered yet.
    pub fn records(&self) -> Vec<Record> {
        let mut records = read_records(&self.sending).unwrap_or_default();
        records.extend(read_records(&self.path).unwrap_or_default());
        records
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
    // Parts in delivery order; within a part, records in the order outcomes happened.
    let mut parts: Vec<(u32, &String)> = names
        .iter()
        .filter(|n| n.starts_with("MANIFEST") && n.ends_with(".jsonl"))
        .map(|n| (part_number(n), n))
        .collect();
    parts.sort();
    // Exported records by object (a local name reused after its first file was exported goes
    // out under another object, with a record of its own); other outcomes by file, where a
    // later outcome replaces an earlier one. A record delivered twice counts once.
    let mut exported: BTreeMap<String, Record> = BTreeMap::new();
    let mut last_outcome: BTreeMap<String, Record> = BTreeMap::new();
    for (_, name) in parts {
        result.manifests.push(name.clone());
        for record in read_records(&dir.join(name))? {
            result.records += 1;
            if let (Outcome::Exported, Some(object)) = (record.outcome, &record.object) {
                exported.insert(object.clone(), record.clone());
            }
            last_outcome.insert(record.file.clone(), record);
        }
    }
    let not_exported: Vec<Record> = last_outcome
        .into_values()
        .filter(|r| r.outcome != Outcome::Exported || r.object.is_none())
        .collect();
    let mut objects_listed = BTreeSet::new();
    for record in exported.values().chain(&not_exported) {
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

/// A part's number from its object name (`MANIFEST.jsonl` is 0); other names sort last.
fn part_number(name: &str) -> u32 {
    if name == OBJECT {
        return 0;
    }
    name.strip_prefix("MANIFEST-")
        .and_then(|rest| rest.strip_suffix(".jsonl"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(records: &[(u32, u32, usize)]) -> Vec<u8> {
        let mut pcap = testbed::pcapfile::Writer::new(Vec::new(), 65535).unwrap();
        for &(sec, usec, len) in records {
            let micros = u64::from(sec) * 1_000_000 + u64::from(usec);
            pcap.frame_at(micros, &vec![0u8; len]).unwrap();
        }
        pcap.finish().unwrap()
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
