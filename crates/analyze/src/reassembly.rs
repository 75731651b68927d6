//! In-order TCP byte streams for the application-layer parsers (HTTP/1.x, HTTP/2).
//!
//! Per connection and direction ([`Streams`], kept in [`crate::FlowState::streams`]) the
//! next sequence number owed to the parser is tracked; each segment gives a [`Outcome`]:
//!
//! - in order: its new bytes, followed by any held segments it made contiguous (the packet
//!   that fills a gap delivers everything behind it: its entry carries what it completed);
//! - already delivered (a retransmission, a duplicate, a keep-alive probe): nothing, so a
//!   message is never parsed twice; a retransmission that overlaps new data delivers only
//!   the new part;
//! - beyond the next sequence number (out of order, or after a segment the capture has not
//!   seen yet): held until the gap fills, within [`MAX_HELD_BYTES`] and
//!   [`MAX_HELD_SEGMENTS`] per connection (all of it counted in the state budget); a segment
//!   over that is dropped and its bytes become a gap.
//!
//! A gap that will not fill is skipped, and the delivery after it says how many bytes are
//! missing ([`Delivery::gap`]) so the parser can skip them or resynchronise: when the peer
//! has acknowledged the bytes after the gap (it received what the capture missed), when the
//! held segment waited [`GAP_TIMEOUT_NS`] of packet time, and for the part of a segment cut
//! by the snap length. A direction's gap is skipped at its sender's next segment (the bytes
//! are then delivered in that direction's order, to the packet of that direction).
//!
//! Each delivered byte keeps the time its segment was first captured ([`Delivery::time_at`]),
//! so latencies are measured from a message's first byte.

use std::borrow::Cow;

/// Most bytes held out of order per connection (both directions).
pub const MAX_HELD_BYTES: usize = 256 * 1024;
/// Most segments held out of order per connection.
pub const MAX_HELD_SEGMENTS: usize = 128;
/// How long (packet time) a held segment waits for its gap before the gap is skipped.
/// Linux retransmits after at least 200 ms, doubling: three losses in a row fit.
pub const GAP_TIMEOUT_NS: u64 = 3_000_000_000;

#[derive(Debug, Clone)]
struct Held {
    seq: u32,
    ts_ns: u64,
    fin: bool,
    data: Box<[u8]>,
}

impl Held {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.data.len() as u32)
    }
}

#[derive(Debug, Clone, Default)]
struct Dir {
    /// The next sequence number owed to the parser (`None` before the first segment).
    next: Option<u32>,
    /// Segments beyond `next`, by sequence number.
    held: Vec<Held>,
    /// The highest ACK number of the peer (what it has received).
    peer_ack: Option<u32>,
    /// Bytes skipped and not reported yet (the next delivery says them).
    gap: u64,
    /// The sender's FIN was delivered.
    fin: bool,
    /// Some byte was delivered.
    delivered: bool,
}

/// `a - b` as a signed distance in sequence space.
fn dist(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// What happened to the streams since the last [`Streams::take_events`] (for counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// Segments held out of order.
    pub held: u64,
    /// Segments (or parts) already delivered: not parsed again.
    pub duplicates: u64,
    /// Gaps skipped.
    pub gaps: u64,
    /// Bytes in those gaps.
    pub gap_bytes: u64,
    /// Bytes of segments not held because the per-connection budget was full (they become
    /// part of a gap).
    pub over_budget_bytes: u64,
}

/// The two directions of one connection.
#[derive(Debug, Clone, Default)]
pub struct Streams {
    dir: [Dir; 2],
    held_bytes: usize,
    events: Events,
}

/// What a segment gives the parser.
#[derive(Debug)]
pub enum Outcome<'p> {
    /// Nothing to parse: no payload and no gap.
    Empty,
    /// Every byte was delivered before (a retransmission or duplicate).
    Duplicate,
    /// Held until an earlier gap fills.
    Held,
    /// Bytes to parse, in order.
    Data(Delivery<'p>),
}

/// Bytes delivered to a parser in order.
#[derive(Debug)]
pub struct Delivery<'p> {
    /// The bytes (the segment's own when nothing else joined them).
    pub bytes: Cow<'p, [u8]>,
    /// Bytes missing before these (skipped gaps), 0 when the stream is whole.
    pub gap: u64,
    /// Held segments delivered with this one.
    pub joined: usize,
    /// When each byte was first captured.
    pub stamps: Stamps,
    /// The sender's FIN ends these bytes.
    pub fin: bool,
}

