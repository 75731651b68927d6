//! ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861): type/code names as the original
//! printed them (gopacket's), echo id/seq, packet-too-big MTU, the invoking packet of error
//! messages, ND targets, router-advertisement fields and ND options.
//!
//! Type, code, checksum, echo identifier/sequence, ND targets, the redirect destination,
//! neighbour-advertisement flags and router-advertisement fields are read through
//! `pnet_packet`'s `Icmpv6Packet`, `echo_request::EchoRequestPacket` and `ndp` views, each
//! built only when the type says it applies (their constructors check the length). The
//! packet-too-big MTU (no view in `pnet_packet`) and the ND option walk are read here: the
//! option iterator of `pnet_packet`'s `ndp` views follows length 0 and lengths past the buffer.

use std::fmt;
use std::net::Ipv6Addr;

use pnet_packet::icmpv6::echo_request::EchoRequestPacket;
use pnet_packet::icmpv6::ndp::{
    NeighborAdvertPacket, NeighborSolicitPacket, RedirectPacket, RouterAdvertPacket,
};
use pnet_packet::icmpv6::Icmpv6Packet;

use crate::bytes::{be32, slice, tail, u8_at};
use crate::{Error, ErrorKind, HwAddr, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const MTU: usize = 4;
    pub const NA_FLAGS: usize = 4;
    pub const HEADER_LEN: usize = 8;
}

/// Length of the header (type, code, checksum and the 4-byte message body start).
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A checked view of an ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks that the 8-byte header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(Packet { buf })
    }

    /// `pnet_packet`'s view of the same bytes (the 8-byte header is there after
    /// `new_checked`, more than its 4-byte minimum).
    #[inline]
    fn view(&self) -> Option<Icmpv6Packet<'a>> {
        Icmpv6Packet::new(self.buf)
    }

    /// Type.
    pub fn msg_type(&self) -> u8 {
        self.view().map_or(0, |p| p.get_icmpv6_type().0)
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.view().map_or(0, |p| p.get_icmpv6_code().0)
    }

    /// Checksum as sent.
    pub fn checksum(&self) -> u16 {
        self.view().map_or(0, |p| p.get_checksum())
    }

    /// Echo request/reply.
    pub fn is_echo(&self) -> bool {
        matches!(self.msg_type(), 128 | 129)
    }

    /// Identifier (echo).
    pub fn ident(&self) -> u16 {
        EchoRequestPacket::new(self.buf).map_or(0, |p| p.get_identifier())
    }

    /// Sequence number (echo).
    pub fn seq(&self) -> u16 {
        EchoRequestPacket::new(self.buf).map_or(0, |p| p.get_sequence_number())
    }

    /// MTU of packet-too-big (type 2).
    pub fn mtu(&self) -> u32 {
        be32(self.buf, field::MTU)
    }

    /// Error messages (types below 128) embed as much of the invoking packet as fits.
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// Bytes after the 8-byte header.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, field::HEADER_LEN)
    }

    /// Target address of a neighbour solicitation/advertisement or redirect, when present.
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        match self.msg_type() {
            135 => NeighborSolicitPacket::new(self.buf).map(|p| p.get_target_addr()),
            // A redirect's target sits where an advertisement's does; the advertisement view
            // needs 24 bytes, the redirect view 40 (its destination too).
            136 | 137 => NeighborAdvertPacket::new(self.buf).map(|p| p.get_target_addr()),
            _ => None,
        }
    }

    /// Destination address of a redirect, when present.
    pub fn redirect_dst(&self) -> Option<Ipv6Addr> {
        (self.msg_type() == 137)
            .then(|| RedirectPacket::new(self.buf))
            .flatten()
            .map(|p| p.get_dest_addr())
    }

    /// Neighbour-advertisement flags (router, solicited, override) as the top 3 bits.
    pub fn na_flags(&self) -> u8 {
        let flags = NeighborAdvertPacket::new(self.buf).map_or_else(
            // Cut before the target: the flags byte may still have been captured.
            || u8_at(self.buf, field::NA_FLAGS),
            |p| p.get_flags(),
        );
        flags & 0xe0
    }

    /// Router advertisement: current hop limit, flags byte, router lifetime (s).
    pub fn ra_fields(&self) -> Option<(u8, u8, u16)> {
        (self.msg_type() == 134)
            .then(|| RouterAdvertPacket::new(self.buf))
            .flatten()
            .map(|p| (p.get_hop_limit(), p.get_flags(), p.get_lifetime()))
    }

    /// ND options of RS (133), RA (134), NS (135), NA (136) and redirect (137) messages.
    pub fn nd_options(&self) -> NdOptions<'a> {
        let start = match self.msg_type() {
            133 => 8,
            134 => 16,
            135 | 136 => 24,
            137 => 40,
            _ => usize::MAX,
        };
        NdOptions {
            buf: tail(self.buf, start),
            base: start,
            done: start == usize::MAX,
        }
    }

    /// The type and code, printable as the original did.
    pub fn type_code(&self) -> TypeCode {
        TypeCode(self.msg_type(), self.code())
    }
}

