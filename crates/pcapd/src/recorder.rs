//! The flight recorder (`PCAP_TRIGGER`): every packet goes into a bounded in-memory [`Ring`]
//! of the recent past; nothing is written until a trigger fires. Then the window
//! `[T − before, T + after]` around the trigger time `T` is written as one `.pcap` file named
//! `<iface>_part_<T>Z_<kind>.pcap` — the ring's packets first, then live packets until the
//! window ends — and closed, which is what pcap-fsnotify exports.
//!
//! - Triggers are evaluated by the translation workers on translated packets
//!   ([`TriggerSink::check`]) and by the manual trigger (SIGUSR2, the loopback endpoint of
//!   [`crate::endpoint`]); they reach the capture thread through a bounded channel.
//! - The capture thread owns the ring and the window ([`Recorder`]): a trigger inside the
//!   open window extends it (windows merge, up to [`MAX_WINDOW_FACTOR`] times the nominal
//!   length); after a window, a cooldown and a per-hour cap suppress new ones; every outcome
//!   is counted ([`RecorderStats`]) and logged.
//! - A packet is written to at most one window: each window starts after what the previous
//!   one wrote.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sidecar_core::config::trigger::{BurstKind, Trigger};
use sidecar_core::log::Severity;
use sidecar_core::rotating::RotatingFile;
use wire::{pcapfile, Captured, CapturedPacket, LinkType};

use crate::json_windows::JsonWindows;
use crate::LogTarget;

/// A merged window grows to at most this many times `before + after`: a storm of errors
/// cannot keep one window open forever.
pub const MAX_WINDOW_FACTOR: u64 = 4;
/// Triggers waiting for the capture thread; more are dropped and counted (they could only
/// merge into the window the earlier ones opened, or be suppressed).
const CHANNEL_CAPACITY: usize = 1024;
/// A window is closed once the wall clock is this far past its end (packets reach pcapd
/// with some delay).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Buffer of a window file.
const BUFFER_BYTES: usize = 256 * 1024;
const NS: u64 = 1_000_000_000;
/// How long (packet time) a window stays open past its end for triggers still in
/// translation to merge into it.
const MERGE_LAG_NS: u64 = NS;

/// The recorder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderSettings {
    /// What fires.
    pub triggers: Vec<Trigger>,
    /// The ring keeps this much packet time.
    pub ring_secs: u64,
    /// The ring's byte bound (packets plus bookkeeping).
    pub ring_bytes: usize,
    /// Window before the trigger.
    pub before_secs: u64,
    /// Window after the trigger.
    pub after_secs: u64,
    /// No new window this long after one ends.
    pub cooldown_secs: u64,
    /// Most windows opened in any hour.
    pub max_per_hour: u64,
    /// Write the ring at stop too.
    pub on_exit: bool,
    /// Port of the manual endpoint (when `manual` is a trigger).
    pub port: Option<u16>,
    /// Capture directory.
    pub dir: PathBuf,
    /// `PCAP_RUN_DIR`: where tcpdumpw leaves a manual trigger's reason for SIGUSR2.
    pub run_dir: PathBuf,
    /// `.pcap` extension (`PCAP_FILE_EXT`).
    pub ext: String,
    /// The project of `projects/<id>/traces/<trace>`: the trigger's log line links to its
    /// trace in Cloud Logging as the packet entries do.
    pub project_id: Option<String>,
    /// Snap length of the window files.
    pub snaplen: u32,
    /// Also write each window's `.json` (`PCAP_JSON`).
    pub json: bool,
    /// Live capture: a window also closes when the wall clock passes its end (a file is
    /// read faster than its packet time, so only packet time counts there).
    pub live: bool,
}

/// A trigger that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// Its kind, `[a-z0-9]` (file-name tag).
    pub kind: String,
    /// What was seen (`HTTP 503`, `reason=deploy`).
    pub detail: String,
    /// When (packet time for packet triggers, wall clock for manual ones), ns since the epoch.
    pub at_ns: u64,
    /// The exchange's trace id.
    pub trace: Option<String>,
    /// The packet's `flow`.
    pub flow: Option<u64>,
}

