//! HTTP/1.1 analysis with bounded per-connection state, and trace-context extraction.
//!
//! Recognition is by content on any TCP port: a segment that starts with a request line
//! (`<METHOD> <target> HTTP/1.x`) or a status line (`HTTP/1.x <3 digits>`) starts a message,
//! parsed with `httparse`. Per connection ([`Conn`], kept in [`crate::FlowState::http`]):
//!
//! - a header block split across segments is buffered per direction (at most
//!   [`MAX_HEADER_BLOCK`] bytes) and parsed when complete ([`Message::reassembled`]); the
//!   segments before are reported as [`Kind::Partial`], not as errors;
//! - body bytes announced by `Content-Length`, a chunked body (until its last chunk), or a
//!   response delimited by the connection close are reported as [`Kind::Body`]
//!   continuations;
//! - requests wait in a FIFO (at most [`MAX_PENDING`]) and each response pops its own
//!   request (keep-alive and pipelining), giving the latency; `1xx` responses pop nothing;
//! - the trace of the latest exchange ([`Conn::current`]) is what pure ACK/FIN/RST segments
//!   of the connection carry.
//!
//! Trace context ([`trace_from_headers`]): a valid W3C `traceparent` wins over
//! `X-Cloud-Trace-Context`; an invalid `traceparent` is ignored (W3C: treat as absent), so a
//! valid `X-Cloud-Trace-Context` then applies. Span ids are kept as `u64` (the Cloud span id
//! is decimal, the W3C parent id 16 hex digits) and written as 16 hex digits.
//!
//! The bytes come in order ([`Conn::on_bytes`], from [`crate::reassembly`]): a
//! retransmission is not parsed twice and an out-of-order segment waits for its gap. A gap
//! that never fills ([`Conn::on_gap`]) is skipped inside a body of known length without
//! losing the message boundaries; anywhere else the direction resynchronises at the next
//! request or status line starting a line (the bytes before it are [`Kind::Skipped`]),
//! and a response found that way answers the newest waiting request. Latency runs from the
//! request's first byte to the response's first byte (each byte's first capture).
//!
//! Limitations (documented, not errors): when one delivery holds several messages
//! (pipelining) all update the state but only the first is described
//! ([`Message::pipelined`] counts the others); chunked bodies end at bytes ending with the
//! last chunk (`0\r\n\r\n`), chunk sizes are not followed.

use std::collections::VecDeque;

use crate::flow::Side;
use crate::reassembly::Stamps;

/// Most bytes of an unfinished header block buffered per direction.
pub const MAX_HEADER_BLOCK: usize = 8 * 1024;
/// Most requests waiting for their response per connection (the oldest is dropped).
pub const MAX_PENDING: usize = 16;
/// Most headers parsed per message.
pub const MAX_HEADERS: usize = 64;
/// Bytes of the raw message kept for DEBUG entries.
pub const RAW_BYTES: usize = 1024;
/// Bytes of body kept as a sample.
pub const BODY_SAMPLE: usize = 256;
/// Longest method/URL/Host/User-Agent kept per pending request.
const MAX_FIELD: usize = 512;

/// Which header a trace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSource {
    /// W3C `traceparent`.
    Traceparent,
    /// Google `X-Cloud-Trace-Context`.
    CloudTrace,
}

/// A trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    /// 32 lowercase hex digits.
    pub trace_id: [u8; 32],
    /// The span (W3C parent id, or the decimal Cloud span id), when present.
    pub span_id: Option<u64>,
    /// The sampling flag of the header (`-01` / `;o=1`).
    pub sampled: bool,
    /// The header it came from.
    pub source: TraceSource,
}

impl Trace {
    /// The trace id as text.
    pub fn trace_id_str(&self) -> &str {
        std::str::from_utf8(&self.trace_id).unwrap_or("")
    }
}

fn hex32(v: &[u8]) -> Option<[u8; 32]> {
    let mut id = [0u8; 32];
    if v.len() != 32 || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    for (d, s) in id.iter_mut().zip(v) {
        *d = s.to_ascii_lowercase();
    }
    // All zeros is invalid in both formats.
    (id != [b'0'; 32]).then_some(id)
}

fn hex_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 16 || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(v).ok()?, 16).ok()
}

