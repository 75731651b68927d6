//! HTTP/2 over cleartext TCP (h2c): frames, HPACK, request/response pairing per stream,
//! gRPC status, with bounded per-connection state. The bytes of a frame are read through
//! `wire::http2` (re-exported here); this module keeps what spans frames and segments.
//!
//! Recognition ([`looks_like_http2`]), on any TCP port: a segment that starts with the
//! client connection preface, or whose bytes are *exactly* a run of frames that pass the
//! strict header checks of [`Frame::check_strict`] (known type, only defined flags, the
//! reserved bit clear, length at most the default 16 384, the stream-id and fixed-length
//! rules of RFC 9113 §6). The first frame must be complete. A PostgreSQL, MySQL or TLS byte
//! stream fails these checks at its first bytes; random bytes pass them with negligible
//! probability.
//!
//! Per connection ([`Conn`], kept in [`crate::FlowState::h2`]), per direction:
//!
//! - an HPACK decoder ([`crate::hpack::Decoder`]): a connection joined mid-way (no SYN and
//!   no preface seen) decodes static-table and literal fields and marks references to
//!   dynamic entries it never saw;
//! - a frame split across segments is buffered (at most [`MAX_FRAME_BUFFER`] bytes: one
//!   frame of the default maximum size); the segments before it completes are reported as
//!   continuations ([`Segment::partial`]), not errors. A frame larger than that is described
//!   from its header and its remaining bytes are skipped; a header block lost that way
//!   makes the HPACK decoder unsynced;
//! - a header block spread over HEADERS + CONTINUATION frames is joined (at most
//!   [`MAX_HEADER_BLOCK`] bytes) and decoded when END_HEADERS arrives.
//!
//! Streams ([`MAX_STREAMS`] per connection; beyond that the oldest is forgotten and
//! counted) pair a request's HEADERS with the response's (latency), carry the request's
//! trace context to the response, trailers, DATA and RST_STREAM frames of the stream, and
//! hold the gRPC service/method (from `:path` when `content-type` is `application/grpc…`)
//! until `grpc-status` arrives in the trailers (or a trailers-only response). A stream is
//! forgotten when the response ends (END_STREAM) or on RST_STREAM.
//!
//! The bytes come in order ([`Conn::on_bytes`], from [`crate::reassembly`]): a retransmitted
//! frame is not analysed twice and an out-of-order segment waits for its gap. A gap that
//! never fills ([`Conn::on_gap`]) inside one frame's payload loses that frame only (the
//! next boundary is known; a lost header-block fragment makes HPACK unsynced); a gap that
//! crosses a frame boundary makes the direction resynchronise at the first offset of a later
//! delivery from which its bytes are a run of strictly valid frames (the bytes before are
//! [`Segment::skipped`]), with HPACK unsynced. Latency runs from the request HEADERS
//! frame's first byte to the response HEADERS frame's first byte.
//!
//! Limitations (documented, not errors): resynchronisation needs one delivery whose bytes
//! from a frame start on are whole frames (the last may be cut); SETTINGS_MAX_FRAME_SIZE is not followed (only the buffer bound matters);
//! DATA payloads are not decompressed or parsed (gRPC messages are only counted); server
//! push (PUSH_PROMISE) header blocks are decoded but promised streams are not paired.

use crate::flow::Side;
use crate::hpack::{self, Block};
use crate::http1::{trace_from_headers, RequestInfo, Trace};
use crate::reassembly::Stamps;

// The frame view is `wire`'s; these names stay reachable here for the renderer.
pub use wire::http2::{
    defined_setting_name, error_name, flags, looks_like_http2, setting_name, Frame, FrameType,
    DEFAULT_MAX_FRAME, FRAME_HEADER_LEN, PREFACE,
};
use wire::http2::{
    Goaway, Headers as HeadersPayload, PushPromise, RstStream, Settings, WindowUpdate,
};

