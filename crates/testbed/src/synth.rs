//! Synthetic mixed traffic written as a classic pcap file (Ethernet, microseconds): TCP
//! connections (handshake, an HTTP/1.1 request and response, FIN teardown) over IPv4 and
//! IPv6, DNS over UDP (query and answer), ICMP and ICMPv6 echo, ARP request and reply.
//! Checksums are correct so tshark and tcpdump decode every packet. Conversations are
//! interleaved (several open at once) like real traffic; the output is deterministic for a
//! given seed. [`write_http_pcap`] writes HTTP-heavy traffic instead: HTTP/1.1 and h2c
//! (HPACK literal fields) keep-alive connections with trace headers. Shared by pcapd's tests and its benchmark generator
//! (`crates/pcapd/examples/gen-pcap.rs`).

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::rng::Rng;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The addresses of a packet: source, then destination.
#[derive(Clone, Copy)]
pub enum Ip {
    /// IPv4.
    V4(Ipv4Addr, Ipv4Addr),
    /// IPv6.
    V6(Ipv6Addr, Ipv6Addr),
}

impl Ip {
    /// The other direction.
    pub fn reversed(self) -> Ip {
        match self {
            Ip::V4(a, b) => Ip::V4(b, a),
            Ip::V6(a, b) => Ip::V6(b, a),
        }
    }
}

const MAC_A: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
const MAC_B: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x01];

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An IP packet carrying `l4` (whose checksum field at `csum_at` is filled in here).
fn ip_packet(ip: Ip, proto: u8, mut l4: Vec<u8>, csum_at: Option<usize>, id: u16) -> Vec<u8> {
    let len = l4.len();
    let (ethertype, header) = match ip {
        Ip::V4(src, dst) => {
            if let Some(at) = csum_at {
                let mut acc = sum16(&src.octets(), 0);
                acc = sum16(&dst.octets(), acc);
                acc += u32::from(proto) + len as u32;
                let c = fold(sum16(&l4, acc));
                // UDP: a computed 0 is sent as all ones (RFC 768).
                let c = if c == 0 && proto == 17 { 0xffff } else { c };
                l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&src.octets());
            h[16..20].copy_from_slice(&dst.octets());
            let c = fold(sum16(&h, 0));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            (0x0800, h)
        }
        Ip::V6(src, dst) => {
            if let Some(at) = csum_at {
                let mut acc = sum16(&src.octets(), 0);
                acc = sum16(&dst.octets(), acc);
                acc += len as u32 + u32::from(proto);
                let c = fold(sum16(&l4, acc));
                let c = if c == 0 && proto == 17 { 0xffff } else { c };
                l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
            h[6] = proto;
            h[7] = 64;
            h[8..24].copy_from_slice(&src.octets());
            h[24..40].copy_from_slice(&dst.octets());
            (0x86dd, h)
        }
    };
    let mut packet = header;
    packet.extend_from_slice(&l4);
    ethernet(MAC_B, MAC_A, ethertype, &packet)
}

/// TCP flag SYN.
pub const SYN: u8 = 0x02;
/// TCP flag ACK.
pub const ACK: u8 = 0x10;
/// TCP flag PSH.
pub const PSH: u8 = 0x08;
/// TCP flag FIN.
pub const FIN: u8 = 0x01;

/// One keep-alive exchange on a connection: the request, the server's ACK, the response in
/// 1448-byte segments, the client's ACK. `(c, s)` (client, server sequence) move past the data.
fn push_exchange(
    packets: &mut Vec<Vec<u8>>,
    (ip, back): (Ip, Ip),
    (sport, dport): (u16, u16),
    (c, s): (&mut u32, &mut u32),
    (request, response): (&[u8], &[u8]),
    ipid: u16,
) {
    packets.push(tcp(ip, sport, dport, *c, *s, PSH | ACK, request, ipid));
    *c = c.wrapping_add(request.len() as u32);
    packets.push(tcp(back, dport, sport, *s, *c, ACK, &[], ipid));
    for segment in response.chunks(1448) {
        packets.push(tcp(
            back,
            dport,
            sport,
            *s,
            *c,
            PSH | ACK,
            segment,
            ipid + 1,
        ));
        *s = s.wrapping_add(segment.len() as u32);
    }
    packets.push(tcp(ip, sport, dport, *c, *s, ACK, &[], ipid + 1));
}

/// The end of a connection: the client's FIN, the server's FIN, the last ACK.
fn push_close(
    packets: &mut Vec<Vec<u8>>,
    (ip, back): (Ip, Ip),
    (sport, dport): (u16, u16),
    (c, s): (u32, u32),
    id: u16,
) {
    let (c1, s1) = (c.wrapping_add(1), s.wrapping_add(1));
    packets.push(tcp(ip, sport, dport, c, s, FIN | ACK, &[], id + 3));
    packets.push(tcp(back, dport, sport, s, c1, FIN | ACK, &[], id + 3));
    packets.push(tcp(ip, sport, dport, c1, s1, ACK, &[], id + 5));
}

/// An Ethernet frame with a TCP segment (SYNs carry MSS, SACK-permitted and window scale
/// options); checksums correct.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    ip: Ip,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    id: u16,
) -> Vec<u8> {
    let syn = flags & SYN != 0;
    let options: &[u8] = if syn {
        // MSS 1460, SACK permitted, window scale 7 (padded to 12 bytes).
        &[2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1]
    } else {
        &[]
    };
    let header_len = 20 + options.len();
    let mut s = vec![0u8; header_len];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&seq.to_be_bytes());
    s[8..12].copy_from_slice(&ack.to_be_bytes());
    s[12] = ((header_len / 4) as u8) << 4;
    s[13] = flags;
    s[14..16].copy_from_slice(&64240u16.to_be_bytes());
    s[20..].copy_from_slice(options);
    s.extend_from_slice(payload);
    ip_packet(ip, 6, s, Some(16), id)
}

