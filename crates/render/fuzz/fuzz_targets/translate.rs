//! Fuzz target: arbitrary bytes through decode and render. The first byte picks the link
//! type, the second how much of the wire length was "captured"; the rest is the packet. Two
//! translators (DEBUG and INFO) keep their flow tables across inputs, so state paths are
//! fuzzed too; a third at SUMMARY may write any number of lines, each valid JSON within the
//! limit. Asserts exactly one valid JSON line per packet, no line over the entry limit
//! (4 KiB here, so the guard's cuts are fuzzed), the shared state budget (1 MiB here, so
//! eviction is fuzzed) held within one packet's growth, and the process's resident memory
//! growing by at most 96 MiB over the run (run with `-rss_limit_mb=512` so
//! libFuzzer's own limit is not the one that trips).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use render::{Interface, Source, Translator, TranslatorSettings};
use cloud_logging::Verbosity;
use wire::{CapturedPacket, LinkType};

const MAX_ENTRY: usize = 4096;
const STATE_BUDGET: usize = 1 << 20;

/// Resident memory of this process in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct State {
    rss_start: u64,
    /// The interface, and the link type of the current input.
    source: Source,
    translators: [Translator; 2],
    summary: Translator,
    out: Vec<u8>,
    num: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|input: &[u8]| {
    let Some((&lt, rest)) = input.split_first() else { return };
    let Some((&extra, data)) = rest.split_first() else { return };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let st = guard.get_or_insert_with(|| {
        let s = TranslatorSettings {
            max_flows: 64,
            max_entry_bytes: MAX_ENTRY,
            state_bytes: STATE_BUDGET,
            ..TranslatorSettings::default()
        };
        State {
            rss_start: rss_kib(),
            source: Source {
                interface: Interface { index: 1, name: "eth0".into(), addrs: vec!["10.0.0.1".parse().unwrap()] },
                linktype: LinkType::Ethernet,
            },
            translators: [
                Translator::new(s.clone()),
                Translator::new(TranslatorSettings { verbosity: Verbosity::Info, ..s.clone() }),
            ],
            summary: Translator::new(TranslatorSettings { verbosity: Verbosity::Summary, ..s }),
            out: Vec::new(),
            num: 0,
        }
    });
    st.num += 1;
    st.source.linktype = LinkType::DECODED[usize::from(lt) % LinkType::DECODED.len()];
    let p = CapturedPacket {
        ts_sec: 1_700_000_000 + (st.num / 16) as i64,
        ts_nsec: 0,
        wire_len: data.len() as u32 + u32::from(extra & 0x3f),
        num: st.num,
        data,
    };
    for t in st.translators.iter_mut() {
        st.out.clear();
        let o = t.translate(&st.source, &p, &mut st.out);
        assert_eq!(o.bytes, st.out.len());
        assert_eq!(st.out.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(o.bytes - 1 <= MAX_ENTRY, "a line of {} bytes", o.bytes - 1);
        let v: serde_json::Value = serde_json::from_slice(&st.out).expect("valid JSON");
        assert!(v["message"].is_string());
        // One packet's growth (at most a frame buffer and a header block) over the budget.
        assert!(t.limits().state_peak() <= STATE_BUDGET + (256 << 10));
    }
    // SUMMARY: any number of lines (anomalous packets, connection summaries), each valid
    // JSON within the entry limit.
    st.out.clear();
    let o = st.summary.translate(&st.source, &p, &mut st.out);
    assert_eq!(o.bytes, st.out.len());
    for line in st.out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.len() <= MAX_ENTRY, "a SUMMARY line of {} bytes", line.len());
        let _: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
    }
    if st.num % 10_000 == 0 {
        let grown = rss_kib().saturating_sub(st.rss_start);
        assert!(grown <= 96 * 1024, "resident memory grew by {grown} KiB");
    }
});
