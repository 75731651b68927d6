//! The drop journal: how many packets each capture lost, and when, so that the exporter can
//! say in the manifest how many were lost during each file's period.
//!
//! libpcap counts drops per capture handle, not per file, and the exporter is another
//! process. So every capturing process (tcpdump through `tcpdumpw`, and `pcapd`) appends
//! its cumulative counters to `PCAP_RUN_DIR/drops/<writer>-<iface>.jsonl` each time they
//! change (polled every second), with a `start` sample when it starts (its counters restart
//! at zero). The drops during `[from, to]` are then the growth of the counters between the
//! last sample before `from` and the last sample at or before `to`: exact to the polling
//! second. A journal is bounded: past [`MAX_JOURNAL_BYTES`] it is renamed to `….1` (the
//! previous `….1` goes) and a new one starts.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The journals' directory inside `PCAP_RUN_DIR`.
pub const DIR: &str = "drops";
/// A journal's size before it is rotated.
pub const MAX_JOURNAL_BYTES: u64 = 1 << 20;

/// One observation of a writer's cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When the counters were read.
    pub at: DateTime<Utc>,
    /// Packets the kernel dropped since the writer started (`null`: not known).
    pub kernel: Option<u64>,
    /// Packets (or entries) the writer's own queue dropped since it started.
    pub queue: Option<u64>,
    /// The first sample of a writer process: counting restarted at zero just before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start: bool,
}

/// Drops during a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// By the kernel (`None` when the writer does not know).
    pub kernel: Option<u64>,
    /// By the writer's queue (`None` when it has none).
    pub queue: Option<u64>,
}

fn journal_path(run_dir: &Path, writer: &str, iface: &str) -> PathBuf {
    run_dir.join(DIR).join(format!("{writer}-{iface}.jsonl"))
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// A writer's journal, appended to on every change of its counters.
#[derive(Debug)]
pub struct DropJournal {
    path: PathBuf,
    last: Option<(Option<u64>, Option<u64>)>,
}

impl DropJournal {
    /// The journal of `writer` (`tcpdump`, `pcapd`) capturing on `iface`; nothing is written
    /// until the first [`DropJournal::record`], which is the `start` sample.
    pub fn new(run_dir: &Path, writer: &str, iface: &str) -> DropJournal {
        DropJournal {
            path: journal_path(run_dir, writer, iface),
            last: None,
        }
    }

    /// Appends the counters if they changed since the last call (always on the first).
    pub fn record(&mut self, kernel: Option<u64>, queue: Option<u64>) -> io::Result<()> {
        if self.last == Some((kernel, queue)) {
            return Ok(());
        }
        let sample = Sample {
            at: Utc::now(),
            kernel,
            queue,
            start: self.last.is_none(),
        };
        if let Some(dir) = self.path.parent() {
            crate::private::private_dir(dir)?;
        }
        if fs::metadata(&self.path).is_ok_and(|m| m.len() >= MAX_JOURNAL_BYTES) {
            fs::rename(&self.path, rotated(&self.path))?;
        }
        let mut line = serde_json::to_vec(&sample).map_err(io::Error::other)?;
        line.push(b'\n');
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(crate::private::FILE_MODE)
            .open(&self.path)?
            .write_all(&line)?;
        self.last = Some((kernel, queue));
        Ok(())
    }
}

/// Whether `writer` keeps a journal for `iface` in `run_dir`.
pub fn has_journal(run_dir: &Path, writer: &str, iface: &str) -> bool {
    let path = journal_path(run_dir, writer, iface);
    path.exists() || rotated(&path).exists()
}

/// Every sample of a journal, oldest first (an unreadable line is skipped).
pub fn samples(run_dir: &Path, writer: &str, iface: &str) -> Vec<Sample> {
    let path = journal_path(run_dir, writer, iface);
    let mut out = Vec::new();
    for file in [rotated(&path), path] {
        let Ok(file) = fs::File::open(&file) else {
            continue;
        };
        out.extend(
            BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| serde_json::from_str::<Sample>(&line).ok()),
        );
    }
    out
}

