//! Community ID v1 (<https://github.com/corelight/community-id-spec>): a flow hash other
//! tools (Zeek, Suricata, Wireshark, Elastic) compute too, so a Cloud Logging entry can be
//! joined with their records.
//!
//! `"1:" + base64(sha1(seed:u16 · src · dst · proto:u8 · 0:u8 · sport:u16 · dport:u16))` with
//! the endpoints ordered so the smaller (address, port) comes first. ICMP uses (type,
//! counterpart type) as ports for request/response pairs (so both directions agree) and
//! (type, code) — unordered — for one-way messages, as Zeek does. Other IP protocols hash no
//! ports.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};
use wire::IpProtocol;

use crate::decode::{Decoded, Transport};

/// A Community ID, formatted without allocating (`1:` + 28 base64 characters).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; 30]);

impl CommunityId {
    /// The text form.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ICMPv4 request/response counterparts (Zeek's `ICMP4_counterpart`).
fn icmp4_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// ICMPv6 request/response counterparts (Zeek's `ICMP6_counterpart`).
fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

fn addr_bytes(a: &IpAddr, out: &mut [u8; 16]) -> usize {
    match a {
        IpAddr::V4(v) => {
            if let Some(o) = out.get_mut(..4) {
                o.copy_from_slice(&v.octets());
            }
            4
        }
        IpAddr::V6(v) => {
            out.copy_from_slice(&v.octets());
            16
        }
    }
}

/// Computes a Community ID from its parts. `ports` is `None` for protocols without ports;
/// for ICMP pass (type, code) and set `icmp` so the counterpart mapping applies.
pub fn compute(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> CommunityId {
    let (mut sport, mut dport) = ports.unwrap_or((0, 0));
    let mut one_way = false;
    if ports.is_some() && (proto == 1 || proto == 58) {
        let t = sport as u8;
        let counterpart = if proto == 1 {
            icmp4_counterpart(t)
        } else {
            icmp6_counterpart(t)
        };
        match counterpart {
            Some(c) => dport = u16::from(c),
            None => one_way = true,
        }
        sport = u16::from(t);
    }
    let (mut sb, mut db) = ([0u8; 16], [0u8; 16]);
    let sl = addr_bytes(&src, &mut sb);
    let dl = addr_bytes(&dst, &mut db);
    let (s, d) = (sb.get(..sl).unwrap_or(&[]), db.get(..dl).unwrap_or(&[]));
    let swap = !one_way && (s > d || (s == d && sport > dport));
    let (a, b, pa, pb) = if swap {
        (d, s, dport, sport)
    } else {
        (s, d, sport, dport)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(pa.to_be_bytes());
        h.update(pb.to_be_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; 30];
    out[0] = b'1';
    out[1] = b':';
    // 20 bytes encode to exactly 28 base64 characters.
    if let Some(o) = out.get_mut(2..) {
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, o);
    }
    CommunityId(out)
}

/// The Community ID of a decoded IP packet (seed 0), when it has IP addresses.
pub fn of(d: &Decoded<'_>) -> Option<CommunityId> {
    let (src, dst) = d.ip_addrs()?;
    let proto = d.ip_protocol()?;
    let ports = match d.transport {
        Some(Transport::Tcp(t)) => Some((t.src_port(), t.dst_port())),
        Some(Transport::Udp(u)) => Some((u.src_port(), u.dst_port())),
        Some(Transport::Icmpv4(i)) => Some((u16::from(i.msg_type()), u16::from(i.code()))),
        Some(Transport::Icmpv6(i)) => Some((u16::from(i.msg_type()), u16::from(i.code()))),
        Some(Transport::Other(IpProtocol::Sctp)) => sctp_ports(d),
        // A transport header that is not in this packet: the spec has no tuple for it.
        Some(Transport::Fragment(_)) | None if has_ports(proto) => return None,
        _ => None,
    };
    Some(compute(0, src, dst, u8::from(proto), ports))
}

fn has_ports(p: IpProtocol) -> bool {
    matches!(
        p,
        IpProtocol::Tcp
            | IpProtocol::Udp
            | IpProtocol::Icmp
            | IpProtocol::Icmpv6
            | IpProtocol::Sctp
    )
}

fn sctp_ports(d: &Decoded<'_>) -> Option<(u16, u16)> {
    let l4 = match d.network? {
        crate::Network::Ipv4(p) => p.payload(),
        crate::Network::Ipv6(p) => p.payload(),
        _ => return None,
    };
    match l4.get(..4)? {
        &[a, b, c, e] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, e]))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(proto: u8, s: &str, d: &str, ports: Option<(u16, u16)>) -> String {
        compute(0, s.parse().unwrap(), d.parse().unwrap(), proto, ports).to_string()
    }

