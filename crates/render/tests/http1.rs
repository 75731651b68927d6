//! HTTP/1.1 and trace context, on a real capture (`testdata/http1.pcap`, made by
//! `testdata/make-http1.sh`: curl and Python between two network namespaces) and on
//! hand-built segments. JSON is checked field by field after parsing (`serde_json::Value`);
//! secrets are checked against the raw output bytes.
//!
//! Packet numbers of `http1.pcap` (0-based, = `pcap.num`):
//! - 0–16 keep-alive: GET /index.html (3) → 200 (5) + body (7), GET /two.txt (9) → 200 (10),
//!   both with `traceparent: 00-4bf9…4736-00f067aa0ba902b7-01`; FIN/ACKs 13–16.
//! - 17–28 `X-Cloud-Trace-Context: 0af7…319c/12345678901234567890;o=1`: GET 20 → 200 22.
//! - 29–40 both headers (traceparent `…-00`, cloud `…;o=1`): GET 32 → 200 34.
//! - 41–55 no trace, keep-alive: GET 44 → 200 46, GET /missing 50 → 404 51 + body 52.
//! - 56–67 `X-Cloud-Trace-Context: 4444…/255;o=0`: GET /fail 59 → 500 61.
//! - 68–85 `Authorization`, `Cookie` request 71 → chunked 200 73 (`Set-Cookie`), chunks 75–81.
//! - 86–101 POST 20 000 bytes, traceparent `5555…-6666…-01`: 89 (headers + body start), 91,
//!   93 body continuations → 201 95.
//! - 102–115 header block split in `Authoriza|tion:` across 105 and 107 (traceparent
//!   `7777…-8888…-01`) → 200 109.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use cloud_logging::Verbosity;
use render::{fields as f, Interface, Source, Translator, TranslatorSettings};
use serde_json::Value;
use wire::{Captured, LinkType};

mod common;

const HTTP1: &[u8] = include_bytes!("../testdata/http1.pcap");
const SECRETS: [&str; 4] = [
    "AUTHSECRET",
    "COOKIESECRET",
    "SETCOOKIESECRET",
    "SPLITSECRET",
];

fn iface() -> Interface {
    Interface {
        index: 2,
        name: "vc0".into(),
        addrs: vec!["10.88.0.1".parse::<IpAddr>().unwrap()],
    }
}

fn settings(v: Verbosity, project: Option<&str>) -> TranslatorSettings {
    TranslatorSettings {
        run_id: "job/http".into(),
        log_name: "projects/my-project/pcap/job/http".into(),
        project_id: project.map(str::to_string),
        verbosity: v,
        ..TranslatorSettings::default()
    }
}

/// The link type and packets of a capture.
fn records(file: &[u8]) -> (LinkType, Vec<Captured<Vec<u8>>>) {
    let pcap = wire::pcapfile::File::new(file).unwrap();
    let packets = pcap.records().map(|r| r.unwrap().to_owned()).collect();
    (pcap.linktype(), packets)
}

/// Translates the given packets (in the given order, `num` = original index); returns the
/// raw output and the parsed lines indexed by `num`.
fn translate_order(t: &mut Translator, order: &[usize]) -> (Vec<u8>, Vec<Value>) {
    let (linktype, recs) = records(HTTP1);
    let source = Source {
        interface: iface(),
        linktype,
    };
    let mut out = Vec::new();
    let mut lines = vec![Value::Null; recs.len()];
    for &num in order {
        let start = out.len();
        t.translate(&source, &recs[num].borrowed(), &mut out);
        lines[num] = serde_json::from_slice(&out[start..]).unwrap();
    }
    (out, lines)
}

