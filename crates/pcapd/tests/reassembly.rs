//! HTTP over impaired TCP: the parsers read each direction's bytes in order.
//!
//! - `crafted_*`: segments written by hand (exact timings): a request whose segments arrive
//!   in reverse, a response with a segment out of order and one retransmitted, a duplicated
//!   request, a request whose first segment the capture never saw (the server acknowledged
//!   it: skipped, marked, the parser resynchronises at the next request), a response body
//!   missing a segment (skipped inside the body: the next response is still paired), and an
//!   h2c connection with reversed and retransmitted frames.
//! - `live_*`: the kernel's TCP in two namespaces with 5 % random loss per direction
//!   (iptables on INPUT and OUTPUT of both, so before and after the capture point), real
//!   curl (HTTP/1.1 keep-alive, h2c with prior knowledge) and grpcio clients; the capture, and
//!   a copy with segments swapped and duplicated (reordering, which iptables cannot make),
//!   are read by `pcapd --read`: every request and every response appears exactly once,
//!   with its status and trace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testbed::synth::{self, Ip, ACK, FIN, PSH, SYN};
use testbed::{ChildGuard, TestNet};

mod common;
use common::live::{
    clean_env, impair, listening, nghttpd, read_lines, spawn_ready, stop, tcpdump_on,
};
use common::reorder::{self, Crafting, Partner};

const BIN: &str = env!("CARGO_BIN_EXE_pcapd");

fn tp(n: u32) -> String {
    format!("00-{n:032x}-{:016x}-01", 0x1000 + n)
}

fn trace_id(n: u32) -> String {
    format!("{n:032x}")
}

/// `pcapd --read` at DEBUG: one JSON value per packet entry.
fn read(file: &Path) -> Vec<Value> {
    read_at(file, "DEBUG")
        .into_iter()
        .filter(|v: &Value| v["pcap"]["num"].is_string())
        .collect()
}

/// `pcapd --read` at `verbosity`: every entry.
fn read_at(file: &Path, verbosity: &str) -> Vec<Value> {
    // `REASSEMBLY_PCAPD`: another binary to read with (to see what an older one made of it).
    let bin = std::env::var("REASSEMBLY_PCAPD").unwrap_or_else(|_| BIN.to_string());
    let mut command = Command::new(bin);
    clean_env(&mut command)
        .env("PCAP_VERBOSITY", verbosity)
        .stderr(Stdio::null());
    read_lines(&mut command, file)
        .into_iter()
        .filter(|v| v["pcap"].is_object())
        .collect()
}

