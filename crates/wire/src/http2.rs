//! HTTP/2 frames (RFC 9113 §4.1, §6): the 9-byte frame header, the header rules of each
//! type, and views of the payloads whose layout is fixed (SETTINGS, HEADERS and
//! PUSH_PROMISE padding and priority, DATA padding, RST_STREAM, GOAWAY, WINDOW_UPDATE).
//!
//! A [`Frame`] needs only its header: a frame cut by the end of a segment is a view whose
//! `payload()` is what is present (`is_complete()` says whether that is all of it). The
//! payload views need the whole payload and refuse a cut frame (`Truncated`), because
//! padding is counted from the end. Recognition without a preface ([`looks_like_http2`]) is
//! here too, as [`crate::tls::looks_like_tls`] is: it only reads frame headers.
//!
//! Connection state (frames split across segments, header blocks joined over CONTINUATION,
//! HPACK, streams) belongs to `analyze`.

use std::fmt;

use crate::bytes::{be16, be32, slice, tail, u8_at};
use crate::{Error, ErrorKind, Result};

mod field {
    pub const LENGTH: usize = 0;
    pub const TYPE: usize = 3;
    pub const FLAGS: usize = 4;
    pub const STREAM_ID: usize = 5;
    pub const HEADER_LEN: usize = 9;
    /// The pad length byte of a PADDED frame, the first payload byte.
    pub const PAD_LENGTH: usize = HEADER_LEN;
}

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = field::HEADER_LEN;
/// Default SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// Frame flags (RFC 9113 §6).
pub mod flags {
    /// DATA, HEADERS: the last frame of the stream from this endpoint.
    pub const END_STREAM: u8 = 0x01;
    /// SETTINGS, PING: acknowledgement.
    pub const ACK: u8 = 0x01;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block ends here.
    pub const END_HEADERS: u8 = 0x04;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length byte and padding.
    pub const PADDED: u8 = 0x08;
    /// HEADERS: exclusive flag, stream dependency and weight precede the block.
    pub const PRIORITY: u8 = 0x20;
}

/// A frame type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// 0x0.
    Data,
    /// 0x1.
    Headers,
    /// 0x2.
    Priority,
    /// 0x3.
    RstStream,
    /// 0x4.
    Settings,
    /// 0x5.
    PushPromise,
    /// 0x6.
    Ping,
    /// 0x7.
    Goaway,
    /// 0x8.
    WindowUpdate,
    /// 0x9.
    Continuation,
    /// An extension type (ignored by endpoints, RFC 9113 §5.5).
    Unknown(u8),
}

impl From<u8> for FrameType {
    fn from(t: u8) -> Self {
        match t {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::Goaway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            t => FrameType::Unknown(t),
        }
    }
}

impl FrameType {
    /// Name as in RFC 9113 (`UNKNOWN` for extensions).
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Data => "DATA",
            FrameType::Headers => "HEADERS",
            FrameType::Priority => "PRIORITY",
            FrameType::RstStream => "RST_STREAM",
            FrameType::Settings => "SETTINGS",
            FrameType::PushPromise => "PUSH_PROMISE",
            FrameType::Ping => "PING",
            FrameType::Goaway => "GOAWAY",
            FrameType::WindowUpdate => "WINDOW_UPDATE",
            FrameType::Continuation => "CONTINUATION",
            FrameType::Unknown(_) => "UNKNOWN",
        }
    }

    /// Flags a frame of this type may carry.
    pub fn defined_flags(self) -> u8 {
        match self {
            FrameType::Data => flags::END_STREAM | flags::PADDED,
            FrameType::Headers => {
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
            }
            FrameType::Settings | FrameType::Ping => flags::ACK,
            FrameType::PushPromise => flags::END_HEADERS | flags::PADDED,
            FrameType::Continuation => flags::END_HEADERS,
            _ => 0,
        }
    }

    /// Names of the set flags that this type defines.
    pub fn flag_names(self, f: u8) -> impl Iterator<Item = &'static str> {
        let names: [(u8, &'static str); 4] = match self {
            FrameType::Settings | FrameType::Ping => {
                [(flags::ACK, "ACK"), (0, ""), (0, ""), (0, "")]
            }
            _ => [
                (flags::END_STREAM, "END_STREAM"),
                (flags::END_HEADERS, "END_HEADERS"),
                (flags::PADDED, "PADDED"),
                (flags::PRIORITY, "PRIORITY"),
            ],
        };
        let defined = self.defined_flags();
        names
            .into_iter()
            .filter(move |(bit, _)| *bit != 0 && f & bit & defined != 0)
            .map(|(_, n)| n)
    }
}