fn translate(v: Verbosity, project: Option<&str>) -> (Vec<u8>, Vec<Value>) {
    let n = records(HTTP1).1.len();
    let order: Vec<usize> = (0..n).collect();
    translate_order(&mut Translator::new(settings(v, project)), &order)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn trace_of(l: &Value) -> Option<(String, String, bool)> {
    Some((
        s(l.get(f::TRACE)?).to_string(),
        s(&l[f::SPAN_ID]).to_string(),
        l[f::TRACE_SAMPLED].as_bool().unwrap(),
    ))
}

#[test]
fn keep_alive_pairs_each_response_with_its_own_request() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    let want = (
        "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
        "00f067aa0ba902b7".to_string(),
        true,
    );
    assert_eq!(s(&l[3][f::HTTP]["kind"]), "request");
    assert_eq!(s(&l[3][f::HTTP]["method"]), "GET");
    assert_eq!(s(&l[3][f::HTTP]["url"]), "/index.html");
    assert_eq!(s(&l[3][f::HTTP]["host"]), "10.88.0.2:8080");
    assert!(s(&l[3][f::MESSAGE]).ends_with(" | HTTP/1.1 GET /index.html"));
    assert!(
        l[3].get(f::HTTP_REQUEST).is_none(),
        "httpRequest only on responses"
    );
    for n in [3, 5, 9, 10] {
        assert_eq!(trace_of(&l[n]), Some(want.clone()), "packet {n}");
    }
    let r1 = &l[5];
    assert_eq!(s(&r1[f::HTTP]["kind"]), "response");
    assert_eq!(r1[f::HTTP]["code"], 200);
    assert_eq!(s(&r1[f::HTTP]["reason"]), "OK");
    assert_eq!(s(&r1[f::SEVERITY]), "INFO");
    let h = &r1[f::HTTP_REQUEST];
    assert_eq!(s(&h["requestMethod"]), "GET");
    assert_eq!(s(&h["requestUrl"]), "http://10.88.0.2:8080/index.html");
    assert_eq!(h["status"], 200);
    assert_eq!(s(&h["userAgent"]), "curl/7.88.1");
    assert_eq!(s(&h["remoteIp"]), "10.88.0.1");
    assert_eq!(s(&h["protocol"]), "HTTP/1.1");
    // Content-Length 22 plus the 185-byte header block.
    assert_eq!(s(&h["responseSize"]), "207");
    // Latency = response time - request time, as a duration string.
    let lat = s(&h["latency"]);
    let secs: f64 = lat.strip_suffix('s').unwrap().parse().unwrap();
    let ts = |v: &Value| {
        v[f::TIMESTAMP][f::SECONDS].as_f64().unwrap()
            + v[f::TIMESTAMP][f::NANOS].as_f64().unwrap() / 1e9
    };
    assert!((secs - (ts(&l[5]) - ts(&l[3]))).abs() < 1e-6, "{lat}");
    // The second response is paired with the second request, not the first.
    assert_eq!(
        s(&l[10][f::HTTP_REQUEST]["requestUrl"]),
        "http://10.88.0.2:8080/two.txt"
    );
    assert_eq!(s(&l[10][f::HTTP]["request"]["url"]), "/two.txt");
    let lat2: f64 = s(&l[10][f::HTTP_REQUEST]["latency"])
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!((lat2 - (ts(&l[10]) - ts(&l[9]))).abs() < 1e-6);
}

#[test]
fn acks_fins_and_body_of_a_traced_exchange_carry_its_trace() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    // 4: server ACK of the request; 7: body continuation; 13–16: FIN/ACK teardown.
    for n in [4, 6, 7, 8, 13, 14, 15, 16] {
        assert_eq!(
            s(&l[n][f::SPAN_ID]),
            "00f067aa0ba902b7",
            "packet {n}: {}",
            l[n][f::MESSAGE]
        );
    }
    assert_eq!(s(&l[7][f::HTTP]["kind"]), "body");
    assert_eq!(l[7][f::HTTP]["continuation"], true);
    assert!(l[7][f::HTTP].get("error").is_none());
    // The next connection's handshake has no trace (state dropped when the flow closed).
    for n in [17, 18, 19] {
        assert!(trace_of(&l[n]).is_none(), "packet {n}");
    }
    // An untraced connection: no trace anywhere.
    for (n, line) in l.iter().enumerate().take(56).skip(41) {
        assert!(trace_of(line).is_none(), "packet {n}");
    }
}