/// Counters shared with the stats line.
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Bytes the ring holds now (packets, allocation overhead, bookkeeping).
    pub ring_bytes: AtomicU64,
    /// Highest `ring_bytes` seen.
    pub ring_peak_bytes: AtomicU64,
    /// Packets in the ring.
    pub ring_packets: AtomicU64,
    /// Packets evicted because of the byte bound.
    pub ring_evicted_bytes_bound: AtomicU64,
    /// Packets evicted because they were older than the time bound.
    pub ring_evicted_time_bound: AtomicU64,
    /// Triggers received (all outcomes).
    pub triggers: AtomicU64,
    /// Windows opened.
    pub windows: AtomicU64,
    /// Triggers merged into an open window.
    pub merged: AtomicU64,
    /// Triggers suppressed by the cooldown.
    pub suppressed_cooldown: AtomicU64,
    /// Triggers suppressed by the per-hour cap.
    pub suppressed_cap: AtomicU64,
    /// Triggers dropped because the channel was full.
    pub dropped: AtomicU64,
    /// Packets written to window files.
    pub window_packets: AtomicU64,
    /// Bytes written to window files.
    pub window_bytes: AtomicU64,
    /// Window packets left out of the `.json` files (their translation fell behind).
    pub window_json_dropped: AtomicU64,
}

impl RecorderStats {
    /// The counters for the stats line.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("ring_bytes", get(&self.ring_bytes)),
            ("ring_peak_bytes", get(&self.ring_peak_bytes)),
            ("ring_packets", get(&self.ring_packets)),
            (
                "ring_evicted_bytes_bound",
                get(&self.ring_evicted_bytes_bound),
            ),
            (
                "ring_evicted_time_bound",
                get(&self.ring_evicted_time_bound),
            ),
            ("triggers", get(&self.triggers)),
            ("trigger_windows", get(&self.windows)),
            ("triggers_merged", get(&self.merged)),
            (
                "triggers_suppressed_cooldown",
                get(&self.suppressed_cooldown),
            ),
            ("triggers_suppressed_cap", get(&self.suppressed_cap)),
            ("triggers_dropped", get(&self.dropped)),
            ("window_packets", get(&self.window_packets)),
            ("window_bytes", get(&self.window_bytes)),
            ("window_json_dropped", get(&self.window_json_dropped)),
        ]
    }
}

/// The translation workers' end of the trigger channel.
#[derive(Debug)]
pub struct TriggerSink {
    triggers: Vec<Trigger>,
    /// Per trigger (same index): the recent event times of a burst trigger, at most its
    /// count of them (bounded).
    bursts: Vec<Mutex<VecDeque<u64>>>,
    tx: SyncSender<Fired>,
    stats: Arc<RecorderStats>,
}

/// A new channel: the sink for workers and manual triggers, the receiver for the recorder.
pub fn channel(
    triggers: Vec<Trigger>,
    stats: Arc<RecorderStats>,
) -> (Arc<TriggerSink>, Receiver<Fired>) {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
    (
        Arc::new(TriggerSink {
            bursts: triggers.iter().map(|_| Mutex::default()).collect(),
            triggers,
            tx,
            stats,
        }),
        rx,
    )
}

impl TriggerSink {
    /// Whether `manual` is among the triggers.
    pub fn manual(&self) -> bool {
        self.triggers.contains(&Trigger::Manual)
    }

