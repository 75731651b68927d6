//! JSON of HTTP/2 segments: the `HTTP` section (same key names as HTTP/1.1 where they
//! apply, `proto: "HTTP/2"`, plus `frames`, `grpc`, `stream_error`), Cloud Logging's
//! `httpRequest` on entries holding a response's HEADERS, and the summary. Secret header
//! values are redacted here (see [`crate::redact`]); fields whose name HPACK could not
//! resolve never carry a value (the analyser drops it).
//!
//! Severity (chosen here, documented in `docs/json.md`): a response `:status` 4xx is WARNING and
//! 5xx ERROR, as for HTTP/1.1; a non-zero `grpc-status` is ERROR; a
//! RST_STREAM or GOAWAY with a non-zero error code is WARNING, or ERROR when the code means
//! a broken peer (PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR,
//! COMPRESSION_ERROR, CONNECT_ERROR, INADEQUATE_SECURITY); analysis errors (invalid frame
//! headers, HPACK failures) are ERROR.

use std::fmt::Write;

use analyze::http2::{self, FrameInfo, FrameType, Headers, Role, Segment};
use cloud_logging::Severity;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use crate::fields as f;
use crate::http::duration;
use crate::redact::{HeaderFields, Redactor};

/// Frames named in the summary line.
const SUMMARY_FRAMES: usize = 6;

/// `kind` of a segment: its first header block's role, else `frames` (or `partial` when
/// it holds no complete frame).
pub(crate) fn kind(s: &Segment) -> &'static str {
    match s.first_headers() {
        Some((_, h)) => h.role.name(),
        None if s.frames.is_empty() && !s.preface => "partial",
        None => "frames",
    }
}

/// The severity an HTTP/2 segment asks for (see the module doc).
pub(crate) fn severity(s: &Segment) -> Severity {
    let mut sev = Severity::Info;
    let mut raise = |x: Severity| {
        if rank(x) > rank(sev) {
            sev = x;
        }
    };
    if s.error.is_some() {
        raise(Severity::Error);
    }
    for f in &s.frames {
        if let Some(h) = &f.headers {
            match h.status {
                Some(500..=599) if h.role == Role::Response => raise(Severity::Error),
                Some(400..=499) if h.role == Role::Response => raise(Severity::Warning),
                _ => {}
            }
            if h.grpc
                .as_ref()
                .and_then(|g| g.status)
                .is_some_and(|c| c != 0)
            {
                raise(Severity::Error);
            }
        }
        if let Some(code) = f.error_code.filter(|c| *c != 0) {
            raise(if http2::is_severe_error(code) {
                Severity::Error
            } else {
                Severity::Warning
            });
        }
    }
    sev
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Error | Severity::Critical => 2,
        Severity::Warning => 1,
        _ => 0,
    }
}

/// ` | HTTP/2 HEADERS#1 GET /x, DATA#1, …` (header blocks and error codes named first) and
/// the first response's latency.
pub(crate) fn summary(out: &mut String, s: &Segment) {
    out.push_str(" | HTTP/2");
    if s.preface {
        out.push_str(" preface");
    }
    if let Some(e) = &s.error {
        let _ = write!(out, " | {}: {}", e.code, e.info);
        return;
    }
    if s.frames.is_empty() {
        if s.skipped > 0 && s.gap == 0 {
            let _ = write!(out, " bytes skipped after a gap | size:{}", s.size);
        } else {
            let _ = write!(out, " frame continuation | size:{}", s.size);
        }
        crate::http::gap_suffix(out, s.gap, s.skipped);
        return;
    }
    // Header blocks and error codes first (a client's first segment often leads with
    // SETTINGS and PRIORITY frames), then the others, in order within each group.
    let notable = |f: &&FrameInfo| f.headers.is_some() || f.error_code.is_some();
    let shown = s
        .frames
        .iter()
        .filter(notable)
        .chain(s.frames.iter().filter(|f| !notable(f)))
        .take(SUMMARY_FRAMES);
    for (i, f) in shown.enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(f.kind.name());
        if f.stream != 0 {
            let _ = write!(out, "#{}", f.stream);
        }
        if let Some(h) = &f.headers {
            frame_headers(out, h);
        }
        if let Some(c) = f.error_code {
            let _ = write!(out, " {}", http2::error_name(c));
        }
    }
    let more = s.frames.len().saturating_sub(SUMMARY_FRAMES) + s.more_frames;
    if more > 0 {
        let _ = write!(out, ", +{more} frames");
    }
    if let Some(l) = s.response().and_then(|h| h.latency_ns) {
        let _ = write!(out, " | latency:{}", duration(l));
    }
    crate::http::gap_suffix(out, s.gap, s.skipped);
}

