//! TCP (RFC 9293) segments: every header field, all twelve flag bits (including the three
//! reserved ones and NS/AE), and every option with its length checked (RFC 9293 §3.1 MSS,
//! RFC 7323 window scale and timestamps, RFC 2018 SACK, RFC 7413 Fast Open, RFC 8684 MPTCP,
//! RFC 5925 TCP-AO, RFC 2385 MD5, RFC 5482 user timeout).
//!
//! The fixed header is read through `pnet_packet`'s `TcpPacket`. The data offset is checked
//! against the buffer before anything reads options (libpnet issue #221: a data offset past the
//! buffer must not reach the options iterator), so options and payload are sliced here, from
//! the checked header length. `pnet_packet` splits bytes 12–13 into data offset, a 4-bit
//! "reserved" nibble and 8 flag bits: NS and the three reserved bits are read from the raw
//! header.

use pnet_packet::tcp::TcpPacket;

use crate::bytes::{be16, be32, slice, tail, u8_at};
use crate::{Error, ErrorKind, Result};

/// The offsets read here rather than through `pnet_packet`.
mod field {
    pub const OFF_FLAGS: usize = 12;
    pub const HEADER_LEN: usize = 20;
}

/// Minimum header length.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// The flag bits, as the low 12 bits of bytes 12–13 (reserved bits included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (RFC 3540, historic; AE in RFC 9768's accurate ECN).
    pub const NS: u16 = 0x100;
    /// The three reserved bits.
    pub const RESERVED: u16 = 0xe00;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }

    /// FIN set.
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// SYN set.
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    /// PSH set.
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
    /// ACK set.
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// URG set.
    pub fn urg(self) -> bool {
        self.has(Self::URG)
    }
    /// ECE set.
    pub fn ece(self) -> bool {
        self.has(Self::ECE)
    }
    /// CWR set.
    pub fn cwr(self) -> bool {
        self.has(Self::CWR)
    }
    /// NS set.
    pub fn ns(self) -> bool {
        self.has(Self::NS)
    }

    /// Each flag bit with its name, in bit order (entry `i` is bit `1 << i`): the one table of
    /// flag names (the text of [`Flags::names`] and the keys of the JSON flag map).
    pub const NAMED: [(u16, &'static str); 9] = [
        (Flags::FIN, "FIN"),
        (Flags::SYN, "SYN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::ACK, "ACK"),
        (Flags::URG, "URG"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
        (Flags::NS, "NS"),
    ];

    /// `(name, set)` for each flag bit of `order`, in that order (bits without a name in
    /// [`Flags::NAMED`] are skipped).
    pub fn each(self, order: &[u16]) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        order.iter().filter_map(move |&bit| {
            Self::NAMED
                .get(bit.trailing_zeros() as usize)
                .filter(|(b, _)| *b == bit)
                .map(|&(_, name)| (name, self.has(bit)))
        })
    }

    /// Names of the set flags in a fixed order with ACK last (`SYN|ACK`, `PSH|ACK`,
    /// `FIN|PSH|ACK`), so the same bits always give the same text.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        const ORDER: [u16; 9] = [
            Flags::SYN,
            Flags::FIN,
            Flags::RST,
            Flags::PSH,
            Flags::URG,
            Flags::ECE,
            Flags::CWR,
            Flags::NS,
            Flags::ACK,
        ];
        self.each(&ORDER)
            .filter(|&(_, set)| set)
            .map(|(name, _)| name)
    }
}

impl std::fmt::Display for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// A checked view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the fixed header and the data offset (at least 5 words, and within the buffer).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        let p = Packet { buf };
        if p.header_len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::BadHeaderLength, field::OFF_FLAGS));
        }
        if p.header_len() > buf.len() {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(p)
    }

    /// `pnet_packet`'s view of the same bytes. `new_checked` made sure the 20-byte fixed header
    /// is there, so its fixed-field getters stay in bounds; `None` (never, after the check) reads
    /// as zeros like the rest of this crate.
    #[inline]
    fn view(&self) -> Option<TcpPacket<'a>> {
        TcpPacket::new(self.buf)
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.view().map_or(0, |p| p.get_source())
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.view().map_or(0, |p| p.get_destination())
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.view().map_or(0, |p| p.get_sequence())
    }

    /// Acknowledgement number (meaningful when ACK is set).
    pub fn ack(&self) -> u32 {
        self.view().map_or(0, |p| p.get_acknowledgement())
    }

    /// Data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.view().map_or(0, |p| p.get_data_offset())
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// All flag bits: the eight `pnet_packet` names, plus NS and the reserved bits from the
    /// low nibble of byte 12 (raw header).
    pub fn flags(&self) -> Flags {
        let high = u16::from(u8_at(self.buf, field::OFF_FLAGS) & 0x0f) << 8;
        Flags(high | self.view().map_or(0, |p| u16::from(p.get_flags())))
    }

    /// Window field (unscaled).
    pub fn window(&self) -> u16 {
        self.view().map_or(0, |p| p.get_window())
    }

    /// Checksum as sent.
    pub fn checksum(&self) -> u16 {
        self.view().map_or(0, |p| p.get_checksum())
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        self.view().map_or(0, |p| p.get_urgent_ptr())
    }

    /// Raw option bytes.
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

    /// The payload as captured.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, self.header_len())
    }
}