/// An Ethernet frame with a UDP datagram; checksums correct.
pub fn udp(ip: Ip, sport: u16, dport: u16, payload: &[u8], id: u16) -> Vec<u8> {
    let mut d = vec![0u8; 8];
    d[0..2].copy_from_slice(&sport.to_be_bytes());
    d[2..4].copy_from_slice(&dport.to_be_bytes());
    d[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(payload);
    ip_packet(ip, 17, d, Some(6), id)
}

fn icmp_echo(ip: Ip, reply: bool, ident: u16, seq: u16, id: u16) -> Vec<u8> {
    let mut m = vec![0u8; 8];
    let v6 = matches!(ip, Ip::V6(..));
    m[0] = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m.extend((0..48u8).map(|i| i.wrapping_add(0x10)));
    if v6 {
        ip_packet(ip, 58, m, Some(2), id)
    } else {
        let c = fold(sum16(&m, 0));
        m[2..4].copy_from_slice(&c.to_be_bytes());
        ip_packet(ip, 1, m, None, id)
    }
}

fn arp(reply: bool, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 28];
    a[0..2].copy_from_slice(&1u16.to_be_bytes());
    a[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    a[4] = 6;
    a[5] = 4;
    a[6..8].copy_from_slice(&(if reply { 2u16 } else { 1 }).to_be_bytes());
    let (smac, tmac) = if reply {
        (MAC_B, MAC_A)
    } else {
        (MAC_A, [0; 6])
    };
    a[8..14].copy_from_slice(&smac);
    a[14..18].copy_from_slice(&sender.octets());
    a[18..24].copy_from_slice(&tmac);
    a[24..28].copy_from_slice(&target.octets());
    let dst = if reply { MAC_A } else { [0xff; 6] };
    let mut frame = ethernet(dst, smac, 0x0806, &a);
    frame.resize(60, 0); // minimum Ethernet frame
    frame
}

/// Appends `name` in DNS wire form (labels, no compression).
pub fn dns_name(name: &str, out: &mut Vec<u8>) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A DNS message for `name` (A, IN): a query, or with `answer` its response.
pub fn dns(query_id: u16, name: &str, answer: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&query_id.to_be_bytes());
    let flags: u16 = if answer.is_some() { 0x8180 } else { 0x0100 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(u16::from(answer.is_some())).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(name, &mut m);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if let Some(addr) = answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        m.extend_from_slice(&addr.octets());
    }
    m
}

