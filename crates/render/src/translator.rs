//! The per-worker [`Translator`]: flow table, counters, reused scratch, and the rules that
//! turn a decoded packet into an entry (severity, `local`, operation first/last).

use std::sync::Arc;

use analyze::l7::{self, App};
use analyze::table::{self, FlowState, FlowTable};
use analyze::{community_id, decode, FlowKey, Layer, Transport};
use chrono::{DateTime, Utc};
use cloud_logging::{Severity, Verbosity};
use wire::CapturedPacket;

use crate::entry::{Cached, Entry, FlowFacts};
use crate::exchange::{Exchange, ExchangeJson};
use crate::fields as f;
use crate::limits::{Counter, Limits};
use crate::redact::Redactor;
use crate::summary::{ConnSummary, SummaryJson};
use crate::{message, Outcome, Source, TranslatorSettings};

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
    /// Connection summaries written.
    pub connections_summarized: u64,
    /// Exchange summaries written (HTTP exchanges, gRPC calls, DNS pairs).
    pub exchanges_summarized: u64,
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
        self.connections_summarized += o.connections_summarized;
        self.exchanges_summarized += o.exchanges_summarized;
    }
}

/// Per-worker translation state: one per worker thread, not shared.
pub struct Translator {
    settings: TranslatorSettings,
    /// What the last translated packet showed (the flight recorder's triggers read it).
    notable: Notable,
    flows: FlowTable<FlowState>,
    counters: TranslateCounters,
    message: String,
    cached: Cached,
    redact: Redactor,
    limits: Arc<Limits>,
    /// State bytes of this translator's flows (its share of `limits`).
    state_bytes: usize,
    /// What `limits` was last told this translator holds: it is told only when the
    /// difference reaches [`PUBLISH_BYTES`], so workers do not share a cache line per packet.
    published: usize,
    /// After an eviction round that could not free enough (the rest is held by other
    /// translators), the next round waits until this translator holds this much.
    evict_again_at: usize,
    /// Summaries of connections forgotten (idle, cap, state budget) not written yet.
    pending: Vec<ConnSummary>,
}

impl Translator {
    /// A translator with an empty flow table and limits of its own.
    pub fn new(settings: TranslatorSettings) -> Self {
        let limits = Arc::new(Limits::new(settings.state_bytes));
        Translator::with_limits(settings, limits)
    }

    /// A translator sharing `limits` (the state budget and cap counters) with the others
    /// of its daemon.
    pub fn with_limits(settings: TranslatorSettings, limits: Arc<Limits>) -> Self {
        let flows = FlowTable::new(settings.max_flows, settings.flow_idle)
            .weighed(|s: &FlowState| s.accounted)
            .keeping_removed(settings.verbosity == Verbosity::Summary);
        limits.register(true);
        Translator {
            notable: Notable::default(),
            flows,
            counters: TranslateCounters::default(),
            message: String::with_capacity(256),
            cached: Cached::new(&settings),
            redact: Redactor::new(&settings.redact_headers),
            settings,
            limits,
            state_bytes: 0,
            published: 0,
            evict_again_at: 0,
            pending: Vec::new(),
        }
    }

    /// The limits shared with the daemon's other translators.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// State bytes this translator's flows are accounted for.
    pub fn state_bytes(&self) -> usize {
        self.state_bytes
    }

    /// The settings.
    pub fn settings(&self) -> &TranslatorSettings {
        &self.settings
    }

    /// Counters so far.
    pub fn counters(&self) -> &TranslateCounters {
        &self.counters
    }

