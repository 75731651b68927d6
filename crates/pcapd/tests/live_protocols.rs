//! The real `pcapd` binary capturing live traffic of real tools in a network namespace the test
//! creates: `arping`, `dig` against a local `dnsmasq` (A, AAAA, CNAME, MX,
//! TXT, NXDOMAIN, and a query over TCP), a TLS handshake between `openssl s_client` and
//! `openssl s_server`, and IPv4/IPv6 `ping`. Every output line is parsed as JSON and checked
//! field by field; the packet count equals `tshark -r` on a reference `tcpdump -w` of the same
//! traffic, and `pcapd --read` of that file gives the same count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use render::fields as f;
use serde_json::Value;
use testbed::{ChildGuard, Netns, TestNet};

mod common;
use common::live::{
    dnsmasq, is_packet, listening, pcapd_command, read_lines, ready_line, reference_tcpdump, stop,
    tshark_count, Running,
};

/// The server side (dnsmasq, s_server) runs in the app namespace, where pcapd captures.
const APP_V4: &str = "198.51.100.1";
const PEER_V4: &str = "198.51.100.2";
const APP_V6: &str = "2001:db8:5100::1";
const PEER_V6: &str = "2001:db8:5100::2";

/// Addresses dnsmasq hands out (documentation ranges, never routed anywhere).
const WWW_V4: &str = "198.51.100.10";
const WWW_V6: &str = "2001:db8:5100::10";
const TCP_V4: &str = "198.51.100.11";

/// Both captures use this filter. A fresh veth sends IPv6 multicast chatter on its own (MLD
/// reports, router solicitations, DAD) at moments the test does not control, which would make
/// pcapd (started first, stopped last) see packets the reference does not; everything the test
/// sends is ARP, IPv4 or unicast IPv6 (neighbours are static, see `static_neighbour`).
const FILTER: &str = "not ip6 multicast";

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

fn tshark_fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    testbed::tshark::filtered(file, filter, fields).unwrap()
}

fn tshark_number(text: &str) -> u64 {
    testbed::tshark::number(text).unwrap_or_else(|| panic!("tshark number {text:?}"))
}

/// Makes `ns` know `other`'s link-layer address for good (`nud permanent`), for IPv4 and IPv6:
/// the kernels then never resolve or re-probe neighbours (ARP, neighbour solicitations) on
/// their own, at moments the test does not control (a DELAY entry probes 5 s after use), so
/// the only ARP on the link is arping's and both captures see exactly the same packets.
fn static_neighbour(ns: &Netns, other: &Netns, mac: &str) {
    for addr in [other.ipv4().to_string(), other.ipv6().to_string()] {
        testbed::run(Command::new("ip").args([
            "-n",
            ns.name(),
            "neigh",
            "replace",
            &addr,
            "lladdr",
            mac,
            "nud",
            "permanent",
            "dev",
            "eth0",
        ]))
        .unwrap();
    }
}

