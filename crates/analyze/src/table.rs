//! Per-flow state in a bounded table.
//!
//! [`FlowTable`] maps flow ids to a value and never grows past its cap: entries idle longer
//! than the idle timeout (measured in *packet* time, so reading an old capture behaves like
//! the live one) are swept periodically, and when the table is full the oldest eighth is
//! evicted at once (amortised O(1) per insert even under a SYN flood). Evictions are counted.
//!
//! [`FlowState`] is what the translator keeps per connection: which side opened it, the
//! window scales of the handshake, FIN/RST, whether the operation was closed, what the
//! application layer is, and the HTTP/1.x ([`crate::http1::Conn`]) or HTTP/2
//! ([`crate::http2::Conn`]) connection state, boxed and only allocated for HTTP flows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use wire::tcp;

use crate::flow::Side;

/// Flow ids are already well-mixed 64-bit hashes: use them as they are.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Slot<V> {
    last_ns: u64,
    value: V,
}

/// Bytes one flow costs in the table besides what its value holds on the heap: the slot
/// and hashbrown's control byte, with the load factor's slack.
pub fn slot_bytes<V>() -> usize {
    (std::mem::size_of::<(u64, Slot<V>)>() + 1) * 8 / 7
}

/// Why the table removed a flow by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Idle longer than the idle timeout.
    Idle,
    /// The table was full.
    Cap,
}

impl Removal {
    /// `idle` or `cap`.
    pub fn name(self) -> &'static str {
        match self {
            Removal::Idle => "idle",
            Removal::Cap => "cap",
        }
    }
}

/// A map from flow id to `V` with a cap and idle eviction.
pub struct FlowTable<V> {
    map: HashMap<u64, Slot<V>, BuildHasherDefault<IdHasher>>,
    cap: usize,
    idle_ns: u64,
    next_sweep_ns: u64,
    scratch: Vec<u64>,
    /// What a removed value weighs in the caller's accounting ([`Self::weighed`]).
    weigh: fn(&V) -> usize,
    removed_weight: usize,
    lru: Vec<(u64, u64)>,
    keep_removed: bool,
    removed: Vec<(u64, V, Removal)>,
    /// Entries created.
    pub created: u64,
    /// Entries evicted because they were idle.
    pub evicted_idle: u64,
    /// Entries evicted because the table was full.
    pub evicted_cap: u64,
}

