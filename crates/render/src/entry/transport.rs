//! Transport layer: `L4` for TCP (flags, options, analysis) and UDP.

use std::fmt::Display;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use wire::tcp::{Flags, TcpOption};
use wire::{tcp, udp};

use super::{Arrow, Disp, Entry};
use crate::fast;
use crate::fields as f;

struct PortEndpoints(u16, u16);

impl Serialize for PortEndpoints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(f::SRC, &fast::dec(u64::from(self.0)))?;
        m.serialize_entry(f::DST, &fast::dec(u64::from(self.1)))?;
        m.serialize_entry(f::FWD, &fast::port_arrow(self.0, self.1))?;
        m.serialize_entry(f::BWD, &fast::port_arrow(self.1, self.0))?;
        m.end()
    }
}

fn service(tcp: bool, port: u16) -> Option<&'static str> {
    if tcp {
        analyze::services::tcp(port)
    } else {
        analyze::services::udp(port)
    }
}

pub(super) struct TcpJson<'a> {
    pub(super) t: tcp::Packet<'a>,
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
}

impl Serialize for TcpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.t;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &t.src_port())?;
        m.serialize_entry(f::DST, &t.dst_port())?;
        if let Some(a) = &self.e.flow.tcp {
            let j = crate::tcp::AnalysisJson {
                a,
                debug: self.debug,
            };
            if j.worth_writing() {
                m.serialize_entry(f::ANALYSIS, &j)?;
            }
        }
        // INFO: the rest is in `message` already.
        if !self.debug {
            return m.end();
        }
        m.serialize_entry(f::LEN, &self.e.decoded.payload.len())?;
        m.serialize_entry(f::FLAGS, &TcpFlags(t.flags()))?;
        m.serialize_entry(f::SEQ, &t.seq())?;
        m.serialize_entry(f::ACK, &t.ack())?;
        m.serialize_entry(f::WIN, &t.window())?;
        if let Some(shift) = self.e.flow.window_shift {
            m.serialize_entry(f::XWIN, &(u32::from(t.window()) << shift))?;
        }
        if let Some(n) = service(true, t.src_port()) {
            m.serialize_entry(f::SPROTO, n)?;
        }
        if let Some(n) = service(true, t.dst_port()) {
            m.serialize_entry(f::DPROTO, n)?;
        }
        m.serialize_entry(f::OFF, &t.data_offset())?;
        m.serialize_entry(f::XSUM, &t.checksum())?;
        m.serialize_entry(f::URG, &t.urgent())?;
        m.serialize_entry(f::OPTS, &TcpOpts(*t))?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.port_pair))?;
        m.serialize_entry(f::ENDPOINTS, &PortEndpoints(t.src_port(), t.dst_port()))?;
        m.end()
    }
}

struct TcpFlags(Flags);

impl Serialize for TcpFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fl = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::STR, &Disp(fl))?;
        m.serialize_entry(f::DEC, &(fl.0 & 0x1ff))?;
        m.serialize_entry(f::BIN, &Disp(format_args!("{:#b}", fl.0 & 0x1ff)))?;
        m.serialize_entry(f::HEX, &Disp(format_args!("{:#x}", fl.0 & 0x1ff)))?;
        m.serialize_entry(f::MAP, &FlagMap(fl))?;
        if fl.0 & Flags::RESERVED != 0 {
            m.serialize_entry(f::RES, &(fl.0 >> 9))?;
        }
        m.end()
    }
}

/// `L4.flags.map`: every flag by its wire name, in the original's order.
struct FlagMap(Flags);

impl FlagMap {
    const ORDER: [u16; 9] = [
        Flags::SYN,
        Flags::ACK,
        Flags::PSH,
        Flags::FIN,
        Flags::RST,
        Flags::URG,
        Flags::ECE,
        Flags::CWR,
        Flags::NS,
    ];
}

impl Serialize for FlagMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Self::ORDER.len()))?;
        for (name, on) in self.0.each(&Self::ORDER) {
            m.serialize_entry(name, &on)?;
        }
        m.end()
    }
}

struct TcpOpts<'a>(tcp::Packet<'a>);

impl Serialize for TcpOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for o in self.0.options().map_while(Result::ok) {
            seq.serialize_element(&TcpOpt(o))?;
        }
        seq.end()
    }
}

/// One option in the original's shape: a bare name for valueless options, else
/// `{Name: [values…]}`; hex values keep every digit (the original stripped trailing zeros).
struct TcpOpt<'a>(TcpOption<'a>);

struct OneKey<K, V>(K, V);

impl<K: Display, V: Serialize> Serialize for OneKey<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&Disp(&self.0), &self.1)?;
        m.end()
    }
}

struct HexData<'a>(&'a [u8]);

impl Serialize for HexData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq([Disp(format_args!("0x{}", wire::hex(self.0)))])
    }
}