/// Most bytes of an unfinished frame buffered per direction.
pub const MAX_FRAME_BUFFER: usize = DEFAULT_MAX_FRAME as usize + FRAME_HEADER_LEN;
/// Most bytes of a header block (HEADERS + CONTINUATION) joined per direction.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Most open streams remembered per connection.
pub const MAX_STREAMS: usize = 128;
/// Most frames described per segment (the others are analysed and counted).
pub const MAX_FRAMES: usize = 32;
/// Most CONTINUATION frames joined into one header block: a legitimate 64 KiB block needs a
/// handful; a flood of tiny ones (CVE-2024-27316 style) is cut and the block abandoned.
pub const MAX_CONTINUATIONS: usize = 64;
/// Most new streams recorded per segment (a rapid-reset flood opens and cancels thousands).
pub const MAX_SEGMENT_STREAMS: usize = 64;
/// Longest `:path`, `:authority`, `user-agent`, gRPC message kept per stream.
const MAX_FIELD: usize = 512;

/// An error code that means a broken peer or connection (rather than a deliberate
/// cancellation, refusal or shutdown): the entry is an ERROR, not a WARNING.
pub fn is_severe_error(code: u32) -> bool {
    matches!(code, 0x1 | 0x2 | 0x3 | 0x6 | 0x9 | 0xa | 0xc)
}

/// What a header block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Has `:method`.
    Request,
    /// Has a final `:status`.
    Response,
    /// Has a `1xx` `:status`.
    Informational,
    /// No pseudo-header, after a response (or ending the stream).
    Trailers,
    /// A PUSH_PROMISE's promised request.
    Promise,
    /// Could not tell (unknown dynamic references where the pseudo-headers would be).
    Unknown,
}

impl Role {
    /// Name in JSON (`HTTP.kind`, same words as HTTP/1.1 where they apply).
    pub fn name(self) -> &'static str {
        match self {
            Role::Request => "request",
            Role::Response => "response",
            Role::Informational => "informational",
            Role::Trailers => "trailers",
            Role::Promise => "push_promise",
            Role::Unknown => "headers",
        }
    }
}

/// gRPC facts of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grpc {
    /// `pkg.Service` from `:path` `/pkg.Service/Method`.
    pub service: String,
    /// `Method`.
    pub method: String,
    /// `grpc-status`, when this block carries it.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<String>,
}

/// Name of a gRPC status code.
pub fn grpc_status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_STATUS",
    }
}

/// A decoded header block with what the stream adds to it. Values are *not* redacted
/// here: the renderer redacts them.
#[derive(Debug, Clone)]
pub struct Headers {
    /// What the block is.
    pub role: Role,
    /// The fields.
    pub block: Block,
    /// The decoder had not seen the connection from its start.
    pub unsynced: bool,
    /// CONTINUATION frames the block spanned.
    pub continuations: usize,
    /// `:status`.
    pub status: Option<u16>,
    /// For responses and trailers: the stream's request.
    pub request: Option<RequestInfo>,
    /// For responses: time since the request (ns); for trailers, that of the response.
    pub latency_ns: Option<u64>,
    /// gRPC facts (service/method of the stream; status/message when this block has them).
    pub grpc: Option<Grpc>,
    /// The block's own trace, or its stream's.
    pub trace: Option<Trace>,
}

impl Headers {
    /// First value of a field.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.block.get(name)
    }
}

/// One frame as seen in a segment.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Type.
    pub kind: FrameType,
    /// Flags as sent.
    pub flags: u8,
    /// Stream id.
    pub stream: u32,
    /// Payload length.
    pub length: u32,
    /// Completed with bytes buffered from earlier segments.
    pub reassembled: bool,
    /// Only the header is analysed: the payload exceeds the buffer bound and is skipped.
    pub oversize: bool,
    /// HEADERS/PUSH_PROMISE (or the CONTINUATION ending it): the decoded block, once the
    /// block is complete.
    pub headers: Option<Box<Headers>>,
    /// RST_STREAM / GOAWAY error code.
    pub error_code: Option<u32>,
    /// GOAWAY last stream id.
    pub last_stream: Option<u32>,
    /// GOAWAY debug data (lossy text, bounded).
    pub debug_data: Option<String>,
    /// SETTINGS parameters.
    pub settings: Vec<(u16, u32)>,
    /// WINDOW_UPDATE increment.
    pub increment: Option<u32>,
    /// The stream's request (RST_STREAM: what was cancelled).
    pub request: Option<RequestInfo>,
    /// The stream's trace.
    pub trace: Option<Trace>,
}