fn trace_of(v: &Value) -> String {
    v["logging.googleapis.com/trace"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap()
}

/// Builds the records of a capture: packets with their times in microseconds.
struct Capture {
    records: Vec<(u64, Vec<u8>)>,
}

impl Capture {
    fn push(&mut self, micros: u64, packet: Vec<u8>) -> usize {
        self.records.push((micros, packet));
        self.records.len() - 1
    }

    fn write(&self, file: &Path) {
        let out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
        let mut pcap = testbed::pcapfile::Writer::new(out, 262_144).unwrap();
        for (t, p) in &self.records {
            pcap.frame_at(*t, p).unwrap();
        }
        pcap.finish().unwrap();
    }
}

/// Makers of the client's and the server's segments of a connection from `ip` port `cp` to
/// port `sp`: (sequence, acknowledgement, flags, payload).
#[allow(clippy::type_complexity, reason = "two closures of one signature")]
fn segments(
    ip: Ip,
    cp: u16,
    sp: u16,
) -> (
    impl Fn(u32, u32, u8, &[u8]) -> Vec<u8>,
    impl Fn(u32, u32, u8, &[u8]) -> Vec<u8>,
) {
    let back = ip.reversed();
    (
        move |c: u32, s: u32, flags: u8, p: &[u8]| synth::tcp(ip, cp, sp, c, s, flags, p, 1),
        move |s: u32, c: u32, flags: u8, p: &[u8]| synth::tcp(back, sp, cp, s, c, flags, p, 2),
    )
}

impl Capture {
    /// A capture of the handshake (at [`T0`]) of the connection whose segments `cseg` and
    /// `sseg` make, with initial sequence numbers `c` and `s`; then the next ones.
    fn handshake(
        cseg: impl Fn(u32, u32, u8, &[u8]) -> Vec<u8>,
        sseg: impl Fn(u32, u32, u8, &[u8]) -> Vec<u8>,
        c: u32,
        s: u32,
    ) -> (Capture, u32, u32) {
        let mut cap = Capture {
            records: Vec::new(),
        };
        cap.push(T0, cseg(c, 0, SYN, b""));
        cap.push(T0 + 1, sseg(s, c + 1, SYN | ACK, b""));
        cap.push(T0 + 2, cseg(c + 1, s + 1, ACK, b""));
        (cap, c + 1, s + 1)
    }
}

const T0: u64 = 1_767_225_600_000_000;
const MS: u64 = 1000;

#[test]
fn crafted_http1_reordered_retransmitted_and_gaps() {
    let ip = Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let (cseg, sseg) = segments(ip, 40000, 8080);
    let (mut cap, mut c, mut s) = Capture::handshake(&cseg, &sseg, 1000, 5000);
    let req = |path: &str, n: u32| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\ntraceparent: {}\r\n\r\n",
            tp(n)
        )
        .into_bytes()
    };
    // 1. The request's two segments arrive in reverse: the second waits, the first
    //    completes the request (its entry).
    let r1 = req("/one", 1);
    let held_r1 = cap.push(T0 + 1000 * MS, cseg(c + 20, s, ACK | PSH, &r1[20..]));
    let req1 = cap.push(T0 + 1010 * MS, cseg(c, s, ACK | PSH, &r1[..20]));
    c += r1.len() as u32;
    // The response: header block over two segments, the third segment (body end) before
    // the second, then the second retransmitted.
    let mut p1 = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n".to_vec();
    p1.extend_from_slice(&[b'b'; 30]);
    let (a, b) = (p1[..20].to_vec(), p1[20..p1.len() - 20].to_vec());
    let tail = p1[p1.len() - 20..].to_vec();
    cap.push(T0 + 1050 * MS, sseg(s, c, ACK, &a));
    let held_p3 = cap.push(
        T0 + 1055 * MS,
        sseg(s + (a.len() + b.len()) as u32, c, ACK | PSH, &tail),
    );
    let resp1 = cap.push(T0 + 1060 * MS, sseg(s + a.len() as u32, c, ACK, &b));
    let retrans_p2 = cap.push(T0 + 1300 * MS, sseg(s + a.len() as u32, c, ACK, &b));
    s += p1.len() as u32;
    cap.push(T0 + 1310 * MS, cseg(c, s, ACK, b""));
    // 2. A request sent twice.
    let r2 = req("/two", 2);
    cap.push(T0 + 2000 * MS, cseg(c, s, ACK | PSH, &r2));
    let dup_r2 = cap.push(T0 + 2200 * MS, cseg(c, s, ACK | PSH, &r2));
    c += r2.len() as u32;
    let p2 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    cap.push(T0 + 2250 * MS, sseg(s, c, ACK | PSH, p2));
    s += p2.len() as u32;
    // 3. The first 20 bytes of a request are never captured; the server acknowledges all
    //    of it and answers. The client's next request (4) skips the gap: the parser
    //    resynchronises at its request line.
    let r3 = req("/three", 3);
    cap.push(T0 + 3000 * MS, cseg(c + 20, s, ACK | PSH, &r3[20..]));
    c += r3.len() as u32;
    let p3 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    cap.push(T0 + 3010 * MS, sseg(s, c, ACK | PSH, p3));
    s += p3.len() as u32;
    let r4 = req("/four", 4);
    let req4 = cap.push(T0 + 4000 * MS, cseg(c, s, ACK | PSH, &r4));
    c += r4.len() as u32;
    let p4 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    cap.push(T0 + 4010 * MS, sseg(s, c, ACK | PSH, p4));
    s += p4.len() as u32;
    // 5. A response body missing its middle segment (never captured, acknowledged): the
    //    gap is skipped inside the body, the next response is still found and paired.
    let r5 = req("/five", 5);
    cap.push(T0 + 5000 * MS, cseg(c, s, ACK | PSH, &r5));
    c += r5.len() as u32;
    let mut p5 = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n".to_vec();
    let head5 = p5.len();
    p5.extend(std::iter::repeat_n(b'x', 3000));
    let (x, y) = (head5 + 900, head5 + 1900);
    cap.push(T0 + 5010 * MS, sseg(s, c, ACK, &p5[..x]));
    cap.push(T0 + 5012 * MS, sseg(s + y as u32, c, ACK | PSH, &p5[y..]));
    s += p5.len() as u32;
    cap.push(T0 + 5020 * MS, cseg(c, s, ACK, b""));
    let r6 = req("/six", 6);
    cap.push(T0 + 6000 * MS, cseg(c, s, ACK | PSH, &r6));
    c += r6.len() as u32;
    let p6 = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let resp6 = cap.push(T0 + 6010 * MS, sseg(s, c, ACK | PSH, p6));
    s += p6.len() as u32;
    cap.push(T0 + 7000 * MS, cseg(c, s, FIN | ACK, b""));
    cap.push(T0 + 7001 * MS, sseg(s, c + 1, FIN | ACK, b""));
    cap.push(T0 + 7002 * MS, cseg(c + 1, s + 1, ACK, b""));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crafted-http1.pcap");
    cap.write(&file);
    let entries = read(&file);
    assert_eq!(entries.len(), cap.records.len());
    for v in &entries {
        println!("{}", message(v));
    }
    let at = |n: usize| &entries[n];
    // Requests: each once, on the packet that completed it.
    let requests: Vec<(usize, String)> = entries
        .iter()
        .enumerate()
        .filter(|(_, v)| v["HTTP"]["kind"] == "request")
        .map(|(i, v)| (i, v["HTTP"]["url"].as_str().unwrap().to_string()))
        .collect();
    let urls: Vec<&str> = requests.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(urls, ["/one", "/two", "/four", "/five", "/six"]);
    assert_eq!(requests[0].0, req1);
    assert_eq!(requests[2].0, req4);
    // Responses: each once, with its status, request and trace.
    let responses: Vec<(usize, String, u64, String)> = entries
        .iter()
        .enumerate()
        .filter(|(_, v)| v["httpRequest"].is_object())
        .map(|(i, v)| {
            let hr = &v["httpRequest"];
            (
                i,
                hr["requestUrl"].as_str().unwrap_or("").to_string(),
                hr["status"].as_u64().unwrap(),
                trace_of(v),
            )
        })
        .collect();
    let expected = [
        ("http://x/one", 200, trace_id(1)),
        ("http://x/two", 404, trace_id(2)),
        // Its request was lost to the capture: no request, no trace.
        ("", 503, String::new()),
        ("http://x/four", 200, trace_id(4)),
        ("http://x/five", 200, trace_id(5)),
        ("http://x/six", 201, trace_id(6)),
    ];
    let got: Vec<(&str, u64, String)> = responses
        .iter()
        .map(|(_, u, s, t)| (u.as_str(), *s, t.clone()))
        .collect();
    let want: Vec<(&str, u64, String)> = expected
        .iter()
        .map(|(u, s, t)| (*u, *s as u64, t.clone()))
        .collect();
    assert_eq!(got, want);
    // The first response completes on its second segment; latency runs from the request's
    // first byte (captured at 1.010 s) to the response's first byte (1.050 s).
    assert_eq!(responses[0].0, resp1);
    assert_eq!(at(resp1)["httpRequest"]["latency"], "0.04s");
    // Held and retransmitted segments say so and parse nothing.
    assert_eq!(at(held_r1)["L7"]["stream"], "held_out_of_order");
    assert_eq!(at(held_p3)["L7"]["stream"], "held_out_of_order");
    assert_eq!(at(retrans_p2)["L7"]["stream"], "retransmitted");
    assert_eq!(at(dup_r2)["L7"]["stream"], "retransmitted");
    // The gap before request 4: 20 bytes missing, the rest of request 3 skipped.
    let h4 = &at(req4)["HTTP"];
    assert_eq!(h4["gap"], 20, "{h4}");
    assert_eq!(h4["skipped"], r3.len() - 20);
    assert!(message(at(req4)).contains("gap:20"));
    // The gap inside response 5's body is skipped by its length: response 6 is whole.
    assert_eq!(at(resp6)["HTTP"]["gap"], 1000);
    assert_eq!(at(resp6)["HTTP"]["code"], 201);

    // SUMMARY: one exchange entry per response, with request, status, latency and trace.
    let exchanges: Vec<(String, u64, String, f64)> = exchanges(&read_at(&file, "SUMMARY"))
        .iter()
        .map(|v| {
            let x = &v["exchange"];
            (
                x["url"].as_str().unwrap_or("").to_string(),
                x["status"].as_u64().unwrap(),
                trace_of(v),
                x["latency"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    let got: Vec<(&str, u64, String)> = exchanges
        .iter()
        .map(|(u, s, t, _)| (u.as_str(), *s, t.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(exchanges[0].3, 0.04);
}

/// The exchange entries of a SUMMARY run.
fn exchanges(entries: &[Value]) -> Vec<&Value> {
    entries.iter().filter(|v| v["kind"] == "exchange").collect()
}

#[test]
fn crafted_dns_pairs_are_exchanges_with_latency() {
    let ip = Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 53));
    let mut cap = Capture {
        records: Vec::new(),
    };
    for (n, (id, name)) in [(0x1234u16, "a.example"), (0x1235, "b.example")]
        .into_iter()
        .enumerate()
    {
        let t = T0 + n as u64 * 1000 * MS;
        cap.push(
            t,
            synth::udp(ip, 40000 + n as u16, 53, &synth::dns(id, name, None), 1),
        );
        let answer = synth::dns(id, name, Some(Ipv4Addr::new(192, 0, 2, 1)));
        let back = synth::udp(ip.reversed(), 53, 40000 + n as u16, &answer, 2);
        cap.push(t + (12 + n as u64) * MS, back);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dns.pcap");
    cap.write(&file);
    let entries = read_at(&file, "SUMMARY");
    let x: Vec<(String, String, f64)> = exchanges(&entries)
        .iter()
        .map(|v| {
            let e = &v["exchange"];
            (
                e["dns"]["qname"].as_str().unwrap().to_string(),
                e["dns"]["rcode"].as_str().unwrap().to_string(),
                e["latency"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        x,
        [
            ("a.example".to_string(), "NOERROR".to_string(), 0.012),
            ("b.example".to_string(), "NOERROR".to_string(), 0.013),
        ]
    );
    // Nothing else: the packets themselves are not anomalies.
    assert_eq!(entries.len(), 2, "{entries:?}");
}

#[test]
fn crafted_h2c_reordered_and_retransmitted_frames() {
    let ip = Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let (cseg, sseg) = segments(ip, 40001, 8081);
    let (mut cap, mut c, mut s) = Capture::handshake(&cseg, &sseg, 7000, 9000);
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    synth::h2_frame(&mut preface, 4, 0, 0, &[]);
    cap.push(T0 + 10 * MS, cseg(c, s, ACK | PSH, &preface));
    c += preface.len() as u32;
    let mut settings = Vec::new();
    synth::h2_frame(&mut settings, 4, 0, 0, &[]);
    cap.push(T0 + 11 * MS, sseg(s, c, ACK | PSH, &settings));
    s += settings.len() as u32;
    let request = |stream: u32, path: &str, n: u32| {
        let mut block = vec![0x82, 0x86];
        synth::hpack_literal(&mut block, ":path", path.as_bytes(), false);
        synth::hpack_literal(&mut block, ":authority", b"x", false);
        synth::hpack_literal(&mut block, "traceparent", tp(n).as_bytes(), false);
        let mut f = Vec::new();
        synth::h2_frame(&mut f, 1, 0x05, stream, &block);
        f
    };
    let response = |stream: u32, status: u8| {
        let mut f = Vec::new();
        synth::h2_frame(&mut f, 1, 0x04, stream, &[status]);
        synth::h2_frame(&mut f, 0, 0x01, stream, b"body");
        f
    };
    // Stream 1: the request's segments in reverse, then the whole request again.
    let r1 = request(1, "/h2a", 7);
    cap.push(T0 + 1000 * MS, cseg(c + 10, s, ACK | PSH, &r1[10..]));
    cap.push(T0 + 1001 * MS, cseg(c, s, ACK, &r1[..10]));
    cap.push(T0 + 1100 * MS, cseg(c, s, ACK | PSH, &r1));
    c += r1.len() as u32;
    // Its response twice (a retransmission).
    let p1 = response(1, 0x88);
    cap.push(T0 + 1200 * MS, sseg(s, c, ACK | PSH, &p1));
    cap.push(T0 + 1400 * MS, sseg(s, c, ACK | PSH, &p1));
    s += p1.len() as u32;
    // Stream 3: the response's DATA frame segment before its HEADERS segment.
    let r3 = request(3, "/h2b", 8);
    cap.push(T0 + 2000 * MS, cseg(c, s, ACK | PSH, &r3));
    c += r3.len() as u32;
    let p3 = response(3, 0x8e);
    let cut = 10; // the HEADERS frame: 9 bytes of header + 1 of block
    cap.push(
        T0 + 2100 * MS,
        sseg(s + cut as u32, c, ACK | PSH, &p3[cut..]),
    );
    cap.push(T0 + 2101 * MS, sseg(s, c, ACK, &p3[..cut]));
    s += p3.len() as u32;
    cap.push(T0 + 3000 * MS, cseg(c, s, FIN | ACK, b""));
    cap.push(T0 + 3001 * MS, sseg(s, c + 1, FIN | ACK, b""));
    cap.push(T0 + 3002 * MS, cseg(c + 1, s + 1, ACK, b""));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crafted-h2c.pcap");
    cap.write(&file);
    let entries = read(&file);
    for v in &entries {
        println!("{}", message(v));
        assert!(v["HTTP"].get("error").is_none(), "{v}");
    }
    let count = |needle: &str| {
        entries
            .iter()
            .filter(|v| message(v).contains(needle))
            .count()
    };
    assert_eq!(count("GET /h2a"), 1);
    assert_eq!(count("GET /h2b"), 1);
    let responses: Vec<(String, u64, String)> = entries
        .iter()
        .filter(|v| v["httpRequest"].is_object())
        .map(|v| {
            let hr = &v["httpRequest"];
            (
                hr["requestUrl"].as_str().unwrap_or("").to_string(),
                hr["status"].as_u64().unwrap(),
                trace_of(v),
            )
        })
        .collect();
    assert_eq!(
        responses,
        [
            ("http://x/h2a".to_string(), 200, trace_id(7)),
            ("http://x/h2b".to_string(), 500, trace_id(8)),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Live: real clients over lossy links.

const APP_V4: &str = "198.51.100.1";
const H1_PORT: u16 = 8080;
const H2_PORT: u16 = 8082;
const GRPC_PORT: u16 = 50051;
const SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/resources/status_server.py"
);
const GRPC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/resources/grpc_h2c.py");

/// What one workload request is: its path, the status the server gives, its trace.
struct Expect {
    path: String,
    status: u64,
    trace: String,
}

/// HTTP/1.1 requests: status and body size from the path (bodies up to 40 kB span many
/// segments).
fn h1_workload() -> Vec<Expect> {
    (0..60u32)
        .map(|i| {
            let status = [200, 200, 404, 500, 201, 200][i as usize % 6];
            let size = [120, 40_000, 3_000, 0, 700, 20_000][i as usize % 6];
            Expect {
                path: format!("/status/{status}/{size}/{i}"),
                status,
                trace: trace_id(100 + i),
            }
        })
        .collect()
}

fn h2_workload() -> Vec<Expect> {
    (0..18u32)
        .map(|i| {
            let status = [200, 404, 200][i as usize % 3];
            let size = [50, 0, 30_000][i as usize % 3];
            Expect {
                path: format!("/status/{status}/{size}/h2-{i}"),
                status,
                trace: trace_id(200 + i),
            }
        })
        .collect()
}

/// One curl for `work`: keep-alive, one URL after another (`--next`), each with its own
/// traceparent.
fn curl(net: &TestNet, port: u16, h2: bool, work: &[Expect]) {
    let mut args: Vec<String> = Vec::new();
    for (i, e) in work.iter().enumerate() {
        if i > 0 {
            args.push("--next".into());
        }
        if h2 {
            args.push("--http2-prior-knowledge".into());
        }
        args.extend([
            "-sS".into(),
            "-o".into(),
            "/dev/null".into(),
            "--max-time".into(),
            "60".into(),
            "-H".into(),
            format!("traceparent: 00-{}-{:016x}-01", e.trace, 7 + i),
            format!("http://{APP_V4}:{port}{}", e.path),
        ]);
    }
    let out = net.peer().run("curl", &args).unwrap();
    assert!(out.status.success(), "curl: {out:?}");
}

fn capture_workloads(file: &Path) {
    let net = TestNet::new("reasm").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    // 2.5 % on each of the four chains: 5 % per direction.
    impair(net.app(), "0.025");
    impair(net.peer(), "0.025");
    let mut h1 = spawn_ready(
        net.app()
            .command("python3")
            .args([SERVER, APP_V4, &H1_PORT.to_string()])
            .stderr(Stdio::null()),
    );
    // h2c: nghttpd serves files (200) and answers 404 for the others.
    let docs = file.with_extension("docs");
    for e in h2_workload().iter().filter(|e| e.status == 200) {
        let f = docs.join(e.path.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        let size: usize = e.path.split('/').nth(3).unwrap().parse().unwrap();
        std::fs::write(&f, vec![b'h'; size]).unwrap();
    }
    let _h2 = nghttpd(net.app(), &docs, H2_PORT);
    let addr = format!("{APP_V4}:{GRPC_PORT}");
    let _grpc = ChildGuard::spawn(
        net.app()
            .command("python3")
            .args([GRPC, "server", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        listening(net.app(), "t", GRPC_PORT)
    })
    .expect("gRPC server listens");
    // A 64 MiB buffer: with the default 2 MiB, a loaded machine made the capture itself drop
    // packets (gaps no retransmission fills, exchanges missing).
    let tcpdump = tcpdump_on(net.app(), "eth0", file, "tcp", &["-B", "65536"]);
    curl(&net, H1_PORT, false, &h1_workload());
    // curl's prior-knowledge h2c does not survive `--next` here: one connection each.
    for e in h2_workload().chunks(1) {
        curl(&net, H2_PORT, true, e);
    }
    for n in 0..3 {
        let out = net
            .peer()
            .run("python3", [GRPC, "client", &addr, &tp(300 + n)])
            .unwrap();
        assert!(out.status.success(), "grpc client: {out:?}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop(tcpdump);
    h1.kill().unwrap();
}

/// `m` contains `needle` not followed by more of a path.
fn mentions(m: &str, needle: &str) -> bool {
    m.match_indices(needle).any(|(i, _)| {
        m[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '/' || c == '-'))
    })
}

/// Every request and response of the workloads exactly once, with status and trace.
fn check(name: &str, file: &Path) {
    let entries = read(file);
    let mut failures = Vec::new();
    let retrans = entries
        .iter()
        .filter(|v| v["L4"]["analysis"]["retransmission"] == true)
        .count();
    let held = entries
        .iter()
        .filter(|v| v["L7"]["stream"] == "held_out_of_order")
        .count();
    println!(
        "{name}: {} packets, {retrans} retransmissions, {held} segments held out of order",
        entries.len()
    );
    assert!(retrans > 0, "{name}: no retransmission: no impairment");
    for e in h1_workload().iter().chain(h2_workload().iter()) {
        let requests = entries
            .iter()
            .filter(|v| mentions(message(v), &format!("GET {}", e.path)))
            .collect::<Vec<_>>();
        if requests.len() != 1 || trace_of(requests[0]) != e.trace {
            failures.push(format!(
                "{}: {} request entries {:?}",
                e.path,
                requests.len(),
                requests.iter().map(|v| message(v)).collect::<Vec<_>>()
            ));
        }
        let responses: Vec<&Value> = entries
            .iter()
            .filter(|v| {
                v["httpRequest"]["requestUrl"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&e.path))
            })
            .collect();
        let ok = responses.len() == 1
            && responses[0]["httpRequest"]["status"] == e.status
            && trace_of(responses[0]) == e.trace;
        if !ok {
            failures.push(format!(
                "{}: responses {:?}",
                e.path,
                responses
                    .iter()
                    .map(|v| (message(v), trace_of(v)))
                    .collect::<Vec<_>>()
            ));
        }
    }
    // gRPC: per call, one request, one response, one status in the trailers.
    for n in 0..3 {
        let trace = trace_id(300 + n);
        for (method, code) in [("Say", 0), ("Missing", 5)] {
            let of_call = |v: &&Value| trace_of(v) == trace;
            let requests = entries
                .iter()
                .filter(of_call)
                .filter(|v| mentions(message(v), &format!("POST /pkg.Echo/{method}")))
                .count();
            let responses = entries
                .iter()
                .filter(of_call)
                .filter(|v| {
                    v["httpRequest"]["requestUrl"]
                        .as_str()
                        .is_some_and(|u| u.ends_with(&format!("/pkg.Echo/{method}")))
                })
                .count();
            let statuses: Vec<u64> = entries
                .iter()
                .filter(of_call)
                .filter(|v| v["HTTP"]["grpc"]["method"] == method)
                .filter_map(|v| v["HTTP"]["grpc"]["status"].as_u64())
                .collect();
            // A trailers-only response carries the status on its response entry.
            if requests != 1 || responses != 1 || statuses != [code] {
                failures.push(format!(
                    "gRPC {method} {trace}: {requests} requests, {responses} responses, statuses {statuses:?}"
                ));
            }
        }
    }
    for f in &failures {
        println!("  {f}");
    }
    assert!(failures.is_empty(), "{name}: {} failures", failures.len());
}

#[test]
fn live_http1_h2c_grpc_at_5_percent_loss_with_reordering() {
    let dir = tempfile::tempdir().unwrap();
    let lossy = dir.path().join("lossy.pcap");
    capture_workloads(&lossy);
    let reordered = dir.path().join("reordered.pcap");
    // At every 8th TCP data segment, it and the last of the next few segments of the same
    // direction are swapped (when that one carries data); every 11th is sent twice.
    let (swaps, dups) = reorder::craft(
        &lossy,
        &reordered,
        Crafting {
            swap_every: 8,
            partner: Partner::RunEnd,
            dup_every: 11,
        },
    );
    assert!(swaps > 10 && dups > 10, "{swaps} swaps, {dups} duplicates");
    if std::env::var_os("REASSEMBLY_KEEP").is_some() {
        for f in [&lossy, &reordered] {
            let keep = std::env::temp_dir().join(f.file_name().unwrap());
            std::fs::copy(f, &keep).unwrap();
            println!("kept {}", keep.display());
        }
    }
    check("5 % loss", &lossy);
    check("5 % loss, reordered and duplicated", &reordered);
    check_exchanges("5 % loss", &lossy);
    check_exchanges("5 % loss, reordered and duplicated", &reordered);
}

/// At SUMMARY: one exchange entry per HTTP request and gRPC call of the workloads, with its
/// status and trace, and no other.
fn check_exchanges(name: &str, file: &Path) {
    let entries = read_at(file, "SUMMARY");
    let xs = exchanges(&entries);
    let mut failures = Vec::new();
    for e in h1_workload().iter().chain(h2_workload().iter()) {
        let mine: Vec<&&Value> = xs
            .iter()
            .filter(|v| {
                v["exchange"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&e.path))
            })
            .collect();
        if mine.len() != 1
            || mine[0]["exchange"]["status"] != e.status
            || trace_of(mine[0]) != e.trace
            || !mine[0]["exchange"]["latency"].is_f64()
        {
            failures.push(format!("{}: {mine:?}", e.path));
        }
    }
    for n in 0..3 {
        let trace = trace_id(300 + n);
        for (method, code) in [("Say", 0), ("Missing", 5)] {
            let calls: Vec<u64> = xs
                .iter()
                .filter(|v| trace_of(v) == trace && v["exchange"]["grpc"]["method"] == method)
                .filter_map(|v| v["exchange"]["grpc"]["status"].as_u64())
                .collect();
            if calls != [code] {
                failures.push(format!("gRPC {method} {trace}: {calls:?}"));
            }
        }
    }
    let expected = h1_workload().len() + h2_workload().len() + 6;
    println!(
        "{name}: {} SUMMARY entries, {} exchanges",
        entries.len(),
        xs.len()
    );
    if xs.len() != expected {
        failures.push(format!(
            "{} exchange entries, {expected} expected",
            xs.len()
        ));
    }
    for f in &failures {
        println!("  {f}");
    }
    assert!(failures.is_empty(), "{name}: {} failures", failures.len());
}
