//! The `.json` of each flight-recorder window (`PCAP_JSON=true`): the packets the recorder
//! writes into a window's `.pcap` are also translated, on a thread of their own, into
//! `<iface>_part_<T>Z_<kind>.json` — the lines `pcapd --read` of the window's `.pcap` would
//! give (translation state starts with the window, as it does for a file). The capture
//! thread never waits on translation: packets go through a channel bounded in packets and
//! bytes (8 MiB) and are dropped and counted when it is full; only opening and closing a window wait their turn (twice per
//! window), so the `.json` is complete up to the drops.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use sidecar_core::log::Severity;
use sidecar_core::rotating::RotatingFile;
use wire::{Captured, CapturedPacket};

use crate::LogTarget;

/// Packets waiting for translation, at most …
const CHANNEL_PACKETS: usize = 4096;
/// … and at most these many bytes of them.
const CHANNEL_BYTES: usize = 8 << 20;
const BUFFER_BYTES: usize = 256 * 1024;

enum Message {
    Open { started: DateTime<Utc>, tag: String },
    Packet(Captured<Vec<u8>>),
    Close,
}

/// The translating writer of window `.json` files.
pub struct JsonWindows {
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<Vec<PathBuf>>>,
    dropped: Arc<AtomicU64>,
    /// Bytes of packets in the channel.
    queued: Arc<AtomicUsize>,
    open: bool,
}

/// What the thread needs to translate and name.
pub struct JsonSetup {
    /// The capture directory.
    pub dir: PathBuf,
    /// Interface (names and the entries' `iface`) and link type of the packets.
    pub source: render::Source,
    /// Translation settings (as the live JSON would have).
    pub settings: render::TranslatorSettings,
    /// Where errors are logged.
    pub logs: LogTarget,
}

impl JsonWindows {
    /// Starts the thread.
    pub fn start(setup: JsonSetup) -> io::Result<JsonWindows> {
        let files = RotatingFile::new(
            &setup.dir,
            &setup.source.interface.name,
            "json",
            None,
            BUFFER_BYTES,
        )?;
        let (tx, rx) = mpsc::sync_channel(CHANNEL_PACKETS);
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("json-windows".into())
            .spawn(move || run(rx, files, setup, &thread_queued))?;
        Ok(JsonWindows {
            tx: Some(tx),
            thread: Some(thread),
            dropped: Arc::new(AtomicU64::new(0)),
            queued,
            open: false,
        })
    }

    /// A window opens: its `.json` gets the `.pcap`'s time and tag.
    pub fn open(&mut self, started: DateTime<Utc>, tag: &str) {
        if let Some(tx) = &self.tx {
            self.open = tx
                .send(Message::Open {
                    started,
                    tag: tag.to_string(),
                })
                .is_ok();
        }
    }

    /// A packet of the open window.
    pub fn packet(&self, packet: &CapturedPacket<'_>) {
        let (Some(tx), true) = (&self.tx, self.open) else {
            return;
        };
        let len = packet.data.len();
        if self.queued.load(Ordering::Relaxed) + len > CHANNEL_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            tx.try_send(Message::Packet(packet.to_owned()))
        {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The window closes: its `.json` is closed (and exported) once translated.
    pub fn close(&mut self) {
        if let (Some(tx), true) = (&self.tx, self.open) {
            let _ = tx.send(Message::Close);
        }
        self.open = false;
    }

    /// Packets not translated because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits for the thread; returns the `.json` files written.
    pub fn finish(mut self) -> Vec<PathBuf> {
        self.close();
        self.tx = None;
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn run(
    rx: Receiver<Message>,
    mut files: RotatingFile,
    setup: JsonSetup,
    queued: &AtomicUsize,
) -> Vec<PathBuf> {
    let mut translator = render::Translator::new(setup.settings.clone());
    let mut num = 0u64;
    let mut out = Vec::with_capacity(64 * 1024);
    let fail = |error: io::Error, files: &RotatingFile| {
        let name = files
            .current()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        setup.logs.event(
            Severity::Error,
            &format!("flight recorder: cannot write {name}: {error}"),
            &(),
        );
    };
    for message in rx {
        match message {
            Message::Open { started, tag } => {
                translator = render::Translator::new(setup.settings.clone());
                num = 0;
                if let Err(error) = files.open_named(b"", started, Some(&tag)) {
                    fail(error, &files);
                }
            }
            Message::Packet(p) => {
                queued.fetch_sub(p.data.len(), Ordering::Relaxed);
                if files.is_empty() {
                    continue;
                }
                out.clear();
                // Numbered within the window, as `pcapd --read` of its `.pcap` would.
                let packet = CapturedPacket {
                    num,
                    ..p.borrowed()
                };
                translator.translate(&setup.source, &packet, &mut out);
                num += 1;
                if let Err(error) = files.write(&out) {
                    fail(error, &files);
                    let _ = files.close();
                }
            }
            Message::Close => {
                out.clear();
                translator.finish(&mut out);
                let written = if files.is_empty() {
                    Ok(())
                } else {
                    files.write(&out)
                };
                if let Err(error) = written.and_then(|()| files.close()) {
                    fail(error, &files);
                }
            }
        }
    }
    let _ = files.close();
    files.closed().to_vec()
}