impl Delivery<'_> {
    /// When the byte at `offset` was first captured (ns).
    pub fn time_at(&self, offset: usize) -> u64 {
        self.stamps.at(offset)
    }
}

/// When the bytes of a delivery were first captured: from offset 0 at `first`, and from
/// each offset of `later` (ascending) at its time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps {
    /// Time of the first byte (ns).
    pub first: u64,
    later: Vec<(usize, u64)>,
}

impl Stamps {
    /// Every byte captured at `ts_ns` (one segment).
    pub fn at_once(ts_ns: u64) -> Self {
        Stamps {
            first: ts_ns,
            later: Vec::new(),
        }
    }

    /// When the byte at `offset` was first captured (ns).
    pub fn at(&self, offset: usize) -> u64 {
        self.later
            .iter()
            .take_while(|(o, _)| *o <= offset)
            .last()
            .map_or(self.first, |(_, t)| *t)
    }

    /// The stamps of the bytes from `offset` on.
    pub fn from(&self, offset: usize) -> Stamps {
        Stamps {
            first: self.at(offset),
            later: self
                .later
                .iter()
                .filter(|(o, _)| *o > offset)
                .map(|(o, t)| (o - offset, *t))
                .collect(),
        }
    }
}

/// A TCP segment as the streams see it.
#[derive(Debug, Clone, Copy)]
pub struct Seg<'p> {
    /// Sequence number.
    pub seq: u32,
    /// ACK number, when the ACK flag is set.
    pub ack: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The captured payload.
    pub payload: &'p [u8],
    /// Payload length on the wire (more than captured when the snap length cut it).
    pub wire_len: u32,
    /// Capture time (ns).
    pub ts_ns: u64,
}