    /// Appends exactly one JSON object and a `'\n'` to `out` for `packet`, captured by
    /// `source`; never panics, whatever the bytes.
    pub fn translate(
        &mut self,
        source: &Source,
        packet: &CapturedPacket<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let start = out.len();
        self.notable = Notable::default();
        let d = decode(source.linktype, packet.data, packet.wire_len);
        let timestamp = DateTime::from_timestamp(packet.ts_sec, packet.ts_nsec).unwrap_or_default();
        let now_ns = timestamp_ns(&timestamp);
        let key = FlowKey::of(&d);

        let mut facts = FlowFacts::default();
        let mut trace = None;
        let mut closed: Option<ConnSummary> = None;
        let mut exchanges: Vec<Exchange> = Vec::new();
        let mut accounted = (0usize, 0usize);
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
                let len = analyze::tcp_analysis::payload_len_on_wire(&d);
                let seg = analyze::tcp_analysis::Segment::of(&t, len, now_ns, packet.num);
                let tracker = state.tcp.get_or_insert_with(Box::default);
                if tracker.endpoints.is_none() {
                    if let Some((src, dst)) = d.ip_addrs() {
                        let (from, to) = ((src, t.src_port()), (dst, t.dst_port()));
                        tracker.endpoints = Some(if side.index() == 0 {
                            [from, to]
                        } else {
                            [to, from]
                        });
                    }
                }
                facts.tcp = Some(tracker.analyze(side.index(), &seg));
                let analysis = facts.tcp.as_ref().map(|a| a.flags).unwrap_or_default();
                self.notable.rst_after_data =
                    analysis.has(analyze::tcp_analysis::Flag::RstAfterData);
                // A SYN sent again: no SYN-ACK came within the client's first timeout.
                self.notable.rst = t.flags().rst();
                self.notable.retransmission =
                    analysis.has(analyze::tcp_analysis::Flag::Retransmission);
                self.notable.zero_window = analysis.has(analyze::tcp_analysis::Flag::ZeroWindow);
                self.notable.syn_retransmitted = t.flags().syn()
                    && !t.flags().ack()
                    && analysis.has(analyze::tcp_analysis::Flag::Retransmission);
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
            if let Some(s) = state.streams.as_mut() {
                let (e, l) = (s.take_events(), &*self.limits);
                l.count(Counter::StreamHeldSegments, e.held);
                l.count(Counter::StreamDuplicateSegments, e.duplicates);
                l.count(Counter::StreamGaps, e.gaps);
                l.count(Counter::StreamGapBytes, e.gap_bytes);
                l.count(Counter::StreamOverBudgetBytes, e.over_budget_bytes);
            }
            let n = responses(&app);
            if let (Some(tracker), true) = (state.tcp.as_mut(), n > 0) {
                tracker.http_exchanges = tracker.http_exchanges.saturating_add(n);
            }
            if self.settings.verbosity == Verbosity::Summary {
                exchanges = Exchange::of(&app, now_ns, Some(&mut state.dns_queries));
                if !exchanges.is_empty() {
                    let ends = d.ip_addrs().zip(d.ports());
                    for e in &mut exchanges {
                        e.flow = id;
                        // The response's source is the server.
                        e.server = ends.map(|((src, _), (sp, _))| (src, sp));
                        e.client = ends.map(|((_, dst), (_, dp))| (dst, dp));
                    }
                }
            }
            if let Some(Transport::Tcp(t)) = d.transport {
                // The trace of the exchange: the message's own, or for the connection's
                // other segments (ACK/FIN/RST, retransmissions) the latest exchange's.
                trace = match &app {
                    App::Http(m) => m.trace,
                    App::Http2(s) => s.trace,
                    App::None | App::Stream(_) => state.http_trace(),
                    _ => None,
                };
                // Summaries are SUMMARY's entries: INFO and DEBUG keep one line per packet.
                if facts.last && self.settings.verbosity == Verbosity::Summary {
                    let reason = if t.flags().rst() { "rst" } else { "fin" };
                    let (first_ns, trace) = (state.first_ns, state.http_trace());
                    closed = state.tcp.as_mut().and_then(|tracker| {
                        ConnSummary::of(tracker, id, first_ns, now_ns, reason, trace)
                    });
                }
                state.http_segment_done(side, &t);
            }
            facts.state_evicted = state.state_evicted;
            let now = table::slot_bytes::<FlowState>() + state.heap_bytes();
            accounted = (std::mem::replace(&mut state.accounted, now), now);
            (app, err)
        } else {
            l7::classify(&d, None)
        };
        self.account_state(accounted.0, accounted.1);
        for (id, mut state, why) in self.flows.take_removed() {
            if let Some(s) = ConnSummary::of_state(&mut state, id, why.name()) {
                self.pending.push(s);
            }
        }
        if let App::Http2(seg) = &app {
            let (c, l) = (&seg.caps, &*self.limits);
            l.count(Counter::HeaderListsTruncated, c.lists_truncated as u64);
            l.count(Counter::HeaderFieldsOmitted, c.fields_omitted as u64);
            l.count(Counter::HpackReferencesSkipped, c.references_skipped as u64);
            l.count(Counter::StreamsSkipped, c.streams_skipped as u64);
            l.count(Counter::ContinuationFloods, c.continuation_floods as u64);
        }
        facts.error = d.error.or(app_err);
        facts.community_id = community_id::of(&d);
        facts.local = local(&self.settings, source, &d, facts.server_side);

