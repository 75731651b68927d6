//! Zero-copy byte views of the protocols `pcapd` decodes, one protocol per module, in the
//! style of smoltcp's `wire` module.
//!
//! Each module has a view such as [`tcp::Packet`] over a borrowed `&[u8]`: `new_checked`
//! validates the lengths once (after which no getter can panic), one getter per RFC field, and
//! `payload()` borrowing from the capture buffer.
//!
//! The fixed headers of Ethernet, 802.1Q, ARP, IPv4, IPv6, TCP, UDP, ICMP and ICMPv6 are read
//! through `pnet_packet`'s zero-copy views, built over the same bytes only after this crate's
//! checks passed (its constructors check the minimum size; its option and payload accessors
//! trust the length fields as sent and can panic, so options and payloads are sliced here from
//! the checked lengths). Everything `pnet_packet` has no view for — Linux cooked v1/v2, BSD
//! loopback, DNS, TLS hello, HTTP/2 frames, pcap files, the option walks — reads through this crate's
//! bounds-checked helpers. `docs/decisions.md` records why. A snaplen-truncated packet is not rejected: `is_truncated()` says
//! so and `payload()` returns what was captured. Protocol numbers are enums with an
//! `Unknown(n)` variant. Views borrow `&'a [u8]` directly (not `T: AsRef<[u8]>` as smoltcp
//! does) because this crate only decodes, and the meaning layer above needs payloads that
//! live as long as the capture buffer, not as long as the view.
//!
//! [`CapturedPacket`] is a captured packet: its capture record and its bytes.
//! [`LinkType`] names what the first header of a packet is. Link layers: [`ethernet`] (with 802.1Q/QinQ tags), [`sll`], [`sll2`], [`null`]
//! (BSD loopback). Network: [`arp`], [`ipv4`], [`ipv6`]. Transport: [`tcp`], [`udp`],
//! [`icmpv4`], [`icmpv6`]. Application: [`dns`], [`tls`], [`http2`] (frames). [`pcapfile`] reads classic pcap
//! files from memory (tests, tools) and writes their headers.

// Untrusted bytes: besides the workspace's lints (no unwrap, expect or panic), no indexing
// that could panic. Tests index freely.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod arp;
mod bytes;
mod captured;
pub mod dns;
pub mod ethernet;
pub mod http2;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
mod linktype;
pub mod null;
pub mod pcapfile;
pub mod sll;
pub mod sll2;
pub mod tcp;
pub mod tls;
pub mod udp;

pub use bytes::hex;
pub use captured::{Captured, CapturedPacket};
pub use linktype::LinkType;

use std::fmt;

/// What went wrong in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The buffer ends before the fixed header does (snaplen, or a lying length field).
    Truncated,
    /// A version field holds a value this view does not decode.
    BadVersion,
    /// A header-length field is smaller than the minimum or larger than the packet.
    BadHeaderLength,
    /// A total-length field is smaller than the header or otherwise impossible.
    BadLength,
    /// An option or extension has an impossible length.
    BadOption,
    /// A DNS compression pointer points forward, outside the message, or loops.
    BadPointer,
    /// A DNS name is longer than 255 bytes or uses a reserved label type.
    BadName,
    /// Too many chained headers, labels or records to follow safely.
    TooDeep,
}

impl ErrorKind {
    /// The name used in JSON (`error.kind`) and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadVersion => "bad_version",
            ErrorKind::BadHeaderLength => "bad_header_length",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::BadOption => "bad_option",
            ErrorKind::BadPointer => "bad_pointer",
            ErrorKind::BadName => "bad_name",
            ErrorKind::TooDeep => "too_deep",
        }
    }
}

/// A decoding failure: what, and at which byte offset of the view's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Offset into the view's buffer where decoding stopped.
    pub offset: usize,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> Self {
        Error { kind, offset }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind.as_str(), self.offset)
    }
}

impl std::error::Error for Error {}

/// Result of the views' constructors and iterators.
pub type Result<T> = std::result::Result<T, Error>;

/// The type carried by the next header (EtherType values, also used by SLL and SLL2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86DD.
    Ipv6,
    /// 0x8100 (802.1Q tag).
    Vlan,
    /// 0x88A8 (802.1ad outer tag).
    QinQ,
    /// 0x8035.
    Rarp,
    /// 0x8847/0x8848.
    Mpls,
    /// 0x8863/0x8864.
    Pppoe,
    /// 0x888E.
    Eapol,
    /// 0x88CC.
    Lldp,
    /// Values below 0x0600 are an 802.3 length, not a type (LLC follows).
    Length(u16),
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 | 0x9100 => EtherType::QinQ,
            0x8035 => EtherType::Rarp,
            0x8847 | 0x8848 => EtherType::Mpls,
            0x8863 | 0x8864 => EtherType::Pppoe,
            0x888e => EtherType::Eapol,
            0x88cc => EtherType::Lldp,
            n if n < 0x0600 => EtherType::Length(n),
            n => EtherType::Unknown(n),
        }
    }
}

