//! The real `pcapd` binary capturing live HTTP/2 over cleartext TCP (h2c) in a network
//! namespace the test creates: `nghttpd` serving files to `curl
//! --http2-prior-knowledge` and `nghttp` (concurrent streams, trace headers, a 30 KB header
//! that needs CONTINUATION frames, secrets), a Python `grpcio` server and client (an OK
//! call and a NOT_FOUND error), and a capture started in the middle of a long-lived
//! connection whose HPACK dynamic table it never saw. Every output line is parsed as JSON
//! and checked field by field. The trace fields of `pcapd --read` of a reference capture
//! are the same with `--ordered` and without, and with one worker or four.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use render::fields as f;
use serde_json::Value;
use testbed::{ChildGuard, Netns, TestNet};

mod common;
use common::live::{
    self, is_packet, listening, nghttpd, read_lines, ready_line, reference_tcpdump, stop, Running,
};

const APP_V4: &str = "198.51.100.1";
const PORT: u16 = 8080;
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

const TP1: &str = "00-11111111111111111111111111111111-1111111111111111-01";
const XC2: &str = "22222222222222222222222222222222/33;o=1";
const TP3: &str = "00-33333333333333333333333333333333-3333333333333333-00";
const XC3: &str = "44444444444444444444444444444444/1;o=1";
const TP5: &str = "00-55555555555555555555555555555555-5555555555555555-01";
const TPG: &str = "00-66666666666666666666666666666666-6666666666666666-01";

fn resources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources")
}

fn pcapd_command(ns: &Netns) -> Command {
    let mut command = live::pcapd_command(Some(ns));
    command.env("GOOGLE_CLOUD_PROJECT", "h2-project");
    command
}

/// pcapd capturing `filter` on eth0 of the app namespace, ready.
fn start_pcapd(ns: &Netns, dir: &Path, filter: &str) -> Running {
    let mut command = pcapd_command(ns);
    command
        .args(["--iface", "eth0", "--json-log", "--filter", filter])
        .args(["--redact-headers", "x-api-key"])
        .arg("--ready-dir")
        .arg(dir.join("ready"));
    let pcapd = Running::start(command);
    pcapd.wait_for_line("pcapd readiness", ready_line);
    pcapd
}

fn packets(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|v| is_packet(v)).collect()
}

fn http(v: &Value) -> &Value {
    &v[f::HTTP]
}

/// Entries whose HTTP/2 frames hold a header block with `name: value`.
fn with_header<'a>(packets: &[&'a Value], name: &str, value: &str) -> Vec<&'a Value> {
    packets
        .iter()
        .copied()
        .filter(|v| {
            http(v)["frames"].as_array().is_some_and(|fs| {
                fs.iter().any(|fr| {
                    fr["headers"][name]
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|x| x == value))
                })
            })
        })
        .collect()
}

/// Response entries (`httpRequest`) for request URL `url`.
fn responses<'a>(packets: &[&'a Value], url: &str) -> Vec<&'a Value> {
    packets
        .iter()
        .copied()
        .filter(|v| v[f::HTTP_REQUEST]["requestUrl"] == format!("http://{APP_V4}:{PORT}{url}"))
        .collect()
}

fn trace(v: &Value) -> Option<(String, String, bool)> {
    Some((
        v.get(f::TRACE)?.as_str()?.to_string(),
        v[f::SPAN_ID].as_str()?.to_string(),
        v[f::TRACE_SAMPLED].as_bool()?,
    ))
}

fn expect_trace(v: &Value, id: &str, span: &str, sampled: bool) {
    assert_eq!(
        trace(v),
        Some((
            format!("projects/h2-project/traces/{id}"),
            span.to_string(),
            sampled
        )),
        "{v}"
    );
}

fn curl(net: &TestNet, path: &str, headers: &[&str]) {
    let mut args = vec![
        "--http2-prior-knowledge".to_string(),
        "-sS".into(),
        "-o".into(),
        "/dev/null".into(),
        "--max-time".into(),
        "10".into(),
    ];
    for h in headers {
        args.push("-H".into());
        args.push(h.to_string());
    }
    args.push(format!("http://{APP_V4}:{PORT}{path}"));
    net.peer().run("curl", &args).unwrap();
}

/// `(pcap.num, trace, span, sampled)` of every traced entry of `pcapd --read FILE ARGS`.
fn read_traces(ns: &Netns, file: &Path, args: &[&str]) -> BTreeMap<String, (String, String, bool)> {
    read_lines(pcapd_command(ns).args(args), file)
        .into_iter()
        .filter_map(|v| Some((v[f::PCAP][f::NUM].as_str()?.to_string(), trace(&v)?)))
        .collect()
}

