//! IPv6 (RFC 8200) fixed header and extension-header chain: hop-by-hop, routing, fragment,
//! destination options, AH (RFC 4302), mobility; the chain is followed up to
//! [`MAX_EXTENSIONS`] headers to find the upper-layer protocol and payload.
//!
//! The fixed header and the fragment header are read through `pnet_packet`'s `Ipv6Packet` and
//! `FragmentPacket`. The chain walk is done here, with each header's length checked against
//! the packet before a view of it is built: `pnet_packet`'s `ExtensionIterable` follows lengths
//! as sent, has no depth limit and does not know AH's 4-byte length unit.

use std::net::Ipv6Addr;

use pnet_packet::ipv6::{FragmentPacket, Ipv6Packet};

use crate::bytes::{slice, u8_at};
use crate::{Error, ErrorKind, IpProtocol, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const VER_TC_FL: usize = 0;
    pub const NEXT_HEADER: usize = 6;
    pub const HEADER_LEN: usize = 40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Extension headers followed before giving up.
pub const MAX_EXTENSIONS: usize = 8;

/// One extension header of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// Its type (the previous header's next-header value).
    pub kind: IpProtocol,
    /// Offset from the start of the IPv6 header.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Fragment header contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// A checked view of an IPv6 packet with its extension chain walked.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    /// (next-header value, offset, length) of each extension header; packed to keep the view
    /// small (it is copied around by value).
    exts: [(u8, u16, u16); MAX_EXTENSIONS],
    ext_count: u8,
    upper: IpProtocol,
    payload_at: usize,
    fragment: Option<Fragment>,
    chain_error: Option<Error>,
}

fn is_extension(p: IpProtocol) -> bool {
    matches!(
        p,
        IpProtocol::HopByHop
            | IpProtocol::Ipv6Route
            | IpProtocol::Ipv6Frag
            | IpProtocol::Ipv6Opts
            | IpProtocol::Ah
            | IpProtocol::Mobility
    )
}