    // The spec's baseline (baseline/baseline_deflt.json of community-id-spec).
    #[test]
    fn spec_baseline_vectors() {
        let v = [
            (
                58,
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                Some((135, 136)),
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "fe80::200:86ff:fe05:80da",
                Some((136, 135)),
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "fe80::200:86ff:fe05:80da",
                Some((135, 136)),
                "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            ),
            (
                58,
                "3ffe:501:1800:2345::2",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                Some((3, 0)),
                "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
            ),
            (
                58,
                "3ffe:501:410:0:2c0:dfff:fe47:33e",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                Some((1, 4)),
                "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
            ),
            (
                58,
                "3ffe:507:0:1:200:86ff:fe05:80da",
                "3ffe:501:0:1001::2",
                Some((128, 129)),
                "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            ),
            (
                58,
                "3ffe:501:0:1001::2",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                Some((129, 128)),
                "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            ),
            (
                58,
                "fe80::200:86ff:fe05:80da",
                "ff02::2",
                Some((133, 134)),
                "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                "ff02::1",
                Some((134, 133)),
                "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
            ),
            (
                1,
                "192.168.0.89",
                "192.168.0.1",
                Some((8, 0)),
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                1,
                "192.168.0.1",
                "192.168.0.89",
                Some((0, 8)),
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                1,
                "10.0.0.1",
                "10.0.0.2",
                Some((11, 0)),
                "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
            ),
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                "2607:f8b0:400c:c03::1a",
                Some((63943, 25)),
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                6,
                "2607:f8b0:400c:c03::1a",
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                Some((25, 63943)),
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                132,
                "192.168.170.8",
                "192.168.170.56",
                Some((7, 7)),
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            ),
            (
                132,
                "192.168.170.56",
                "192.168.170.8",
                Some((7, 7)),
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            ),
            (
                6,
                "128.232.110.120",
                "66.35.250.204",
                Some((34855, 80)),
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                6,
                "66.35.250.204",
                "128.232.110.120",
                Some((80, 34855)),
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                17,
                "192.168.1.52",
                "8.8.8.8",
                Some((54585, 53)),
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                17,
                "8.8.8.8",
                "192.168.1.52",
                Some((53, 54585)),
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                46,
                "10.1.12.1",
                "10.1.12.2",
                None,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
            (
                46,
                "10.1.12.2",
                "10.1.12.1",
                None,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
        ];
        for (proto, s, d, ports, want) in v {
            assert_eq!(id(proto, s, d, ports), want, "{proto} {s} {d} {ports:?}");
        }
    }

    #[test]
    fn from_a_real_packet() {
        let f = wire::pcapfile::File::new(include_bytes!("../../wire/testdata/veth.pcap")).unwrap();
        let p = f.records().nth(50).unwrap().unwrap().data;
        let d = crate::decode(1, p, p.len() as u32);
        let got = of(&d).unwrap();
        assert_eq!(
            got.to_string(),
            id(6, "10.77.0.1", "10.77.0.2", Some((55194, 8080)))
        );
        assert_eq!(got.as_str().len(), 30);
    }
}
