//! One captured packet → its layers ([`Decoded`]), decoded as far as the bytes go.
//!
//! Rules: the first layer that cannot be decoded stops decoding and is reported as a
//! [`DecodeError`] (the layers before it are kept). When the capture was cut by the snaplen
//! (`captured < wire length`) a layer that runs off the end is *not* an error: decoding stops
//! and [`Decoded::truncated`] says so. A length field that claims more bytes than the packet
//! had on the wire is an error (`bad_length`), but what is there is still decoded.

use wire::{
    arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, null, sll, sll2, tcp, udp, ErrorKind, EtherType,
    IpProtocol, LinkType,
};

/// The layer (protocol) an error or counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Unsupported link type.
    Link,
    /// Ethernet.
    Ethernet,
    /// Linux cooked v1.
    Sll,
    /// Linux cooked v2.
    Sll2,
    /// BSD loopback.
    Null,
    /// ARP.
    Arp,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ICMPv4.
    Icmpv4,
    /// ICMPv6.
    Icmpv6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// DNS.
    Dns,
    /// TLS.
    Tls,
}

impl Layer {
    /// Every layer, in [`Layer::index`] order.
    pub const ALL: [Layer; 14] = [
        Layer::Link,
        Layer::Ethernet,
        Layer::Sll,
        Layer::Sll2,
        Layer::Null,
        Layer::Arp,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Icmpv4,
        Layer::Icmpv6,
        Layer::Tcp,
        Layer::Udp,
        Layer::Dns,
        Layer::Tls,
    ];

    /// Lowercase name (`error.layer` in JSON, counter label).
    pub fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ethernet => "ethernet",
            Layer::Sll => "sll",
            Layer::Sll2 => "sll2",
            Layer::Null => "null",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Icmpv4 => "icmpv4",
            Layer::Icmpv6 => "icmpv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Dns => "dns",
            Layer::Tls => "tls",
        }
    }

    /// Position in [`Layer::ALL`] (for counter arrays).
    pub fn index(self) -> usize {
        Layer::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }
}

/// Why a layer could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Layer that failed.
    pub layer: Layer,
    /// What was wrong.
    pub kind: ErrorKind,
    /// Offset from the start of the captured packet.
    pub offset: usize,
}

