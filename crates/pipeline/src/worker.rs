//! Translation workers: each owns one [`Translate`] (its per-connection state), turns the
//! batches its shard receives into [`Chunk`]s of complete JSON lines and passes them on.
//!
//! A translator that panics is caught: the packet's partial output is cut away (so no line
//! is ever cut in half), the panic is counted, and the worker continues with a fresh
//! translator. Workers may block on the sink (bounded channel); only capture must not.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;

use crate::counters::DropReason;
use wire::CapturedPacket;

use crate::queue::Batch;
use crate::Shared;

/// How a translation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// A line was appended.
    Ok,
    /// Something failed; whatever line was appended is still written, and the error counted.
    Error,
}

/// Turns a packet into an output line: appends one complete line (ending in `\n`) to
/// `out`, or nothing. (Lines are counted one per packet that produced output.)
pub trait Translate {
    /// Translates one packet.
    fn translate(&mut self, packet: &CapturedPacket<'_>, out: &mut Vec<u8>) -> Translation;

    /// The input ended (end of file, shutdown): appends any last lines (complete, each
    /// ending in `\n`), such as summaries of what the translator still holds.
    fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// Makes the per-worker translators: the one thing the pipeline needs from its owner.
pub trait Factory: Send + Sync + 'static {
    /// One worker's translator (its shard's per-connection state).
    type Translator: Translate;

    /// The translator of worker `worker`; called again after a translator panicked.
    fn make(&self, worker: usize) -> Self::Translator;

    /// Counters the translators share (state budget, caps), for the owner's stats line;
    /// the pipeline itself does not read them.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

impl<T: Translate, F: Fn(usize) -> T + Send + Sync + 'static> Factory for F {
    type Translator = T;

    fn make(&self, worker: usize) -> T {
        self(worker)
    }
}

/// Output of one batch: complete lines, and in ordered mode where each packet's lines end.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) worker: usize,
    pub(crate) epoch: u64,
    pub(crate) buf: Vec<u8>,
    pub(crate) lines: u64,
    /// Ordered mode: `(seq, end offset in buf)` per packet, in seq order.
    pub(crate) ends: Vec<(u64, usize)>,
}

const CHUNK_KEEP: usize = 1024 * 1024;

impl Chunk {
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.lines = 0;
        self.ends.clear();
        if self.buf.capacity() > 8 * CHUNK_KEEP {
            self.buf.shrink_to(CHUNK_KEEP);
        }
    }
}

pub(crate) struct Worker<F> {
    pub(crate) index: usize,
    pub(crate) input: Receiver<Batch>,
    pub(crate) recycle: Sender<Batch>,
    pub(crate) output: SyncSender<Chunk>,
    pub(crate) chunks: Receiver<Chunk>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) factory: Arc<F>,
    pub(crate) ordered: bool,
}

impl<F: Factory> Worker<F> {
    pub(crate) fn run(self) {
        let counters = &self.shared.counters;
        let mut translator = self.factory.make(self.index);
        let mut spare: Option<Chunk> = None;
        while let Ok(batch) = self.input.recv() {
            let mut chunk = spare
                .take()
                .or_else(|| self.chunks.try_recv().ok())
                .unwrap_or_default();
            chunk.reset();
            chunk.worker = self.index;
            chunk.epoch = batch.epoch;
            for meta in &batch.packets {
                // Checked per packet: after the drain deadline the rest is skipped quickly.
                if self.shared.aborted() {
                    counters.count_drop(DropReason::Shutdown, 1);
                } else {
                    let (start, end) = meta.packet.data;
                    let data = batch.data.get(start..end).unwrap_or_default();
                    let packet = meta.packet.with_data(data);
                    let before = chunk.buf.len();
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        translator.translate(&packet, &mut chunk.buf)
                    }));
                    match result {
                        Ok(outcome) => {
                            counters.translated.fetch_add(1, Ordering::Relaxed);
                            if outcome == Translation::Error {
                                counters.translate_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            if chunk.buf.len() > before {
                                // A line must end where the packet's output ends.
                                if chunk.buf.last() != Some(&b'\n') {
                                    chunk.buf.push(b'\n');
                                }
                                chunk.lines += 1;
                            }
                        }
                        Err(_) => {
                            chunk.buf.truncate(before);
                            counters.translated.fetch_add(1, Ordering::Relaxed);
                            counters.translate_errors.fetch_add(1, Ordering::Relaxed);
                            counters.translate_panics.fetch_add(1, Ordering::Relaxed);
                            // The old translator's state may be half-updated.
                            translator = self.factory.make(self.index);
                        }
                    }
                }
                if self.ordered {
                    chunk.ends.push((meta.seq, chunk.buf.len()));
                }
            }
            self.shared.done(self.index);
            self.shared.release(batch.charged);
            batch.recycle(&self.recycle);
            if chunk.buf.is_empty() && !self.ordered {
                spare = Some(chunk);
                continue;
            }
            if self.output.send(chunk).is_err() {
                // The sink is gone: nothing can be written any more. Keep consuming input so
                // the queue's bytes are released and capture is never stuck on them.
                continue;
            }
        }
        // The input ended: the translator's last lines (e.g. summaries of connections it
        // still holds), as one more chunk (ordered mode: one per worker, sorted last).
        let mut chunk = spare
            .take()
            .or_else(|| self.chunks.try_recv().ok())
            .unwrap_or_default();
        chunk.reset();
        chunk.worker = self.index;
        if !self.shared.aborted() {
            let result = catch_unwind(AssertUnwindSafe(|| translator.finish(&mut chunk.buf)));
            if result.is_err() {
                chunk.buf.clear();
                counters.translate_panics.fetch_add(1, Ordering::Relaxed);
            }
            if chunk.buf.last().is_some_and(|b| *b != b'\n') {
                chunk.buf.push(b'\n');
            }
            chunk.lines = chunk.buf.iter().filter(|b| **b == b'\n').count() as u64;
        }
        if self.ordered {
            chunk.ends.push((u64::MAX, chunk.buf.len()));
        }
        if self.ordered || !chunk.buf.is_empty() {
            let _ = self.output.send(chunk);
        }
    }
}
