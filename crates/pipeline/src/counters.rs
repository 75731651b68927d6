//! Counters shared by the capture thread, the workers and the sink, and their serializable
//! [`Snapshot`] (what the periodic stats line and the final summary report).
//!
//! Every packet offered to the pipeline ends in exactly one bucket: translated, or dropped
//! with a [`DropReason`]. Every line a worker produced ends, per output, either written or
//! lost (counted with the output's error). Tests rely on these identities.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Why a packet was dropped inside the pipeline (kernel drops are reported by the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The byte-bounded queue between capture and translation was full (drop-newest).
    QueueFull,
    /// Shutdown's drain deadline passed before the packet was translated.
    Shutdown,
}

/// Per-output counters.
#[derive(Debug, Default)]
pub(crate) struct OutputCounters {
    pub(crate) name: String,
    pub(crate) lines: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) lost_lines: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// The pipeline's live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_shutdown: AtomicU64,
    pub(crate) translated: AtomicU64,
    pub(crate) translate_errors: AtomicU64,
    pub(crate) translate_panics: AtomicU64,
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) peak_queued_bytes: AtomicUsize,
    pub(crate) batch_buffers: AtomicU64,
    pub(crate) outputs: Vec<OutputCounters>,
}

impl Counters {
    pub(crate) fn new(output_names: Vec<String>) -> Self {
        Counters {
            outputs: output_names
                .into_iter()
                .map(|name| OutputCounters {
                    name,
                    ..OutputCounters::default()
                })
                .collect(),
            ..Counters::default()
        }
    }

    pub(crate) fn count_drop(&self, reason: DropReason, packets: u64) {
        let counter = match reason {
            DropReason::QueueFull => &self.dropped_queue_full,
            DropReason::Shutdown => &self.dropped_shutdown,
        };
        counter.fetch_add(packets, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, queue_cap: usize) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            received: load(&self.received),
            dropped: Dropped {
                queue_full: load(&self.dropped_queue_full),
                shutdown: load(&self.dropped_shutdown),
            },
            translated: load(&self.translated),
            translate_errors: load(&self.translate_errors),
            translate_panics: load(&self.translate_panics),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            peak_queued_bytes: self.peak_queued_bytes.load(Ordering::Relaxed),
            queue_cap_bytes: queue_cap,
            batch_buffers: load(&self.batch_buffers),
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputSnapshot {
                    name: o.name.clone(),
                    lines: load(&o.lines),
                    bytes: load(&o.bytes),
                    lost_lines: load(&o.lost_lines),
                    errors: load(&o.errors),
                    last_error: o.last_error.lock().ok().and_then(|e| e.clone()),
                })
                .collect(),
        }
    }
}

/// Packets dropped inside the pipeline, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The queue was full ([`DropReason::QueueFull`]).
    pub queue_full: u64,
    /// The drain deadline passed ([`DropReason::Shutdown`]).
    pub shutdown: u64,
}

impl Dropped {
    /// All pipeline drops.
    pub fn total(&self) -> u64 {
        self.queue_full + self.shutdown
    }
}

/// One output's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputSnapshot {
    /// The output's name (`stdout`, `files`, …).
    pub name: String,
    /// Lines written.
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Lines that could not be written (the output failed).
    pub lost_lines: u64,
    /// Write, rotation or close errors.
    pub errors: u64,
    /// The most recent error's message.
    pub last_error: Option<String>,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Packets offered to the pipeline by the source.
    pub received: u64,
    /// Packets dropped inside the pipeline.
    pub dropped: Dropped,
    /// Packets translated (including those whose translation reported an error).
    pub translated: u64,
    /// Translations that reported an error (a line is still written when possible).
    pub translate_errors: u64,
    /// Translations that panicked (caught; no line; the worker's translator is rebuilt).
    pub translate_panics: u64,
    /// Bytes waiting between capture and translation now.
    pub queued_bytes: usize,
    /// The most bytes that ever waited.
    pub peak_queued_bytes: usize,
    /// The queue's cap in bytes.
    pub queue_cap_bytes: usize,
    /// Batch buffers ever allocated (they are recycled; memory is bounded by their number).
    pub batch_buffers: u64,
    /// Per output.
    pub outputs: Vec<OutputSnapshot>,
}

impl Snapshot {
    /// Lines written to the output called `name`, 0 if there is none.
    pub fn written(&self, name: &str) -> u64 {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .map_or(0, |o| o.lines)
    }
}