/// The drops of `writer` on `iface` during `[from, to]`, from its journal; `None` when it
/// keeps none.
pub fn between(
    run_dir: &Path,
    writer: &str,
    iface: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<Drops> {
    if !has_journal(run_dir, writer, iface) {
        return None;
    }
    Some(drops_between(&samples(run_dir, writer, iface), from, to))
}

/// The growth of the counters during `[from, to]`. Each `start` sample begins a new process
/// whose counters began at zero; the growth of every process that overlaps the period adds
/// up.
pub fn drops_between(samples: &[Sample], from: DateTime<Utc>, to: DateTime<Utc>) -> Drops {
    let mut total = Drops::default();
    let mut add = |before: (Option<u64>, Option<u64>), after: (Option<u64>, Option<u64>)| {
        let grow = |a: Option<u64>, b: Option<u64>, sum: &mut Option<u64>| {
            if let Some(b) = b {
                *sum = Some(sum.unwrap_or(0) + b.saturating_sub(a.unwrap_or(0)));
            }
        };
        grow(before.0, after.0, &mut total.kernel);
        grow(before.1, after.1, &mut total.queue);
    };
    // Split into the runs of one process each.
    let mut runs: Vec<&[Sample]> = Vec::new();
    let mut begin = 0;
    for i in 1..=samples.len() {
        if i == samples.len() || samples[i].start {
            if begin < i {
                runs.push(&samples[begin..i]);
            }
            begin = i;
        }
    }
    for run in runs {
        let Some(first) = run.first() else {
            continue;
        };
        // A process that started after the period adds nothing (one that ended before it
        // adds nothing either: its value before and at the end are the same).
        if first.at > to {
            continue;
        }
        let value = |s: &Sample| (s.kernel, s.queue);
        // Before `from`: the last sample strictly before it (zero if the process started
        // within the period). At `to`: the last sample at or before it.
        let before = run
            .iter()
            .rev()
            .find(|s| s.at < from)
            .map_or((Some(0), Some(0)), value);
        let Some(after) = run.iter().rev().find(|s| s.at <= to) else {
            continue;
        };
        add(before, value(after));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + second, 0).unwrap()
    }

    fn sample(second: i64, kernel: u64, queue: u64, start: bool) -> Sample {
        Sample {
            at: at(second),
            kernel: Some(kernel),
            queue: Some(queue),
            start,
        }
    }

    #[test]
    fn the_growth_within_a_period_across_a_restart() {
        let samples = [
            sample(0, 0, 0, true),
            sample(5, 10, 1, false),
            sample(12, 30, 1, false),
            // The writer restarted: counting begins again at zero.
            sample(20, 0, 0, true),
            sample(25, 7, 2, false),
        ];
        // [10, 15]: 10 before, 30 at 15.
        assert_eq!(
            drops_between(&samples, at(10), at(15)),
            Drops {
                kernel: Some(20),
                queue: Some(0)
            }
        );
        // [10, 30]: 20 in the first process, then 7 and 2 in the second.
        assert_eq!(
            drops_between(&samples, at(10), at(30)),
            Drops {
                kernel: Some(27),
                queue: Some(2)
            }
        );
        // Before anything happened.
        assert_eq!(
            drops_between(&samples, at(0), at(4)),
            Drops {
                kernel: Some(0),
                queue: Some(0)
            }
        );
        // The whole time: every drop once.
        assert_eq!(drops_between(&samples, at(-1), at(99)).kernel, Some(37));
    }

    #[test]
    fn a_journal_records_changes_only_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = DropJournal::new(dir.path(), "tcpdump", "eth0");
        assert!(!has_journal(dir.path(), "tcpdump", "eth0"));
        for kernel in [0, 0, 0, 4, 4, 9] {
            journal.record(Some(kernel), None).unwrap();
        }
        let samples = samples(dir.path(), "tcpdump", "eth0");
        assert_eq!(
            samples.iter().map(|s| s.kernel).collect::<Vec<_>>(),
            vec![Some(0), Some(4), Some(9)]
        );
        assert!(samples[0].start && !samples[1].start);
        let drops = between(dir.path(), "tcpdump", "eth0", at(-10), Utc::now());
        assert_eq!(drops.and_then(|d| d.kernel), Some(9));
        assert_eq!(drops.and_then(|d| d.queue), None);
        assert_eq!(
            between(dir.path(), "pcapd", "eth0", at(0), Utc::now()),
            None
        );
    }
}
