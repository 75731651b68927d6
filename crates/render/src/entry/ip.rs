//! Network layer: `L3` for IPv4 and IPv6 (options, extension headers, fragments).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use wire::{ipv4, ipv6};

use super::{Disp, Entry, FlagNames};
use crate::fast;
use crate::fields as f;

struct Proto(wire::IpProtocol, bool);

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NUM_KEY, &u8::from(self.0))?;
        if self.1 {
            m.serialize_entry(f::NAME, self.0.name())?;
        }
        m.end()
    }
}

struct IpEndpoints(std::net::IpAddr, std::net::IpAddr);

impl Serialize for IpEndpoints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(f::SRC, &fast::ip(self.0))?;
        m.serialize_entry(f::DST, &fast::ip(self.1))?;
        m.serialize_entry(f::FWD, &fast::ip_arrow(self.0, self.1))?;
        m.serialize_entry(f::BWD, &fast::ip_arrow(self.1, self.0))?;
        m.end()
    }
}

pub(super) struct Ipv4Json<'a> {
    pub(super) ip: ipv4::Packet<'a>,
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
}

impl Serialize for Ipv4Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.ip;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::V, &4)?;
        m.serialize_entry(f::LEN, &ip.total_len())?;
        m.serialize_entry(f::TTL, &ip.ttl())?;
        m.serialize_entry(f::ID, &ip.ident())?;
        m.serialize_entry(f::IHL, &ip.ihl())?;
        m.serialize_entry(f::TOS, &ip.tos())?;
        m.serialize_entry(f::FOFF, &ip.frag_offset())?;
        m.serialize_entry(f::XSUM, &ip.checksum())?;
        let flags = [
            (ip.evil(), "Evil"),
            (ip.dont_frag(), "DF"),
            (ip.more_frags(), "MF"),
        ];
        m.serialize_entry(f::FLAGS, &FlagNames(flags))?;
        if !ip.options_raw().is_empty() {
            m.serialize_entry(f::OPTS, &Ipv4Opts(*ip))?;
        }
        m.serialize_entry(f::PROTO, &Proto(ip.protocol(), true))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.host_pair))?;
        m.serialize_entry(f::ENDPOINTS, &IpEndpoints(ip.src().into(), ip.dst().into()))?;
        m.end()
    }
}

struct Ipv4Opts<'a>(ipv4::Packet<'a>);

impl Serialize for Ipv4Opts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.options().map_while(Result::ok) {
            seq.serialize_element(&Ipv4Opt(o))?;
        }
        seq.end()
    }
}

struct Ipv4Opt<'a>(ipv4::Ipv4Option<'a>);

impl Serialize for Ipv4Opt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::TYPE, &self.0.kind)?;
        m.serialize_entry(f::NAME, self.0.name())?;
        m.serialize_entry(f::DATA, &Disp(wire::hex(self.0.data)))?;
        m.end()
    }
}

pub(super) struct Ipv6Json<'a> {
    pub(super) ip: ipv6::Packet<'a>,
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
}

impl Serialize for Ipv6Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ip = &self.ip;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &fast::ip(ip.src().into()))?;
        m.serialize_entry(f::DST, &fast::ip(ip.dst().into()))?;
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::V, &6)?;
        m.serialize_entry(f::LEN, &ip.payload_len())?;
        m.serialize_entry(f::TTL, &ip.hop_limit())?;
        m.serialize_entry(f::CLS, &ip.traffic_class())?;
        m.serialize_entry(f::LBL, &ip.flow_label())?;
        if ip.extensions().next().is_some() {
            m.serialize_entry(f::EXT, &Ipv6Exts(*ip))?;
        }
        if let Some(fr) = ip.fragment() {
            m.serialize_entry(f::FRAG, &Frag(fr))?;
        }
        m.serialize_entry(f::PROTO, &Proto(ip.protocol(), true))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.host_pair))?;
        m.serialize_entry(f::ENDPOINTS, &IpEndpoints(ip.src().into(), ip.dst().into()))?;
        m.end()
    }
}

struct Ipv6Exts<'a>(ipv6::Packet<'a>);

impl Serialize for Ipv6Exts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.extensions().map(|x| x.kind.name()))
    }
}

struct Frag(ipv6::Fragment);

impl Serialize for Frag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::OFF, &self.0.offset)?;
        m.serialize_entry(f::MORE, &self.0.more)?;
        m.serialize_entry(f::ID, &self.0.ident)?;
        m.end()
    }
}
