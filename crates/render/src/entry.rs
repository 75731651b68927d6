//! The entry and its sections as `Serialize` types that borrow from the packet, so the JSON
//! is written in one pass with no intermediate document. Keys come from [`crate::fields`].
//! Every section is written by the DEBUG level; INFO keeps a compact subset with the same
//! shapes (a query that works on INFO entries works on DEBUG ones).

use std::fmt::{self, Display};

use analyze::community_id::CommunityId;
use analyze::flow::FlowKind;
use analyze::l7::App;
use analyze::{DecodeError, Decoded, Link, Network, Transport};
use cloud_logging::Severity;
use cloud_logging::Verbosity;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use wire::tcp::{Flags, TcpOption};
use wire::{arp, dns, icmpv4, icmpv6, ipv4, ipv6, tcp, tls, udp};

use crate::fast;
use crate::fields as f;
use crate::http;
use crate::{CapturedPacket, TranslatorSettings};

/// DNS records written per section (the counts are always complete).
const MAX_DNS_RECORDS: usize = 32;
/// TLS records listed per packet.
const MAX_TLS_RECORDS: usize = 16;
/// Bytes of an opaque payload sampled in DEBUG.
const SAMPLE_BYTES: usize = 64;

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
    pub packet: &'a CapturedPacket<'a>,
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

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let debug = self.settings.verbosity == Verbosity::Debug;
        let p = self.packet;
        let d = self.decoded;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SEVERITY, self.severity.as_str())?;
        m.serialize_entry(f::MESSAGE, self.message)?;
        m.serialize_entry(f::PCAP, &Pcap { e: self, debug })?;
        m.serialize_entry(
            f::TIMESTAMP,
            &Timestamp {
                seconds: p.timestamp.timestamp(),
                nanos: p.timestamp.timestamp_subsec_nanos(),
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
            m.serialize_entry(f::IFACE, &Iface(p.interface))?;
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
            m.serialize_entry(
                f::TRACE,
                &http::trace_name(self.settings.project_id.as_deref(), t),
            )?;
            if let Some(span) = t.span_id {
                m.serialize_entry(f::SPAN_ID, &http::span_hex(span))?;
            }
            m.serialize_entry(f::TRACE_SAMPLED, &t.sampled)?;
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

struct Pcap<'a> {
    e: &'a Entry<'a>,
    debug: bool,
}

impl Serialize for Pcap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.debug {
            m.serialize_entry(f::ID, &self.e.cached.run_id)?;
            m.serialize_entry(f::CTX, &self.e.cached.log_name)?;
        }
        m.serialize_entry(f::NUM, &fast::dec(self.e.packet.num))?;
        m.serialize_entry(f::DATE, &fast::rfc3339(&self.e.packet.timestamp))?;
        m.end()
    }
}

#[derive(Serialize)]
struct Timestamp {
    seconds: i64,
    nanos: u32,
}

struct Meta<'a> {
    e: &'a Entry<'a>,
    debug: bool,
    trunc: bool,
}

impl Serialize for Meta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TRUNC, &self.trunc)?;
        m.serialize_entry(f::LEN, &self.e.packet.wire_len)?;
        m.serialize_entry(f::CAP_LEN, &self.e.packet.data.len())?;
        if self.debug {
            m.serialize_entry(f::LINKTYPE, &self.e.packet.linktype)?;
        }
        m.end()
    }
}

struct Iface<'a>(&'a crate::Interface);

impl Serialize for Iface<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::INDEX, &self.0.index)?;
        m.serialize_entry(f::NAME, &self.0.name)?;
        if !self.0.addrs.is_empty() {
            m.serialize_entry(f::ADDRS, &Addrs(&self.0.addrs))?;
        }
        m.end()
    }
}

struct Addrs<'a>(&'a [std::net::IpAddr]);

impl Serialize for Addrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Disp))
    }
}

struct ErrorJson<'a>(&'a DecodeError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::LAYER, self.0.layer.name())?;
        m.serialize_entry(f::KIND, self.0.kind.as_str())?;
        m.serialize_entry(f::OFFSET, &self.0.offset)?;
        m.end()
    }
}

struct L2<'a>(Link<'a>);