impl Streams {
    /// Heap bytes held (for the state budget).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.held_bytes
            + self
                .dir
                .iter()
                .map(|d| d.held.capacity() * std::mem::size_of::<Held>())
                .sum::<usize>()
    }

    /// Bytes held out of order.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Events {
        std::mem::take(&mut self.events)
    }

    /// Takes a segment sent by side `i` (0 or 1).
    pub fn on_segment<'p>(&mut self, i: usize, seg: &Seg<'p>) -> Outcome<'p> {
        let o = 1 - i.min(1);
        // What the sender acknowledges of the other direction.
        if let (Some(ack), Some(d)) = (seg.ack, self.dir.get_mut(o)) {
            if d.peer_ack.is_none_or(|a| dist(ack, a) > 0) {
                d.peer_ack = Some(ack);
            }
        }
        if seg.rst {
            self.clear();
            return Outcome::Empty;
        }
        let Some(d) = self.dir.get_mut(i) else {
            return Outcome::Empty;
        };
        if seg.syn {
            // A SYN (or a retransmitted one) starts the stream after its sequence number.
            let freed: usize = d.held.iter().map(|h| h.data.len()).sum();
            *d = Dir {
                next: Some(seg.seq.wrapping_add(1)),
                peer_ack: d.peer_ack,
                ..Dir::default()
            };
            self.held_bytes = self.held_bytes.saturating_sub(freed);
            return Outcome::Empty;
        }
        let next = *d.next.get_or_insert(seg.seq);
        let mut out = Builder::default();
        // 1. A gap the peer acknowledged, or that waited too long, is skipped first, unless
        //    this segment fills it.
        let wire = (seg.wire_len as usize).max(seg.payload.len()) as i64;
        let fills = dist(seg.seq, next) <= 0 && dist(seg.seq, next) + wire > 0;
        if let (Some(first), false) = (d.held.first(), fills) {
            let acked = d.peer_ack.is_some_and(|a| dist(a, first.seq) >= 0);
            let expired = seg.ts_ns.saturating_sub(first.ts_ns) >= GAP_TIMEOUT_NS;
            if acked || expired {
                let skipped = dist(first.seq, next).max(0) as u64;
                d.gap += skipped;
                d.next = Some(first.seq);
                self.events.gaps += 1;
                self.events.gap_bytes += skipped;
                self.drain(i, &mut out);
            }
        }
        let Some(d) = self.dir.get_mut(i) else {
            return Outcome::Empty;
        };
        let next = d.next.unwrap_or(seg.seq);
        let len = seg.payload.len();
        let wire = (seg.wire_len as usize).max(len);
        let mut start = dist(seg.seq, next);
        if wire == 0 && !seg.fin {
            return out.finish(d, Outcome::Empty);
        }
        if start < 0 && wire > 0 && !d.delivered && d.held.is_empty() {
            // Data from before the next sequence number while nothing was delivered cannot
            // repeat delivered bytes: the SYN seen belonged to an earlier attempt, or the
            // sender numbers oddly. The stream starts here.
            d.next = Some(seg.seq);
            start = 0;
        }
        let end = start + wire as i64;
        if end <= 0 && !(seg.fin && end == 0 && !d.fin) {
            if wire > 0 {
                self.events.duplicates += 1;
            }
            let d = self.dir.get_mut(i);
            return match d {
                Some(d) => out.finish(d, Outcome::Duplicate),
                None => Outcome::Empty,
            };
        }
        if start > 0 {
            // Out of order: hold it (whole segments only; a cut one becomes a gap).
            let fits = self.held_bytes + len <= MAX_HELD_BYTES
                && d.held.len() < MAX_HELD_SEGMENTS
                && len == wire;
            if !fits {
                self.events.over_budget_bytes += wire as u64;
                return out.finish(d, Outcome::Held);
            }
            let pos = d
                .held
                .iter()
                .position(|h| dist(h.seq, seg.seq) >= 0)
                .unwrap_or(d.held.len());
            if let Some(h) = d.held.get(pos) {
                if h.seq == seg.seq && h.data.len() >= len {
                    self.events.duplicates += 1;
                    return out.finish(d, Outcome::Duplicate);
                }
                if h.seq == seg.seq {
                    let old = d.held.remove(pos);
                    self.held_bytes = self.held_bytes.saturating_sub(old.data.len());
                }
            }
            d.held.insert(
                pos,
                Held {
                    seq: seg.seq,
                    ts_ns: seg.ts_ns,
                    fin: seg.fin,
                    data: seg.payload.into(),
                },
            );
            self.held_bytes += len;
            self.events.held += 1;
            return out.finish(d, Outcome::Held);
        }
        // In order, maybe overlapping what was delivered.
        let skip = usize::try_from(-start).unwrap_or(0);
        if skip > 0 && wire > 0 {
            self.events.duplicates += 1;
        }
        let new = seg.payload.get(skip.min(len)..).unwrap_or(&[]);
        d.delivered |= !new.is_empty();
        out.push_borrowed(new, seg.ts_ns, d.gap);
        d.gap = 0;
        d.next = Some(seg.seq.wrapping_add(wire as u32));
        if wire > len {
            // The snap length cut the segment: the rest is a gap.
            let cut = (wire - len.max(skip)) as u64;
            d.gap += cut;
            self.events.gaps += 1;
            self.events.gap_bytes += cut;
        }
        if seg.fin {
            d.fin = true;
            out.fin = true;
            d.next = d.next.map(|n| n.wrapping_add(1));
        }
        self.drain(i, &mut out);
        match self.dir.get_mut(i) {
            Some(d) => out.finish(d, Outcome::Empty),
            None => Outcome::Empty,
        }
    }

    /// Delivers the held segments of side `i` that are now contiguous.
    fn drain(&mut self, i: usize, out: &mut Builder<'_>) {
        let Some(d) = self.dir.get_mut(i) else {
            return;
        };
        while let Some(h) = d.held.first() {
            let Some(next) = d.next else {
                break;
            };
            let start = dist(h.seq, next);
            if start > 0 {
                break;
            }
            let h = d.held.remove(0);
            self.held_bytes = self.held_bytes.saturating_sub(h.data.len());
            if dist(h.end(), next) > 0 || (h.fin && !d.fin) {
                let skip = usize::try_from(-start).unwrap_or(0).min(h.data.len());
                out.push_owned(h.data.get(skip..).unwrap_or(&[]), h.ts_ns, d.gap);
                d.delivered = true;
                d.gap = 0;
                out.joined += 1;
                if dist(h.end(), next) > 0 {
                    d.next = Some(h.end());
                }
                if h.fin {
                    d.fin = true;
                    out.fin = true;
                    d.next = d.next.map(|n| n.wrapping_add(1));
                }
            }
        }
    }

    /// Forgets both directions (RST, or the state budget).
    pub fn clear(&mut self) {
        self.dir = Default::default();
        self.held_bytes = 0;
    }
}