#[test]
fn cloud_trace_context_span_is_converted_to_16_hex_digits() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    let want = Some((
        "projects/my-project/traces/0af7651916cd43dd8448eb211c80319c".to_string(),
        // 12345678901234567890 = 0xab54a98ceb1f0ad2
        "ab54a98ceb1f0ad2".to_string(),
        true,
    ));
    assert_eq!(trace_of(&l[20]), want);
    assert_eq!(trace_of(&l[22]), want);
    // o=0 → not sampled; span 255 → 00000000000000ff.
    let t = trace_of(&l[61]).unwrap();
    assert_eq!(t.1, "00000000000000ff");
    assert!(!t.2);
}

#[test]
fn traceparent_wins_over_cloud_trace_context() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    let want = Some((
        "projects/my-project/traces/11111111111111111111111111111111".to_string(),
        "2222222222222222".to_string(),
        false, // the traceparent flag (-00), not the cloud header's o=1
    ));
    assert_eq!(trace_of(&l[32]), want);
    assert_eq!(trace_of(&l[34]), want);
}

#[test]
fn status_severities_404_warning_500_error() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    assert_eq!(s(&l[51][f::SEVERITY]), "WARNING");
    assert_eq!(l[51][f::HTTP_REQUEST]["status"], 404);
    assert_eq!(
        s(&l[51][f::HTTP_REQUEST]["requestUrl"]),
        "http://10.88.0.2:8080/missing"
    );
    assert_eq!(s(&l[61][f::SEVERITY]), "ERROR");
    assert_eq!(l[61][f::HTTP_REQUEST]["status"], 500);
    assert!(s(&l[61][f::MESSAGE]).contains(" | HTTP/1.1 500 Internal Server Error | latency:"));
    // Requests and continuations stay INFO.
    for n in [50, 52, 59, 63] {
        assert_eq!(s(&l[n][f::SEVERITY]), "INFO", "packet {n}");
    }
}

#[test]
fn chunked_response_and_multi_segment_post() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    let r = &l[73][f::HTTP];
    assert_eq!(r["body"]["chunked"], true);
    assert_eq!(r["fragmented"], true);
    for n in [75, 77, 79, 81] {
        assert_eq!(s(&l[n][f::HTTP]["kind"]), "body", "packet {n}");
        assert!(l[n].get(f::L7).is_none());
        assert_eq!(s(&l[n][f::SEVERITY]), "INFO");
    }
    assert_eq!(l[79][f::HTTP]["fragmented"], true);
    assert_eq!(l[81][f::HTTP]["fragmented"], false, "last chunk");
    // POST: headers and the body's start, then two continuations, then the 201.
    let p = &l[89][f::HTTP];
    assert_eq!(s(&p["method"]), "POST");
    assert_eq!(p["body"]["content_length"], 20000);
    assert_eq!(p["fragmented"], true);
    let first = p["body"]["length"].as_u64().unwrap();
    let c1 = l[91][f::HTTP]["size"].as_u64().unwrap();
    let c2 = l[93][f::HTTP]["size"].as_u64().unwrap();
    assert_eq!(first + c1 + c2, 20000);
    assert_eq!(l[91][f::HTTP]["fragmented"], true);
    assert_eq!(l[93][f::HTTP]["fragmented"], false);
    for n in [89, 91, 93, 95] {
        assert_eq!(s(&l[n][f::SPAN_ID]), "6666666666666666", "packet {n}");
    }
    assert_eq!(s(&l[95][f::HTTP_REQUEST]["requestMethod"]), "POST");
    assert_eq!(l[95][f::HTTP_REQUEST]["status"], 201);
}