impl Serialize for L2<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Link::Ethernet(e) => {
                m.serialize_entry(f::SRC, &Disp(e.src()))?;
                m.serialize_entry(f::DST, &Disp(e.dst()))?;
                m.serialize_entry(f::TYPE, e.ethertype().name())?;
                if !e.tags().is_empty() {
                    m.serialize_entry("vlan", &VlanIds(e))?;
                }
            }
            Link::Sll(p) => {
                m.serialize_entry(f::SRC, &Disp(p.addr()))?;
                m.serialize_entry(f::TYPE, p.protocol().name())?;
                m.serialize_entry("pkttype", p.packet_type().name())?;
                m.serialize_entry("hatype", &p.hardware_type())?;
            }
            Link::Sll2(p) => {
                m.serialize_entry(f::SRC, &Disp(p.addr()))?;
                m.serialize_entry(f::TYPE, p.protocol().name())?;
                m.serialize_entry("pkttype", p.packet_type().name())?;
                m.serialize_entry("hatype", &p.hardware_type())?;
                m.serialize_entry("ifindex", &p.ifindex())?;
            }
            Link::Null(p) => {
                m.serialize_entry("family", &p.family_raw())?;
            }
            Link::Raw | Link::None => {}
        }
        m.end()
    }
}

struct VlanIds<'a>(wire::ethernet::Frame<'a>);

impl Serialize for VlanIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.vlan_ids())
    }
}

struct Proto(wire::IpProtocol, bool);

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NUM_KEY, &u8::from(self.0))?;
        if self.1 {
            m.serialize_entry(f::NAME, self.0.name())?;
        }
        m.end()
    }
}

struct IpEndpoints(std::net::IpAddr, std::net::IpAddr);

impl Serialize for IpEndpoints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(f::SRC, &fast::ip(self.0))?;
        m.serialize_entry(f::DST, &fast::ip(self.1))?;
        m.serialize_entry(f::FWD, &fast::ip_arrow(self.0, self.1))?;
        m.serialize_entry(f::BWD, &fast::ip_arrow(self.1, self.0))?;
        m.end()
    }
}

struct PortEndpoints(u16, u16);

impl Serialize for PortEndpoints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(f::SRC, &fast::dec(u64::from(self.0)))?;
        m.serialize_entry(f::DST, &fast::dec(u64::from(self.1)))?;
        m.serialize_entry(f::FWD, &fast::port_arrow(self.0, self.1))?;
        m.serialize_entry(f::BWD, &fast::port_arrow(self.1, self.0))?;
        m.end()
    }
}

struct Ipv4Json<'a> {
    ip: ipv4::Packet<'a>,
    e: &'a Entry<'a>,
    debug: bool,
}

impl Serialize for Ipv4Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.ip;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::V, &4)?;
        m.serialize_entry(f::LEN, &ip.total_len())?;
        m.serialize_entry(f::TTL, &ip.ttl())?;
        m.serialize_entry(f::ID, &ip.ident())?;
        m.serialize_entry("ihl", &ip.ihl())?;
        m.serialize_entry("tos", &ip.tos())?;
        m.serialize_entry("foff", &ip.frag_offset())?;
        m.serialize_entry(f::XSUM, &ip.checksum())?;
        let flags = [
            (ip.evil(), "Evil"),
            (ip.dont_frag(), "DF"),
            (ip.more_frags(), "MF"),
        ];
        m.serialize_entry(f::FLAGS, &FlagNames(flags))?;
        if !ip.options_raw().is_empty() {
            m.serialize_entry(f::OPTS, &Ipv4Opts(*ip))?;
        }
        m.serialize_entry(f::PROTO, &Proto(ip.protocol(), true))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.host_pair))?;
        m.serialize_entry(f::ENDPOINTS, &IpEndpoints(ip.src().into(), ip.dst().into()))?;
        m.end()
    }
}

struct FlagNames<const N: usize>([(bool, &'static str); N]);

impl<const N: usize> Serialize for FlagNames<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|(on, _)| *on).map(|(_, n)| n))
    }
}

struct Ipv4Opts<'a>(ipv4::Packet<'a>);

impl Serialize for Ipv4Opts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.options().map_while(Result::ok) {
            seq.serialize_element(&Ipv4Opt(o))?;
        }
        seq.end()
    }
}

struct Ipv4Opt<'a>(ipv4::Ipv4Option<'a>);

impl Serialize for Ipv4Opt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::TYPE, &self.0.kind)?;
        m.serialize_entry(f::NAME, self.0.name())?;
        m.serialize_entry("data", &Disp(wire::hex(self.0.data)))?;
        m.end()
    }
}

struct Ipv6Json<'a> {
    ip: ipv6::Packet<'a>,
    e: &'a Entry<'a>,
    debug: bool,
}

impl Serialize for Ipv6Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.ip;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::V, &6)?;
        m.serialize_entry(f::LEN, &ip.payload_len())?;
        m.serialize_entry(f::TTL, &ip.hop_limit())?;
        m.serialize_entry("cls", &ip.traffic_class())?;
        m.serialize_entry("lbl", &ip.flow_label())?;
        if ip.extensions().next().is_some() {
            m.serialize_entry("ext", &Ipv6Exts(*ip))?;
        }
        if let Some(fr) = ip.fragment() {
            m.serialize_entry("frag", &Frag(fr))?;
        }
        m.serialize_entry(f::PROTO, &Proto(ip.protocol(), true))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.host_pair))?;
        m.serialize_entry(f::ENDPOINTS, &IpEndpoints(ip.src().into(), ip.dst().into()))?;
        m.end()
    }
}

