//! The sink thread: the single writer of every output.
//!
//! Unordered, it writes each worker's chunk as it arrives. Ordered, it takes one chunk per
//! worker per epoch (workers receive exactly one batch per epoch, possibly empty) and merges
//! them by capture sequence number, so every output sees exact capture order; what can be in
//! flight is bounded by the queue's bytes and the small per-worker channels.
//!
//! Waits use the outputs' deadlines as timeouts so files rotate on time without traffic.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::output::Output;
use crate::worker::Chunk;
use crate::Shared;

/// Where the sink receives from.
pub(crate) enum Inputs {
    /// One channel all workers send to.
    Unordered(Receiver<Chunk>),
    /// One channel per worker, read epoch by epoch.
    Ordered(Vec<Receiver<Chunk>>),
}

pub(crate) struct Sink {
    pub(crate) inputs: Inputs,
    pub(crate) outputs: Vec<Box<dyn Output>>,
    /// Returns chunks to the worker that produced them, for reuse.
    pub(crate) returns: Vec<Sender<Chunk>>,
    pub(crate) shared: Arc<Shared>,
}

enum Next {
    Chunk(Chunk),
    Timeout,
    Closed,
}

impl Sink {
    /// Runs until every worker is gone, then closes the outputs. Returns the outputs so the
    /// caller can report their files.
    pub(crate) fn run(mut self) -> Vec<Box<dyn Output>> {
        match std::mem::replace(&mut self.inputs, Inputs::Ordered(Vec::new())) {
            Inputs::Unordered(rx) => self.run_unordered(&rx),
            Inputs::Ordered(rxs) => self.run_ordered(&rxs),
        }
        for index in 0..self.outputs.len() {
            let result = self.outputs[index].close();
            if let Err(error) = result {
                self.output_error(index, 0, &error);
            }
        }
        self.outputs
    }

    fn run_unordered(&mut self, rx: &Receiver<Chunk>) {
        loop {
            match self.receive(rx) {
                Next::Chunk(chunk) => {
                    self.write(&chunk.buf, chunk.lines);
                    self.give_back(chunk);
                }
                Next::Timeout => {}
                Next::Closed => return,
            }
        }
    }

    fn run_ordered(&mut self, rxs: &[Receiver<Chunk>]) {
        let mut merged = Vec::new();
        let mut chunks: Vec<Chunk> = Vec::with_capacity(rxs.len());
        let mut alive = vec![true; rxs.len()];
        loop {
            chunks.clear();
            for (worker, rx) in rxs.iter().enumerate() {
                while alive[worker] {
                    match self.receive(rx) {
                        Next::Chunk(chunk) => {
                            chunks.push(chunk);
                            break;
                        }
                        Next::Timeout => {}
                        Next::Closed => alive[worker] = false,
                    }
                }
            }
            if chunks.is_empty() {
                return;
            }
            let lines = merge(&chunks, &mut merged);
            self.write(&merged, lines);
            for chunk in chunks.drain(..) {
                self.give_back(chunk);
            }
            if merged.capacity() > 8 * 1024 * 1024 {
                merged = Vec::new();
            }
        }
    }

    /// Waits for the next chunk, but only until the earliest output deadline (then ticks).
    fn receive(&mut self, rx: &Receiver<Chunk>) -> Next {
        let deadline = self.outputs.iter().filter_map(|o| o.deadline()).min();
        let received = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                rx.recv_timeout(wait.max(Duration::from_millis(1)))
            }
        };
        match received {
            Ok(chunk) => {
                self.tick();
                Next::Chunk(chunk)
            }
            Err(RecvTimeoutError::Timeout) => {
                self.tick();
                Next::Timeout
            }
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for index in 0..self.outputs.len() {
            let due = self.outputs[index].deadline().is_some_and(|d| now >= d);
            if due {
                if let Err(error) = self.outputs[index].tick(now) {
                    self.output_error(index, 0, &error);
                }
            }
        }
    }

    fn write(&mut self, lines: &[u8], count: u64) {
        if lines.is_empty() {
            return;
        }
        for index in 0..self.outputs.len() {
            let counters = &self.shared.counters.outputs[index];
            match self.outputs[index].write(lines) {
                Ok(()) => {
                    counters.lines.fetch_add(count, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add(lines.len() as u64, Ordering::Relaxed);
                }
                Err(error) => self.output_error(index, count, &error),
            }
        }
    }

    fn output_error(&self, index: usize, lost: u64, error: &std::io::Error) {
        let counters = &self.shared.counters.outputs[index];
        counters.lost_lines.fetch_add(lost, Ordering::Relaxed);
        counters.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = counters.last_error.lock() {
            *last = Some(error.to_string());
        }
    }

    fn give_back(&self, chunk: Chunk) {
        if let Some(to) = self.returns.get(chunk.worker) {
            // The worker may have finished already; the chunk is then freed.
            let _ = to.send(chunk);
        }
    }
}

/// Merges per-worker chunks (each sorted by sequence number) into capture order; returns
/// the number of lines.
fn merge(chunks: &[Chunk], merged: &mut Vec<u8>) -> u64 {
    merged.clear();
    let mut cursor = vec![0usize; chunks.len()];
    let mut lines = 0;
    loop {
        // Few workers: a linear scan beats a heap.
        let mut best: Option<(usize, u64)> = None;
        for (worker, chunk) in chunks.iter().enumerate() {
            if let Some(&(seq, _)) = chunk.ends.get(cursor[worker]) {
                if best.is_none_or(|(_, min)| seq < min) {
                    best = Some((worker, seq));
                }
            }
        }
        let Some((worker, _)) = best else {
            return lines;
        };
        let chunk = &chunks[worker];
        let index = cursor[worker];
        let start = if index == 0 {
            0
        } else {
            chunk.ends[index - 1].1
        };
        let end = chunk.ends[index].1;
        if let Some(bytes) = chunk.buf.get(start..end).filter(|b| !b.is_empty()) {
            lines += 1;
            merged.extend_from_slice(bytes);
        }
        cursor[worker] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(worker: usize, packets: &[(u64, &str)]) -> Chunk {
        let mut c = Chunk {
            worker,
            ..Chunk::default()
        };
        for (seq, line) in packets {
            c.buf.extend_from_slice(line.as_bytes());
            c.ends.push((*seq, c.buf.len()));
        }
        c
    }

    #[test]
    fn merge_restores_sequence_order_and_keeps_empty_packets_out() {
        let a = chunk(0, &[(0, "a0\n"), (2, ""), (3, "a3\n")]);
        let b = chunk(1, &[(1, "b1\n"), (4, "b4\n")]);
        let mut out = Vec::new();
        let lines = merge(&[a, b], &mut out);
        assert_eq!(out, b"a0\nb1\na3\nb4\n");
        assert_eq!(lines, 4);
    }
}
