//! What one `pcapd` shares between its translators: the byte budget of the analysis state
//! (`PCAP_STATE_MIB`, one budget across workers, Suricata-memcap style) and the counters of
//! every cap that bounds hostile traffic, for the stats line.
//!
//! Each translator accounts its own flows' state ([`crate::Translator`] estimates the bytes a
//! flow holds after each of its packets) and adds the difference here; when the total is
//! over the budget, the translator that notices evicts its least recently used flows' state.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shared by every translator of one daemon (wrap it in an `Arc`).
#[derive(Debug)]
pub struct Limits {
    /// The state budget in bytes.
    pub state_budget: usize,
    state_bytes: AtomicUsize,
    state_peak: AtomicUsize,
    translators: AtomicUsize,
    counters: [AtomicU64; Counter::ALL.len()],
}

/// A counted cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Flows whose analysis state was dropped to stay within the state budget.
    StateEvictedFlows,
    /// Bytes of state so dropped.
    StateEvictedBytes,
    /// HTTP/2 header blocks whose decoded list was cut (64 KiB per block, or the segment's
    /// budget).
    HeaderListsTruncated,
    /// HTTP/2 header fields decoded but not kept.
    HeaderFieldsOmitted,
    /// HPACK references skipped past a segment's reference budget.
    HpackReferencesSkipped,
    /// HTTP/2 streams not recorded past a segment's cap.
    StreamsSkipped,
    /// HTTP/2 header blocks abandoned after too many CONTINUATION frames.
    ContinuationFloods,
    /// Entries cut by the entry-size guard (`PCAP_MAX_ENTRY_BYTES`).
    EntriesCut,
    /// TCP segments held out of order for the HTTP parsers until their gap filled.
    StreamHeldSegments,
    /// TCP segments whose bytes the HTTP parsers had already read (not parsed again).
    StreamDuplicateSegments,
    /// Gaps in a TCP stream that never filled (skipped; the parsers resynchronise).
    StreamGaps,
    /// Bytes in those gaps.
    StreamGapBytes,
    /// Bytes not held because a connection's out-of-order budget was full.
    StreamOverBudgetBytes,
}

impl Counter {
    /// Every counter, in stats-line order.
    pub const ALL: [Counter; 13] = [
        Counter::StateEvictedFlows,
        Counter::StateEvictedBytes,
        Counter::HeaderListsTruncated,
        Counter::HeaderFieldsOmitted,
        Counter::HpackReferencesSkipped,
        Counter::StreamsSkipped,
        Counter::ContinuationFloods,
        Counter::EntriesCut,
        Counter::StreamHeldSegments,
        Counter::StreamDuplicateSegments,
        Counter::StreamGaps,
        Counter::StreamGapBytes,
        Counter::StreamOverBudgetBytes,
    ];

    /// Name in the stats line.
    pub fn name(self) -> &'static str {
        match self {
            Counter::StateEvictedFlows => "state_evicted_flows",
            Counter::StateEvictedBytes => "state_evicted_bytes",
            Counter::HeaderListsTruncated => "h2_header_lists_truncated",
            Counter::HeaderFieldsOmitted => "h2_header_fields_omitted",
            Counter::HpackReferencesSkipped => "h2_hpack_references_skipped",
            Counter::StreamsSkipped => "h2_streams_skipped",
            Counter::ContinuationFloods => "h2_continuation_floods",
            Counter::EntriesCut => "entries_cut",
            Counter::StreamHeldSegments => "tcp_stream_held_segments",
            Counter::StreamDuplicateSegments => "tcp_stream_duplicate_segments",
            Counter::StreamGaps => "tcp_stream_gaps",
            Counter::StreamGapBytes => "tcp_stream_gap_bytes",
            Counter::StreamOverBudgetBytes => "tcp_stream_over_budget_bytes",
        }
    }
}

impl Limits {
    /// Limits with a state budget of `state_budget` bytes.
    pub fn new(state_budget: usize) -> Self {
        Limits {
            state_budget,
            state_bytes: AtomicUsize::new(0),
            state_peak: AtomicUsize::new(0),
            translators: AtomicUsize::new(0),
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Adds `n` to a counter.
    pub fn count(&self, c: Counter, n: u64) {
        if n > 0 {
            if let Some(a) = self.counters.get(c as usize) {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters
            .get(c as usize)
            .map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// State bytes held now, all translators together.
    pub fn state_bytes(&self) -> usize {
        self.state_bytes.load(Ordering::Relaxed)
    }

    /// The most state bytes held at once.
    pub fn state_peak(&self) -> usize {
        self.state_peak.load(Ordering::Relaxed)
    }

    /// Accounts a change of a translator's state from `before` to `after` bytes; returns
    /// whether the total is now over the budget.
    pub(crate) fn account(&self, before: usize, after: usize) -> bool {
        let total = if after >= before {
            let add = after - before;
            self.state_bytes.fetch_add(add, Ordering::Relaxed) + add
        } else {
            let sub = before - after;
            self.state_bytes
                .fetch_sub(sub, Ordering::Relaxed)
                .saturating_sub(sub)
        };
        self.state_peak.fetch_max(total, Ordering::Relaxed);
        total > self.state_budget
    }

    /// A translator starts (`true`) or ends sharing these limits.
    pub(crate) fn register(&self, start: bool) {
        if start {
            self.translators.fetch_add(1, Ordering::Relaxed);
        } else {
            self.translators.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One translator's fair share of the budget, less the eighth eviction frees as margin:
    /// a translator over the budget evicts down to it, so every worker gives up its own
    /// least recently used flows rather than the fastest one giving up everything.
    pub(crate) fn share(&self) -> usize {
        let n = self.translators.load(Ordering::Relaxed).max(1);
        (self.state_budget - self.state_budget / 8) / n
    }

    /// Every counter and gauge by its stats-line name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("state_bytes", self.state_bytes() as u64),
            ("state_peak_bytes", self.state_peak() as u64),
            ("state_budget_bytes", self.state_budget as u64),
        ];
        v.extend(Counter::ALL.iter().map(|c| (c.name(), self.get(*c))));
        v
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(crate::TranslatorSettings::default().state_bytes)
    }
}