struct Ipv6Exts<'a>(ipv6::Packet<'a>);

impl Serialize for Ipv6Exts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.extensions().map(|x| x.kind.name()))
    }
}

struct Frag(ipv6::Fragment);

impl Serialize for Frag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::OFF, &self.0.offset)?;
        m.serialize_entry("more", &self.0.more)?;
        m.serialize_entry(f::ID, &self.0.ident)?;
        m.end()
    }
}

fn service(tcp: bool, port: u16) -> Option<&'static str> {
    if tcp {
        analyze::services::tcp(port)
    } else {
        analyze::services::udp(port)
    }
}

struct TcpJson<'a> {
    t: tcp::Packet<'a>,
    e: &'a Entry<'a>,
    debug: bool,
}

impl Serialize for TcpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.t;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &t.src_port())?;
        m.serialize_entry(f::DST, &t.dst_port())?;
        if let Some(a) = &self.e.flow.tcp {
            let j = crate::tcp::AnalysisJson {
                a,
                debug: self.debug,
            };
            if j.worth_writing() {
                m.serialize_entry(crate::tcp::ANALYSIS, &j)?;
            }
        }
        // INFO: the rest is in `message` already.
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::LEN, &self.e.decoded.payload.len())?;
        m.serialize_entry(f::FLAGS, &TcpFlags(t.flags()))?;
        m.serialize_entry(f::SEQ, &t.seq())?;
        m.serialize_entry(f::ACK, &t.ack())?;
        m.serialize_entry(f::WIN, &t.window())?;
        if let Some(shift) = self.e.flow.window_shift {
            m.serialize_entry(f::XWIN, &(u32::from(t.window()) << shift))?;
        }
        if let Some(n) = service(true, t.src_port()) {
            m.serialize_entry(f::SPROTO, n)?;
        }
        if let Some(n) = service(true, t.dst_port()) {
            m.serialize_entry(f::DPROTO, n)?;
        }
        m.serialize_entry(f::OFF, &t.data_offset())?;
        m.serialize_entry(f::XSUM, &t.checksum())?;
        m.serialize_entry(f::URG, &t.urgent())?;
        m.serialize_entry(f::OPTS, &TcpOpts(*t))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.port_pair))?;
        m.serialize_entry(f::ENDPOINTS, &PortEndpoints(t.src_port(), t.dst_port()))?;
        m.end()
    }
}

struct TcpFlags(Flags);

impl Serialize for TcpFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fl = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("str", &Disp(fl))?;
        m.serialize_entry("dec", &(fl.0 & 0x1ff))?;
        m.serialize_entry("bin", &Disp(format_args!("{:#b}", fl.0 & 0x1ff)))?;
        m.serialize_entry("hex", &Disp(format_args!("{:#x}", fl.0 & 0x1ff)))?;
        m.serialize_entry("map", &FlagMap(fl))?;
        if fl.0 & Flags::RESERVED != 0 {
            m.serialize_entry("res", &(fl.0 >> 9))?;
        }
        m.end()
    }
}

struct FlagMap(Flags);

impl Serialize for FlagMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fl = self.0;
        let mut m = s.serialize_map(Some(9))?;
        for (name, on) in [
            ("SYN", fl.syn()),
            ("ACK", fl.ack()),
            ("PSH", fl.psh()),
            ("FIN", fl.fin()),
            ("RST", fl.rst()),
            ("URG", fl.urg()),
            ("ECE", fl.ece()),
            ("CWR", fl.cwr()),
            ("NS", fl.ns()),
        ] {
            m.serialize_entry(name, &on)?;
        }
        m.end()
    }
}

struct TcpOpts<'a>(tcp::Packet<'a>);

impl Serialize for TcpOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.options().map_while(Result::ok) {
            seq.serialize_element(&TcpOpt(o))?;
        }
        seq.end()
    }
}

/// One option in the original's shape: a bare name for valueless options, else
/// `{Name: [values…]}`; hex values keep every digit (the original stripped trailing zeros).
struct TcpOpt<'a>(TcpOption<'a>);

struct OneKey<K, V>(K, V);

impl<K: Display, V: Serialize> Serialize for OneKey<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&Disp(&self.0), &self.1)?;
        m.end()
    }
}

struct HexData<'a>(&'a [u8]);