impl FrameInfo {
    fn new(f: &Frame<'_>) -> Self {
        FrameInfo {
            kind: f.frame_type(),
            flags: f.flags(),
            stream: f.stream_id(),
            length: f.length(),
            reassembled: false,
            oversize: false,
            headers: None,
            error_code: None,
            last_stream: None,
            debug_data: None,
            settings: Vec::new(),
            increment: None,
            request: None,
            trace: None,
        }
    }
}

/// An analysis error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Error {
    /// `INVALID_FRAME_HEADER`, `HPACK_…`, `HEADER_BLOCK_TOO_LARGE`, `EXPECTED_CONTINUATION`,
    /// `BAD_PADDING`.
    pub code: &'static str,
    /// Details.
    pub info: String,
}

/// Which per-segment caps a segment hit (each counted in the stats line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Header blocks whose decoded list was cut ([`hpack::MAX_HEADER_LIST`] or the segment's
    /// byte budget).
    pub lists_truncated: usize,
    /// Header fields decoded but not kept.
    pub fields_omitted: usize,
    /// Indexed references skipped (the segment's reference budget was spent).
    pub references_skipped: usize,
    /// New streams not recorded ([`MAX_SEGMENT_STREAMS`]).
    pub streams_skipped: usize,
    /// Header blocks abandoned after [`MAX_CONTINUATIONS`] CONTINUATION frames.
    pub continuation_floods: usize,
}

impl Caps {
    /// No cap was hit.
    pub fn is_empty(&self) -> bool {
        *self == Caps::default()
    }
}

/// What a segment's HTTP/2 bytes are.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// Per-segment caps hit.
    pub caps: Caps,
    /// The segment starts with the client preface.
    pub preface: bool,
    /// Frames that end (or, when oversize, start) in this segment (at most
    /// [`MAX_FRAMES`]).
    pub frames: Vec<FrameInfo>,
    /// Frames past [`MAX_FRAMES`] (analysed, not described).
    pub more_frames: usize,
    /// Bytes at the start continuing a frame begun in an earlier segment.
    pub continued: usize,
    /// The segment ends inside a frame (buffered until it completes).
    pub partial: bool,
    /// The first analysis error.
    pub error: Option<H2Error>,
    /// TCP payload bytes.
    pub size: usize,
    /// The first trace of the segment's frames.
    pub trace: Option<Trace>,
    /// Bytes of the stream missing before these (a gap the capture never filled).
    pub gap: u64,
    /// Bytes skipped after a gap before a frame boundary was found.
    pub skipped: usize,
}

impl Segment {
    /// The first decoded header block.
    pub fn first_headers(&self) -> Option<(&FrameInfo, &Headers)> {
        self.frames
            .iter()
            .find_map(|f| f.headers.as_deref().map(|h| (f, h)))
    }

    /// The first response header block (for `httpRequest`).
    pub fn response(&self) -> Option<&Headers> {
        self.frames
            .iter()
            .filter_map(|f| f.headers.as_deref())
            .find(|h| h.role == Role::Response)
    }

    /// The worst RST_STREAM/GOAWAY error code of the segment.
    pub fn worst_error_code(&self) -> Option<u32> {
        self.frames
            .iter()
            .filter_map(|f| f.error_code)
            .filter(|c| *c != 0)
            .max_by_key(|c| is_severe_error(*c))
    }
}

#[derive(Debug, Clone)]
struct Stream {
    id: u32,
    request: RequestInfo,
    grpc: Option<Grpc>,
    responded: bool,
    /// Request to response latency, for the trailers (a gRPC call's status).
    latency_ns: Option<u64>,
}

