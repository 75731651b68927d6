//! `L4.analysis`: a segment's [`analyze::tcp_analysis::Analysis`] as JSON, and what of it
//! raises the entry's severity.
//!
//! Keys are Wireshark's field names after `tcp.analysis.` (so `L4.analysis.retransmission`
//! answers what `tcp.analysis.retransmission` filters in Wireshark: every kind of
//! retransmission); a flag is written only when set. Times are seconds, like Wireshark's.

use analyze::tcp_analysis::{Analysis, Flag};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::fields as f;

/// Nanoseconds as seconds.
pub(crate) fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Entries an operator should look at: retransmissions (of any kind), a zero window, a
/// connection aborted after carrying data.
pub(crate) fn is_warning(a: &Analysis) -> bool {
    a.flags.has(Flag::Retransmission)
        || a.flags.has(Flag::ZeroWindow)
        || a.flags.has(Flag::RstAfterData)
}

/// The analysis; INFO leaves out the per-ACK measurements (`acks_frame`, `ack_rtt`): on
/// bulk transfers nearly every ACK has them, and INFO is the level priced per byte.
pub(crate) struct AnalysisJson<'a> {
    pub a: &'a Analysis,
    pub debug: bool,
}

impl AnalysisJson<'_> {
    /// Whether the object would hold anything.
    pub(crate) fn worth_writing(&self) -> bool {
        let a = self.a;
        !a.flags.is_empty()
            || a.dup_ack_num > 0
            || a.initial_rtt_ns.is_some()
            || (self.debug && a.acks_frame.is_some())
    }
}

impl Serialize for AnalysisJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.a;
        let mut m = s.serialize_map(None)?;
        for f in a.flags.iter() {
            m.serialize_entry(f.name(), &true)?;
        }
        if a.dup_ack_num > 0 {
            m.serialize_entry(f::DUPLICATE_ACK_NUM, &a.dup_ack_num)?;
            m.serialize_entry(f::DUPLICATE_ACK_FRAME, &a.dup_ack_frame)?;
        }
        if let (true, Some(f)) = (self.debug, a.acks_frame) {
            m.serialize_entry(f::ACKS_FRAME, &f)?;
            if let Some(ns) = a.ack_rtt_ns {
                m.serialize_entry(f::ACK_RTT, &seconds(ns))?;
            }
        }
        if let Some(ns) = a.initial_rtt_ns {
            m.serialize_entry(f::INITIAL_RTT, &seconds(ns))?;
        }
        m.end()
    }
}

/// Wireshark's Info-column words for the flags that point at a problem, for `message`
/// (duplicate ACKs, keep-alives and full windows are routine; they stay in `L4.analysis`).
pub(crate) fn label(a: &Analysis) -> Option<&'static str> {
    let f = a.flags;
    Some(if f.has(Flag::SpuriousRetransmission) {
        "TCP Spurious Retransmission"
    } else if f.has(Flag::FastRetransmission) {
        "TCP Fast Retransmission"
    } else if f.has(Flag::Retransmission) {
        "TCP Retransmission"
    } else if f.has(Flag::OutOfOrder) {
        "TCP Out-Of-Order"
    } else if f.has(Flag::ZeroWindowProbe) {
        "TCP ZeroWindowProbe"
    } else if f.has(Flag::ZeroWindow) {
        "TCP ZeroWindow"
    } else if f.has(Flag::RstAfterData) {
        "TCP RST after data"
    } else if f.has(Flag::LostSegment) {
        "TCP Previous segment not captured"
    } else if f.has(Flag::AckLostSegment) {
        "TCP ACKed unseen segment"
    } else {
        return None;
    })
}
