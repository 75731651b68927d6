//! IPv4 (RFC 791) headers, options (RFC 791 §3.1) and fragments.
//!
//! A total length of 0 is accepted and means "as captured": Linux hands captures of
//! TSO/GSO-offloaded segments to libpcap before segmentation, with the field left 0.
//!
//! The fixed header is read through `pnet_packet`'s `Ipv4Packet`. Options and payload are
//! sliced here from the checked header and total lengths: `pnet_packet`'s `get_options_raw`
//! and `payload` index by the IHL and total-length fields as sent, and panic when they disagree
//! with the buffer.

use std::net::Ipv4Addr;

use pnet_packet::ipv4::Ipv4Packet;

use crate::bytes::{slice, u8_at};
use crate::{Error, ErrorKind, IpProtocol, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const VER_IHL: usize = 0;
    pub const LENGTH: usize = 2;
    pub const HEADER_LEN: usize = 20;
}

/// Minimum header length.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A checked view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks version, header length and total length against each other and the buffer.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        let p = Packet { buf };
        if p.version() != 4 {
            return Err(Error::new(ErrorKind::BadVersion, field::VER_IHL));
        }
        if p.header_len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::BadHeaderLength, field::VER_IHL));
        }
        let total = usize::from(p.total_len());
        if total != 0 && total < p.header_len() {
            return Err(Error::new(ErrorKind::BadLength, field::LENGTH));
        }
        if buf.len() < p.header_len() {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(p)
    }

    /// `pnet_packet`'s view of the same bytes (the 20-byte fixed header is there after
    /// `new_checked`, so its fixed-field getters stay in bounds).
    #[inline]
    fn view(&self) -> Option<Ipv4Packet<'a>> {
        Ipv4Packet::new(self.buf)
    }

    /// Version (4).
    pub fn version(&self) -> u8 {
        self.view().map_or(0, |p| p.get_version())
    }

    /// IHL field (header length in 32-bit words).
    pub fn ihl(&self) -> u8 {
        self.view().map_or(0, |p| p.get_header_length())
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Type of service byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        self.view().map_or(0, |p| p.get_dscp() << 2 | p.get_ecn())
    }

    /// Total length field as sent.
    pub fn total_len(&self) -> u16 {
        self.view().map_or(0, |p| p.get_total_length())
    }

    /// The length the packet really has: the total length, or the captured length when the
    /// field is 0 (offloaded segments).
    pub fn effective_len(&self) -> usize {
        match self.total_len() {
            0 => self.buf.len(),
            n => usize::from(n),
        }
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.view().map_or(0, |p| p.get_identification())
    }

    /// The three flag bits (reserved, don't fragment, more fragments).
    fn flag_bits(&self) -> u8 {
        self.view().map_or(0, |p| p.get_flags())
    }

    /// The reserved ("evil", RFC 3514) flag bit.
    pub fn evil(&self) -> bool {
        self.flag_bits() & 0b100 != 0
    }

    /// Don't fragment.
    pub fn dont_frag(&self) -> bool {
        self.flag_bits() & 0b010 != 0
    }

    /// More fragments.
    pub fn more_frags(&self) -> bool {
        self.flag_bits() & 0b001 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        self.view()
            .map_or(0, |p| p.get_fragment_offset())
            .wrapping_mul(8)
    }

    /// Part of a fragmented datagram (first or later).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.view().map_or(0, |p| p.get_ttl())
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.view().map_or(0, |p| p.get_next_level_protocol().0))
    }

    /// Header checksum as sent (not verified: offloaded checksums are often blank in captures).
    pub fn checksum(&self) -> u16 {
        self.view().map_or(0, |p| p.get_checksum())
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        self.view()
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.get_source())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        self.view()
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.get_destination())
    }

    /// Options bytes (between the fixed header and the payload).
    pub fn options_raw(&self) -> &'a [u8] {
        slice(self.buf, field::HEADER_LEN, self.header_len())
    }

    /// The options, one at a time.
    pub fn options(&self) -> Options<'a> {
        Options {
            buf: self.options_raw(),
            at: 0,
            done: false,
        }
    }

    /// True when fewer bytes were captured than the total length says.
    pub fn is_truncated(&self) -> bool {
        self.buf.len() < self.effective_len()
    }

    /// The payload as captured (trailer padding removed, snaplen cut kept).
    pub fn payload(&self) -> &'a [u8] {
        slice(self.buf, self.header_len(), self.effective_len())
    }
}