/// `traceparent: VERSION-TRACEID-PARENTID-FLAGS` (W3C Trace Context level 1).
pub fn parse_traceparent(v: &[u8]) -> Option<Trace> {
    let v = v.trim_ascii();
    let mut parts = v.split(|b| *b == b'-');
    let (ver, tid, pid, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if ver.len() != 2 || !ver.iter().all(u8::is_ascii_hexdigit) || ver.eq_ignore_ascii_case(b"ff") {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if ver == b"00" && parts.next().is_some() {
        return None;
    }
    if pid.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace_id = hex32(tid)?;
    let span = hex_u64(pid).filter(|s| *s != 0)?;
    let flags = u8::try_from(hex_u64(flags)?).ok()?;
    Some(Trace {
        trace_id,
        span_id: Some(span),
        sampled: flags & 1 == 1,
        source: TraceSource::Traceparent,
    })
}

/// `X-Cloud-Trace-Context: TRACE_ID[/SPAN_ID][;o=OPTIONS]` (span id decimal).
pub fn parse_cloud_trace(v: &[u8]) -> Option<Trace> {
    let v = v.trim_ascii();
    let (ids, opts) = match v.iter().position(|b| *b == b';') {
        Some(i) => (v.get(..i)?, v.get(i + 1..)?),
        None => (v, &[][..]),
    };
    let (tid, span) = match ids.iter().position(|b| *b == b'/') {
        Some(i) => (ids.get(..i)?, Some(ids.get(i + 1..)?)),
        None => (ids, None),
    };
    let trace_id = hex32(tid)?;
    let span_id = match span {
        Some(s) if !s.is_empty() => {
            if !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(std::str::from_utf8(s).ok()?.parse::<u64>().ok()?)
        }
        _ => None,
    };
    let sampled = opts.trim_ascii() == b"o=1";
    Some(Trace {
        trace_id,
        span_id,
        sampled,
        source: TraceSource::CloudTrace,
    })
}

/// The trace of a header list: a valid `traceparent` wins, else `X-Cloud-Trace-Context`
/// (first value of each, names case-insensitive).
pub fn trace_from_headers<'h>(headers: impl Iterator<Item = (&'h str, &'h [u8])>) -> Option<Trace> {
    let mut tp = None;
    let mut xc = None;
    for (name, value) in headers {
        if tp.is_none() && name.eq_ignore_ascii_case("traceparent") {
            tp = Some(parse_traceparent(value));
        } else if xc.is_none() && name.eq_ignore_ascii_case("x-cloud-trace-context") {
            xc = Some(parse_cloud_trace(value));
        }
    }
    tp.flatten().or(xc.flatten())
}

/// What a segment's HTTP bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// A request (its header block is complete).
    #[default]
    Request,
    /// A response (its header block is complete).
    Response,
    /// A continuation of the body of the previous message in this direction.
    Body,
    /// Part of a header block that continues in a later segment (buffered).
    Partial,
    /// Bytes skipped after a gap in the stream, before the next message start.
    Skipped,
}

impl Kind {
    /// Name in JSON (`HTTP.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Body => "body",
            Kind::Partial => "partial",
            Kind::Skipped => "skipped",
        }
    }
}

/// A message that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// `INVALID_HTTP11_REQUEST`, `INVALID_HTTP11_RESPONSE` or `HEADER_BLOCK_TOO_LARGE`.
    pub code: &'static str,
    /// What `httparse` said.
    pub info: String,
}

/// The request a response answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// Method.
    pub method: String,
    /// Request target as sent (bounded).
    pub url: String,
    /// `Host` header.
    pub host: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Time of the request's segment (ns).
    pub ts_ns: u64,
    /// The request's trace.
    pub trace: Option<Trace>,
}

impl RequestInfo {
    /// Heap bytes of its strings.
    pub fn heap_bytes(&self) -> usize {
        self.method.capacity()
            + self.url.capacity()
            + self.host.as_ref().map_or(0, String::capacity)
            + self.user_agent.as_ref().map_or(0, String::capacity)
    }
}

/// One HTTP/1.x message (or continuation) as seen in one segment. Header values and `raw`
/// are *not* redacted here: the renderer redacts them.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// What the bytes are.
    pub kind: Kind,
    /// Minor version (`HTTP/1.<minor>`).
    pub minor: u8,
    /// Request method.
    pub method: String,
    /// Request target.
    pub url: String,
    /// Response status code.
    pub code: u16,
    /// Response reason phrase.
    pub reason: String,
    /// Headers: name as sent, raw value.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Length of the header block (request/status line to the empty line included).
    pub header_len: usize,
    /// `Content-Length`, when present and valid.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Body bytes of this message in this segment (or the continuation's length).
    pub body_len: usize,
    /// First body bytes (at most [`BODY_SAMPLE`]).
    pub body_sample: Vec<u8>,
    /// The message's first bytes (at most [`RAW_BYTES`]), unredacted.
    pub raw: Vec<u8>,
    /// The header block was reassembled from several segments.
    pub reassembled: bool,
    /// The body continues in later segments.
    pub fragmented: bool,
    /// Parse error.
    pub error: Option<HttpError>,
    /// The trace of the exchange (own headers; a response without one inherits its request's).
    pub trace: Option<Trace>,
    /// For responses: the request it answers.
    pub request: Option<RequestInfo>,
    /// For responses: time since the request (ns).
    pub latency_ns: Option<u64>,
    /// Further messages in the same segment (pipelining), tracked but not described.
    pub pipelined: usize,
    /// TCP payload bytes of the segment (or of the in-order bytes it delivered).
    pub size: usize,
    /// Bytes of the stream missing before these (a gap the capture never filled).
    pub gap: u64,
    /// Bytes skipped after that gap before a message start was found.
    pub skipped: usize,
}

