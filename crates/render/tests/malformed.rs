//! Never panic, one line per packet: the translator over (1) a malformed-capture corpus built
//! from real packets (every truncation, lying lengths, bad offsets, bit flips) kept in
//! `testdata/malformed.pcap` for the daemon's `--read` tests too, and (2) a large
//! deterministic pseudo-random corpus on every link type. This is the stable-toolchain
//! companion of the `cargo fuzz` target in `fuzz/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cloud_logging::Verbosity;
use render::{fields as f, Interface, Source, Translator, TranslatorSettings};
use testbed::rng::Rng;
use wire::{CapturedPacket, LinkType};

const CAPTURES: [(&str, &[u8]); 5] = [
    ("veth", include_bytes!("../../wire/testdata/veth.pcap")),
    ("sll2", include_bytes!("../../wire/testdata/any-sll2.pcap")),
    ("sll", include_bytes!("../../wire/testdata/any-sll.pcap")),
    ("snap", include_bytes!("../../wire/testdata/snaplen64.pcap")),
    ("lo", include_bytes!("../../wire/testdata/lo.pcap")),
];

struct Checker {
    /// The interface, and the link type of the packet being checked.
    source: Source,
    debug: Translator,
    info: Translator,
    summary: Translator,
    out: Vec<u8>,
    count: usize,
    /// Packets whose outcome said decoding failed (DEBUG and INFO together).
    decode_errors: u64,
}

impl Checker {
    fn new() -> Self {
        let s = TranslatorSettings {
            run_id: "pcapd/test".into(),
            log_name: "pcap/pcapd/test".into(),
            max_flows: 256,
            ..TranslatorSettings::default()
        };
        Checker {
            source: Source {
                interface: Interface {
                    index: 1,
                    name: "eth0".into(),
                    addrs: vec!["10.77.0.1".parse().unwrap()],
                },
                linktype: LinkType::Ethernet,
            },
            debug: Translator::new(s.clone()),
            info: Translator::new(TranslatorSettings {
                verbosity: Verbosity::Info,
                ..s.clone()
            }),
            summary: Translator::new(TranslatorSettings {
                verbosity: Verbosity::Summary,
                ..s
            }),
            out: Vec::new(),
            count: 0,
            decode_errors: 0,
        }
    }

    /// Translates at DEBUG and INFO and checks: exactly one line, valid JSON object with
    /// the envelope; at SUMMARY: only valid JSON lines.
    fn check(&mut self, linktype: impl Into<LinkType>, data: &[u8], wire_len: u32) {
        self.source.linktype = linktype.into();
        let p = CapturedPacket {
            ts_sec: 1_700_000_000 + self.count as i64 / 100,
            ts_nsec: 0,
            wire_len,
            num: self.count as u64,
            data,
        };
        for t in [&mut self.debug, &mut self.info] {
            self.out.clear();
            let errors = t.counters().decode_errors;
            let o = t.translate(&self.source, &p, &mut self.out);
            assert_eq!(o.bytes, self.out.len());
            assert_eq!(o.decode_error, t.counters().decode_errors > errors);
            self.decode_errors += u64::from(o.decode_error);
            assert_eq!(self.out.last(), Some(&b'\n'));
            assert_eq!(
                self.out.iter().filter(|b| **b == b'\n').count(),
                1,
                "one line"
            );
            // Every line is parsed; every 16th also into a Value to check the envelope
            // (a full Value per line made this test slow in debug builds).
            if self.count % 16 == 0 {
                let v: serde_json::Value = serde_json::from_slice(&self.out)
                    .unwrap_or_else(|e| panic!("invalid JSON ({e}) for {data:02x?}"));
                assert!(
                    v[f::MESSAGE].is_string()
                        && v[f::SEVERITY].is_string()
                        && v[f::PCAP].is_object()
                );
            } else if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&self.out) {
                panic!("invalid JSON ({e}) for {data:02x?}");
            }
        }
        // SUMMARY: any number of lines (the packet's only when anomalous, plus summaries of
        // connections closed or forgotten), each a valid JSON object.
        self.out.clear();
        let errors = self.summary.counters().decode_errors;
        let o = self.summary.translate(&self.source, &p, &mut self.out);
        assert_eq!(o.bytes, self.out.len());
        assert_eq!(
            o.decode_error,
            self.summary.counters().decode_errors > errors
        );
        for line in self.out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
                panic!("invalid SUMMARY JSON ({e}) for {data:02x?}");
            }
        }
        self.count += 1;
    }
}

fn real_packets() -> Vec<(i32, Vec<u8>, u32)> {
    let mut v = Vec::new();
    for (_, file) in CAPTURES {
        let p = wire::pcapfile::File::new(file).unwrap();
        for r in p.records() {
            let r = r.unwrap();
            v.push((p.linktype().number(), r.data.to_vec(), r.wire_len));
        }
    }
    v
}