#[derive(Debug, Clone)]
struct PendingBlock {
    /// When the block's first frame was first captured.
    ts_ns: u64,
    stream: u32,
    push: bool,
    end_stream: bool,
    continuations: usize,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Dir {
    hpack: hpack::Decoder,
    /// An unfinished frame (at most [`MAX_FRAME_BUFFER`] bytes).
    buf: Vec<u8>,
    /// Bytes of an oversize frame still to skip.
    skip: usize,
    /// A header block waiting for CONTINUATION.
    block: Option<PendingBlock>,
    /// When the first byte of `buf` was captured.
    buf_ts: u64,
    /// A gap lost the frame boundaries: look for the next run of frames.
    resync: bool,
}

/// Per-connection HTTP/2 state (bounded: per direction one frame buffer of at most
/// [`MAX_FRAME_BUFFER`] bytes, one header block of at most [`MAX_HEADER_BLOCK`], an HPACK
/// table of at most [`hpack::MAX_TABLE_SIZE`]; [`MAX_STREAMS`] streams with bounded fields).
#[derive(Debug, Clone, Default)]
pub struct Conn {
    dir: [Dir; 2],
    streams: Vec<Stream>,
    /// The side that sent the preface or requests.
    pub client: Option<Side>,
    /// The trace of the latest exchange (for the connection's ACK/FIN/RST segments).
    pub current: Option<Trace>,
    /// Streams forgotten because [`MAX_STREAMS`] were open.
    pub dropped_streams: u64,
    /// What the segment being analysed may still decode and record.
    budget: hpack::Budget,
    new_streams: usize,
}

fn bounded(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v.get(..v.len().min(MAX_FIELD)).unwrap_or(v));
    s.into_owned()
}

