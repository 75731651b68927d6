//! HTTP/2 (h2c) entries on hand-built segments: frames encoded here, header blocks with
//! `testbed::synth::hpack_literal` (literal fields, with or without indexing) and indexed
//! references. JSON is checked field by field after parsing; secrets are checked against
//! the raw output bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use cloud_logging::Verbosity;
use render::{fields as f, Interface, Translator, TranslatorSettings};
use serde_json::Value;
use testbed::synth::h2_frame_of as frame;
use testbed::synth::hpack_literal as encode_literal;

mod common;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const XC: &str = "0af7651916cd43dd8448eb211c80319c/12345678901234567890;o=1";
const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const PSH_ACK: u8 = 0x18;
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;

fn iface() -> Interface {
    Interface {
        index: 2,
        name: "vc0".into(),
        addrs: vec!["10.88.0.2".parse::<IpAddr>().unwrap()],
    }
}

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        encode_literal(&mut b, n, v.as_bytes(), true);
    }
    b
}

const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

fn run(packets: &[(bool, u8, Vec<u8>)], v: Verbosity, redact: &[&str]) -> (Vec<u8>, Vec<Value>) {
    let mut t = Translator::new(TranslatorSettings {
        project_id: Some("proj".into()),
        verbosity: v,
        redact_headers: redact.iter().map(|s| s.to_string()).collect(),
        ..TranslatorSettings::default()
    });
    let packets = packets.iter().map(|(c, f, p)| (*c, *f, p.as_slice()));
    common::translate_connection(&mut t, &iface(), 8080, packets)
}

fn sv(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn trace(l: &Value) -> Option<(&str, &str, bool)> {
    Some((
        sv(l.get(f::TRACE)?),
        sv(&l[f::SPAN_ID]),
        l[f::TRACE_SAMPLED].as_bool().unwrap(),
    ))
}

fn req(sid: u32, path: &str, extra: &[(&str, &str)], end: bool) -> Vec<u8> {
    let mut fl = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "svc.test:8080"),
        ("user-agent", "h2-test/1"),
    ];
    fl.extend_from_slice(extra);
    frame(
        1,
        END_HEADERS | if end { END_STREAM } else { 0 },
        sid,
        &block(&fl),
    )
}

fn settings() -> Vec<u8> {
    frame(4, 0, 0, &[0, 3, 0, 0, 0, 100])
}

/// A connection from its SYN: two traced streams (traceparent; X-Cloud-Trace-Context),
/// one untraced, responses out of order, the connection closed by FINs.
fn conversation() -> Vec<(bool, u8, Vec<u8>)> {
    let mut first = PREFACE.to_vec();
    first.extend(settings());
    first.extend(req(1, "/a", &[("traceparent", TP)], true));
    first.extend(req(3, "/b", &[("x-cloud-trace-context", XC)], true));
    first.extend(req(5, "/c", &[], true));
    let mut resp = settings();
    resp.extend(frame(4, 1, 0, &[]));
    resp.extend(frame(
        1,
        END_HEADERS,
        3,
        &block(&[(":status", "404"), ("content-length", "0")]),
    ));
    resp.extend(frame(0, END_STREAM, 3, &[]));
    let r1 = [
        frame(
            1,
            END_HEADERS,
            1,
            &block(&[(":status", "200"), ("content-length", "5")]),
        ),
        frame(0, END_STREAM, 1, b"hello"),
    ]
    .concat();
    let r5 = frame(1, END_HEADERS | END_STREAM, 5, &[0x88]); // static :status 200
    vec![
        (true, SYN, vec![]),
        (false, SYN_ACK, vec![]),
        (true, ACK, vec![]),
        (true, PSH_ACK, first),  // 3
        (false, PSH_ACK, resp),  // 4
        (false, PSH_ACK, r1),    // 5
        (true, ACK, vec![]),     // 6: ACK after the traced /a exchange
        (false, PSH_ACK, r5),    // 7
        (true, FIN_ACK, vec![]), // 8
        (false, FIN_ACK, vec![]),
        (true, ACK, vec![]),
    ]
}

