//! UDP (RFC 768) datagrams. The length field trims trailer bytes; a length of 0 (IPv6
//! jumbograms, offloaded segments) means "as captured". The header is read through
//! `pnet_packet`'s `UdpPacket`; the payload is sliced here (trimmed by the length field,
//! clamped to what was captured).

use pnet_packet::udp::UdpPacket;

use crate::bytes::slice;
use crate::{Error, ErrorKind, Result};

mod field {
    pub const LENGTH: usize = 4;
    pub const HEADER_LEN: usize = 8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A checked view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the header and that the length field is not below the header size.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        let p = Packet { buf };
        let len = usize::from(p.len());
        if len != 0 && len < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::BadLength, field::LENGTH));
        }
        Ok(p)
    }

    /// `pnet_packet`'s view of the same bytes (the 8-byte header is there after `new_checked`).
    #[inline]
    fn view(&self) -> Option<UdpPacket<'a>> {
        UdpPacket::new(self.buf)
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.view().map_or(0, |p| p.get_source())
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.view().map_or(0, |p| p.get_destination())
    }

    /// Length field (header + payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.view().map_or(0, |p| p.get_length())
    }

    fn end(&self) -> usize {
        match self.len() {
            0 => self.buf.len(),
            n => usize::from(n),
        }
    }

    /// Checksum as sent (0: none).
    pub fn checksum(&self) -> u16 {
        self.view().map_or(0, |p| p.get_checksum())
    }

    /// True when fewer bytes were captured than the length field says.
    pub fn is_truncated(&self) -> bool {
        self.buf.len() < self.end()
    }

    /// The payload as captured.
    pub fn payload(&self) -> &'a [u8] {
        slice(self.buf, field::HEADER_LEN, self.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram() {
        // UDP 10.77.0.1:58676 -> 10.77.0.2:9999 "hi\n", packet 91 of testdata/veth.pcap, with
        // two bytes of trailer added.
        let mut b = crate::testdata::veth(91)[34..].to_vec();
        b.extend_from_slice(&[0, 0]);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (58676, 9999, 11));
        assert_eq!(p.payload(), b"hi\n", "trailer trimmed");
        assert!(!p.is_truncated());
        assert!(Packet::new_checked(&b[..10]).unwrap().is_truncated());
        let mut bad = b.clone();
        bad[5] = 4;
        assert_eq!(
            Packet::new_checked(&bad).unwrap_err().kind,
            ErrorKind::BadLength
        );
        for n in 0..8 {
            assert!(Packet::new_checked(&b[..n]).is_err());
        }
    }
}