fn mac_of(ns: &Netns) -> String {
    let out = ns.run("cat", ["/sys/class/net/eth0/address"]).unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn dig(net: &TestNet, args: &[&str]) -> String {
    let mut all = vec!["+tries=2", "+time=5"];
    if !args.contains(&"+tcp") {
        // One exchange per query: no retry over TCP after a truncated answer.
        all.push("+ignore");
    }
    all.extend_from_slice(args);
    all.push("@198.51.100.1");
    let out = net.peer().run("dig", &all).unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Every packet line has the envelope (docs/json.md) with the right types.
fn assert_envelope(v: &Value) {
    let pcap = &v[f::PCAP];
    for key in [f::ID, f::CTX] {
        assert!(
            pcap[key].as_str().is_some_and(|s| !s.is_empty()),
            "pcap.{key}: {v}"
        );
    }
    let num = pcap[f::NUM].as_str().expect("pcap.num is a string");
    num.parse::<u64>()
        .unwrap_or_else(|e| panic!("pcap.num {num:?}: {e}"));
    let date = pcap[f::DATE].as_str().expect("pcap.date is a string");
    let parsed = chrono::DateTime::parse_from_rfc3339(date)
        .unwrap_or_else(|e| panic!("pcap.date {date:?}: {e}"));
    assert!(
        date.ends_with('Z') && date.len() == "2026-01-01T00:00:00.000000000Z".len(),
        "UTC with 9 fractional digits: {date}"
    );
    let ts = &v[f::TIMESTAMP];
    let seconds = ts[f::SECONDS].as_i64().expect("timestamp.seconds");
    let nanos = ts[f::NANOS].as_i64().expect("timestamp.nanos");
    assert!((0..1_000_000_000).contains(&nanos), "{v}");
    assert_eq!(
        (
            parsed.timestamp(),
            i64::from(parsed.timestamp_subsec_nanos())
        ),
        (seconds, nanos),
        "timestamp and pcap.date agree: {v}"
    );
    assert!(
        matches!(
            v[f::SEVERITY].as_str(),
            Some("DEFAULT" | "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERROR")
        ),
        "severity: {v}"
    );
    let message = v[f::MESSAGE].as_str().expect("message is a string");
    assert!(
        message.starts_with(&format!("#:{num} |")),
        "message starts with the packet number: {v}"
    );
    let flow = v[f::FLOW].as_str().expect("flow is a string");
    flow.parse::<u64>()
        .unwrap_or_else(|e| panic!("flow {flow:?}: {e}"));
    assert_eq!(v[f::IFACE][f::NAME], "eth0", "{v}");
    let labels = &v[f::LABELS];
    assert_eq!(labels[f::LABEL_SIDECAR], "pcap-sidecar", "{v}");
    assert_eq!(labels[f::LABEL_MODULE], f::MODULE, "{v}");
    assert_eq!(labels[f::LABEL_TOOL], f::TOOL, "{v}");
    assert_eq!(labels[f::LABEL_IFACE], "eth0", "{v}");
    assert_eq!(labels[f::LABEL_ID], pcap[f::ID], "{v}");
    assert!(v.get(f::ERROR).is_none(), "real traffic decodes: {v}");
}

fn arp<'a>(packets: &'a [&Value], op: u64, sender: &str, target: &str) -> Vec<&'a Value> {
    packets
        .iter()
        .copied()
        .filter(|v| {
            let a = &v[f::ARP];
            a["op"] == op && a[f::SRC]["IP"] == sender && a[f::DST]["IP"] == target
        })
        .collect()
}

/// DNS messages with this first question, queries (`qr` false) or responses.
fn dns<'a>(packets: &'a [&Value], response: bool, name: &str, qtype: &str) -> Vec<&'a Value> {
    packets
        .iter()
        .copied()
        .filter(|v| {
            let d = &v[f::DNS];
            d["qr"] == response
                && d["questions"][0][f::NAME] == name
                && d["questions"][0][f::TYPE] == qtype
        })
        .collect()
}

fn one<'a>(found: Vec<&'a Value>, what: &str) -> &'a Value {
    assert!(!found.is_empty(), "no {what}");
    found[0]
}

/// The checks every DNS response shares; returns its answers.
fn dns_response<'a>(packets: &'a [&Value], name: &str, qtype: &str, rcode: &str) -> &'a [Value] {
    let query = one(
        dns(packets, false, name, qtype),
        &format!("query {name} {qtype}"),
    );
    assert_eq!(query[f::L3][f::SRC], PEER_V4, "{query}");
    assert_eq!(query[f::L4][f::DST], 53, "{query}");
    assert_eq!(query[f::DNS]["questions"][0]["class"], "IN", "{query}");
    let response = one(
        dns(packets, true, name, qtype),
        &format!("response {name} {qtype}"),
    );
    assert_eq!(response[f::L3][f::SRC], APP_V4, "{response}");
    assert_eq!(response[f::L4][f::SRC], 53, "{response}");
    assert_eq!(
        response[f::DNS]["id"],
        query[f::DNS]["id"],
        "same transaction: {response}"
    );
    assert_eq!(response[f::DNS]["response_code"], rcode, "{response}");
    // The server runs in the captured namespace: its responses are `local`, the queries not.
    assert_eq!(response[f::LOCAL], true, "{response}");
    assert_ne!(query[f::LOCAL], true, "{query}");
    let answers = response[f::DNS]["answers"].as_array().expect("answers");
    assert_eq!(
        response[f::DNS]["answers_count"],
        answers.len(),
        "{response}"
    );
    answers
}

