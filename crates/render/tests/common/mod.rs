//! Packet building and translation shared by the render integration tests.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use render::{Interface, Source, Translator};
use serde_json::Value;
use wire::{CapturedPacket, LinkType};

/// Writes into `out` (cleared first) a raw IPv4/TCP packet (LINKTYPE_RAW) from `src` to
/// `dst` (address, port) with sequence number `seq`, ACK number 1, `flags` and `payload`.
/// Checksums are left zero: the translator reports them, it does not require them.
pub fn write_tcp(
    out: &mut Vec<u8>,
    (src, sport): ([u8; 4], u16),
    (dst, dport): ([u8; 4], u16),
    seq: u32,
    flags: u8,
    payload: &[u8],
) {
    let total = 20 + 20 + payload.len();
    out.clear();
    out.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// [`write_tcp`] between the test client 10.88.0.1:40000 and the server 10.88.0.2:`port`,
/// in the direction `client` says.
pub fn tcp_packet(port: u16, client: bool, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let (c, s) = (([10, 88, 0, 1], 40000), ([10, 88, 0, 2], port));
    let (from, to) = if client { (c, s) } else { (s, c) };
    let mut out = Vec::new();
    write_tcp(&mut out, from, to, seq, flags, payload);
    out
}

/// Translates with `t` one TCP connection of [`tcp_packet`]s to server `port` on `iface`:
/// `packets` are (from the client, TCP flags, payload), a second apart from 1_700_000_000 s.
/// Each direction's sequence numbers advance by what it sent (SYN and FIN count one), so the
/// TCP analysis finds nothing to say. The output, and its lines parsed.
pub fn translate_connection<'p>(
    t: &mut Translator,
    iface: &Interface,
    port: u16,
    packets: impl IntoIterator<Item = (bool, u8, &'p [u8])>,
) -> (Vec<u8>, Vec<Value>) {
    let source = Source {
        interface: iface.clone(),
        linktype: LinkType::Raw,
    };
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut next = [1000u32, 5000u32];
    for (i, (client, flags, payload)) in packets.into_iter().enumerate() {
        let seq = &mut next[usize::from(!client)];
        let data = tcp_packet(port, client, flags, *seq, payload);
        *seq = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags & 0x03 != 0));
        let p = CapturedPacket {
            num: i as u64,
            ts_sec: 1_700_000_000,
            ts_nsec: (i as u32) * 1_000_000,
            wire_len: data.len() as u32,
            data: &data,
        };
        let start = out.len();
        t.translate(&source, &p, &mut out);
        lines.push(serde_json::from_slice(&out[start..]).unwrap());
    }
    (out, lines)
}

/// Translates with `t` every record of the pcap file `file`, captured on `iface`; the output
/// and each packet's bytes of it (as the translator reports them, checked).
pub fn translate_pcap(t: &mut Translator, iface: &Interface, file: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let pcap = wire::pcapfile::File::new(file).unwrap();
    let source = Source {
        interface: iface.clone(),
        linktype: pcap.linktype(),
    };
    let mut out = Vec::new();
    let mut lens = Vec::new();
    for r in pcap.records() {
        let before = out.len();
        let o = t.translate(&source, &r.unwrap(), &mut out);
        assert_eq!(o.bytes, out.len() - before);
        lens.push(o.bytes);
    }
    (out, lens)
}

/// The JSON lines of `out`, parsed.
pub fn parse_lines(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