/// The malformed corpus: for every real packet, a few truncations (as snaplen cuts and as
/// lying lengths), IP/TCP/UDP length and offset fields set to extremes, and bit flips.
fn malformed_corpus() -> Vec<(i32, Vec<u8>, u32)> {
    let mut rng = Rng::from_state(0x5eed_cafe);
    let mut corpus = Vec::new();
    for (lt, data, orig) in real_packets() {
        if lt != LinkType::Ethernet.number() {
            continue;
        }
        for cut in [
            1, 13, 14, 15, 20, 33, 34, 35, 41, 42, 43, 53, 54, 60, 66, 70,
        ] {
            if cut < data.len() {
                corpus.push((lt, data[..cut].to_vec(), orig));
                corpus.push((lt, data[..cut].to_vec(), cut as u32));
            }
        }
        // Length and offset fields of IPv4/IPv6/TCP/UDP set to 0, small, and huge values.
        for (at, val) in [
            (16usize, 0u8),
            (16, 0xff),
            (17, 3),
            (14, 0x4f),
            (14, 0x41),
            (18, 0xff),
            (19, 0),
            (46, 0xf0),
            (46, 0x10),
            (38, 0),
            (39, 1),
            (38, 0xff),
        ] {
            if at < data.len() {
                let mut m = data.clone();
                m[at] = val;
                corpus.push((lt, m, orig));
            }
        }
        for _ in 0..4 {
            let mut m = data.clone();
            let bit = rng.index(m.len() * 8);
            m[bit / 8] ^= 1 << (bit % 8);
            corpus.push((lt, m, orig));
        }
    }
    corpus
}

#[test]
fn malformed_capture_corpus_one_line_per_packet() {
    let corpus = malformed_corpus();
    let mut pcap = testbed::pcapfile::Writer::new(Vec::new(), 262_144).unwrap();
    for (i, (_, data, orig)) in corpus.iter().enumerate() {
        let micros = (1_700_000_000 + i as u64) * 1_000_000;
        pcap.cut_at(micros, data, *orig).unwrap();
    }
    let file = pcap.finish().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/malformed.pcap");
    if std::env::var_os("REGENERATE_CORPUS").is_some() {
        std::fs::write(path, &file).unwrap();
    }
    let stored =
        std::fs::read(path).expect("testdata/malformed.pcap (REGENERATE_CORPUS=1 writes it)");
    let pcap = wire::pcapfile::File::new(&stored).unwrap();
    let mut c = Checker::new();
    let mut n = 0;
    for r in pcap.records() {
        let r = r.unwrap();
        c.check(pcap.linktype(), r.data, r.wire_len);
        n += 1;
    }
    assert!(n > 3000, "{n} packets");
    let errors = c.debug.counters().decode_errors;
    assert!(errors > 100, "the corpus is malformed: {errors} errors");
    assert_eq!(
        c.decode_errors,
        errors + c.info.counters().decode_errors,
        "each outcome says whether its packet failed to decode"
    );
    assert_eq!(c.debug.counters().packets, n);
    assert_eq!(c.debug.counters().fallback_lines, 0);
    assert_eq!(c.summary.counters().fallback_lines, 0);
    let mut end = Vec::new();
    c.summary.finish(&mut end);
    for line in end.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap();
    }
}

#[test]
fn every_truncation_of_every_real_packet_on_its_linktype() {
    let mut c = Checker::new();
    for (lt, data, orig) in real_packets() {
        for cut in 0..=data.len() {
            c.check(lt, &data[..cut], orig);
        }
    }
    assert!(c.count > 20_000);
}

#[test]
fn bit_flips_of_real_packets() {
    let mut c = Checker::new();
    for (lt, data, orig) in real_packets().into_iter().step_by(4) {
        for bit in 0..data.len().min(80) * 8 {
            let mut m = data.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            c.check(lt, &m, orig);
        }
    }
    assert!(c.count > 25_000);
}

#[test]
fn pseudo_random_packets_on_every_linktype() {
    let mut rng = Rng::from_state(0x1234_5678_9abc_def1);
    let seeds = real_packets();
    let mut c = Checker::new();
    let mut buf = Vec::new();
    for i in 0..40_000 {
        buf.clear();
        let lt = LinkType::DECODED[rng.index(LinkType::DECODED.len())].number();
        if i % 2 == 0 {
            // Structured: a real packet's prefix with random bytes spliced in, so decoding gets deep.
            let (_, d, _) = &seeds[rng.index(seeds.len())];
            buf.extend_from_slice(d);
            for _ in 0..1 + rng.index(6) {
                if !buf.is_empty() {
                    let at = rng.index(buf.len());
                    buf[at] = rng.next() as u8;
                }
            }
            buf.truncate(rng.index(buf.len() + 1));
        } else {
            let n = rng.index(200);
            buf.extend((0..n).map(|_| rng.next() as u8));
            if n > 0 {
                // Bias towards plausible first bytes (IP versions, EtherTypes).
                buf[0] = [0x45, 0x60, 0x46, 0x02, 0xff][rng.index(5)];
            }
        }
        let wire = if rng.index(3) == 0 {
            buf.len() as u32 + rng.index(100) as u32
        } else {
            buf.len() as u32
        };
        c.check(lt, &buf, wire);
    }
    assert_eq!(c.count, 40_000);
}
