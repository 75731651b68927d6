//! One captured packet → one Cloud Logging JSON line.
//!
//! [`Translator::translate`] decodes the packet ([`analyze::decode()`]), updates the worker's
//! bounded flow table, recognises the payload ([`analyze::l7`]), composes the one-line
//! `message` summary, and serialises the entry once, with `serde_json`, straight into the
//! caller's reused buffer (entry types borrow from the packet; nothing is copied into an
//! intermediate document). It never panics, whatever the bytes: a layer that fails adds
//! `error {layer, kind, offset}` and the layers below it are still written.
//!
//! The JSON follows the original translator's field names (`pcap`, `meta`, `timestamp`,
//! `iface`, `L2`, `L3`, `L4`, `ARP`, `ICMP`, `DNS`, `TLS`, `L7`, `flow`, `message`,
//! `logging.googleapis.com/{labels,operation,trace,spanId,trace_sampled}`, plus Cloud
//! Logging's `httpRequest` on HTTP/1.1 and HTTP/2 responses) with its bugs fixed; see [`fields`] for the
//! names and `docs/json.md` for the entry's shape, severities and limits.
//! [`cloud_logging::Verbosity::Info`] writes a compact entry, `Debug` the full one.
//!
//! For the daemon:
//! - One [`Translator`] per worker thread, sharing one [`Limits`]; route packets with
//!   [`shard_key`] so a connection's packets meet the same flow table (operation first/last,
//!   window scale, `local` from the handshake, and the HTTP/1.1 and HTTP/2 state rely on it).
//! - [`Translator::translate`] allocates nothing per packet besides growth of `out` (and of
//!   the flow table up to `max_flows`); reuse `out` between packets.
//! - Layer names for counters: `analyze::Layer::ALL[i].name()` (`ethernet`, `ipv4`, `tcp`,
//!   `dns`, …).
//!
//! Tools:
//! - `cargo run --release -p render --example translate_bench -- [FILE.pcap] [ROUNDS]
//!   [debug|info]`: the translator alone, one thread: packets/s and bytes/entry.
//! - `cargo run -p render --example translate_file -- FILE.pcap [debug|info] [N]`: JSON lines.
//! - `crates/render/testdata/malformed.pcap`: 3,400+ malformed Ethernet packets
//!   (truncations, lying lengths, bad offsets, bit flips) for `pcapd --read` tests: every one
//!   must give a line.
//! - Fuzzing: `cd crates/render && cargo +nightly fuzz run translate`.

mod entry;
mod exchange;
mod fast;
pub mod fields;
mod guard;
mod http;
mod http2;
pub mod limits;
mod message;
mod redact;
mod summary;
mod tcp;
mod translator;

use std::net::IpAddr;
use std::time::Duration;

use cloud_logging::Severity;
use cloud_logging::Verbosity;
use wire::LinkType;

pub use analyze::flow::shard_key;
pub use limits::{Counter, Limits};
pub use translator::{Notable, TranslateCounters, Translator};

/// How entries are written.
#[derive(Debug, Clone)]
pub struct TranslatorSettings {
    /// `pcap.id`: the run id.
    pub run_id: String,
    /// `pcap.ctx`: the log name.
    pub log_name: String,
    /// Project for `logging.googleapis.com/trace = projects/<id>/traces/<trace>`; when None
    /// (or empty) the field holds the bare trace id.
    pub project_id: Option<String>,
    /// `Info` = compact entry, `Debug` = full.
    pub verbosity: Verbosity,
    /// The local ephemeral port range (inclusive), to tell clients from servers.
    pub ephemeral_ports: (u16, u16),
    /// Extra header names (any case) whose values are redacted, besides `Authorization`,
    /// `Proxy-Authorization`, `Cookie` and `Set-Cookie`.
    pub redact_headers: Vec<String>,
    /// Most flows held per translator.
    pub max_flows: usize,
    /// Flows idle this long (in packet time) are forgotten.
    pub flow_idle: Duration,
    /// Largest entry written, newline excluded (`PCAP_MAX_ENTRY_BYTES`): larger ones are
    /// cut by the guard in [`Translator::translate`].
    pub max_entry_bytes: usize,
    /// Byte budget of the analysis state of all translators sharing one [`Limits`]
    /// (`PCAP_STATE_MIB`).
    pub state_bytes: usize,
}

/// Default [`TranslatorSettings::max_entry_bytes`]: 200 KiB, under Cloud Logging's 256 KB.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 200 * 1024;
/// Default [`TranslatorSettings::state_bytes`]: 32 MiB, a fraction of Cloud Run's smallest
/// sidecar memory (128 MiB, where queue, chunks and the binary also live).
pub const DEFAULT_STATE_BYTES: usize = 32 << 20;

impl Default for TranslatorSettings {
    /// DEBUG entries, Linux's default ephemeral range, 50 000 flows (≈ 5 MiB) idle after 5 min.
    fn default() -> Self {
        TranslatorSettings {
            run_id: String::new(),
            log_name: String::new(),
            project_id: None,
            verbosity: Verbosity::Debug,
            ephemeral_ports: (32768, 60999),
            redact_headers: Vec::new(),
            max_flows: 50_000,
            flow_idle: Duration::from_secs(300),
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            state_bytes: DEFAULT_STATE_BYTES,
        }
    }
}

/// The capture interface of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// OS interface index (0 for `any`).
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Its addresses (used for `local`).
    pub addrs: Vec<IpAddr>,
}

/// Where packets come from: what [`Translator::translate`] needs of their source besides
/// each [`wire::CapturedPacket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The capture interface.
    pub interface: Interface,
    /// The link type of its packets.
    pub linktype: LinkType,
}

/// What [`Translator::translate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The entry's severity.
    pub severity: Severity,
    /// Bytes appended to the output buffer (including the newline).
    pub bytes: usize,
    /// `PCAP_VERBOSITY=SUMMARY` left this packet's entry out (so `bytes` may be 0 without
    /// anything having failed).
    pub suppressed: bool,
    /// Decoding the packet failed (a layer, or its application protocol): the entry says
    /// so, and [`TranslateCounters::decode_errors`] counts it.
    pub decode_error: bool,
}
