//! `PCAP_VERBOSITY=SUMMARY`: one connection entry when a TCP connection closes, and of the
//! packet entries only the anomalies; one exchange entry per HTTP exchange.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cloud_logging::Verbosity;
use render::{Interface, Source, Translator, TranslatorSettings};
use serde_json::Value;
use wire::{CapturedPacket, LinkType};

mod common;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const RST_ACK: u8 = 0x14;

/// Translates `(client?, flags, payload)` segments of one connection with consistent sequence
/// numbers; returns the lines written.
fn run(v: Verbosity, segments: &[(bool, u8, &[u8])]) -> Vec<Value> {
    run_then(v, segments, |_, _| {})
}

fn run_then(
    v: Verbosity,
    segments: &[(bool, u8, &[u8])],
    end: impl FnOnce(&mut Translator, &mut Vec<u8>),
) -> Vec<Value> {
    let source = Source {
        interface: Interface {
            index: 2,
            name: "eth0".into(),
            addrs: vec!["10.88.0.2".parse().unwrap()],
        },
        linktype: LinkType::Raw,
    };
    let mut t = Translator::new(TranslatorSettings {
        verbosity: v,
        ..TranslatorSettings::default()
    });
    let mut next = [1000u32, 5000u32];
    let mut out = Vec::new();
    for (i, (client, flags, payload)) in segments.iter().enumerate() {
        let seq = &mut next[usize::from(!*client)];
        let mut flags = *flags;
        if i == 1 {
            flags |= SYN; // the SYN/ACK
        }
        let data = common::tcp_packet(8080, *client, flags, *seq, payload);
        *seq += payload.len() as u32 + u32::from(flags & 0x03 != 0);
        let p = CapturedPacket {
            ts_sec: 1_700_000_000,
            ts_nsec: (i as u32 + 1) * 1_000_000,
            wire_len: data.len() as u32,
            num: i as u64,
            data: &data,
        };
        let o = t.translate(&source, &p, &mut out);
        assert!(!o.suppressed || v == Verbosity::Summary);
    }
    end(&mut t, &mut out);
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn http_exchange(close: u8) -> Vec<(bool, u8, &'static [u8])> {
    let mut v: Vec<(bool, u8, &'static [u8])> = vec![
        (true, SYN, b""),
        (false, ACK, b""),
        (true, ACK, b""),
        (true, PSH_ACK, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (
            false,
            PSH_ACK,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        (true, ACK, b""),
    ];
    if close == FIN_ACK {
        v.extend([
            (true, FIN_ACK, &b""[..]),
            (false, FIN_ACK, b""),
            (true, ACK, b""),
        ]);
    } else {
        v.push((true, RST_ACK, b""));
    }
    v
}

#[test]
fn summary_verbosity_writes_the_connection_and_the_exchange_only() {
    let lines = run(Verbosity::Summary, &http_exchange(FIN_ACK));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // The exchange entry (not the response's packet entry): request, status, latency.
    let x = &lines[0];
    assert_eq!(x["kind"], "exchange", "{x}");
    assert_eq!(x["exchange"]["proto"], "HTTP/1.1");
    assert_eq!(x["exchange"]["method"], "GET");
    assert_eq!(x["exchange"]["url"], "http://a/");
    assert_eq!(x["exchange"]["status"], 200);
    assert_eq!(x["httpRequest"]["status"], 200);
    assert!(x["exchange"]["latency"].is_f64(), "{x}");
    assert!(x.get("pcap").is_some_and(|p| p.get("num").is_none()));
    let c = &lines[1];
    assert_eq!(c["kind"], "connection");
    assert_eq!(c["severity"], "INFO");
    let conn = &c["connection"];
    assert_eq!(conn["conn_state"], "SF");
    // The server sent no pure ACK (Zeek's `a`): its data and FIN carried them.
    assert_eq!(conn["history"], "ShADdFf");
    assert_eq!(
        (conn["orig_h"].as_str(), conn["orig_p"].as_u64()),
        (Some("10.88.0.1"), Some(40000))
    );
    assert_eq!(
        (conn["orig_pkts"].as_u64(), conn["resp_pkts"].as_u64()),
        (Some(6), Some(3))
    );
    assert_eq!(conn["orig_payload_bytes"], 27);
    assert_eq!(conn["resp_payload_bytes"], 40);
    assert_eq!(conn["initial_rtt"], 0.002);
    assert_eq!(conn["close_reason"], "fin");
    assert_eq!(conn["http_exchanges"], 1);
    assert_eq!(c["flow"], lines[0]["flow"]);
}

#[test]
fn an_abort_after_data_is_a_warning_in_every_verbosity() {
    let lines = run(Verbosity::Summary, &http_exchange(RST_ACK));
    let last = lines.last().unwrap();
    assert_eq!(last["connection"]["conn_state"], "RSTO");
    assert_eq!(last["severity"], "WARNING");
    let rst = &lines[lines.len() - 2];
    assert_eq!(rst["L4"]["analysis"]["rst_after_data"], true);
    // INFO and DEBUG: one line per packet, no summary.
    for v in [Verbosity::Info, Verbosity::Debug] {
        let lines = run(v, &http_exchange(RST_ACK));
        assert_eq!(lines.len(), 7);
        assert!(lines.iter().all(|l| l.get("kind").is_none()));
        assert_eq!(lines[6]["severity"], "WARNING");
    }
}

#[test]
fn connections_still_open_at_the_end_are_summarised_by_finish() {
    let mut open = http_exchange(FIN_ACK);
    open.truncate(6);
    let lines = run_then(Verbosity::Summary, &open, |t, out| t.finish(out));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let conn = &lines[1]["connection"];
    assert_eq!(conn["conn_state"], "S1");
    assert_eq!(conn["close_reason"], "end");
    assert_eq!(conn["duration"], 0.005);
    // INFO: finish writes nothing.
    let lines = run_then(Verbosity::Info, &open, |t, out| t.finish(out));
    assert_eq!(lines.len(), 6);
}

#[test]
fn idle_connections_are_summarised_when_evicted() {
    let source = Source {
        interface: Interface {
            index: 2,
            name: "eth0".into(),
            addrs: vec![],
        },
        linktype: LinkType::Raw,
    };
    let mut t = Translator::new(TranslatorSettings {
        verbosity: Verbosity::Summary,
        flow_idle: std::time::Duration::from_secs(10),
        ..TranslatorSettings::default()
    });
    let mut out = Vec::new();
    for (i, (port, secs)) in [(8080u16, 0i64), (9090, 60)].into_iter().enumerate() {
        let data = common::tcp_packet(port, true, SYN, 1000, b"");
        let p = CapturedPacket {
            ts_sec: 1_700_000_000 + secs,
            ts_nsec: 0,
            wire_len: data.len() as u32,
            num: i as u64,
            data: &data,
        };
        t.translate(&source, &p, &mut out);
    }
    let lines: Vec<Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let conn = &lines[0]["connection"];
    assert_eq!(
        (conn["conn_state"].as_str(), conn["close_reason"].as_str()),
        (Some("S0"), Some("idle"))
    );
    assert_eq!(conn["resp_p"], 8080);
}
