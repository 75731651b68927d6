//! Micro-benchmark of the translator alone (no capture, no queue, no output):
//! `cargo run --release -p render --example translate_bench -- [FILE.pcap] [ROUNDS] [debug|info]`.
//! Reads a classic pcap into memory, translates every packet ROUNDS times on one thread at
//! DEBUG and INFO, and prints packets/s and bytes per entry. The daemon's benchmark
//! (`scripts/bench`) measures the whole pipeline against tshark and tcpdump.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use cloud_logging::Verbosity;
use render::{Interface, Source, Translator, TranslatorSettings};
use wire::CapturedPacket;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../wire/testdata/veth.pcap").into()
    });
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(2000);
    let only = args.next();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return eprintln!("{path}: {e}"),
    };
    let file = match wire::pcapfile::File::new(&bytes) {
        Ok(f) => f,
        Err(e) => return eprintln!("{path}: not a classic pcap ({e})"),
    };
    let records: Vec<_> = file.records().map_while(Result::ok).collect();
    let source = Source {
        interface: Interface {
            index: 2,
            name: "eth0".into(),
            addrs: vec!["10.77.0.1".parse().unwrap()],
        },
        linktype: file.linktype(),
    };
    for verbosity in [Verbosity::Debug, Verbosity::Info] {
        if only
            .as_deref()
            .is_some_and(|o| !format!("{verbosity:?}").eq_ignore_ascii_case(o))
        {
            continue;
        }
        let mut t = Translator::new(TranslatorSettings {
            run_id: "pcapd/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
            log_name: "projects/my-project/pcap/pcapd/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
            verbosity,
            ..TranslatorSettings::default()
        });
        let mut out = Vec::with_capacity(1 << 16);
        let mut n = 0u64;
        let mut written = 0u64;
        let start = Instant::now();
        for round in 0..rounds {
            for r in &records {
                let p = CapturedPacket {
                    num: n,
                    ts_sec: r.ts_sec + round as i64,
                    ..*r
                };
                written += t.translate(&source, &p, &mut out).bytes as u64;
                n += 1;
                if out.len() > 1 << 20 {
                    out.clear();
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{verbosity:?}: {n} packets in {secs:.2} s = {:.0} packets/s, {:.0} bytes/entry, {:.1} MB/s of JSON",
            n as f64 / secs,
            written as f64 / n as f64,
            written as f64 / secs / 1e6
        );
    }
}
