//! Ethernet II frames (IEEE 802.3), with any number of 802.1Q / 802.1ad (QinQ) tags followed
//! up to [`MAX_TAGS`]; the view reports the inner EtherType and where its payload starts.
//!
//! The header and each tag are read through `pnet_packet`'s `EthernetPacket` and `VlanPacket`,
//! built only after the bytes they cover were checked to be there. The MAC addresses are
//! borrowed slices of the capture (`pnet_packet` copies them into a `MacAddr`), so that
//! [`HwAddr`] prints them without copying, whatever their length in other link layers.

use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::vlan::VlanPacket;

use crate::bytes::{slice, tail};
use crate::{Error, ErrorKind, EtherType, HwAddr, Result};

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Tags followed before giving up (QinQ uses two; more is unusual but legal).
pub const MAX_TAGS: usize = 4;

/// A checked view of an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    buf: &'a [u8],
    tags: [u16; MAX_TAGS],
    tag_count: u8,
    inner_type_at: usize,
    inner_type: u16,
}

impl<'a> Frame<'a> {
    /// Checks the header and walks the VLAN tags.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let Some(eth) = EthernetPacket::new(buf) else {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        };
        let mut ethertype = eth.get_ethertype().0;
        let mut tags = [0u16; MAX_TAGS];
        let mut count = 0usize;
        let mut at = field::ETHERTYPE;
        while matches!(
            EtherType::from(ethertype),
            EtherType::Vlan | EtherType::QinQ
        ) {
            if count == MAX_TAGS {
                return Err(Error::new(ErrorKind::TooDeep, at));
            }
            // A tag is the 2-byte TCI and the next EtherType, after the tag's own type.
            let Some(tag) = buf.get(at + 2..).and_then(VlanPacket::new) else {
                return Err(Error::new(ErrorKind::Truncated, buf.len()));
            };
            if let Some(t) = tags.get_mut(count) {
                *t = u16::from(tag.get_priority_code_point().0) << 13
                    | u16::from(tag.get_drop_eligible_indicator()) << 12
                    | tag.get_vlan_identifier();
            }
            ethertype = tag.get_ethertype().0;
            count += 1;
            at += field::TAG_LEN;
        }
        Ok(Frame {
            buf,
            tags,
            tag_count: count as u8,
            inner_type_at: at,
            inner_type: ethertype,
        })
    }

    /// Destination MAC.
    pub fn dst(&self) -> HwAddr<'a> {
        HwAddr(slice(self.buf, field::DST.start, field::DST.end))
    }

    /// Source MAC.
    pub fn src(&self) -> HwAddr<'a> {
        HwAddr(slice(self.buf, field::SRC.start, field::SRC.end))
    }

    /// The EtherType after all VLAN tags.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.inner_type)
    }

    /// The raw 16-bit value of [`Frame::ethertype`].
    pub fn ethertype_raw(&self) -> u16 {
        self.inner_type
    }

    /// The tag control information of each VLAN tag, outermost first.
    pub fn tags(&self) -> &[u16] {
        self.tags.get(..usize::from(self.tag_count)).unwrap_or(&[])
    }

    /// VLAN ids (low 12 bits of each tag), outermost first.
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.tags().iter().map(|t| t & 0x0fff)
    }

    /// Header length including tags.
    pub fn header_len(&self) -> usize {
        self.inner_type_at + 2
    }

    /// The bytes after the header (including any trailer padding: the network layer trims it).
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buf, self.header_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // First frame of testdata/veth.pcap's ARP request (real capture), 42 bytes.
    const ARP_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x4d,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    #[test]
    fn untagged() {
        let f = Frame::new_checked(&ARP_FRAME).unwrap();
        assert_eq!(f.dst().to_string(), "ff:ff:ff:ff:ff:ff");
        assert_eq!(f.src().to_string(), "02:00:00:00:00:0a");
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.ethertype().name(), "ARP");
        assert_eq!(f.tags(), &[] as &[u16]);
        assert_eq!(f.payload().len(), 28);
    }

    #[test]
    fn qinq() {
        let mut b = ARP_FRAME[..12].to_vec();
        b.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00, 0x45,
        ]);
        let f = Frame::new_checked(&b).unwrap();
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_ids().collect::<Vec<_>>(), vec![100, 10]);
        assert_eq!(f.tags()[1] >> 13, 1, "priority bits kept");
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.payload(), &[0x45]);
    }

    #[test]
    fn truncated_and_endless_tags() {
        assert_eq!(
            Frame::new_checked(&ARP_FRAME[..13]).unwrap_err().kind,
            ErrorKind::Truncated
        );
        let mut b = ARP_FRAME[..12].to_vec();
        b.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(
            Frame::new_checked(&b).unwrap_err().kind,
            ErrorKind::Truncated
        );
        let mut b = ARP_FRAME[..12].to_vec();
        for _ in 0..10 {
            b.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        assert_eq!(Frame::new_checked(&b).unwrap_err().kind, ErrorKind::TooDeep);
    }

    #[test]
    fn length_field_is_llc() {
        let mut b = ARP_FRAME.to_vec();
        b[12] = 0x00;
        b[13] = 0x26;
        let f = Frame::new_checked(&b).unwrap();
        assert_eq!(f.ethertype(), EtherType::Length(0x26));
    }
}
