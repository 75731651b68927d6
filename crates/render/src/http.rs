//! JSON of HTTP/1.x messages: the `HTTP` section, Cloud Logging's `httpRequest` object on
//! responses, and the trace fields. Secret header values are redacted here (see
//! [`crate::redact`]).

use std::fmt::Write;
use std::net::IpAddr;

use analyze::http1::{Kind, Message, Trace};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::fast;
use crate::fields as f;
use crate::redact::{HeaderFields, Redactor};

/// A duration in Cloud Logging's JSON form: seconds with up to 9 decimals and an `s`
/// (`0.012s`, `1.5s`, `0s`).
pub(crate) fn duration(ns: u64) -> String {
    let mut s = String::with_capacity(16);
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let _ = write!(s, "{secs}");
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('s');
    s
}

/// `logging.googleapis.com/trace`: `projects/<project>/traces/<id>`, or the bare trace id
/// when no project is known (never `projects//traces/…`).
pub(crate) fn trace_name(project: Option<&str>, t: &Trace) -> String {
    match project.filter(|p| !p.is_empty()) {
        Some(p) => format!("projects/{p}/traces/{}", t.trace_id_str()),
        None => t.trace_id_str().to_string(),
    }
}

/// `logging.googleapis.com/{trace,spanId,trace_sampled}`: one writer for packet, connection
/// and exchange entries.
pub(crate) fn serialize_trace<M: SerializeMap>(
    m: &mut M,
    project: Option<&str>,
    t: &Trace,
) -> Result<(), M::Error> {
    m.serialize_entry(f::TRACE, &trace_name(project, t))?;
    if let Some(span) = t.span_id {
        m.serialize_entry(f::SPAN_ID, &span_hex(span))?;
    }
    m.serialize_entry(f::TRACE_SAMPLED, &t.sampled)
}

/// `logging.googleapis.com/spanId`: always 16 lowercase hex digits.
pub(crate) fn span_hex(span: u64) -> fast::StackStr<16> {
    let mut s = fast::StackStr::new();
    let _ = write!(s, "{span:016x}");
    s
}

/// `<method> <target>` or `<code> <reason>`, for the summary line.
pub(crate) fn summary(out: &mut String, m: &Message) {
    if let Some(e) = &m.error {
        let _ = write!(out, " | {}: {}", e.code, e.info);
        return;
    }
    match m.kind {
        Kind::Request => {
            let _ = write!(out, " | {} {} {}", m.proto(), m.method, m.url);
        }
        Kind::Response => {
            let _ = write!(out, " | {} {} {}", m.proto(), m.code, m.reason);
            if let Some(l) = m.latency_ns {
                let _ = write!(out, " | latency:{}", duration(l));
            }
        }
        Kind::Body => {
            let _ = write!(out, " | HTTP body continuation | size:{}", m.size);
        }
        Kind::Partial => {
            let _ = write!(out, " | HTTP header block continues | size:{}", m.size);
        }
        Kind::Skipped => {
            let _ = write!(out, " | HTTP bytes skipped after a gap | size:{}", m.size);
        }
    }
    gap_suffix(out, m.gap, m.skipped);
}

/// ` | gap:<bytes> skipped:<bytes>` after a gap in the stream the capture never filled.
pub(crate) fn gap_suffix(out: &mut String, gap: u64, skipped: usize) {
    if gap > 0 {
        let _ = write!(out, " | gap:{gap}");
        if skipped > 0 {
            let _ = write!(out, " skipped:{skipped}");
        }
    }
}

/// The `HTTP` section.
pub(crate) struct HttpJson<'a> {
    pub m: &'a Message,
    pub redact: &'a crate::redact::Redactor,
    pub debug: bool,
}

struct BodyJson<'a>(&'a Message);

impl Serialize for BodyJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::LENGTH, &b.body_len)?;
        if let Some(cl) = b.content_length {
            m.serialize_entry(f::CONTENT_LENGTH, &cl)?;
        }
        if b.chunked {
            m.serialize_entry(f::CHUNKED, &true)?;
        }
        if !b.body_sample.is_empty() {
            m.serialize_entry(f::SAMPLE, &String::from_utf8_lossy(&b.body_sample))?;
        }
        m.end()
    }
}