/// Name of an error code (RFC 9113 §7).
pub fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN_ERROR",
    }
}

/// Name of a SETTINGS parameter (`UNKNOWN` for an id not defined).
pub fn setting_name(id: u16) -> &'static str {
    defined_setting_name(id).unwrap_or("UNKNOWN")
}

/// Name of a SETTINGS parameter, when the id is defined (so a caller can say an undefined id
/// another way than [`setting_name`]'s `UNKNOWN`).
pub fn defined_setting_name(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "HEADER_TABLE_SIZE",
        2 => "ENABLE_PUSH",
        3 => "MAX_CONCURRENT_STREAMS",
        4 => "INITIAL_WINDOW_SIZE",
        5 => "MAX_FRAME_SIZE",
        6 => "MAX_HEADER_LIST_SIZE",
        8 => "ENABLE_CONNECT_PROTOCOL",
        _ => return None,
    })
}

/// A frame-header rule a frame breaks ([`Frame::check`], [`Frame::check_strict`]). These are
/// not [`ErrorKind`]s: the frame is still readable, the rule says why a receiver would reject
/// it (and why it does not look like HTTP/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A stream frame on stream 0.
    StreamIdZero,
    /// A connection frame (SETTINGS, PING, GOAWAY) on a stream.
    StreamIdNotZero,
    /// A payload length the type does not allow.
    BadLength,
    /// An extension type (strict check only).
    UnknownType,
    /// A flag the type does not define (strict check only).
    UndefinedFlags,
    /// The reserved bit before the stream id (strict check only).
    ReservedBit,
    /// Longer than [`DEFAULT_MAX_FRAME`] (strict check only).
    OverDefaultMax,
}

impl Rule {
    /// Words used in the analysis error's `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::StreamIdZero => "stream id 0",
            Rule::StreamIdNotZero => "stream id not 0",
            Rule::BadLength => "bad length for the frame type",
            Rule::UnknownType => "unknown frame type",
            Rule::UndefinedFlags => "undefined flags",
            Rule::ReservedBit => "reserved bit set",
            Rule::OverDefaultMax => "length over the default maximum",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame: header and as much of its payload as the buffer holds (zero-copy view).
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    buf: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A view of the frame at the start of `buf`; `Truncated` when the 9-byte header is
    /// incomplete. The payload may be cut (see [`Self::is_complete`]); the bytes after the
    /// frame are not part of the view's payload ([`Self::total_len`] finds the next one).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(Frame { buf })
    }

    /// Payload length (24 bits).
    pub fn length(&self) -> u32 {
        be32(self.buf, field::LENGTH) >> 8
    }

    /// Frame type.
    pub fn frame_type(&self) -> FrameType {
        FrameType::from(u8_at(self.buf, field::TYPE))
    }

    /// Flags.
    pub fn flags(&self) -> u8 {
        u8_at(self.buf, field::FLAGS)
    }

    /// The reserved bit before the stream id.
    pub fn reserved_bit(&self) -> bool {
        u8_at(self.buf, field::STREAM_ID) & 0x80 != 0
    }

    /// Stream identifier (31 bits).
    pub fn stream_id(&self) -> u32 {
        be32(self.buf, field::STREAM_ID) & STREAM_ID_MASK
    }

    /// Header plus payload length.
    pub fn total_len(&self) -> usize {
        field::HEADER_LEN + self.length() as usize
    }

    /// The whole payload is in the buffer.
    pub fn is_complete(&self) -> bool {
        self.buf.len() >= self.total_len()
    }

    /// The payload bytes present (all of them when complete).
    pub fn payload(&self) -> &'a [u8] {
        slice(self.buf, field::HEADER_LEN, self.total_len())
    }

    /// The rules every frame header must follow (RFC 9113 §6): stream id zero or not per
    /// type, fixed payload lengths.
    pub fn check(&self) -> std::result::Result<(), Rule> {
        let len = self.length();
        let sid = self.stream_id();
        let t = self.frame_type();
        let on_stream = match t {
            FrameType::Data
            | FrameType::Headers
            | FrameType::Priority
            | FrameType::RstStream
            | FrameType::PushPromise
            | FrameType::Continuation => Some(true),
            FrameType::Settings | FrameType::Ping | FrameType::Goaway => Some(false),
            FrameType::WindowUpdate | FrameType::Unknown(_) => None,
        };
        match on_stream {
            Some(true) if sid == 0 => return Err(Rule::StreamIdZero),
            Some(false) if sid != 0 => return Err(Rule::StreamIdNotZero),
            _ => {}
        }
        let ok = match t {
            FrameType::Priority => len == 5,
            FrameType::RstStream | FrameType::WindowUpdate => len == 4,
            FrameType::Ping => len == 8,
            FrameType::Settings if self.flags() & flags::ACK != 0 => len == 0,
            FrameType::Settings => len % 6 == 0,
            FrameType::Goaway => len >= 8,
            FrameType::PushPromise => len >= 4,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Rule::BadLength)
        }
    }

    /// [`Self::check`] plus what a frame sent by a conforming endpoint with default
    /// settings also satisfies: a known type, only defined flags, the reserved bit clear,
    /// a length at most [`DEFAULT_MAX_FRAME`] (used to recognise HTTP/2 without a preface).
    pub fn check_strict(&self) -> std::result::Result<(), Rule> {
        let t = self.frame_type();
        if matches!(t, FrameType::Unknown(_)) {
            return Err(Rule::UnknownType);
        }
        if self.flags() & !t.defined_flags() != 0 {
            return Err(Rule::UndefinedFlags);
        }
        if self.reserved_bit() {
            return Err(Rule::ReservedBit);
        }
        if self.length() > DEFAULT_MAX_FRAME {
            return Err(Rule::OverDefaultMax);
        }
        self.check()
    }

    /// The whole payload, or `Truncated` at the end of the buffer.
    fn whole_payload(&self) -> Result<&'a [u8]> {
        if self.is_complete() {
            Ok(self.payload())
        } else {
            Err(Error::new(ErrorKind::Truncated, self.buf.len()))
        }
    }

    /// The payload without the pad length byte and the padding when PADDED is set:
    /// `BadLength` (at the pad length byte) when the padding is longer than the rest.
    fn unpadded(&self) -> Result<&'a [u8]> {
        let p = self.whole_payload()?;
        if self.flags() & flags::PADDED == 0 {
            return Ok(p);
        }
        let bad = Error::new(ErrorKind::BadLength, field::PAD_LENGTH);
        let (&pad, rest) = p.split_first().ok_or(bad)?;
        let end = rest.len().checked_sub(usize::from(pad)).ok_or(bad)?;
        Ok(slice(rest, 0, end))
    }

    /// `n` fixed bytes at the start of the unpadded payload, and the bytes after them.
    fn split_fixed(&self, n: usize) -> Result<(&'a [u8], &'a [u8])> {
        let p = self.unpadded()?;
        if p.len() < n {
            return Err(Error::new(ErrorKind::BadLength, field::HEADER_LEN));
        }
        Ok((slice(p, 0, n), tail(p, n)))
    }
}