#[test]
fn header_block_split_across_segments_is_reassembled() {
    let (_, l) = translate(Verbosity::Debug, Some("my-project"));
    let part = &l[105];
    assert_eq!(s(&part[f::HTTP]["kind"]), "partial");
    assert!(part[f::HTTP].get("error").is_none());
    assert!(
        part[f::HTTP].get("raw").is_none(),
        "no raw view of half a header"
    );
    assert_eq!(s(&part[f::SEVERITY]), "INFO");
    let full = &l[107];
    assert_eq!(s(&full[f::HTTP]["kind"]), "request");
    assert_eq!(full[f::HTTP]["reassembled"], true);
    assert_eq!(s(&full[f::HTTP]["url"]), "/index.html");
    assert_eq!(
        full[f::HTTP]["headers"]["Authorization"],
        serde_json::json!([f::REDACTED])
    );
    assert!(s(&full[f::HTTP]["raw"]).contains("Authorization: [REDACTED]\r\n"));
    assert_eq!(s(&full[f::SPAN_ID]), "8888888888888888");
    assert_eq!(s(&l[109][f::HTTP_REQUEST]["userAgent"]), "split/1");
    assert_eq!(s(&l[109][f::SPAN_ID]), "8888888888888888");
}

#[test]
fn secrets_never_reach_the_output() {
    for v in [Verbosity::Debug, Verbosity::Info] {
        let (out, l) = translate(v, Some("my-project"));
        let text = String::from_utf8(out).unwrap();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} leaked at {v:?}");
        }
        if v == Verbosity::Debug {
            let h = &l[71][f::HTTP]["headers"];
            assert_eq!(h["Authorization"], serde_json::json!([f::REDACTED]));
            assert_eq!(h["Cookie"], serde_json::json!([f::REDACTED]));
            assert_eq!(
                l[73][f::HTTP]["headers"]["Set-Cookie"],
                serde_json::json!([f::REDACTED])
            );
            // Other headers are kept.
            assert_eq!(h["User-Agent"], serde_json::json!(["curl/7.88.1"]));
            assert!(s(&l[71][f::HTTP]["raw"]).contains("Cookie: [REDACTED]\r\n"));
        }
    }
    // Extra names from the settings, everywhere (headers, raw, httpRequest.userAgent).
    let mut st = settings(Verbosity::Debug, None);
    st.redact_headers = vec!["user-agent".into()];
    let n = records(HTTP1).1.len();
    let (out, l) = translate_order(&mut Translator::new(st), &(0..n).collect::<Vec<_>>());
    assert!(!String::from_utf8(out).unwrap().contains("curl/7.88.1"));
    assert_eq!(s(&l[5][f::HTTP_REQUEST]["userAgent"]), f::REDACTED);
}

#[test]
fn info_keeps_the_summary_and_http_request_only() {
    let (_, l) = translate(Verbosity::Info, Some("my-project"));
    assert!(l[3].get(f::HTTP).is_none());
    assert!(s(&l[3][f::MESSAGE]).ends_with(" | HTTP/1.1 GET /index.html"));
    assert_eq!(s(&l[3][f::SPAN_ID]), "00f067aa0ba902b7");
    assert!(l[5].get(f::HTTP).is_none());
    assert_eq!(l[5][f::HTTP_REQUEST]["status"], 200);
    assert_eq!(s(&l[5][f::HTTP_REQUEST]["requestMethod"]), "GET");
    let (_, d) = translate(Verbosity::Debug, Some("my-project"));
    assert!(d[5][f::HTTP]["raw"].is_string());
}

#[test]
fn without_a_project_the_trace_is_the_bare_id() {
    let (_, l) = translate(Verbosity::Debug, None);
    assert_eq!(s(&l[3][f::TRACE]), "4bf92f3577b34da6a3ce929d0e0e4736");
    let (_, l) = translate(Verbosity::Debug, Some(""));
    assert_eq!(s(&l[3][f::TRACE]), "4bf92f3577b34da6a3ce929d0e0e4736");
}