impl Message {
    /// `HTTP/1.<minor>`.
    pub fn proto(&self) -> &'static str {
        if self.minor == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Total response size: header block plus the announced (or seen) body.
    pub fn total_size(&self) -> u64 {
        let body = self.content_length.unwrap_or(self.body_len as u64);
        (self.header_len as u64).saturating_add(body)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Body {
    #[default]
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Per-connection HTTP/1.1 state (bounded: two header buffers of at most
/// [`MAX_HEADER_BLOCK`] bytes and [`MAX_PENDING`] requests with bounded fields).
#[derive(Debug, Clone, Default)]
pub struct Conn {
    partial: [Vec<u8>; 2],
    body: [Body; 2],
    /// Per direction, the minor version of the last complete message (`None` before one):
    /// body continuations and unfinished header blocks carry no version of their own.
    minor: [Option<u8>; 2],
    pending: VecDeque<RequestInfo>,
    /// Per direction, when the first byte of the unfinished header block was captured.
    partial_ts: [u64; 2],
    /// Per direction, a gap lost the message boundaries: look for the next message start.
    resync: [bool; 2],
    /// The trace of the latest exchange (request seen last, or its response).
    pub current: Option<Trace>,
    /// Requests dropped because [`MAX_PENDING`] were waiting.
    pub dropped_requests: u64,
}

/// A segment starts like an HTTP/1.x request line.
pub fn looks_like_request(p: &[u8]) -> bool {
    let line = match p.iter().position(|b| *b == b'\n') {
        Some(i) => p.get(..i).unwrap_or(p),
        None => return false,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = line.iter().position(|b| *b == b' ') else {
        return false;
    };
    let method = line.get(..sp).unwrap_or(&[]);
    (1..=20).contains(&method.len())
        && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-')
        && line.len() > sp + 10
        && line
            .get(line.len() - 9..line.len() - 1)
            .is_some_and(|v| v == b" HTTP/1.")
}

/// A segment starts like an HTTP/1.x status line.
pub fn looks_like_response(p: &[u8]) -> bool {
    p.len() >= 12
        && p.starts_with(b"HTTP/1.")
        && p.get(7).is_some_and(u8::is_ascii_digit)
        && p.get(8) == Some(&b' ')
        && p.get(9..12)
            .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
}

fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_string()
}

fn text(v: &[u8]) -> String {
    bounded(&String::from_utf8_lossy(v))
}

enum Parsed {
    Done(Box<Message>, usize),
    Incomplete,
    Failed(Box<Message>),
}

impl Conn {
    /// The version a continuation in `side`'s direction belongs to: that of the last complete
    /// message, or HTTP/1.1 (by far the most common) before any.
    fn minor_of(&self, side: Side) -> u8 {
        self.minor.get(side.index()).copied().flatten().unwrap_or(1)
    }

    /// True when this connection has HTTP state worth keeping.
    pub fn is_idle(&self) -> bool {
        self.partial.iter().all(Vec::is_empty)
            && self.body == [Body::None, Body::None]
            && self.pending.is_empty()
            && self.current.is_none()
    }

    /// Requests waiting for a response.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes buffered for unfinished header blocks.
    pub fn buffered(&self) -> usize {
        self.partial.iter().map(Vec::len).sum()
    }

    /// Heap bytes this state holds (an estimate from capacities, for the state budget).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.partial.iter().map(Vec::capacity).sum::<usize>()
            + self.pending.capacity() * std::mem::size_of::<RequestInfo>()
            + self
                .pending
                .iter()
                .map(RequestInfo::heap_bytes)
                .sum::<usize>()
    }

    /// A FIN from `side`: its unfinished header block will never complete.
    pub fn on_fin(&mut self, side: Side) {
        if let Some(p) = self.partial.get_mut(side.index()) {
            *p = Vec::new();
        }
        if let Some(b) = self.body.get_mut(side.index()) {
            *b = Body::None;
        }
    }

    /// `n` bytes sent by `side` will never be seen (a gap in the stream): skipped inside a
    /// body of known length; anywhere else the direction resynchronises at the next message
    /// start.
    pub fn on_gap(&mut self, side: Side, n: u64) {
        let i = side.index();
        if n == 0 {
            return;
        }
        let had_partial = self.partial.get(i).is_some_and(|p| !p.is_empty());
        if let Some(p) = self.partial.get_mut(i) {
            *p = Vec::new();
        }
        let Some(body) = self.body.get_mut(i) else {
            return;
        };
        let keeps_boundaries = match *body {
            Body::Length(left) if !had_partial && n <= left => {
                *body = if n == left {
                    Body::None
                } else {
                    Body::Length(left - n)
                };
                true
            }
            Body::UntilClose if !had_partial => true,
            _ => {
                *body = Body::None;
                false
            }
        };
        if !keeps_boundaries {
            if let Some(r) = self.resync.get_mut(i) {
                *r = true;
            }
        }
    }

    /// Analyses the payload of a segment sent by `side` at `now_ns`; `None` when it is not
    /// HTTP (and no HTTP message is in progress in that direction).
    pub fn on_segment(&mut self, side: Side, now_ns: u64, payload: &[u8]) -> Option<Message> {
        self.on_bytes(side, now_ns, &Stamps::at_once(now_ns), payload)
    }

    /// Analyses in-order bytes sent by `side`, delivered by a segment captured at `now_ns`;
    /// `stamps` say when each byte was first captured. `None` when they are not HTTP (and
    /// no HTTP message is in progress in that direction).
    pub fn on_bytes(
        &mut self,
        side: Side,
        now_ns: u64,
        stamps: &Stamps,
        payload: &[u8],
    ) -> Option<Message> {
        let i = side.index();
        if payload.is_empty() {
            return None;
        }
        if self.resync.get(i).copied().unwrap_or(false) {
            let Some(k) = message_start(payload) else {
                return Some(Message {
                    kind: Kind::Skipped,
                    minor: self.minor_of(side),
                    skipped: payload.len(),
                    size: payload.len(),
                    trace: self.current,
                    ..Message::default()
                });
            };
            if let Some(r) = self.resync.get_mut(i) {
                *r = false;
            }
            let rest = payload.get(k..).unwrap_or(&[]);
            if looks_like_response(rest) {
                // The responses lost in the gap answered the older requests.
                while self.pending.len() > 1 {
                    self.pending.pop_front();
                }
            }
            let mut m = self.on_bytes(side, now_ns, &stamps.from(k), rest)?;
            m.skipped = k;
            m.size = payload.len();
            return Some(m);
        }
        // 1. A header block in progress.
        let buffered = self.partial.get(i).is_some_and(|p| !p.is_empty());
        if buffered {
            let mut buf = std::mem::take(self.partial.get_mut(i)?);
            if buf.len() + payload.len() > MAX_HEADER_BLOCK {
                let is_req = looks_like_request(&buf);
                return Some(Message {
                    kind: if is_req {
                        Kind::Request
                    } else {
                        Kind::Response
                    },
                    error: Some(HttpError {
                        code: "HEADER_BLOCK_TOO_LARGE",
                        info: format!("header block over {MAX_HEADER_BLOCK} bytes"),
                    }),
                    size: payload.len(),
                    ..Message::default()
                });
            }
            let (plen, pts) = (buf.len(), self.partial_ts.get(i).copied().unwrap_or(now_ns));
            buf.extend_from_slice(payload);
            let ts_of = |o: usize| {
                if o < plen {
                    pts
                } else {
                    stamps.at(o - plen)
                }
            };
            let mut m = self.parse_from(side, &ts_of, &buf, true)?;
            m.size = payload.len();
            return Some(m);
        }
        // 2. A new message.
        if looks_like_request(payload) || looks_like_response(payload) {
            let mut m = self.parse_from(side, &|o| stamps.at(o), payload, false)?;
            m.size = payload.len();
            return Some(m);
        }
        // 3. A body continuation.
        let body = self.body.get_mut(i)?;
        let mut len = payload.len();
        match *body {
            Body::None => return None,
            Body::Length(n) => {
                let left = n.saturating_sub(len as u64);
                *body = if left == 0 {
                    Body::None
                } else {
                    Body::Length(left)
                };
                // In-order bytes may hold the body's end and the next message.
                let end = usize::try_from(n).unwrap_or(usize::MAX);
                let next = payload.get(end..).unwrap_or(&[]);
                if !next.is_empty() && (looks_like_request(next) || looks_like_response(next)) {
                    len = end;
                    let at = |o: usize| stamps.at(end + o);
                    if let Some(mut m) = self.parse_from(side, &at, next, false) {
                        m.size = payload.len();
                        return Some(m);
                    }
                }
            }
            Body::Chunked => {
                if payload.ends_with(b"0\r\n\r\n") {
                    *body = Body::None;
                }
            }
            Body::UntilClose => {}
        }
        let fragmented = self.body.get(i).is_some_and(|b| *b != Body::None);
        Some(Message {
            kind: Kind::Body,
            minor: self.minor_of(side),
            body_len: len,
            fragmented,
            trace: self.current,
            size: len,
            ..Message::default()
        })
    }

    /// Parses the messages starting at `bytes` (a segment, or a reassembled header block
    /// with what followed it); the first is returned, the others are counted.
    fn parse_from(
        &mut self,
        side: Side,
        ts_of: &dyn Fn(usize) -> u64,
        bytes: &[u8],
        reassembled: bool,
    ) -> Option<Message> {
        let i = side.index();
        let mut first: Option<Message> = None;
        let mut rest = bytes;
        let mut count = 0usize;
        while !rest.is_empty() && count < 32 {
            if count > 0 && !(looks_like_request(rest) || looks_like_response(rest)) {
                break;
            }
            count += 1;
            let at = bytes.len() - rest.len();
            match self.parse_one(ts_of(at), rest) {
                Parsed::Done(mut m, used) => {
                    m.reassembled = reassembled && first.is_none();
                    rest = rest.get(used..).unwrap_or(&[]);
                    let next = if m.fragmented {
                        next_body(&m)
                    } else {
                        Body::None
                    };
                    if let Some(b) = self.body.get_mut(i) {
                        *b = next;
                    }
                    if let Some(v) = self.minor.get_mut(i) {
                        *v = Some(m.minor);
                    }
                    if first.is_none() {
                        first = Some(*m);
                    } else if let Some(f) = first.as_mut() {
                        f.pipelined += 1;
                    }
                    if rest.is_empty() {
                        break;
                    }
                }
                Parsed::Incomplete => {
                    if rest.len() > MAX_HEADER_BLOCK {
                        let m = Message {
                            kind: if looks_like_request(rest) {
                                Kind::Request
                            } else {
                                Kind::Response
                            },
                            error: Some(HttpError {
                                code: "HEADER_BLOCK_TOO_LARGE",
                                info: format!("header block over {MAX_HEADER_BLOCK} bytes"),
                            }),
                            ..Message::default()
                        };
                        return Some(first.unwrap_or(m));
                    }
                    if let Some(p) = self.partial.get_mut(i) {
                        p.clear();
                        p.extend_from_slice(rest);
                    }
                    if let Some(t) = self.partial_ts.get_mut(i) {
                        *t = ts_of(at);
                    }
                    if first.is_none() {
                        first = Some(Message {
                            kind: Kind::Partial,
                            minor: self.minor_of(side),
                            reassembled,
                            ..Message::default()
                        });
                    }
                    break;
                }
                Parsed::Failed(m) => {
                    if let Some(b) = self.body.get_mut(i) {
                        *b = Body::None;
                    }
                    if first.is_none() {
                        first = Some(*m);
                    }
                    break;
                }
            }
        }
        first
    }

    fn parse_one(&mut self, now_ns: u64, bytes: &[u8]) -> Parsed {
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut m = Message::default();
        let is_req = looks_like_request(bytes);
        let res = if is_req {
            let mut req = httparse::Request::new(&mut hs);
            let r = req.parse(bytes);
            m.kind = Kind::Request;
            m.method = bounded(req.method.unwrap_or(""));
            m.url = bounded(req.path.unwrap_or(""));
            m.minor = req.version.unwrap_or(1);
            r.map(|s| (s, req.headers.len()))
        } else {
            let mut resp = httparse::Response::new(&mut hs);
            let r = resp.parse(bytes);
            m.kind = Kind::Response;
            m.code = resp.code.unwrap_or(0);
            m.reason = bounded(resp.reason.unwrap_or(""));
            m.minor = resp.version.unwrap_or(1);
            r.map(|s| (s, resp.headers.len()))
        };
        let (n, nh) = match res {
            Ok((httparse::Status::Complete(n), nh)) => (n, nh),
            Ok((httparse::Status::Partial, _)) => return Parsed::Incomplete,
            Err(e) => {
                m.error = Some(HttpError {
                    code: if is_req {
                        "INVALID_HTTP11_REQUEST"
                    } else {
                        "INVALID_HTTP11_RESPONSE"
                    },
                    info: e.to_string(),
                });
                m.raw = bytes
                    .get(..RAW_BYTES.min(bytes.len()))
                    .unwrap_or(&[])
                    .to_vec();
                m.header_len = bytes.len();
                return Parsed::Failed(Box::new(m));
            }
        };
        m.header_len = n;
        m.headers = hs
            .iter()
            .take(nh)
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        m.chunked = m
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"));
        m.content_length = m
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let after = bytes.get(n..).unwrap_or(&[]);
        // Does this message have a body, and how is it delimited?
        let front = self.pending.front().map(|r| r.method.as_str());
        let head_req = front.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
        // A 2xx to CONNECT starts a tunnel: what follows is not an HTTP body.
        let tunnel = front.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
            && (200..300).contains(&m.code);
        let no_body = if is_req {
            !m.chunked && m.content_length.unwrap_or(0) == 0
        } else {
            (100..200).contains(&m.code) || m.code == 204 || m.code == 304 || head_req || tunnel
        };
        let used_body = if no_body {
            0
        } else if m.chunked {
            match find(after, b"0\r\n\r\n") {
                Some(end) if end == 0 || after.get(end - 1) == Some(&b'\n') => end + 5,
                _ => {
                    m.fragmented = true;
                    after.len()
                }
            }
        } else if let Some(cl) = m.content_length {
            let seen = usize::try_from(cl).unwrap_or(usize::MAX).min(after.len());
            m.fragmented = (seen as u64) < cl;
            seen
        } else if is_req {
            0
        } else {
            m.fragmented = true;
            after.len()
        };
        m.body_len = used_body;
        let body = after.get(..used_body).unwrap_or(&[]);
        m.body_sample = body
            .get(..BODY_SAMPLE.min(body.len()))
            .unwrap_or(&[])
            .to_vec();
        let whole = bytes.get(..n + used_body).unwrap_or(bytes);
        m.raw = whole
            .get(..RAW_BYTES.min(whole.len()))
            .unwrap_or(&[])
            .to_vec();
        let own = trace_from_headers(m.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        if is_req {
            m.trace = own;
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
                self.dropped_requests += 1;
            }
            self.pending.push_back(RequestInfo {
                method: m.method.clone(),
                url: m.url.clone(),
                host: m.header("host").map(text),
                user_agent: m.header("user-agent").map(text),
                ts_ns: now_ns,
                trace: own,
            });
            self.current = own;
        } else if (100..200).contains(&m.code) && m.code != 101 {
            // Interim response: the request still waits for its final one.
            m.trace = own.or_else(|| self.pending.front().and_then(|r| r.trace));
            if let Some(r) = self.pending.front() {
                m.latency_ns = Some(now_ns.saturating_sub(r.ts_ns));
            }
        } else {
            let req = self.pending.pop_front();
            m.trace = own.or_else(|| req.as_ref().and_then(|r| r.trace));
            m.latency_ns = req.as_ref().map(|r| now_ns.saturating_sub(r.ts_ns));
            m.request = req;
            self.current = m.trace;
        }
        Parsed::Done(Box::new(m), n + used_body)
    }
}

fn next_body(m: &Message) -> Body {
    if m.chunked {
        Body::Chunked
    } else if let Some(cl) = m.content_length {
        Body::Length(cl.saturating_sub(m.body_len as u64))
    } else {
        Body::UntilClose
    }
}

/// Where the first request or status line starting a line begins in `bytes`.
fn message_start(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&k| {
        (k == 0 || bytes.get(k - 1) == Some(&b'\n'))
            && bytes.get(k..).is_some_and(|r| {
                r.first().is_some_and(u8::is_ascii_uppercase)
                    && (looks_like_request(r) || looks_like_response(r))
            })
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// The message of `payload`, bytes delivered on `side` at `now` (nanoseconds) that were
    /// all captured at `captured`.
    fn bytes_at(c: &mut Conn, side: Side, (now, captured): (u64, u64), payload: &[u8]) -> Message {
        c.on_bytes(side, now, &Stamps::at_once(captured), payload)
            .unwrap()
    }

    #[test]
    fn traceparent_and_cloud_trace() {
        let t = parse_traceparent(TP.as_bytes()).unwrap();
        assert_eq!(t.trace_id_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, Some(0x00f0_67aa_0ba9_02b7));
        assert!(t.sampled);
        let t =
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!t.sampled);
        for bad in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad}");
        }
        let c = parse_cloud_trace(b"0af7651916cd43dd8448eb211c80319c/12345678901234567890;o=1")
            .unwrap();
        assert_eq!(c.trace_id_str(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(c.span_id, Some(12_345_678_901_234_567_890));
        assert_eq!(format!("{:016x}", c.span_id.unwrap()), "ab54a98ceb1f0ad2");
        assert!(c.sampled);
        let c = parse_cloud_trace(b"0af7651916cd43dd8448eb211c80319c/1;o=0").unwrap();
        assert!(!c.sampled);
        let c = parse_cloud_trace(b"0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!((c.span_id, c.sampled), (None, false));
        assert!(parse_cloud_trace(b"0af7651916cd43dd8448eb211c80319c/12x;o=1").is_none());
        assert!(parse_cloud_trace(b"nothex/1;o=1").is_none());
    }

    #[test]
    fn traceparent_wins_and_invalid_one_is_ignored() {
        let xc = "0af7651916cd43dd8448eb211c80319c/1;o=1";
        let both = [
            ("X-Cloud-Trace-Context", xc.as_bytes()),
            ("TraceParent", TP.as_bytes()),
        ];
        let t = trace_from_headers(both.iter().copied()).unwrap();
        assert_eq!(t.source, TraceSource::Traceparent);
        let bad = [
            ("traceparent", &b"garbage"[..]),
            ("x-cloud-trace-context", xc.as_bytes()),
        ];
        let t = trace_from_headers(bad.iter().copied()).unwrap();
        assert_eq!((t.source, t.span_id), (TraceSource::CloudTrace, Some(1)));
        assert!(trace_from_headers([("accept", &b"*/*"[..])].into_iter()).is_none());
    }

    #[test]
    fn detection() {
        assert!(looks_like_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(looks_like_request(b"M-SEARCH * HTTP/1.1\r\n"));
        assert!(!looks_like_request(b"GET / HTTP/1.1"), "no line end yet");
        assert!(!looks_like_request(b"get / HTTP/1.1\r\n"));
        assert!(!looks_like_request(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(looks_like_response(b"HTTP/1.1 200 OK\r\n"));
        assert!(looks_like_response(b"HTTP/1.0 404 \r\n"));
        assert!(!looks_like_response(b"HTTP/2 200\r\n"));
        assert!(!looks_like_response(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00"
        ));
    }

    #[test]
    fn keep_alive_pipelining_pairs_fifo() {
        let mut c = Conn::default();
        let two = format!(
            "GET /a HTTP/1.1\r\nHost: h\r\ntraceparent: {TP}\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        let m = c.on_segment(Side::A, 1_000, two.as_bytes()).unwrap();
        assert_eq!(
            (m.kind, m.url.as_str(), m.pipelined),
            (Kind::Request, "/a", 1)
        );
        assert_eq!(c.pending(), 2);
        assert!(c.current.is_none(), "the latest request (/b) is untraced");
        let r1 = c
            .on_segment(
                Side::B,
                13_000_000,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            )
            .unwrap();
        assert_eq!(r1.request.as_ref().unwrap().url, "/a");
        assert_eq!(r1.latency_ns, Some(13_000_000 - 1_000));
        assert_eq!(r1.trace.unwrap().source, TraceSource::Traceparent);
        let r2 = c
            .on_segment(
                Side::B,
                20_000_000,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            )
            .unwrap();
        assert_eq!(
            (r2.code, r2.request.as_ref().unwrap().url.as_str()),
            (404, "/b")
        );
        assert!(r2.trace.is_none(), "no inheritance from another request");
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn continuations_keep_the_version_of_their_message() {
        let mut c = Conn::default();
        let p = c
            .on_segment(Side::B, 0, b"HTTP/1.0 200 OK\r\nConte")
            .unwrap();
        assert_eq!(
            (p.kind, p.proto()),
            (Kind::Partial, "HTTP/1.1"),
            "unknown yet"
        );
        let m = c
            .on_segment(Side::B, 1, b"nt-Length: 8\r\n\r\nabcd")
            .unwrap();
        assert_eq!((m.kind, m.proto()), (Kind::Response, "HTTP/1.0"));
        let b = c.on_segment(Side::B, 2, b"efgh").unwrap();
        assert_eq!((b.kind, b.proto()), (Kind::Body, "HTTP/1.0"));
    }

    #[test]
    fn split_header_block_and_body_continuations() {
        let mut c = Conn::default();
        let p = c
            .on_segment(Side::A, 0, b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Le")
            .unwrap();
        assert_eq!(p.kind, Kind::Partial);
        assert!(p.error.is_none());
        assert!(c.buffered() > 0);
        let m = c.on_segment(Side::A, 1, b"ngth: 10\r\n\r\n1234").unwrap();
        assert_eq!(
            (m.kind, m.reassembled, m.fragmented),
            (Kind::Request, true, true)
        );
        assert_eq!((m.content_length, m.body_len), (Some(10), 4));
        assert_eq!(c.buffered(), 0);
        let b = c.on_segment(Side::A, 2, b"56789").unwrap();
        assert_eq!((b.kind, b.fragmented), (Kind::Body, true));
        assert_eq!(
            b.proto(),
            "HTTP/1.1",
            "a continuation has its message's version"
        );
        let b = c.on_segment(Side::A, 3, b"0").unwrap();
        assert_eq!((b.kind, b.fragmented), (Kind::Body, false));
        assert!(c.on_segment(Side::A, 4, b"\x00\x01binary").is_none());
        // Chunked response across segments.
        let r = c
            .on_segment(
                Side::B,
                5,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            )
            .unwrap();
        assert!(r.chunked && r.fragmented);
        assert_eq!(r.request.unwrap().url, "/up");
        let b = c.on_segment(Side::B, 6, b"0\r\n\r\n").unwrap();
        assert_eq!((b.kind, b.fragmented), (Kind::Body, false));
    }

    #[test]
    fn errors_and_bounds() {
        let mut c = Conn::default();
        let m = c
            .on_segment(Side::A, 0, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap();
        assert_eq!(m.error.unwrap().code, "INVALID_HTTP11_REQUEST");
        // An endless header block is cut at the cap, and the buffer is freed.
        let mut c = Conn::default();
        let m = c
            .on_segment(Side::A, 0, b"GET / HTTP/1.1\r\nX: y\r\n")
            .unwrap();
        assert_eq!(m.kind, Kind::Partial);
        let filler = vec![b'a'; 1000];
        let mut err = None;
        for _ in 0..20 {
            let m = c.on_segment(Side::A, 0, &filler).unwrap();
            assert!(c.buffered() <= MAX_HEADER_BLOCK);
            if m.error.is_some() {
                err = m.error;
                break;
            }
        }
        assert_eq!(err.unwrap().code, "HEADER_BLOCK_TOO_LARGE");
        assert_eq!(c.buffered(), 0);
        // Pending requests are capped.
        let mut c = Conn::default();
        for _ in 0..100 {
            c.on_segment(Side::A, 0, b"GET / HTTP/1.1\r\n\r\n");
        }
        assert_eq!(c.pending(), MAX_PENDING);
        assert_eq!(c.dropped_requests, 100 - MAX_PENDING as u64);
    }

    #[test]
    fn interim_100_continue_keeps_the_request_waiting() {
        let mut c = Conn::default();
        c.on_segment(
            Side::A,
            0,
            b"PUT /x HTTP/1.1\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
        );
        let i = c
            .on_segment(Side::B, 1, b"HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap();
        assert!(i.request.is_none() && c.pending() == 1);
        let f = c
            .on_segment(Side::B, 2, b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap();
        assert_eq!(f.request.unwrap().method, "PUT");
        assert!(!f.fragmented);
    }

    #[test]
    fn connect_tunnel_and_101_switch_are_not_bodies() {
        /// A request, its response, the request the response answers, and a later server
        /// segment that is no body.
        struct Case {
            request: &'static [u8],
            response: &'static [u8],
            method: &'static str,
            url: &'static str,
            after: &'static [u8],
        }
        let cases = [
            Case {
                request: b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                response: b"HTTP/1.1 200 Connection Established\r\n\r\n",
                method: "CONNECT",
                url: "example.com:443",
                after: b"\x16\x03\x03\x00\x10tunnelled",
            },
            Case {
                request: b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                response: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                method: "GET",
                url: "/ws",
                after: b"\x81\x05hello",
            },
        ];
        for Case {
            request,
            response,
            method,
            url,
            after,
        } in cases
        {
            let mut c = Conn::default();
            c.on_segment(Side::A, 0, request);
            let r = c.on_segment(Side::B, 1, response).unwrap();
            let answered = r.request.unwrap();
            assert_eq!(
                (answered.method.as_str(), answered.url.as_str()),
                (method, url)
            );
            assert!(!r.fragmented, "{method}");
            assert_eq!(c.pending(), 0, "{method}");
            assert!(c.on_segment(Side::B, 2, after).is_none(), "{method}");
        }
    }

    #[test]
    fn a_gap_in_a_body_of_known_length_keeps_the_boundaries() {
        let mut c = Conn::default();
        c.on_segment(Side::A, 0, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c
            .on_segment(
                Side::B,
                10,
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123",
            )
            .unwrap();
        assert!(r.fragmented);
        c.on_segment(Side::A, 20, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        // Bytes 4..7 of the body never seen; the body's end and the next response come in
        // one delivery.
        c.on_gap(Side::B, 3);
        let m = bytes_at(
            &mut c,
            Side::B,
            (40, 30),
            b"789HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!((m.kind, m.code, m.skipped), (Kind::Response, 404, 0));
        assert_eq!(m.request.unwrap().url, "/b");
        // First byte of the request (20) to the response's first byte (30).
        assert_eq!(m.latency_ns, Some(10));
    }

    #[test]
    fn a_gap_elsewhere_resynchronises_at_the_next_message_start() {
        let mut c = Conn::default();
        c.on_segment(Side::A, 0, b"GET /lost HTTP/1.1\r\nHost: x\r\n\r\n");
        c.on_segment(Side::A, 1, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        // The response to /lost lost its start: the rest is skipped, the response found
        // after it answers the newest request.
        c.on_gap(Side::B, 17);
        let m = bytes_at(
            &mut c,
            Side::B,
            (5, 5),
            b"h: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        // "okHTTP/1.1" does not start a line: the resync waits for a line start.
        assert_eq!(m.kind, Kind::Skipped);
        let m = bytes_at(
            &mut c,
            Side::B,
            (6, 6),
            b"x\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!((m.kind, m.code, m.skipped), (Kind::Response, 200, 3));
        assert_eq!(m.request.unwrap().url, "/next");
        assert_eq!(c.pending(), 0);
        // A header block cut by a gap is dropped, then parsing resumes at the next request.
        c.on_segment(Side::A, 7, b"GET /cut HTTP/1.1\r\nHo");
        c.on_gap(Side::A, 5);
        let m = bytes_at(
            &mut c,
            Side::A,
            (8, 8),
            b"\r\n\r\nGET /whole HTTP/1.1\r\n\r\n",
        );
        assert_eq!(
            (m.kind, m.url.as_str(), m.skipped),
            (Kind::Request, "/whole", 4)
        );
    }
}
