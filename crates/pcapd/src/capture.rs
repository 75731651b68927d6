//! The capture thread: reads the source as fast as it delivers and offers every packet to
//! the pipeline, which never makes it wait on a live capture (a full queue drops and counts).
//! It also samples the kernel's counters (`pcap_stats`) about once a second, because the
//! handle can only be used from this thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline::{Ingest, Packet};

use crate::source::{KernelStats, Next, Source};
use crate::{Error, TranslatorKind};

/// Kernel counters shared with the stats reporter.
pub(crate) type SharedKernelStats = Arc<Mutex<Option<KernelStats>>>;

/// How the capture ended.
pub(crate) struct CaptureEnd {
    /// Packets read from the source.
    pub(crate) read: u64,
    /// Why it stopped early, if it failed.
    pub(crate) error: Option<Error>,
}

const KERNEL_STATS_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn run<K: TranslatorKind + ?Sized>(
    mut source: Source,
    mut ingest: Ingest,
    kind: &K,
    stop: &AtomicBool,
    kernel: &SharedKernelStats,
) -> CaptureEnd {
    let linktype = source.info().linktype;
    let live = source.info().live;
    let mut read: u64 = 0;
    let mut error = None;
    let mut sampled = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut idle = false;
        match source.next_packet() {
            Ok(Next::Packet(packet)) => {
                // Serial numbers start at 0, like the original's (`pcap.num`).
                let num = read;
                read += 1;
                ingest.push(&Packet {
                    num,
                    ts_sec: packet.ts_sec,
                    ts_nsec: packet.ts_nsec,
                    wire_len: packet.wire_len,
                    data: packet.data,
                    shard: kind.shard_key(linktype, packet.data),
                });
            }
            Ok(Next::Idle) => {
                ingest.tick();
                idle = true;
            }
            Ok(Next::End) => break,
            Err(failure) => {
                error = Some(failure);
                break;
            }
        }
        // Sampling costs a syscall: only on idle wake-ups or every 1024 packets.
        if live && (idle || read % 1024 == 0) && sampled.elapsed() >= KERNEL_STATS_EVERY {
            sampled = Instant::now();
            store(kernel, source.kernel_stats());
        }
    }
    // Hand over what is pending before anything slow happens.
    ingest.close();
    if live {
        store(kernel, source.kernel_stats());
    }
    // A corrupt .gz surfaces at close; it explains libpcap's "truncated file" error.
    if let Err(failure) = source.close() {
        error = Some(failure);
    }
    CaptureEnd { read, error }
}

fn store(kernel: &SharedKernelStats, stats: Option<KernelStats>) {
    if let (Some(stats), Ok(mut slot)) = (stats, kernel.lock()) {
        *slot = Some(stats);
    }
}