impl<V> FlowTable<V> {
    /// A table holding at most `cap` flows (at least 1), evicting flows idle for `idle`.
    pub fn new(cap: usize, idle: Duration) -> Self {
        FlowTable {
            map: HashMap::default(),
            cap: cap.max(1),
            idle_ns: u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX).max(1),
            next_sweep_ns: 0,
            scratch: Vec::new(),
            weigh: |_| 0,
            removed_weight: 0,
            lru: Vec::new(),
            keep_removed: false,
            removed: Vec::new(),
            created: 0,
            evicted_idle: 0,
            evicted_cap: 0,
        }
    }

    /// The table with `weigh` telling what each value weighs in the caller's byte
    /// accounting: the weight of values the table removes itself (idle, cap) is summed for
    /// [`Self::take_removed_weight`].
    pub fn weighed(mut self, weigh: fn(&V) -> usize) -> Self {
        self.weigh = weigh;
        self
    }

    /// The weight of values removed by the table since the last call.
    pub fn take_removed_weight(&mut self) -> usize {
        std::mem::take(&mut self.removed_weight)
    }

    /// Calls `shed` on flows from the least recently used on, until the bytes it reports
    /// freed reach `want` or every flow was offered; `shed` may empty a value's state
    /// (returns the bytes freed) or ask for the flow to be removed altogether (`true`).
    /// Returns the bytes freed and the flows touched.
    pub fn shed_lru(
        &mut self,
        want: usize,
        mut shed: impl FnMut(u64, &mut V) -> (usize, bool),
    ) -> (usize, u64) {
        let mut lru = std::mem::take(&mut self.lru);
        lru.clear();
        lru.extend(self.map.iter().map(|(id, s)| (s.last_ns, *id)));
        lru.sort_unstable();
        let mut freed = 0usize;
        let mut touched = 0u64;
        for (_, id) in &lru {
            if freed >= want {
                break;
            }
            let Some(slot) = self.map.get_mut(id) else {
                continue;
            };
            let (bytes, remove) = shed(*id, &mut slot.value);
            if bytes > 0 || remove {
                touched += 1;
            }
            freed += bytes;
            if remove {
                self.map.remove(id);
            }
        }
        // Do not keep a table-sized scratch buffer around after a burst.
        if lru.capacity() <= 4096 {
            self.lru = lru;
        }
        (freed, touched)
    }

    /// Number of flows held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cap.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The value of flow `id`, created with `init` when absent; `true` when it was created.
    /// `now_ns` is the packet's timestamp in nanoseconds.
    pub fn entry(&mut self, id: u64, now_ns: u64, init: impl FnOnce() -> V) -> (&mut V, bool) {
        if now_ns >= self.next_sweep_ns {
            self.sweep(now_ns);
        }
        let created = !self.map.contains_key(&id);
        if created {
            if self.map.len() >= self.cap {
                self.sweep(now_ns);
            }
            if self.map.len() >= self.cap {
                self.evict_oldest();
            }
            self.created += 1;
        }
        let slot = self.map.entry(id).or_insert_with(|| Slot {
            last_ns: now_ns,
            value: init(),
        });
        slot.last_ns = slot.last_ns.max(now_ns);
        (&mut slot.value, created)
    }

    /// The value of flow `id`, if held.
    pub fn get(&self, id: u64) -> Option<&V> {
        self.map.get(&id).map(|s| &s.value)
    }

    /// Forgets flow `id`.
    pub fn remove(&mut self, id: u64) -> Option<V> {
        self.map.remove(&id).map(|s| s.value)
    }

    /// Every flow held, in no order (to summarise what is left at the end).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        self.map.iter_mut().map(|(id, s)| (*id, &mut s.value))
    }

    /// The table keeps the values it removes itself (idle, cap) for
    /// [`Self::take_removed`] instead of dropping them (to summarise evicted flows).
    pub fn keeping_removed(mut self, keep: bool) -> Self {
        self.keep_removed = keep;
        self
    }

    /// The values removed by the table since the last call (with [`Self::keeping_removed`]).
    pub fn take_removed(&mut self) -> Vec<(u64, V, Removal)> {
        std::mem::take(&mut self.removed)
    }

    /// Removes the flows whose last-seen time `remove` accepts; returns how many.
    fn remove_where(&mut self, why: Removal, remove: impl Fn(u64) -> bool) -> usize {
        let before = self.map.len();
        let (weigh, mut weight) = (self.weigh, 0usize);
        if self.keep_removed {
            let ids: Vec<u64> = self
                .map
                .iter()
                .filter(|(_, s)| remove(s.last_ns))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(s) = self.map.remove(&id) {
                    weight += weigh(&s.value);
                    self.removed.push((id, s.value, why));
                }
            }
        } else {
            self.map.retain(|_, s| {
                let gone = remove(s.last_ns);
                if gone {
                    weight += weigh(&s.value);
                }
                !gone
            });
        }
        self.removed_weight += weight;
        before - self.map.len()
    }

    /// Drops every flow idle for longer than the idle timeout at `now_ns`.
    pub fn sweep(&mut self, now_ns: u64) {
        let idle = self.idle_ns;
        let n = self.remove_where(Removal::Idle, |last_ns| {
            now_ns.saturating_sub(last_ns) >= idle
        });
        self.evicted_idle += n as u64;
        // Sweep a few times per idle period: cheap, and bounds how long dead flows linger.
        self.next_sweep_ns = now_ns.saturating_add((idle / 8).max(1_000_000_000));
    }

    fn evict_oldest(&mut self) {
        self.scratch.clear();
        self.scratch.extend(self.map.values().map(|s| s.last_ns));
        let k = (self.cap / 8).max(1).min(self.scratch.len());
        if k == 0 {
            return;
        }
        let (_, threshold, _) = self.scratch.select_nth_unstable(k - 1);
        let threshold = *threshold;
        let n = self.remove_where(Removal::Cap, |last_ns| last_ns <= threshold);
        self.evicted_cap += n as u64;
        // Do not keep a cap-sized scratch buffer around after a burst.
        if self.scratch.capacity() > 4096 {
            self.scratch = Vec::new();
        }
    }
}

/// What the application layer of a flow has been recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L7State {
    /// Nothing recognised yet.
    #[default]
    Unknown,
    /// DNS.
    Dns,
    /// TLS records seen.
    Tls,
    /// Payload seen, not recognised.
    Opaque,
    /// HTTP/1.x messages seen (state in [`FlowState::http`]).
    Http,
    /// HTTP/2 frames seen (state in [`FlowState::h2`]).
    Http2,
}

