//! Cross-check against tshark: every packet of `veth.pcap` and `any-sll2.pcap`, field by
//! field (IP id/TTL, TCP ports/seq/ack/window/flags/options, DNS names and answers, ICMP
//! types, TLS SNI). Skipped, saying so, when tshark is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use render::{fields as f, Interface, Translator, TranslatorSettings};
use serde_json::Value;

const FIELDS: [&str; 20] = [
    "frame.number",
    "ip.id",
    "ip.ttl",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.window_size_value",
    "tcp.options.mss_val",
    "tcp.options.wscale.shift",
    "tcp.options.timestamp.tsval",
    "tcp.options.timestamp.tsecr",
    "tcp.flags",
    "dns.qry.name",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
    "dns.count.answers",
    "icmp.type",
    "tls.handshake.extensions_server_name",
];

fn ours(file: &[u8]) -> Vec<Value> {
    let iface = Interface {
        index: 1,
        name: "eth0".into(),
        addrs: vec![],
    };
    let mut t = Translator::new(TranslatorSettings::default());
    let (out, _) = common::translate_pcap(&mut t, &iface, file);
    common::parse_lines(&out)
}

/// Our value as tshark prints it ("" when absent).
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list(v: &Value, key: &str) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get(key))
                .map(text)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn check(name: &str, file: &[u8]) -> usize {
    let path = format!("{}/../wire/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let rows = match testbed::tshark::all_occurrences(Path::new(&path), &FIELDS) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("tshark not available ({e}): cross-check of {name} skipped");
            return 0;
        }
    };
    let lines = ours(file);
    assert_eq!(rows.len(), lines.len(), "packet counts equal tshark's");
    let mut compared = 0;
    for (row, l) in rows.iter().zip(&lines) {
        let get = |field: &str| row[FIELDS.iter().position(|f| *f == field).unwrap()].clone();
        let ctx = format!("{name} frame {} {}", get("frame.number"), l[f::MESSAGE]);
        let l3 = &l[f::L3];
        if !get("ip.id").is_empty() && l3[f::V] == 4 {
            // ICMP errors embed a second IP header: tshark lists both ids.
            let ids = get("ip.id");
            let first = ids.split(',').next().unwrap().trim_start_matches("0x");
            let id = u16::from_str_radix(first, 16).unwrap();
            assert_eq!(l3[f::ID].as_u64(), Some(u64::from(id)), "{ctx}");
            assert_eq!(
                text(&l3[f::TTL]),
                get("ip.ttl").split(',').next().unwrap(),
                "{ctx}"
            );
        }
        let l4 = &l[f::L4];
        if !get("tcp.srcport").is_empty() {
            assert_eq!(text(&l4[f::SRC]), get("tcp.srcport"), "{ctx}");
            assert_eq!(text(&l4[f::DST]), get("tcp.dstport"), "{ctx}");
            assert_eq!(text(&l4[f::SEQ]), get("tcp.seq_raw"), "{ctx}");
            assert_eq!(text(&l4[f::ACK]), get("tcp.ack_raw"), "{ctx}");
            assert_eq!(text(&l4[f::WIN]), get("tcp.window_size_value"), "{ctx}");
            let flags = u16::from_str_radix(get("tcp.flags").trim_start_matches("0x"), 16).unwrap();
            assert_eq!(
                l4[f::FLAGS]["dec"].as_u64(),
                Some(u64::from(flags)),
                "{ctx}"
            );
            let opts = l4[f::OPTS].as_array().unwrap();
            let opt = |name: &str| opts.iter().find_map(|o| o.get(name)).cloned();
            assert_eq!(
                opt("MSS").map(|v| text(&v[0])).unwrap_or_default(),
                get("tcp.options.mss_val"),
                "{ctx}"
            );
            assert_eq!(
                opt("WindowScale")
                    .map(|v| text(&v[0]["dec"]))
                    .unwrap_or_default(),
                get("tcp.options.wscale.shift"),
                "{ctx}"
            );
            assert_eq!(
                opt("Timestamps").map(|v| text(&v[0])).unwrap_or_default(),
                get("tcp.options.timestamp.tsval"),
                "{ctx}"
            );
            assert_eq!(
                opt("Timestamps").map(|v| text(&v[1])).unwrap_or_default(),
                get("tcp.options.timestamp.tsecr"),
                "{ctx}"
            );
            compared += 1;
        }
        let dns = &l[f::DNS];
        if !get("dns.qry.name").is_empty() {
            assert_eq!(
                list(&dns["questions"], f::NAME),
                get("dns.qry.name"),
                "{ctx}"
            );
            assert_eq!(
                text(&dns["answers_count"]),
                get("dns.count.answers"),
                "{ctx}"
            );
            let answers = dns["answers"].as_array().unwrap();
            let by_type = |t: &str, key: &str| {
                answers
                    .iter()
                    .filter(|a| a[f::TYPE] == t)
                    .map(|a| text(&a[key]))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            assert_eq!(by_type("A", "ip"), get("dns.a"), "{ctx}");
            assert_eq!(by_type("AAAA", "ip"), get("dns.aaaa"), "{ctx}");
            assert_eq!(by_type("CNAME", "cname"), get("dns.cname"), "{ctx}");
            compared += 1;
        }
        if !get("icmp.type").is_empty() {
            assert_eq!(text(&l[f::ICMP][f::TYPE]), get("icmp.type"), "{ctx}");
            compared += 1;
        }
        let sni = get("tls.handshake.extensions_server_name");
        if !sni.is_empty() {
            assert_eq!(text(&l[f::TLS]["client_hello"]["sni"]), sni, "{ctx}");
            compared += 1;
        }
    }
    compared
}

#[test]
fn matches_tshark_on_real_captures() {
    let a = check("veth.pcap", include_bytes!("../../wire/testdata/veth.pcap"));
    let b = check(
        "any-sll2.pcap",
        include_bytes!("../../wire/testdata/any-sll2.pcap"),
    );
    eprintln!("compared {a} + {b} packets with tshark");
}
