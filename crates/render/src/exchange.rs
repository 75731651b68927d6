//! Exchange summaries (`PCAP_VERBOSITY=SUMMARY`): one entry per HTTP exchange, gRPC call
//! and DNS query/response pair, written after the packet that completes it, with the
//! request, the status, the latency and the trace.
//!
//! - HTTP/1.x: a final response (its request, when seen, from the connection's FIFO);
//! - HTTP/2: a final response's HEADERS, except gRPC, whose call ends with its status (the
//!   trailers, or a trailers-only response);
//! - DNS: a response, paired by message id with a query of the same flow (at most
//!   [`MAX_DNS_QUERIES`] waiting per flow) for the latency.

use std::net::IpAddr;

use analyze::community_id::CommunityId;
use analyze::http1::{Kind, RequestInfo, Trace};
use analyze::http2::{grpc_status_name, Grpc, Role};
use analyze::l7::App;
use cloud_logging::Severity;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::entry::Cached;
use crate::fast;
use crate::fields as f;
use crate::http::{duration, HttpRequestJson};
use crate::redact::Redactor;
use crate::summary::Head;
use crate::TranslatorSettings;

/// Most DNS queries of one flow waiting for their response.
pub const MAX_DNS_QUERIES: usize = 8;

/// What a DNS exchange says.
#[derive(Debug, Clone)]
pub(crate) struct DnsFacts {
    qname: String,
    qtype: &'static str,
    rcode: &'static str,
    answers: u16,
}

/// One exchange, copied out of the packet that completed it.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub flow: u64,
    pub community_id: Option<CommunityId>,
    pub ts_ns: u64,
    /// The client (the response's destination) and the server.
    pub client: Option<(IpAddr, u16)>,
    pub server: Option<(IpAddr, u16)>,
    proto: &'static str,
    request: Option<RequestInfo>,
    http_status: Option<u16>,
    response_size: Option<u64>,
    latency_ns: Option<u64>,
    trace: Option<Trace>,
    grpc: Option<Grpc>,
    dns: Option<DnsFacts>,
}

/// The DNS queries of a flow waiting for their response: `(id, time)`.
pub(crate) type DnsQueries = Vec<(u16, u64)>;

impl Exchange {
    fn new(proto: &'static str, ts_ns: u64) -> Self {
        Exchange {
            flow: 0,
            community_id: None,
            ts_ns,
            client: None,
            server: None,
            proto,
            request: None,
            http_status: None,
            response_size: None,
            latency_ns: None,
            trace: None,
            grpc: None,
            dns: None,
        }
    }

    /// The exchanges a packet's application data completes; DNS queries are remembered in
    /// `queries` (the flow's) to pair their responses.
    pub(crate) fn of(app: &App<'_>, ts_ns: u64, queries: Option<&mut DnsQueries>) -> Vec<Self> {
        let mut out = Vec::new();
        match app {
            App::Http(m) if m.kind == Kind::Response && m.code >= 200 && m.error.is_none() => {
                let mut e = Exchange::new(m.proto(), ts_ns);
                e.request = m.request.clone();
                e.http_status = Some(m.code);
                e.response_size = Some(m.total_size());
                e.latency_ns = m.latency_ns;
                e.trace = m.trace;
                out.push(e);
            }
            App::Http2(seg) => {
                for h in seg.frames.iter().filter_map(|f| f.headers.as_deref()) {
                    let grpc_status = h.grpc.as_ref().and_then(|g| g.status);
                    let ends = match (&h.grpc, h.role) {
                        // A gRPC call ends with its status.
                        (Some(_), Role::Response | Role::Trailers) => grpc_status.is_some(),
                        (None, Role::Response) => true,
                        _ => false,
                    };
                    if !ends {
                        continue;
                    }
                    let grpc = h.grpc.is_some();
                    let mut e = Exchange::new(if grpc { "gRPC" } else { "HTTP/2" }, ts_ns);
                    e.request = h.request.clone();
                    e.http_status = h.status;
                    e.response_size = crate::http2::announced_size(h);
                    e.latency_ns = h.latency_ns;
                    e.trace = h.trace;
                    e.grpc = h.grpc.clone();
                    out.push(e);
                }
            }
            App::Dns(m) => {
                let mut queries = queries;
                if let (Some(q), false) = (queries.as_deref_mut(), m.is_response()) {
                    if q.len() >= MAX_DNS_QUERIES {
                        q.remove(0);
                    }
                    q.push((m.id(), ts_ns));
                }
                if m.is_response() {
                    let sent = queries.and_then(|q| {
                        let i = q.iter().position(|(id, _)| *id == m.id())?;
                        Some(q.remove(i).1)
                    });
                    let mut e = Exchange::new("DNS", ts_ns);
                    e.latency_ns = sent.map(|t| ts_ns.saturating_sub(t));
                    let (qname, qtype) = match m.questions().next() {
                        Some(Ok(q)) => (q.name.to_string(), q.qtype.name()),
                        _ => (String::new(), ""),
                    };
                    e.dns = Some(DnsFacts {
                        qname,
                        qtype,
                        rcode: m.rcode().mnemonic(),
                        answers: m.ancount(),
                    });
                    out.push(e);
                }
            }
            _ => {}
        }
        out
    }