impl Serialize for HexData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq([Disp(format_args!("0x{}", wire::hex(self.0)))])
    }
}

struct WindowScale(u8);

impl Serialize for WindowScale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("hex", &Disp(format_args!("0x{:02x}", self.0)))?;
        m.serialize_entry("dec", &self.0)?;
        m.serialize_entry("scale", &Disp(1u32 << self.0.min(14)))?;
        m.end()
    }
}

struct SackBlocks<'a>(TcpOption<'a>);

impl Serialize for SackBlocks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.sack_blocks().map(|(l, r)| Disp(Arrow(l, r))))
    }
}

impl Serialize for TcpOpt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        match o {
            TcpOption::EndOfList | TcpOption::Nop | TcpOption::SackPermitted => {
                s.serialize_str(o.name())
            }
            TcpOption::Mss(v) => OneKey(
                "MSS",
                [Disp(format_args!("{v}")), Disp(format_args!("0x{v:04x}"))],
            )
            .serialize(s),
            TcpOption::WindowScale(v) => OneKey("WindowScale", [WindowScale(v)]).serialize(s),
            TcpOption::Timestamps { tsval, tsecr } => OneKey(
                "Timestamps",
                [
                    Disp(format_args!("{tsval}")),
                    Disp(format_args!("{tsecr}")),
                    Disp(format_args!("0x{tsval:08x}{tsecr:08x}")),
                ],
            )
            .serialize(s),
            TcpOption::Sack(_) => OneKey("SACK", SackBlocks(o)).serialize(s),
            TcpOption::UserTimeout(v) => OneKey("UserTimeout", [v]).serialize(s),
            TcpOption::Md5(d) | TcpOption::Ao(d) | TcpOption::Mptcp(d) | TcpOption::FastOpen(d) => {
                OneKey(o.name(), HexData(d)).serialize(s)
            }
            TcpOption::Unknown { kind, data } => {
                OneKey(format_args!("Unknown({kind})"), HexData(data)).serialize(s)
            }
        }
    }
}

struct UdpJson<'a> {
    u: udp::Packet<'a>,
    e: &'a Entry<'a>,
    debug: bool,
}

impl Serialize for UdpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = &self.u;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &u.src_port())?;
        m.serialize_entry(f::DST, &u.dst_port())?;
        m.serialize_entry(f::SIZE, &self.e.decoded.payload.len())?;
        if !self.debug {
            return m.end();
        }
        if let Some(n) = service(false, u.src_port()) {
            m.serialize_entry(f::SPROTO, n)?;
        }
        if let Some(n) = service(false, u.dst_port()) {
            m.serialize_entry(f::DPROTO, n)?;
        }
        m.serialize_entry(f::LEN, &u.len())?;
        m.serialize_entry(f::XSUM, &u.checksum())?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.port_pair))?;
        m.serialize_entry(f::ENDPOINTS, &PortEndpoints(u.src_port(), u.dst_port()))?;
        m.end()
    }
}

struct Icmp4Json<'a> {
    i: icmpv4::Packet<'a>,
    debug: bool,
}

impl Serialize for Icmp4Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.i;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TYPE, &i.msg_type())?;
        m.serialize_entry("code", &i.code())?;
        m.serialize_entry("msg", &Disp(i.type_code()))?;
        if i.has_id_seq() {
            m.serialize_entry(f::ID, &i.ident())?;
            m.serialize_entry(f::SEQ, &i.seq())?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::XSUM, &i.checksum())?;
        match (i.msg_type(), i.code()) {
            (5, _) => m.serialize_entry("tgt", &Disp(i.gateway()))?,
            (3, 4) => m.serialize_entry("mtu", &i.next_hop_mtu())?,
            (12, _) => m.serialize_entry("ptr", &i.pointer())?,
            _ => {}
        }
        if i.is_error() {
            if let Ok(inner) = ipv4::Packet::new_checked(i.payload()) {
                m.serialize_entry("IPv4", &Embedded4(inner))?;
            }
        }
        m.end()
    }
}

/// Ports of the invoking datagram's TCP/UDP header (its first 4 bytes).
fn inner_ports(proto: wire::IpProtocol, l4: &[u8]) -> Option<(u16, u16)> {
    if !matches!(proto, wire::IpProtocol::Tcp | wire::IpProtocol::Udp) {
        return None;
    }
    match l4.get(..4)? {
        &[a, b, c, d] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
        _ => None,
    }
}

struct Embedded4<'a>(ipv4::Packet<'a>);