fn echo<'a>(packets: &'a [&Value], icmp_type: u64, src: &str, dst: &str) -> Vec<&'a Value> {
    packets
        .iter()
        .copied()
        .filter(|v| {
            v[f::ICMP][f::TYPE] == icmp_type && v[f::L3][f::SRC] == src && v[f::L3][f::DST] == dst
        })
        .collect()
}

/// Two echo requests (seq 1, 2) and their replies, same id.
fn assert_pings(packets: &[&Value], v: u64, types: (u64, u64), local: &str, remote: &str) {
    let requests = echo(packets, types.0, local, remote);
    let replies = echo(packets, types.1, remote, local);
    assert_eq!(requests.len(), 2, "IPv{v} echo requests: {requests:?}");
    assert_eq!(replies.len(), 2, "IPv{v} echo replies: {replies:?}");
    let id = &requests[0][f::ICMP]["id"];
    assert!(id.is_u64(), "echo id: {}", requests[0]);
    for (list, msg) in [(&requests, "EchoRequest"), (&replies, "EchoReply")] {
        let mut seqs: Vec<u64> = list
            .iter()
            .map(|p| {
                assert_eq!(p[f::L3][f::V], v, "{p}");
                assert_eq!(p[f::ICMP]["code"], 0, "{p}");
                assert_eq!(p[f::ICMP]["msg"], msg, "{p}");
                assert_eq!(&p[f::ICMP]["id"], id, "{p}");
                p[f::ICMP]["seq"].as_u64().expect("echo seq")
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2], "IPv{v} {msg}");
    }
}

