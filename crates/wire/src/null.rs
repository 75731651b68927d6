//! BSD loopback encapsulation (`LINKTYPE_NULL` 0, host byte order; `LINKTYPE_LOOP` 108,
//! network byte order): a 4-byte address family, then the IP packet.

use crate::bytes::{be32, le32, tail};
use crate::{Error, ErrorKind, Result};

/// Length of the header.
pub const HEADER_LEN: usize = 4;

/// The network protocol announced by the address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AF_INET (2 everywhere).
    Ipv4,
    /// AF_INET6 (10 Linux, 24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS).
    Ipv6,
    /// Anything else.
    Unknown(u32),
}

/// A checked view of a loopback header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    network_order: bool,
}

impl<'a> Packet<'a> {
    /// Checks the header. `network_order` is true for `LINKTYPE_LOOP`.
    pub fn new_checked(buf: &'a [u8], network_order: bool) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(Packet { buf, network_order })
    }

    /// The address family value.
    pub fn family_raw(&self) -> u32 {
        let v = if self.network_order {
            be32(self.buf, 0)
        } else {
            le32(self.buf, 0)
        };
        // A capture written on a host of the other endianness: the value is small either way.
        if v > 0xffff {
            v.swap_bytes()
        } else {
            v
        }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        match self.family_raw() {
            2 => Family::Ipv4,
            10 | 24 | 28 | 30 => Family::Ipv6,
            n => Family::Unknown(n),
        }
    }

    /// The IP packet.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(
            Packet::new_checked(&[2, 0, 0, 0, 0x45], false)
                .unwrap()
                .family(),
            Family::Ipv4
        );
        assert_eq!(
            Packet::new_checked(&[0, 0, 0, 30], true).unwrap().family(),
            Family::Ipv6
        );
        // Swapped endianness still recognised.
        assert_eq!(
            Packet::new_checked(&[0, 0, 0, 2], false).unwrap().family(),
            Family::Ipv4
        );
        assert_eq!(
            Packet::new_checked(&[7, 0, 0, 0], false).unwrap().family(),
            Family::Unknown(7)
        );
        assert!(Packet::new_checked(&[2, 0], false).is_err());
    }
}