impl Serialize for Embedded4<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::ID, &ip.ident())?;
        m.serialize_entry(f::TTL, &ip.ttl())?;
        m.serialize_entry(f::PROTO, ip.protocol().name())?;
        m.serialize_entry(f::XSUM, &ip.checksum())?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if let Some((sp, dp)) = inner_ports(ip.protocol(), ip.payload()) {
            m.serialize_entry("sport", &sp)?;
            m.serialize_entry("dport", &dp)?;
        }
        m.end()
    }
}

struct Icmp6Json<'a> {
    i: icmpv6::Packet<'a>,
    debug: bool,
}

impl Serialize for Icmp6Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.i;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TYPE, &i.msg_type())?;
        m.serialize_entry("code", &i.code())?;
        m.serialize_entry("msg", &Disp(i.type_code()))?;
        if i.is_echo() {
            m.serialize_entry(f::ID, &i.ident())?;
            m.serialize_entry(f::SEQ, &i.seq())?;
        }
        if let Some(t) = i.nd_target() {
            m.serialize_entry("tgt", &Disp(t))?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::XSUM, &i.checksum())?;
        if let Some(d) = i.redirect_dst() {
            m.serialize_entry(f::DST, &Disp(d))?;
        }
        if i.msg_type() == 2 {
            m.serialize_entry("mtu", &i.mtu())?;
        }
        if i.msg_type() == 136 {
            let fl = i.na_flags();
            m.serialize_entry(
                "na",
                &FlagNames([
                    (fl & 0x80 != 0, "router"),
                    (fl & 0x40 != 0, "solicited"),
                    (fl & 0x20 != 0, "override"),
                ]),
            )?;
        }
        if let Some((hops, flags, lifetime)) = i.ra_fields() {
            m.serialize_entry(
                "ra",
                &RaJson {
                    hops,
                    flags,
                    lifetime,
                },
            )?;
        }
        if i.type_code().is_neighbor_discovery() && i.nd_options().next().is_some() {
            m.serialize_entry("nd", &NdOpts(*i))?;
        }
        if i.is_error() {
            if let Ok(inner) = ipv6::Packet::new_checked(i.payload()) {
                m.serialize_entry("IPv6", &Embedded6(inner))?;
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct RaJson {
    hops: u8,
    flags: u8,
    lifetime: u16,
}

struct NdOpts<'a>(icmpv6::Packet<'a>);

impl Serialize for NdOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.nd_options().map_while(Result::ok).take(16) {
            seq.serialize_element(&NdOpt(o))?;
        }
        seq.end()
    }
}

struct NdOpt<'a>(icmpv6::NdOption<'a>);

impl Serialize for NdOpt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(f::TYPE, self.0.name())?;
        match self.0.link_addr() {
            Some(a) => m.serialize_entry("lladdr", &Disp(a))?,
            None => m.serialize_entry("data", &Disp(wire::hex(self.0.data)))?,
        }
        m.end()
    }
}

struct Embedded6<'a>(ipv6::Packet<'a>);

impl Serialize for Embedded6<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::V, &6)?;
        m.serialize_entry("lbl", &ip.flow_label())?;
        m.serialize_entry("dsf", &(ip.traffic_class() >> 2))?;
        m.serialize_entry("ecn", &(ip.traffic_class() & 3))?;
        m.serialize_entry(f::TTL, &ip.hop_limit())?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        m.serialize_entry(f::PROTO, ip.protocol().name())?;
        if let Some((sp, dp)) = inner_ports(ip.protocol(), ip.payload()) {
            m.serialize_entry("sport", &sp)?;
            m.serialize_entry("dport", &dp)?;
        }
        m.end()
    }
}

struct ArpJson<'a>(arp::Packet<'a>);

struct ArpEnd<'a>(Option<std::net::Ipv4Addr>, &'a [u8], wire::HwAddr<'a>);

impl Serialize for ArpEnd<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self.0 {
            Some(ip) => m.serialize_entry("IP", &Disp(ip))?,
            None => m.serialize_entry("IP", &Disp(wire::hex(self.1)))?,
        }
        m.serialize_entry("MAC", &Disp(self.2))?;
        m.end()
    }
}

impl Serialize for ArpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("op", &a.operation_raw())?;
        m.serialize_entry(f::NAME, a.operation().name())?;
        m.serialize_entry(
            f::SRC,
            &ArpEnd(a.sender_ip(), a.sender_proto(), a.sender_hw()),
        )?;
        m.serialize_entry(
            f::DST,
            &ArpEnd(a.target_ip(), a.target_proto(), a.target_hw()),
        )?;
        m.end()
    }
}

struct DnsJson<'a> {
    m: dns::Message<'a>,
    debug: bool,
}