#[derive(Default)]
struct Builder<'p> {
    bytes: Option<Cow<'p, [u8]>>,
    stamps: Stamps,
    stamped: bool,
    gap: u64,
    joined: usize,
    fin: bool,
}

impl<'p> Builder<'p> {
    fn push_borrowed(&mut self, b: &'p [u8], ts: u64, gap: u64) {
        self.note(ts, gap);
        match &mut self.bytes {
            None => self.bytes = Some(Cow::Borrowed(b)),
            Some(c) => c.to_mut().extend_from_slice(b),
        }
    }

    fn push_owned(&mut self, b: &[u8], ts: u64, gap: u64) {
        self.note(ts, gap);
        match &mut self.bytes {
            None => self.bytes = Some(Cow::Owned(b.to_vec())),
            Some(c) => c.to_mut().extend_from_slice(b),
        }
    }

    fn note(&mut self, ts: u64, gap: u64) {
        let at = self.bytes.as_ref().map_or(0, |b| b.len());
        if at == 0 {
            // Gaps skipped before any byte of this delivery are reported with it.
            self.gap += gap;
        }
        if !self.stamped {
            self.stamps.first = ts;
            self.stamped = true;
        } else if self
            .stamps
            .later
            .last()
            .map_or(self.stamps.first, |(_, t)| *t)
            != ts
        {
            self.stamps.later.push((at, ts));
        }
    }