struct WindowScale(u8);

impl Serialize for WindowScale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::HEX, &Disp(format_args!("0x{:02x}", self.0)))?;
        m.serialize_entry(f::DEC, &self.0)?;
        m.serialize_entry(f::SCALE, &Disp(1u32 << self.0.min(14)))?;
        m.end()
    }
}

struct SackBlocks<'a>(TcpOption<'a>);

impl Serialize for SackBlocks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.sack_blocks().map(|(l, r)| Disp(Arrow(l, r))))
    }
}

impl Serialize for TcpOpt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        match o {
            TcpOption::EndOfList | TcpOption::Nop | TcpOption::SackPermitted => {
                s.serialize_str(o.name())
            }
            TcpOption::Mss(v) => OneKey(
                o.name(),
                [Disp(format_args!("{v}")), Disp(format_args!("0x{v:04x}"))],
            )
            .serialize(s),
            TcpOption::WindowScale(v) => OneKey(o.name(), [WindowScale(v)]).serialize(s),
            TcpOption::Timestamps { tsval, tsecr } => OneKey(
                o.name(),
                [
                    Disp(format_args!("{tsval}")),
                    Disp(format_args!("{tsecr}")),
                    Disp(format_args!("0x{tsval:08x}{tsecr:08x}")),
                ],
            )
            .serialize(s),
            TcpOption::Sack(_) => OneKey(o.name(), SackBlocks(o)).serialize(s),
            TcpOption::UserTimeout(v) => OneKey(o.name(), [v]).serialize(s),
            TcpOption::Md5(d) | TcpOption::Ao(d) | TcpOption::Mptcp(d) | TcpOption::FastOpen(d) => {
                OneKey(o.name(), HexData(d)).serialize(s)
            }
            TcpOption::Unknown { kind, data } => {
                OneKey(format_args!("Unknown({kind})"), HexData(data)).serialize(s)
            }
        }
    }
}

pub(super) struct UdpJson<'a> {
    pub(super) u: udp::Packet<'a>,
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
}

impl Serialize for UdpJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = &self.u;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::SRC, &u.src_port())?;
        m.serialize_entry(f::DST, &u.dst_port())?;
        m.serialize_entry(f::SIZE, &self.e.decoded.payload.len())?;
        if !self.debug {
            return m.end();
        }
        if let Some(n) = service(false, u.src_port()) {
            m.serialize_entry(f::SPROTO, n)?;
        }
        if let Some(n) = service(false, u.dst_port()) {
            m.serialize_entry(f::DPROTO, n)?;
        }
        m.serialize_entry(f::LEN, &u.len())?;
        m.serialize_entry(f::XSUM, &u.checksum())?;
        m.serialize_entry(f::FLOW, &fast::dec(self.e.flow.port_pair))?;
        m.serialize_entry(f::ENDPOINTS, &PortEndpoints(u.src_port(), u.dst_port()))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(v: T) -> String {
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn flag_map_keeps_the_original_order() {
        assert_eq!(
            json(FlagMap(Flags(Flags::SYN | Flags::NS))),
            r#"{"SYN":true,"ACK":false,"PSH":false,"FIN":false,"RST":false,"URG":false,"ECE":false,"CWR":false,"NS":true}"#
        );
        // The reserved bits have no name: `res` says them, not the map.
        assert_eq!(
            json(FlagMap(Flags(0xfff))),
            r#"{"SYN":true,"ACK":true,"PSH":true,"FIN":true,"RST":true,"URG":true,"ECE":true,"CWR":true,"NS":true}"#
        );
    }

    #[test]
    fn every_option_keyed_by_its_name() {
        let sack = [0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 2, 0];
        for (o, want) in [
            (TcpOption::Nop, r#""NOP""#),
            (TcpOption::SackPermitted, r#""SACKPermitted""#),
            (TcpOption::Mss(1460), r#"{"MSS":["1460","0x05b4"]}"#),
            (
                TcpOption::WindowScale(7),
                r#"{"WindowScale":[{"hex":"0x07","dec":7,"scale":"128"}]}"#,
            ),
            (
                TcpOption::Timestamps { tsval: 1, tsecr: 2 },
                r#"{"Timestamps":["1","2","0x0000000100000002"]}"#,
            ),
            (TcpOption::Sack(&sack), r#"{"SACK":["1->9","256->512"]}"#),
            (TcpOption::UserTimeout(600), r#"{"UserTimeout":[600]}"#),
            (TcpOption::FastOpen(&[0xab]), r#"{"FastOpen":["0xab"]}"#),
            (
                TcpOption::Unknown {
                    kind: 99,
                    data: &[1],
                },
                r#"{"Unknown(99)":["0x01"]}"#,
            ),
        ] {
            assert_eq!(json(TcpOpt(o)), want);
        }
    }
}
