//! Writes a synthetic pcap for benchmarks: `gen-pcap OUT [PACKETS] [SEED] [mixed|http]`
//! (default 1,000,000 packets, mixed). `mixed`: TCP/HTTP over IPv4 and IPv6, DNS over UDP,
//! ICMP/ICMPv6 echo and ARP, interleaved; `http`: HTTP/1.1 and h2c keep-alive connections
//! with trace headers. Checksums are correct (tshark and tcpdump decode every packet).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufWriter, Write};

use testbed::synth;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: gen-pcap OUT [PACKETS] [SEED] [mixed|http]");
        std::process::exit(2);
    };
    let count: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("PACKETS"));
    let seed: u64 = args.next().map_or(42, |n| n.parse().expect("SEED"));
    let http = match args.next().as_deref() {
        None | Some("mixed") => false,
        Some("http") => true,
        Some(other) => {
            eprintln!("gen-pcap: unknown mix {other:?} (mixed or http)");
            std::process::exit(2);
        }
    };
    let file = std::fs::File::create(&out).expect("create OUT");
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    if http {
        synth::write_http_pcap(&mut writer, count, seed).expect("write");
    } else {
        synth::write_pcap(&mut writer, count, seed).expect("write");
    }
    writer.flush().expect("flush");
}