        let severity = severity(&d, &facts, &app);
        self.note(&d, &facts, &app, trace.as_ref());
        self.count(&d, &facts, severity);
        self.cached
            .for_iface(&self.settings, &source.interface.name);
        if let Some(c) = closed.as_mut() {
            c.community_id = facts.community_id;
        }
        for e in &mut exchanges {
            e.community_id = facts.community_id;
        }
        if self.settings.verbosity == Verbosity::Summary
            && !crate::summary::keep_packet(severity, facts.tcp.as_ref())
        {
            self.write_summary(&exchanges, closed.as_ref(), out);
            let bytes = out.len() - start;
            self.counters.bytes += bytes as u64;
            return Outcome {
                severity,
                bytes,
                suppressed: true,
                decode_error: facts.error.is_some(),
            };
        }
        let debug = self.settings.verbosity == Verbosity::Debug;
        message::write(&mut self.message, source, packet, &d, &app, &facts, debug);

        let entry = Entry {
            settings: &self.settings,
            cached: &self.cached,
            source,
            packet,
            timestamp,
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
                &serde_json::json!({ f::MESSAGE: self.message.as_str(), f::SEVERITY: severity.as_str() }),
            );
        }
        if out.len() - start > self.settings.max_entry_bytes {
            crate::guard::cut(out, start, self.settings.max_entry_bytes);
            self.limits.count(Counter::EntriesCut, 1);
        }
        out.push(b'\n');
        self.write_summary(&exchanges, closed.as_ref(), out);
        let bytes = out.len() - start;
        self.counters.bytes += bytes as u64;
        Outcome {
            severity,
            bytes,
            suppressed: false,
            decode_error: facts.error.is_some(),
        }
    }

    /// Appends the summaries of the exchanges the packet completed, of a connection that
    /// closed, and of connections forgotten since the last packet (one more line each).
    fn write_summary(
        &mut self,
        exchanges: &[Exchange],
        closed: Option<&ConnSummary>,
        out: &mut Vec<u8>,
    ) {
        for e in exchanges {
            let j = ExchangeJson {
                e,
                settings: &self.settings,
                cached: &self.cached,
                redact: &self.redact,
            };
            let at = out.len();
            if serde_json::to_writer(&mut *out, &j).is_err() {
                out.truncate(at);
                self.counters.fallback_lines += 1;
                continue;
            }
            if out.len() - at > self.settings.max_entry_bytes {
                crate::guard::cut(out, at, self.settings.max_entry_bytes);
                self.limits.count(Counter::EntriesCut, 1);
            }
            out.push(b'\n');
            self.counters.exchanges_summarized += 1;
        }
        for s in std::mem::take(&mut self.pending) {
            self.write_one_summary(&s, out);
        }
        if let Some(s) = closed {
            self.write_one_summary(s, out);
        }
    }

    /// With `PCAP_VERBOSITY=SUMMARY`, appends a summary of every TCP connection still held
    /// (`close_reason` `end`): at the end of `--read` and at shutdown.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.settings.verbosity != Verbosity::Summary {
            return;
        }
        let mut left: Vec<ConnSummary> = self
            .flows
            .iter_mut()
            .filter_map(|(id, s)| ConnSummary::of_state(s, id, "end"))
            .collect();
        left.sort_by_key(|s| s.end_ns);
        self.pending.extend(left);
        self.write_summary(&[], None, out);
    }

    fn write_one_summary(&mut self, s: &ConnSummary, out: &mut Vec<u8>) {
        let j = SummaryJson {
            s,
            settings: &self.settings,
            cached: &self.cached,
        };
        let start = out.len();
        if serde_json::to_writer(&mut *out, &j).is_err() {
            out.truncate(start);
            self.counters.fallback_lines += 1;
            return;
        }
        out.push(b'\n');
        self.counters.connections_summarized += 1;
    }

    /// Accounts a flow's state going from `before` to `after` bytes (and what the table
    /// removed by itself); over the shared budget, drops the state of this translator's
    /// least recently used flows.
    fn account_state(&mut self, before: usize, after: usize) {
        let removed = self.flows.take_removed_weight();
        self.state_bytes = (self.state_bytes + after).saturating_sub(before + removed);
        if self.state_bytes.abs_diff(self.published) < PUBLISH_BYTES {
            return;
        }
        let over = self.limits.account(self.published, self.state_bytes);
        self.published = self.state_bytes;
        if !over || self.state_bytes < self.evict_again_at {
            return;
        }
        // Free down to this translator's share of 7/8 of the budget: every worker frees its
        // own oldest flows, and eviction runs in rounds, not per packet.
        let budget = self.limits.state_budget;
        let want = self.state_bytes.saturating_sub(self.limits.share());
        let (mut freed, mut flows) = self.flows.shed_lru(want, |_, s: &mut FlowState| {
            let n = s.evict_l7();
            s.accounted = s.accounted.saturating_sub(n);
            (n, false)
        });
        if freed < want {
            // Application state alone was not enough: forget whole flows, oldest first.
            let summaries = self.settings.verbosity == Verbosity::Summary;
            let pending = &mut self.pending;
            let (f, n) = self.flows.shed_lru(want - freed, |id, s: &mut FlowState| {
                if summaries {
                    pending.extend(ConnSummary::of_state(s, id, "state_budget"));
                }
                (s.accounted, true)
            });
            freed += f;
            flows += n;
        }
        self.state_bytes = self.state_bytes.saturating_sub(freed);
        self.limits.account(self.published, self.state_bytes);
        self.published = self.state_bytes;
        self.limits.count(Counter::StateEvictedFlows, flows);
        self.limits.count(Counter::StateEvictedBytes, freed as u64);
        // The next round after some growth (a translator within its share waits for the
        // others to free theirs).
        self.evict_again_at = self.state_bytes + budget / 32;
    }

    /// What the last packet translated showed that can fire a trigger.
    pub fn notable(&self) -> &Notable {
        &self.notable
    }

    fn note(
        &mut self,
        d: &analyze::Decoded<'_>,
        facts: &FlowFacts,
        app: &App<'_>,
        trace: Option<&analyze::http1::Trace>,
    ) {
        let n = &mut self.notable;
        n.flow = facts.id;
        n.trace = trace.map(|t| t.trace_id_str().to_string());
        match app {
            App::Http(m) if m.kind == analyze::http1::Kind::Response => {
                n.http_status = Some(m.code);
                n.latency_ns = m.latency_ns;
            }
            App::Http2(seg) => {
                for h in seg.frames.iter().filter_map(|f| f.headers.as_deref()) {
                    if h.role == analyze::http2::Role::Response {
                        n.http_status = n.http_status.or(h.status);
                        n.latency_ns = n.latency_ns.or(h.latency_ns);
                    }
                    if let Some(code) = h.grpc.as_ref().and_then(|g| g.status) {
                        n.grpc_status = Some(code);
                    }
                }
            }
            App::Dns(m) if m.is_response() => n.dns_rcode = Some(m.rcode().0),
            _ => {}
        }
        n.icmp_unreachable = match &d.transport {
            Some(Transport::Icmpv4(p)) => p.msg_type() == 3,
            Some(Transport::Icmpv6(p)) => p.msg_type() == 1,
            _ => false,
        };
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

fn timestamp_ns(t: &DateTime<Utc>) -> u64 {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(u64::from(t.timestamp_subsec_nanos()))
}

/// Smallest change of a translator's state bytes reported to the shared [`Limits`]: the
/// budget is then exact within this much per worker.
const PUBLISH_BYTES: usize = 64 * 1024;

impl Drop for Translator {
    /// A translator that ends (a worker replaced after a panic, the daemon's end) gives its
    /// share of the state budget back.
    fn drop(&mut self) {
        self.limits.account(self.published, 0);
        self.limits.register(false);
    }
}

/// Severity (`docs/json.md`): WARNING for TCP RST, ICMP errors and HTTP 4xx; ERROR for HTTP 5xx and
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
        if m.kind == analyze::http1::Kind::Response {
            match m.code {
                500..=599 => return Severity::Error,
                400..=499 => return Severity::Warning,
                _ => {}
            }
        }
    }
    if facts.tcp.as_ref().is_some_and(crate::tcp::is_warning) {
        return Severity::Warning;
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
    source: &Source,
    d: &analyze::Decoded<'_>,
    server_side: Option<bool>,
) -> Option<bool> {
    let (sport, _) = d.ports()?;
    let (src, _) = d.ip_addrs()?;
    let ours = source.interface.addrs.contains(&src);
    let server = server_side
        .unwrap_or_else(|| !(s.ephemeral_ports.0..=s.ephemeral_ports.1).contains(&sport));
    Some(ours && server)
}