    /// The delivery, or `otherwise` when nothing was delivered (a gap skipped without bytes
    /// stays pending in `d`).
    fn finish<'x>(self, d: &mut Dir, otherwise: Outcome<'x>) -> Outcome<'x>
    where
        'p: 'x,
    {
        match self.bytes {
            Some(bytes) if !bytes.is_empty() => Outcome::Data(Delivery {
                bytes,
                gap: self.gap,
                joined: self.joined,
                stamps: self.stamps,
                fin: self.fin,
            }),
            _ => {
                d.gap += self.gap;
                otherwise
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn seg(seq: u32, payload: &[u8], ts_ms: u64) -> Seg<'_> {
        Seg {
            seq,
            ack: None,
            syn: false,
            fin: false,
            rst: false,
            payload,
            wire_len: payload.len() as u32,
            ts_ns: ts_ms * MS,
        }
    }

    fn syn(seq: u32) -> Seg<'static> {
        Seg {
            syn: true,
            ..seg(seq, b"", 0)
        }
    }

    fn data(o: Outcome<'_>) -> (Vec<u8>, u64, usize) {
        match o {
            Outcome::Data(d) => (d.bytes.to_vec(), d.gap, d.joined),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn in_order_bytes_are_borrowed_and_retransmissions_are_not_delivered_again() {
        let mut s = Streams::default();
        assert!(matches!(s.on_segment(0, &syn(999)), Outcome::Empty));
        match s.on_segment(0, &seg(1000, b"GET / HTTP/1.1\r\n", 1)) {
            Outcome::Data(d) => assert!(matches!(d.bytes, Cow::Borrowed(_))),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            s.on_segment(0, &seg(1000, b"GET / HTTP/1.1\r\n", 2)),
            Outcome::Duplicate
        ));
        // A retransmission with new bytes behind the old ones delivers only the new part.
        let (b, gap, _) = data(s.on_segment(0, &seg(1007, b"TTP/1.1\r\nHost: x\r\n", 3)));
        assert_eq!((b.as_slice(), gap), (&b"Host: x\r\n"[..], 0));
        assert_eq!(s.take_events().duplicates, 2);
    }

    #[test]
    fn out_of_order_waits_for_its_gap_and_the_filler_delivers_both() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(0));
        assert!(matches!(
            s.on_segment(0, &seg(6, b"world", 1)),
            Outcome::Held
        ));
        assert_eq!(s.held_bytes(), 5);
        // A duplicate of the held segment is not held twice.
        assert!(matches!(
            s.on_segment(0, &seg(6, b"world", 2)),
            Outcome::Duplicate
        ));
        match s.on_segment(0, &seg(1, b"hello", 3)) {
            Outcome::Data(d) => {
                assert_eq!(&d.bytes[..], b"helloworld");
                assert_eq!(d.joined, 1);
                // Each byte keeps the time it was first captured.
                assert_eq!(d.time_at(0), 3 * MS);
                assert_eq!(d.time_at(5), MS);
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(s.held_bytes(), 0);
        let e = s.take_events();
        assert_eq!((e.held, e.duplicates, e.gaps), (1, 1, 0));
    }

    #[test]
    fn a_gap_the_peer_acknowledged_is_skipped_and_reported() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(0));
        assert_eq!(data(s.on_segment(0, &seg(1, b"abc", 1))).0, b"abc");
        assert!(matches!(
            s.on_segment(0, &seg(10, b"xyz", 2)),
            Outcome::Held
        ));
        // The peer acknowledges past the held bytes: the 6 bytes before them never come.
        let ack = Seg {
            ack: Some(13),
            ..seg(500, b"", 3)
        };
        assert!(matches!(s.on_segment(1, &ack), Outcome::Empty));
        let (b, gap, joined) = data(s.on_segment(0, &seg(13, b"!", 4)));
        assert_eq!((b.as_slice(), gap, joined), (&b"xyz!"[..], 6, 1));
        let e = s.take_events();
        assert_eq!((e.gaps, e.gap_bytes), (1, 6));
    }

    #[test]
    fn the_segment_filling_an_acknowledged_gap_is_delivered_not_skipped() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(0));
        assert!(matches!(s.on_segment(0, &seg(4, b"def", 1)), Outcome::Held));
        let ack = Seg {
            ack: Some(7),
            ..seg(500, b"", 2)
        };
        s.on_segment(1, &ack);
        let (b, gap, _) = data(s.on_segment(0, &seg(1, b"abc", 3)));
        assert_eq!((b.as_slice(), gap), (&b"abcdef"[..], 0));
    }

    #[test]
    fn a_gap_that_waits_too_long_is_skipped() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(0));
        assert!(matches!(
            s.on_segment(0, &seg(4, b"late", 10)),
            Outcome::Held
        ));
        assert!(matches!(s.on_segment(0, &seg(8, b"r", 20)), Outcome::Held));
        let (b, gap, _) = data(s.on_segment(0, &seg(9, b"!", 10 + GAP_TIMEOUT_NS / MS)));
        assert_eq!((b.as_slice(), gap), (&b"later!"[..], 3));
    }

    #[test]
    fn held_bytes_are_bounded_and_over_budget_bytes_become_a_gap() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(0));
        let chunk = vec![b'x'; 1000];
        let mut seq = 1001u32;
        let mut held = 0;
        for _ in 0..400 {
            if matches!(s.on_segment(0, &seg(seq, &chunk, 1)), Outcome::Held) {
                held += 1;
            }
            seq += 1000;
        }
        assert_eq!(held, 400);
        assert!(s.held_bytes() <= MAX_HELD_BYTES);
        assert_eq!(s.dir[0].held.len(), MAX_HELD_SEGMENTS);
        assert!(s.take_events().over_budget_bytes > 0);
        // The first segment fills the first gap: the held run is delivered.
        let (b, gap, joined) = data(s.on_segment(0, &seg(1, &chunk, 2)));
        assert_eq!(
            (b.len(), gap, joined),
            (1000 * (1 + MAX_HELD_SEGMENTS), 0, 128)
        );
        // The segments not held are a gap the peer's ACK (or the timeout) skips later.
        let ack = Seg {
            ack: Some(seq),
            ..seg(0, b"", 3)
        };
        s.on_segment(1, &ack);
        assert!(matches!(s.on_segment(0, &seg(seq, b"", 4)), Outcome::Empty));
        assert_eq!(s.held_bytes(), 0);
    }

    #[test]
    fn snap_length_cut_and_sequence_wrap() {
        let mut s = Streams::default();
        s.on_segment(0, &syn(u32::MAX - 2));
        let cut = Seg {
            wire_len: 10,
            ..seg(u32::MAX - 1, b"abcd", 1)
        };
        assert_eq!(data(s.on_segment(0, &cut)).0, b"abcd");
        // Across the wrap, the next bytes report the 6 the capture cut.
        let (b, gap, _) = data(s.on_segment(0, &seg(8, b"next", 2)));
        assert_eq!((b.as_slice(), gap), (&b"next"[..], 6));
        // RST forgets everything.
        assert!(matches!(s.on_segment(0, &seg(100, b"x", 3)), Outcome::Held));
        let rst = Seg {
            rst: true,
            ..seg(12, b"", 4)
        };
        s.on_segment(1, &rst);
        assert_eq!(s.held_bytes(), 0);
    }
}