impl Serialize for HttpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.m;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::KIND, h.kind.name())?;
        if let Some(e) = &h.error {
            m.serialize_entry(
                f::ERROR,
                &ErrorJson {
                    code: e.code,
                    info: &e.info,
                },
            )?;
        }
        if h.gap > 0 {
            m.serialize_entry(f::GAP, &h.gap)?;
        }
        if h.skipped > 0 {
            m.serialize_entry(f::SKIPPED, &h.skipped)?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::PROTO, h.proto())?;
        m.serialize_entry(f::SIZE, &h.size)?;
        match h.kind {
            Kind::Request => {
                m.serialize_entry(f::METHOD, &h.method)?;
                m.serialize_entry(f::URL, &h.url)?;
                if let Some(host) = h.header("host") {
                    m.serialize_entry(f::HOST, &String::from_utf8_lossy(host))?;
                }
            }
            Kind::Response => {
                m.serialize_entry(f::CODE, &h.code)?;
                m.serialize_entry(f::REASON, &h.reason)?;
                m.serialize_entry(f::STATUS, &format!("{} {}", h.code, h.reason))?;
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
            Kind::Body | Kind::Partial | Kind::Skipped => {
                m.serialize_entry(f::CONTINUATION, &true)?;
            }
        }
        if matches!(h.kind, Kind::Request | Kind::Response) && h.error.is_none() {
            m.serialize_entry(
                f::HEADERS,
                &HeaderFields {
                    fields: &h.headers,
                    redact: self.redact,
                    ignore_case: true,
                },
            )?;
            m.serialize_entry(f::BODY, &BodyJson(h))?;
        }
        m.serialize_entry(f::FRAGMENTED, &h.fragmented)?;
        if h.reassembled {
            m.serialize_entry(f::REASSEMBLED, &true)?;
        }
        if h.pipelined > 0 {
            m.serialize_entry(f::PIPELINED, &h.pipelined)?;
        }
        if !h.raw.is_empty() {
            m.serialize_entry(f::RAW, &self.redact.raw(&h.raw, h.header_len))?;
        }
        m.end()
    }
}

struct ErrorJson<'a> {
    code: &'a str,
    info: &'a str,
}

f::serialize_with_keys!(['a] ErrorJson<'a> {
    code: f::CODE,
    info: f::INFO,
});

/// Cloud Logging's `httpRequest` (LogEntry.HttpRequest) for a response entry, HTTP/1.x or
/// HTTP/2 alike.
pub(crate) struct HttpRequestJson<'a> {
    /// The request this response answers, when it was seen.
    pub request: Option<&'a analyze::http1::RequestInfo>,
    pub status: u16,
    /// Bytes of the response, when known.
    pub response_size: Option<u64>,
    pub latency_ns: Option<u64>,
    /// The client: the response's destination.
    pub remote_ip: Option<IpAddr>,
    /// The server: the response's source.
    pub server_ip: Option<IpAddr>,
    pub protocol: &'a str,
    pub redact: &'a Redactor,
}

impl Serialize for HttpRequestJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(r) = self.request {
            m.serialize_entry(f::REQUEST_METHOD, &r.method)?;
            let url = match (&r.host, r.url.starts_with('/')) {
                (Some(host), true) => format!("http://{host}{}", r.url),
                _ => r.url.clone(),
            };
            m.serialize_entry(f::REQUEST_URL, &url)?;
            if let Some(ua) = &r.user_agent {
                if self.redact.is_secret("user-agent") {
                    m.serialize_entry(f::USER_AGENT, crate::redact::MARKER)?;
                } else {
                    m.serialize_entry(f::USER_AGENT, ua)?;
                }
            }
        }
        m.serialize_entry(f::STATUS, &self.status)?;
        if let Some(size) = self.response_size {
            // int64 fields are strings in LogEntry's JSON mapping.
            m.serialize_entry(f::RESPONSE_SIZE, &fast::dec(size))?;
        }
        if let Some(l) = self.latency_ns {
            m.serialize_entry(f::LATENCY, &duration(l))?;
        }
        if let Some(ip) = self.remote_ip {
            m.serialize_entry(f::REMOTE_IP, &fast::ip(ip))?;
        }
        if let Some(ip) = self.server_ip {
            m.serialize_entry(f::SERVER_IP, &fast::ip(ip))?;
        }
        m.serialize_entry(f::PROTOCOL, self.protocol)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_spans() {
        assert_eq!(duration(12_000_000), "0.012s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(3_000_000_001), "3.000000001s");
        assert_eq!(span_hex(1).as_str(), "0000000000000001");
        assert_eq!(span_hex(u64::MAX).as_str(), "ffffffffffffffff");
    }

    #[test]
    fn parse_error_object() {
        let e = ErrorJson {
            code: "INVALID_HTTP11_REQUEST",
            info: "bad line",
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"INVALID_HTTP11_REQUEST","info":"bad line"}"#
        );
    }
}