impl Serialize for DnsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = &self.m;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::ID, &d.id())?;
        m.serialize_entry("qr", &d.is_response())?;
        m.serialize_entry("op", d.opcode().name())?;
        m.serialize_entry("response_code", d.rcode().name())?;
        m.serialize_entry("questions", &Questions(*d, self.debug))?;
        m.serialize_entry(
            "answers",
            &RecordsJson(*d, dns::Section::Answer, self.debug),
        )?;
        if !self.debug {
            return m.end();
        }
        let flags = [
            (d.authoritative(), "AA"),
            (d.truncated_flag(), "TC"),
            (d.recursion_desired(), "RD"),
            (d.recursion_available(), "RA"),
            (d.authentic_data(), "AD"),
            (d.checking_disabled(), "CD"),
        ];
        m.serialize_entry(f::FLAGS, &FlagNames(flags))?;
        m.serialize_entry("questions_count", &d.qdcount())?;
        m.serialize_entry("answers_count", &d.ancount())?;
        m.serialize_entry("authorities_count", &d.nscount())?;
        m.serialize_entry("additionals_count", &d.arcount())?;
        if d.nscount() > 0 {
            m.serialize_entry(
                "authorities",
                &RecordsJson(*d, dns::Section::Authority, true),
            )?;
        }
        let opt = d
            .records()
            .map_while(Result::ok)
            .find(|r| r.rtype == dns::Type::Opt);
        let others = d
            .records()
            .map_while(Result::ok)
            .any(|r| r.section == dns::Section::Additional && r.rtype != dns::Type::Opt);
        if others {
            m.serialize_entry(
                "additionals",
                &RecordsJson(*d, dns::Section::Additional, true),
            )?;
        }
        if let Some(Ok(dns::RData::Opt(o))) = opt.map(|r| r.data()) {
            m.serialize_entry("edns", &Edns(o))?;
        }
        m.end()
    }
}

struct Questions<'a>(dns::Message<'a>, bool);

impl Serialize for Questions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for q in self
            .0
            .questions()
            .map_while(Result::ok)
            .take(MAX_DNS_RECORDS)
        {
            seq.serialize_element(&QuestionJson(q, self.1))?;
        }
        seq.end()
    }
}

struct QuestionJson<'a>(dns::Question<'a>, bool);

impl Serialize for QuestionJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let q = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NAME, &Disp(q.name))?;
        m.serialize_entry(f::TYPE, &DnsType(q.qtype))?;
        if self.1 {
            m.serialize_entry("class", dns::class_name(q.qclass))?;
        }
        m.end()
    }
}

/// A type's mnemonic, or `TYPE<n>` (RFC 3597) for unknown ones.
struct DnsType(dns::Type);

impl Serialize for DnsType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            dns::Type::Unknown(n) => s.collect_str(&format_args!("TYPE{n}")),
            t => s.serialize_str(t.name()),
        }
    }
}

struct RecordsJson<'a>(dns::Message<'a>, dns::Section, bool);

impl Serialize for RecordsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let recs = self
            .0
            .records()
            .map_while(Result::ok)
            .filter(|r| r.section == self.1 && r.rtype != dns::Type::Opt)
            .take(MAX_DNS_RECORDS);
        for r in recs {
            seq.serialize_element(&RecordJson(r, self.2))?;
        }
        seq.end()
    }
}

struct RecordJson<'a>(dns::Record<'a>, bool);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NAME, &Disp(r.name))?;
        m.serialize_entry(f::TYPE, &DnsType(r.rtype))?;
        if self.1 {
            m.serialize_entry("class", dns::class_name(r.class))?;
            m.serialize_entry(f::TTL, &r.ttl)?;
        }
        match r.data() {
            Ok(dns::RData::A(a)) => m.serialize_entry("ip", &Disp(a))?,
            Ok(dns::RData::Aaaa(a)) => m.serialize_entry("ip", &Disp(a))?,
            Ok(dns::RData::Ns(n)) => m.serialize_entry("ns", &Disp(n))?,
            Ok(dns::RData::Cname(n)) => m.serialize_entry("cname", &Disp(n))?,
            Ok(dns::RData::Ptr(n)) => m.serialize_entry("ptr", &Disp(n))?,
            Ok(dns::RData::Mx {
                preference,
                exchange,
            }) => m.serialize_entry(
                "mx",
                &Mx {
                    preference,
                    host: Disp(exchange),
                },
            )?,
            Ok(dns::RData::Txt(t)) => m.serialize_entry("txt", &Txt(t))?,
            Ok(dns::RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            }) => m.serialize_entry(
                "soa",
                &Soa {
                    mname: Disp(mname),
                    rname: Disp(rname),
                    serial,
                    refresh,
                    retry,
                    expire,
                    minimum,
                },
            )?,
            Ok(dns::RData::Srv {
                priority,
                weight,
                port,
                target,
            }) => m.serialize_entry(
                "srv",
                &Srv {
                    priority,
                    weight,
                    port,
                    target: Disp(target),
                },
            )?,
            Ok(dns::RData::Caa { flags, tag, value }) => m.serialize_entry(
                "caa",
                &Caa {
                    flags,
                    tag: Disp(Lossy(tag)),
                    value: Disp(Lossy(value)),
                },
            )?,
            Ok(dns::RData::Opt(_)) | Ok(dns::RData::Raw(_)) | Err(_) => {
                m.serialize_entry("data", &Disp(wire::hex(r.rdata())))?
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Mx<N: Serialize> {
    preference: u16,
    host: N,
}

#[derive(Serialize)]
struct Soa<N: Serialize> {
    mname: N,
    rname: N,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

#[derive(Serialize)]
struct Srv<N: Serialize> {
    priority: u16,
    weight: u16,
    port: u16,
    target: N,
}

#[derive(Serialize)]
struct Caa<T: Serialize> {
    flags: u8,
    tag: T,
    value: T,
}

struct Txt<'a>(dns::CharStrings<'a>);

impl Serialize for Txt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.take(MAX_DNS_RECORDS).map(|b| Disp(Lossy(b))))
    }
}