/// One neighbour-discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// Option type (1 source LL address, 2 target LL address, 3 prefix, 5 MTU, …).
    pub kind: u8,
    /// Option data after type and length.
    pub data: &'a [u8],
}

impl<'a> NdOption<'a> {
    /// Name of the option type.
    pub fn name(&self) -> &'static str {
        match self.kind {
            1 => "SourceLinkLayerAddress",
            2 => "TargetLinkLayerAddress",
            3 => "PrefixInformation",
            4 => "RedirectedHeader",
            5 => "MTU",
            14 => "Nonce",
            24 => "RouteInformation",
            25 => "RDNSS",
            31 => "DNSSL",
            _ => "Unknown",
        }
    }

    /// The link-layer address of options 1 and 2 (the data, minus trailing padding for
    /// Ethernet's 6 bytes).
    pub fn link_addr(&self) -> Option<HwAddr<'a>> {
        matches!(self.kind, 1 | 2).then(|| HwAddr(slice(self.data, 0, 6)))
    }
}

/// Iterator over ND options; stops at the first option with length 0 (RFC 4861 §4.6: such a
/// packet must be discarded) or running past the buffer.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    buf: &'a [u8],
    base: usize,
    done: bool,
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.buf.len() < 2 {
            return None;
        }
        let kind = u8_at(self.buf, 0);
        let len = usize::from(u8_at(self.buf, 1)) * 8;
        if len == 0 || len > self.buf.len() {
            self.done = true;
            return Some(Err(Error::new(ErrorKind::BadOption, self.base)));
        }
        let data = slice(self.buf, 2, len);
        self.buf = tail(self.buf, len);
        self.base += len;
        Some(Ok(NdOption { kind, data }))
    }
}

/// An ICMPv6 (type, code) pair; `Display` prints gopacket's names, e.g.
/// `DestinationUnreachable(PortUnreachable)` or `NeighborSolicitation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeCode(pub u8, pub u8);

impl TypeCode {
    /// Name of the type alone.
    pub fn type_name(self) -> &'static str {
        match self.0 {
            1 => "DestinationUnreachable",
            2 => "PacketTooBig",
            3 => "TimeExceeded",
            4 => "ParameterProblem",
            128 => "EchoRequest",
            129 => "EchoReply",
            130 => "MLDv1MulticastListenerQueryMessage",
            131 => "MLDv1MulticastListenerReportMessage",
            132 => "MLDv1MulticastListenerDoneMessage",
            133 => "RouterSolicitation",
            134 => "RouterAdvertisement",
            135 => "NeighborSolicitation",
            136 => "NeighborAdvertisement",
            137 => "Redirect",
            138 => "RouterRenumbering",
            139 => "NodeInformationQuery",
            140 => "NodeInformationResponse",
            141 => "InverseNeighborDiscoverySolicitation",
            142 => "InverseNeighborDiscoveryAdvertisement",
            143 => "MLDv2MulticastListenerReportMessageV2",
            144 => "HomeAgentAddressDiscoveryRequest",
            145 => "HomeAgentAddressDiscoveryReply",
            146 => "MobilePrefixSolicitation",
            147 => "MobilePrefixAdvertisement",
            148 => "CertificationPathSolicitation",
            149 => "CertificationPathAdvertisement",
            151 => "MulticastRouterAdvertisement",
            152 => "MulticastRouterSolicitation",
            153 => "MulticastRouterTermination",
            155 => "RPLControlMessage",
            _ => "Unknown",
        }
    }

    /// Name of the code, for types that define codes.
    pub fn code_name(self) -> Option<&'static str> {
        let name = match (self.0, self.1) {
            (1, 0) => "NoRouteToDst",
            (1, 1) => "AdminProhibited",
            (1, 2) => "BeyondScopeOfSrc",
            (1, 3) => "AddressUnreachable",
            (1, 4) => "PortUnreachable",
            (1, 5) => "SrcAddressFailedPolicy",
            (1, 6) => "RejectRouteToDst",
            (3, 0) => "HopLimitExceeded",
            (3, 1) => "FragmentReassemblyTimeExceeded",
            (4, 0) => "ErroneousHeaderField",
            (4, 1) => "UnrecognizedNextHeader",
            (4, 2) => "UnrecognizedIPv6Option",
            _ => return None,
        };
        Some(name)
    }

    /// Error messages are types 0–127 (RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        self.0 < 128
    }

    /// Neighbour discovery (RS, RA, NS, NA, redirect).
    pub fn is_neighbor_discovery(self) -> bool {
        matches!(self.0, 133..=137)
    }
}