impl EtherType {
    /// Name as the original translator printed it (`L2.type`).
    pub fn name(self) -> &'static str {
        match self {
            EtherType::Ipv4 => "IPv4",
            EtherType::Arp => "ARP",
            EtherType::Ipv6 => "IPv6",
            EtherType::Vlan => "Dot1Q",
            EtherType::QinQ => "QinQ",
            EtherType::Rarp => "RARP",
            EtherType::Mpls => "MPLS",
            EtherType::Pppoe => "PPPoE",
            EtherType::Eapol => "EAPOL",
            EtherType::Lldp => "LLDP",
            EtherType::Length(_) => "LLC",
            EtherType::Unknown(_) => "Unknown",
        }
    }
}

/// IP protocol numbers (IPv4 `protocol`, IPv6 `next header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 0, IPv6 hop-by-hop options.
    HopByHop,
    /// 1.
    Icmp,
    /// 2.
    Igmp,
    /// 4, IPv4 in IP.
    IpIp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// 41, IPv6 in IP.
    Ipv6,
    /// 43.
    Ipv6Route,
    /// 44.
    Ipv6Frag,
    /// 47.
    Gre,
    /// 50.
    Esp,
    /// 51.
    Ah,
    /// 58.
    Icmpv6,
    /// 59.
    Ipv6NoNext,
    /// 60.
    Ipv6Opts,
    /// 89.
    Ospf,
    /// 103.
    Pim,
    /// 112.
    Vrrp,
    /// 132.
    Sctp,
    /// 135.
    Mobility,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            2 => IpProtocol::Igmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            41 => IpProtocol::Ipv6,
            43 => IpProtocol::Ipv6Route,
            44 => IpProtocol::Ipv6Frag,
            47 => IpProtocol::Gre,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::Ipv6NoNext,
            60 => IpProtocol::Ipv6Opts,
            89 => IpProtocol::Ospf,
            103 => IpProtocol::Pim,
            112 => IpProtocol::Vrrp,
            132 => IpProtocol::Sctp,
            135 => IpProtocol::Mobility,
            n => IpProtocol::Unknown(n),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Igmp => 2,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6 => 41,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNext => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Ospf => 89,
            IpProtocol::Pim => 103,
            IpProtocol::Vrrp => 112,
            IpProtocol::Sctp => 132,
            IpProtocol::Mobility => 135,
            IpProtocol::Unknown(n) => n,
        }
    }
}

impl IpProtocol {
    /// Name as the original translator printed it (`L3.proto.name`).
    pub fn name(self) -> &'static str {
        match self {
            IpProtocol::HopByHop => "IPv6HopByHop",
            IpProtocol::Icmp => "ICMPv4",
            IpProtocol::Igmp => "IGMP",
            IpProtocol::IpIp => "IPv4",
            IpProtocol::Tcp => "TCP",
            IpProtocol::Udp => "UDP",
            IpProtocol::Ipv6 => "IPv6",
            IpProtocol::Ipv6Route => "IPv6Routing",
            IpProtocol::Ipv6Frag => "IPv6Fragment",
            IpProtocol::Gre => "GRE",
            IpProtocol::Esp => "ESP",
            IpProtocol::Ah => "AH",
            IpProtocol::Icmpv6 => "ICMPv6",
            IpProtocol::Ipv6NoNext => "IPv6NoNextHeader",
            IpProtocol::Ipv6Opts => "IPv6Destination",
            IpProtocol::Ospf => "OSPF",
            IpProtocol::Pim => "PIM",
            IpProtocol::Vrrp => "VRRP",
            IpProtocol::Sctp => "SCTP",
            IpProtocol::Mobility => "IPv6Mobility",
            IpProtocol::Unknown(_) => "Unknown",
        }
    }
}

/// A hardware (MAC) address of any length (Ethernet's are 6 bytes), printed as
/// colon-separated lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HwAddr<'a>(pub &'a [u8]);

impl fmt::Display for HwAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HwAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Real packets from `testdata/` for the unit tests.
#[cfg(test)]
pub(crate) mod testdata {
    /// Packet `n` (0-based, capture order) of `testdata/veth.pcap` (Ethernet).
    pub fn veth(n: usize) -> &'static [u8] {
        nth(include_bytes!("../testdata/veth.pcap"), n)
    }

    /// Packet `n` of a capture given as bytes.
    pub fn nth(file: &'static [u8], n: usize) -> &'static [u8] {
        crate::pcapfile::File::new(file)
            .unwrap()
            .records()
            .nth(n)
            .unwrap()
            .unwrap()
            .data
    }

    /// The UDP payload of packet `n` of veth.pcap (IPv4, no options).
    pub fn veth_udp_payload(n: usize) -> &'static [u8] {
        &veth(n)[42..]
    }
}
