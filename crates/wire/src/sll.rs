//! Linux "cooked" capture v1 (`LINKTYPE_LINUX_SLL`, 113): what libpcap gives for the `any`
//! device on older systems. 16-byte header: packet type, ARPHRD type, address, protocol.
//!
//! The header is read through `pnet_packet`'s `SLLPacket`; the address is a borrowed slice of
//! its first `halen` bytes (at most the 8 the header has room for).

use pnet_packet::sll::SLLPacket;

use crate::bytes::{slice, tail};
use crate::{Error, ErrorKind, EtherType, HwAddr, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const ADDR: usize = 6;
    pub const HEADER_LEN: usize = 16;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Direction/kind of a cooked packet (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// 0: addressed to this host.
    Host,
    /// 1: broadcast.
    Broadcast,
    /// 2: multicast.
    Multicast,
    /// 3: to another host (promiscuous).
    OtherHost,
    /// 4: sent by this host.
    Outgoing,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for PacketType {
    fn from(v: u16) -> Self {
        match v {
            0 => PacketType::Host,
            1 => PacketType::Broadcast,
            2 => PacketType::Multicast,
            3 => PacketType::OtherHost,
            4 => PacketType::Outgoing,
            n => PacketType::Unknown(n),
        }
    }
}

impl PacketType {
    /// Lowercase name for JSON.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Host => "host",
            PacketType::Broadcast => "broadcast",
            PacketType::Multicast => "multicast",
            PacketType::OtherHost => "otherhost",
            PacketType::Outgoing => "outgoing",
            PacketType::Unknown(_) => "unknown",
        }
    }
}

/// A checked view of an SLL header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks that the header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(Packet { buf })
    }

    /// `pnet_packet`'s view of the same bytes (the 16-byte header is there after
    /// `new_checked`).
    #[inline]
    fn view(&self) -> Option<SLLPacket<'a>> {
        SLLPacket::new(self.buf)
    }

    /// Packet type (direction).
    pub fn packet_type(&self) -> PacketType {
        PacketType::from(self.view().map_or(0, |p| p.get_packet_type()))
    }

    /// ARPHRD_* hardware type (1 = Ethernet, 772 = loopback).
    pub fn hardware_type(&self) -> u16 {
        self.view().map_or(0, |p| p.get_link_layer_address_type())
    }

    /// Link-layer source address (up to 8 bytes).
    pub fn addr(&self) -> HwAddr<'a> {
        let n = usize::from(self.view().map_or(0, |p| p.get_link_layer_address_len())).min(8);
        HwAddr(slice(self.buf, field::ADDR, field::ADDR + n))
    }

    /// Protocol of the payload (an EtherType for the usual hardware types).
    pub fn protocol(&self) -> EtherType {
        EtherType::from(self.protocol_raw())
    }

    /// Raw protocol field.
    pub fn protocol_raw(&self) -> u16 {
        self.view().map_or(0, |p| p.get_protocol().0)
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, field::HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_ipv4() {
        // Header of an outgoing ICMP echo request from testdata/any-sll.pcap.
        let b = [
            0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00,
            0x08, 0x00, 0x45,
        ];
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.packet_type(), PacketType::Outgoing);
        assert_eq!(p.packet_type().name(), "outgoing");
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.addr().to_string(), "02:00:00:00:00:0a");
        assert_eq!(p.protocol(), EtherType::Ipv4);
        assert_eq!(p.payload(), &[0x45]);
    }

    #[test]
    fn short_and_bad_halen() {
        assert_eq!(
            Packet::new_checked(&[0; 15]).unwrap_err().kind,
            ErrorKind::Truncated
        );
        let mut b = [0u8; 16];
        b[5] = 200; // address length beyond the 8-byte field
        assert_eq!(Packet::new_checked(&b).unwrap().addr().0.len(), 8);
    }
}