struct Edns<'a>(dns::Opt<'a>);

impl Serialize for Edns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("udp_size", &o.udp_payload_size)?;
        m.serialize_entry("version", &o.version)?;
        m.serialize_entry("do", &o.dnssec_ok)?;
        if o.ext_rcode != 0 {
            m.serialize_entry("ext_rcode", &o.ext_rcode)?;
        }
        m.serialize_entry("options", &EdnsOpts(o.options))?;
        m.end()
    }
}

struct EdnsOpts<'a>(dns::OptOptions<'a>);

impl Serialize for EdnsOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .take(MAX_DNS_RECORDS)
                .map(|(code, _)| dns::edns_option_name(code)),
        )
    }
}

struct TlsJson<'a> {
    p: &'a [u8],
    debug: bool,
}

impl TlsJson<'_> {
    fn hello(&self) -> Option<tls::Hello<'_>> {
        tls::records(self.p)
            .take(MAX_TLS_RECORDS)
            .find_map(|r| r.handshake().and_then(|h| h.hello()))
    }

    fn has_hello(&self) -> bool {
        self.hello().is_some()
    }
}

impl Serialize for TlsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.debug {
            for (key, ct) in [
                ("handshake", tls::ContentType::Handshake),
                ("change_cipher_spec", tls::ContentType::ChangeCipherSpec),
                ("alert", tls::ContentType::Alert),
                ("app_data", tls::ContentType::ApplicationData),
                ("heartbeat", tls::ContentType::Heartbeat),
            ] {
                if tls::records(self.p)
                    .take(MAX_TLS_RECORDS)
                    .any(|r| r.content_type() == ct)
                {
                    m.serialize_entry(key, &TlsRecords(self.p, ct))?;
                }
            }
        }
        if let Some(h) = self.hello() {
            let key = if h.client {
                "client_hello"
            } else {
                "server_hello"
            };
            m.serialize_entry(key, &HelloJson(h, self.debug))?;
        }
        m.end()
    }
}

struct TlsRecords<'a>(&'a [u8], tls::ContentType);

impl Serialize for TlsRecords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for r in tls::records(self.0)
            .take(MAX_TLS_RECORDS)
            .filter(|r| r.content_type() == self.1)
        {
            seq.serialize_element(&TlsRecord(r))?;
        }
        seq.end()
    }
}

struct TlsRecord<'a>(tls::Record<'a>);

impl Serialize for TlsRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("version", tls::version_name(r.version()))?;
        m.serialize_entry("content_type", r.content_type().name())?;
        m.serialize_entry(f::LENGTH, &r.length())?;
        if let Some(h) = r.handshake() {
            m.serialize_entry("message", tls::handshake_name(h.msg_type()))?;
        }
        if let Some((level, desc)) = r.alert() {
            m.serialize_entry("level", &level)?;
            m.serialize_entry("description", &desc)?;
        }
        if r.is_partial() {
            m.serialize_entry("partial", &true)?;
        }
        m.end()
    }
}

struct HelloJson<'a>(tls::Hello<'a>, bool);