#[test]
fn streams_pair_with_latency_trace_and_http_request() {
    let (_, l) = run(&conversation(), Verbosity::Debug, &[]);
    let m = sv(&l[3][f::MESSAGE]);
    assert!(
        m.ends_with(
            "| HTTP/2 preface HEADERS#1 GET /a, HEADERS#3 GET /b, HEADERS#5 GET /c, SETTINGS"
        ),
        "{m}"
    );
    let h = &l[3][f::HTTP];
    assert_eq!(h["kind"], "request");
    assert_eq!(h["proto"], "HTTP/2");
    assert_eq!(
        (h["method"].as_str(), h["url"].as_str()),
        (Some("GET"), Some("/a"))
    );
    assert_eq!(h["frames"][1]["headers"][":authority"][0], "svc.test:8080");
    assert_eq!(
        h["frames"][1]["flags"],
        serde_json::json!(["END_STREAM", "END_HEADERS"])
    );
    assert_eq!(h["frames"][0]["settings"]["MAX_CONCURRENT_STREAMS"], 100);
    // The request entry's trace is its first traced stream's.
    let tp = (
        "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        true,
    );
    assert_eq!(trace(&l[3]), Some(tp));
    // Response of stream 3 (404) first: WARNING, X-Cloud-Trace-Context's trace and span in hex.
    assert_eq!(l[4][f::SEVERITY], "WARNING");
    assert_eq!(
        trace(&l[4]),
        Some((
            "projects/proj/traces/0af7651916cd43dd8448eb211c80319c",
            "ab54a98ceb1f0ad2",
            true
        ))
    );
    let hr = &l[4][f::HTTP_REQUEST];
    assert_eq!(hr["status"], 404);
    assert_eq!(hr["requestUrl"], "http://svc.test:8080/b");
    assert_eq!(hr["protocol"], "HTTP/2");
    assert_eq!(hr["latency"], "0.001s");
    assert_eq!(hr["remoteIp"], "10.88.0.1");
    assert_eq!(hr["userAgent"], "h2-test/1");
    // Stream 1's response: 200 with the traceparent trace, latency 2 ms.
    assert_eq!(trace(&l[5]), Some(tp));
    assert_eq!(l[5][f::HTTP_REQUEST]["latency"], "0.002s");
    assert_eq!(l[5][f::HTTP_REQUEST]["responseSize"], "5");
    assert_eq!(l[5][f::HTTP]["request"]["url"], "/a");
    assert!(sv(&l[5][f::MESSAGE]).ends_with("| latency:0.002s"));
    // The ACK after it carries the latest exchange's trace.
    assert_eq!(trace(&l[6]), Some(tp));
    // Stream 5: untraced (no inheritance from another stream); static-table status.
    assert_eq!(l[7][f::HTTP_REQUEST]["status"], 200);
    assert!(trace(&l[7]).is_none());
    assert_eq!(l[7][f::SEVERITY], "INFO");
    assert_eq!(l[7][f::HTTP]["kind"], "response");
}

#[test]
fn info_entries_are_compact() {
    let (_, l) = run(&conversation(), Verbosity::Info, &[]);
    assert!(
        l[3].get(f::HTTP).is_none(),
        "a plain request: the summary says it all"
    );
    assert!(l[5].get(f::HTTP).is_none());
    assert_eq!(l[5][f::HTTP_REQUEST]["status"], 200);
    assert!(trace(&l[5]).is_some());
}

