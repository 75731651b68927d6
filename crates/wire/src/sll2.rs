//! Linux "cooked" capture v2 (`LINKTYPE_LINUX_SLL2`, 276): like SLL but with the interface
//! index of the packet, which tells the real interface of an `any` capture.
//!
//! The header is read through `pnet_packet`'s `SLL2Packet`; the address is a borrowed slice of
//! its first `halen` bytes (at most the 8 the header has room for).

use pnet_packet::sll2::SLL2Packet;

use crate::bytes::{slice, tail};
use crate::sll::PacketType;
use crate::{Error, ErrorKind, EtherType, HwAddr, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const ADDR: usize = 12;
    pub const HEADER_LEN: usize = 20;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A checked view of an SLL2 header.
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

    /// `pnet_packet`'s view of the same bytes (the 20-byte header is there after
    /// `new_checked`).
    #[inline]
    fn view(&self) -> Option<SLL2Packet<'a>> {
        SLL2Packet::new(self.buf)
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> EtherType {
        EtherType::from(self.protocol_raw())
    }

    /// Raw protocol field.
    pub fn protocol_raw(&self) -> u16 {
        self.view().map_or(0, |p| p.get_protocol_type().0)
    }

    /// Index of the interface the packet was seen on.
    pub fn ifindex(&self) -> u32 {
        self.view().map_or(0, |p| p.get_interface_index())
    }

    /// ARPHRD_* hardware type.
    pub fn hardware_type(&self) -> u16 {
        self.view().map_or(0, |p| p.get_arphrd_type())
    }

    /// Packet type (direction).
    pub fn packet_type(&self) -> PacketType {
        PacketType::from(u16::from(self.view().map_or(0, |p| p.get_packet_type())))
    }

    /// Link-layer source address (up to 8 bytes).
    pub fn addr(&self) -> HwAddr<'a> {
        let n = usize::from(self.view().map_or(0, |p| p.get_link_layer_address_length())).min(8);
        HwAddr(slice(self.buf, field::ADDR, field::ADDR + n))
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
    fn fields() {
        let b = [
            0x86, 0xdd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x00, 0x06, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x60,
        ];
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.protocol(), EtherType::Ipv6);
        assert_eq!(p.ifindex(), 7);
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.packet_type(), PacketType::Host);
        assert_eq!(p.addr().to_string(), "02:00:00:00:00:0b");
        assert_eq!(p.payload(), &[0x60]);
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err().kind,
            ErrorKind::Truncated
        );
    }
}
