//! The files waiting in the capture directory, oldest first, and what is known about each.
//!
//! The capture directory itself is the durable queue (a file is deleted only after its export
//! is confirmed); this table is the exporter's view of it: which files are still being
//! written, which are ready, which wait for a retry, which are being exported and which could
//! not be exported at all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sidecar_core::config::BacklogPolicy;
use sidecar_core::naming::CaptureFileName;

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A writer still has it open.
    Open,
    /// Complete, waiting for a worker.
    Ready,
    /// A worker is exporting it.
    InFlight,
    /// Failed; tried again at this instant.
    Waiting(Instant),
    /// Cannot be exported (not a regular file …); kept and reported.
    Rejected,
}

/// One capture file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its parsed name.
    pub name: CaptureFileName,
    /// Its path in the capture directory.
    pub path: PathBuf,
    /// Where it stands.
    pub state: State,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Bytes, as last seen.
    pub size: u64,
    /// Added to the name's sequence number after a conflict with an existing object.
    pub seq_bump: u32,
}

impl Entry {
    /// The file name in the capture directory.
    pub fn file(&self) -> String {
        self.name.to_string()
    }

    /// The exported file name (sequence bumped after conflicts), without `.gz`.
    pub fn export_name(&self) -> CaptureFileName {
        let mut name = self.name.clone();
        name.seq += self.seq_bump;
        name
    }
}

type Key = (DateTime<Utc>, String);

fn key(name: &CaptureFileName) -> Key {
    (name.started, name.to_string())
}

/// All known files, ordered by start time then name: the export order.
#[derive(Debug, Default)]
pub struct Backlog {
    entries: BTreeMap<Key, Entry>,
}

impl Backlog {
    /// Records a file a writer is still writing; no change if already known.
    pub fn observe_open(&mut self, name: CaptureFileName, path: PathBuf) {
        self.entries.entry(key(&name)).or_insert(Entry {
            name,
            path,
            state: State::Open,
            attempts: 0,
            size: 0,
            seq_bump: 0,
        });
    }

    /// Records a complete file: new or open ones become ready. Returns whether it changed.
    pub fn observe_complete(&mut self, name: CaptureFileName, path: PathBuf, size: u64) -> bool {
        let entry = self.entries.entry(key(&name)).or_insert(Entry {
            name,
            path,
            state: State::Open,
            attempts: 0,
            size,
            seq_bump: 0,
        });
        if entry.state == State::Open {
            entry.state = State::Ready;
            entry.size = size;
            true
        } else {
            false
        }
    }

    /// Forgets a file (it was deleted or renamed away), unless a worker is on it.
    pub fn forget(&mut self, name: &CaptureFileName) -> Option<Entry> {
        let k = key(name);
        match self.entries.get(&k) {
            Some(entry) if entry.state != State::InFlight => self.entries.remove(&k),
            _ => None,
        }
    }

    /// Removes a file whatever its state (its export finished).
    pub fn remove(&mut self, name: &CaptureFileName) -> Option<Entry> {
        self.entries.remove(&key(name))
    }

    /// The entry of `name`.
    pub fn get_mut(&mut self, name: &CaptureFileName) -> Option<&mut Entry> {
        self.entries.get_mut(&key(name))
    }

    /// The oldest file that may be exported now, marked in flight.
    pub fn take_next(&mut self, now: Instant) -> Option<Entry> {
        let entry = self.entries.values_mut().find(|e| match e.state {
            State::Ready => true,
            State::Waiting(at) => at <= now,
            _ => false,
        })?;
        entry.state = State::InFlight;
        Some(entry.clone())
    }