fn frame_headers(out: &mut String, h: &Headers) {
    let text = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or(b"?")).into_owned();
    match h.role {
        Role::Request => {
            let _ = write!(out, " {} {}", text(h.get(":method")), text(h.get(":path")));
        }
        Role::Response | Role::Informational => {
            let _ = write!(out, " {}", h.status.unwrap_or(0));
        }
        Role::Trailers => out.push_str(" trailers"),
        Role::Promise => {
            let _ = write!(out, " promise {}", text(h.get(":path")));
        }
        Role::Unknown => out.push_str(" headers"),
    }
    if let Some(g) = &h.grpc {
        if let Some(st) = g.status {
            let _ = write!(out, " grpc-status:{st} {}", http2::grpc_status_name(st));
        }
    }
    let unknown = h.block.unknown().count();
    if unknown > 0 {
        let _ = write!(out, " unknown-dynamic:{unknown}");
    }
}

/// The `HTTP` section of an HTTP/2 segment.
pub(crate) struct Http2Json<'a> {
    pub s: &'a Segment,
    pub redact: &'a Redactor,
    pub debug: bool,
}

impl Http2Json<'_> {
    /// INFO entries write the section only when it says something the summary cannot
    /// (an error, gRPC facts, a stream/connection error code).
    pub(crate) fn worth_writing(&self) -> bool {
        self.debug
            || self.s.error.is_some()
            || self.s.gap > 0
            || self.s.skipped > 0
            || self.s.worst_error_code().is_some()
            || self
                .s
                .frames
                .iter()
                .any(|f| f.headers.as_ref().is_some_and(|h| h.grpc.is_some()))
    }
}

impl Serialize for Http2Json<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.s;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry(f::KIND, kind(s))?;
        m.serialize_entry(f::PROTO, "HTTP/2")?;
        if let Some(e) = &s.error {
            let mut err = serde_json::Map::new();
            err.insert(f::CODE.into(), e.code.into());
            err.insert(f::INFO.into(), e.info.clone().into());
            m.serialize_entry(f::ERROR, &err)?;
        }
        // The block with a status (trailers) says most; else the first with gRPC facts.
        let grpc = || {
            s.frames
                .iter()
                .filter_map(|f| f.headers.as_ref().and_then(|h| h.grpc.as_ref()))
        };
        if let Some(g) = grpc()
            .find(|g| g.status.is_some())
            .or_else(|| grpc().next())
        {
            m.serialize_entry(f::GRPC, &GrpcJson(g))?;
        }
        if let Some(f) = s
            .frames
            .iter()
            .find(|f| f.error_code.is_some_and(|c| c != 0))
        {
            m.serialize_entry(f::STREAM_ERROR, &StreamError(f))?;
        }
        if s.gap > 0 {
            m.serialize_entry(f::GAP, &s.gap)?;
        }
        if s.skipped > 0 {
            m.serialize_entry(f::SKIPPED, &s.skipped)?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::SIZE, &s.size)?;
        if s.preface {
            m.serialize_entry(f::PREFACE, &true)?;
        }
        if s.continued > 0 {
            m.serialize_entry(f::CONTINUED, &s.continued)?;
        }
        if s.partial {
            m.serialize_entry(f::FRAGMENTED, &true)?;
        }
        if let Some((f, h)) = s.first_headers() {
            m.serialize_entry(f::STREAM, &f.stream)?;
            match h.role {
                Role::Request => {
                    if let Some(v) = h.get(":method") {
                        m.serialize_entry(f::METHOD, &String::from_utf8_lossy(v))?;
                    }
                    if let Some(v) = h.get(":path") {
                        m.serialize_entry(f::URL, &String::from_utf8_lossy(v))?;
                    }
                    if let Some(v) = h.get(":authority") {
                        m.serialize_entry(f::HOST, &String::from_utf8_lossy(v))?;
                    }
                }
                Role::Response | Role::Informational => {
                    if let Some(c) = h.status {
                        m.serialize_entry(f::CODE, &c)?;
                        m.serialize_entry(f::STATUS, &c.to_string())?;
                    }
                }
                _ => {}
            }
            if let Some(r) = &h.request {
                let mut req = serde_json::Map::new();
                req.insert(f::METHOD.into(), r.method.clone().into());
                req.insert(f::URL.into(), r.url.clone().into());
                if let Some(l) = h.latency_ns {
                    req.insert(f::LATENCY.into(), duration(l).into());
                }
                m.serialize_entry(f::REQUEST, &req)?;
            }
        }
        m.serialize_entry(
            f::FRAMES,
            &Frames {
                s,
                redact: self.redact,
            },
        )?;
        if s.more_frames > 0 {
            m.serialize_entry(f::MORE_FRAMES, &s.more_frames)?;
        }
        if !s.caps.is_empty() {
            m.serialize_entry(f::CAPS, &CapsJson(&s.caps))?;
        }
        m.end()
    }
}

/// The per-segment caps a segment hit (`HTTP.caps`), non-zero counts only.
struct CapsJson<'a>(&'a http2::Caps);