/// One conversation: its packets, produced one at a time.
struct Conversation {
    packets: std::vec::IntoIter<Vec<u8>>,
}

fn conversation(rng: &mut Rng, n: u64) -> Conversation {
    let client4 = Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8);
    let server4 = Ipv4Addr::new(10, 0, 0, 1 + (n % 20) as u8);
    let client6 = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, (n >> 16) as u16, n as u16);
    let server6 = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1 + (n % 20) as u16);
    let id = (n as u16).wrapping_mul(7);
    let kind = rng.below(100);
    let mut packets = Vec::new();
    if kind < 23 {
        // TCP + HTTP/1.1, IPv6 for one connection in four.
        let ip = if kind % 4 == 0 {
            Ip::V6(client6, server6)
        } else {
            Ip::V4(client4, server4)
        };
        let back = ip.reversed();
        let sport = 32768 + (rng.below(28000) as u16);
        let dport = 8080;
        let (c0, s0) = (rng.next() as u32, rng.next() as u32);
        packets.push(tcp(ip, sport, dport, c0, 0, SYN, &[], id));
        packets.push(tcp(
            back,
            dport,
            sport,
            s0,
            c0.wrapping_add(1),
            SYN | ACK,
            &[],
            id,
        ));
        let (mut c, mut s) = (c0.wrapping_add(1), s0.wrapping_add(1));
        packets.push(tcp(ip, sport, dport, c, s, ACK, &[], id + 1));
        // A keep-alive connection: 1 to 6 exchanges, responses of 1 to 3 segments.
        let exchanges = 1 + rng.below(6);
        for exchange in 0..exchanges {
            let request = format!(
                "GET /api/items/{n}/{exchange}?page={} HTTP/1.1\r\nHost: backend.internal:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
                rng.below(10)
            );
            let body_len = 64 + rng.below(3500) as usize;
            let body: String = (0..body_len)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n{body}"
            );
            let ipid = id.wrapping_add(2 + 4 * exchange as u16);
            push_exchange(
                &mut packets,
                (ip, back),
                (sport, dport),
                (&mut c, &mut s),
                (request.as_bytes(), response.as_bytes()),
                ipid,
            );
        }
        push_close(&mut packets, (ip, back), (sport, dport), (c, s), id);
    } else if kind < 68 {
        let ip = Ip::V4(client4, Ipv4Addr::new(10, 0, 0, 53));
        let name = format!("svc{}.example.internal", n % 500);
        let sport = 32768 + (rng.below(28000) as u16);
        let qid = rng.next() as u16;
        packets.push(udp(ip, sport, 53, &dns(qid, &name, None), id));
        let answer = Ipv4Addr::new(10, 2, (n >> 8) as u8, n as u8);
        packets.push(udp(
            ip.reversed(),
            53,
            sport,
            &dns(qid, &name, Some(answer)),
            id,
        ));
    } else if kind < 84 {
        let ip = if kind % 2 == 0 {
            Ip::V4(client4, server4)
        } else {
            Ip::V6(client6, server6)
        };
        let ident = rng.next() as u16;
        for seq in 1..=2 {
            packets.push(icmp_echo(ip, false, ident, seq, id + seq));
            packets.push(icmp_echo(ip.reversed(), true, ident, seq, id + seq));
        }
    } else {
        packets.push(arp(false, client4, server4));
        packets.push(arp(true, server4, client4));
    }
    Conversation {
        packets: packets.into_iter(),
    }
}