    /// Sends a trigger to the recorder (never waits).
    pub fn fire(&self, fired: Fired) {
        match self.tx.try_send(fired) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The recorder has stopped: nothing left to persist.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Evaluates the triggers on what one translated packet showed; the first match fires.
    pub fn check(&self, notable: &render::Notable, at_ns: u64) {
        let Some((kind, detail)) = self.first_match(notable, at_ns) else {
            return;
        };
        self.fire(Fired {
            kind,
            detail,
            at_ns,
            trace: notable.trace.clone(),
            flow: notable.flow,
        });
    }

    fn first_match(&self, n: &render::Notable, at_ns: u64) -> Option<(String, String)> {
        let mut first = None;
        // Every trigger sees the packet (a burst counts it even when another fires).
        for (t, burst) in self.triggers.iter().zip(&self.bursts) {
            let detail = match *t {
                Trigger::HttpStatus { low, high } => n
                    .http_status
                    .filter(|s| (low..=high).contains(s))
                    .map(|s| format!("HTTP status {s}")),
                Trigger::Grpc(code) => n
                    .grpc_status
                    .filter(|s| *s != 0 && code.is_none_or(|c| c == *s))
                    .map(|s| format!("gRPC status {s}")),
                Trigger::Latency(limit) => n
                    .latency_ns
                    .filter(|l| *l > limit.as_nanos() as u64)
                    .map(|l| format!("HTTP latency {} ms", l / 1_000_000)),
                Trigger::TcpRstAfterData => {
                    n.rst_after_data.then(|| "TCP reset after data".to_string())
                }
                Trigger::SynTimeout => n
                    .syn_retransmitted
                    .then(|| "SYN retransmitted: no SYN-ACK".to_string()),
                Trigger::DnsRcode(code) => (n.dns_rcode == Some(u16::from(code)))
                    .then(|| format!("DNS {}", wire::dns::Rcode(u16::from(code)).mnemonic())),
                Trigger::IcmpUnreachable => n
                    .icmp_unreachable
                    .then(|| "ICMP destination unreachable".to_string()),
                Trigger::Burst {
                    kind,
                    count,
                    within,
                } => {
                    let event = match kind {
                        BurstKind::Rst => n.rst,
                        BurstKind::Retransmission => n.retransmission,
                        BurstKind::ZeroWindow => n.zero_window,
                    };
                    event
                        .then(|| burst_reached(burst, at_ns, count, within))
                        .flatten()
                        .map(|span_ms| format!("{count} × {} within {span_ms} ms", kind.name()))
                }
                Trigger::Manual => None,
            };
            if let (None, Some(detail)) = (&first, detail) {
                first = Some((t.kind(), detail));
            }
        }
        first
    }
}

/// Records an event at `at_ns`; when `count` of them fall within `within`, returns their
/// span (ms) and starts counting afresh.
fn burst_reached(
    times: &Mutex<VecDeque<u64>>,
    at_ns: u64,
    count: u32,
    within: Duration,
) -> Option<u64> {
    let mut times = times.lock().ok()?;
    let window = within.as_nanos() as u64;
    times.push_back(at_ns);
    while times
        .front()
        .is_some_and(|t| at_ns.saturating_sub(*t) > window)
        || times.len() > count as usize
    {
        times.pop_front();
    }
    if times.len() < count as usize {
        return None;
    }
    let span = at_ns.saturating_sub(times.front().copied().unwrap_or(at_ns));
    times.clear();
    Some(span / 1_000_000)
}

/// One packet kept in the ring; its `num` is the recorder's capture order (timestamps can
/// repeat).
struct Stored {
    ts_ns: u64,
    packet: Captured<Box<[u8]>>,
}

/// What one stored packet costs: its bytes as the allocator hands them out (16-byte
/// granules plus a header word) and its slot in the deque.
fn cost(len: usize) -> usize {
    len.div_ceil(16) * 16 + 16
}

/// The recent packets of one capture, bounded by packet time and by bytes.
pub struct Ring {
    packets: VecDeque<Stored>,
    /// Σ [`cost`] of the packets.
    data_bytes: usize,
    cap_bytes: usize,
    keep_ns: u64,
    stats: Arc<RecorderStats>,
}

impl Ring {
    /// An empty ring keeping `keep` of packet time in at most `cap_bytes`.
    pub fn new(keep: Duration, cap_bytes: usize, stats: Arc<RecorderStats>) -> Ring {
        Ring {
            packets: VecDeque::new(),
            data_bytes: 0,
            cap_bytes,
            keep_ns: keep.as_nanos() as u64,
            stats,
        }
    }