#[test]
fn grpc_status_and_stream_errors_set_severity() {
    let grpc_req = |sid| {
        frame(
            1,
            END_HEADERS,
            sid,
            &block(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/pkg.Echo/Say"),
                ("content-type", "application/grpc"),
                ("traceparent", TP),
            ]),
        )
    };
    let mut first = PREFACE.to_vec();
    first.extend(grpc_req(1));
    first.extend(frame(0, END_STREAM, 1, &[0, 0, 0, 0, 1, 7]));
    first.extend(grpc_req(3));
    let trailers_only = frame(
        1,
        END_HEADERS | END_STREAM,
        1,
        &block(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "key%20not%20found"),
        ]),
    );
    let ok = [
        frame(1, END_HEADERS, 3, &block(&[(":status", "200")])),
        frame(0, 0, 3, &[0, 0, 0, 0, 0]),
        frame(
            1,
            END_HEADERS | END_STREAM,
            3,
            &block(&[("grpc-status", "0")]),
        ),
    ]
    .concat();
    let mut goaway = 3u32.to_be_bytes().to_vec();
    goaway.extend(1u32.to_be_bytes());
    let pkts = vec![
        (true, SYN, vec![]),
        (false, SYN_ACK, vec![]),
        (true, PSH_ACK, first),                                      // 2
        (false, PSH_ACK, trailers_only),                             // 3
        (false, PSH_ACK, ok),                                        // 4
        (true, PSH_ACK, grpc_req(5)),                                // 5
        (true, PSH_ACK, frame(3, 0, 5, &8u32.to_be_bytes())),        // 6 CANCEL
        (false, PSH_ACK, frame(3, 0, 5, &2u32.to_be_bytes())),       // 7 INTERNAL_ERROR
        (false, PSH_ACK, frame(7, 0, 0, &goaway)),                   // 8 PROTOCOL_ERROR
        (false, PSH_ACK, frame(7, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0])), // 9 NO_ERROR
    ];
    for v in [Verbosity::Info, Verbosity::Debug] {
        let (_, l) = run(&pkts, v, &[]);
        let g = &l[3][f::HTTP]["grpc"];
        assert_eq!(
            (g["service"].as_str(), g["method"].as_str()),
            (Some("pkg.Echo"), Some("Say"))
        );
        assert_eq!(
            (g["status"].as_u64(), g["status_name"].as_str()),
            (Some(5), Some("NOT_FOUND"))
        );
        assert_eq!(g["message"], "key not found");
        assert_eq!(l[3][f::SEVERITY], "ERROR");
        assert!(trace(&l[3]).is_some());
        let g = &l[4][f::HTTP]["grpc"];
        assert_eq!(
            (g["status"].as_u64(), g["method"].as_str()),
            (Some(0), Some("Say"))
        );
        assert_eq!(l[4][f::SEVERITY], "INFO");
        assert!(sv(&l[4][f::MESSAGE]).contains("trailers grpc-status:0 OK"));
        assert_eq!(l[6][f::SEVERITY], "WARNING");
        assert_eq!(l[6][f::HTTP]["stream_error"]["name"], "CANCEL");
        assert!(trace(&l[6]).is_some(), "RST_STREAM of a traced stream");
        // INTERNAL_ERROR is severe whatever the stream; stream 5 is forgotten: no trace.
        assert_eq!(l[7][f::SEVERITY], "ERROR");
        assert!(trace(&l[7]).is_none());
        assert_eq!(l[8][f::SEVERITY], "ERROR");
        let se = &l[8][f::HTTP]["stream_error"];
        assert_eq!(
            (
                se["frame"].as_str(),
                se["name"].as_str(),
                se["stream"].as_u64()
            ),
            (Some("GOAWAY"), Some("PROTOCOL_ERROR"), Some(3))
        );
        assert_eq!(l[9][f::SEVERITY], "INFO");
    }
}

#[test]
fn secrets_are_redacted_in_h2_headers() {
    let mut first = PREFACE.to_vec();
    first.extend(req(
        1,
        "/s",
        &[
            ("authorization", "Bearer AUTHSECRET"),
            ("cookie", "COOKIESECRET"),
            ("x-api-key", "APIKEYSECRET"),
        ],
        true,
    ));
    // The same secret again by dynamic-table reference (index 62+: the newest entries).
    let mut again = vec![0x82, 0x86];
    again.push(0x80 | 62); // x-api-key (the newest entry)
    again.push(0x80 | 63); // cookie
    again.push(0x80 | 64); // authorization
    first.extend(frame(1, END_HEADERS | END_STREAM, 3, &again));
    let resp = frame(
        1,
        END_HEADERS | END_STREAM,
        1,
        &block(&[(":status", "200"), ("set-cookie", "SETCOOKIESECRET")]),
    );
    let pkts = vec![
        (true, SYN, vec![]),
        (true, PSH_ACK, first),
        (false, PSH_ACK, resp),
    ];
    let (raw, l) = run(&pkts, Verbosity::Debug, &["X-Api-Key"]);
    let text = String::from_utf8(raw).unwrap();
    for s in [
        "AUTHSECRET",
        "COOKIESECRET",
        "APIKEYSECRET",
        "SETCOOKIESECRET",
    ] {
        assert!(!text.contains(s), "{s} leaked");
    }
    let hs = &l[1][f::HTTP]["frames"][0]["headers"];
    assert_eq!(hs["authorization"][0], "[REDACTED]");
    assert_eq!(hs["x-api-key"][0], "[REDACTED]");
    let hs2 = &l[1][f::HTTP]["frames"][1]["headers"];
    assert_eq!(hs2["cookie"][0], "[REDACTED]");
    assert_eq!(hs2["x-api-key"][0], "[REDACTED]");
    assert_eq!(
        l[2][f::HTTP]["frames"][0]["headers"]["set-cookie"][0],
        "[REDACTED]"
    );
}

