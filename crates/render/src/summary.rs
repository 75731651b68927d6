//! Connection summaries (Zeek's `conn.log`, as Cloud Logging entries) and what
//! `PCAP_VERBOSITY=SUMMARY` keeps of the packet entries.
//!
//! With `PCAP_VERBOSITY=SUMMARY`, when a TCP connection closes (the last ACK after both FINs,
//! or a RST), the translator appends one entry after the packet's own (if it writes one): `"kind": "connection"` with both endpoints
//! (originator as Zeek decides it), duration, packets and payload bytes each way, Zeek's
//! `conn_state` and `history`, retransmissions, out-of-order and lost segments each way, the
//! initial RTT, zero-window time each way, the close reason, the number of HTTP exchanges
//! and the trace of the connection's last one.

use std::net::IpAddr;

use analyze::community_id::CommunityId;
use analyze::tcp_analysis::{Analysis, ConnState, Flag, Totals, Tracker};
use cloud_logging::Severity;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::entry::Cached;
use crate::fast;
use crate::fields as f;
use crate::tcp::seconds;
use crate::TranslatorSettings;

/// Everything a connection summary says, copied out of the flow state when it closes.
#[derive(Debug, Clone)]
pub(crate) struct ConnSummary {
    pub flow: u64,
    pub community_id: Option<CommunityId>,
    pub orig: (IpAddr, u16),
    pub resp: (IpAddr, u16),
    pub start_ns: u64,
    pub end_ns: u64,
    pub orig_totals: Totals,
    pub resp_totals: Totals,
    pub conn_state: ConnState,
    pub history: String,
    pub initial_rtt_ns: Option<u64>,
    pub close_reason: &'static str,
    pub http_exchanges: u32,
    pub trace: Option<analyze::http1::Trace>,
}

impl ConnSummary {
    /// The summary of the connection `tracker` follows, ended at `end_ns` for
    /// `close_reason`; `None` when the tracker does not know the endpoints.
    pub(crate) fn of(
        tracker: &mut Tracker,
        flow: u64,
        start_ns: u64,
        end_ns: u64,
        close_reason: &'static str,
        trace: Option<analyze::http1::Trace>,
    ) -> Option<Self> {
        let ends = tracker.endpoints?;
        tracker.settle(end_ns);
        let o = tracker.originator()?.min(1);
        let totals = |i: usize| tracker.direction(i).map(|d| d.totals).unwrap_or_default();
        Some(ConnSummary {
            flow,
            community_id: None,
            orig: ends[o],
            resp: ends[1 - o],
            start_ns,
            end_ns,
            orig_totals: totals(o),
            resp_totals: totals(1 - o),
            conn_state: tracker.conn_state(),
            history: tracker.history().to_string(),
            initial_rtt_ns: tracker.initial_rtt_ns(),
            close_reason,
            http_exchanges: tracker.http_exchanges,
            trace,
        })
    }

    /// The summary of a flow the translator forgets or still holds at the end: TCP flows
    /// whose connection did not close (a closed one had its summary already).
    pub(crate) fn of_state(
        state: &mut analyze::FlowState,
        flow: u64,
        reason: &'static str,
    ) -> Option<Self> {
        if state.closed {
            return None;
        }
        let (first_ns, trace) = (state.first_ns, state.http_trace());
        let tracker = state.tcp.as_mut()?;
        let end_ns = tracker.last_ns();
        ConnSummary::of(tracker, flow, first_ns, end_ns, reason, trace)
    }

    /// WARNING when an operator should look: retransmissions, a zero window, an abort after
    /// data; INFO otherwise.
    fn severity(&self) -> Severity {
        let (o, r) = (&self.orig_totals, &self.resp_totals);
        let aborted =
            matches!(self.conn_state, ConnState::Rsto | ConnState::Rstr) && o.bytes + r.bytes > 0;
        if o.retransmissions + r.retransmissions > 0
            || o.zero_window_ns + r.zero_window_ns > 0
            || aborted
        {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    fn message(&self) -> String {
        let (o, r) = (&self.orig_totals, &self.resp_totals);
        format!(
            "connection {}:{} > {}:{} | {} | {} | {:.6}s | pkts {}/{} | bytes {}/{} | retrans {}/{} | {}",
            self.orig.0,
            self.orig.1,
            self.resp.0,
            self.resp.1,
            self.conn_state.as_str(),
            self.history,
            seconds(self.end_ns.saturating_sub(self.start_ns)),
            o.packets,
            r.packets,
            o.bytes,
            r.bytes,
            o.retransmissions,
            r.retransmissions,
            self.close_reason
        )
    }
}

/// The summary as a Cloud Logging entry.
pub(crate) struct SummaryJson<'a> {
    pub s: &'a ConnSummary,
    pub settings: &'a TranslatorSettings,
    pub cached: &'a Cached,
}

impl SummaryJson<'_> {
    pub(crate) fn severity(&self) -> Severity {
        self.s.severity()
    }
}

pub(crate) struct PcapJson<'a>(pub &'a Cached, pub u64);

impl Serialize for PcapJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::ID, self.0.run_id())?;
        m.serialize_entry(f::CTX, self.0.log_name())?;
        let secs = i64::try_from(self.1 / 1_000_000_000).unwrap_or(0);
        let date = chrono::DateTime::from_timestamp(secs, (self.1 % 1_000_000_000) as u32)
            .unwrap_or_default();
        m.serialize_entry(f::DATE, fast::rfc3339(&date).as_str())?;
        m.end()
    }
}

