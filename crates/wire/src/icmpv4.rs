//! ICMP for IPv4 (RFC 792 and successors): type/code with names as the original translator
//! printed them (gopacket's `EchoRequest`, `DestinationUnreachable(Port)`, …), echo id/seq,
//! redirect gateway, and the invoking datagram embedded in error messages.
//!
//! Type, code, checksum, echo identifier/sequence and the next-hop MTU are read through
//! `pnet_packet`'s `IcmpPacket`, `echo_request::EchoRequestPacket` (the identifier/sequence
//! layout of every query type) and `destination_unreachable::DestinationUnreachablePacket`.
//! `pnet_packet` has no redirect or parameter-problem view: the gateway and pointer are read
//! here.

use std::fmt;
use std::net::Ipv4Addr;

use pnet_packet::icmp::destination_unreachable::DestinationUnreachablePacket;
use pnet_packet::icmp::echo_request::EchoRequestPacket;
use pnet_packet::icmp::IcmpPacket;

use crate::bytes::{ipv4, tail, u8_at};
use crate::{Error, ErrorKind, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const GATEWAY: usize = 4;
    pub const POINTER: usize = 4;
    pub const HEADER_LEN: usize = 8;
}

/// Length of the header (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A checked view of an ICMPv4 message.
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
    fn view(&self) -> Option<IcmpPacket<'a>> {
        IcmpPacket::new(self.buf)
    }

    /// Type.
    pub fn msg_type(&self) -> u8 {
        self.view().map_or(0, |p| p.get_icmp_type().0)
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.view().map_or(0, |p| p.get_icmp_code().0)
    }

    /// Checksum as sent.
    pub fn checksum(&self) -> u16 {
        self.view().map_or(0, |p| p.get_checksum())
    }

    /// True for echo (8), echo reply (0), timestamp (13/14) and information (15/16) messages,
    /// whose rest-of-header is an identifier and a sequence number.
    pub fn has_id_seq(&self) -> bool {
        matches!(self.msg_type(), 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
    }

    /// Identifier (echo and friends).
    pub fn ident(&self) -> u16 {
        EchoRequestPacket::new(self.buf).map_or(0, |p| p.get_identifier())
    }

    /// Sequence number (echo and friends).
    pub fn seq(&self) -> u16 {
        EchoRequestPacket::new(self.buf).map_or(0, |p| p.get_sequence_number())
    }

    /// Redirect gateway (type 5).
    pub fn gateway(&self) -> Ipv4Addr {
        ipv4(self.buf, field::GATEWAY)
    }

    /// Parameter-problem pointer (type 12).
    pub fn pointer(&self) -> u8 {
        u8_at(self.buf, field::POINTER)
    }

    /// Next-hop MTU of "fragmentation needed" (type 3 code 4, RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        DestinationUnreachablePacket::new(self.buf).map_or(0, |p| p.get_next_hop_mtu())
    }

    /// An error message (destination unreachable, source quench, redirect, time exceeded,
    /// parameter problem): it embeds the header of the datagram that caused it.
    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), 3 | 4 | 5 | 11 | 12)
    }

    /// Bytes after the 8-byte header (echo data, or the invoking datagram of an error).
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, field::HEADER_LEN)
    }

    /// The type and code, printable as the original did.
    pub fn type_code(&self) -> TypeCode {
        TypeCode(self.msg_type(), self.code())
    }
}

/// An ICMPv4 (type, code) pair; `Display` prints gopacket's names, e.g.
/// `DestinationUnreachable(Port)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeCode(pub u8, pub u8);

impl TypeCode {
    /// Name of the type alone.
    pub fn type_name(self) -> &'static str {
        match self.0 {
            0 => "EchoReply",
            3 => "DestinationUnreachable",
            4 => "SourceQuench",
            5 => "Redirect",
            8 => "EchoRequest",
            9 => "RouterAdvertisement",
            10 => "RouterSolicitation",
            11 => "TimeExceeded",
            12 => "ParameterProblem",
            13 => "TimestampRequest",
            14 => "TimestampReply",
            15 => "InfoRequest",
            16 => "InfoReply",
            17 => "AddressMaskRequest",
            18 => "AddressMaskReply",
            42 => "ExtendedEchoRequest",
            43 => "ExtendedEchoReply",
            _ => "Unknown",
        }
    }

    /// Name of the code, for types that define codes.
    pub fn code_name(self) -> Option<&'static str> {
        let name = match (self.0, self.1) {
            (3, 0) => "Net",
            (3, 1) => "Host",
            (3, 2) => "Protocol",
            (3, 3) => "Port",
            (3, 4) => "FragmentationNeeded",
            (3, 5) => "SourceRoutingFailed",
            (3, 6) => "NetUnknown",
            (3, 7) => "HostUnknown",
            (3, 8) => "SourceIsolated",
            (3, 9) => "NetAdminProhibited",
            (3, 10) => "HostAdminProhibited",
            (3, 11) => "NetTOS",
            (3, 12) => "HostTOS",
            (3, 13) => "CommAdminProhibited",
            (3, 14) => "HostPrecedence",
            (3, 15) => "PrecedenceCutoff",
            (5, 0) => "Network",
            (5, 1) => "Host",
            (5, 2) => "TOS+Network",
            (5, 3) => "TOS+Host",
            (11, 0) => "TTLExceeded",
            (11, 1) => "FragmentReassemblyTimeExceeded",
            (12, 0) => "PointerIndicatesError",
            (12, 1) => "MissingOption",
            (12, 2) => "BadLength",
            _ => return None,
        };
        Some(name)
    }

    /// True for the error types (3, 4, 5, 11, 12).
    pub fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
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
    use crate::ipv4;

    fn unreach() -> &'static [u8] {
        // Port unreachable 10.77.0.2 -> 10.77.0.1 for a UDP datagram to port 9999, packet 92
        // of testdata/veth.pcap (ICMP part).
        &crate::testdata::veth(92)[34..]
    }

    #[test]
    fn unreachable_embeds_datagram() {
        let p = Packet::new_checked(unreach()).unwrap();
        assert_eq!(p.type_code().to_string(), "DestinationUnreachable(Port)");
        assert!(p.is_error());
        let inner = ipv4::Packet::new_checked(p.payload()).unwrap();
        assert_eq!(inner.src(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(inner.dst(), Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(inner.payload(), &unreach()[28..]);
    }

    #[test]
    fn names() {
        assert_eq!(TypeCode(8, 0).to_string(), "EchoRequest");
        assert_eq!(TypeCode(0, 0).to_string(), "EchoReply");
        assert_eq!(TypeCode(11, 0).to_string(), "TimeExceeded(TTLExceeded)");
        assert_eq!(
            TypeCode(3, 99).to_string(),
            "DestinationUnreachable(Code: 99)"
        );
        assert_eq!(TypeCode(200, 1).to_string(), "Type(200)(Code: 1)");
    }

    #[test]
    fn echo_and_short() {
        let b = [0x08, 0x00, 0x3c, 0x5c, 0x58, 0x20, 0x00, 0x01, 0xaa];
        let p = Packet::new_checked(&b).unwrap();
        assert!(p.has_id_seq());
        assert_eq!((p.ident(), p.seq(), p.checksum()), (0x5820, 1, 0x3c5c));
        assert_eq!(p.payload(), &[0xaa]);
        for n in 0..8 {
            assert!(Packet::new_checked(&b[..n]).is_err());
        }
    }
}