#[test]
fn live_arp_dns_tls_and_icmp_are_decoded_field_by_field_and_counted_like_tshark() {
    let net = TestNet::new("pcapd-proto").unwrap_or_else(|e| panic!("network namespaces: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (app_mac, peer_mac) = (mac_of(net.app()), mac_of(net.peer()));
    static_neighbour(net.app(), net.peer(), &peer_mac);
    static_neighbour(net.peer(), net.app(), &app_mac);

    // Servers in the app namespace, ready before the captures start.
    std::fs::write(
        path("hosts"),
        format!(
            "{WWW_V4} www.example.test\n{WWW_V6} www.example.test\n{TCP_V4} tcp.example.test\n"
        ),
    )
    .unwrap();
    let addn_hosts = format!("--addn-hosts={}", path("hosts"));
    let _dnsmasq = ChildGuard::spawn(&mut dnsmasq(
        net.app(),
        Path::new(&path("dnsmasq.pid")),
        &[
            "--cname=alias.example.test,www.example.test",
            "--mx-host=example.test,mail.example.test,10",
            "--txt-record=example.test,v=spf1 -all,second string",
            &addn_hosts,
        ],
    ))
    .unwrap();
    let keygen = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=tls.test",
        ])
        .args(["-days", "1", "-keyout"])
        .arg(path("key.pem"))
        .arg("-out")
        .arg(path("cert.pem"))
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let _s_server = ChildGuard::spawn(
        net.app()
            .command("openssl")
            .args(["s_server", "-accept", "4433", "-www", "-cert"])
            .arg(path("cert.pem"))
            .arg("-key")
            .arg(path("key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    testbed::wait_until(WAIT, POLL, || {
        listening(net.app(), "u", 53) && listening(net.app(), "t", 53)
    })
    .expect("dnsmasq listens");
    testbed::wait_until(WAIT, POLL, || listening(net.app(), "t", 4433)).expect("s_server listens");

    // pcapd first, then the reference; the reference stops first.
    let run_dir = dir.path().join("ready");
    let mut command = pcapd_command(Some(net.app()));
    command
        .args(["--iface", "eth0", "--json-log", "--filter", FILTER])
        .arg("--ready-dir")
        .arg(&run_dir);
    let pcapd = Running::start(command);
    pcapd.wait_for_line("pcapd readiness", ready_line);
    let reference = dir.path().join("reference.pcap");
    let tcpdump = reference_tcpdump(net.app(), &reference, FILTER);

    net.peer()
        .run(
            "arping",
            ["-c", "2", "-W", "0.2", "-w", "10", "-I", "eth0", APP_V4],
        )
        .unwrap();
    let answer = dig(&net, &["www.example.test", "A", "+short"]);
    assert_eq!(answer.trim(), WWW_V4, "dnsmasq answers");
    dig(&net, &["www.example.test", "AAAA"]);
    dig(&net, &["alias.example.test", "A"]);
    dig(&net, &["example.test", "MX"]);
    dig(&net, &["example.test", "TXT"]);
    let nx = dig(&net, &["nope.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "dig: {nx}");
    dig(&net, &["+tcp", "tcp.example.test", "A"]);
    net.peer()
        .run(
            "timeout",
            [
                "15",
                "openssl",
                "s_client",
                "-connect",
                "198.51.100.1:4433",
                "-servername",
                "tls.example.test",
                "-alpn",
                "h2,http/1.1",
            ],
        )
        .unwrap();
    net.app()
        .run("ping", ["-c", "2", "-i", "0.2", "-W", "5", PEER_V4])
        .unwrap();
    net.app()
        .run("ping", ["-6", "-c", "2", "-i", "0.2", "-W", "5", PEER_V6])
        .unwrap();

    std::thread::sleep(Duration::from_millis(300));
    // Stop tcpdump first so it cannot see more than pcapd did.
    stop(tcpdump);
    let (code, lines) = pcapd.terminate();
    assert_eq!(code, Some(0));

    // Counts: live pcapd = reference tcpdump = tshark; pcapd --read of the reference agrees.
    let packets: Vec<&Value> = lines.iter().filter(|v| is_packet(v)).collect();
    let stats = lines
        .iter()
        .find(|v| v[f::MESSAGE] == "pcapd stats" && v["final"] == true)
        .expect("a final stats line");
    assert_eq!(stats["kernel_dropped"], 0, "{stats}");
    assert_eq!(stats["queue_dropped"], 0, "{stats}");
    let expected = tshark_count(&reference);
    assert_eq!(
        packets.len(),
        expected,
        "pcapd live vs tshark -r on the reference"
    );
    assert_eq!(stats["received"], expected, "{stats}");
    let read_lines = read_lines(&mut pcapd_command(Some(net.app())), &reference);
    assert!(read_lines.iter().all(is_packet));
    assert_eq!(read_lines.len(), expected, "pcapd --read vs tshark -r");

    // Envelope on every line; each capture serial once.
    packets.iter().for_each(|v| assert_envelope(v));
    let nums: BTreeSet<u64> = packets
        .iter()
        .map(|v| v[f::PCAP][f::NUM].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        nums,
        (0..packets.len() as u64).collect(),
        "each serial once"
    );

    // ARP: arping's two requests from peer and the app kernel's replies, and nothing else.
    let requests = arp(&packets, 1, PEER_V4, APP_V4);
    let replies = arp(&packets, 2, APP_V4, PEER_V4);
    assert_eq!(requests.len(), 2, "ARP requests: {requests:?}");
    assert_eq!(replies.len(), 2, "ARP replies: {replies:?}");
    let all_arp = packets.iter().filter(|v| v.get(f::ARP).is_some()).count();
    assert_eq!(all_arp, 4, "no other ARP");
    for request in &requests {
        assert_eq!(request[f::ARP][f::NAME], "request", "{request}");
        assert_eq!(
            request[f::ARP][f::SRC]["MAC"],
            peer_mac.as_str(),
            "{request}"
        );
        assert!(request.get(f::L3).is_none(), "{request}");
    }
    for reply in &replies {
        assert_eq!(reply[f::ARP][f::NAME], "reply", "{reply}");
        assert_eq!(reply[f::ARP][f::SRC]["MAC"], app_mac.as_str(), "{reply}");
        assert_eq!(reply[f::ARP][f::DST]["MAC"], peer_mac.as_str(), "{reply}");
        assert_eq!(reply[f::L2][f::SRC], app_mac.as_str(), "{reply}");
    }

    // DNS over UDP.
    let a = dns_response(&packets, "www.example.test", "A", "No Error");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0][f::NAME], "www.example.test");
    assert_eq!(a[0][f::TYPE], "A");
    assert_eq!(a[0]["class"], "IN");
    assert!(a[0]["ttl"].is_u64(), "{a:?}");
    assert_eq!(a[0]["ip"], WWW_V4);
    let aaaa = dns_response(&packets, "www.example.test", "AAAA", "No Error");
    assert_eq!(aaaa.len(), 1, "{aaaa:?}");
    assert_eq!(aaaa[0][f::TYPE], "AAAA");
    assert_eq!(aaaa[0]["ip"], WWW_V6);
    let cname = dns_response(&packets, "alias.example.test", "A", "No Error");
    assert_eq!(cname.len(), 2, "{cname:?}");
    assert_eq!(cname[0][f::NAME], "alias.example.test");
    assert_eq!(cname[0][f::TYPE], "CNAME");
    assert_eq!(cname[0]["cname"], "www.example.test");
    assert_eq!(cname[1][f::NAME], "www.example.test");
    assert_eq!(cname[1][f::TYPE], "A");
    assert_eq!(cname[1]["ip"], WWW_V4);
    let mx = dns_response(&packets, "example.test", "MX", "No Error");
    assert_eq!(mx.len(), 1, "{mx:?}");
    assert_eq!(mx[0][f::TYPE], "MX");
    assert_eq!(mx[0]["mx"]["preference"], 10);
    assert_eq!(mx[0]["mx"]["host"], "mail.example.test");
    let txt = dns_response(&packets, "example.test", "TXT", "No Error");
    assert_eq!(txt.len(), 1, "{txt:?}");
    assert_eq!(txt[0][f::TYPE], "TXT");
    assert_eq!(
        txt[0]["txt"],
        serde_json::json!(["v=spf1 -all", "second string"])
    );
    let nx = dns_response(&packets, "nope.example.test", "A", "Non-Existent Domain");
    assert!(nx.is_empty(), "{nx:?}");
    let nx_line = one(
        dns(&packets, true, "nope.example.test", "A"),
        "NXDOMAIN response",
    );
    assert_eq!(
        nx_line[f::L4][f::SIZE],
        nx_line[f::L4][f::LEN].as_u64().unwrap() - 8
    );

    // DNS over TCP: the message after the 2-byte length, in a TCP segment.
    let tcp = dns_response(&packets, "tcp.example.test", "A", "No Error");
    assert_eq!(tcp.len(), 1, "{tcp:?}");
    assert_eq!(tcp[0]["ip"], TCP_V4);
    for response in [true, false] {
        let line = one(
            dns(&packets, response, "tcp.example.test", "A"),
            "DNS over TCP",
        );
        assert_eq!(line[f::L3][f::PROTO][f::NAME], "TCP", "{line}");
        assert!(line[f::L4][f::SEQ].is_u64(), "a TCP segment: {line}");
        assert_eq!(line[f::L4][f::FLAGS]["map"]["PSH"], true, "{line}");
    }

    // TLS: the ClientHello's SNI and ALPN.
    let hellos: Vec<&Value> = packets
        .iter()
        .copied()
        .filter(|v| v[f::TLS].get("client_hello").is_some())
        .collect();
    assert_eq!(hellos.len(), 1, "one ClientHello: {hellos:?}");
    let hello = hellos[0];
    assert_eq!(hello[f::L3][f::SRC], PEER_V4, "{hello}");
    assert_eq!(hello[f::L4][f::DST], 4433, "{hello}");
    let client_hello = &hello[f::TLS]["client_hello"];
    assert_eq!(client_hello["sni"], "tls.example.test", "{hello}");
    assert_eq!(
        client_hello["alpn"],
        serde_json::json!(["h2", "http/1.1"]),
        "{hello}"
    );
    assert!(
        client_hello["versions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "TLS 1.3")),
        "{hello}"
    );
    assert_eq!(
        hello[f::TLS]["handshake"][0]["message"],
        "ClientHello",
        "{hello}"
    );
    assert_eq!(
        hello[f::TLS]["handshake"][0]["content_type"],
        "Handshake",
        "{hello}"
    );

    let server_hello = one(
        packets
            .iter()
            .copied()
            .filter(|v| v[f::TLS].get("server_hello").is_some())
            .collect(),
        "ServerHello",
    );
    assert_eq!(server_hello[f::L3][f::SRC], APP_V4, "{server_hello}");
    assert_eq!(server_hello[f::L4][f::SRC], 4433, "{server_hello}");
    assert_eq!(server_hello[f::LOCAL], true, "{server_hello}");
    assert_eq!(
        server_hello[f::TLS]["server_hello"]["version"],
        "TLS 1.3",
        "{server_hello}"
    );

    // ICMP echo, IPv4 and IPv6.
    assert_pings(&packets, 4, (8, 0), APP_V4, PEER_V4);
    assert_pings(&packets, 6, (128, 129), APP_V6, PEER_V6);

    // The values themselves agree with tshark's reading of the reference capture.
    let mut ours: Vec<(u64, u64, u64)> = packets
        .iter()
        .filter(|v| v[f::ICMP].get("seq").is_some())
        .map(|v| {
            let icmp = &v[f::ICMP];
            let n = |key: &str| icmp[key].as_u64().unwrap();
            (n(f::TYPE), n("id"), n("seq"))
        })
        .collect();
    let mut theirs: Vec<(u64, u64, u64)> = tshark_fields(
        &reference,
        "icmp or icmpv6",
        &[
            "icmp.type",
            "icmp.ident",
            "icmp.seq",
            "icmpv6.type",
            "icmpv6.echo.identifier",
            "icmpv6.echo.sequence_number",
        ],
    )
    .iter()
    .map(|row| {
        let (t, id, seq) = if row[0].is_empty() {
            (&row[3], &row[4], &row[5])
        } else {
            (&row[0], &row[1], &row[2])
        };
        (tshark_number(t), tshark_number(id), tshark_number(seq))
    })
    .collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours.len(), 8);
    assert_eq!(ours, theirs, "ICMP type/id/seq: pcapd vs tshark");
    let mut ours: Vec<(u64, String)> = packets
        .iter()
        .filter(|v| v.get(f::DNS).is_some())
        .map(|v| {
            let d = &v[f::DNS];
            let name = d["questions"][0][f::NAME].as_str().unwrap().to_string();
            (d["id"].as_u64().unwrap(), name)
        })
        .collect();
    let mut theirs: Vec<(u64, String)> =
        tshark_fields(&reference, "dns", &["dns.id", "dns.qry.name"])
            .iter()
            .map(|row| (tshark_number(&row[0]), row[1].clone()))
            .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours.len(), 14, "7 queries, 7 responses");
    assert_eq!(ours, theirs, "DNS id/question: pcapd vs tshark");
}
