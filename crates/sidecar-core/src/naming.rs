//! Capture file names: `<iface>_part_<YYYYMMDDTHHMMSS>Z[_<tag>][-<n>].<ext>[.gz]`, always UTC.
//! The flight recorder's windows carry their trigger kind as the tag
//! (`eth0_part_20261206T031500Z_http5xx.pcap`); the time is then the trigger's.
//!
//! The shape keeps the README's merge commands working verbatim
//! (`mergecap -w full.pcap -F pcap ./*_part_*.pcap`, `cat *_part_*.json | jq …`). The optional
//! `-<n>` suffix exists so a name is never reused when two files of one interface start in
//! the same second.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};

const PART: &str = "_part_";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S";

/// A parsed capture file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaptureFileName {
    /// Interface the file was captured on (`eth0`, `any`, `lo`).
    pub iface: String,
    /// When the file was started, to the second, UTC.
    pub started: DateTime<Utc>,
    /// What the file holds, when it is not a plain capture (`[a-z0-9]`: a trigger kind).
    pub tag: Option<String>,
    /// Disambiguates files of one interface started in the same second (0: no suffix).
    pub seq: u32,
    /// Extension without the dot and without `.gz` (`pcap`, `json`).
    pub ext: String,
    /// Whether the name ends in `.gz`.
    pub gzip: bool,
}

impl CaptureFileName {
    /// A new, uncompressed name.
    pub fn new(iface: &str, started: DateTime<Utc>, ext: &str) -> Self {
        CaptureFileName {
            iface: iface.to_string(),
            started,
            tag: None,
            seq: 0,
            ext: ext.to_string(),
            gzip: false,
        }
    }

    /// The same name with a tag (characters other than `[a-z0-9]` are dropped).
    pub fn tagged(mut self, tag: &str) -> Self {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            .take(32)
            .collect();
        self.tag = (!tag.is_empty()).then_some(tag);
        self
    }

    /// The same name with `.gz` appended.
    pub fn gzipped(&self) -> Self {
        CaptureFileName {
            gzip: true,
            ..self.clone()
        }
    }

    /// The first name at or after `self.seq` that does not exist in `dir`: files are never
    /// truncated by a later capture that starts in the same second.
    pub fn unused_in(mut self, dir: &Path) -> Self {
        while self.is_taken_in(dir) {
            self.seq += 1;
        }
        self
    }

    /// Whether `dir` holds a file of this name, plain or gzipped (exported files are
    /// compressed in place first).
    pub fn is_taken_in(&self, dir: &Path) -> bool {
        dir.join(self.to_string()).exists() || dir.join(self.gzipped().to_string()).exists()
    }

    /// Parses a file name (not a path). `None` for files that are not the project's.
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// `tcpdump -w` template of an interface's files (tcpdump expands it with strftime; run it
/// with `TZ=UTC` so the time is UTC like every other name).
pub fn tcpdump_template(iface: &str, ext: &str) -> String {
    format!("{iface}{PART}{TIME_FORMAT}Z.{ext}")
}

impl fmt::Display for CaptureFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{PART}{}Z",
            self.iface,
            self.started.format(TIME_FORMAT)
        )?;
        if let Some(tag) = &self.tag {
            write!(f, "_{tag}")?;
        }
        if self.seq > 0 {
            write!(f, "-{}", self.seq)?;
        }
        write!(f, ".{}", self.ext)?;
        if self.gzip {
            f.write_str(".gz")?;
        }
        Ok(())
    }
}

/// Why a file name is not a capture file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACaptureFile;

impl FromStr for CaptureFileName {
    type Err = NotACaptureFile;

