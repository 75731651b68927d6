//! Capture → translate → write plumbing for `pcapd` (Vector-style, except that capture never
//! waits).
//!
//! ```text
//! capture thread ──Ingest──▶ byte-bounded queue ──▶ worker 0..n (Translate) ──▶ sink ──▶ Output*
//!                (shard key picks the worker)      (one per shard)         (one writer; ordered merge)
//! ```
//!
//! - [`Ingest`] (capture side): copies packets into per-worker batches; a full queue drops the
//!   newest packet and counts it ([`Overflow::DropNewest`]), or waits ([`Overflow::Block`],
//!   for files).
//! - Workers each own a [`Translate`] made by the [`Factory`]; all packets with one shard key
//!   (one connection) go to the same worker, so per-connection state stays in one place.
//! - The sink is the only writer of each [`Output`]; in ordered mode it restores exact
//!   capture order. [`RotatingFiles`] closes files on a timer.
//! - [`Pipeline::finish`] drains inward with a deadline: what cannot be translated in time is
//!   dropped and counted ([`DropReason::Shutdown`]); outputs are always closed.
//!   [`Pipeline::finish_all`] drains without one (files must be complete).
//! - [`Snapshot`]: counters for the stats line, where every packet and line is accounted for.

mod counters;
mod output;
mod queue;
mod sink;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use counters::{DropReason, Dropped, OutputSnapshot, Snapshot};
pub use output::{Output, RotatingFiles, Stdout, WriterOutput};
pub use queue::{Ingest, Overflow, Pushed, PACKET_OVERHEAD};
pub use worker::{Factory, Translate, Translation};

use counters::Counters;
use sink::{Inputs, Sink};
use worker::Worker;

/// How the pipeline is shaped.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Translation workers (at least 1).
    pub workers: usize,
    /// Write in exact capture order.
    pub ordered: bool,
    /// Cap of the queue between capture and translation, in bytes.
    pub queue_bytes: usize,
    /// What a full queue does.
    pub overflow: Overflow,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 2,
            ordered: false,
            queue_bytes: 16 * 1024 * 1024,
            overflow: Overflow::DropNewest,
        }
    }
}

/// State every stage shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    queue_cap: usize,
    abort: AtomicBool,
    room: Condvar,
    room_lock: Mutex<()>,
    in_flight: Vec<std::sync::atomic::AtomicUsize>,
}

impl Shared {
    /// Charges `cost` bytes to the queue if they fit. Only the capture thread charges, so a
    /// load followed by an add cannot overshoot.
    pub(crate) fn try_charge(&self, cost: usize) -> bool {
        let queued = &self.counters.queued_bytes;
        let used = queued.load(Ordering::Acquire);
        // An empty queue takes any packet, so one larger than the cap is not lost forever.
        if used > 0 && used + cost > self.queue_cap {
            return false;
        }
        let now = queued.fetch_add(cost, Ordering::AcqRel) + cost;
        self.counters
            .peak_queued_bytes
            .fetch_max(now, Ordering::Relaxed);
        true
    }

    /// Waits up to `timeout` for a worker to release room.
    pub(crate) fn wait_room(&self, timeout: Duration) {
        let guard = self
            .room_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The timeout covers a release that happens between the caller's check and the wait.
        let _ = self.room.wait_timeout(guard, timeout);
    }

    /// Batches handed to `worker` and not yet translated.
    pub(crate) fn in_flight(&self, worker: usize) -> usize {
        self.in_flight
            .get(worker)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }

    pub(crate) fn sent(&self, worker: usize) {
        if let Some(n) = self.in_flight.get(worker) {
            n.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn done(&self, worker: usize) {
        if let Some(n) = self.in_flight.get(worker) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.counters
                .queued_bytes
                .fetch_sub(bytes, Ordering::AcqRel);
            self.room.notify_one();
        }
    }

    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// Reads the counters of a running pipeline (for a stats thread).
#[derive(Debug, Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

impl Monitor {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.counters.snapshot(self.shared.queue_cap)
    }
}

/// The running workers and sink.
pub struct Pipeline {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    sink: Option<JoinHandle<()>>,
    done: mpsc::Receiver<Vec<Box<dyn Output>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

/// What [`Pipeline::finish`] reports.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Final counters.
    pub snapshot: Snapshot,
    /// Whether the drain finished and every output was closed before the deadline plus a
    /// short grace; false means some thread was still stuck (e.g. a blocked stdout).
    pub complete: bool,
    /// Files completed by the outputs, oldest first per output.
    pub files: Vec<PathBuf>,
}

/// After the deadline, how long workers get to skip what is left and the sink to close.
const ABORT_GRACE: Duration = Duration::from_secs(1);

impl Pipeline {
    /// Starts the workers and the sink. Returns the capture side and the pipeline.
    pub fn start<F: Factory>(
        settings: &Settings,
        factory: Arc<F>,
        outputs: Vec<Box<dyn Output>>,
    ) -> std::io::Result<(Ingest, Pipeline)> {
        let workers = settings.workers.max(1);
        let names = outputs.iter().map(|o| o.name().to_string()).collect();
        let shared = Arc::new(Shared {
            counters: Counters::new(names),
            queue_cap: settings.queue_bytes.max(PACKET_OVERHEAD),
            abort: AtomicBool::new(false),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            in_flight: (0..workers).map(|_| Default::default()).collect(),
        });
        let (recycle_tx, recycle_rx) = mpsc::channel();
        let mut batch_senders = Vec::with_capacity(workers);
        let mut chunk_returns = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        // Two chunks per worker in flight keep workers busy while the sink writes, and bound
        // what waits for a slow output.
        let (shared_tx, shared_rx) = mpsc::sync_channel(2 * workers);
        let mut ordered_rxs = Vec::new();
        for index in 0..workers {
            let (batch_tx, batch_rx) = mpsc::channel();
            let (return_tx, return_rx) = mpsc::channel();
            let output = if settings.ordered {
                let (tx, rx) = mpsc::sync_channel(2);
                ordered_rxs.push(rx);
                tx
            } else {
                shared_tx.clone()
            };
            let worker = Worker {
                index,
                input: batch_rx,
                recycle: recycle_tx.clone(),
                output,
                chunks: return_rx,
                shared: Arc::clone(&shared),
                factory: Arc::clone(&factory),
                ordered: settings.ordered,
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("translate-{index}"))
                    .spawn(move || worker.run())?,
            );
            batch_senders.push(batch_tx);
            chunk_returns.push(return_tx);
        }
        drop(shared_tx);
        let inputs = if settings.ordered {
            Inputs::Ordered(ordered_rxs)
        } else {
            Inputs::Unordered(shared_rx)
        };
        let sink = Sink {
            inputs,
            outputs,
            returns: chunk_returns,
            shared: Arc::clone(&shared),
        };
        let (done_tx, done) = mpsc::channel();
        let sink = std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                let outputs = sink.run();
                let _ = done_tx.send(outputs);
            })?;
        let ingest = Ingest::new(
            Arc::clone(&shared),
            batch_senders,
            recycle_rx,
            settings.overflow,
            settings.ordered,
        );
        Ok((
            ingest,
            Pipeline {
                shared,
                workers: handles,
                sink: Some(sink),
                done,
            },
        ))
    }

    /// A handle for reading counters from another thread.
    pub fn monitor(&self) -> Monitor {
        Monitor {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        self.monitor().snapshot()
    }

    /// Drains after the [`Ingest`] was closed (or dropped): workers translate what is queued
    /// and the sink writes it and closes every output. At `deadline`, whatever is not yet
    /// translated is dropped and counted, and outputs are closed within a short grace.
    pub fn finish(self, deadline: Instant) -> Finished {
        self.finish_by(Some(deadline))
    }

    /// Drains without a deadline: every queued packet is translated and written, however
    /// long that takes. For files (`pcapd --read`), which must be complete; live capture
    /// uses [`Pipeline::finish`].
    pub fn finish_all(self) -> Finished {
        self.finish_by(None)
    }

    fn finish_by(mut self, deadline: Option<Instant>) -> Finished {
        let outputs = match deadline {
            None => self.done.recv().ok(),
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self.done.recv_timeout(wait) {
                    Ok(outputs) => Some(outputs),
                    Err(RecvTimeoutError::Disconnected) => None,
                    Err(RecvTimeoutError::Timeout) => {
                        self.shared.abort.store(true, Ordering::Relaxed);
                        self.shared.room.notify_all();
                        self.done.recv_timeout(ABORT_GRACE).ok()
                    }
                }
            }
        };
        let complete = outputs.is_some();
        if complete {
            // Everyone is done: joining cannot block.
            for handle in self.workers.drain(..) {
                let _ = handle.join();
            }
            if let Some(sink) = self.sink.take() {
                let _ = sink.join();
            }
        }
        let files = outputs
            .iter()
            .flatten()
            .flat_map(|o| o.closed_files())
            .collect();
        Finished {
            snapshot: self.snapshot(),
            complete,
            files,
        }
    }
}