/// Appends a literal header field with a new name and raw (not Huffman) strings, with
/// incremental indexing (RFC 7541 §6.2.1) or without (§6.2.2): the tests' HPACK encoder (the
/// analyser only decodes).
pub fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &[u8], index: bool) {
    out.push(if index { 0x40 } else { 0x00 });
    for s in [name.as_bytes(), value] {
        // 7-bit prefix, Huffman bit clear.
        hpack_integer(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }
}

/// Appends `v` as an HPACK integer (RFC 7541 §5.1) with an `n`-bit prefix, the first
/// byte's other bits `first`.
pub fn hpack_integer(out: &mut Vec<u8>, first: u8, n: u32, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// Appends an HTTP/2 frame (RFC 9113 §4.1).
pub fn h2_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// [`h2_frame`] as a buffer of its own.
pub fn h2_frame_of(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    h2_frame(&mut out, kind, flags, stream, payload);
    out
}

/// A trace header (traceparent, X-Cloud-Trace-Context, or none), one third each.
fn trace_header(rng: &mut Rng) -> Option<(&'static str, String)> {
    let id = u128::from(rng.next()) << 64 | u128::from(rng.next()) | 1;
    let span = rng.next() | 1;
    match rng.below(3) {
        0 => Some(("traceparent", format!("00-{id:032x}-{span:016x}-01"))),
        1 => Some((
            "x-cloud-trace-context",
            format!("{id:032x}/{};o=1", span >> 1),
        )),
        _ => None,
    }
}

/// One HTTP-heavy conversation: a keep-alive TCP connection of 1 to 6 exchanges, HTTP/1.1
/// (port 8080) or h2c (port 50051: preface, SETTINGS both ways, one stream per request,
/// HEADERS with literal HPACK fields, DATA frames cut into 1448-byte segments so frames
/// cross segment boundaries), with trace headers on two requests in three.
fn http_conversation(rng: &mut Rng, n: u64) -> Conversation {
    let client4 = Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8);
    let server4 = Ipv4Addr::new(10, 0, 0, 1 + (n % 20) as u8);
    let client6 = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, (n >> 16) as u16, n as u16);
    let server6 = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1 + (n % 20) as u16);
    let id = (n as u16).wrapping_mul(7);
    let ip = if rng.below(4) == 0 {
        Ip::V6(client6, server6)
    } else {
        Ip::V4(client4, server4)
    };
    let back = ip.reversed();
    let h2 = rng.below(2) == 0;
    let sport = 32768 + (rng.below(28000) as u16);
    let dport = if h2 { 50051 } else { 8080 };
    let (c0, s0) = (rng.next() as u32, rng.next() as u32);
    let mut packets = vec![
        tcp(ip, sport, dport, c0, 0, SYN, &[], id),
        tcp(
            back,
            dport,
            sport,
            s0,
            c0.wrapping_add(1),
            SYN | ACK,
            &[],
            id,
        ),
    ];
    let (mut c, mut s) = (c0.wrapping_add(1), s0.wrapping_add(1));
    packets.push(tcp(ip, sport, dport, c, s, ACK, &[], id + 1));
    if h2 {
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        h2_frame(
            &mut hello,
            4,
            0,
            0,
            &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0x10, 0, 0],
        );
        h2_frame(&mut hello, 8, 0, 0, &[0, 0x0f, 0, 1]);
        packets.push(tcp(ip, sport, dport, c, s, PSH | ACK, &hello, id + 1));
        c = c.wrapping_add(hello.len() as u32);
        let mut reply = Vec::new();
        h2_frame(&mut reply, 4, 0, 0, &[0, 3, 0, 0, 0, 128]);
        h2_frame(&mut reply, 4, 1, 0, &[]);
        packets.push(tcp(back, dport, sport, s, c, PSH | ACK, &reply, id + 1));
        s = s.wrapping_add(reply.len() as u32);
        let mut ack = Vec::new();
        h2_frame(&mut ack, 4, 1, 0, &[]);
        packets.push(tcp(ip, sport, dport, c, s, PSH | ACK, &ack, id + 2));
        c = c.wrapping_add(ack.len() as u32);
    }
    let exchanges = 1 + rng.below(6);
    for exchange in 0..exchanges {
        let ipid = id.wrapping_add(3 + 4 * exchange as u16);
        let path = format!("/api/items/{n}/{exchange}?page={}", rng.below(10));
        let trace = trace_header(rng);
        let body_len = 64 + rng.below(3500) as usize;
        let body: String = (0..body_len)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let (request, response) = if h2 {
            let stream = 1 + 2 * exchange as u32;
            let mut block = vec![0x82, 0x86]; // :method GET, :scheme http (static table)
            hpack_literal(&mut block, ":path", path.as_bytes(), false);
            hpack_literal(&mut block, ":authority", b"backend.internal:50051", false);
            hpack_literal(&mut block, "user-agent", b"grpc-go/1.62.0", false);
            hpack_literal(&mut block, "accept", b"*/*", false);
            if let Some((name, value)) = &trace {
                hpack_literal(&mut block, name, value.as_bytes(), false);
            }
            let mut req = Vec::new();
            h2_frame(&mut req, 1, 0x05, stream, &block);
            let mut head = vec![0x88]; // :status 200
            hpack_literal(&mut head, "content-type", b"text/plain", false);
            hpack_literal(
                &mut head,
                "content-length",
                body_len.to_string().as_bytes(),
                false,
            );
            let mut resp = Vec::new();
            h2_frame(&mut resp, 1, 0x04, stream, &head);
            h2_frame(&mut resp, 0, 0x01, stream, body.as_bytes());
            (req, resp)
        } else {
            let trace = trace
                .map(|(n, v)| format!("{n}: {v}\r\n"))
                .unwrap_or_default();
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: backend.internal:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n{trace}\r\n"
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n{body}"
            );
            (req.into_bytes(), resp.into_bytes())
        };
        push_exchange(
            &mut packets,
            (ip, back),
            (sport, dport),
            (&mut c, &mut s),
            (&request, &response),
            ipid,
        );
    }
    push_close(&mut packets, (ip, back), (sport, dport), (c, s), id);
    Conversation {
        packets: packets.into_iter(),
    }
}