#[test]
fn mid_connection_capture_marks_unknown_dynamic_references() {
    // No SYN, no preface: the capture joins an established connection whose tables hold
    // entries it never saw.
    let mut b = vec![0x83, 0x86, 0xc0, 0xbe]; // POST, http, dynamic 64 and 62 (unknown)
    encode_literal(&mut b, ":path", b"/later", false);
    encode_literal(&mut b, "traceparent", TP.as_bytes(), false);
    let pkts = vec![
        (true, PSH_ACK, frame(1, END_HEADERS | END_STREAM, 41, &b)),
        (
            false,
            PSH_ACK,
            frame(1, END_HEADERS | END_STREAM, 41, &[0xbf, 0x88]),
        ),
    ];
    let (_, l) = run(&pkts, Verbosity::Debug, &[]);
    let fr = &l[0][f::HTTP]["frames"][0];
    assert_eq!(fr["role"], "request");
    assert_eq!(fr["unknown_dynamic"], serde_json::json!([64, 62]));
    assert_eq!(fr["hpack_unsynced"], true);
    assert_eq!(fr["headers"][":path"][0], "/later");
    assert_eq!(l[0][f::SEVERITY], "INFO");
    assert!(trace(&l[0]).is_some());
    assert!(sv(&l[0][f::MESSAGE]).contains("HEADERS#41 POST /later unknown-dynamic:2"));
    assert_eq!(l[1][f::HTTP_REQUEST]["status"], 200);
    assert_eq!(l[1][f::HTTP_REQUEST]["requestMethod"], "POST");
    assert!(trace(&l[1]).is_some());
}

#[test]
fn frames_split_across_segments_are_continuations_not_errors() {
    let mut first = PREFACE.to_vec();
    first.extend(req(
        1,
        "/big",
        &[("x-pad", &"p".repeat(3000)), ("traceparent", TP)],
        true,
    ));
    let (a, b) = first.split_at(1500);
    let pkts = vec![
        (true, SYN, vec![]),
        (true, PSH_ACK, a.to_vec()),
        (true, PSH_ACK, b.to_vec()),
    ];
    let (_, l) = run(&pkts, Verbosity::Debug, &[]);
    assert_eq!(l[1][f::SEVERITY], "INFO");
    assert_eq!(l[1][f::HTTP]["kind"], "frames", "{}", l[1]);
    assert_eq!(l[1][f::HTTP]["fragmented"], true);
    assert_eq!(l[2][f::HTTP]["kind"], "request");
    assert_eq!(l[2][f::HTTP]["frames"][0]["reassembled"], true);
    assert!(trace(&l[2]).is_some());
}

#[test]
fn binary_protocols_are_not_http2() {
    let pg = b"\x00\x00\x00\x26\x00\x03\x00\x00user\x00postgres\x00database\x00db\x00\x00".to_vec();
    let pkts = vec![
        (true, PSH_ACK, pg),
        (
            false,
            PSH_ACK,
            b"R\x00\x00\x00\x08\x00\x00\x00\x00".to_vec(),
        ),
        (true, PSH_ACK, b"Q\x00\x00\x00\x0dselect 1\x00".to_vec()),
    ];
    let (_, l) = run(&pkts, Verbosity::Debug, &[]);
    for e in &l {
        assert!(e.get(f::HTTP).is_none(), "{e}");
        assert!(e.get(f::L7).is_some());
    }
}

#[test]
fn h2c_upgrade_switches_the_connection() {
    let up = format!(
        "GET /up HTTP/1.1\r\nHost: svc.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\ntraceparent: {TP}\r\n\r\n"
    );
    let switch =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    let mut server = settings();
    server.extend(frame(1, END_HEADERS, 1, &block(&[(":status", "200")])));
    server.extend(frame(0, END_STREAM, 1, b"upgraded"));
    let pkts = vec![
        (true, SYN, vec![]),
        (true, PSH_ACK, up.into_bytes()),
        (false, PSH_ACK, switch),
        (false, PSH_ACK, server),
        (true, PSH_ACK, [PREFACE, &settings()].concat()),
    ];
    let (_, l) = run(&pkts, Verbosity::Debug, &[]);
    assert_eq!(l[2][f::HTTP]["code"], 101);
    let hr = &l[3][f::HTTP_REQUEST];
    assert_eq!(
        (hr["status"].as_u64(), hr["requestUrl"].as_str()),
        (Some(200), Some("http://svc.test/up"))
    );
    assert_eq!(hr["protocol"], "HTTP/2");
    assert!(trace(&l[3]).is_some());
    assert_eq!(l[4][f::HTTP]["preface"], true);
}
