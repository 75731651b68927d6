//! ARP (RFC 826) packets of any hardware/protocol address sizes; Ethernet/IPv4 is the usual
//! case and the one [`Packet::sender_ip`]/[`Packet::target_ip`] decode.
//!
//! `pnet_packet`'s `ArpPacket` has a fixed layout (6-byte hardware and 4-byte protocol
//! addresses): it is built only when the size fields say so, and reads the fixed fields and the
//! IPv4 addresses then. Other sizes, and the hardware addresses (borrowed slices, see
//! [`HwAddr`]), are read here from the offsets the size fields give.

use std::net::Ipv4Addr;

use pnet_packet::arp::ArpPacket;

use crate::bytes::{be16, ipv4, slice, u8_at};
use crate::{Error, ErrorKind, HwAddr, Result};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const ADDRS: usize = 8;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// 3 (RARP).
    ReverseRequest,
    /// 4 (RARP).
    ReverseReply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            3 => Operation::ReverseRequest,
            4 => Operation::ReverseReply,
            n => Operation::Unknown(n),
        }
    }
}

impl Operation {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Request => "request",
            Operation::Reply => "reply",
            Operation::ReverseRequest => "reverse-request",
            Operation::ReverseReply => "reverse-reply",
            Operation::Unknown(_) => "unknown",
        }
    }
}

/// A checked view of an ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the fixed header and that all four addresses are present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::ADDRS {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        let p = Packet { buf };
        if buf.len() < p.addrs_end() {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(p)
    }

    fn hlen(&self) -> usize {
        usize::from(u8_at(self.buf, field::HLEN))
    }

    fn plen(&self) -> usize {
        usize::from(u8_at(self.buf, field::PLEN))
    }

    fn addrs_end(&self) -> usize {
        field::ADDRS + 2 * (self.hlen() + self.plen())
    }

    /// `pnet_packet`'s view, for Ethernet/IPv4-sized addresses only (the layout it assumes);
    /// `new_checked` made sure all four addresses are there.
    #[inline]
    fn view(&self) -> Option<ArpPacket<'a>> {
        if self.hlen() == 6 && self.plen() == 4 {
            ArpPacket::new(self.buf)
        } else {
            None
        }
    }

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        self.view()
            .map_or_else(|| be16(self.buf, field::HTYPE), |p| p.get_hardware_type().0)
    }

    /// Protocol type (an EtherType, 0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        self.view()
            .map_or_else(|| be16(self.buf, field::PTYPE), |p| p.get_protocol_type().0)
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        Operation::from(self.operation_raw())
    }

    /// Raw operation code.
    pub fn operation_raw(&self) -> u16 {
        self.view()
            .map_or_else(|| be16(self.buf, field::OPER), |p| p.get_operation().0)
    }

    /// Sender hardware address.
    pub fn sender_hw(&self) -> HwAddr<'a> {
        let s = field::ADDRS;
        HwAddr(slice(self.buf, s, s + self.hlen()))
    }

    /// Sender protocol address bytes.
    pub fn sender_proto(&self) -> &'a [u8] {
        let s = field::ADDRS + self.hlen();
        slice(self.buf, s, s + self.plen())
    }

    /// Target hardware address.
    pub fn target_hw(&self) -> HwAddr<'a> {
        let s = field::ADDRS + self.hlen() + self.plen();
        HwAddr(slice(self.buf, s, s + self.hlen()))
    }

    /// Target protocol address bytes.
    pub fn target_proto(&self) -> &'a [u8] {
        let s = field::ADDRS + 2 * self.hlen() + self.plen();
        slice(self.buf, s, s + self.plen())
    }

    /// Sender IPv4 address, when the protocol addresses are 4 bytes.
    pub fn sender_ip(&self) -> Option<Ipv4Addr> {
        match self.view() {
            Some(p) => Some(p.get_sender_proto_addr()),
            None => (self.plen() == 4).then(|| ipv4(self.sender_proto(), 0)),
        }
    }

    /// Target IPv4 address, when the protocol addresses are 4 bytes.
    pub fn target_ip(&self) -> Option<Ipv4Addr> {
        match self.view() {
            Some(p) => Some(p.get_target_proto_addr()),
            None => (self.plen() == 4).then(|| ipv4(self.target_proto(), 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ARP reply from testdata/veth.pcap (after the 14-byte Ethernet header).
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x0a,
        0x4d, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x4d, 0x00, 0x01,
    ];

    #[test]
    fn reply() {
        let p = Packet::new_checked(&REPLY).unwrap();
        assert_eq!(p.operation(), Operation::Reply);
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.sender_hw().to_string(), "02:00:00:00:00:0b");
        assert_eq!(p.sender_ip(), Some(Ipv4Addr::new(10, 77, 0, 2)));
        assert_eq!(p.target_hw().to_string(), "02:00:00:00:00:0a");
        assert_eq!(p.target_ip(), Some(Ipv4Addr::new(10, 77, 0, 1)));
    }

    #[test]
    fn truncated_or_odd_sizes() {
        for n in 0..REPLY.len() {
            assert!(Packet::new_checked(&REPLY[..n]).is_err(), "{n}");
        }
        let mut b = REPLY;
        b[5] = 16; // protocol addresses claim 16 bytes: no longer fits
        assert!(Packet::new_checked(&b).is_err());
        let mut b = REPLY.to_vec();
        b[4] = 0;
        b[5] = 0; // zero-length addresses are odd but decodable
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.sender_ip(), None);
        assert_eq!(p.sender_hw().to_string(), "");
    }
}