impl Serialize for HelloJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = &self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(sni) = h.server_name {
            m.serialize_entry("sni", &Disp(Lossy(sni)))?;
        }
        if h.alpn().next().is_some() {
            m.serialize_entry("alpn", &Alpn(*h))?;
        }
        if !h.client {
            m.serialize_entry("version", tls::version_name(h.selected_version()))?;
        }
        if !self.1 {
            return m.end();
        }
        m.serialize_entry("legacy_version", tls::version_name(h.legacy_version))?;
        if h.client {
            m.serialize_entry("versions", &Versions(*h))?;
            m.serialize_entry("ciphers", &h.cipher_suites)?;
        } else if let Some(c) = h.cipher_suite {
            m.serialize_entry("cipher", &Disp(format_args!("0x{c:04x}")))?;
        }
        m.serialize_entry("extensions", &h.extensions)?;
        if h.partial {
            m.serialize_entry("partial", &true)?;
        }
        m.end()
    }
}

struct Alpn<'a>(tls::Hello<'a>);

impl Serialize for Alpn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.alpn().take(16).map(|a| Disp(Lossy(a))))
    }
}

struct Versions<'a>(tls::Hello<'a>);

impl Serialize for Versions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .versions()
                .take(16)
                .filter(|v| tls::version_name(*v) != "GREASE")
                .map(tls::version_name),
        )
    }
}

struct Opaque<'a> {
    p: &'a [u8],
    debug: bool,
    redact: &'a crate::redact::Redactor,
    tcp: bool,
}

fn printable(b: &[u8]) -> Option<&str> {
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        // A sample cut inside a multi-byte character is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(b.get(..e.valid_up_to())?).ok()?,
        Err(_) => return None,
    };
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .then_some(s)
}

impl Serialize for Opaque<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::LENGTH, &self.p.len())?;
        if self.debug {
            let sample = self.p.get(..SAMPLE_BYTES).unwrap_or(self.p);
            match printable(sample) {
                Some(text) => {
                    // A capture that starts inside a header block: no secret in the sample.
                    m.serialize_entry(f::SAMPLE, &self.redact.sample(text))?;
                    m.serialize_entry(f::ENCODING, "text")?;
                }
                // Unrecognised binary TCP payload may be the middle of an HTTP/2 header
                // block (HPACK literals carry secret values as they are, or Huffman-coded):
                // its bytes are not shown. The .pcap files have them.
                None if self.tcp => m.serialize_entry(f::ENCODING, "binary")?,
                None => {
                    m.serialize_entry(f::SAMPLE, &Disp(wire::hex(sample)))?;
                    m.serialize_entry(f::ENCODING, "hex")?;
                }
            }
        }
        m.end()
    }
}

struct Labels<'a> {
    settings: &'a TranslatorSettings,
    iface: &'a str,
    debug: bool,
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.settings;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::LABEL_SIDECAR, cloud_logging::SIDECAR_LABEL)?;
        m.serialize_entry(f::LABEL_MODULE, f::MODULE)?;
        if self.debug {
            m.serialize_entry(f::LABEL_TOOL, f::TOOL)?;
            m.serialize_entry(f::LABEL_IFACE, self.iface)?;
            m.serialize_entry(f::LABEL_ID, &st.run_id)?;
            m.serialize_entry(f::LABEL_NAME, &st.log_name)?;
        }
        m.end()
    }
}

/// The first 8 characters of a run id's last part (`pcapd/<uuid>` → the uuid's first 8).
fn short_run(run_id: &str) -> &str {
    let last = run_id.rsplit('/').next().unwrap_or(run_id);
    let mut end = last.len().min(8);
    while !last.is_char_boundary(end) {
        end -= 1;
    }
    last.get(..end).unwrap_or(last)
}

struct Operation<'a> {
    e: &'a Entry<'a>,
    id: u64,
    kind: FlowKind,
    debug: bool,
}

impl Serialize for Operation<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.e.settings;
        let mut m = s.serialize_map(None)?;
        if self.debug {
            m.serialize_entry(
                f::ID,
                &Disp(format_args!(
                    "{}/iface/{}/flow/{}:{}",
                    st.run_id,
                    self.e.packet.interface.name,
                    self.kind.name(),
                    self.id
                )),
            )?;
        } else {
            // INFO: the run's first 8 characters are enough to tell runs apart.
            m.serialize_entry(
                f::ID,
                &Disp(format_args!(
                    "{}/{}/{}:{}",
                    short_run(&st.run_id),
                    self.e.packet.interface.name,
                    self.kind.name(),
                    self.id
                )),
            )?;
        }
        if self.debug {
            m.serialize_entry(f::PRODUCER, &self.e.cached.log_name)?;
        }
        if self.e.flow.first {
            m.serialize_entry(f::FIRST, &true)?;
        }
        if self.e.flow.last {
            m.serialize_entry(f::LAST, &true)?;
        }
        m.end()
    }
}

/// `L7` of a segment of an HTTP flow not parsed now (already seen, or held out of order).
#[derive(serde::Serialize)]
struct StreamJson {
    length: usize,
    stream: &'static str,
}