pub(crate) struct Timestamp(pub u64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(f::SECONDS, &(self.0 / 1_000_000_000))?;
        m.serialize_entry(f::NANOS, &(self.0 % 1_000_000_000))?;
        m.end()
    }
}

struct Connection<'a>(&'a ConnSummary);

impl Serialize for Connection<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let (o, r) = (&c.orig_totals, &c.resp_totals);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::ORIG_H, fast::ip(c.orig.0).as_str())?;
        m.serialize_entry(f::ORIG_P, &c.orig.1)?;
        m.serialize_entry(f::RESP_H, fast::ip(c.resp.0).as_str())?;
        m.serialize_entry(f::RESP_P, &c.resp.1)?;
        m.serialize_entry(f::PROTO, "tcp")?;
        m.serialize_entry(f::DURATION, &seconds(c.end_ns.saturating_sub(c.start_ns)))?;
        m.serialize_entry(f::CONN_STATE, c.conn_state.as_str())?;
        m.serialize_entry(f::HISTORY, &c.history)?;
        m.serialize_entry(f::ORIG_PKTS, &o.packets)?;
        m.serialize_entry(f::RESP_PKTS, &r.packets)?;
        m.serialize_entry(f::ORIG_PAYLOAD_BYTES, &o.bytes)?;
        m.serialize_entry(f::RESP_PAYLOAD_BYTES, &r.bytes)?;
        m.serialize_entry(f::ORIG_RETRANSMISSIONS, &o.retransmissions)?;
        m.serialize_entry(f::RESP_RETRANSMISSIONS, &r.retransmissions)?;
        m.serialize_entry(f::ORIG_OUT_OF_ORDER, &o.out_of_order)?;
        m.serialize_entry(f::RESP_OUT_OF_ORDER, &r.out_of_order)?;
        m.serialize_entry(f::ORIG_LOST, &o.lost)?;
        m.serialize_entry(f::RESP_LOST, &r.lost)?;
        if let Some(ns) = c.initial_rtt_ns {
            m.serialize_entry(f::INITIAL_RTT, &seconds(ns))?;
        }
        m.serialize_entry(f::ORIG_ZERO_WINDOW, &seconds(o.zero_window_ns))?;
        m.serialize_entry(f::RESP_ZERO_WINDOW, &seconds(r.zero_window_ns))?;
        m.serialize_entry(f::CLOSE_REASON, c.close_reason)?;
        if c.http_exchanges > 0 {
            m.serialize_entry(f::HTTP_EXCHANGES, &c.http_exchanges)?;
        }
        m.end()
    }
}

/// What every summary entry (connection, exchange) starts with: severity, message, the
/// envelope of its time, flow, Community ID and kind.
pub(crate) struct Head<'a> {
    pub severity: Severity,
    pub message: &'a str,
    pub cached: &'a Cached,
    pub ts_ns: u64,
    pub flow: u64,
    pub community_id: Option<&'a CommunityId>,
    pub kind: &'static str,
}

impl Head<'_> {
    pub(crate) fn serialize<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry(f::SEVERITY, self.severity.as_str())?;
        m.serialize_entry(f::MESSAGE, self.message)?;
        m.serialize_entry(f::PCAP, &PcapJson(self.cached, self.ts_ns))?;
        m.serialize_entry(f::TIMESTAMP, &Timestamp(self.ts_ns))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.flow))?;
        if let Some(id) = self.community_id {
            m.serialize_entry(f::COMMUNITY_ID, id.as_str())?;
        }
        m.serialize_entry(f::KIND, self.kind)
    }
}

impl Serialize for SummaryJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.s;
        let mut m = s.serialize_map(None)?;
        Head {
            severity: self.severity(),
            message: &c.message(),
            cached: self.cached,
            ts_ns: c.end_ns,
            flow: c.flow,
            community_id: c.community_id.as_ref(),
            kind: f::CONNECTION,
        }
        .serialize(&mut m)?;
        m.serialize_entry(f::CONNECTION, &Connection(c))?;
        if let Some(t) = &c.trace {
            crate::http::serialize_trace(&mut m, self.settings.project_id.as_deref(), t)?;
        }
        m.serialize_entry(f::LABELS, self.cached.labels(false))?;
        m.end()
    }
}

/// Whether `PCAP_VERBOSITY=SUMMARY` writes a packet's entry: anomalies (WARNING and above,
/// and the TCP analysis flags that point at loss or reordering). Exchanges (HTTP, gRPC,
/// DNS) have entries of their own.
pub(crate) fn keep_packet(severity: Severity, tcp: Option<&Analysis>) -> bool {
    if severity != Severity::Info {
        return true;
    }
    if let Some(a) = tcp {
        let f = a.flags;
        if [
            Flag::Retransmission,
            Flag::OutOfOrder,
            Flag::LostSegment,
            Flag::AckLostSegment,
            Flag::ZeroWindow,
            Flag::ZeroWindowProbe,
            Flag::RstAfterData,
            Flag::ReusedPorts,
        ]
        .into_iter()
        .any(|x| f.has(x))
        {
            return true;
        }
    }
    // Responses are summarised by their exchange entries (see [`crate::exchange`]).
    false
}
