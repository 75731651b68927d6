//! Writes a synthetic mixed-traffic pcap for benchmarks: `gen-pcap OUT [PACKETS] [SEED]`
//! (default 1,000,000 packets). TCP/HTTP over IPv4 and IPv6, DNS over UDP, ICMP/ICMPv6 echo
//! and ARP, interleaved, with correct checksums (tshark and tcpdump decode every packet).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/synth.rs"]
mod synth;

use std::io::{BufWriter, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: gen-pcap OUT [PACKETS] [SEED]");
        std::process::exit(2);
    };
    let count: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("PACKETS"));
    let seed: u64 = args.next().map_or(42, |n| n.parse().expect("SEED"));
    let file = std::fs::File::create(&out).expect("create OUT");
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    synth::write_pcap(&mut writer, count, seed).expect("write");
    writer.flush().expect("flush");
}
