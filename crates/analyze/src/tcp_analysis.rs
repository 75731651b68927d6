//! Per-direction TCP sequence tracking and Wireshark's `tcp.analysis` flags.
//!
//! [`Tracker`] is the per-connection part (one [`Direction`] per side, the handshake times);
//! [`Tracker::analyze`] takes one [`Segment`] and returns its [`Analysis`]: the flags, the
//! duplicate-ACK count and the frame it repeats, the frame and RTT this segment ACKs, and the
//! initial RTT when this segment completes the handshake.
//!
//! The flags are defined as Wireshark defines them (`tcp_analyze_sequence_number` in its
//! TCP dissector, and its User's Guide section "TCP Analysis"), in the same order and with
//! the same state, so an entry can be compared with `tshark -e tcp.analysis.*` segment by
//! segment: absolute sequence numbers, the raw (unscaled) window, 0 meaning "not seen yet".
//! Two differences, both for memory: at most [`MAX_UNACKED`] unacknowledged segments are
//! remembered per direction (Wireshark keeps 1000), which only affects `ack_rtt`; and the
//! list can be dropped under the state budget ([`Tracker::shed`]), after which ACK RTTs of
//! the segments it held are not reported.
//!
//! Frame numbers are the capture's packet numbers (`pcap.num`), as given by the caller.

/// Unacknowledged segments remembered per direction, for `ack_rtt`.
pub const MAX_UNACKED: usize = 256;

/// One analysis flag (a bit of [`Flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Flag {
    /// `tcp.analysis.retransmission`: data (or SYN/FIN) that does not advance the
    /// sequence number. Set with each of the two kinds below too, as Wireshark's filter is.
    Retransmission = 1 << 0,
    /// `tcp.analysis.fast_retransmission`: a retransmission of the sequence number the peer
    /// sent at least two duplicate ACKs for, within 20 ms of the last of them.
    FastRetransmission = 1 << 1,
    /// `tcp.analysis.spurious_retransmission`: data the peer had already acknowledged.
    SpuriousRetransmission = 1 << 2,
    /// `tcp.analysis.out_of_order`: an earlier sequence number, within one initial RTT
    /// (3 ms when unknown) of the highest one.
    OutOfOrder = 1 << 3,
    /// `tcp.analysis.lost_segment` ("previous segment not captured"): beyond the next
    /// expected sequence number.
    LostSegment = 1 << 4,
    /// `tcp.analysis.ack_lost_segment` ("ACKed unseen segment"): acknowledges data the
    /// capture never saw.
    AckLostSegment = 1 << 5,
    /// `tcp.analysis.duplicate_ack`: same ACK, window and sequence as the last segment,
    /// no data.
    DuplicateAck = 1 << 6,
    /// `tcp.analysis.zero_window`: the sender's receive window is 0.
    ZeroWindow = 1 << 7,
    /// `tcp.analysis.zero_window_probe`: one byte at the next sequence number while the
    /// peer's window is 0.
    ZeroWindowProbe = 1 << 8,
    /// `tcp.analysis.zero_window_probe_ack`: the answer to a zero-window probe.
    ZeroWindowProbeAck = 1 << 9,
    /// `tcp.analysis.window_full`: data up to the edge of the peer's advertised window.
    WindowFull = 1 << 10,
    /// `tcp.analysis.window_update`: no data, same SEQ/ACK, a new non-zero window.
    WindowUpdate = 1 << 11,
    /// `tcp.analysis.keep_alive`: 0 or 1 byte one before the next sequence number.
    KeepAlive = 1 << 12,
    /// `tcp.analysis.keep_alive_ack`: the answer to a keep-alive.
    KeepAliveAck = 1 << 13,
    /// `tcp.analysis.reused_ports`: a SYN with a new initial sequence number on a 5-tuple
    /// seen before (a new connection; the state starts over).
    ReusedPorts = 1 << 14,
    /// Not a Wireshark flag: a RST on a connection that carried data (an abort, where an
    /// operator should look, rather than a refused connection).
    RstAfterData = 1 << 15,
}

impl Flag {
    /// Every flag, in JSON order.
    pub const ALL: [Flag; 16] = [
        Flag::Retransmission,
        Flag::FastRetransmission,
        Flag::SpuriousRetransmission,
        Flag::OutOfOrder,
        Flag::LostSegment,
        Flag::AckLostSegment,
        Flag::DuplicateAck,
        Flag::ZeroWindow,
        Flag::ZeroWindowProbe,
        Flag::ZeroWindowProbeAck,
        Flag::WindowFull,
        Flag::WindowUpdate,
        Flag::KeepAlive,
        Flag::KeepAliveAck,
        Flag::ReusedPorts,
        Flag::RstAfterData,
    ];