/// The frames at the start of `buf`: each complete frame, then a last one that may be cut,
/// then an error when fewer than 9 bytes remain (nothing when none remain). Header rules are
/// not checked here ([`Frame::check`]).
pub fn frames(buf: &[u8]) -> Frames<'_> {
    Frames { buf, done: false }
}

/// Iterator returned by [`frames`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.buf.is_empty() {
            return None;
        }
        match Frame::new_checked(self.buf) {
            Ok(f) => {
                self.done = !f.is_complete();
                self.buf = tail(self.buf, f.total_len());
                Some(Ok(f))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `p` starts with the connection preface, or is exactly a run of frames passing
/// [`Frame::check_strict`], the first complete (the last may continue in a later segment).
pub fn looks_like_http2(p: &[u8]) -> bool {
    if p.starts_with(PREFACE) {
        return true;
    }
    let mut seen = 0usize;
    for f in frames(p) {
        let Ok(f) = f else {
            return false;
        };
        if f.check_strict().is_err() {
            return false;
        }
        if !f.is_complete() {
            return seen > 0;
        }
        seen += 1;
    }
    seen > 0
}

/// The parameters of a SETTINGS frame (6 bytes each).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    payload: &'a [u8],
}

impl<'a> Settings<'a> {
    /// The payload of a complete SETTINGS frame whose length is a multiple of 6.
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        let payload = frame.whole_payload()?;
        if payload.len() % 6 != 0 {
            return Err(Error::new(ErrorKind::BadLength, field::LENGTH));
        }
        Ok(Settings { payload })
    }

    /// `(identifier, value)` of each parameter, in order.
    pub fn params(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        self.payload
            .chunks_exact(6)
            .map(|c| (be16(c, 0), be32(c, 2)))
    }
}