/// HTTP responses a segment completes (final status lines and HTTP/2 response headers).
fn responses(app: &App<'_>) -> u32 {
    match app {
        App::Http(m) if m.kind == analyze::http1::Kind::Response && (200..).contains(&m.code) => 1,
        App::Http2(s) => s
            .frames
            .iter()
            .filter_map(|f| f.headers.as_deref())
            .filter(|h| h.role == analyze::http2::Role::Response)
            .count() as u32,
        _ => 0,
    }
}

/// What one translated packet showed that the flight recorder's triggers look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notable {
    /// Status of an HTTP/1.1 or HTTP/2 response.
    pub http_status: Option<u16>,
    /// Time from the request to this response (ns).
    pub latency_ns: Option<u64>,
    /// A gRPC status (trailers or a trailers-only response).
    pub grpc_status: Option<u32>,
    /// A TCP reset on a connection that carried payload.
    pub rst_after_data: bool,
    /// A retransmitted SYN (no SYN-ACK within the connect's first timeout).
    pub syn_retransmitted: bool,
    /// A TCP reset (any).
    pub rst: bool,
    /// A TCP retransmission (`tcp.analysis.retransmission`).
    pub retransmission: bool,
    /// A zero window advertised (`tcp.analysis.zero_window`).
    pub zero_window: bool,
    /// Rcode of a DNS response.
    pub dns_rcode: Option<u16>,
    /// ICMP destination unreachable (v4 type 3, v6 type 1).
    pub icmp_unreachable: bool,
    /// The exchange's trace id.
    pub trace: Option<String>,
    /// The entry's `flow`.
    pub flow: Option<u64>,
}