    /// Bytes held: packets plus the deque's slots (its capacity, not its length).
    pub fn bytes(&self) -> usize {
        self.data_bytes + self.packets.capacity() * std::mem::size_of::<Stored>()
    }

    fn push(&mut self, seq: u64, packet: &CapturedPacket<'_>) {
        let ts_ns = packet.timestamp_ns();
        self.data_bytes += cost(packet.data.len());
        self.packets.push_back(Stored {
            ts_ns,
            packet: Captured {
                num: seq,
                ..packet.with_data(packet.data.into())
            },
        });
        while self
            .packets
            .front()
            .is_some_and(|p| p.ts_ns.saturating_add(self.keep_ns) < ts_ns)
        {
            self.pop();
            self.stats
                .ring_evicted_time_bound
                .fetch_add(1, Ordering::Relaxed);
        }
        while self.bytes() > self.cap_bytes && !self.packets.is_empty() {
            self.pop();
            self.stats
                .ring_evicted_bytes_bound
                .fetch_add(1, Ordering::Relaxed);
        }
        // The deque keeps its capacity: give memory back when most of it is unused.
        if self.packets.capacity() > 64 && self.packets.len() < self.packets.capacity() / 4 {
            self.packets.shrink_to(self.packets.len() * 2);
        }
        self.publish();
    }

    fn pop(&mut self) {
        if let Some(p) = self.packets.pop_front() {
            self.data_bytes = self.data_bytes.saturating_sub(cost(p.packet.data.len()));
        }
    }

    fn publish(&self) {
        let bytes = self.bytes() as u64;
        self.stats.ring_bytes.store(bytes, Ordering::Relaxed);
        self.stats
            .ring_peak_bytes
            .fetch_max(bytes, Ordering::Relaxed);
        self.stats
            .ring_packets
            .store(self.packets.len() as u64, Ordering::Relaxed);
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The window being written.
struct Window {
    first: Fired,
    start_ns: u64,
    end_ns: u64,
    /// How far merging may extend `end_ns`.
    limit_ns: u64,
    path: PathBuf,
    packets: u64,
    bytes: u64,
    merged: u64,
}

#[derive(Serialize)]
struct TriggerEvent<'a> {
    trigger: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
    #[serde(
        rename = "logging.googleapis.com/trace",
        skip_serializing_if = "Option::is_none"
    )]
    cloud_trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    trigger_time: String,
    window_start: String,
    window_end: String,
    files: Vec<String>,
    ring_packets: u64,
}

#[derive(Serialize)]
struct WindowClosedEvent<'a> {
    trigger: &'a str,
    file: String,
    packets: u64,
    bytes: u64,
    merged_triggers: u64,
    /// Packets of all windows so far left out of the `.json` (translation fell behind).
    json_dropped: u64,
    window_start: String,
    window_end: String,
}

#[derive(Serialize)]
struct SuppressedEvent<'a> {
    trigger: &'a str,
    detail: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
    suppressed_cooldown: u64,
    suppressed_cap: u64,
}