/// Per-connection state.
#[derive(Debug, Clone, Default)]
pub struct FlowState {
    /// Timestamp of the first packet (ns).
    pub first_ns: u64,
    /// Packets seen.
    pub packets: u64,
    /// The side that sent the SYN (the client), when the handshake was seen.
    pub client: Option<Side>,
    /// Window-scale shift offered in each side's SYN.
    pub wscale: [Option<u8>; 2],
    /// Whether each side's SYN was seen.
    pub syn: [bool; 2],
    /// Whether each side sent a FIN.
    pub fin: [bool; 2],
    /// The flow's operation was closed (RST, or the last ACK after both FINs).
    pub closed: bool,
    /// Application-layer state.
    pub l7: L7State,
    /// HTTP/1.x state (allocated on the first HTTP message; bounded, see [`crate::http1`]).
    pub http: Option<Box<crate::http1::Conn>>,
    /// HTTP/2 state (allocated when the flow is recognised as HTTP/2; bounded, see
    /// [`crate::http2`]).
    pub h2: Option<Box<crate::http2::Conn>>,
    /// Its application-layer state was dropped to stay within the state budget: HTTP/2
    /// resumes with an HPACK decoder that knows it missed entries.
    pub state_evicted: bool,
    /// Bytes this flow is accounted for in the state budget (kept by the translator).
    pub accounted: usize,
    /// Sequence tracking and `tcp.analysis` state (see [`crate::tcp_analysis`]), allocated
    /// on the first TCP segment.
    pub tcp: Option<Box<crate::tcp_analysis::Tracker>>,
    /// Each direction's in-order bytes for the HTTP parsers (see [`crate::reassembly`]),
    /// allocated on a SYN or the first payload of a TCP flow that is not TLS or DNS.
    pub streams: Option<Box<crate::reassembly::Streams>>,
    /// DNS queries waiting for their response, `(id, time)`, for exchange summaries
    /// (bounded by the renderer).
    pub dns_queries: Vec<(u16, u64)>,
}

/// What a TCP segment means for its connection's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpEvent {
    /// This segment starts the operation (a new SYN on a closed flow).
    pub restarted: bool,
    /// This segment ends the operation.
    pub last: bool,
}