/// One IPv4 option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// Option type (copied flag, class and number).
    pub kind: u8,
    /// Option data (after the type and length bytes).
    pub data: &'a [u8],
}

impl Ipv4Option<'_> {
    /// Name of the option type.
    pub fn name(&self) -> &'static str {
        match self.kind {
            0 => "EOL",
            1 => "NOP",
            7 => "RR",
            68 => "TS",
            130 => "SEC",
            131 => "LSRR",
            133 => "ESEC",
            136 => "SID",
            137 => "SSRR",
            148 => "RTRALT",
            _ => "Unknown",
        }
    }
}

/// Iterator over IPv4 options; stops after End-of-List or the first malformed option.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    buf: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.buf.len() {
            return None;
        }
        let kind = u8_at(self.buf, self.at);
        if kind == 0 || kind == 1 {
            self.done = kind == 0;
            self.at += 1;
            return Some(Ok(Ipv4Option { kind, data: &[] }));
        }
        let len = usize::from(u8_at(self.buf, self.at + 1));
        if len < 2 || self.at + len > self.buf.len() {
            self.done = true;
            return Some(Err(Error::new(
                ErrorKind::BadOption,
                field::HEADER_LEN + self.at,
            )));
        }
        let data = slice(self.buf, self.at + 2, self.at + len);
        self.at += len;
        Some(Ok(Ipv4Option { kind, data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> &'static [u8] {
        // ICMP echo request 10.77.0.1 -> 10.77.0.2, packet 10 of testdata/veth.pcap: the IP
        // header and the first 8 bytes of its 64-byte payload.
        &crate::testdata::veth(10)[14..42]
    }

    #[test]
    fn header_fields() {
        let p = Packet::new_checked(echo()).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.ident(), 0x8b82);
        assert!(p.dont_frag() && !p.more_frags() && !p.evil());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Icmp);
        assert_eq!(p.checksum(), 0x9a8a);
        assert_eq!(p.src(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 77, 0, 2));
        assert!(p.is_truncated(), "only 28 of 84 bytes here");
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.options().count(), 0);
    }

    #[test]
    fn padding_is_trimmed() {
        let mut b = echo().to_vec();
        b[3] = 24; // total length 24: 4 bytes of payload, the rest is trailer
        let p = Packet::new_checked(&b).unwrap();
        assert!(!p.is_truncated());
        assert_eq!(p.payload(), &echo()[20..24]);
    }

    #[test]
    fn tso_zero_length() {
        let mut b = echo().to_vec();
        b[2] = 0;
        b[3] = 0;
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.effective_len(), 28);
        assert!(!p.is_truncated());
    }

    #[test]
    fn malformed() {
        for n in 0..20 {
            assert_eq!(
                Packet::new_checked(&echo()[..n]).unwrap_err().kind,
                ErrorKind::Truncated
            );
        }
        let mut b = echo().to_vec();
        b[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::BadVersion
        );
        b[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::BadHeaderLength
        );
        b[0] = 0x4f; // 60-byte header in a 28-byte buffer
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::Truncated
        );
        let mut b = echo().to_vec();
        b[3] = 10; // total length smaller than the header
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::BadLength
        );
    }

    #[test]
    fn options_and_fragments() {
        // Router alert + NOP + EOL, fragment at offset 1480 with MF.
        let mut b = vec![
            0x47, 0x00, 0x00, 0x20, 0x00, 0x01, 0x20, 0xb9, 0x01, 0x11, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2, 0x94, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        ];
        b.extend_from_slice(&[0xaa; 4]);
        let p = Packet::new_checked(&b).unwrap();
        assert!(p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 185 * 8);
        let opts: Vec<_> = p.options().collect::<Result<_>>().unwrap();
        assert_eq!(opts.len(), 3);
        assert_eq!(opts[0].name(), "RTRALT");
        assert_eq!(opts[0].data, &[0, 0]);
        assert_eq!(opts[2].name(), "EOL");
        assert_eq!(p.payload(), &[0xaa; 4]);
        // An option whose length runs past the header.
        b[21] = 9;
        let last = p_options_last(&b);
        assert_eq!(last.unwrap_err().kind, ErrorKind::BadOption);
        b[21] = 1; // length below 2
        assert!(p_options_last(&b).is_err());
    }

    fn p_options_last(b: &[u8]) -> Result<Ipv4Option<'_>> {
        Packet::new_checked(b).unwrap().options().last().unwrap()
    }
}
