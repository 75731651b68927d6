//! Link layer: `L2` (Ethernet, VLAN, cooked headers) and `ARP`.

use analyze::Link;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use wire::arp;

use super::Disp;
use crate::fields as f;

pub(super) struct L2<'a>(pub(super) Link<'a>);

impl Serialize for L2<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Link::Ethernet(e) => {
                m.serialize_entry(f::SRC, &Disp(e.src()))?;
                m.serialize_entry(f::DST, &Disp(e.dst()))?;
                m.serialize_entry(f::TYPE, e.ethertype().name())?;
                if !e.tags().is_empty() {
                    m.serialize_entry(f::VLAN, &VlanIds(e))?;
                }
            }
            Link::Sll(p) => {
                m.serialize_entry(f::SRC, &Disp(p.addr()))?;
                m.serialize_entry(f::TYPE, p.protocol().name())?;
                m.serialize_entry(f::PKTTYPE, p.packet_type().name())?;
                m.serialize_entry(f::HATYPE, &p.hardware_type())?;
            }
            Link::Sll2(p) => {
                m.serialize_entry(f::SRC, &Disp(p.addr()))?;
                m.serialize_entry(f::TYPE, p.protocol().name())?;
                m.serialize_entry(f::PKTTYPE, p.packet_type().name())?;
                m.serialize_entry(f::HATYPE, &p.hardware_type())?;
                m.serialize_entry(f::IFINDEX, &p.ifindex())?;
            }
            Link::Null(p) => {
                m.serialize_entry(f::FAMILY, &p.family_raw())?;
            }
            Link::Raw | Link::None => {}
        }
        m.end()
    }
}

struct VlanIds<'a>(wire::ethernet::Frame<'a>);

impl Serialize for VlanIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.vlan_ids())
    }
}

pub(super) struct ArpJson<'a>(pub(super) arp::Packet<'a>);

struct ArpEnd<'a>(Option<std::net::Ipv4Addr>, &'a [u8], wire::HwAddr<'a>);

impl Serialize for ArpEnd<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self.0 {
            Some(ip) => m.serialize_entry(f::ARP_IP, &Disp(ip))?,
            None => m.serialize_entry(f::ARP_IP, &Disp(wire::hex(self.1)))?,
        }
        m.serialize_entry(f::ARP_MAC, &Disp(self.2))?;
        m.end()
    }
}

impl Serialize for ArpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::OP, &a.operation_raw())?;
        m.serialize_entry(f::NAME, a.operation().name())?;
        m.serialize_entry(
            f::SRC,
            &ArpEnd(a.sender_ip(), a.sender_proto(), a.sender_hw()),
        )?;
        m.serialize_entry(
            f::DST,
            &ArpEnd(a.target_ip(), a.target_proto(), a.target_hw()),
        )?;
        m.end()
    }
}