impl FlowState {
    /// A fresh state for a flow first seen at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        FlowState {
            first_ns: now_ns,
            ..FlowState::default()
        }
    }

    /// Updates the TCP facts with a segment sent by `side`.
    pub fn track_tcp(&mut self, side: Side, seg: &tcp::Packet<'_>, now_ns: u64) -> TcpEvent {
        let f = seg.flags();
        let mut ev = TcpEvent::default();
        let i = side.index();
        if f.syn() && !f.ack() && (self.closed || self.fin.iter().any(|x| *x)) {
            // Port reuse: a new connection on the same 5-tuple (same accounting entry).
            let accounted = self.accounted;
            // The tracker tells a new connection from a retransmitted SYN itself.
            let tcp = std::mem::take(&mut self.tcp);
            *self = FlowState::new(now_ns);
            self.accounted = accounted;
            self.tcp = tcp;
            ev.restarted = true;
        }
        self.packets += 1;
        if f.syn() {
            if let Some(s) = self.syn.get_mut(i) {
                *s = true;
            }
            let ws = seg.options().flatten().find_map(|o| match o {
                tcp::TcpOption::WindowScale(s) => Some(s.min(14)),
                _ => None,
            });
            if let Some(w) = self.wscale.get_mut(i) {
                *w = ws;
            }
            if !f.ack() {
                self.client = Some(side);
            } else {
                self.client.get_or_insert(side.other());
            }
        }
        if self.closed {
            return ev;
        }
        if f.rst() {
            self.closed = true;
            ev.last = true;
        } else if f.fin() {
            if let Some(x) = self.fin.get_mut(i) {
                *x = true;
            }
        } else if self.fin == [true, true] && f.ack() && seg.payload().is_empty() {
            self.closed = true;
            ev.last = true;
        }
        ev
    }

    /// Heap bytes of the application-layer state (HTTP/1, HTTP/2).
    pub fn heap_bytes(&self) -> usize {
        self.http.as_ref().map_or(0, |c| c.heap_bytes())
            + self.h2.as_ref().map_or(0, |c| c.heap_bytes())
            + self.tcp.as_ref().map_or(0, |t| t.heap_bytes())
            + self.streams.as_ref().map_or(0, |s| s.heap_bytes())
            + self.dns_queries.capacity() * std::mem::size_of::<(u16, u64)>()
    }

    /// Drops the application-layer state (the state budget is exceeded); returns the heap
    /// bytes freed. Later packets of the flow are marked ([`Self::state_evicted`]).
    pub fn evict_l7(&mut self) -> usize {
        let freed = self.http.take().map_or(0, |c| c.heap_bytes())
            + self.h2.take().map_or(0, |c| c.heap_bytes())
            + self.tcp.as_mut().map_or(0, |t| t.shed())
            + self.streams.take().map_or(0, |s| s.heap_bytes());
        if freed > 0 {
            self.state_evicted = true;
        }
        freed
    }

    /// The trace of the connection's latest HTTP exchange (for its ACK/FIN/RST segments).
    pub fn http_trace(&self) -> Option<crate::http1::Trace> {
        match &self.h2 {
            Some(c) => c.current,
            None => self.http.as_ref().and_then(|c| c.current),
        }
    }

    /// Frees HTTP state a segment ends: a RST or a closed operation drops it all, a FIN the
    /// sender's unfinished message. Call after the segment's entry took [`Self::http_trace`].
    pub fn http_segment_done(&mut self, side: Side, seg: &tcp::Packet<'_>) {
        let f = seg.flags();
        if f.rst() || self.closed {
            self.http = None;
            self.h2 = None;
            self.streams = None;
        } else if f.fin() {
            if let Some(c) = self.http.as_mut() {
                c.on_fin(side);
            }
            if let Some(c) = self.h2.as_mut() {
                c.on_fin(side);
            }
        }
    }

    /// The window-scale shift that applies to segments sent by `side`: only when both SYNs
    /// were seen and both carried the option (RFC 7323 §2.2).
    pub fn window_shift(&self, side: Side) -> Option<u8> {
        match (self.syn, self.wscale) {
            ([true, true], [Some(a), Some(b)]) => Some(if side == Side::A { a } else { b }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn idle_eviction_by_packet_time() {
        let mut t: FlowTable<u32> = FlowTable::new(100, Duration::from_secs(10));
        assert!(t.entry(1, 0, || 7).1);
        assert!(!t.entry(1, 5 * S, || 8).1);
        assert_eq!(*t.entry(1, 6 * S, || 9).0, 7);
        t.entry(2, 6 * S, || 0);
        t.sweep(15 * S);
        assert_eq!(t.len(), 2, "last seen at 6 s, idle 9 s");
        t.sweep(17 * S);
        assert!(t.is_empty());
        assert_eq!(t.evicted_idle, 2);
    }

    #[test]
    fn cap_is_never_exceeded() {
        let mut t: FlowTable<u64> = FlowTable::new(1000, Duration::from_secs(3600));
        for i in 0..100_000u64 {
            t.entry(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i, || i);
            assert!(t.len() <= 1000);
        }
        assert!(t.evicted_cap >= 99_000);
        assert_eq!(t.created, 100_000);
        // The newest flows survive.
        assert!(t
            .get(99_999u64.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .is_some());
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut t: FlowTable<u8> = FlowTable::new(10, Duration::from_secs(1));
        t.entry(1, 100 * S, || 1);
        t.entry(2, 5 * S, || 2);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn shed_lru_offers_the_least_recently_used_first_and_weighs_removals() {
        let mut t: FlowTable<usize> =
            FlowTable::new(1000, Duration::from_secs(100)).weighed(|v| *v);
        for i in 0..10u64 {
            t.entry(i, i * S, || 100);
        }
        // Flow 0 is used again: the oldest are now 1, 2, 3…
        t.entry(0, 20 * S, || 0);
        let mut seen = Vec::new();
        let (freed, touched) = t.shed_lru(250, |_, v| {
            seen.push(*v);
            let n = std::mem::take(v);
            (n, false)
        });
        assert_eq!((freed, touched), (300, 3));
        assert_eq!(seen.len(), 3);
        assert_eq!(t.get(0), Some(&100), "the recently used flow is kept");
        assert_eq!(t.get(1), Some(&0), "the oldest gave its state");
        // Removing whole flows, oldest first.
        let (_, removed) = t.shed_lru(1, |_, v| (*v + 1, true));
        assert_eq!(removed, 1);
        assert!(t.get(1).is_none());
        // What the table evicts by itself is weighed for the caller.
        t.sweep(200 * S);
        assert_eq!(t.len(), 0);
        assert_eq!(t.take_removed_weight(), 100 + 6 * 100);
        assert_eq!(t.take_removed_weight(), 0);
    }
}
