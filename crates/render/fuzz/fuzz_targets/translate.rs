//! Fuzz target: arbitrary bytes through decode and render. The first byte picks the link
//! type, the second how much of the wire length was "captured"; the rest is the packet. Two
//! translators (DEBUG and INFO) keep their flow tables across inputs, so state paths are
//! fuzzed too. Asserts exactly one valid JSON line per packet.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use render::{CapturedPacket, Interface, Translator, TranslatorSettings};
use sidecar_core::config::Verbosity;

const LINKTYPES: [i32; 9] = [0, 1, 12, 101, 108, 113, 228, 229, 276];

struct State {
    iface: Interface,
    translators: [Translator; 2],
    out: Vec<u8>,
    num: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|input: &[u8]| {
    let Some((&lt, rest)) = input.split_first() else { return };
    let Some((&extra, data)) = rest.split_first() else { return };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let st = guard.get_or_insert_with(|| {
        let s = TranslatorSettings { max_flows: 64, ..TranslatorSettings::default() };
        State {
            iface: Interface { index: 1, name: "eth0".into(), addrs: vec!["10.0.0.1".parse().unwrap()] },
            translators: [
                Translator::new(s.clone()),
                Translator::new(TranslatorSettings { verbosity: Verbosity::Info, ..s }),
            ],
            out: Vec::new(),
            num: 0,
        }
    });
    st.num += 1;
    let p = CapturedPacket {
        interface: &st.iface,
        linktype: LINKTYPES[usize::from(lt) % LINKTYPES.len()],
        timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + (st.num / 16) as i64, 0).unwrap(),
        wire_len: data.len() as u32 + u32::from(extra & 0x3f),
        num: st.num,
        data,
    };
    for t in st.translators.iter_mut() {
        st.out.clear();
        let o = t.translate(&p, &mut st.out);
        assert_eq!(o.bytes, st.out.len());
        assert_eq!(st.out.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&st.out).expect("valid JSON");
        assert!(v["message"].is_string());
    }
});