/// pcapd routes a connection to one worker: the order of packets *between* flows changes
/// with the mode, the order within a flow does not. Trace fields must not depend on it.
#[test]
fn trace_fields_do_not_depend_on_interleaving_between_flows() {
    let (linktype, recs) = records(HTTP1);
    let n = recs.len();
    let (_, ordered) = translate(Verbosity::Debug, Some("p"));
    // Flows in reverse order of appearance, packets of each flow in order.
    let mut keyed: Vec<(u64, usize)> = (0..n)
        .map(|i| (render::shard_key(linktype, &recs[i].data), i))
        .collect();
    let first_seen = |k: u64| keyed.iter().position(|(kk, _)| *kk == k).unwrap();
    let mut order: Vec<(usize, usize)> = keyed.iter().map(|(k, i)| (first_seen(*k), *i)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let order: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
    keyed.clear();
    let (_, shuffled) = translate_order(
        &mut Translator::new(settings(Verbosity::Debug, Some("p"))),
        &order,
    );
    let mut traced = 0;
    for i in 0..n {
        assert_eq!(trace_of(&ordered[i]), trace_of(&shuffled[i]), "packet {i}");
        assert_eq!(
            ordered[i].get(f::HTTP_REQUEST),
            shuffled[i].get(f::HTTP_REQUEST)
        );
        traced += usize::from(trace_of(&ordered[i]).is_some());
    }
    assert!(traced > 50, "{traced}");
}

fn run_raw(packets: &[(bool, u8, &[u8])], v: Verbosity) -> (Vec<u8>, Vec<Value>) {
    let mut t = Translator::new(settings(v, Some("hand")));
    common::translate_connection(&mut t, &iface(), 80, packets.iter().copied())
}

const PSH_ACK: u8 = 0x18;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

#[test]
fn hand_built_pipelining_interim_and_errors() {
    let tp = "traceparent: 00-abcdefabcdefabcdefabcdefabcdef01-0123456789abcdef-01\r\n";
    let two = format!("GET /a HTTP/1.1\r\nHost: h\r\n{tp}\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    let (_, l) = run_raw(
        &[
            (true, PSH_ACK, two.as_bytes()),
            (false, PSH_ACK, b"HTTP/1.1 100 Continue\r\n\r\n"),
            (
                false,
                PSH_ACK,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA",
            ),
            (
                false,
                PSH_ACK,
                b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
            ),
            (true, PSH_ACK, b"GET / HTTP/1.1\r\nNo Colon Here\r\n\r\n"),
            (true, ACK, b""),
            (true, RST, b""),
            (true, ACK, b""),
        ],
        Verbosity::Info,
    );
    assert!(s(&l[0][f::MESSAGE]).ends_with(" | HTTP/1.1 GET /a"));
    assert_eq!(
        s(&l[0][f::TRACE]),
        "projects/hand/traces/abcdefabcdefabcdefabcdefabcdef01"
    );
    // 100 Continue: an interim response, the request still waits.
    assert_eq!(l[1][f::HTTP_REQUEST]["status"], 100);
    assert!(l[1][f::HTTP_REQUEST].get("requestMethod").is_none());
    // The 200 answers /a (traced), the 503 answers /b (untraced).
    assert_eq!(s(&l[2][f::HTTP_REQUEST]["requestUrl"]), "http://h/a");
    assert_eq!(s(&l[2][f::HTTP_REQUEST]["latency"]), "0.002s");
    assert_eq!(s(&l[2][f::SPAN_ID]), "0123456789abcdef");
    assert_eq!(s(&l[3][f::HTTP_REQUEST]["requestUrl"]), "http://h/b");
    assert!(trace_of(&l[3]).is_none());
    assert_eq!(s(&l[3][f::SEVERITY]), "ERROR");
    // A malformed request: ERROR with its code, also at INFO.
    assert_eq!(s(&l[4][f::SEVERITY]), "ERROR");
    assert_eq!(s(&l[4][f::HTTP]["error"]["code"]), "INVALID_HTTP11_REQUEST");
    assert!(s(&l[4][f::MESSAGE]).contains("INVALID_HTTP11_REQUEST: "));
    // RST drops the connection's HTTP state: the ACK after it has no trace.
    assert!(trace_of(&l[7]).is_none());
}

#[test]
fn mid_stream_header_text_is_redacted_in_opaque_samples() {
    let (out, l) = run_raw(
        &[(
            true,
            PSH_ACK,
            b"Cookie: a=MIDSTREAMSECRET\r\nAccept: */*\r\n\r\n",
        )],
        Verbosity::Debug,
    );
    assert!(!String::from_utf8(out).unwrap().contains("MIDSTREAMSECRET"));
    assert!(s(&l[0][f::L7][f::SAMPLE]).starts_with("Cookie: [REDACTED]\r\n"));
}
