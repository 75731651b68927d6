//! The capture side of the pipeline: [`Ingest`] copies each packet into the pending batch of
//! the worker its shard key selects, and hands full batches to that worker.
//!
//! The queue is measured in bytes (captured bytes plus a fixed per-packet overhead) across
//! every batch not yet translated, pending ones included. When the next packet would exceed
//! the cap, [`Overflow::DropNewest`] drops it and counts it ([`DropReason::QueueFull`]): a live
//! capture must never wait for translation. [`Overflow::Block`] (offline reading) waits
//! instead, because a file can be read at the pipeline's pace and must lose nothing.
//!
//! Batches are recycled: a worker returns each emptied batch, so steady state allocates
//! nothing per packet.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wire::{Captured, CapturedPacket};

use crate::counters::DropReason;
use crate::Shared;

/// Bytes charged for each packet on top of its captured bytes (its metadata and slack), so
/// a flood of tiny packets is bounded too.
pub const PACKET_OVERHEAD: usize = 64;

/// What the capture side does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the packet being offered and count it: for live capture.
    DropNewest,
    /// Wait until workers free room: for reading a file.
    Block,
}

/// A queued packet: its capture record, the bytes being where `(start, end)` says in its
/// batch's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Ingest order, across workers (ordered mode restores it).
    pub(crate) seq: u64,
    pub(crate) packet: Captured<(usize, usize)>,
}

/// Packets for one worker, stored back to back in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) data: Vec<u8>,
    pub(crate) packets: Vec<Meta>,
    /// Bytes charged to the queue for this batch; released once translated.
    pub(crate) charged: usize,
    /// Ordered mode: every worker receives exactly one batch per epoch.
    pub(crate) epoch: u64,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
        self.charged = 0;
        self.epoch = 0;
        // A jumbo packet may have grown the buffer; do not keep that memory forever.
        if self.data.capacity() > 4 * BATCH_BYTES {
            self.data.shrink_to(BATCH_BYTES);
        }
    }

    pub(crate) fn recycle(mut self, to: &Sender<Batch>) {
        self.clear();
        // The capture side may be gone (shutdown): then the batch is simply freed.
        let _ = to.send(self);
    }
}

/// A batch is handed to its worker once it holds this many captured bytes …
pub(crate) const BATCH_BYTES: usize = 64 * 1024;
/// … or this many packets …
pub(crate) const BATCH_PACKETS: usize = 128;
/// … or when its oldest packet has waited this long.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// The capture thread's handle on the pipeline. Dropping it (or [`Ingest::close`]) hands
/// over what is pending and lets the workers drain.
#[derive(Debug)]
pub struct Ingest {
    shared: Arc<Shared>,
    senders: Vec<Sender<Batch>>,
    free: Receiver<Batch>,
    pending: Vec<Batch>,
    pending_packets: usize,
    oldest_pending: Option<Instant>,
    next_seq: u64,
    epoch: u64,
    overflow: Overflow,
    ordered: bool,
}

/// What happened to a packet offered with [`Ingest::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for translation.
    Queued,
    /// Dropped and counted.
    Dropped(DropReason),
}

impl Ingest {
    pub(crate) fn new(
        shared: Arc<Shared>,
        senders: Vec<Sender<Batch>>,
        free: Receiver<Batch>,
        overflow: Overflow,
        ordered: bool,
    ) -> Self {
        let pending = senders.iter().map(|_| Batch::default()).collect();
        Ingest {
            shared,
            senders,
            free,
            pending,
            pending_packets: 0,
            oldest_pending: None,
            next_seq: 0,
            epoch: 0,
            overflow,
            ordered,
        }
    }

    /// Offers one packet; `shard` is its connection key: packets with equal keys go to the
    /// same worker. Never blocks with [`Overflow::DropNewest`].
    pub fn push(&mut self, packet: &CapturedPacket<'_>, shard: u64) -> Pushed {
        self.shared
            .counters
            .received
            .fetch_add(1, Ordering::Relaxed);
        let cost = packet.data.len() + PACKET_OVERHEAD;
        if !self.shared.try_charge(cost) {
            let charged = match self.overflow {
                Overflow::DropNewest => false,
                Overflow::Block => self.charge_blocking(cost),
            };
            if !charged {
                let reason = if self.shared.aborted() {
                    DropReason::Shutdown
                } else {
                    DropReason::QueueFull
                };
                self.shared.counters.count_drop(reason, 1);
                return Pushed::Dropped(reason);
            }
        }
        let worker = self.worker_for(shard);
        let batch = &mut self.pending[worker];
        let start = batch.data.len();
        batch.data.extend_from_slice(packet.data);
        batch.packets.push(Meta {
            seq: self.next_seq,
            packet: packet.with_data((start, batch.data.len())),
        });
        batch.charged += cost;
        self.next_seq += 1;
        self.pending_packets += 1;
        let now = Instant::now();
        let oldest = *self.oldest_pending.get_or_insert(now);
        let full = batch.data.len() >= BATCH_BYTES || batch.packets.len() >= BATCH_PACKETS;
        if self.ordered {
            // Ordered mode flushes every worker together so the sink can merge epoch by
            // epoch; the total pending is bounded like one worker's batch.
            if full || self.pending_packets >= BATCH_PACKETS || now - oldest >= FLUSH_AFTER {
                self.flush_all();
            }
        } else if now - oldest >= FLUSH_AFTER {
            self.flush_all();
        } else if full {
            self.flush_one(worker);
        }
        Pushed::Queued
    }