    /// The name: Wireshark's field name after `tcp.analysis.` (and `rst_after_data`).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Retransmission => "retransmission",
            Flag::FastRetransmission => "fast_retransmission",
            Flag::SpuriousRetransmission => "spurious_retransmission",
            Flag::OutOfOrder => "out_of_order",
            Flag::LostSegment => "lost_segment",
            Flag::AckLostSegment => "ack_lost_segment",
            Flag::DuplicateAck => "duplicate_ack",
            Flag::ZeroWindow => "zero_window",
            Flag::ZeroWindowProbe => "zero_window_probe",
            Flag::ZeroWindowProbeAck => "zero_window_probe_ack",
            Flag::WindowFull => "window_full",
            Flag::WindowUpdate => "window_update",
            Flag::KeepAlive => "keep_alive",
            Flag::KeepAliveAck => "keep_alive_ack",
            Flag::ReusedPorts => "reused_ports",
            Flag::RstAfterData => "rst_after_data",
        }
    }
}

/// A set of [`Flag`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// Whether `f` is set.
    pub fn has(self, f: Flag) -> bool {
        self.0 & f as u16 != 0
    }

    fn set(&mut self, f: Flag) {
        self.0 |= f as u16;
    }

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in [`Flag::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.has(*f))
    }
}

/// What the analysis needs of one segment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Segment {
    /// Sequence number (absolute).
    pub seq: u32,
    /// Acknowledgment number (absolute, read whether or not ACK is set).
    pub ack: u32,
    /// Payload bytes on the wire (not only the captured ones).
    pub len: u32,
    /// TCP flag bits.
    pub flags: u16,
    /// The raw window field.
    pub window: u16,
    /// The window-scale option's shift, on a SYN that carries it.
    pub wscale: Option<u8>,
    /// Capture time, nanoseconds.
    pub ns: u64,
    /// Packet number (`pcap.num`).
    pub frame: u64,
}

const FIN: u16 = wire::tcp::Flags::FIN;
const SYN: u16 = wire::tcp::Flags::SYN;
const RST: u16 = wire::tcp::Flags::RST;
const ACK: u16 = wire::tcp::Flags::ACK;

impl Segment {
    /// The segment of a decoded TCP packet; `len` is the payload length on the wire.
    pub fn of(t: &wire::tcp::Packet<'_>, len: u32, ns: u64, frame: u64) -> Self {
        let flags = t.flags().0;
        let wscale = if flags & SYN != 0 {
            t.options().flatten().find_map(|o| match o {
                wire::tcp::TcpOption::WindowScale(s) => Some(s.min(14)),
                _ => None,
            })
        } else {
            None
        };
        Segment {
            seq: t.seq(),
            ack: t.ack(),
            len,
            flags,
            window: t.window(),
            wscale,
            ns,
            frame,
        }
    }
}

/// TCP payload bytes of a decoded packet as sent, not only as captured (a snaplen cut
/// must not look like a short segment to the analysis).
pub fn payload_len_on_wire(d: &crate::Decoded<'_>) -> u32 {
    let len = if !d.capture_cut() {
        d.payload.len()
    } else {
        match (d.network, d.transport) {
            // What IPv4's total length says, as Wireshark counts it.
            (Some(crate::Network::Ipv4(ip)), Some(crate::Transport::Tcp(t))) => ip
                .effective_len()
                .saturating_sub(ip.header_len() + t.header_len())
                .max(d.payload.len()),
            _ => d
                .payload
                .len()
                .saturating_add((d.wire_len as usize).saturating_sub(d.data.len())),
        }
    };
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The analysis of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Analysis {
    /// The flags.
    pub flags: Flags,
    /// `duplicate_ack_num`: which duplicate this is (1 for the first), 0 when none.
    pub dup_ack_num: u32,
    /// `duplicate_ack_frame`: the frame whose ACK this one repeats.
    pub dup_ack_frame: u64,
    /// `acks_frame`: the frame of the segment this one acknowledges.
    pub acks_frame: Option<u64>,
    /// `ack_rtt`: time from that segment to this ACK (ns; absent when 0, as in Wireshark).
    pub ack_rtt_ns: Option<u64>,
    /// `initial_rtt`: set on the segment that completes the handshake (last SYN to the
    /// first ACK without SYN).
    pub initial_rtt_ns: Option<u64>,
}

impl Analysis {
    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
            && self.dup_ack_num == 0
            && self.acks_frame.is_none()
            && self.initial_rtt_ns.is_none()
    }

    /// Any kind of retransmission.
    pub fn is_retransmission(&self) -> bool {
        self.flags.has(Flag::Retransmission)
    }
}

/// Window scaling as Wireshark tracks it per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Scale {
    /// No SYN seen: the window cannot be scaled (no "window full").
    #[default]
    Unknown,
    /// The handshake did not agree on scaling.
    None,
    /// This shift.
    Shift(u8),
}

#[derive(Debug, Clone, Copy)]
struct Unacked {
    seq: u32,
    nextseq: u32,
    frame: u64,
    ns: u64,
}

/// One side's sending state (Wireshark's `tcp_flow_t` and `tcp_analyze_seq_flow_info_t`),
/// kept small: every TCP flow of the table carries two.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    base_seq: u32,
    nextseq: u32,
    maxseqtobeacked: u32,
    lastack: u32,
    nextseq_ns: u64,
    lastack_ns: u64,
    lastnondupack: u64,
    dupacknum: i32,
    window: u16,
    lastsegmentflags: Flags,
    scale: Scale,
    base_set: bool,
    last_was_syn: bool,
    unacked: Vec<Unacked>,
    /// Totals for the connection summary.
    pub totals: Totals,
}

/// What one side sent, for the connection summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Segments.
    pub packets: u64,
    /// Payload bytes (as on the wire, retransmissions included).
    pub bytes: u64,
    /// Retransmissions of any kind.
    pub retransmissions: u32,
    /// Out-of-order segments.
    pub out_of_order: u32,
    /// Segments flagged "previous segment not captured".
    pub lost: u32,
    /// Time this side advertised a zero window (ns).
    pub zero_window_ns: u64,
    /// Start of the zero window now advertised (0: none).
    zero_since: u64,
}

/// Sequence-number comparisons modulo 2^32 (Wireshark's `GT_SEQ`, `LT_SEQ`, `LE_SEQ`).
fn gt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// Per-connection analysis state.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    dirs: [Direction; 2],
    /// Time of the most recent SYN (without ACK).
    mru_syn_ns: u64,
    /// The handshake's RTT, 0 until known.
    first_rtt_ns: u64,
    /// Payload seen in either direction (for `rst_after_data`).
    data_seen: bool,
    /// Address and port of each side (set by the caller), for the connection summary.
    pub endpoints: Option<[(std::net::IpAddr, u16); 2]>,
    /// HTTP responses seen on the connection (counted by the caller), for the summary.
    pub http_exchanges: u32,
    /// The originator's side index plus one (0: no packet yet), as Zeek decides it: the
    /// sender of the SYN, else the receiver of the SYN/ACK, else the first sender.
    orig: u8,
    /// What each side did, in Zeek's `history` terms ([`Seen`] bits).
    seen: [u16; 2],
    /// Zeek's `history`: each letter once, in order of first occurrence.
    history: [u8; 16],
    history_len: u8,
}

/// Events of one side for the connection summary (Zeek's `history` letters).
struct Seen;

impl Seen {
    const SYN: u16 = 1 << 0;
    const SYN_ACK: u16 = 1 << 1;
    const ACK: u16 = 1 << 2;
    const DATA: u16 = 1 << 3;
    const FIN: u16 = 1 << 4;
    const RST: u16 = 1 << 5;
    const RETRANSMISSION: u16 = 1 << 6;
    const ZERO_WINDOW: u16 = 1 << 7;
    const GAP: u16 = 1 << 8;
    const MULTI_FLAG: u16 = 1 << 9;
    /// The bits with their originator's letter, in the order Zeek checks them.
    const LETTERS: [(u16, u8); 10] = [
        (Self::MULTI_FLAG, b'Q'),
        (Self::SYN, b'S'),
        (Self::SYN_ACK, b'H'),
        (Self::DATA, b'D'),
        (Self::ACK, b'A'),
        (Self::FIN, b'F'),
        (Self::RST, b'R'),
        (Self::RETRANSMISSION, b'T'),
        (Self::ZERO_WINDOW, b'W'),
        (Self::GAP, b'G'),
    ];
}

/// Zeek's `conn_state` of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    Rej,
    /// Established, close attempt by the originator seen (no reply from the responder).
    S2,
    /// Established, close attempt by the responder seen (no reply from the originator).
    S3,
    /// Established, the originator aborted (sent a RST).
    Rsto,
    /// Responder sent a RST.
    Rstr,
    /// Originator sent a SYN followed by a RST; no SYN/ACK from the responder.
    Rstos0,
    /// Responder sent a SYN/ACK followed by a RST; no SYN from the (purported) originator.
    Rstrh,
    /// Originator sent a SYN followed by a FIN; no SYN/ACK from the responder.
    Sh,
    /// Responder sent a SYN/ACK followed by a FIN; no SYN from the originator.
    Shr,
    /// No SYN seen, just midstream traffic.
    Oth,
}

impl ConnState {
    /// Zeek's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::Rej => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::Rsto => "RSTO",
            ConnState::Rstr => "RSTR",
            ConnState::Rstos0 => "RSTOS0",
            ConnState::Rstrh => "RSTRH",
            ConnState::Sh => "SH",
            ConnState::Shr => "SHR",
            ConnState::Oth => "OTH",
        }
    }
}

impl Tracker {
    /// Heap bytes held: the tracker itself (boxed in the flow state) and its
    /// unacknowledged-segment lists.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .dirs
                .iter()
                .map(|d| d.unacked.capacity() * std::mem::size_of::<Unacked>())
                .sum::<usize>()
    }

    /// Drops the unacknowledged-segment lists (state budget); returns the bytes freed.
    pub fn shed(&mut self) -> usize {
        let n = self.heap_bytes() - std::mem::size_of::<Self>();
        for d in &mut self.dirs {
            d.unacked = Vec::new();
        }
        n
    }

    /// The handshake's RTT (ns), once the handshake was seen.
    pub fn initial_rtt_ns(&self) -> Option<u64> {
        (self.first_rtt_ns != 0).then_some(self.first_rtt_ns)
    }

    /// One side's state (`0` = A, `1` = B as in [`crate::Side::index`]).
    pub fn direction(&self, i: usize) -> Option<&Direction> {
        self.dirs.get(i)
    }

    /// Time of the connection's last segment (ns), 0 before any.
    pub fn last_ns(&self) -> u64 {
        self.dirs.iter().map(|d| d.lastack_ns).max().unwrap_or(0)
    }

    /// The originator's side index (0 or 1), once a packet was seen.
    pub fn originator(&self) -> Option<usize> {
        usize::from(self.orig).checked_sub(1)
    }

    /// Zeek's `history` string: originator's letters upper case, responder's lower case.
    pub fn history(&self) -> &str {
        let n = usize::from(self.history_len).min(self.history.len());
        std::str::from_utf8(self.history.get(..n).unwrap_or_default()).unwrap_or_default()
    }

    /// Zeek's `conn_state`.
    pub fn conn_state(&self) -> ConnState {
        let o = self.originator().unwrap_or(0);
        let (os, rs) = (
            self.seen.get(o).copied().unwrap_or(0),
            self.seen.get(1 - o).copied().unwrap_or(0),
        );
        let has = |v: u16, bit: u16| v & bit != 0;
        let (syn, synack) = (has(os, Seen::SYN), has(rs, Seen::SYN_ACK));
        let (orst, rrst) = (has(os, Seen::RST), has(rs, Seen::RST));
        let (ofin, rfin) = (has(os, Seen::FIN), has(rs, Seen::FIN));
        match (syn, synack) {
            (true, true) => {
                if orst {
                    ConnState::Rsto
                } else if rrst {
                    ConnState::Rstr
                } else if ofin && rfin {
                    ConnState::SF
                } else if ofin {
                    ConnState::S2
                } else if rfin {
                    ConnState::S3
                } else {
                    ConnState::S1
                }
            }
            (true, false) => {
                if rrst {
                    ConnState::Rej
                } else if orst {
                    ConnState::Rstos0
                } else if ofin {
                    ConnState::Sh
                } else if rs == 0 {
                    ConnState::S0
                } else {
                    ConnState::Oth
                }
            }
            (false, true) => {
                if rrst {
                    ConnState::Rstrh
                } else if rfin {
                    ConnState::Shr
                } else {
                    ConnState::Oth
                }
            }
            (false, false) => ConnState::Oth,
        }
    }

    fn record(&mut self, i: usize, f: u16, a: &Analysis, seglen: u32, window: u16) {
        if self.orig == 0 {
            let other = if f & (SYN | ACK) == SYN | ACK {
                1 - i
            } else {
                i
            };
            self.orig = other as u8 + 1;
        }
        let mut bits = 0u16;
        if f & SYN != 0 && f & (FIN | RST) != 0 {
            bits |= Seen::MULTI_FLAG;
        }
        if f & (SYN | ACK) == SYN {
            bits |= Seen::SYN;
        } else if f & (SYN | ACK) == SYN | ACK {
            bits |= Seen::SYN_ACK;
        } else if f & ACK != 0 && seglen == 0 && f & (FIN | RST) == 0 {
            bits |= Seen::ACK;
        }
        if seglen > 0 {
            bits |= Seen::DATA;
        }
        if f & FIN != 0 {
            bits |= Seen::FIN;
        }
        if f & RST != 0 {
            bits |= Seen::RST;
        }
        if a.flags.has(Flag::Retransmission) {
            bits |= Seen::RETRANSMISSION;
        }
        if window == 0 && f & (SYN | FIN | RST) == 0 {
            bits |= Seen::ZERO_WINDOW;
        }
        if a.flags.has(Flag::LostSegment) {
            bits |= Seen::GAP;
        }
        let Some(seen) = self.seen.get_mut(i) else {
            return;
        };
        let new = bits & !*seen;
        if new == 0 {
            // Most segments repeat what their side did before.
            return;
        }
        *seen |= bits;
        let lower = self.orig != i as u8 + 1;
        for (bit, letter) in Seen::LETTERS {
            if new & bit != 0 {
                if let Some(slot) = self.history.get_mut(usize::from(self.history_len)) {
                    *slot = if lower {
                        letter.to_ascii_lowercase()
                    } else {
                        letter
                    };
                    self.history_len += 1;
                }
            }
        }
    }

    /// Closes open zero-window intervals at `ns` (for a summary written now).
    pub fn settle(&mut self, ns: u64) {
        for d in &mut self.dirs {
            if d.totals.zero_since != 0 {
                d.totals.zero_window_ns += ns.saturating_sub(d.totals.zero_since);
                d.totals.zero_since = ns;
            }
        }
    }

    /// Analyses a segment sent by side `i` (0 or 1).
    pub fn analyze(&mut self, i: usize, s: &Segment) -> Analysis {
        let mut a = Analysis::default();
        let fwd_i = i.min(1);
        let f = s.flags;
        // A SYN with a different initial sequence number: a new connection on the same
        // ports. Wireshark starts a new conversation; so does this tracker.
        if f & (SYN | ACK) == SYN {
            if let Some(d) = self.dirs.get(fwd_i).filter(|d| d.base_set) {
                if d.base_seq != s.seq {
                    *self = Tracker::default();
                    a.flags.set(Flag::ReusedPorts);
                }
            }
        }
        let (fwd, rev) = match &mut self.dirs {
            [a0, b0] if fwd_i == 0 => (a0, b0),
            [a0, b0] => (b0, a0),
        };
        self.data_seen |= s.len > 0;
        let seq = s.seq;
        let ack = s.ack;
        let seglen = s.len;
        let window = s.window;

        if !fwd.base_set {
            fwd.base_seq = if f & SYN != 0 {
                seq
            } else {
                seq.wrapping_sub(1)
            };
            fwd.base_set = true;
        }
        if f & SYN != 0 {
            fwd.scale = match s.wscale {
                Some(n) => Scale::Shift(n),
                None => Scale::None,
            };
            if f & ACK != 0 && (fwd.scale == Scale::None || rev.scale == Scale::None) {
                // Scaling applies only when both SYNs offered it (RFC 7323 §2.2).
                fwd.scale = Scale::None;
                if rev.scale != Scale::Unknown {
                    rev.scale = Scale::None;
                }
            }
        }

        'fwd: {
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                a.flags.set(Flag::ZeroWindowProbe);
                break 'fwd;
            }
            if window == 0 && f & (RST | FIN | SYN) == 0 {
                a.flags.set(Flag::ZeroWindow);
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && f & RST == 0 {
                a.flags.set(Flag::LostSegment);
            }
            let plain = f & (SYN | FIN | RST) == 0;
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && plain {
                a.flags.set(Flag::KeepAlive);
            }
            let same = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && plain;
            if same && window != 0 && window != fwd.window {
                a.flags.set(Flag::WindowUpdate);
            }
            if seglen > 0 && plain && rev.scale != Scale::Unknown {
                let shift = match rev.scale {
                    Scale::Shift(n) if !rev.last_was_syn => u32::from(n),
                    _ => 0,
                };
                let edge = rev
                    .lastack
                    .wrapping_add(u32::from(rev.window).checked_shl(shift).unwrap_or(0));
                if seq.wrapping_add(seglen) == edge {
                    a.flags.set(Flag::WindowFull);
                }
            }
            if same
                && window != 0
                && window == fwd.window
                && rev.lastsegmentflags.has(Flag::KeepAlive)
            {
                a.flags.set(Flag::KeepAliveAck);
                break 'fwd;
            }
            if same
                && window == 0
                && window == fwd.window
                && rev.lastsegmentflags.has(Flag::ZeroWindowProbe)
            {
                a.flags.set(Flag::ZeroWindowProbeAck);
                break 'fwd;
            }
            if same && window != 0 && window == fwd.window {
                fwd.dupacknum = if fwd.dupacknum == -1 {
                    1
                } else {
                    fwd.dupacknum.saturating_add(1)
                };
                a.flags.set(Flag::DuplicateAck);
                a.dup_ack_num = fwd.dupacknum.max(0) as u32;
                a.dup_ack_frame = fwd.lastnondupack;
            }
        }
        if ack != fwd.lastack {
            fwd.lastnondupack = s.frame;
            fwd.dupacknum = 0;
        }

        if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && f & ACK != 0 {
            // Below the highest sequence number seen: a gap the peer filled unseen; the
            // check restarts from the highest. At it: the other side is ahead of the whole
            // capture, reported once until the other side's ACK number changes (this is
            // the behaviour of tshark 4.0, checked segment by segment against it).
            if rev.maxseqtobeacked < rev.nextseq {
                rev.maxseqtobeacked = rev.nextseq;
                a.flags.set(Flag::AckLostSegment);
            } else {
                if rev.dupacknum == 0 {
                    a.flags.set(Flag::AckLostSegment);
                }
                rev.dupacknum = -1;
            }
        }

        if (seglen > 0 || f & (SYN | FIN) != 0) && !a.flags.has(Flag::KeepAlive) {
            let mut not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                // Follows a zero-window probe: new data.
                not_advanced = false;
            }
            let since_ack = s.ns.wrapping_sub(rev.lastack_ns);
            let since_next = s.ns.wrapping_sub(fwd.nextseq_ns);
            let ooo_threshold = if self.first_rtt_ns == 0 {
                3_000_000
            } else {
                self.first_rtt_ns
            };
            let syn_fin = u32::from(f & (SYN | FIN) != 0);
            if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                a.flags.set(Flag::SpuriousRetransmission);
                a.flags.set(Flag::Retransmission);
            } else if not_advanced
                && rev.dupacknum >= 2
                && rev.lastack == seq
                && since_ack < 20_000_000
            {
                a.flags.set(Flag::FastRetransmission);
                a.flags.set(Flag::Retransmission);
            } else if not_advanced
                && since_next < ooo_threshold
                && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
            {
                a.flags.set(Flag::OutOfOrder);
            } else if not_advanced {
                a.flags.set(Flag::Retransmission);
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if seglen > 0 || f & (SYN | FIN) != 0 {
            if f & (SYN | FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
            if fwd.unacked.len() < MAX_UNACKED {
                if fwd.unacked.capacity() == 0 {
                    // Most flows have one or two segments in flight: start small.
                    fwd.unacked.reserve_exact(2);
                }
                fwd.unacked.push(Unacked {
                    seq,
                    nextseq,
                    frame: s.frame,
                    ns: s.ns,
                });
            }
        }
        let zwp = a.flags.has(Flag::ZeroWindowProbe);
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zwp {
            fwd.nextseq = nextseq;
            fwd.nextseq_ns = s.ns;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !zwp {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_ns = s.ns;
        fwd.last_was_syn = f & SYN != 0;
        fwd.lastsegmentflags = a.flags;

        // Forget what this ACK covers; the oldest segment it exactly completes gives the RTT.
        let mut acked: Option<(u64, u64)> = None;
        rev.unacked.retain_mut(|u| {
            if ack == u.nextseq {
                if acked.is_none() {
                    acked = Some((u.frame, u.ns));
                }
                false
            } else if gt(ack, u.seq) && le(ack, u.nextseq) {
                u.seq = ack;
                true
            } else {
                gt(u.nextseq, ack)
            }
        });
        if rev.unacked.is_empty() && rev.unacked.capacity() > 2 {
            rev.unacked = Vec::new();
        }
        if let Some((frame, ns)) = acked {
            a.acks_frame = Some(frame);
            let rtt = s.ns.saturating_sub(ns);
            a.ack_rtt_ns = (rtt != 0).then_some(rtt);
        }

        if f & RST != 0 && self.data_seen {
            a.flags.set(Flag::RstAfterData);
        }

        // Handshake RTT: from the most recent SYN to the first segment with ACK and no SYN.
        if f & (SYN | ACK) == ACK && self.mru_syn_ns != 0 && self.first_rtt_ns == 0 {
            self.first_rtt_ns = s.ns.saturating_sub(self.mru_syn_ns).max(1);
            a.initial_rtt_ns = Some(self.first_rtt_ns);
        }
        if f & (SYN | ACK) == SYN {
            self.mru_syn_ns = s.ns;
        }

        self.record(fwd_i, f, &a, seglen, window);
        let Some(fwd) = self.dirs.get_mut(fwd_i) else {
            return a;
        };
        let t = &mut fwd.totals;
        t.packets += 1;
        t.bytes += u64::from(seglen);
        let count = |n: &mut u32, flag| *n = n.saturating_add(u32::from(a.flags.has(flag)));
        count(&mut t.retransmissions, Flag::Retransmission);
        count(&mut t.out_of_order, Flag::OutOfOrder);
        count(&mut t.lost, Flag::LostSegment);
        if window == 0 && f & (SYN | RST) == 0 {
            if t.zero_since == 0 {
                t.zero_since = s.ns.max(1);
            }
        } else if t.zero_since != 0 {
            t.zero_window_ns += s.ns.saturating_sub(t.zero_since);
            t.zero_since = 0;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    struct Conn {
        t: Tracker,
        frame: u64,
    }

    impl Conn {
        fn new() -> Self {
            Conn {
                t: Tracker::default(),
                frame: 0,
            }
        }

        #[allow(clippy::too_many_arguments)]
        fn seg(
            &mut self,
            side: usize,
            ms: u64,
            seq: u32,
            ack: u32,
            len: u32,
            f: u16,
            w: u16,
        ) -> Analysis {
            self.frame += 1;
            self.t.analyze(
                side,
                &Segment {
                    seq,
                    ack,
                    len,
                    flags: f,
                    window: w,
                    wscale: (f & SYN != 0).then_some(7),
                    ns: (1000 + ms) * MS,
                    frame: self.frame,
                },
            )
        }
    }

    fn names(a: &Analysis) -> Vec<&'static str> {
        a.flags.iter().map(Flag::name).collect()
    }

    /// Client ISN 1000, server ISN 5000, handshake at 0/10/20 ms.
    fn handshake() -> Conn {
        let mut c = Conn::new();
        assert!(c.seg(0, 0, 1000, 0, 0, SYN, 64240).is_empty());
        c.seg(1, 10, 5000, 1001, 0, SYN | ACK, 65160);
        let a = c.seg(0, 20, 1001, 5001, 0, ACK, 502);
        assert_eq!(a.initial_rtt_ns, Some(20 * MS));
        c
    }

    #[test]
    fn retransmission_and_ack_rtt() {
        let mut c = handshake();
        assert!(c.seg(0, 30, 1001, 5001, 100, ACK, 502).flags.is_empty());
        let r = c.seg(0, 300, 1001, 5001, 100, ACK, 502);
        assert_eq!(names(&r), ["retransmission"]);
        let ack = c.seg(1, 310, 5001, 1101, 0, ACK, 509);
        assert_eq!(ack.acks_frame, Some(4), "the original, oldest, segment");
        assert_eq!(ack.ack_rtt_ns, Some(280 * MS));
        // Sent again after the ACK: spurious.
        let s = c.seg(0, 600, 1001, 5001, 100, ACK, 502);
        assert_eq!(names(&s), ["retransmission", "spurious_retransmission"]);
    }

    #[test]
    fn lost_out_of_order_dup_acks_fast_retransmission() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        // 1101..1201 never captured.
        let l = c.seg(0, 31, 1201, 5001, 100, ACK, 502);
        assert_eq!(names(&l), ["lost_segment"]);
        let d1 = c.seg(1, 40, 5001, 1101, 0, ACK, 509);
        assert!(d1.flags.is_empty());
        let d2 = c.seg(1, 41, 5001, 1101, 0, ACK, 509);
        assert_eq!(
            (names(&d2), d2.dup_ack_num, d2.dup_ack_frame),
            (vec!["duplicate_ack"], 1, 6)
        );
        let d3 = c.seg(1, 42, 5001, 1101, 0, ACK, 509);
        assert_eq!(d3.dup_ack_num, 2);
        let fr = c.seg(0, 43, 1101, 5001, 100, ACK, 502);
        assert_eq!(names(&fr), ["retransmission", "fast_retransmission"]);
        // An earlier segment arriving right after a later one: out of order.
        let mut c = handshake();
        c.seg(0, 30, 1101, 5001, 100, ACK, 502);
        let o = c.seg(0, 31, 1001, 5001, 100, ACK, 502);
        assert_eq!(names(&o), ["out_of_order"]);
    }

    #[test]
    fn ack_of_unseen_segment() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        let a = c.seg(1, 40, 5001, 1301, 0, ACK, 509);
        assert_eq!(names(&a), ["ack_lost_segment"]);
    }

    #[test]
    fn zero_window_probe_and_update() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        let z = c.seg(1, 40, 5001, 1101, 0, ACK, 0);
        assert_eq!(names(&z), ["zero_window"]);
        let p = c.seg(0, 240, 1101, 5001, 1, ACK, 502);
        assert_eq!(names(&p), ["zero_window_probe"]);
        let pa = c.seg(1, 241, 5001, 1101, 0, ACK, 0);
        assert_eq!(names(&pa), ["zero_window", "zero_window_probe_ack"]);
        let u = c.seg(1, 500, 5001, 1101, 0, ACK, 300);
        assert_eq!(names(&u), ["window_update"]);
        // The probe's byte sent again with more data is new data, not a retransmission.
        let d = c.seg(0, 501, 1101, 5001, 100, ACK, 502);
        assert!(!d.is_retransmission());
        let t = c.t.direction(1).unwrap().totals;
        assert_eq!(t.zero_window_ns, 460 * MS);
    }

    #[test]
    fn keep_alive_and_its_ack() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        c.seg(1, 40, 5001, 1101, 0, ACK, 509);
        let k = c.seg(0, 45_000, 1100, 5001, 0, ACK, 502);
        assert_eq!(names(&k), ["keep_alive"]);
        let ka = c.seg(1, 45_001, 5001, 1101, 0, ACK, 509);
        assert_eq!(names(&ka), ["keep_alive_ack"]);
    }

    #[test]
    fn window_full() {
        let mut c = handshake();
        // The SYN/ACK's window is never scaled; this one is: 509 << 7 = 65152 bytes.
        let u = c.seg(1, 25, 5001, 1001, 0, ACK, 509);
        assert_eq!(names(&u), ["window_update"]);
        let a = c.seg(0, 30, 1001, 5001, 65152, ACK, 502);
        assert_eq!(names(&a), ["window_full"]);
    }

    #[test]
    fn reused_ports_restart_the_state_and_rst_after_data() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        let r = c.seg(1, 31, 5001, 1101, 0, RST | ACK, 0);
        assert_eq!(names(&r), ["rst_after_data"]);
        let s = c.seg(0, 1000, 900_000, 0, 0, SYN, 64240);
        assert_eq!(names(&s), ["reused_ports"]);
        // A retransmitted SYN is not a new connection.
        let s2 = c.seg(0, 2000, 900_000, 0, 0, SYN, 64240);
        assert_eq!(names(&s2), ["retransmission"]);
        // Refused: a RST without data is not an abort.
        let r = c.seg(1, 2001, 0, 900_001, 0, RST | ACK, 0);
        assert!(!r.flags.has(Flag::RstAfterData));
    }

    #[test]
    fn zeek_history_and_conn_state() {
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        c.seg(1, 31, 5001, 1101, 0, ACK, 509);
        c.seg(1, 32, 5001, 1101, 200, ACK, 509);
        assert_eq!(c.t.conn_state(), ConnState::S1);
        c.seg(0, 33, 1101, 5201, 0, FIN | ACK, 502);
        assert_eq!(c.t.conn_state(), ConnState::S2);
        c.seg(1, 34, 5201, 1102, 0, FIN | ACK, 509);
        c.seg(0, 35, 1102, 5202, 0, ACK, 502);
        assert_eq!(
            (c.t.history(), c.t.conn_state()),
            ("ShADadFf", ConnState::SF)
        );
        assert_eq!(c.t.originator(), Some(0));
        // Refused.
        let mut c = Conn::new();
        c.seg(0, 0, 1000, 0, 0, SYN, 64240);
        assert_eq!(c.t.conn_state(), ConnState::S0);
        c.seg(1, 1, 0, 1001, 0, RST | ACK, 0);
        assert_eq!((c.t.history(), c.t.conn_state()), ("Sr", ConnState::Rej));
        // Aborted by the originator after data; a capture that starts mid-connection.
        let mut c = handshake();
        c.seg(0, 30, 1001, 5001, 100, ACK, 502);
        c.seg(0, 31, 1101, 5001, 0, RST | ACK, 0);
        assert_eq!(c.t.conn_state(), ConnState::Rsto);
        let mut c = Conn::new();
        c.seg(1, 0, 5001, 1001, 100, ACK, 509);
        assert_eq!((c.t.history(), c.t.conn_state()), ("D", ConnState::Oth));
    }

    #[test]
    fn unacked_list_is_bounded_and_sheddable() {
        let mut c = handshake();
        for i in 0..1000u32 {
            c.seg(0, 30, 1001 + i * 10, 5001, 10, ACK, 502);
        }
        let base = std::mem::size_of::<Tracker>();
        assert!(c.t.heap_bytes() - base <= MAX_UNACKED * 2 * std::mem::size_of::<Unacked>());
        assert!(c.t.shed() > 0);
        assert_eq!(c.t.heap_bytes(), base);
        assert!(base <= 360, "{base} bytes per TCP flow");
    }
}
