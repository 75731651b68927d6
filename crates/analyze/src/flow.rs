//! Direction-independent flow identity.
//!
//! A [`FlowKey`] orders the two endpoints (address bytes, then port) so both directions of a
//! conversation give the same key; [`FlowKey::id`] hashes the whole ordered key with 64-bit
//! FNV-1a. Unlike the original (which summed the ports and the per-address hashes, so
//! 1000→80 and 999→81 collided), every byte of the real 5-tuple enters the hash in a fixed
//! order. ICMP has no ports: all ICMP between two hosts is one flow, as in the original.
//! ARP flows are keyed by the two protocol addresses, other link-layer frames by the two
//! MAC addresses and the EtherType.

use std::net::IpAddr;

use wire::{IpProtocol, LinkType};

use crate::decode::{decode, Decoded, Network, Transport};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Fnv {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Which side of a [`FlowKey`] sent a packet: the lower endpoint (`A`) or the higher (`B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The lower endpoint of the ordered key.
    A,
    /// The higher endpoint.
    B,
}

impl Side {
    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What kind of flow a key describes (the `<proto>` of the operation id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMPv4 or ICMPv6.
    Icmp,
    /// Another IP protocol (or a later fragment).
    L3,
    /// ARP.
    Arp,
    /// Another link-layer frame.
    L2,
}

impl FlowKind {
    /// Name as in the original's operation id (`…/flow/<name>:<id>`).
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Tcp => "tcp",
            FlowKind::Udp => "udp",
            FlowKind::Icmp => "icmp",
            FlowKind::L3 => "l3",
            FlowKind::Arp => "arp",
            FlowKind::L2 => "l2",
        }
    }
}

/// An endpoint: up to 16 address bytes (4 for IPv4, 6 for a MAC) and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint {
    len: u8,
    addr: [u8; 16],
    port: u16,
}

impl Endpoint {
    fn new(addr: &[u8], port: u16) -> Self {
        let mut a = [0u8; 16];
        let n = addr.len().min(16);
        if let (Some(dst), Some(src)) = (a.get_mut(..n), addr.get(..n)) {
            dst.copy_from_slice(src);
        }
        Endpoint {
            len: n as u8,
            addr: a,
            port,
        }
    }

    fn ip(ip: IpAddr, port: u16) -> Self {
        match ip {
            IpAddr::V4(a) => Endpoint::new(&a.octets(), port),
            IpAddr::V6(a) => Endpoint::new(&a.octets(), port),
        }
    }

    fn bytes(&self) -> &[u8] {
        self.addr.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// A direction-independent flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    kind: FlowKind,
    /// IP protocol number, or the EtherType for L2 flows.
    proto: u16,
    lo: Endpoint,
    hi: Endpoint,
}

impl FlowKey {
    fn ordered(kind: FlowKind, proto: u16, src: Endpoint, dst: Endpoint) -> (Self, Side) {
        let (lo, hi, side) = if (src.bytes(), src.port) <= (dst.bytes(), dst.port) {
            (src, dst, Side::A)
        } else {
            (dst, src, Side::B)
        };
        (
            FlowKey {
                kind,
                proto,
                lo,
                hi,
            },
            side,
        )
    }

    /// The key of a decoded packet and the side that sent it; `None` when not even the link
    /// layer was decoded.
    pub fn of(d: &Decoded<'_>) -> Option<(Self, Side)> {
        match d.network? {
            Network::Ipv4(_) | Network::Ipv6(_) => {
                let (src, dst) = d.ip_addrs()?;
                let proto = d.ip_protocol().map(u8::from).unwrap_or(0);
                let (kind, sport, dport) = match d.transport {
                    Some(Transport::Tcp(t)) => (FlowKind::Tcp, t.src_port(), t.dst_port()),
                    Some(Transport::Udp(u)) => (FlowKind::Udp, u.src_port(), u.dst_port()),
                    Some(Transport::Icmpv4(_)) | Some(Transport::Icmpv6(_)) => {
                        (FlowKind::Icmp, 0, 0)
                    }
                    _ => match IpProtocol::from(proto) {
                        IpProtocol::Tcp => (FlowKind::Tcp, 0, 0),
                        IpProtocol::Udp => (FlowKind::Udp, 0, 0),
                        IpProtocol::Icmp | IpProtocol::Icmpv6 => (FlowKind::Icmp, 0, 0),
                        _ => (FlowKind::L3, 0, 0),
                    },
                };
                Some(FlowKey::ordered(
                    kind,
                    u16::from(proto),
                    Endpoint::ip(src, sport),
                    Endpoint::ip(dst, dport),
                ))
            }
            Network::Arp(a) => Some(FlowKey::ordered(
                FlowKind::Arp,
                0x0806,
                Endpoint::new(a.sender_proto(), 0),
                Endpoint::new(a.target_proto(), 0),
            )),
            Network::Other(t) => {
                let (src, dst) = match d.link {
                    crate::Link::Ethernet(f) => (f.src().0, f.dst().0),
                    crate::Link::Sll(p) => (p.addr().0, &[][..]),
                    crate::Link::Sll2(p) => (p.addr().0, &[][..]),
                    _ => (&[][..], &[][..]),
                };
                let raw = match t {
                    wire::EtherType::Length(n) | wire::EtherType::Unknown(n) => n,
                    _ => 0,
                };
                Some(FlowKey::ordered(
                    FlowKind::L2,
                    raw,
                    Endpoint::new(src, 0),
                    Endpoint::new(dst, 0),
                ))
            }
        }
    }

    /// The flow's kind.
    pub fn kind(&self) -> FlowKind {
        self.kind
    }

    /// The 64-bit flow id (FNV-1a of kind, protocol and both ordered endpoints).
    pub fn id(&self) -> u64 {
        let mut h = Fnv::default();
        h.write(&[self.kind as u8]);
        h.write(&self.proto.to_be_bytes());
        for e in [&self.lo, &self.hi] {
            h.write(&[e.len]);
            h.write(e.bytes());
            h.write(&e.port.to_be_bytes());
        }
        h.finish()
    }

    /// Hash of the two addresses alone (`L3.flow`: all traffic between two hosts).
    pub fn host_pair_id(&self) -> u64 {
        let mut h = Fnv::default();
        let (a, b) = if self.lo.bytes() <= self.hi.bytes() {
            (&self.lo, &self.hi)
        } else {
            (&self.hi, &self.lo)
        };
        for e in [a, b] {
            h.write(&[e.len]);
            h.write(e.bytes());
        }
        h.finish()
    }

    /// Hash of the protocol and the two ports alone (`L4.flow`).
    pub fn port_pair_id(&self) -> u64 {
        let mut h = Fnv::default();
        h.write(&self.proto.to_be_bytes());
        let (a, b) = (
            self.lo.port.min(self.hi.port),
            self.lo.port.max(self.hi.port),
        );
        h.write(&a.to_be_bytes());
        h.write(&b.to_be_bytes());
        h.finish()
    }
}

/// Direction-independent hash of a packet's flow, computed from its headers only (no L7):
/// the daemon routes all packets of one connection to the same worker with it. It equals the
/// entry's `flow` id (the translator's [`FlowKey::id`]); packets that cannot be decoded hash to 0.
pub fn shard_key(linktype: LinkType, data: &[u8]) -> u64 {
    let d = decode(linktype, data, data.len() as u32);
    FlowKey::of(&d).map(|(k, _)| k.id()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    const ETHERNET: LinkType = LinkType::Ethernet;

    fn veth(n: usize) -> &'static [u8] {
        wire::pcapfile::File::new(include_bytes!("../../wire/testdata/veth.pcap"))
            .unwrap()
            .records()
            .nth(n)
            .unwrap()
            .unwrap()
            .data
    }

    fn key(p: &[u8]) -> (FlowKey, Side) {
        FlowKey::of(&decode(ETHERNET, p, p.len() as u32)).unwrap()
    }

    #[test]
    fn both_directions_same_id() {
        let (syn, s1) = key(veth(50));
        let (synack, s2) = key(veth(51));
        assert_eq!(syn.id(), synack.id());
        assert_ne!(s1, s2);
        assert_eq!(syn.kind().name(), "tcp");
        assert_eq!(shard_key(ETHERNET, veth(50)), syn.id());
        assert_eq!(shard_key(ETHERNET, veth(51)), syn.id());
        // A different connection between the same hosts differs.
        assert_ne!(key(veth(65)).0.id(), syn.id());
        assert_eq!(key(veth(65)).0.host_pair_id(), syn.host_pair_id());
    }

    #[test]
    fn no_port_sum_collisions() {
        let mk = |sp: u16, dp: u16| {
            let a = Endpoint::new(&[10, 0, 0, 1], sp);
            let b = Endpoint::new(&[10, 0, 0, 2], dp);
            FlowKey::ordered(FlowKind::Tcp, 6, a, b).0.id()
        };
        assert_ne!(mk(1000, 80), mk(999, 81));
        assert_eq!(mk(1000, 80), {
            let a = Endpoint::new(&[10, 0, 0, 2], 80);
            let b = Endpoint::new(&[10, 0, 0, 1], 1000);
            FlowKey::ordered(FlowKind::Tcp, 6, a, b).0.id()
        });
    }

    #[test]
    fn icmp_arp_and_garbage() {
        let (req, _) = key(veth(10));
        let (rep, _) = key(veth(11));
        assert_eq!(req.id(), rep.id());
        assert_eq!(req.kind(), FlowKind::Icmp);
        let (arq, _) = key(veth(8));
        let (arp, _) = key(veth(9));
        assert_eq!(arq.kind(), FlowKind::Arp);
        assert_eq!(arq.id(), arp.id());
        assert_eq!(shard_key(ETHERNET, &[1, 2]), 0);
    }
}
