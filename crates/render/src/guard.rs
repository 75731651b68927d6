//! The entry-size guard: the one place that keeps every entry within
//! `TranslatorSettings::max_entry_bytes` (`PCAP_MAX_ENTRY_BYTES`; Cloud Logging rejects a
//! `LogEntry` over 256 KB).
//!
//! An entry over the limit is cut in steps, least important first, until it fits:
//! 1. `raw`: raw message samples, payload samples and hex dumps;
//! 2. `header_values`: header values (names stay, with the number of values);
//! 3. `l7`: the application-layer sections (`HTTP`, `DNS`, `TLS`, `L7`, `httpRequest`);
//! 4. `layers`: everything else outside the envelope.
//!
//! The envelope (`severity`, `message`, `pcap`, `timestamp`, `flow`, trace fields, labels,
//! operation) is never removed; as a last resort the message is shortened. The entry says
//! what was cut: `"truncated": {"limit", "size", "cut": [...]}`. Cutting re-parses the
//! entry: it is rare (hostile or broken traffic), so the common path pays nothing.

use serde_json::{json, Map, Value};

use crate::fields as f;

/// Keys holding raw bytes: samples, raw message text, hex dumps.
const RAW_KEYS: [&str; 5] = [f::RAW, f::SAMPLE, f::DATA, f::DEBUG_DATA, f::ENCODING];
/// The application-layer sections.
const L7_KEYS: [&str; 5] = [f::HTTP, f::DNS, f::TLS, f::L7, f::HTTP_REQUEST];
/// What is never cut.
const ENVELOPE: [&str; 10] = [
    f::SEVERITY,
    f::MESSAGE,
    f::PCAP,
    f::TIMESTAMP,
    f::FLOW,
    f::TRACE,
    f::SPAN_ID,
    f::TRACE_SAMPLED,
    f::LABELS,
    f::OPERATION,
];

/// One cutting step on the parsed entry.
type Cutter = fn(&mut Map<String, Value>);

/// Replaces the entry in `out[start..]` (no newline yet) by one of at most `limit` bytes.
pub(crate) fn cut(out: &mut Vec<u8>, start: usize, limit: usize) {
    let size = out.len().saturating_sub(start);
    let parsed = out
        .get(start..)
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(b).ok());
    out.truncate(start);
    let mut entry = parsed.unwrap_or_default();
    let mut steps: Vec<&str> = Vec::new();
    let cutters: [(&str, Cutter); 4] = [
        ("raw", |m| strip_keys(m, &RAW_KEYS)),
        ("header_values", header_values),
        ("l7", |m| m.retain(|k, _| !L7_KEYS.contains(&k.as_str()))),
        ("layers", |m| {
            m.retain(|k, _| ENVELOPE.contains(&k.as_str()))
        }),
    ];
    for (name, cutter) in cutters {
        cutter(&mut entry);
        steps.push(name);
        if write(out, start, &entry, size, limit, &steps) {
            return;
        }
    }
    // Only the envelope is left: shorten the message (the other fields are small).
    let message = entry
        .get(f::MESSAGE)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut keep = (limit / 2).min(message.len());
    while !message.is_char_boundary(keep) {
        keep -= 1;
    }
    entry.insert(
        f::MESSAGE.into(),
        Value::String(message.get(..keep).unwrap_or_default().to_string()),
    );
    steps.push("message");
    if !write(out, start, &entry, size, limit, &steps) {
        // Cannot happen with limit >= 4096; never write an entry over the limit anyway.
        out.truncate(start);
        entry.retain(|k, _| k == f::SEVERITY || k == f::PCAP || k == f::TIMESTAMP);
        entry.insert(f::MESSAGE.into(), Value::String(String::new()));
        let _ = serde_json::to_writer(&mut *out, &entry);
    }
}

fn write(
    out: &mut Vec<u8>,
    start: usize,
    entry: &Map<String, Value>,
    size: usize,
    limit: usize,
    steps: &[&str],
) -> bool {
    out.truncate(start);
    let mut e = entry.clone();
    e.insert(
        f::TRUNCATED.into(),
        json!({ f::LIMIT: limit, f::SIZE: size, f::CUT: steps }),
    );
    serde_json::to_writer(&mut *out, &e).is_ok() && out.len() - start <= limit
}

fn strip_keys(m: &mut Map<String, Value>, keys: &[&str]) {
    m.retain(|k, _| !keys.contains(&k.as_str()));
    for v in m.values_mut() {
        strip_value(v, keys);
    }
}

fn strip_value(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => strip_keys(m, keys),
        Value::Array(a) => a.iter_mut().for_each(|x| strip_value(x, keys)),
        _ => {}
    }
}

/// Every `headers` object keeps its names; each value list becomes its length.
fn header_values(m: &mut Map<String, Value>) {
    for (k, v) in m.iter_mut() {
        if k == f::HEADERS {
            if let Value::Object(h) = v {
                for value in h.values_mut() {
                    let n = value.as_array().map_or(1, Vec::len);
                    *value = json!(n);
                }
            }
        } else {
            walk(v, header_values);
        }
    }
}

fn walk(v: &mut Value, f: fn(&mut Map<String, Value>)) {
    match v {
        Value::Object(m) => f(m),
        Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_to(v: Value, limit: usize) -> Value {
        let mut out = b"prefix".to_vec();
        serde_json::to_writer(&mut out, &v).unwrap();
        cut(&mut out, 6, limit);
        assert!(out.len() - 6 <= limit, "{} > {limit}", out.len() - 6);
        serde_json::from_slice(&out[6..]).unwrap()
    }

    #[test]
    fn cuts_least_important_first_and_keeps_the_envelope() {
        let big = "x".repeat(10_000);
        let entry = json!({
            "severity": "INFO", "message": "m", "pcap": {"num": "1"}, "timestamp": {"seconds": 1},
            "flow": "42", "logging.googleapis.com/trace": "t",
            "L3": {"src": "10.0.0.1"},
            "HTTP": {"raw": big, "headers": {"a": ["1"], "b": ["2", "3"]}},
        });
        let v = cut_to(entry.clone(), 4096);
        assert_eq!(v["truncated"]["cut"], json!(["raw"]));
        assert_eq!(v["HTTP"]["headers"]["b"], json!(["2", "3"]));
        assert!(v["HTTP"].get("raw").is_none());
        assert_eq!(v["truncated"]["limit"], 4096);
        // Header values next, then the L7 sections.
        let mut entry2 = entry.clone();
        entry2["HTTP"]["headers"]["c"] = json!([big]);
        let v = cut_to(entry2.clone(), 4096);
        assert_eq!(v["truncated"]["cut"], json!(["raw", "header_values"]));
        assert_eq!(v["HTTP"]["headers"]["c"], 1);
        entry2["HTTP"]["headers"][big.as_str()] = json!(["v"]);
        let v = cut_to(entry2, 4096);
        assert_eq!(v["truncated"]["cut"], json!(["raw", "header_values", "l7"]));
        assert!(v.get("HTTP").is_none());
        assert_eq!(v["L3"]["src"], "10.0.0.1");
        for key in [
            "severity",
            "message",
            "pcap",
            "timestamp",
            "flow",
            "logging.googleapis.com/trace",
        ] {
            assert_eq!(v[key], entry[key], "{key}");
        }
        // A huge message is shortened last.
        let mut entry3 = entry;
        entry3["message"] = json!("y".repeat(20_000));
        let v = cut_to(entry3, 4096);
        assert_eq!(v["flow"], "42");
        assert!(v["message"].as_str().unwrap().len() <= 2048);
    }
}