/// Writes `count` packets of interleaved conversations to `out` as a pcap file.
pub fn write_pcap(out: &mut impl Write, count: u64, seed: u64) -> io::Result<()> {
    write_pcap_with(out, count, seed, conversation)
}

/// [`write_pcap`] of HTTP-heavy traffic only: HTTP/1.1 and h2c keep-alive connections with
/// trace headers ([`http_conversation`]).
pub fn write_http_pcap(out: &mut impl Write, count: u64, seed: u64) -> io::Result<()> {
    write_pcap_with(out, count, seed, http_conversation)
}

fn write_pcap_with(
    out: &mut impl Write,
    count: u64,
    seed: u64,
    conversation: fn(&mut Rng, u64) -> Conversation,
) -> io::Result<()> {
    let mut pcap = crate::pcapfile::Writer::new(out, 65_535)?;
    let mut rng = Rng::from_state(seed);
    let mut open: Vec<Conversation> = Vec::new();
    let mut started = 0u64;
    let mut micros = crate::pcapfile::START_MICROS;
    while pcap.packets() < count {
        // Keep about 16 conversations open so flows interleave.
        while open.len() < 16 {
            open.push(conversation(&mut rng, started));
            started += 1;
        }
        let pick = rng.below(open.len() as u64) as usize;
        let Some(frame) = open[pick].packets.next() else {
            open.swap_remove(pick);
            continue;
        };
        micros += 1 + rng.below(40);
        pcap.frame_at(micros, &frame)?;
    }
    Ok(())
}