/// One TCP option, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Kind 0.
    EndOfList,
    /// Kind 1.
    Nop,
    /// Kind 2.
    Mss(u16),
    /// Kind 3: the shift count.
    WindowScale(u8),
    /// Kind 4.
    SackPermitted,
    /// Kind 5: blocks of (left, right) edges, 8 bytes each.
    Sack(&'a [u8]),
    /// Kind 8.
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Kind 19 (RFC 2385).
    Md5(&'a [u8]),
    /// Kind 28 (RFC 5482): granularity bit and timeout.
    UserTimeout(u16),
    /// Kind 29 (RFC 5925).
    Ao(&'a [u8]),
    /// Kind 30 (RFC 8684).
    Mptcp(&'a [u8]),
    /// Kind 34 (RFC 7413): the cookie (empty in a cookie request).
    FastOpen(&'a [u8]),
    /// Any other kind, with its data.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after kind and length.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Name as gopacket printed it (the original's JSON key).
    pub fn name(&self) -> &'static str {
        match self {
            TcpOption::EndOfList => "EndList",
            TcpOption::Nop => "NOP",
            TcpOption::Mss(_) => "MSS",
            TcpOption::WindowScale(_) => "WindowScale",
            TcpOption::SackPermitted => "SACKPermitted",
            TcpOption::Sack(_) => "SACK",
            TcpOption::Timestamps { .. } => "Timestamps",
            TcpOption::Md5(_) => "MD5",
            TcpOption::UserTimeout(_) => "UserTimeout",
            TcpOption::Ao(_) => "AO",
            TcpOption::Mptcp(_) => "MPTCP",
            TcpOption::FastOpen(_) => "FastOpen",
            TcpOption::Unknown { .. } => "Unknown",
        }
    }

    /// SACK blocks as (left, right) pairs.
    pub fn sack_blocks(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let data: &[u8] = match self {
            TcpOption::Sack(d) => d,
            _ => &[],
        };
        data.chunks_exact(8).map(|c| (be32(c, 0), be32(c, 4)))
    }
}

/// Iterator over TCP options; stops after End-of-List or the first malformed option.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    buf: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Options<'a> {
    fn fail(&mut self) -> Option<Result<TcpOption<'a>>> {
        self.done = true;
        Some(Err(Error::new(
            ErrorKind::BadOption,
            field::HEADER_LEN + self.at,
        )))
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.buf.len() {
            return None;
        }
        let kind = u8_at(self.buf, self.at);
        match kind {
            0 => {
                // The rest of the option space is padding.
                self.done = true;
                return Some(Ok(TcpOption::EndOfList));
            }
            1 => {
                self.at += 1;
                return Some(Ok(TcpOption::Nop));
            }
            _ => {}
        }
        if self.at + 2 > self.buf.len() {
            return self.fail();
        }
        let len = usize::from(u8_at(self.buf, self.at + 1));
        if len < 2 || self.at + len > self.buf.len() {
            return self.fail();
        }
        let data = slice(self.buf, self.at + 2, self.at + len);
        let opt = match (kind, len) {
            (2, 4) => TcpOption::Mss(be16(data, 0)),
            (3, 3) => TcpOption::WindowScale(u8_at(data, 0)),
            (4, 2) => TcpOption::SackPermitted,
            (5, _) if (len - 2) % 8 == 0 && len > 2 => TcpOption::Sack(data),
            (8, 10) => TcpOption::Timestamps {
                tsval: be32(data, 0),
                tsecr: be32(data, 4),
            },
            (19, 18) => TcpOption::Md5(data),
            (28, 4) => TcpOption::UserTimeout(be16(data, 0)),
            (29, _) if len >= 4 => TcpOption::Ao(data),
            (30, _) if len >= 3 => TcpOption::Mptcp(data),
            (34, _) => TcpOption::FastOpen(data),
            // A known kind with the wrong length is malformed, not unknown.
            (2 | 3 | 4 | 5 | 8 | 19 | 28 | 29 | 30, _) => return self.fail(),
            _ => TcpOption::Unknown { kind, data },
        };
        self.at += len;
        Some(Ok(opt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn() -> &'static [u8] {
        // SYN 10.77.0.1:55194 -> 10.77.0.2:8080, packet 50 of testdata/veth.pcap (TCP part).
        &crate::testdata::veth(50)[34..]
    }

    #[test]
    fn syn_header_and_options() {
        let p = Packet::new_checked(syn()).unwrap();
        assert_eq!(p.src_port(), 55194);
        assert_eq!(p.dst_port(), 8080);
        assert_eq!(p.seq(), 276874290);
        assert_eq!(p.ack(), 0);
        assert_eq!(p.data_offset(), 10);
        assert_eq!(p.flags(), Flags(Flags::SYN));
        assert_eq!(p.flags().to_string(), "SYN");
        assert_eq!(p.window(), 64240);
        assert_eq!(p.urgent(), 0);
        let opts: Vec<_> = p.options().collect::<Result<_>>().unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 1396332867,
                    tsecr: 0
                },
                TcpOption::Nop,
                TcpOption::WindowScale(10),
            ]
        );
        assert!(p.payload().is_empty());
    }

    #[test]
    fn one_name_per_flag_bit() {
        // Every bit below the reserved ones, once, in bit order.
        assert_eq!(Flags::NAMED.len(), 9);
        for (i, &(bit, _)) in Flags::NAMED.iter().enumerate() {
            assert_eq!(bit, 1 << i, "entry {i} out of bit order");
        }
        let named: Vec<_> = Flags(Flags::SYN)
            .each(&[Flags::ACK, Flags::RESERVED, 0, Flags::SYN])
            .collect();
        assert_eq!(named, [("ACK", false), ("SYN", true)]);
    }

    #[test]
    fn flag_text_is_deterministic() {
        assert_eq!(Flags(Flags::SYN | Flags::ACK).to_string(), "SYN|ACK");
        assert_eq!(Flags(Flags::PSH | Flags::ACK).to_string(), "PSH|ACK");
        assert_eq!(
            Flags(Flags::FIN | Flags::PSH | Flags::ACK).to_string(),
            "FIN|PSH|ACK"
        );
        assert_eq!(Flags(Flags::RST | Flags::ACK).to_string(), "RST|ACK");
        assert_eq!(
            Flags(0x1ff).to_string(),
            "SYN|FIN|RST|PSH|URG|ECE|CWR|NS|ACK"
        );
        assert_eq!(Flags(0).to_string(), "");
        let p = {
            let mut b = syn().to_vec();
            b[12] = 0xaf; // reserved bits and NS set
            b[13] = 0xff;
            Packet::new_checked(&b).unwrap().flags()
        };
        assert_eq!(p.0, 0xfff);
        assert!(p.ns() && p.has(Flags::RESERVED));
    }

    #[test]
    fn data_offset_checks() {
        let mut b = syn().to_vec();
        b[12] = 0x40; // 16 bytes: below the minimum
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::BadHeaderLength
        );
        b[12] = 0xf0; // 60 bytes in a 40-byte buffer (libpnet #221)
        assert_eq!(
            Packet::new_checked(&b).unwrap_err().kind,
            ErrorKind::Truncated
        );
        for n in 0..40 {
            assert!(Packet::new_checked(&syn()[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn malformed_options() {
        let mut b = syn().to_vec();
        b[21] = 0; // MSS length 0
        let r: Vec<_> = Packet::new_checked(&b).unwrap().options().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].unwrap_err(), Error::new(ErrorKind::BadOption, 20));
        let mut b = syn().to_vec();
        b[21] = 30; // runs past the header
        assert!(Packet::new_checked(&b)
            .unwrap()
            .options()
            .next()
            .unwrap()
            .is_err());
        let mut b = syn().to_vec();
        b[21] = 3; // MSS with a 3-byte length
        assert!(Packet::new_checked(&b)
            .unwrap()
            .options()
            .next()
            .unwrap()
            .is_err());
        let mut b = syn().to_vec();
        b[39] = 0x03; // last byte: window-scale kind with no room for its length
        b[37] = 0x01;
        b[38] = 0x01;
        let last = Packet::new_checked(&b).unwrap().options().last().unwrap();
        assert!(last.is_err());
    }

    #[test]
    fn sack_fast_open_unknown_and_eol() {
        let mut b = syn()[..20].to_vec();
        b[12] = 0xa0; // 40 bytes: 20 of options
        b.extend_from_slice(&[
            5, 10, 0, 0, 0, 1, 0, 0, 0, 9, 34, 2, 99, 4, 1, 2, 0, 7, 7, 7,
        ]);
        let p = Packet::new_checked(&b).unwrap();
        let opts: Vec<_> = p.options().collect::<Result<_>>().unwrap();
        assert_eq!(opts[0].sack_blocks().collect::<Vec<_>>(), vec![(1, 9)]);
        assert_eq!(opts[1], TcpOption::FastOpen(&[]));
        assert_eq!(
            opts[2],
            TcpOption::Unknown {
                kind: 99,
                data: &[1, 2]
            }
        );
        assert_eq!(opts[3], TcpOption::EndOfList);
        assert_eq!(opts.len(), 4, "nothing after End-of-List");
    }
}