#[test]
fn live_h2c_nghttpd_curl_nghttp_streams_traces_continuation_and_secrets() {
    let net = TestNet::new("pcapd-h2").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for name in [
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
        "e.txt",
        "big.txt",
        "secret.txt",
    ] {
        std::fs::write(docs.join(name), format!("content of {name}\n")).unwrap();
    }
    let _nghttpd = nghttpd(net.app(), &docs, PORT);
    let filter = format!("tcp port {PORT}");
    let pcapd = start_pcapd(net.app(), dir.path(), &filter);
    let reference = dir.path().join("reference.pcap");
    let tcpdump = reference_tcpdump(net.app(), &reference, &filter);

    curl(&net, "/a.txt", &[&format!("traceparent: {TP1}")]);
    curl(&net, "/b.txt", &[&format!("X-Cloud-Trace-Context: {XC2}")]);
    curl(
        &net,
        "/c.txt",
        &[
            &format!("traceparent: {TP3}"),
            &format!("X-Cloud-Trace-Context: {XC3}"),
        ],
    );
    curl(&net, "/d.txt", &[]);
    curl(&net, "/missing.txt", &[]);
    curl(
        &net,
        "/secret.txt",
        &[
            "Authorization: Bearer LIVEAUTHSECRET",
            "Cookie: sid=LIVECOOKIESECRET",
            "X-Api-Key: LIVEAPIKEYSECRET",
        ],
    );
    // Five concurrent streams on one connection.
    net.peer()
        .run(
            "nghttp",
            [
                "-n",
                "-m",
                "5",
                "-H",
                &format!("traceparent: {TP5}"),
                &format!("http://{APP_V4}:{PORT}/e.txt"),
            ],
        )
        .unwrap();
    // A 30 KB header (26 KB Huffman-coded): the block spans HEADERS + CONTINUATION frames.
    let big = format!("x-big: {}", "x".repeat(30_000));
    net.peer()
        .run(
            "nghttp",
            ["-n", "-H", &big, &format!("http://{APP_V4}:{PORT}/big.txt")],
        )
        .unwrap();

    std::thread::sleep(Duration::from_millis(300));
    stop(tcpdump);
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let raw: String = lines.iter().map(|v| v.to_string()).collect();
    for secret in ["LIVEAUTHSECRET", "LIVECOOKIESECRET", "LIVEAPIKEYSECRET"] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
    let packets = packets(&lines);
    for v in &packets {
        assert!(v.get(f::ERROR).is_none(), "{v}");
        assert!(http(v).get("error").is_none(), "{v}");
    }

    // traceparent alone; request and response carry it; the response has httpRequest.
    let req = with_header(&packets, ":path", "/a.txt");
    assert_eq!(req.len(), 1, "{req:?}");
    assert_eq!(http(req[0])["proto"], "HTTP/2");
    assert_eq!(http(req[0])["kind"], "request");
    expect_trace(
        req[0],
        "11111111111111111111111111111111",
        "1111111111111111",
        true,
    );
    let resp = responses(&packets, "/a.txt");
    assert_eq!(resp.len(), 1);
    let hr = &resp[0][f::HTTP_REQUEST];
    assert_eq!(
        (hr["status"].as_u64(), hr["requestMethod"].as_str()),
        (Some(200), Some("GET"))
    );
    assert_eq!(hr["protocol"], "HTTP/2");
    assert!(hr["latency"].as_str().unwrap().ends_with('s'));
    assert_eq!(hr["remoteIp"], "198.51.100.2");
    assert!(hr["userAgent"].as_str().unwrap().starts_with("curl/"));
    expect_trace(
        resp[0],
        "11111111111111111111111111111111",
        "1111111111111111",
        true,
    );
    // The connection's payload-less FIN segments after the exchange carry it too.
    let flow = &req[0][f::FLOW];
    let fins: Vec<&&Value> = packets
        .iter()
        .filter(|v| {
            &v[f::FLOW] == flow && v[f::MESSAGE].as_str().is_some_and(|m| m.contains("[FIN"))
        })
        .collect();
    assert!(!fins.is_empty(), "FINs of the /a.txt connection");
    for v in fins {
        expect_trace(
            v,
            "11111111111111111111111111111111",
            "1111111111111111",
            true,
        );
    }
    // X-Cloud-Trace-Context alone (decimal span 33 = 0x21).
    expect_trace(
        with_header(&packets, ":path", "/b.txt")[0],
        "22222222222222222222222222222222",
        "0000000000000021",
        true,
    );
    expect_trace(
        responses(&packets, "/b.txt")[0],
        "22222222222222222222222222222222",
        "0000000000000021",
        true,
    );
    // Both: traceparent wins (sampled flag from it).
    expect_trace(
        responses(&packets, "/c.txt")[0],
        "33333333333333333333333333333333",
        "3333333333333333",
        false,
    );
    // Neither.
    assert!(trace(with_header(&packets, ":path", "/d.txt")[0]).is_none());
    assert!(trace(responses(&packets, "/d.txt")[0]).is_none());
    // 404: WARNING.
    let missing = responses(&packets, "/missing.txt");
    assert_eq!(missing[0][f::HTTP_REQUEST]["status"], 404);
    assert_eq!(missing[0][f::SEVERITY], "WARNING");
    // Secrets redacted in the decoded headers.
    let sreq = with_header(&packets, ":path", "/secret.txt");
    let fr = http(sreq[0])["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fr| fr["headers"][":path"][0] == "/secret.txt")
        .unwrap();
    assert_eq!(fr["headers"]["authorization"][0], "[REDACTED]");
    assert_eq!(fr["headers"]["cookie"][0], "[REDACTED]");
    assert_eq!(fr["headers"]["x-api-key"][0], "[REDACTED]");

    // nghttp -m 5: five requests and five 200 responses on five streams of one
    // connection, all traced.
    let frames_of = |v: &Value| -> Vec<(String, Value)> {
        let flow = v[f::FLOW].as_str().unwrap_or("").to_string();
        http(v)["frames"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|fr| (flow.clone(), fr))
            .collect()
    };
    let all: Vec<(String, Value)> = packets.iter().flat_map(|v| frames_of(v)).collect();
    let e_req: Vec<(String, u64)> = all
        .iter()
        .filter(|(_, fr)| fr["role"] == "request" && fr["headers"][":path"][0] == "/e.txt")
        .map(|(flow, fr)| (flow.clone(), fr["stream"].as_u64().unwrap()))
        .collect();
    assert_eq!(e_req.len(), 5, "{e_req:?}");
    let mut distinct = e_req.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "distinct streams");
    assert!(
        e_req.iter().all(|(flow, _)| *flow == e_req[0].0),
        "one connection"
    );
    let e_resp: Vec<&str> = all
        .iter()
        .filter(|(flow, fr)| {
            fr["role"] == "response"
                && e_req.contains(&(flow.clone(), fr["stream"].as_u64().unwrap()))
        })
        .map(|(_, fr)| fr["headers"][":status"][0].as_str().unwrap())
        .collect();
    assert_eq!(e_resp, ["200"; 5]);
    for v in responses(&packets, "/e.txt") {
        expect_trace(
            v,
            "55555555555555555555555555555555",
            "5555555555555555",
            true,
        );
    }

    // The 30 KB header: HEADERS + CONTINUATION, decoded (value kept up to 16 KiB).
    let big_req = packets
        .iter()
        .flat_map(|v| http(v)["frames"].as_array().cloned().unwrap_or_default())
        .find(|fr| fr["headers"][":path"][0] == "/big.txt")
        .expect("the big request");
    assert!(big_req["continuations"].as_u64().unwrap() >= 1, "{big_req}");
    assert_eq!(big_req["type"], "CONTINUATION");
    assert_eq!(
        big_req["headers"]["x-big"][0].as_str().unwrap().len(),
        16 * 1024
    );
    assert!(!responses(&packets, "/big.txt").is_empty());

    // Linking is deterministic: the same trace fields whatever the worker count and order.
    let one = read_traces(
        net.app(),
        &reference,
        &["--workers", "1", "--ordered", "true"],
    );
    assert!(one.len() >= 20, "{one:?}");
    assert_eq!(one, read_traces(net.app(), &reference, &["--workers", "4"]));
    assert_eq!(
        one,
        read_traces(
            net.app(),
            &reference,
            &["--workers", "2", "--ordered", "true"]
        )
    );
}