fn rfc3339(ns: u64) -> String {
    DateTime::<Utc>::from_timestamp((ns / NS) as i64, (ns % NS) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The capture thread's side: ring, windows, cooldown and cap.
pub struct Recorder {
    settings: RecorderSettings,
    ring: Ring,
    rx: Receiver<Fired>,
    files: RotatingFile,
    header: [u8; pcapfile::GLOBAL_HEADER_LEN],
    window: Option<Window>,
    /// Capture order of the next packet.
    next_seq: u64,
    /// Packets up to this one (capture order, plus one) were written to a window already.
    written: u64,
    /// End of the last window (packet time).
    last_end_ns: Option<u64>,
    /// When the windows of the last hour opened.
    opened: VecDeque<Instant>,
    /// The reason of the last suppression logged since the last window opened.
    suppression_logged: Option<&'static str>,
    stats: Arc<RecorderStats>,
    logs: LogTarget,
    closed: Vec<PathBuf>,
    /// Raised by SIGUSR2 (the manual trigger).
    signal: Option<Arc<AtomicBool>>,
    /// The windows' `.json` (`PCAP_JSON=true`).
    json: Option<JsonWindows>,
}

impl Recorder {
    /// A recorder for `iface`, receiving triggers on `rx`.
    pub fn new(
        settings: RecorderSettings,
        iface: &str,
        linktype: LinkType,
        rx: Receiver<Fired>,
        stats: Arc<RecorderStats>,
        logs: LogTarget,
    ) -> io::Result<Recorder> {
        let files = RotatingFile::new(&settings.dir, iface, &settings.ext, None, BUFFER_BYTES)?;
        let ring = Ring::new(
            Duration::from_secs(settings.ring_secs),
            settings.ring_bytes,
            Arc::clone(&stats),
        );
        Ok(Recorder {
            header: pcapfile::global_header(settings.snaplen, linktype),
            settings,
            ring,
            rx,
            files,
            window: None,
            next_seq: 1,
            written: 0,
            last_end_ns: None,
            opened: VecDeque::new(),
            suppression_logged: None,
            stats,
            logs,
            closed: Vec::new(),
            signal: None,
            json: None,
        })
    }

    /// Also writes each window's `.json`.
    pub fn with_json(mut self, json: JsonWindows) -> Recorder {
        self.json = Some(json);
        self
    }

    /// Fires the manual trigger whenever `flag` is raised (SIGUSR2's handler raises it).
    pub fn with_signal(mut self, flag: Arc<AtomicBool>) -> Recorder {
        self.signal = Some(flag);
        self
    }

    /// Records one captured packet: into the ring, and into the open window.
    pub fn packet(&mut self, packet: &CapturedPacket<'_>) {
        let ts_ns = packet.timestamp_ns();
        let seq = self.next_seq;
        self.next_seq += 1;
        // Kept open a little past its end: a trigger of a packet still being translated
        // can extend it (packets past the end wait in the ring meanwhile).
        if self
            .window
            .as_ref()
            .is_some_and(|w| ts_ns > w.end_ns.saturating_add(MERGE_LAG_NS))
        {
            self.close_window();
        }
        if self.window.as_ref().is_some_and(|w| ts_ns <= w.end_ns) {
            self.write(packet);
            self.written = seq;
        }
        self.ring.push(seq, packet);
    }

    /// Handles the triggers that arrived and closes a window whose time is over.
    pub fn poll(&mut self) {
        if self
            .signal
            .as_ref()
            .is_some_and(|flag| flag.swap(false, Ordering::Relaxed))
        {
            // Under tcpdumpw a manual trigger's reason comes with the signal in a file.
            let detail = sidecar_core::manual_trigger::read_reason(&self.settings.run_dir)
                .map_or_else(|| "SIGUSR2".into(), |reason| format!("reason={reason}"));
            self.fired(Fired {
                kind: "manual".into(),
                detail,
                at_ns: now_ns(),
                trace: None,
                flow: None,
            });
        }
        while let Ok(fired) = self.rx.try_recv() {
            self.fired(fired);
        }
        let over = self.settings.live
            && self.window.as_ref().is_some_and(|w| {
                now_ns()
                    > w.end_ns
                        .saturating_add(MERGE_LAG_NS + CLOSE_GRACE.as_nanos() as u64)
            });
        if over {
            self.close_window();
        }
        if self.window.is_some() {
            if let Err(error) = self.files.flush() {
                self.error(&error);
            }
        }
    }

    fn fired(&mut self, fired: Fired) {
        let stats = Arc::clone(&self.stats);
        stats.triggers.fetch_add(1, Ordering::Relaxed);
        let (before, after) = (self.settings.before_secs, self.settings.after_secs);
        let (cooldown, max_per_hour) = (self.settings.cooldown_secs, self.settings.max_per_hour);
        let start_ns = fired.at_ns.saturating_sub(before * NS);
        let end_ns = fired.at_ns.saturating_add(after * NS);
        if let Some(w) = self.window.as_mut() {
            if start_ns <= w.end_ns {
                w.end_ns = w.end_ns.max(end_ns).min(w.limit_ns);
                w.merged += 1;
                stats.merged.fetch_add(1, Ordering::Relaxed);
                // What arrived after the old end and is now inside the window.
                let (start, end) = (w.start_ns, w.end_ns);
                self.write_backlog(start, end);
                return;
            }
            self.close_window();
        }
        let cooling = self
            .last_end_ns
            .is_some_and(|end| fired.at_ns < end.saturating_add(cooldown * NS));
        let now = Instant::now();
        while self
            .opened
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
        {
            self.opened.pop_front();
        }
        let capped = self.opened.len() as u64 >= max_per_hour;
        if cooling || capped {
            let reason = if cooling {
                stats.suppressed_cooldown.fetch_add(1, Ordering::Relaxed);
                "cooldown"
            } else {
                stats.suppressed_cap.fetch_add(1, Ordering::Relaxed);
                "hourly cap"
            };
            // One line per run of suppressions of one reason, not one per trigger.
            if self.suppression_logged != Some(reason) {
                self.suppression_logged = Some(reason);
                self.logs.event(
                    Severity::Warning,
                    &format!(
                        "flight recorder: trigger {} suppressed ({reason})",
                        fired.kind
                    ),
                    &SuppressedEvent {
                        trigger: &fired.kind,
                        detail: &fired.detail,
                        reason,
                        trace: fired.trace.as_deref(),
                        suppressed_cooldown: stats.suppressed_cooldown.load(Ordering::Relaxed),
                        suppressed_cap: stats.suppressed_cap.load(Ordering::Relaxed),
                    },
                );
            }
            return;
        }
        self.open_window(fired, start_ns, end_ns);
    }

    fn open_window(&mut self, fired: Fired, start_ns: u64, end_ns: u64) {
        let started =
            DateTime::<Utc>::from_timestamp((fired.at_ns / NS) as i64, 0).unwrap_or_else(Utc::now);
        if let Err(error) = self
            .files
            .open_named(&self.header, started, Some(&fired.kind))
        {
            self.logs.event(
                Severity::Error,
                &format!(
                    "flight recorder: cannot create the window file of trigger {} in {}: {error}",
                    fired.kind,
                    self.settings.dir.display()
                ),
                &(),
            );
            return;
        }
        let path = self
            .files
            .current()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if let Some(json) = self.json.as_mut() {
            json.open(started, &fired.kind);
        }
        let nominal = (self.settings.before_secs + self.settings.after_secs).max(1) * NS;
        self.opened.push_back(Instant::now());
        self.suppression_logged = None;
        self.stats.windows.fetch_add(1, Ordering::Relaxed);
        self.window = Some(Window {
            first: fired,
            start_ns,
            end_ns,
            limit_ns: start_ns.saturating_add(nominal * MAX_WINDOW_FACTOR),
            path,
            packets: 0,
            bytes: 0,
            merged: 0,
        });
        // The past: what the ring holds of the window, not written by an earlier one.
        let ring_packets = self.write_backlog(start_ns, end_ns);
        if let Some(w) = &self.window {
            let f = &w.first;
            self.logs.event(
                Severity::Notice,
                &format!("flight recorder: {} fired ({})", f.kind, f.detail),
                &TriggerEvent {
                    trigger: &f.kind,
                    detail: &f.detail,
                    trace: f.trace.as_deref(),
                    cloud_trace: f
                        .trace
                        .as_ref()
                        .zip(self.settings.project_id.as_ref())
                        .map(|(trace, project)| format!("projects/{project}/traces/{trace}")),
                    flow: f.flow.map(|id| id.to_string()),
                    trigger_time: rfc3339(f.at_ns),
                    window_start: rfc3339(w.start_ns),
                    window_end: rfc3339(w.end_ns),
                    files: vec![file_name(&w.path)],
                    ring_packets,
                },
            );
        }
    }

    /// Writes the ring's packets not written yet whose time is in `[start, end]`; returns
    /// how many.
    fn write_backlog(&mut self, start_ns: u64, end_ns: u64) -> u64 {
        let packets = std::mem::take(&mut self.ring.packets);
        let written = self.written;
        // Capture order is contiguous in the ring: skip straight to the first unwritten.
        let first = packets.front().map_or(0, |p| p.packet.num);
        let from = usize::try_from((written + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        let mut count = 0;
        for p in packets
            .range(from.min(packets.len())..)
            .filter(|p| p.ts_ns >= start_ns && p.ts_ns <= end_ns)
        {
            self.write(&p.packet.borrowed());
            self.written = p.packet.num;
            count += 1;
        }
        self.ring.packets = packets;
        count
    }

    fn write(&mut self, packet: &CapturedPacket<'_>) {
        let (record, caplen) = crate::pcap_files::record_header(self.settings.snaplen, packet);
        let data = &packet.data[..caplen];
        let written = self
            .files
            .write(&record)
            .and_then(|()| self.files.write(data));
        match written {
            Ok(()) => {
                let bytes = (record.len() + caplen) as u64;
                if let Some(w) = self.window.as_mut() {
                    w.packets += 1;
                    w.bytes += bytes;
                }
                self.stats.window_packets.fetch_add(1, Ordering::Relaxed);
                if let Some(json) = &self.json {
                    json.packet(&packet.with_data(data));
                }
                self.stats.window_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(error) => {
                self.error(&error);
                self.close_window();
            }
        }
    }

    fn error(&self, error: &io::Error) {
        let name = self.window.as_ref().map(|w| file_name(&w.path));
        self.logs.event(
            Severity::Error,
            &format!(
                "flight recorder: cannot write {}: {error}",
                name.unwrap_or_default()
            ),
            &(),
        );
    }

    /// Closes the open window: pcap-fsnotify exports the file.
    fn close_window(&mut self) {
        let Some(w) = self.window.take() else {
            return;
        };
        let result = self.files.close();
        self.closed.push(w.path.clone());
        let mut json_dropped = 0;
        if let Some(json) = self.json.as_mut() {
            json.close();
            json_dropped = json.dropped();
            self.stats
                .window_json_dropped
                .store(json_dropped, Ordering::Relaxed);
        }
        self.last_end_ns = Some(w.end_ns);
        self.logs.event(
            if result.is_ok() {
                Severity::Info
            } else {
                Severity::Error
            },
            &match &result {
                Ok(()) => format!("flight recorder: window of {} closed", w.first.kind),
                Err(error) => format!(
                    "flight recorder: window of {} closed with an error: {error}",
                    w.first.kind
                ),
            },
            &WindowClosedEvent {
                trigger: &w.first.kind,
                file: file_name(&w.path),
                packets: w.packets,
                bytes: w.bytes,
                merged_triggers: w.merged,
                json_dropped,
                window_start: rfc3339(w.start_ns),
                window_end: rfc3339(w.end_ns),
            },
        );
    }

    /// At stop: triggers still queued are handled, the open window is closed (exported);
    /// with `on_exit` the rest of the ring is written as a window of kind `exit`.
    /// Returns the window files, oldest first.
    pub fn finish(mut self) -> Vec<PathBuf> {
        while let Ok(fired) = self.rx.try_recv() {
            self.fired(fired);
        }
        self.close_window();
        if self.settings.on_exit {
            let written = self.written;
            let mut unwritten = self.ring.packets.iter().filter(|p| p.packet.num > written);
            let first = unwritten.next().map(|p| p.ts_ns);
            let last = self
                .ring
                .packets
                .back()
                .filter(|p| p.packet.num > written)
                .map(|p| p.ts_ns);
            if let (Some(first), Some(last)) = (first, last) {
                let fired = Fired {
                    kind: "exit".into(),
                    detail: "SIGTERM with PCAP_TRIGGER_ON_EXIT=true".into(),
                    at_ns: now_ns(),
                    trace: None,
                    flow: None,
                };
                self.open_window(fired, first, last);
                self.close_window();
            }
        }
        if let Some(json) = self.json.take() {
            self.closed.extend(json.finish());
        }
        self.closed
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Arc<RecorderStats> {
        Arc::new(RecorderStats::default())
    }

    fn packet(ts_sec: i64, data: &[u8]) -> CapturedPacket<'_> {
        CapturedPacket {
            num: 0,
            ts_sec,
            ts_nsec: 0,
            wire_len: data.len() as u32,
            data,
        }
    }

    #[test]
    fn the_ring_stays_within_its_byte_bound_and_counts_evictions() {
        let s = stats();
        let mut ring = Ring::new(Duration::from_secs(3600), 64 * 1024, Arc::clone(&s));
        for i in 0..10_000i64 {
            ring.push(i as u64, &packet(1_700_000_000 + i / 100, &[0u8; 1500]));
            assert!(ring.bytes() <= 64 * 1024, "{}", ring.bytes());
        }
        assert!(s.ring_evicted_bytes_bound.load(Ordering::Relaxed) > 9_000);
        assert!(s.ring_peak_bytes.load(Ordering::Relaxed) <= 64 * 1024);
        assert!(ring.packets.len() > 10);
    }

    #[test]
    fn the_ring_forgets_packets_older_than_its_time_bound() {
        let s = stats();
        let mut ring = Ring::new(Duration::from_secs(10), 1 << 30, Arc::clone(&s));
        for i in 0..100i64 {
            ring.push(i as u64, &packet(1_700_000_000 + i, &[1u8; 60]));
        }
        assert_eq!(ring.packets.len(), 11, "the last 10 s, both ends included");
        assert_eq!(s.ring_evicted_time_bound.load(Ordering::Relaxed), 89);
    }

    fn notable(status: u16) -> render::Notable {
        render::Notable {
            http_status: Some(status),
            trace: Some("abc".into()),
            flow: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn a_burst_fires_on_n_events_within_its_time_only() {
        let triggers = sidecar_core::config::trigger::parse_triggers("tcp:rst-burst:3/2s").unwrap();
        let (sink, rx) = channel(triggers, stats());
        let rst = render::Notable {
            rst: true,
            ..Default::default()
        };
        // Spread out: never 3 within 2 s.
        for at in [0, 1_500, 3_000, 4_500] {
            sink.check(&rst, at * 1_000_000);
        }
        assert!(rx.try_recv().is_err());
        // Three within 2 s.
        for at in [10_000, 10_500, 11_000] {
            sink.check(&rst, at * 1_000_000);
        }
        let fired = rx.try_recv().unwrap();
        assert_eq!(
            (fired.kind.as_str(), fired.detail.as_str()),
            ("rstburst", "3 × rst-burst within 1000 ms")
        );
        // Counting starts afresh.
        sink.check(&rst, 11_100_000_000);
        assert!(rx.try_recv().is_err());
        sink.check(&render::Notable::default(), 11_200_000_000);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn triggers_match_what_the_translation_showed() {
        let triggers =
            sidecar_core::config::trigger::parse_triggers("http:5xx,http:429,latency:>2s").unwrap();
        let (sink, rx) = channel(triggers, stats());
        sink.check(&notable(200), 1);
        sink.check(&notable(404), 2);
        assert!(rx.try_recv().is_err());
        sink.check(&notable(503), 3);
        let fired = rx.try_recv().unwrap();
        assert_eq!(
            (fired.kind.as_str(), fired.detail.as_str(), fired.at_ns),
            ("http5xx", "HTTP status 503", 3)
        );
        assert_eq!((fired.trace.as_deref(), fired.flow), (Some("abc"), Some(7)));
        sink.check(&notable(429), 4);
        assert_eq!(rx.try_recv().unwrap().kind, "http429");
        let slow = render::Notable {
            http_status: Some(200),
            latency_ns: Some(2_500_000_000),
            ..Default::default()
        };
        sink.check(&slow, 5);
        assert_eq!(rx.try_recv().unwrap().kind, "latency");
    }
}
