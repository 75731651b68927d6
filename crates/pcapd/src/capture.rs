//! The capture thread: reads the source as fast as it delivers and offers every packet to
//! the pipeline, which never makes it wait on a live capture (a full queue drops and counts).
//! It also samples the kernel's counters (`pcap_stats`) about once a second, because the
//! handle can only be used from this thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline::Ingest;
use sidecar_core::log::Severity;

use crate::pcap_files::PcapFiles;
use crate::recorder::Recorder;
use crate::source::{KernelStats, Next, Source};
use crate::{Error, LogTarget};

/// Kernel counters shared with the stats reporter.
pub(crate) type SharedKernelStats = Arc<Mutex<Option<KernelStats>>>;

/// How the capture ended.
pub(crate) struct CaptureEnd {
    /// Packets read from the source.
    pub(crate) read: u64,
    /// Why it stopped early, if it failed.
    pub(crate) error: Option<Error>,
    /// `.pcap` files written (ring-less path), oldest first.
    pub(crate) pcap_files: Vec<std::path::PathBuf>,
    /// The flight recorder, finished once translation has drained (its last triggers).
    pub(crate) recorder: Option<Recorder>,
}

/// What the capture thread does with packets besides translating them.
pub(crate) struct Sinks {
    /// Offer packets to the translation pipeline (some JSON output is on).
    pub(crate) translate: bool,
    /// Write `.pcap` files.
    pub(crate) pcap: Option<PcapFiles>,
    /// The flight recorder (`PCAP_TRIGGER`): ring and trigger windows.
    pub(crate) recorder: Option<Recorder>,
    /// Reading a file for the recorder: translation's progress, so reading stays close to
    /// it (a file is read far faster than its packet time, and the ring is bounded in
    /// packet time: a trigger must find its window still in the ring).
    pub(crate) pace: Option<pipeline::Monitor>,
    /// Stop after this many packets (`PCAP_PACKET_COUNT`).
    pub(crate) count: Option<u64>,
    /// Where write errors are reported.
    pub(crate) logs: LogTarget,
}

const KERNEL_STATS_EVERY: Duration = Duration::from_secs(1);
/// How far reading a file for the recorder may run ahead of translation, in packets.
const PACE_PACKETS: u64 = 1024;

pub(crate) fn run(
    mut source: Source,
    mut ingest: Ingest,
    stop: &AtomicBool,
    kernel: &SharedKernelStats,
    mut sinks: Sinks,
) -> CaptureEnd {
    let linktype = source.info().linktype;
    let live = source.info().live;
    let mut read: u64 = 0;
    let mut error = None;
    let mut sampled = Instant::now();
    // Counters from the start, so that the first files' drops are known too.
    if live {
        store(kernel, source.kernel_stats());
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut idle = false;
        match source.next_packet() {
            Ok(Next::Packet(packet)) => {
                if let Some(monitor) = sinks.pace.as_ref().filter(|_| read % 256 == 0) {
                    while read.saturating_sub(monitor.snapshot().translated) > PACE_PACKETS
                        && !stop.load(Ordering::Relaxed)
                    {
                        if let Some(recorder) = sinks.recorder.as_mut() {
                            recorder.poll();
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                // The source numbers packets from 0, like the original's (`pcap.num`).
                read += 1;
                if let Some(pcap) = sinks.pcap.as_mut() {
                    pcap.write(&packet);
                }
                if let Some(recorder) = sinks.recorder.as_mut() {
                    recorder.packet(&packet);
                }
                if sinks.translate {
                    // A connection's packets meet the same worker (and its flow table).
                    ingest.push(&packet, render::shard_key(linktype, packet.data));
                }
                if sinks.count.is_some_and(|n| read >= n) {
                    break;
                }
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
        // Triggers wait in the ring's time, so polling every few packets is soon enough.
        if idle || read % 64 == 0 {
            if let Some(recorder) = sinks.recorder.as_mut() {
                recorder.poll();
            }
        }
        if idle || read % 1024 == 0 {
            if let Some(pcap) = sinks.pcap.as_mut() {
                pcap.tick();
                if let Some(message) = pcap.take_error() {
                    sinks.logs.event(Severity::Error, &message, &());
                }
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
    // Close the last .pcap file now: pcap-fsnotify exports it on close.
    let pcap_files = match sinks.pcap.take() {
        Some(mut pcap) => {
            let lost = pcap.lost();
            let error = pcap.take_error();
            let files = pcap.close();
            if let Some(message) = error {
                sinks.logs.event(Severity::Error, &message, &());
            }
            if lost > 0 {
                sinks.logs.event(
                    Severity::Error,
                    &format!("{lost} packets could not be written to .pcap files"),
                    &(),
                );
            }
            files
        }
        None => Vec::new(),
    };

    if live {
        store(kernel, source.kernel_stats());
    }
    // A corrupt .gz surfaces at close; it explains libpcap's "truncated file" error.
    if let Err(failure) = source.close() {
        error = Some(failure);
    }
    CaptureEnd {
        read,
        error,
        pcap_files,
        recorder: sinks.recorder.take(),
    }
}

fn store(kernel: &SharedKernelStats, stats: Option<KernelStats>) {
    if let (Some(stats), Ok(mut slot)) = (stats, kernel.lock()) {
        *slot = Some(stats);
    }
}