    /// The earliest retry instant, if any file waits for one.
    pub fn next_retry(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e.state {
                State::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Every entry, oldest first, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.values_mut()
    }

    /// Number of entries in `state`-matching states.
    pub fn count(&self, matches: impl Fn(State) -> bool) -> usize {
        self.entries.values().filter(|e| matches(e.state)).count()
    }

    /// Bytes of all files still in the capture directory as far as the table knows.
    pub fn bytes(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// Whether anything is left to export (rejected files excepted).
    pub fn has_work(&self) -> bool {
        self.entries.values().any(|e| e.state != State::Rejected)
    }

    /// Which completed, not-in-flight files to give up so the table fits in `budget` bytes,
    /// in the order `policy` says. Only files waiting for export are candidates: open files
    /// would keep their memory while written, in-flight ones are nearly done.
    ///
    /// `spare` is how many of the oldest ready files are exempt: the ones idle workers take
    /// next while exports succeed. Exports have not fallen behind for a file a worker is free
    /// to start at once (it leaves the directory in seconds), even when a large file still
    /// being written holds the directory over budget.
    pub fn over_budget(
        &self,
        budget: u64,
        policy: BacklogPolicy,
        spare: usize,
    ) -> Vec<CaptureFileName> {
        let mut total = self.bytes();
        if total <= budget {
            return Vec::new();
        }
        // The next files a worker takes, in export order whatever the policy's order.
        let spared: Vec<&CaptureFileName> = self
            .entries
            .values()
            .filter(|e| e.state == State::Ready)
            .take(spare)
            .map(|e| &e.name)
            .collect();
        let candidates = self.entries.values().filter(|e| {
            matches!(e.state, State::Ready | State::Waiting(_)) && !spared.contains(&&e.name)
        });
        let ordered: Vec<&Entry> = match policy {
            BacklogPolicy::DropOldest => candidates.collect(),
            BacklogPolicy::DropNewest => candidates.rev().collect(),
        };
        let kept_by_policy = ordered.last().map(|e| e.name.clone());
        let mut victims = Vec::new();
        for entry in ordered {
            if total <= budget {
                break;
            }
            total = total.saturating_sub(entry.size);
            victims.push(entry.name.clone());
        }
        // The policy never takes the last waiting file when no other is about to be
        // exported: while files still being written exceed the budget on their own,
        // deleting it cannot make the directory fit, and it would leave nothing to export —
        // so no export could succeed and show that the destination works again. The
        // directory may then exceed the budget by that one file.
        if spared.is_empty() && victims.last() == kept_by_policy.as_ref() {
            victims.pop();
        }
        victims
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn name(minute: u32, iface: &str) -> CaptureFileName {
        CaptureFileName::parse(&format!("{iface}_part_20260101T00{minute:02}00Z.pcap")).unwrap()
    }

    #[test]
    fn oldest_ready_first_and_retries_wait() {
        let mut backlog = Backlog::default();
        let now = Instant::now();
        backlog.observe_complete(name(3, "eth0"), "/c".into(), 10);
        backlog.observe_open(name(1, "eth0"), "/a".into());
        backlog.observe_complete(name(2, "lo"), "/b".into(), 10);
        // The open file (minute 1) is skipped; minute 2 is the oldest complete one.
        let first = backlog.take_next(now).unwrap();
        assert_eq!(first.name, name(2, "lo"));
        backlog.get_mut(&first.name).unwrap().state = State::Waiting(now + Duration::from_secs(5));
        assert_eq!(backlog.take_next(now).unwrap().name, name(3, "eth0"));
        assert!(backlog.take_next(now).is_none());
        assert_eq!(backlog.next_retry(), Some(now + Duration::from_secs(5)));
        assert_eq!(
            backlog
                .take_next(now + Duration::from_secs(6))
                .unwrap()
                .name,
            name(2, "lo")
        );
        // In-flight files are not forgotten when their deletion event arrives first.
        assert!(backlog.forget(&name(3, "eth0")).is_none());
        assert!(backlog.remove(&name(3, "eth0")).is_some());
        // A close event turns the open file ready.
        assert!(backlog.observe_complete(name(1, "eth0"), "/a".into(), 7));
        assert!(!backlog.observe_complete(name(1, "eth0"), "/a".into(), 7));
    }

    #[test]
    fn budget_policy_picks_victims_in_order() {
        let mut backlog = Backlog::default();
        for minute in 1..=4 {
            backlog.observe_complete(name(minute, "eth0"), "/x".into(), 100);
        }
        backlog.observe_open(name(5, "eth0"), "/y".into());
        backlog.get_mut(&name(5, "eth0")).unwrap().size = 100;
        assert!(backlog
            .over_budget(500, BacklogPolicy::DropOldest, 0)
            .is_empty());
        assert_eq!(
            backlog.over_budget(300, BacklogPolicy::DropOldest, 0),
            vec![name(1, "eth0"), name(2, "eth0")]
        );
        assert_eq!(
            backlog.over_budget(350, BacklogPolicy::DropNewest, 0),
            vec![name(4, "eth0"), name(3, "eth0")]
        );
        // The open file is never a victim, even when nothing else is left; nor is the last
        // waiting file the policy keeps (the open file alone exceeds the budget,
        // and deleting every completed file would leave nothing to export).
        let victims = backlog.over_budget(0, BacklogPolicy::DropNewest, 0);
        assert!(!victims.contains(&name(5, "eth0")));
        assert_eq!(
            victims,
            vec![name(4, "eth0"), name(3, "eth0"), name(2, "eth0")]
        );
        // Two idle workers while exports succeed: the two oldest ready files are theirs.
        assert_eq!(
            backlog.over_budget(300, BacklogPolicy::DropOldest, 2),
            vec![name(3, "eth0"), name(4, "eth0")]
        );
        assert_eq!(
            backlog.over_budget(0, BacklogPolicy::DropNewest, 2),
            vec![name(4, "eth0"), name(3, "eth0")]
        );
    }
}
