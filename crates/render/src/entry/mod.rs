//! The entry and its sections as `Serialize` types that borrow from the packet, so the JSON
//! is written in one pass with no intermediate document. Keys come from [`crate::fields`].
//! Every section is written by the DEBUG level; INFO keeps a compact subset with the same
//! shapes (a query that works on INFO entries works on DEBUG ones).
//!
//! [`Entry`] composes the sections; each layer's sections live in their own module (`link`,
//! `ip`, `transport`, `icmp`, `dns`, `tls`, `payload`), the envelope in `envelope`.

use std::fmt::{self, Display};

use analyze::community_id::CommunityId;
use analyze::flow::FlowKind;
use analyze::l7::App;
use analyze::{DecodeError, Decoded, Link, Network, Transport};
use chrono::{DateTime, Utc};
use cloud_logging::Severity;
use cloud_logging::Verbosity;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use wire::CapturedPacket;

use crate::fast;
use crate::fields as f;
use crate::http;
use crate::{Source, TranslatorSettings};

mod dns;
mod envelope;
mod icmp;
mod ip;
mod link;
mod payload;
mod tls;
mod transport;

use dns::DnsJson;
use envelope::{ErrorJson, Iface, Labels, Meta, Operation, Pcap, Timestamp};
use icmp::{Icmp4Json, Icmp6Json};
use ip::{Ipv4Json, Ipv6Json};
use link::{ArpJson, L2};
use payload::Opaque;
use tls::TlsJson;
use transport::{TcpJson, UdpJson};

/// Flow facts computed by the translator.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlowFacts {
    pub id: Option<u64>,
    pub kind: Option<FlowKind>,
    pub host_pair: u64,
    pub port_pair: u64,
    pub first: bool,
    pub last: bool,
    pub window_shift: Option<u8>,
    pub server_side: Option<bool>,
    pub error: Option<DecodeError>,
    pub community_id: Option<CommunityId>,
    pub local: Option<bool>,
    /// The flow's application-layer state was dropped to stay within the state budget.
    pub state_evicted: bool,
    /// The segment's `tcp.analysis` (TCP only).
    pub tcp: Option<analyze::tcp_analysis::Analysis>,
}

/// JSON that is the same for every entry of a translator (and interface), serialised once:
/// escaping these strings again for every packet was a visible share of the time.
pub(crate) struct Cached {
    iface: String,
    run_id: Box<RawValue>,
    log_name: Box<RawValue>,
    labels_debug: Box<RawValue>,
    labels_info: Box<RawValue>,
}

fn raw<T: Serialize + ?Sized>(v: &T) -> Box<RawValue> {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(|| RawValue::from_string("null".into()).unwrap_or_default())
}

impl Cached {
    pub(crate) fn new(settings: &TranslatorSettings) -> Self {
        let mut c = Cached {
            iface: String::new(),
            run_id: raw(&settings.run_id),
            log_name: raw(&settings.log_name),
            labels_debug: raw(&()),
            labels_info: raw(&()),
        };
        c.set_iface(settings, "");
        c
    }

    /// `pcap.id` as JSON.
    pub(crate) fn run_id(&self) -> &RawValue {
        &self.run_id
    }

    /// `pcap.ctx` as JSON.
    pub(crate) fn log_name(&self) -> &RawValue {
        &self.log_name
    }

    /// The labels object as JSON.
    pub(crate) fn labels(&self, debug: bool) -> &RawValue {
        if debug {
            &self.labels_debug
        } else {
            &self.labels_info
        }
    }

    /// Rebuilds the labels when the interface changes (rare: one translator per source).
    pub(crate) fn for_iface(&mut self, settings: &TranslatorSettings, iface: &str) {
        if self.iface != iface {
            self.set_iface(settings, iface);
        }
    }

    fn set_iface(&mut self, settings: &TranslatorSettings, iface: &str) {
        self.iface = iface.to_string();
        self.labels_debug = raw(&Labels {
            settings,
            iface,
            debug: true,
        });
        self.labels_info = raw(&Labels {
            settings,
            iface,
            debug: false,
        });
    }
}

pub(crate) struct Entry<'a> {
    pub settings: &'a TranslatorSettings,
    pub cached: &'a Cached,
    pub source: &'a Source,
    pub packet: &'a CapturedPacket<'a>,
    /// The packet's capture time.
    pub timestamp: DateTime<Utc>,
    pub decoded: &'a Decoded<'a>,
    pub app: &'a App<'a>,
    pub flow: &'a FlowFacts,
    pub message: &'a str,
    pub severity: Severity,
    /// Trace of the HTTP exchange this packet belongs to.
    pub trace: Option<&'a analyze::http1::Trace>,
    pub redact: &'a crate::redact::Redactor,
}

/// Serialises anything `Display` as a JSON string without allocating.
struct Disp<T>(T);

impl<T: Display> Serialize for Disp<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `a->b`.
struct Arrow<A, B>(A, B);

impl<A: Display, B: Display> Display for Arrow<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.0, self.1)
    }
}

/// Bytes as text when printable, else lossy (used for names and TLS strings).
struct Lossy<'a>(&'a [u8]);

impl Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

