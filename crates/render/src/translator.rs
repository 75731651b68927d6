//! The per-worker [`Translator`]: flow table, counters, reused scratch, and the rules that
//! turn a decoded packet into an entry (severity, `local`, operation first/last).

use analyze::l7::{self, App};
use analyze::table::{FlowState, FlowTable};
use analyze::{community_id, decode, FlowKey, Layer, Transport};
use sidecar_core::log::Severity;

use crate::entry::{Cached, Entry, FlowFacts};
use crate::redact::Redactor;
use crate::{message, CapturedPacket, Outcome, TranslatorSettings};

/// What a translator has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslateCounters {
    /// Packets translated.
    pub packets: u64,
    /// Bytes of JSON written (newlines included).
    pub bytes: u64,
    /// Packets cut by the snaplen.
    pub truncated: u64,
    /// Packets with a decoding error.
    pub decode_errors: u64,
    /// Decoding errors per layer, indexed by [`Layer::index`].
    pub errors_by_layer: [u64; Layer::ALL.len()],
    /// Entries by severity: INFO, WARNING, ERROR.
    pub info: u64,
    /// WARNING entries (TCP RST, ICMP errors, HTTP 4xx).
    pub warning: u64,
    /// ERROR entries (decoding errors, HTTP parse errors, HTTP 5xx).
    pub error: u64,
    /// Flows held now.
    pub flows_active: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows evicted after being idle.
    pub flows_evicted_idle: u64,
    /// Flows evicted because the table was full.
    pub flows_evicted_cap: u64,
    /// Entries whose serialisation failed and were replaced by a minimal line (never
    /// expected; counted so it cannot go unnoticed).
    pub fallback_lines: u64,
}

impl TranslateCounters {
    /// Decoding errors of one layer.
    pub fn errors(&self, layer: Layer) -> u64 {
        self.errors_by_layer
            .get(layer.index())
            .copied()
            .unwrap_or(0)
    }

    /// Adds another translator's counters (the daemon sums its workers'); gauges add too.
    pub fn add(&mut self, o: &TranslateCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.truncated += o.truncated;
        self.decode_errors += o.decode_errors;
        for (a, b) in self
            .errors_by_layer
            .iter_mut()
            .zip(o.errors_by_layer.iter())
        {
            *a += b;
        }
        self.info += o.info;
        self.warning += o.warning;
        self.error += o.error;
        self.flows_active += o.flows_active;
        self.flows_created += o.flows_created;
        self.flows_evicted_idle += o.flows_evicted_idle;
        self.flows_evicted_cap += o.flows_evicted_cap;
        self.fallback_lines += o.fallback_lines;
    }
}

/// Per-worker translation state: one per worker thread, not shared.
pub struct Translator {
    settings: TranslatorSettings,
    flows: FlowTable<FlowState>,
    counters: TranslateCounters,
    message: String,
    cached: Cached,
    redact: Redactor,
}

