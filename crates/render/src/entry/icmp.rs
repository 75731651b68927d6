//! `ICMP` for ICMPv4 and ICMPv6 (neighbour discovery, the invoking datagram).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use wire::{icmpv4, icmpv6, ipv4, ipv6};

use super::{Disp, FlagNames};
use crate::fast;
use crate::fields as f;

pub(super) struct Icmp4Json<'a> {
    pub(super) i: icmpv4::Packet<'a>,
    pub(super) debug: bool,
}

impl Serialize for Icmp4Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.i;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TYPE, &i.msg_type())?;
        m.serialize_entry(f::CODE, &i.code())?;
        m.serialize_entry(f::MSG, &Disp(i.type_code()))?;
        if i.has_id_seq() {
            m.serialize_entry(f::ID, &i.ident())?;
            m.serialize_entry(f::SEQ, &i.seq())?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::XSUM, &i.checksum())?;
        match (i.msg_type(), i.code()) {
            (5, _) => m.serialize_entry(f::TGT, &Disp(i.gateway()))?,
            (3, 4) => m.serialize_entry(f::MTU, &i.next_hop_mtu())?,
            (12, _) => m.serialize_entry(f::PTR, &i.pointer())?,
            _ => {}
        }
        if i.is_error() {
            if let Ok(inner) = ipv4::Packet::new_checked(i.payload()) {
                m.serialize_entry(f::IPV4, &Embedded4(inner))?;
            }
        }
        m.end()
    }
}

/// Ports of the invoking datagram's TCP/UDP header (its first 4 bytes).
fn inner_ports(proto: wire::IpProtocol, l4: &[u8]) -> Option<(u16, u16)> {
    if !matches!(proto, wire::IpProtocol::Tcp | wire::IpProtocol::Udp) {
        return None;
    }
    match l4.get(..4)? {
        &[a, b, c, d] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
        _ => None,
    }
}

struct Embedded4<'a>(ipv4::Packet<'a>);

impl Serialize for Embedded4<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::ID, &ip.ident())?;
        m.serialize_entry(f::TTL, &ip.ttl())?;
        m.serialize_entry(f::PROTO, ip.protocol().name())?;
        m.serialize_entry(f::XSUM, &ip.checksum())?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if let Some((sp, dp)) = inner_ports(ip.protocol(), ip.payload()) {
            m.serialize_entry(f::SPORT, &sp)?;
            m.serialize_entry(f::DPORT, &dp)?;
        }
        m.end()
    }
}

pub(super) struct Icmp6Json<'a> {
    pub(super) i: icmpv6::Packet<'a>,
    pub(super) debug: bool,
}

impl Serialize for Icmp6Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.i;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TYPE, &i.msg_type())?;
        m.serialize_entry(f::CODE, &i.code())?;
        m.serialize_entry(f::MSG, &Disp(i.type_code()))?;
        if i.is_echo() {
            m.serialize_entry(f::ID, &i.ident())?;
            m.serialize_entry(f::SEQ, &i.seq())?;
        }
        if let Some(t) = i.nd_target() {
            m.serialize_entry(f::TGT, &Disp(t))?;
        }
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::XSUM, &i.checksum())?;
        if let Some(d) = i.redirect_dst() {
            m.serialize_entry(f::DST, &Disp(d))?;
        }
        if i.msg_type() == 2 {
            m.serialize_entry(f::MTU, &i.mtu())?;
        }
        if i.msg_type() == 136 {
            let fl = i.na_flags();
            m.serialize_entry(
                f::NA,
                &FlagNames([
                    (fl & 0x80 != 0, "router"),
                    (fl & 0x40 != 0, "solicited"),
                    (fl & 0x20 != 0, "override"),
                ]),
            )?;
        }
        if let Some((hops, flags, lifetime)) = i.ra_fields() {
            m.serialize_entry(
                f::RA,
                &RaJson {
                    hops,
                    flags,
                    lifetime,
                },
            )?;
        }
        if i.type_code().is_neighbor_discovery() && i.nd_options().next().is_some() {
            m.serialize_entry(f::ND, &NdOpts(*i))?;
        }
        if i.is_error() {
            if let Ok(inner) = ipv6::Packet::new_checked(i.payload()) {
                m.serialize_entry(f::IPV6, &Embedded6(inner))?;
            }
        }
        m.end()
    }
}

struct RaJson {
    hops: u8,
    flags: u8,
    lifetime: u16,
}

f::serialize_with_keys!([] RaJson {
    hops: f::HOPS,
    flags: f::FLAGS,
    lifetime: f::LIFETIME,
});

struct NdOpts<'a>(icmpv6::Packet<'a>);

impl Serialize for NdOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.nd_options().map_while(Result::ok).take(16) {
            seq.serialize_element(&NdOpt(o))?;
        }
        seq.end()
    }
}

struct NdOpt<'a>(icmpv6::NdOption<'a>);

impl Serialize for NdOpt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(f::TYPE, self.0.name())?;
        match self.0.link_addr() {
            Some(a) => m.serialize_entry(f::LLADDR, &Disp(a))?,
            None => m.serialize_entry(f::DATA, &Disp(wire::hex(self.0.data)))?,
        }
        m.end()
    }
}

struct Embedded6<'a>(ipv6::Packet<'a>);

impl Serialize for Embedded6<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::V, &6)?;
        m.serialize_entry(f::LBL, &ip.flow_label())?;
        m.serialize_entry(f::DSF, &(ip.traffic_class() >> 2))?;
        m.serialize_entry(f::ECN, &(ip.traffic_class() & 3))?;
        m.serialize_entry(f::TTL, &ip.hop_limit())?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        m.serialize_entry(f::PROTO, ip.protocol().name())?;
        if let Some((sp, dp)) = inner_ports(ip.protocol(), ip.payload()) {
            m.serialize_entry(f::SPORT, &sp)?;
            m.serialize_entry(f::DPORT, &dp)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_advertisement_fields() {
        let ra = RaJson {
            hops: 64,
            flags: 0xc0,
            lifetime: 1800,
        };
        assert_eq!(
            serde_json::to_string(&ra).unwrap(),
            r#"{"hops":64,"flags":192,"lifetime":1800}"#
        );
    }
}