struct FlagNames<const N: usize>([(bool, &'static str); N]);

impl<const N: usize> Serialize for FlagNames<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|(on, _)| *on).map(|(_, n)| n))
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let debug = self.settings.verbosity == Verbosity::Debug;
        let d = self.decoded;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SEVERITY, self.severity.as_str())?;
        m.serialize_entry(f::MESSAGE, self.message)?;
        m.serialize_entry(f::PCAP, &Pcap { e: self, debug })?;
        m.serialize_entry(
            f::TIMESTAMP,
            &Timestamp {
                seconds: self.timestamp.timestamp(),
                nanos: self.timestamp.timestamp_subsec_nanos(),
            },
        )?;
        let trunc = d.truncated || d.capture_cut();
        if debug || trunc {
            m.serialize_entry(
                f::META,
                &Meta {
                    e: self,
                    debug,
                    trunc,
                },
            )?;
        }
        if debug {
            m.serialize_entry(f::IFACE, &Iface(&self.source.interface))?;
        }
        if let Some(id) = self.flow.id {
            m.serialize_entry(f::FLOW, &fast::dec(id))?;
        }
        if self.flow.state_evicted {
            m.serialize_entry(f::STATE_EVICTED, &true)?;
        }
        if let (true, Some(c)) = (debug, &self.flow.community_id) {
            m.serialize_entry(f::COMMUNITY_ID, c.as_str())?;
        }
        // INFO writes `local` only when true: absent means false there (entry size).
        if let Some(l) = self.flow.local.filter(|l| debug || *l) {
            m.serialize_entry(f::LOCAL, &l)?;
        }
        if let Some(e) = &self.flow.error {
            m.serialize_entry(f::ERROR, &ErrorJson(e))?;
        }
        if let Some(t) = self.trace {
            http::serialize_trace(&mut m, self.settings.project_id.as_deref(), t)?;
        }
        if debug && !matches!(d.link, Link::None | Link::Raw) {
            m.serialize_entry(f::L2, &L2(d.link))?;
        }
        match d.network {
            Some(Network::Ipv4(ip)) => {
                m.serialize_entry(f::L3, &Ipv4Json { ip, e: self, debug })?
            }
            Some(Network::Ipv6(ip)) => {
                m.serialize_entry(f::L3, &Ipv6Json { ip, e: self, debug })?
            }
            Some(Network::Arp(a)) => m.serialize_entry(f::ARP, &ArpJson(a))?,
            _ => {}
        }
        match d.transport {
            Some(Transport::Tcp(t)) => m.serialize_entry(f::L4, &TcpJson { t, e: self, debug })?,
            Some(Transport::Udp(u)) => m.serialize_entry(f::L4, &UdpJson { u, e: self, debug })?,
            Some(Transport::Icmpv4(i)) => m.serialize_entry(f::ICMP, &Icmp4Json { i, debug })?,
            Some(Transport::Icmpv6(i)) => m.serialize_entry(f::ICMP, &Icmp6Json { i, debug })?,
            _ => {}
        }
        match self.app {
            App::Dns(msg) => m.serialize_entry(f::DNS, &DnsJson { m: *msg, debug })?,
            App::Tls(payload) => {
                let t = TlsJson { p: payload, debug };
                if debug || t.has_hello() {
                    m.serialize_entry(f::TLS, &t)?;
                }
            }
            App::Opaque(payload) => m.serialize_entry(
                f::L7,
                &Opaque {
                    p: payload,
                    debug,
                    redact: self.redact,
                    tcp: matches!(d.transport, Some(Transport::Tcp(_))),
                },
            )?,
            App::Stream(note) => m.serialize_entry(
                f::L7,
                &StreamJson {
                    length: d.payload.len(),
                    stream: note.name(),
                },
            )?,
            App::Http(msg) => {
                if debug || msg.error.is_some() || msg.gap > 0 || msg.skipped > 0 {
                    m.serialize_entry(
                        f::HTTP,
                        &http::HttpJson {
                            m: msg,
                            redact: self.redact,
                            debug,
                        },
                    )?;
                }
                if msg.kind == analyze::http1::Kind::Response && msg.error.is_none() {
                    let ips = d.ip_addrs();
                    m.serialize_entry(
                        f::HTTP_REQUEST,
                        &http::HttpRequestJson {
                            request: msg.request.as_ref(),
                            status: msg.code,
                            response_size: Some(msg.total_size()),
                            latency_ns: msg.latency_ns,
                            remote_ip: ips.map(|(_, dst)| dst),
                            server_ip: ips.map(|(src, _)| src),
                            protocol: msg.proto(),
                            redact: self.redact,
                        },
                    )?;
                }
            }
            App::Http2(seg) => {
                let j = crate::http2::Http2Json {
                    s: seg,
                    redact: self.redact,
                    debug,
                };
                if j.worth_writing() {
                    m.serialize_entry(f::HTTP, &j)?;
                }
                if let Some(h) = seg.response() {
                    let ips = d.ip_addrs();
                    m.serialize_entry(
                        f::HTTP_REQUEST,
                        &http::HttpRequestJson {
                            request: h.request.as_ref(),
                            status: h.status.unwrap_or(0),
                            response_size: crate::http2::announced_size(h),
                            latency_ns: h.latency_ns,
                            remote_ip: ips.map(|(_, dst)| dst),
                            server_ip: ips.map(|(src, _)| src),
                            protocol: "HTTP/2",
                            redact: self.redact,
                        },
                    )?;
                }
            }
            App::None => {}
        }
        let labels = if debug {
            &self.cached.labels_debug
        } else {
            &self.cached.labels_info
        };
        m.serialize_entry(f::LABELS, labels)?;
        if let (Some(id), Some(kind)) = (self.flow.id, self.flow.kind) {
            m.serialize_entry(
                f::OPERATION,
                &Operation {
                    e: self,
                    id,
                    kind,
                    debug,
                },
            )?;
        }
        m.end()
    }
}

/// `L7` of a segment of an HTTP flow not parsed now (already seen, or held out of order).
struct StreamJson {
    length: usize,
    stream: &'static str,
}

f::serialize_with_keys!([] StreamJson {
    length: f::LENGTH,
    stream: f::STREAM,
});