    /// Waits until `cost` fits; false if the pipeline was aborted meanwhile.
    fn charge_blocking(&mut self, cost: usize) -> bool {
        loop {
            if self.shared.try_charge(cost) {
                return true;
            }
            if self.shared.aborted() {
                return false;
            }
            // Pending packets count against the cap. A worker with nothing in flight would
            // idle (and, if none has anything, the wait would be for room only this thread
            // can free): hand such a worker its pending packets. Others keep filling their
            // batches, so waiting does not turn into many tiny batches.
            let idle_with_pending = (0..self.pending.len())
                .any(|w| !self.pending[w].packets.is_empty() && self.shared.in_flight(w) == 0);
            if idle_with_pending {
                if self.ordered {
                    self.flush_all();
                } else {
                    for worker in 0..self.pending.len() {
                        if !self.pending[worker].packets.is_empty()
                            && self.shared.in_flight(worker) == 0
                        {
                            self.flush_one(worker);
                        }
                    }
                }
                continue;
            }
            self.shared.wait_room(std::time::Duration::from_millis(5));
        }
    }

    /// Hands over pending packets that have waited long enough. Call it when the source
    /// has nothing to read (e.g. on a read timeout) so slow traffic is not held back.
    pub fn tick(&mut self) {
        if let Some(oldest) = self.oldest_pending {
            if oldest.elapsed() >= FLUSH_AFTER {
                self.flush_all();
            }
        }
    }

    /// Hands every pending packet over to the workers now.
    pub fn flush_all(&mut self) {
        if self.pending_packets == 0 {
            return;
        }
        for worker in 0..self.pending.len() {
            self.send(worker);
        }
        self.epoch += 1;
        self.pending_packets = 0;
        self.oldest_pending = None;
    }

    /// Flushes and closes: workers translate what is queued, then stop.
    pub fn close(mut self) {
        self.flush_all();
        // Dropping the senders is what tells the workers that no more input comes.
    }

    /// Packets offered so far (dropped included).
    pub fn offered(&self) -> u64 {
        self.shared.counters.received.load(Ordering::Relaxed)
    }

    fn flush_one(&mut self, worker: usize) {
        let packets = self.pending[worker].packets.len();
        self.send(worker);
        self.pending_packets -= packets;
        if self.pending_packets == 0 {
            self.oldest_pending = None;
        }
    }

    fn send(&mut self, worker: usize) {
        let empty = self.pending[worker].packets.is_empty();
        // Unordered workers need no empty batches; ordered ones need one per epoch.
        if empty && !self.ordered {
            return;
        }
        let fresh = self.free.try_recv().unwrap_or_else(|_| {
            self.shared
                .counters
                .batch_buffers
                .fetch_add(1, Ordering::Relaxed);
            Batch::default()
        });
        let mut batch = std::mem::replace(&mut self.pending[worker], fresh);
        batch.epoch = self.epoch;
        let charged = batch.charged;
        let packets = batch.packets.len() as u64;
        self.shared.sent(worker);
        if self.senders[worker].send(batch).is_err() {
            self.shared.done(worker);
            // The worker is gone (it can only die of a bug outside the panic guard): its
            // packets can no longer be translated; count them rather than lose them silently.
            self.shared.release(charged);
            self.shared
                .counters
                .count_drop(DropReason::Shutdown, packets);
        }
    }

    fn worker_for(&self, shard: u64) -> usize {
        let workers = self.senders.len() as u64;
        if workers <= 1 {
            return 0;
        }
        // Fibonacci hashing spreads keys whose low bits are poorly mixed.
        let mixed = shard.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((mixed >> 32) % workers) as usize
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.flush_all();
    }
}