impl Serialize for CapsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        for (name, n) in [
            (f::LISTS_TRUNCATED, c.lists_truncated),
            (f::FIELDS_OMITTED, c.fields_omitted),
            (f::REFERENCES_SKIPPED, c.references_skipped),
            (f::STREAMS_SKIPPED, c.streams_skipped),
            (f::CONTINUATION_FLOODS, c.continuation_floods),
        ] {
            if n > 0 {
                m.serialize_entry(name, &n)?;
            }
        }
        m.end()
    }
}

struct GrpcJson<'a>(&'a http2::Grpc);

impl Serialize for GrpcJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.0;
        let mut m = s.serialize_map(None)?;
        if !g.service.is_empty() {
            m.serialize_entry(f::SERVICE, &g.service)?;
            m.serialize_entry(f::METHOD, &g.method)?;
        }
        if let Some(st) = g.status {
            m.serialize_entry(f::STATUS, &st)?;
            m.serialize_entry(f::STATUS_NAME, http2::grpc_status_name(st))?;
        }
        if let Some(msg) = &g.message {
            m.serialize_entry(f::MESSAGE, msg)?;
        }
        m.end()
    }
}

struct StreamError<'a>(&'a FrameInfo);

impl Serialize for StreamError<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let code = f.error_code.unwrap_or(0);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::FRAME, f.kind.name())?;
        m.serialize_entry(f::STREAM, &f.last_stream.unwrap_or(f.stream))?;
        m.serialize_entry(f::CODE, &code)?;
        m.serialize_entry(f::NAME, http2::error_name(code))?;
        m.end()
    }
}

struct Frames<'a> {
    s: &'a Segment,
    redact: &'a Redactor,
}

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.s.frames.len()))?;
        for f in &self.s.frames {
            seq.serialize_element(&FrameJson {
                f,
                redact: self.redact,
            })?;
        }
        seq.end()
    }
}

struct FrameJson<'a> {
    f: &'a FrameInfo,
    redact: &'a Redactor,
}

struct FlagNames(FrameType, u8);

impl Serialize for FlagNames {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.flag_names(self.1))
    }
}

impl Serialize for FrameJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.f;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TYPE, f.kind.name())?;
        if let FrameType::Unknown(t) = f.kind {
            m.serialize_entry(f::TYPE_ID, &t)?;
        }
        m.serialize_entry(f::STREAM, &f.stream)?;
        m.serialize_entry(f::FLAGS, &FlagNames(f.kind, f.flags))?;
        m.serialize_entry(f::LENGTH, &f.length)?;
        if f.reassembled {
            m.serialize_entry(f::REASSEMBLED, &true)?;
        }
        if f.oversize {
            m.serialize_entry(f::OVERSIZE, &true)?;
        }
        if let Some(h) = &f.headers {
            m.serialize_entry(f::ROLE, h.role.name())?;
            let fields: Vec<(&str, &[u8])> = h.block.known().collect();
            m.serialize_entry(
                f::HEADERS,
                &HeaderFields {
                    fields: &fields,
                    redact: self.redact,
                    ignore_case: false,
                },
            )?;
            let unknown: Vec<u32> = h.block.unknown().collect();
            if !unknown.is_empty() {
                m.serialize_entry(f::UNKNOWN_DYNAMIC, &unknown)?;
            }
            if h.unsynced {
                m.serialize_entry(f::HPACK_UNSYNCED, &true)?;
            }
            if h.block.omitted > 0 {
                m.serialize_entry(f::OMITTED_HEADERS, &h.block.omitted)?;
            }
            if h.block.list_truncated {
                // The decoded list went over the cap: its real size, what was kept.
                m.serialize_entry(f::HEADERS_TRUNCATED, &true)?;
                m.serialize_entry(f::HEADER_LIST_SIZE, &h.block.list_size)?;
            }
            if h.block.references_skipped > 0 {
                m.serialize_entry(f::REFERENCES_SKIPPED, &h.block.references_skipped)?;
            }
            if h.continuations > 0 {
                m.serialize_entry(f::CONTINUATIONS, &h.continuations)?;
            }
        }
        if let Some(c) = f.error_code {
            m.serialize_entry(f::ERROR_CODE, &c)?;
            m.serialize_entry(f::ERROR_NAME, http2::error_name(c))?;
        }
        if let Some(l) = f.last_stream {
            m.serialize_entry(f::LAST_STREAM, &l)?;
        }
        if let Some(d) = &f.debug_data {
            m.serialize_entry(f::DEBUG_DATA, d)?;
        }
        if !f.settings.is_empty() {
            let mut st = serde_json::Map::new();
            for (id, v) in &f.settings {
                let name = match http2::defined_setting_name(*id) {
                    Some(n) => n.to_string(),
                    None => format!("0x{id:x}"),
                };
                st.insert(name, (*v).into());
            }
            m.serialize_entry(f::SETTINGS, &st)?;
        }
        if let Some(i) = f.increment {
            m.serialize_entry(f::INCREMENT, &i)?;
        }
        m.end()
    }
}

/// The announced length of a response whose HEADERS pass (its body has not yet).
pub(crate) fn announced_size(h: &Headers) -> Option<u64> {
    h.get("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}