impl Translator {
    /// A translator with an empty flow table.
    pub fn new(settings: TranslatorSettings) -> Self {
        let flows = FlowTable::new(settings.max_flows, settings.flow_idle);
        Translator {
            flows,
            counters: TranslateCounters::default(),
            message: String::with_capacity(256),
            cached: Cached::new(&settings),
            redact: Redactor::new(&settings.redact_headers),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TranslatorSettings {
        &self.settings
    }

    /// Counters so far.
    pub fn counters(&self) -> &TranslateCounters {
        &self.counters
    }

    /// Appends exactly one JSON object and a `'\n'` to `out`; never panics, whatever the bytes.
    pub fn translate(&mut self, packet: &CapturedPacket<'_>, out: &mut Vec<u8>) -> Outcome {
        let start = out.len();
        let d = decode(packet.linktype, packet.data, packet.wire_len);
        let now_ns = timestamp_ns(packet);
        let key = FlowKey::of(&d);

        let mut facts = FlowFacts::default();
        let mut trace = None;
        let (app, app_err) = if let Some((k, side)) = key {
            let id = k.id();
            facts.id = Some(id);
            facts.kind = Some(k.kind());
            facts.host_pair = k.host_pair_id();
            facts.port_pair = k.port_pair_id();
            let (state, created) = self.flows.entry(id, now_ns, || FlowState::new(now_ns));
            facts.first = created;
            if let Some(Transport::Tcp(t)) = d.transport {
                let ev = state.track_tcp(side, &t, now_ns);
                facts.first |= ev.restarted;
                facts.last = ev.last;
                if !t.flags().syn() {
                    facts.window_shift = state.window_shift(side);
                }
                facts.server_side = state.client.map(|c| c != side);
            } else {
                state.packets += 1;
            }
            let (app, err) = l7::classify_at(&d, Some(&mut *state), side, now_ns);
            if let Some(Transport::Tcp(t)) = d.transport {
                // The trace of the exchange: the message's own, or for the connection's
                // other segments (ACK/FIN/RST, retransmissions) the latest exchange's.
                trace = match &app {
                    App::Http(m) => m.trace,
                    App::Http2(s) => s.trace,
                    App::None => state.http_trace(),
                    _ => None,
                };
                state.http_segment_done(side, &t);
            }
            (app, err)
        } else {
            l7::classify(&d, None)
        };
        facts.error = d.error.or(app_err);
        facts.community_id = community_id::of(&d);
        facts.local = local(&self.settings, packet, &d, facts.server_side);

        let severity = severity(&d, &facts, &app);
        self.count(&d, &facts, severity);
        message::write(&mut self.message, packet, &d, &app, &facts);

        self.cached
            .for_iface(&self.settings, &packet.interface.name);
        let entry = Entry {
            settings: &self.settings,
            cached: &self.cached,
            packet,
            decoded: &d,
            app: &app,
            flow: &facts,
            message: &self.message,
            severity,
            trace: trace.as_ref(),
            redact: &self.redact,
        };
        if serde_json::to_writer(&mut *out, &entry).is_err() {
            // Serialising borrowed, already-validated values cannot fail into a Vec; if it
            // ever did, the line would be half-written: replace it by a minimal one.
            out.truncate(start);
            self.counters.fallback_lines += 1;
            let _ = serde_json::to_writer(
                &mut *out,
                &serde_json::json!({ "message": self.message.as_str(), "severity": severity.as_str() }),
            );
        }
        out.push(b'\n');
        let bytes = out.len() - start;
        self.counters.bytes += bytes as u64;
        Outcome { severity, bytes }
    }

    fn count(&mut self, d: &analyze::Decoded<'_>, facts: &FlowFacts, severity: Severity) {
        let c = &mut self.counters;
        c.packets += 1;
        if d.truncated || d.capture_cut() {
            c.truncated += 1;
        }
        if let Some(e) = facts.error {
            c.decode_errors += 1;
            if let Some(n) = c.errors_by_layer.get_mut(e.layer.index()) {
                *n += 1;
            }
        }
        match severity {
            Severity::Error | Severity::Critical => c.error += 1,
            Severity::Warning => c.warning += 1,
            _ => c.info += 1,
        }
        c.flows_active = self.flows.len() as u64;
        c.flows_created = self.flows.created;
        c.flows_evicted_idle = self.flows.evicted_idle;
        c.flows_evicted_cap = self.flows.evicted_cap;
    }
}

fn timestamp_ns(p: &CapturedPacket<'_>) -> u64 {
    let secs = u64::try_from(p.timestamp.timestamp()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(u64::from(p.timestamp.timestamp_subsec_nanos()))
}

/// Severity (API.md): WARNING for TCP RST, ICMP errors and HTTP 4xx; ERROR for HTTP 5xx and
/// analysis errors (HTTP messages that cannot be parsed included); HTTP/2 adds gRPC status
/// and RST_STREAM/GOAWAY codes (see [`crate::http2`]).
fn severity(d: &analyze::Decoded<'_>, facts: &FlowFacts, app: &App<'_>) -> Severity {
    if facts.error.is_some() {
        return Severity::Error;
    }
    if let App::Http2(s) = app {
        let sev = crate::http2::severity(s);
        if sev != Severity::Info {
            return sev;
        }
    }
    if let App::Http(m) = app {
        if m.error.is_some() {
            return Severity::Error;
        }
        if m.kind == analyze::http::Kind::Response {
            match m.code {
                500..=599 => return Severity::Error,
                400..=499 => return Severity::Warning,
                _ => {}
            }
        }
    }
    match d.transport {
        Some(Transport::Tcp(t)) if t.flags().rst() => Severity::Warning,
        Some(Transport::Icmpv4(i)) if i.type_code().is_error() => Severity::Warning,
        Some(Transport::Icmpv6(i)) if i.type_code().is_error() => Severity::Warning,
        _ => Severity::Info,
    }
}

/// `local`: the packet was sent by a server in the sandbox. The source address must be one
/// of the interface's; the server side is known from the handshake when it was seen, else
/// the original's heuristic applies (source port outside the ephemeral range).
fn local(
    s: &TranslatorSettings,
    p: &CapturedPacket<'_>,
    d: &analyze::Decoded<'_>,
    server_side: Option<bool>,
) -> Option<bool> {
    let (sport, _) = d.ports()?;
    let (src, _) = d.ip_addrs()?;
    let ours = p.interface.addrs.contains(&src);
    let server = server_side
        .unwrap_or_else(|| !(s.ephemeral_ports.0..=s.ephemeral_ports.1).contains(&sport));
    Some(ours && server)
}