impl<'a> Packet<'a> {
    /// Checks the fixed header and walks the extension headers. A chain that runs past the
    /// captured bytes stops there: [`Packet::chain_error`] says why, and the upper-layer
    /// protocol is then the last next-header value that could be read.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        if u8_at(buf, field::VER_TC_FL) >> 4 != 6 {
            return Err(Error::new(ErrorKind::BadVersion, field::VER_TC_FL));
        }
        let mut p = Packet {
            buf,
            exts: [(0, 0, 0); MAX_EXTENSIONS],
            ext_count: 0,
            upper: IpProtocol::from(u8_at(buf, field::NEXT_HEADER)),
            payload_at: field::HEADER_LEN,
            fragment: None,
            chain_error: None,
        };
        let end = p.end();
        let mut n = 0;
        while is_extension(p.upper) {
            let at = p.payload_at;
            if n == MAX_EXTENSIONS {
                p.chain_error = Some(Error::new(ErrorKind::TooDeep, at));
                break;
            }
            if at + 8 > end {
                p.chain_error = Some(Error::new(ErrorKind::Truncated, at));
                break;
            }
            let len = match p.upper {
                IpProtocol::Ipv6Frag => 8,
                IpProtocol::Ah => (usize::from(u8_at(buf, at + 1)) + 2) * 4,
                _ => (usize::from(u8_at(buf, at + 1)) + 1) * 8,
            };
            if at + len > end {
                p.chain_error = Some(Error::new(ErrorKind::Truncated, at));
                break;
            }
            if p.upper == IpProtocol::Ipv6Frag {
                // The header fits the payload length, but a snaplen cut may have taken part
                // of it: read what was captured, zeros after (as every getter here does).
                let mut header = [0u8; 8];
                let captured = slice(buf, at, at + 8);
                if let Some(d) = header.get_mut(..captured.len()) {
                    d.copy_from_slice(captured);
                }
                if let Some(f) = FragmentPacket::new(&header) {
                    // Offset from the raw 16 bits: `pnet_packet`'s `get_fragment_offset` keeps
                    // a reserved bit in it.
                    let v = f.get_fragment_offset_with_flags();
                    p.fragment = Some(Fragment {
                        offset: (v >> 3).wrapping_mul(8),
                        more: v & 1 != 0,
                        ident: f.get_id(),
                    });
                }
            }
            if let Some(slot) = p.exts.get_mut(n) {
                // Offsets fit: a packet is at most 64 KiB + jumbo; clamp rather than wrap.
                *slot = (
                    u8::from(p.upper),
                    u16::try_from(at).unwrap_or(u16::MAX),
                    u16::try_from(len).unwrap_or(u16::MAX),
                );
            }
            n += 1;
            p.ext_count = n as u8;
            p.upper = IpProtocol::from(u8_at(buf, at));
            p.payload_at = at + len;
            // A non-first fragment carries no upper-layer header to look into.
            if p.fragment.is_some_and(|f| f.offset != 0) {
                break;
            }
        }
        Ok(p)
    }

    /// `pnet_packet`'s view of the same bytes (the 40-byte fixed header is there after
    /// `new_checked`, so its fixed-field getters stay in bounds).
    #[inline]
    fn view(&self) -> Option<Ipv6Packet<'a>> {
        Ipv6Packet::new(self.buf)
    }

    /// Version (6).
    pub fn version(&self) -> u8 {
        self.view().map_or(0, |p| p.get_version())
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        self.view().map_or(0, |p| p.get_traffic_class())
    }

    /// Flow label.
    pub fn flow_label(&self) -> u32 {
        self.view().map_or(0, |p| p.get_flow_label())
    }

    /// Payload length field (0 for jumbograms and offloaded segments).
    pub fn payload_len(&self) -> u16 {
        self.view().map_or(0, |p| p.get_payload_length())
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.view().map_or(0, |p| p.get_next_header().0))
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.view().map_or(0, |p| p.get_hop_limit())
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        self.view()
            .map_or(Ipv6Addr::UNSPECIFIED, |p| p.get_source())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        self.view()
            .map_or(Ipv6Addr::UNSPECIFIED, |p| p.get_destination())
    }

    /// End of the packet: header + payload length, or the capture when the field is 0.
    fn end(&self) -> usize {
        match self.payload_len() {
            0 => self.buf.len(),
            n => field::HEADER_LEN + usize::from(n),
        }
    }

    /// The packet's length (header + payload length field).
    pub fn effective_len(&self) -> usize {
        self.end()
    }

    /// Extension headers in order.
    pub fn extensions(&self) -> impl Iterator<Item = Extension> + '_ {
        self.exts
            .iter()
            .take(usize::from(self.ext_count))
            .map(|&(kind, offset, len)| Extension {
                kind: IpProtocol::from(kind),
                offset: usize::from(offset),
                len: usize::from(len),
            })
    }

    /// Fragment header, when present.
    pub fn fragment(&self) -> Option<Fragment> {
        self.fragment
    }

    /// Why the extension chain could not be followed to its end, if it could not.
    pub fn chain_error(&self) -> Option<Error> {
        self.chain_error
    }

    /// The upper-layer protocol (after the extension chain).
    pub fn protocol(&self) -> IpProtocol {
        self.upper
    }

    /// True when fewer bytes were captured than the payload length says.
    pub fn is_truncated(&self) -> bool {
        self.buf.len() < self.end()
    }

    /// The upper-layer payload as captured.
    pub fn payload(&self) -> &'a [u8] {
        slice(self.buf, self.payload_at, self.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> &'static [u8] {
        // ICMPv6 echo request fd77::1 -> fd77::2, packet 16 of testdata/veth.pcap: the fixed
        // header and the first 8 bytes of the payload.
        &crate::testdata::veth(16)[14..62]
    }

    #[test]
    fn fixed_header() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0x81631);
        assert_eq!(p.payload_len(), 64);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src().to_string(), "fd77::1");
        assert_eq!(p.dst().to_string(), "fd77::2");
        assert_eq!(p.protocol(), IpProtocol::Icmpv6);
        assert!(p.is_truncated());
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.extensions().count(), 0);
    }

    fn with_ext(next: u8, ext: &[u8]) -> Vec<u8> {
        let mut b = echo()[..40].to_vec();
        b[6] = next;
        let len = ext.len() + 8;
        b[4] = (len >> 8) as u8;
        b[5] = len as u8;
        b.extend_from_slice(ext);
        b.extend_from_slice(&echo()[40..]);
        b
    }

    #[test]
    fn hop_by_hop_then_icmp() {
        // MLD reports carry a hop-by-hop router-alert option (as in testdata/veth.pcap).
        let b = with_ext(0, &[58, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00]);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(p.protocol(), IpProtocol::Icmpv6);
        let e: Vec<_> = p.extensions().collect();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].offset, e[0].len), (40, 8));
        assert_eq!(p.payload()[0], 0x80);
        assert!(p.chain_error().is_none());
    }

    #[test]
    fn fragments() {
        let first = with_ext(44, &[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        let p = Packet::new_checked(&first).unwrap();
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(
            p.fragment(),
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0xdeadbeef
            })
        );
        let later = with_ext(44, &[17, 0, 0x05, 0xc8, 0xde, 0xad, 0xbe, 0xef]);
        let p = Packet::new_checked(&later).unwrap();
        assert_eq!(p.fragment().unwrap().offset, 1480);
        assert!(!p.fragment().unwrap().more);
        // A reserved bit set between offset and M changes neither (pnet_packet's
        // `get_fragment_offset` would keep it in the offset).
        let reserved = with_ext(44, &[17, 0, 0x05, 0xcd, 0xde, 0xad, 0xbe, 0xef]);
        let f = Packet::new_checked(&reserved).unwrap().fragment().unwrap();
        assert_eq!((f.offset, f.more), (1480, true));
    }

    #[test]
    fn broken_chains() {
        // Extension claims 2 KiB.
        let b = with_ext(60, &[6, 255, 0, 0, 0, 0, 0, 0]);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.chain_error().unwrap().kind, ErrorKind::Truncated);
        // A loop of destination-options headers longer than the limit.
        let mut ext = Vec::new();
        for _ in 0..12 {
            ext.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        let b = with_ext(60, &ext);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.chain_error().unwrap().kind, ErrorKind::TooDeep);
        assert_eq!(p.extensions().count(), MAX_EXTENSIONS);
        for n in 0..40 {
            assert!(Packet::new_checked(&echo()[..n]).is_err());
        }
        let mut b = echo().to_vec();
        b[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::BadVersion
        );
    }
}