    fn from_str(name: &str) -> Result<Self, NotACaptureFile> {
        let (iface, rest) = name.rsplit_once(PART).ok_or(NotACaptureFile)?;
        if iface.is_empty() || iface.contains('/') {
            return Err(NotACaptureFile);
        }
        // 15 characters of time, then 'Z'.
        let time = rest.get(..15).ok_or(NotACaptureFile)?;
        let started = NaiveDateTime::parse_from_str(time, TIME_FORMAT)
            .map_err(|_| NotACaptureFile)?
            .and_utc();
        let rest = rest.get(15..).ok_or(NotACaptureFile)?;
        let rest = rest.strip_prefix('Z').ok_or(NotACaptureFile)?;
        let (tag, rest) = match rest.strip_prefix('_') {
            Some(tail) => {
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
                    .ok_or(NotACaptureFile)?;
                if end == 0 {
                    return Err(NotACaptureFile);
                }
                (Some(tail[..end].to_string()), &tail[end..])
            }
            None => (None, rest),
        };
        let (seq, rest) = match rest.strip_prefix('-') {
            Some(tail) => {
                let digits = tail.find('.').ok_or(NotACaptureFile)?;
                let seq = tail[..digits].parse().map_err(|_| NotACaptureFile)?;
                (seq, &tail[digits..])
            }
            None => (0, rest),
        };
        let ext = rest.strip_prefix('.').ok_or(NotACaptureFile)?;
        let (ext, gzip) = match ext.strip_suffix(".gz") {
            Some(inner) => (inner, true),
            None => (ext, false),
        };
        if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NotACaptureFile);
        }
        Ok(CaptureFileName {
            iface: iface.to_string(),
            started,
            tag,
            seq,
            ext: ext.to_string(),
            gzip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 7, 8, 9).unwrap()
    }

    #[test]
    fn formats_and_parses_round_trip() {
        let name = CaptureFileName::new("eth0", at(), "pcap");
        assert_eq!(name.to_string(), "eth0_part_20261126T070809Z.pcap");
        assert_eq!(
            name.gzipped().to_string(),
            "eth0_part_20261126T070809Z.pcap.gz"
        );
        for text in [
            "eth0_part_20261126T070809Z.pcap",
            "any_part_20261126T070809Z-2.json.gz",
            "ipvlan-eth0_part_20261126T070809Z.pcap",
            "eth0_part_20261126T070809Z_http5xx.pcap",
            "any_part_20261126T070809Z_manual-1.json.gz",
        ] {
            let parsed = CaptureFileName::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let parsed = CaptureFileName::parse("any_part_20261126T070809Z-2.json.gz").unwrap();
        assert_eq!(
            (parsed.seq, parsed.ext.as_str(), parsed.gzip),
            (2, "json", true)
        );
    }

    #[test]
    fn names_sort_by_time_within_an_interface_and_match_the_readme_glob() {
        let a = CaptureFileName::new("eth0", at(), "pcap");
        let b = CaptureFileName::new("eth0", at() + chrono::Duration::seconds(60), "pcap");
        assert!(a.to_string() < b.to_string());
        assert!(a.to_string().contains("_part_") && a.to_string().ends_with(".pcap"));
    }

    #[test]
    fn rejects_other_files() {
        for text in [
            "TCPDUMPW_EXITED",
            "eth0_part_2026.pcap",
            "eth0_part_20261126T070809.pcap",
            "eth0_part_20261126T070809Z",
            "_part_20261126T070809Z.pcap",
            "eth0_part_20261126T070809Z.pcap.tmp~",
            "eth0_part_20261126T070809Z-x.pcap",
            "eth0_part_20261126T070809Z_.pcap",
            "eth0_part_20261126T070809Z_HTTP.pcap",
        ] {
            assert!(CaptureFileName::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_trigger_window_name_carries_its_kind_and_matches_the_readme_glob() {
        let name = CaptureFileName::new("eth0", at(), "pcap").tagged("http5xx");
        assert_eq!(name.to_string(), "eth0_part_20261126T070809Z_http5xx.pcap");
        let parsed = CaptureFileName::parse(&name.to_string()).unwrap();
        assert_eq!(parsed.tag.as_deref(), Some("http5xx"));
        assert_eq!(parsed, name);
    }

    #[test]
    fn never_reuses_a_name_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = CaptureFileName::new("eth0", at(), "pcap").unused_in(dir.path());
        std::fs::write(dir.path().join(first.to_string()), b"x").unwrap();
        let second = CaptureFileName::new("eth0", at(), "pcap").unused_in(dir.path());
        assert_eq!(second.seq, 1);
        std::fs::write(dir.path().join(second.gzipped().to_string()), b"x").unwrap();
        let third = CaptureFileName::new("eth0", at(), "pcap").unused_in(dir.path());
        assert_eq!(third.seq, 2);
    }

    #[test]
    fn tcpdump_template_expands_to_a_parseable_name() {
        let template = tcpdump_template("eth0", "pcap");
        let expanded = at().format(&template).to_string();
        assert_eq!(
            CaptureFileName::parse(&expanded),
            Some(CaptureFileName::new("eth0", at(), "pcap"))
        );
    }
}
