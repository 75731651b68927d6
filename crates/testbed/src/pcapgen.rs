//! Realistic pcap content for tests and the benchmark: Ethernet/IPv4/TCP packets of a few
//! dozen flows, with ACK-only segments, TLS-like random payloads and HTTP/1.1 text, so the
//! data compresses like a real capture (not like zeros). Deterministic for a given seed.
//! Used by the exporter's tests and its benchmark.

use std::io;

use crate::pcapfile::{Writer, START_MICROS};
use crate::rng::Rng;

/// Client address, server address, client port, server port, initial sequence number.
type Flow = ([u8; 4], [u8; 4], u16, u16, u32);

const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/users/me",
    "/healthz",
    "/static/app.js",
    "/api/v2/cart/items",
    "/login",
];

/// A pcap file of about `size` bytes (stops at the first packet past it).
pub fn pcap_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 2048);
    // Writing to memory cannot fail: there is no error to report.
    let _ = write_pcap(&mut out, seed, size);
    out
}

fn write_pcap(out: &mut Vec<u8>, seed: u64, size: usize) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut pcap = Writer::new(out, 65_535)?;
    let flows: Vec<Flow> = (0..40)
        .map(|i| {
            (
                [10, 0, (i / 250) as u8, (i % 250) as u8 + 2],
                [142, 250, rng.below(256) as u8, rng.below(256) as u8],
                (32_768 + rng.below(28_000)) as u16,
                if i % 3 == 0 { 80 } else { 443 },
                rng.next() as u32,
            )
        })
        .collect();
    let mut seqs: Vec<u32> = flows.iter().map(|f| f.4).collect();
    let mut micros = START_MICROS;
    let mut payload = vec![0u8; 1460];
    let mut frame = Vec::with_capacity(14 + 20 + 20 + 1460);
    let mut id: u16 = 1;
    while pcap.get_ref().len() < size {
        let flow = rng.below(flows.len() as u64) as usize;
        let (src, dst, sport, dport, _) = flows[flow];
        let kind = rng.below(100);
        let body: Vec<u8> = if kind < 40 {
            Vec::new()
        } else if dport == 80 || kind < 55 {
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            format!(
                "GET {path}?id={} HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: \
                 Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: application/json\r\n\
                 X-Cloud-Trace-Context: {:032x}/{};o=1\r\nContent-Length: 0\r\n\r\n",
                rng.below(100_000),
                rng.next() as u128 * rng.next() as u128,
                rng.below(1 << 40)
            )
            .into_bytes()
        } else {
            let len = 100 + rng.below(1360) as usize;
            // TLS application data record header, then ciphertext (random).
            payload[..5].copy_from_slice(&[0x17, 0x03, 0x03, (len >> 8) as u8, len as u8]);
            rng.fill(&mut payload[5..len]);
            payload[..len].to_vec()
        };
        micros += 20 + rng.below(3000);
        frame.clear();
        // Ethernet.
        frame.extend_from_slice(&[0x42, 0x01, 0x0a, 0x00, 0x00, 0x01]);
        frame.extend_from_slice(&[0x42, 0x01, 0x0a, 0x00, 0x00, src[3]]);
        frame.extend_from_slice(&[0x08, 0x00]);
        // IPv4 (checksum left 0: offloaded, as captures on the sender often show).
        let total = (20 + 20 + body.len()) as u16;
        frame.extend_from_slice(&[0x45, 0x00]);
        frame.extend_from_slice(&total.to_be_bytes());
        frame.extend_from_slice(&id.to_be_bytes());
        id = id.wrapping_add(1);
        frame.extend_from_slice(&[0x40, 0x00, 64, 6, 0, 0]);
        frame.extend_from_slice(&src);
        frame.extend_from_slice(&dst);
        // TCP.
        frame.extend_from_slice(&sport.to_be_bytes());
        frame.extend_from_slice(&dport.to_be_bytes());
        frame.extend_from_slice(&seqs[flow].to_be_bytes());
        frame.extend_from_slice(&(rng.next() as u32).to_be_bytes());
        let flags = if body.is_empty() { 0x10 } else { 0x18 };
        frame.extend_from_slice(&[0x50, flags, 0x01, 0xf5, 0, 0, 0, 0]);
        seqs[flow] = seqs[flow].wrapping_add(body.len() as u32);
        frame.extend_from_slice(&body);
        pcap.frame_at(micros, &frame)?;
    }
    Ok(())
}