    /// HTTP 5xx and failed gRPC calls are ERROR, HTTP 4xx and DNS failures (SERVFAIL,
    /// REFUSED) WARNING.
    fn severity(&self) -> Severity {
        if self
            .grpc
            .as_ref()
            .and_then(|g| g.status)
            .is_some_and(|s| s != 0)
        {
            return Severity::Error;
        }
        match (self.http_status, &self.dns) {
            (Some(500..=599), _) => Severity::Error,
            (Some(400..=499), _) => Severity::Warning,
            (_, Some(d)) if matches!(d.rcode, "SERVFAIL" | "REFUSED") => Severity::Warning,
            _ => Severity::Info,
        }
    }

    fn url(&self) -> Option<String> {
        let r = self.request.as_ref()?;
        Some(match (&r.host, r.url.starts_with('/')) {
            (Some(host), true) => format!("http://{host}{}", r.url),
            _ => r.url.clone(),
        })
    }

    fn message(&self) -> String {
        let mut m = format!("exchange {}", self.proto);
        if let Some(d) = &self.dns {
            m.push_str(&format!(" {} {} | {}", d.qtype, d.qname, d.rcode));
        } else {
            if let Some(r) = &self.request {
                m.push_str(&format!(" {} {}", r.method, self.url().unwrap_or_default()));
            }
            if let Some(s) = self.http_status {
                m.push_str(&format!(" | {s}"));
            }
            if let Some(s) = self.grpc.as_ref().and_then(|g| g.status) {
                m.push_str(&format!(" | {}", grpc_status_name(s)));
            }
        }
        if let Some(l) = self.latency_ns {
            m.push_str(&format!(" | {}", duration(l)));
        }
        m
    }
}

/// The exchange as a Cloud Logging entry.
pub(crate) struct ExchangeJson<'a> {
    pub e: &'a Exchange,
    pub settings: &'a TranslatorSettings,
    pub cached: &'a Cached,
    pub redact: &'a Redactor,
}

struct Section<'a>(&'a Exchange);

impl Serialize for Section<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::PROTO, e.proto)?;
        if let Some((ip, port)) = e.client {
            m.serialize_entry(f::CLIENT, &format!("{}:{port}", fast::ip(ip).as_str()))?;
        }
        if let Some((ip, port)) = e.server {
            m.serialize_entry(f::SERVER, &format!("{}:{port}", fast::ip(ip).as_str()))?;
        }
        if let Some(r) = &e.request {
            m.serialize_entry(f::METHOD, &r.method)?;
            m.serialize_entry(f::URL, &e.url())?;
        }
        if let Some(s) = e.http_status {
            m.serialize_entry(f::STATUS, &s)?;
        }
        if let Some(l) = e.latency_ns {
            m.serialize_entry(f::LATENCY, &crate::tcp::seconds(l))?;
        }
        if let Some(g) = &e.grpc {
            let mut j = serde_json::Map::new();
            j.insert(f::SERVICE.into(), g.service.clone().into());
            j.insert(f::METHOD.into(), g.method.clone().into());
            if let Some(s) = g.status {
                j.insert(f::STATUS.into(), s.into());
                j.insert(f::STATUS_NAME.into(), grpc_status_name(s).into());
            }
            if let Some(msg) = &g.message {
                j.insert(f::MESSAGE.into(), msg.clone().into());
            }
            m.serialize_entry(f::GRPC, &j)?;
        }
        if let Some(d) = &e.dns {
            let mut j = serde_json::Map::new();
            j.insert(f::QNAME.into(), d.qname.clone().into());
            j.insert(f::QTYPE.into(), d.qtype.into());
            j.insert(f::RCODE.into(), d.rcode.into());
            j.insert(f::ANSWERS.into(), d.answers.into());
            m.serialize_entry(f::DNS_PAIR, &j)?;
        }
        m.end()
    }
}

impl Serialize for ExchangeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.e;
        let mut m = s.serialize_map(None)?;
        Head {
            severity: e.severity(),
            message: &e.message(),
            cached: self.cached,
            ts_ns: e.ts_ns,
            flow: e.flow,
            community_id: e.community_id.as_ref(),
            kind: f::EXCHANGE,
        }
        .serialize(&mut m)?;
        m.serialize_entry(f::EXCHANGE, &Section(e))?;
        if e.dns.is_none() {
            m.serialize_entry(
                f::HTTP_REQUEST,
                &HttpRequestJson {
                    request: e.request.as_ref(),
                    status: e.http_status.unwrap_or(0),
                    response_size: e.response_size,
                    latency_ns: e.latency_ns,
                    remote_ip: e.client.map(|c| c.0),
                    server_ip: e.server.map(|c| c.0),
                    protocol: if e.proto == "gRPC" { "HTTP/2" } else { e.proto },
                    redact: self.redact,
                },
            )?;
        }
        if let Some(t) = &e.trace {
            crate::http::serialize_trace(&mut m, self.settings.project_id.as_deref(), t)?;
        }
        m.serialize_entry(f::LABELS, self.cached.labels(false))?;
        m.end()
    }
}