#[test]
fn live_grpc_over_h2c_service_method_status_and_message() {
    let net = TestNet::new("pcapd-grpc").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let script = resources().join("grpc_h2c.py");
    let addr = format!("{APP_V4}:50051");
    let _server = ChildGuard::spawn(
        net.app()
            .command("python3")
            .arg(&script)
            .args(["server", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(WAIT, POLL, || listening(net.app(), "t", 50051))
        .expect("gRPC server listens");
    let pcapd = start_pcapd(net.app(), dir.path(), "tcp port 50051");
    let out = net
        .peer()
        .run("python3", [script.to_str().unwrap(), "client", &addr, TPG])
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("not found: no such key: k1"));
    std::thread::sleep(Duration::from_millis(300));
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let packets = packets(&lines);
    for v in &packets {
        assert!(
            http(v).get("error").is_none() && v.get(f::ERROR).is_none(),
            "{v}"
        );
    }
    let grpc: Vec<&Value> = packets
        .iter()
        .copied()
        .filter(|v| http(v)["grpc"]["status"].is_u64())
        .collect();
    assert_eq!(grpc.len(), 2, "{grpc:?}");
    // Each call: its status and severity, and the trace of its request.
    let calls = [
        ("Say", (Some("pkg.Echo"), Some(0), Some("OK")), "INFO"),
        (
            "Missing",
            (Some("pkg.Echo"), Some(5), Some("NOT_FOUND")),
            "ERROR",
        ),
    ];
    for (method, status, severity) in calls {
        let v = grpc
            .iter()
            .find(|v| http(v)["grpc"]["method"] == method)
            .unwrap_or_else(|| panic!("{method}"));
        let g = &http(v)["grpc"];
        assert_eq!(
            (
                g["service"].as_str(),
                g["status"].as_u64(),
                g["status_name"].as_str()
            ),
            status,
            "{method}"
        );
        if method == "Missing" {
            assert_eq!(g["message"], "no such key: k1");
        }
        assert_eq!(v[f::SEVERITY], severity, "{method}");
        expect_trace(
            v,
            "66666666666666666666666666666666",
            "6666666666666666",
            true,
        );
    }
    // The requests were recognised as gRPC too.
    assert!(packets
        .iter()
        .any(|v| http(v)["frames"]
            .as_array()
            .is_some_and(|fs| fs
                .iter()
                .any(|fr| fr["role"] == "request"
                    && fr["headers"][":path"][0] == "/pkg.Echo/Missing"))));
}

#[test]
fn live_capture_started_mid_connection_decodes_what_it_can() {
    let net = TestNet::new("pcapd-h2mid").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("index.html"), "hello\n").unwrap();
    let _nghttpd = nghttpd(net.app(), &docs, PORT);
    let go = dir.path().join("go");
    let mut client = net.peer().command("python3");
    client
        .arg(resources().join("h2_long_client.py"))
        .args([APP_V4, &PORT.to_string()])
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut client = ChildGuard::spawn(&mut client).unwrap();
    let stdout = client.child_mut().stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line.trim(), "phase1");

    // Capture starts now: the connection's handshake, preface and first headers are past.
    let pcapd = start_pcapd(net.app(), dir.path(), &format!("tcp port {PORT}"));
    std::fs::write(&go, "").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line.trim(), "phase2");
    client
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("client exits");
    std::thread::sleep(Duration::from_millis(300));
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));
    let packets = packets(&lines);
    assert!(!packets.is_empty());
    for v in &packets {
        assert!(
            v.get(f::ERROR).is_none() && http(v).get("error").is_none(),
            "{v}"
        );
        assert_ne!(v[f::SEVERITY], "ERROR", "{v}");
    }
    let frames: Vec<Value> = packets
        .iter()
        .flat_map(|v| http(v)["frames"].as_array().cloned().unwrap_or_default())
        .collect();
    let req = frames
        .iter()
        .find(|fr| fr["role"] == "request")
        .expect("the phase-2 request");
    assert_eq!(req["stream"], 3);
    assert_eq!(req["headers"][":method"][0], "GET");
    assert_eq!(req["headers"][":path"][0], "/index.html");
    assert_eq!(req["headers"]["x-phase"][0], "two");
    assert_eq!(req["unknown_dynamic"], serde_json::json!([63, 62]));
    assert_eq!(req["hpack_unsynced"], true);
    assert!(req["headers"].get("x-session").is_none());
    let resp = frames
        .iter()
        .find(|fr| fr["role"] == "response")
        .expect("its response");
    assert_eq!(resp["headers"][":status"][0], "200");
    assert!(packets
        .iter()
        .any(|v| v[f::HTTP_REQUEST]["requestUrl"] == format!("http://{APP_V4}:{PORT}/index.html")));
}