/// gRPC's percent-encoding of `grpc-message` (RFC 3986 style, any byte).
fn percent_decode(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        let hex = |x: Option<&u8>| x.and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(v.get(i + 1)), hex(v.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    bounded(&out)
}

fn grpc_path(path: &[u8]) -> Option<(String, String)> {
    let p = std::str::from_utf8(path).ok()?.strip_prefix('/')?;
    let (svc, method) = p.split_once('/')?;
    (!svc.is_empty() && !method.is_empty() && !method.contains('/'))
        .then(|| (bounded(svc.as_bytes()), bounded(method.as_bytes())))
}

impl Conn {
    /// State for a connection; `from_start` when its beginning was seen (SYN or preface):
    /// otherwise the HPACK decoders know they may have missed dynamic-table entries.
    pub fn new(from_start: bool) -> Self {
        let mut c = Conn::default();
        for d in &mut c.dir {
            d.hpack = hpack::Decoder::new(!from_start);
        }
        c
    }

    /// State after an HTTP/1.1 `Upgrade: h2c` answered by `101`: the request becomes stream
    /// 1 (RFC 7540 §3.2), sent by `client`.
    pub fn upgraded(client: Side, request: RequestInfo) -> Self {
        let mut c = Conn::new(true);
        c.client = Some(client);
        c.current = request.trace;
        c.streams.push(Stream {
            id: 1,
            request,
            grpc: None,
            responded: false,
            latency_ns: None,
        });
        c
    }

    /// Open streams remembered.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes buffered (unfinished frames and header blocks).
    pub fn buffered(&self) -> usize {
        self.dir
            .iter()
            .map(|d| d.buf.len() + d.block.as_ref().map_or(0, |b| b.bytes.len()))
            .sum()
    }

    /// Heap bytes this state holds (an estimate from capacities, for the state budget).
    pub fn heap_bytes(&self) -> usize {
        let dirs: usize = self
            .dir
            .iter()
            .map(|d| {
                d.buf.capacity()
                    + d.block.as_ref().map_or(0, |b| b.bytes.capacity())
                    + d.hpack.heap_bytes()
            })
            .sum();
        // Computed after every packet: streams count a typical allowance for their strings
        // (method, path, host, user agent, gRPC names; each cut at 512 B) instead of a walk.
        const STREAM_STRINGS: usize = 256;
        std::mem::size_of::<Self>()
            + dirs
            + self.streams.len() * STREAM_STRINGS
            + self.streams.capacity() * std::mem::size_of::<Stream>()
    }

    /// HPACK dynamic table sizes (RFC 7541 accounting) of both directions.
    pub fn table_sizes(&self) -> [usize; 2] {
        [self.dir[0].hpack.size(), self.dir[1].hpack.size()]
    }

    /// A FIN from `side`: its unfinished frame and header block will never complete.
    pub fn on_fin(&mut self, side: Side) {
        if let Some(d) = self.dir.get_mut(side.index()) {
            d.buf = Vec::new();
            d.block = None;
            d.skip = 0;
        }
    }

    /// `n` bytes sent by `side` will never be seen (a gap in the stream). Inside one
    /// frame's payload only that frame is lost; otherwise the direction resynchronises.
    pub fn on_gap(&mut self, side: Side, n: u64) {
        let Some(d) = self.dir.get_mut(side.index()) else {
            return;
        };
        if n == 0 {
            return;
        }
        if d.skip > 0 && n <= d.skip as u64 {
            d.skip -= n as usize;
            return;
        }
        if d.skip == 0 {
            if let Ok(f) = Frame::new_checked(&d.buf) {
                let remaining = (f.total_len() - d.buf.len()) as u64;
                if n <= remaining {
                    if matches!(
                        f.frame_type(),
                        FrameType::Headers | FrameType::PushPromise | FrameType::Continuation
                    ) {
                        d.hpack.lose_sync();
                        d.block = None;
                    }
                    d.skip = (remaining - n) as usize;
                    d.buf = Vec::new();
                    return;
                }
            }
        }
        d.buf = Vec::new();
        d.skip = 0;
        d.block = None;
        d.hpack.lose_sync();
        d.resync = true;
    }

    /// Analyses the payload of a segment sent by `side` at `now_ns`.
    pub fn on_segment(&mut self, side: Side, now_ns: u64, payload: &[u8]) -> Segment {
        self.on_bytes(side, &Stamps::at_once(now_ns), payload)
    }

    /// Analyses in-order bytes sent by `side`; `stamps` say when each byte was first
    /// captured.
    pub fn on_bytes(&mut self, side: Side, stamps: &Stamps, payload: &[u8]) -> Segment {
        let i = side.index();
        if self.dir.get(i).is_some_and(|d| d.resync) {
            let limit = payload.len().min(MAX_FRAME_BUFFER);
            let Some(k) = (0..limit).find(|&k| {
                payload
                    .get(k..)
                    .is_some_and(|r| !r.starts_with(PREFACE) && looks_like_http2(r))
            }) else {
                return Segment {
                    size: payload.len(),
                    skipped: payload.len(),
                    ..Segment::default()
                };
            };
            if let Some(d) = self.dir.get_mut(i) {
                d.resync = false;
            }
            let rest = payload.get(k..).unwrap_or(&[]);
            let mut seg = self.on_bytes(side, &stamps.from(k), rest);
            seg.skipped = k;
            seg.size = payload.len();
            return seg;
        }
        let mut seg = Segment {
            size: payload.len(),
            ..Segment::default()
        };
        self.budget = hpack::Budget::SEGMENT;
        self.new_streams = 0;
        let mut data = payload;
        let Some(dir) = self.dir.get_mut(i) else {
            return seg;
        };
        if dir.skip > 0 {
            let n = dir.skip.min(data.len());
            dir.skip -= n;
            seg.continued = n;
            data = data.get(n..).unwrap_or(&[]);
        }
        if dir.buf.is_empty() && data.starts_with(PREFACE) {
            seg.preface = true;
            self.client = Some(side);
            data = data.get(PREFACE.len()..).unwrap_or(&[]);
        }
        let joined;
        let mut reassembled = false;
        // Bytes at the end of `data` that are the payload's (the rest was buffered before).
        let suffix = data.len();
        let buf_ts = dir.buf_ts;
        let ts_of = |rest_len: usize| {
            if rest_len > suffix {
                buf_ts
            } else {
                stamps.at(payload.len() - rest_len)
            }
        };
        if !dir.buf.is_empty() {
            let mut b = std::mem::take(&mut dir.buf);
            let before = b.len();
            b.extend_from_slice(data);
            let need = Frame::new_checked(&b).map_or(FRAME_HEADER_LEN, |f| f.total_len());
            seg.continued += need.saturating_sub(before).min(data.len());
            joined = b;
            data = &joined;
            reassembled = true;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let Ok(f) = Frame::new_checked(rest) else {
                self.buffer(i, rest, ts_of(rest.len()), &mut seg);
                break;
            };
            if let Err(e) = f.check() {
                self.desync(i);
                seg.error.get_or_insert(H2Error {
                    code: "INVALID_FRAME_HEADER",
                    info: format!("{} frame: {e}", f.frame_type().name()),
                });
                break;
            }
            if !f.is_complete() {
                if f.total_len() <= MAX_FRAME_BUFFER {
                    self.buffer(i, rest, ts_of(rest.len()), &mut seg);
                } else {
                    // Describe it from its header; skip the rest of its payload.
                    let mut info = FrameInfo::new(&f);
                    info.oversize = true;
                    info.trace = self.stream_trace(info.stream);
                    if matches!(
                        info.kind,
                        FrameType::Headers | FrameType::PushPromise | FrameType::Continuation
                    ) {
                        if let Some(d) = self.dir.get_mut(i) {
                            d.hpack.lose_sync();
                            d.block = None;
                        }
                    }
                    if let Some(d) = self.dir.get_mut(i) {
                        d.skip = f.total_len() - rest.len();
                    }
                    Self::push(&mut seg, info);
                }
                break;
            }
            let mut info = self.frame(side, ts_of(rest.len()), &f, &mut seg);
            if let Some(h) = &info.headers {
                info.trace = h.trace;
            }
            info.reassembled = std::mem::take(&mut reassembled);
            Self::push(&mut seg, info);
            rest = rest.get(f.total_len()..).unwrap_or(&[]);
        }
        seg.trace = seg.frames.iter().find_map(|f| f.trace);
        seg
    }

    fn push(seg: &mut Segment, f: FrameInfo) {
        if seg.frames.len() < MAX_FRAMES {
            seg.frames.push(f);
        } else {
            seg.more_frames += 1;
        }
    }

    fn buffer(&mut self, i: usize, rest: &[u8], ts_ns: u64, seg: &mut Segment) {
        seg.partial = true;
        if let Some(d) = self.dir.get_mut(i) {
            d.buf.clear();
            d.buf.extend_from_slice(rest);
            d.buf_ts = ts_ns;
        }
    }

    /// Frame boundaries are lost in this direction: drop what was in progress.
    fn desync(&mut self, i: usize) {
        if let Some(d) = self.dir.get_mut(i) {
            d.buf = Vec::new();
            d.skip = 0;
            if d.block.take().is_some() {
                d.hpack.lose_sync();
            }
        }
    }

    fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.iter().find(|s| s.id == id)
    }

    fn stream_trace(&self, id: u32) -> Option<Trace> {
        self.stream(id).and_then(|s| s.request.trace)
    }

    fn forget(&mut self, id: u32) -> Option<Stream> {
        let pos = self.streams.iter().position(|s| s.id == id)?;
        Some(self.streams.swap_remove(pos))
    }

    /// Analyses one complete frame whose first byte was captured at `now_ns`.
    fn frame(&mut self, side: Side, now_ns: u64, f: &Frame<'_>, seg: &mut Segment) -> FrameInfo {
        let i = side.index();
        let mut info = FrameInfo::new(f);
        let p = f.payload();
        // A header block in progress admits only its CONTINUATION frames (RFC 9113 §6.10).
        let pending = self
            .dir
            .get(i)
            .and_then(|d| d.block.as_ref())
            .map(|b| b.stream);
        if let Some(s) = pending {
            if info.kind != FrameType::Continuation || info.stream != s {
                self.desync(i);
                seg.error.get_or_insert(H2Error {
                    code: "EXPECTED_CONTINUATION",
                    info: format!(
                        "{} frame inside the header block of stream {s}",
                        info.kind.name()
                    ),
                });
            }
        }
        info.trace = self.stream_trace(info.stream);
        match info.kind {
            FrameType::Headers | FrameType::PushPromise => {
                let push = info.kind == FrameType::PushPromise;
                let fragment = if push {
                    PushPromise::new_checked(f).map(|p| p.fragment())
                } else {
                    HeadersPayload::new_checked(f).map(|h| h.fragment())
                };
                let Ok(fragment) = fragment else {
                    seg.error.get_or_insert(H2Error {
                        code: "BAD_PADDING",
                        info: format!("{} padding longer than the payload", info.kind.name()),
                    });
                    return info;
                };
                let block = PendingBlock {
                    ts_ns: now_ns,
                    stream: info.stream,
                    push,
                    end_stream: !push && info.flags & flags::END_STREAM != 0,
                    continuations: 0,
                    bytes: fragment.to_vec(),
                };
                if info.flags & flags::END_HEADERS != 0 {
                    info.headers = self.finish_block(side, now_ns, block, seg);
                } else if let Some(d) = self.dir.get_mut(i) {
                    d.block = Some(block);
                }
            }
            FrameType::Continuation => {
                let Some(d) = self.dir.get_mut(i) else {
                    return info;
                };
                let Some(mut block) = d.block.take() else {
                    // The start of this block was not seen (capture started in it).
                    return info;
                };
                if block.bytes.len() + p.len() > MAX_HEADER_BLOCK {
                    d.hpack.lose_sync();
                    seg.error.get_or_insert(H2Error {
                        code: "HEADER_BLOCK_TOO_LARGE",
                        info: format!("header block over {MAX_HEADER_BLOCK} bytes"),
                    });
                    return info;
                }
                if block.continuations >= MAX_CONTINUATIONS {
                    d.hpack.lose_sync();
                    seg.caps.continuation_floods += 1;
                    seg.error.get_or_insert(H2Error {
                        code: "TOO_MANY_CONTINUATIONS",
                        info: format!(
                            "header block of stream {} over {MAX_CONTINUATIONS} CONTINUATION frames",
                            block.stream
                        ),
                    });
                    return info;
                }
                block.bytes.extend_from_slice(p);
                block.continuations += 1;
                if info.flags & flags::END_HEADERS != 0 {
                    let ts = block.ts_ns;
                    info.headers = self.finish_block(side, ts, block, seg);
                } else {
                    d.block = Some(block);
                }
            }
            FrameType::Data => {
                if info.flags & flags::END_STREAM != 0 && Some(side) != self.client {
                    self.forget(info.stream);
                }
            }
            FrameType::RstStream => {
                info.error_code = Some(RstStream::new_checked(f).map_or(0, |r| r.error_code()));
                if let Some(s) = self.forget(info.stream) {
                    info.request = Some(s.request);
                }
            }
            FrameType::Goaway => {
                // `check` passed: the payload has its 8 fixed bytes.
                if let Ok(g) = Goaway::new_checked(f) {
                    info.last_stream = Some(g.last_stream_id());
                    info.error_code = Some(g.error_code());
                    let dbg = g.debug_data();
                    if !dbg.is_empty() {
                        info.debug_data = Some(bounded(dbg));
                    }
                }
            }
            FrameType::Settings => {
                info.settings = Settings::new_checked(f)
                    .map(|s| s.params().collect())
                    .unwrap_or_default();
            }
            FrameType::WindowUpdate => {
                info.increment = Some(WindowUpdate::new_checked(f).map_or(0, |w| w.increment()))
            }
            FrameType::Priority | FrameType::Ping | FrameType::Unknown(_) => {}
        }
        info
    }

    /// Decodes a complete header block and pairs it with its stream.
    fn finish_block(
        &mut self,
        side: Side,
        now_ns: u64,
        pb: PendingBlock,
        seg: &mut Segment,
    ) -> Option<Box<Headers>> {
        let d = self.dir.get_mut(side.index())?;
        let unsynced = d.hpack.unsynced;
        let block = d.hpack.decode_within(&pb.bytes, &mut self.budget);
        seg.caps.lists_truncated += usize::from(block.list_truncated);
        seg.caps.fields_omitted += block.omitted;
        seg.caps.references_skipped += block.references_skipped;
        if let Some(e) = block.error {
            seg.error.get_or_insert(H2Error {
                code: e.as_str(),
                info: format!("header block of stream {}", pb.stream),
            });
        }
        let status = block
            .get(":status")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u16>().ok());
        let has_pseudo_unknown = block.unknown().next().is_some();
        let role = if pb.push {
            Role::Promise
        } else if block.get(":method").is_some() {
            Role::Request
        } else if let Some(s) = status {
            if (100..200).contains(&s) {
                Role::Informational
            } else {
                Role::Response
            }
        } else if self.stream(pb.stream).is_some_and(|s| s.responded)
            || (pb.end_stream && Some(side) != self.client && !has_pseudo_unknown)
        {
            Role::Trailers
        } else {
            Role::Unknown
        };
        let own = trace_from_headers(block.known());
        let mut h = Headers {
            role,
            unsynced,
            continuations: pb.continuations,
            status,
            request: None,
            latency_ns: None,
            grpc: None,
            trace: own,
            block,
        };
        match role {
            Role::Request => {
                if Some(side) != self.client && self.client.is_none() {
                    self.client = Some(side);
                }
                let b = &h.block;
                let grpc = b
                    .get("content-type")
                    .is_some_and(|v| v.starts_with(b"application/grpc"))
                    .then(|| b.get(":path").and_then(grpc_path))
                    .flatten()
                    .map(|(service, method)| Grpc {
                        service,
                        method,
                        ..Grpc::default()
                    });
                let request = RequestInfo {
                    method: b.get(":method").map(bounded).unwrap_or_default(),
                    url: b.get(":path").map(bounded).unwrap_or_default(),
                    host: b.get(":authority").or_else(|| b.get("host")).map(bounded),
                    user_agent: b.get("user-agent").map(bounded),
                    ts_ns: now_ns,
                    trace: own,
                };
                h.grpc = grpc.clone();
                self.forget(pb.stream);
                if self.new_streams >= MAX_SEGMENT_STREAMS {
                    // Described, not remembered: its response will not be paired.
                    seg.caps.streams_skipped += 1;
                    return Some(Box::new(h));
                }
                self.new_streams += 1;
                if self.streams.len() >= MAX_STREAMS {
                    if let Some(pos) = self
                        .streams
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.request.ts_ns)
                        .map(|(p, _)| p)
                    {
                        self.streams.swap_remove(pos);
                        self.dropped_streams += 1;
                    }
                }
                self.streams.push(Stream {
                    id: pb.stream,
                    request,
                    grpc,
                    responded: false,
                    latency_ns: None,
                });
                self.current = own;
            }
            Role::Response | Role::Informational | Role::Trailers | Role::Unknown => {
                let final_resp = role == Role::Response;
                let trailers_only = final_resp && pb.end_stream;
                if let Some(s) = self.streams.iter_mut().find(|s| s.id == pb.stream) {
                    h.trace = own.or(s.request.trace);
                    if role != Role::Trailers {
                        h.latency_ns = Some(now_ns.saturating_sub(s.request.ts_ns));
                        if final_resp {
                            s.latency_ns = h.latency_ns;
                        }
                    } else {
                        h.latency_ns = s.latency_ns;
                    }
                    h.request = Some(s.request.clone());
                    s.responded |= final_resp;
                    if let Some(g) = &s.grpc {
                        let mut g = g.clone();
                        g.status = h
                            .block
                            .get("grpc-status")
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.trim().parse().ok());
                        g.message = h.block.get("grpc-message").map(percent_decode);
                        h.grpc = Some(g);
                    }
                } else if let Some(v) = h.block.get("grpc-status") {
                    // A stream whose request was not seen: report the status alone.
                    h.grpc = Some(Grpc {
                        status: std::str::from_utf8(v)
                            .ok()
                            .and_then(|v| v.trim().parse().ok()),
                        message: h.block.get("grpc-message").map(percent_decode),
                        ..Grpc::default()
                    });
                }
                if final_resp {
                    self.current = h.trace;
                }
                if pb.end_stream || trailers_only {
                    self.forget(pb.stream);
                }
            }
            Role::Promise => {}
        }
        Some(Box::new(h))
    }
}

#[cfg(test)]
mod tests;