impl fmt::Display for TypeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.type_name();
        if t == "Unknown" {
            return write!(f, "Type({})(Code: {})", self.0, self.1);
        }
        match (self.code_name(), self.1) {
            (Some(c), _) => write!(f, "{t}({c})"),
            (None, 0) => f.write_str(t),
            (None, c) => write!(f, "{t}(Code: {c})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> &'static [u8] {
        // Neighbour solicitation for fd77::2 from fd77::1 with its source link-layer address
        // option, packet 14 of testdata/veth.pcap (ICMPv6 part).
        &crate::testdata::veth(14)[54..]
    }

    #[test]
    fn neighbour_solicitation() {
        let p = Packet::new_checked(ns()).unwrap();
        assert_eq!(p.type_code().to_string(), "NeighborSolicitation");
        assert!(p.type_code().is_neighbor_discovery());
        assert!(!p.is_error());
        assert_eq!(p.nd_target(), Some("fd77::2".parse().unwrap()));
        let opts: Vec<_> = p.nd_options().collect::<Result<_>>().unwrap();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].name(), "SourceLinkLayerAddress");
        assert_eq!(
            opts[0].link_addr().unwrap().to_string(),
            "02:00:00:00:00:0a"
        );
    }

    #[test]
    fn bad_nd_option() {
        let mut b = ns().to_vec();
        b[25] = 0; // zero length: must stop, not loop
        let r: Vec<_> = Packet::new_checked(&b).unwrap().nd_options().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].unwrap_err().kind, ErrorKind::BadOption);
        b[25] = 9; // 72 bytes, past the end
        let r: Vec<_> = Packet::new_checked(&b).unwrap().nd_options().collect();
        assert!(r[0].is_err());
        // Cut inside the target: no target, no options.
        let p = Packet::new_checked(&ns()[..20]).unwrap();
        assert_eq!(p.nd_target(), None);
        assert_eq!(p.nd_options().count(), 0);
    }

    #[test]
    fn names() {
        assert_eq!(TypeCode(128, 0).to_string(), "EchoRequest");
        assert_eq!(
            TypeCode(1, 4).to_string(),
            "DestinationUnreachable(PortUnreachable)"
        );
        assert_eq!(TypeCode(3, 0).to_string(), "TimeExceeded(HopLimitExceeded)");
        assert_eq!(TypeCode(134, 0).to_string(), "RouterAdvertisement");
        assert_eq!(TypeCode(250, 3).to_string(), "Type(250)(Code: 3)");
        assert!(TypeCode(2, 0).is_error());
    }

    #[test]
    fn echo_and_short() {
        let b = [0x81, 0x00, 0x12, 0x34, 0x58, 0x21, 0x00, 0x02];
        let p = Packet::new_checked(&b).unwrap();
        assert!(p.is_echo());
        assert_eq!((p.ident(), p.seq()), (0x5821, 2));
        assert_eq!(p.nd_options().count(), 0);
        for n in 0..8 {
            assert!(Packet::new_checked(&b[..n]).is_err());
        }
    }
}