/// The payload of a HEADERS frame: padding and priority fields around a header block
/// fragment.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    priority: Option<&'a [u8]>,
    fragment: &'a [u8],
}

impl<'a> Headers<'a> {
    /// A complete HEADERS frame whose padding (PADDED) and priority fields (PRIORITY) fit
    /// in its payload.
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        if frame.flags() & flags::PRIORITY != 0 {
            let (priority, fragment) = frame.split_fixed(5)?;
            Ok(Headers {
                priority: Some(priority),
                fragment,
            })
        } else {
            Ok(Headers {
                priority: None,
                fragment: frame.unpadded()?,
            })
        }
    }

    /// The header block fragment (HPACK bytes).
    pub fn fragment(&self) -> &'a [u8] {
        self.fragment
    }

    /// PRIORITY: the exclusive bit, stream dependency and weight (as sent, 0–255).
    pub fn priority(&self) -> Option<(bool, u32, u8)> {
        self.priority.map(|p| {
            (
                u8_at(p, 0) & 0x80 != 0,
                be32(p, 0) & STREAM_ID_MASK,
                u8_at(p, 4),
            )
        })
    }
}

/// The payload of a PUSH_PROMISE frame: the promised stream id and a header block fragment.
#[derive(Debug, Clone, Copy)]
pub struct PushPromise<'a> {
    promised: &'a [u8],
    fragment: &'a [u8],
}

impl<'a> PushPromise<'a> {
    /// A complete PUSH_PROMISE frame whose padding and promised stream id fit in its payload.
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        let (promised, fragment) = frame.split_fixed(4)?;
        Ok(PushPromise { promised, fragment })
    }

    /// The promised stream id (31 bits).
    pub fn promised_stream_id(&self) -> u32 {
        be32(self.promised, 0) & STREAM_ID_MASK
    }

    /// The header block fragment (HPACK bytes).
    pub fn fragment(&self) -> &'a [u8] {
        self.fragment
    }
}

/// The payload of a DATA frame without its padding.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    data: &'a [u8],
}

impl<'a> Data<'a> {
    /// A complete DATA frame whose padding fits in its payload.
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        Ok(Data {
            data: frame.unpadded()?,
        })
    }

    /// The application data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// Checks a fixed-size payload of at least `n` bytes.
fn fixed<'a>(frame: &Frame<'a>, n: usize) -> Result<&'a [u8]> {
    let p = frame.whole_payload()?;
    if p.len() < n {
        return Err(Error::new(ErrorKind::BadLength, field::LENGTH));
    }
    Ok(p)
}

/// The payload of a RST_STREAM frame.
#[derive(Debug, Clone, Copy)]
pub struct RstStream<'a> {
    payload: &'a [u8],
}

impl<'a> RstStream<'a> {
    /// A complete RST_STREAM frame of at least 4 bytes ([`Frame::check`] wants exactly 4).
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        Ok(RstStream {
            payload: fixed(frame, 4)?,
        })
    }

    /// Error code.
    pub fn error_code(&self) -> u32 {
        be32(self.payload, 0)
    }
}

/// The payload of a GOAWAY frame.
#[derive(Debug, Clone, Copy)]
pub struct Goaway<'a> {
    payload: &'a [u8],
}

impl<'a> Goaway<'a> {
    /// A complete GOAWAY frame of at least 8 bytes.
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        Ok(Goaway {
            payload: fixed(frame, 8)?,
        })
    }

    /// The last stream id the sender may have processed (31 bits).
    pub fn last_stream_id(&self) -> u32 {
        be32(self.payload, 0) & STREAM_ID_MASK
    }

    /// Error code.
    pub fn error_code(&self) -> u32 {
        be32(self.payload, 4)
    }

    /// Additional debug data (opaque bytes, often text).
    pub fn debug_data(&self) -> &'a [u8] {
        tail(self.payload, 8)
    }
}

/// The payload of a WINDOW_UPDATE frame.
#[derive(Debug, Clone, Copy)]
pub struct WindowUpdate<'a> {
    payload: &'a [u8],
}

impl<'a> WindowUpdate<'a> {
    /// A complete WINDOW_UPDATE frame of at least 4 bytes ([`Frame::check`] wants exactly 4).
    pub fn new_checked(frame: &Frame<'a>) -> Result<Self> {
        Ok(WindowUpdate {
            payload: fixed(frame, 4)?,
        })
    }

    /// Window size increment (31 bits).
    pub fn increment(&self) -> u32 {
        be32(self.payload, 0) & STREAM_ID_MASK
    }
}

#[cfg(test)]
mod tests;