/// The link layer.
#[derive(Debug, Clone, Copy)]
pub enum Link<'a> {
    /// Ethernet (possibly VLAN-tagged).
    Ethernet(ethernet::Frame<'a>),
    /// Linux cooked v1.
    Sll(sll::Packet<'a>),
    /// Linux cooked v2.
    Sll2(sll2::Packet<'a>),
    /// BSD loopback.
    Null(null::Packet<'a>),
    /// No link header (raw IP).
    Raw,
    /// A link type this decoder does not know, or a header that could not be read.
    None,
}

/// The network layer.
#[derive(Debug, Clone, Copy)]
pub enum Network<'a> {
    /// IPv4.
    Ipv4(ipv4::Packet<'a>),
    /// IPv6.
    Ipv6(ipv6::Packet<'a>),
    /// ARP.
    Arp(arp::Packet<'a>),
    /// Another EtherType (not decoded).
    Other(EtherType),
}

/// The transport layer.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(tcp::Packet<'a>),
    /// UDP.
    Udp(udp::Packet<'a>),
    /// ICMPv4.
    Icmpv4(icmpv4::Packet<'a>),
    /// ICMPv6.
    Icmpv6(icmpv6::Packet<'a>),
    /// Another IP protocol (not decoded); SCTP's ports are read for the Community ID.
    Other(IpProtocol),
    /// A non-first fragment: no transport header in this packet.
    Fragment(IpProtocol),
}

/// Everything decoded from one packet.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// The captured bytes.
    pub data: &'a [u8],
    /// Length on the wire.
    pub wire_len: u32,
    /// Link layer.
    pub link: Link<'a>,
    /// Network layer, when the link layer was decoded.
    pub network: Option<Network<'a>>,
    /// Transport layer, when the network layer was IP and decoded.
    pub transport: Option<Transport<'a>>,
    /// TCP/UDP payload (empty otherwise).
    pub payload: &'a [u8],
    /// Offset of `payload` in `data`.
    pub payload_offset: usize,
    /// The capture was cut by the snaplen and a layer ran off its end.
    pub truncated: bool,
    /// The first layer that failed.
    pub error: Option<DecodeError>,
}

fn offset_of(data: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(data.as_ptr() as usize)
        .min(data.len())
}

impl<'a> Decoded<'a> {
    /// True when fewer bytes were captured than were on the wire.
    pub fn capture_cut(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.wire_len)
    }

    fn fail(&mut self, layer: Layer, e: wire::Error, base: &[u8]) {
        if e.kind == ErrorKind::Truncated && self.capture_cut() {
            self.truncated = true;
            return;
        }
        if self.error.is_none() {
            self.error = Some(DecodeError {
                layer,
                kind: e.kind,
                offset: offset_of(self.data, base).saturating_add(e.offset),
            });
        }
    }

    /// Records a layer's error without stopping (used for lengths that lie).
    fn note(&mut self, layer: Layer, kind: ErrorKind, offset: usize) {
        if self.error.is_none() {
            self.error = Some(DecodeError {
                layer,
                kind,
                offset,
            });
        }
    }

    /// Source and destination IP addresses.
    pub fn ip_addrs(&self) -> Option<(std::net::IpAddr, std::net::IpAddr)> {
        match self.network? {
            Network::Ipv4(p) => Some((p.src().into(), p.dst().into())),
            Network::Ipv6(p) => Some((p.src().into(), p.dst().into())),
            _ => None,
        }
    }

    /// IP protocol of the transport layer (after IPv6 extension headers).
    pub fn ip_protocol(&self) -> Option<IpProtocol> {
        match self.network? {
            Network::Ipv4(p) => Some(p.protocol()),
            Network::Ipv6(p) => Some(p.protocol()),
            _ => None,
        }
    }

    /// Source and destination ports of TCP/UDP (and SCTP, read from its common header).
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport? {
            Transport::Tcp(t) => Some((t.src_port(), t.dst_port())),
            Transport::Udp(u) => Some((u.src_port(), u.dst_port())),
            _ => None,
        }
    }
}

/// Decodes one captured packet. `linktype` is a [`LinkType`] or its `LINKTYPE_*` number (what
/// capture files and libpcap give).
pub fn decode(linktype: impl Into<LinkType>, data: &[u8], wire_len: u32) -> Decoded<'_> {
    let linktype = linktype.into();
    let mut d = Decoded {
        data,
        wire_len,
        link: Link::None,
        network: None,
        transport: None,
        payload: &[],
        payload_offset: data.len(),
        truncated: false,
        error: None,
    };
    // What follows the link header: an EtherType-like value and the bytes.
    let (ethertype, rest) = match linktype {
        LinkType::Ethernet => match ethernet::Frame::new_checked(data) {
            Ok(f) => {
                d.link = Link::Ethernet(f);
                (f.ethertype(), f.payload())
            }
            Err(e) => {
                d.fail(Layer::Ethernet, e, data);
                return d;
            }
        },
        LinkType::LinuxSll => match sll::Packet::new_checked(data) {
            Ok(p) => {
                d.link = Link::Sll(p);
                (p.protocol(), p.payload())
            }
            Err(e) => {
                d.fail(Layer::Sll, e, data);
                return d;
            }
        },
        LinkType::LinuxSll2 => match sll2::Packet::new_checked(data) {
            Ok(p) => {
                d.link = Link::Sll2(p);
                (p.protocol(), p.payload())
            }
            Err(e) => {
                d.fail(Layer::Sll2, e, data);
                return d;
            }
        },
        LinkType::Null | LinkType::Loop => {
            match null::Packet::new_checked(data, linktype == LinkType::Loop) {
                Ok(p) => {
                    d.link = Link::Null(p);
                    let t = match p.family() {
                        null::Family::Ipv4 => EtherType::Ipv4,
                        null::Family::Ipv6 => EtherType::Ipv6,
                        null::Family::Unknown(n) => EtherType::Unknown(n as u16),
                    };
                    (t, p.payload())
                }
                Err(e) => {
                    d.fail(Layer::Null, e, data);
                    return d;
                }
            }
        }
        LinkType::Raw | LinkType::RawLinux | LinkType::Ipv4 | LinkType::Ipv6 => {
            d.link = Link::Raw;
            let t = match data.first().map(|b| b >> 4) {
                Some(6) => EtherType::Ipv6,
                _ => EtherType::Ipv4,
            };
            (t, data)
        }
        _ => {
            d.note(Layer::Link, ErrorKind::BadVersion, 0);
            return d;
        }
    };
    decode_network(&mut d, ethertype, rest);
    d
}

fn decode_network<'a>(d: &mut Decoded<'a>, ethertype: EtherType, rest: &'a [u8]) {
    let (proto, l4, frag_later) = match ethertype {
        EtherType::Ipv4 => match ipv4::Packet::new_checked(rest) {
            Ok(p) => {
                d.network = Some(Network::Ipv4(p));
                check_ip_length(d, Layer::Ipv4, rest, p.effective_len());
                (p.protocol(), p.payload(), p.frag_offset() != 0)
            }
            Err(e) => return d.fail(Layer::Ipv4, e, rest),
        },
        EtherType::Ipv6 => match ipv6::Packet::new_checked(rest) {
            Ok(p) => {
                d.network = Some(Network::Ipv6(p));
                check_ip_length(d, Layer::Ipv6, rest, p.effective_len());
                if let Some(e) = p.chain_error() {
                    d.fail(Layer::Ipv6, e, rest);
                    return;
                }
                let later = p.fragment().is_some_and(|f| f.offset != 0);
                (p.protocol(), p.payload(), later)
            }
            Err(e) => return d.fail(Layer::Ipv6, e, rest),
        },
        EtherType::Arp => {
            match arp::Packet::new_checked(rest) {
                Ok(p) => d.network = Some(Network::Arp(p)),
                Err(e) => d.fail(Layer::Arp, e, rest),
            }
            return;
        }
        other => {
            d.network = Some(Network::Other(other));
            return;
        }
    };
    if frag_later {
        d.transport = Some(Transport::Fragment(proto));
        return;
    }
    match proto {
        IpProtocol::Tcp => match tcp::Packet::new_checked(l4) {
            Ok(t) => {
                d.transport = Some(Transport::Tcp(t));
                set_payload(d, t.payload());
            }
            Err(e) => d.fail(Layer::Tcp, e, l4),
        },
        IpProtocol::Udp => match udp::Packet::new_checked(l4) {
            Ok(u) => {
                d.transport = Some(Transport::Udp(u));
                if u.is_truncated() && !d.capture_cut() {
                    d.note(Layer::Udp, ErrorKind::BadLength, offset_of(d.data, l4) + 4);
                }
                set_payload(d, u.payload());
            }
            Err(e) => d.fail(Layer::Udp, e, l4),
        },
        IpProtocol::Icmp => match icmpv4::Packet::new_checked(l4) {
            Ok(p) => d.transport = Some(Transport::Icmpv4(p)),
            Err(e) => d.fail(Layer::Icmpv4, e, l4),
        },
        IpProtocol::Icmpv6 => match icmpv6::Packet::new_checked(l4) {
            Ok(p) => d.transport = Some(Transport::Icmpv6(p)),
            Err(e) => d.fail(Layer::Icmpv6, e, l4),
        },
        other => d.transport = Some(Transport::Other(other)),
    }
}

fn set_payload<'a>(d: &mut Decoded<'a>, payload: &'a [u8]) {
    d.payload = payload;
    d.payload_offset = offset_of(d.data, payload);
}

/// An IP length that claims more than the wire carried is malformed (not a snaplen cut).
fn check_ip_length(d: &mut Decoded<'_>, layer: Layer, ip: &[u8], effective: usize) {
    let start = offset_of(d.data, ip);
    let on_wire = (d.wire_len as usize).saturating_sub(start);
    if effective > on_wire.max(ip.len()) {
        let field = if layer == Layer::Ipv4 { 2 } else { 4 };
        d.note(layer, ErrorKind::BadLength, start + field);
    }
    if effective > ip.len() && d.capture_cut() {
        d.truncated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(n: usize) -> &'static [u8] {
        wire::pcapfile::File::new(include_bytes!("../../wire/testdata/veth.pcap"))
            .unwrap()
            .records()
            .nth(n)
            .unwrap()
            .unwrap()
            .data
    }

    #[test]
    fn tcp_over_ethernet() {
        let p = veth(50);
        let d = decode(LinkType::Ethernet, p, p.len() as u32);
        assert!(d.error.is_none() && !d.truncated);
        assert!(matches!(d.link, Link::Ethernet(_)));
        assert!(matches!(d.network, Some(Network::Ipv4(_))));
        assert_eq!(d.ports(), Some((55194, 8080)));
        assert!(d.payload.is_empty());
    }

    #[test]
    fn snaplen_cut_is_not_an_error() {
        let p = veth(53); // the HTTP GET, 78 bytes of payload
        let d = decode(LinkType::Ethernet, &p[..60], p.len() as u32);
        assert!(d.error.is_none(), "{:?}", d.error);
        assert!(d.truncated);
        assert!(matches!(d.network, Some(Network::Ipv4(_))));
        assert!(d.transport.is_none(), "TCP header cut");
        let d = decode(LinkType::Ethernet, &p[..90], p.len() as u32);
        assert!(d.truncated && d.error.is_none());
        assert_eq!(d.payload.len(), 90 - 66);
    }

    #[test]
    fn cut_without_snaplen_is_an_error() {
        let p = veth(53);
        let d = decode(LinkType::Ethernet, &p[..60], 60);
        let e = d.error.unwrap();
        assert_eq!((e.layer, e.kind), (Layer::Ipv4, ErrorKind::BadLength));
        assert_eq!(e.offset, 16);
        let e = decode(LinkType::Ethernet, &p[..40], 40).error.unwrap();
        assert_eq!(
            (e.layer, e.kind, e.offset),
            (Layer::Ipv4, ErrorKind::BadLength, 16)
        );
    }

    #[test]
    fn bad_tcp_offset_reports_absolute_offset() {
        let mut p = veth(50).to_vec();
        p[46] = 0x30; // data offset 3 words
        let d = decode(LinkType::Ethernet, &p, p.len() as u32);
        let e = d.error.unwrap();
        assert_eq!(
            (e.layer, e.kind, e.offset),
            (Layer::Tcp, ErrorKind::BadHeaderLength, 46)
        );
        assert!(
            matches!(d.network, Some(Network::Ipv4(_))),
            "layers below kept"
        );
    }

    #[test]
    fn unknown_linktype_and_raw() {
        let d = decode(9999, &[1, 2, 3], 3);
        assert_eq!(d.error.unwrap().layer, Layer::Link);
        let p = veth(50);
        let d = decode(LinkType::Raw, &p[14..], (p.len() - 14) as u32);
        assert!(matches!(d.link, Link::Raw));
        assert_eq!(d.ports(), Some((55194, 8080)));
    }

    #[test]
    fn layer_indexes_are_dense() {
        for (i, l) in Layer::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
        }
    }
}
