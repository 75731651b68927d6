//! Translates the real captures of `crates/wire/testdata/` and checks the JSON field by
//! field (deserialised into `serde_json::Value`, never by substring).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;

use cloud_logging::Severity;
use cloud_logging::Verbosity;
use render::{fields as f, Interface, Source, Translator, TranslatorSettings};
use serde_json::Value;
use wire::{CapturedPacket, LinkType};

const VETH: &[u8] = include_bytes!("../../wire/testdata/veth.pcap");
const SLL2: &[u8] = include_bytes!("../../wire/testdata/any-sll2.pcap");
const SLL: &[u8] = include_bytes!("../../wire/testdata/any-sll.pcap");
const SNAP: &[u8] = include_bytes!("../../wire/testdata/snaplen64.pcap");
const LO: &[u8] = include_bytes!("../../wire/testdata/lo.pcap");

fn iface() -> Interface {
    Interface {
        index: 2,
        name: "vA".into(),
        addrs: vec![
            "10.77.0.1".parse::<IpAddr>().unwrap(),
            "fd77::1".parse().unwrap(),
        ],
    }
}

/// `interface` capturing Ethernet.
fn ethernet(interface: Interface) -> Source {
    Source {
        interface,
        linktype: LinkType::Ethernet,
    }
}

fn settings(v: Verbosity) -> TranslatorSettings {
    TranslatorSettings {
        run_id: "job/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
        log_name: "projects/my-project/pcap/job/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
        project_id: Some("my-project".into()),
        verbosity: v,
        ..TranslatorSettings::default()
    }
}

/// Translates every packet of a capture; returns the parsed lines and raw line lengths.
fn translate_all(file: &[u8], v: Verbosity) -> (Vec<Value>, Vec<usize>) {
    let mut t = Translator::new(settings(v));
    let (out, lens) = common::translate_pcap(&mut t, &iface(), file);
    let lines = common::parse_lines(&out);
    assert_eq!(lines.len(), lens.len(), "one line per packet");
    (lines, lens)
}

fn translate_with(file: &[u8], v: Verbosity, iface: &Interface) -> (Vec<Value>, Translator) {
    let mut t = Translator::new(settings(v));
    let (out, _) = common::translate_pcap(&mut t, iface, file);
    (common::parse_lines(&out), t)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn every_capture_every_packet_one_line_with_the_envelope() {
    for (file, n) in [(VETH, 98), (SLL2, 0), (SLL, 0), (SNAP, 0), (LO, 0)] {
        for v in [Verbosity::Debug, Verbosity::Info] {
            let (lines, lens) = translate_all(file, v);
            if n > 0 {
                assert_eq!(lines.len(), n);
            }
            for (i, l) in lines.iter().enumerate() {
                assert!(["INFO", "WARNING", "ERROR"].contains(&s(&l[f::SEVERITY])));
                // INFO: no interface or flow id in the message (`flow` is a field).
                let prefix = match v {
                    Verbosity::Debug => format!("#:{i} | @:2/vA | flow:"),
                    _ => format!("#:{i} | "),
                };
                assert!(s(&l[f::MESSAGE]).starts_with(&prefix), "{}", l[f::MESSAGE]);
                if v == Verbosity::Info {
                    let m = s(&l[f::MESSAGE]);
                    assert!(!m.contains("flow:") && !m.contains("len/seq/ack"), "{m}");
                    if let Some(op) = l[f::OPERATION][f::ID].as_str() {
                        // `<run, 8 characters>/<iface>/<kind>:<flow>`
                        assert!(op.len() < 45, "{op}");
                        assert!(op.ends_with(&format!(":{}", s(&l[f::FLOW]))), "{op}");
                        assert!(op.contains("/vA/"), "{op}");
                    }
                }
                assert_eq!(s(&l[f::PCAP][f::NUM]), i.to_string());
                assert_eq!(s(&l[f::PCAP][f::DATE]).len(), 30);
                assert!(l[f::TIMESTAMP][f::SECONDS].is_i64());
                assert!(l[f::TIMESTAMP][f::NANOS].is_u64());
                assert_eq!(s(&l[f::LABELS][f::LABEL_SIDECAR]), "pcap-sidecar");
                assert!(l[f::ERROR].is_null(), "real traffic decodes cleanly: {l}");
                if v == Verbosity::Info {
                    assert!(
                        l[f::IFACE].is_null() && l[f::L2].is_null() && l[f::COMMUNITY_ID].is_null()
                    );
                } else {
                    assert_eq!(s(&l[f::PCAP][f::ID]), settings(v).run_id);
                }
            }
            assert!(lens.iter().all(|n| *n > 100));
        }
    }
}

#[test]
fn tcp_syn_field_by_field() {
    let (lines, _) = translate_all(VETH, Verbosity::Debug);
    let syn = &lines[50];
    let l4 = &syn[f::L4];
    assert_eq!(l4[f::SRC], 55194);
    assert_eq!(l4[f::DST], 8080);
    assert_eq!(l4[f::SEQ], 276874290u32);
    assert_eq!(l4[f::ACK], 0);
    assert_eq!(l4[f::OFF], 10);
    assert_eq!(l4[f::WIN], 64240);
    assert_eq!(l4[f::LEN], 0);
    assert_eq!(s(&l4[f::DPROTO]), "http-alt");
    assert!(l4[f::SPROTO].is_null());
    assert!(l4[f::XWIN].is_null(), "no scaling on a SYN");
    let flags = &l4[f::FLAGS];
    assert_eq!(s(&flags["str"]), "SYN");
    assert_eq!(flags["dec"], 2);
    assert_eq!(s(&flags["bin"]), "0b10");
    assert_eq!(s(&flags["hex"]), "0x2");
    assert_eq!(flags["map"]["SYN"], true);
    assert_eq!(flags["map"]["ACK"], false);
    assert_eq!(
        l4[f::OPTS],
        serde_json::json!([
            {"MSS": ["1460", "0x05b4"]},
            "SACKPermitted",
            {"Timestamps": ["1396332867", "0", "0x533a594300000000"]},
            "NOP",
            {"WindowScale": [{"hex": "0x0a", "dec": 10, "scale": "1024"}]}
        ])
    );
    let l3 = &syn[f::L3];
    assert_eq!(l3[f::V], 4);
    assert_eq!(s(&l3[f::SRC]), "10.77.0.1");
    assert_eq!(l3[f::FLAGS], serde_json::json!(["DF"]));
    assert_eq!(l3[f::PROTO], serde_json::json!({"num": 6, "name": "TCP"}));
    assert_eq!(s(&l3[f::ENDPOINTS][f::FWD]), "10.77.0.1->10.77.0.2");
    assert_eq!(s(&syn[f::L2][f::TYPE]), "IPv4");
    assert_eq!(
        s(&syn[f::MESSAGE]),
        format!(
            "#:50 | @:2/vA | flow:{} | TCP | /10.77.0.1:55194 > http-alt/10.77.0.2:8080 | [SYN] | len/seq/ack:0/276874290/0",
            s(&syn[f::FLOW])
        )
    );
    let pcap = wire::pcapfile::File::new(VETH).unwrap();
    let raw = pcap.records().nth(50).unwrap().unwrap().data;
    assert_eq!(
        s(&syn[f::FLOW]),
        render::shard_key(LinkType::Ethernet, raw).to_string()
    );
    assert_eq!(s(&syn[f::COMMUNITY_ID]).len(), 30);
    let op = &syn[f::OPERATION];
    assert_eq!(
        s(&op[f::ID]),
        format!(
            "{}/iface/vA/flow/tcp:{}",
            settings(Verbosity::Debug).run_id,
            s(&syn[f::FLOW])
        )
    );
    assert_eq!(op[f::FIRST], true);
    assert!(op[f::LAST].is_null());
    assert_eq!(s(&syn[f::SEVERITY]), "INFO");
    assert_eq!(
        syn[f::LOCAL],
        false,
        "10.77.0.1 is ours but it is the client"
    );
}

#[test]
fn connection_lifecycle_flow_ids_and_window_scale() {
    let (lines, _) = translate_all(VETH, Verbosity::Debug);
    let conn: Vec<&Value> = lines[50..=62].iter().collect();
    let id = s(&conn[0][f::FLOW]);
    assert!(
        conn.iter().all(|l| s(&l[f::FLOW]) == id),
        "both directions, one flow"
    );
    assert!(conn
        .iter()
        .all(|l| s(&l[f::COMMUNITY_ID]) == s(&conn[0][f::COMMUNITY_ID])));
    assert_ne!(s(&lines[63][f::FLOW]), id, "the next connection differs");
    let firsts = conn
        .iter()
        .filter(|l| l[f::OPERATION][f::FIRST] == true)
        .count();
    let lasts: Vec<usize> = (50..=62)
        .filter(|i| lines[*i][f::OPERATION][f::LAST] == true)
        .collect();
    assert_eq!(firsts, 1);
    assert_eq!(
        lasts,
        vec![61],
        "the ACK of the second FIN closes the operation"
    );
    // Window scale 10 on both SYNs: the GET's window 63 is 64512 bytes.
    assert_eq!(lines[53][f::L4][f::XWIN], 63 << 10);
    // The response comes from the server: real ack number in the summary (original bug).
    let resp = &lines[55];
    assert!(
        s(&resp[f::MESSAGE]).contains("len/seq/ack:155/936899725/276874369"),
        "{}",
        resp[f::MESSAGE]
    );
    // The GET is recognised as HTTP/1.1 (no opaque L7 view, no size suffix).
    let get = &lines[53];
    assert!(get.get(f::L7).is_none());
    assert_eq!(s(&get[f::HTTP]["kind"]), "request");
    assert_eq!(get[f::HTTP]["size"], 78);
    assert!(s(&get[f::HTTP]["raw"]).starts_with("GET / HTTP/1.1\r\n"));
    assert!(s(&get[f::MESSAGE]).ends_with(" | HTTP/1.1 GET /"));
}

#[test]
fn local_is_known_from_the_handshake() {
    let server = Interface {
        index: 3,
        name: "vB".into(),
        addrs: vec!["10.77.0.2".parse().unwrap()],
    };
    let (lines, _) = translate_with(VETH, Verbosity::Debug, &server);
    assert_eq!(lines[51][f::LOCAL], true, "SYN-ACK from the server");
    assert_eq!(lines[55][f::LOCAL], true);
    assert_eq!(lines[53][f::LOCAL], false);
    // Port 53 is outside the ephemeral range: the heuristic applies to UDP.
    assert_eq!(lines[21][f::LOCAL], true);
    assert_eq!(lines[20][f::LOCAL], false);
}

#[test]
fn rst_and_icmp_errors_are_warnings() {
    let (lines, t) = translate_with(VETH, Verbosity::Debug, &iface());
    let rst = &lines[96];
    assert_eq!(s(&rst[f::L4][f::FLAGS]["str"]), "RST|ACK");
    assert_eq!(s(&rst[f::SEVERITY]), "WARNING");
    assert_eq!(rst[f::OPERATION][f::LAST], true);
    let unreach = &lines[92];
    assert_eq!(s(&unreach[f::SEVERITY]), "WARNING");
    assert_eq!(s(&unreach[f::ICMP]["msg"]), "DestinationUnreachable(Port)");
    assert_eq!(unreach[f::ICMP]["IPv4"]["dport"], 9999);
    assert_eq!(s(&unreach[f::ICMP]["IPv4"][f::PROTO]), "UDP");
    let unreach6 = &lines[94];
    assert_eq!(s(&unreach6[f::SEVERITY]), "WARNING");
    assert_eq!(
        s(&unreach6[f::ICMP]["msg"]),
        "DestinationUnreachable(PortUnreachable)"
    );
    assert_eq!(s(&unreach6[f::ICMP]["IPv6"][f::SRC]), "fd77::1");
    assert_eq!(t.counters().warning, 3);
    assert_eq!(t.counters().error, 0);
    assert_eq!(t.counters().packets, 98);
    let echo = &lines[10];
    assert_eq!(echo[f::ICMP][f::ID], 22560);
    assert_eq!(echo[f::ICMP][f::SEQ], 1);
    assert!(s(&echo[f::MESSAGE]).ends_with(" | ICMPv4 | 10.77.0.1 > 10.77.0.2 | EchoRequest"));
    let ns = &lines[14];
    assert_eq!(s(&ns[f::ICMP]["msg"]), "NeighborSolicitation");
    assert_eq!(s(&ns[f::ICMP]["tgt"]), "fd77::2");
    assert_eq!(s(&ns[f::ICMP]["nd"][0]["lladdr"]), "02:00:00:00:00:0a");
}

#[test]
fn dns_questions_and_answers() {
    let (lines, _) = translate_all(VETH, Verbosity::Debug);
    let q = &lines[20][f::DNS];
    assert_eq!(q["qr"], false);
    assert_eq!(
        q["questions"][0],
        serde_json::json!({"name": "www.example.test", "type": "A", "class": "IN"})
    );
    assert_eq!(q["edns"]["udp_size"], 1232);
    assert_eq!(q["edns"]["options"], serde_json::json!(["COOKIE"]));
    let cname = &lines[25][f::DNS];
    assert_eq!(cname["answers_count"], 2);
    assert_eq!(s(&cname["answers"][0]["cname"]), "www.example.test");
    assert_eq!(s(&cname["answers"][1]["ip"]), "10.77.0.9");
    assert_eq!(cname["answers"][1][f::TTL], 600);
    assert_eq!(s(&lines[23][f::DNS]["answers"][0]["ip"]), "fd77::9");
    assert_eq!(
        lines[27][f::DNS]["answers"][0]["mx"],
        serde_json::json!({"preference": 10, "host": "mail.example.test"})
    );
    assert_eq!(
        lines[29][f::DNS]["answers"][0]["txt"],
        serde_json::json!(["v=spf1 -all", "second string"])
    );
    assert_eq!(
        lines[31][f::DNS]["answers"][0]["srv"],
        serde_json::json!({"priority": 1, "weight": 2, "port": 5060, "target": "sip.example.test"})
    );
    assert_eq!(
        s(&lines[33][f::DNS]["answers"][0]["ptr"]),
        "www.example.test"
    );
    assert_eq!(
        lines[35][f::DNS]["answers"][0]["caa"],
        serde_json::json!({"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    );
    let soa = &lines[37][f::DNS]["answers"][0]["soa"];
    assert_eq!(s(&soa["mname"]), "ns.example.test");
    assert_eq!(soa["serial"], 2024010101u32);
    assert_eq!(
        s(&lines[39][f::DNS]["response_code"]),
        "Non-Existent Domain"
    );
    assert!(s(&lines[39][f::MESSAGE])
        .contains("DNS Response 29477 NXDOMAIN A nope.example.test answers:0"));
    // DNS over TCP, with its length prefix.
    assert_eq!(
        s(&lines[43][f::DNS]["questions"][0][f::NAME]),
        "www.example.test"
    );
    assert_eq!(s(&lines[45][f::DNS]["answers"][0]["ip"]), "10.77.0.9");
}

#[test]
fn tls_hellos() {
    let (lines, _) = translate_all(VETH, Verbosity::Debug);
    let ch = &lines[78][f::TLS];
    assert_eq!(s(&ch["client_hello"]["sni"]), "tls.example.test");
    assert_eq!(
        ch["client_hello"]["alpn"],
        serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(s(&ch["client_hello"]["versions"][0]), "TLS 1.3");
    assert_eq!(s(&ch["handshake"][0]["message"]), "ClientHello");
    assert!(s(&lines[78][f::MESSAGE])
        .ends_with("| size:340 | TLS ClientHello sni:tls.example.test alpn:h2,http/1.1"));
    assert_eq!(s(&lines[80][f::TLS]["server_hello"]["version"]), "TLS 1.3");
    let (info, _) = translate_all(VETH, Verbosity::Info);
    assert_eq!(
        s(&info[78][f::TLS]["client_hello"]["sni"]),
        "tls.example.test"
    );
    assert!(info[78][f::TLS]["handshake"].is_null());
}

#[test]
fn arp_has_a_real_flow() {
    let (lines, _) = translate_all(VETH, Verbosity::Debug);
    let (req, rep) = (&lines[8], &lines[9]);
    assert_eq!(req[f::ARP]["op"], 1);
    assert_eq!(s(&req[f::ARP][f::SRC]["MAC"]), "02:00:00:00:00:0a");
    assert_eq!(s(&rep[f::ARP][f::SRC]["IP"]), "10.77.0.2");
    assert_eq!(s(&req[f::FLOW]), s(&rep[f::FLOW]));
    assert!(s(&req[f::OPERATION][f::ID]).contains("/flow/arp:"));
    assert!(s(&req[f::MESSAGE]).ends_with(&format!(
        "flow:{} | ARP | 10.77.0.1 > 10.77.0.2 | request",
        s(&req[f::FLOW])
    )));
    assert!(req[f::LOCAL].is_null() && req[f::COMMUNITY_ID].is_null());
}

#[test]
fn cooked_captures() {
    let (lines, _) = translate_all(SLL2, Verbosity::Debug);
    let l2 = &lines.iter().find(|l| !l[f::L4].is_null()).unwrap()[f::L2];
    assert!(l2["ifindex"].as_u64().unwrap() > 0);
    assert!(["outgoing", "host"].contains(&s(&l2["pkttype"])));
    let (lines, _) = translate_all(SLL, Verbosity::Debug);
    assert!(lines.iter().any(|l| l[f::L2]["pkttype"] == "outgoing"));
    assert!(lines.iter().any(|l| !l[f::DNS].is_null()));
    let (lines, _) = translate_all(LO, Verbosity::Debug);
    assert!(lines
        .iter()
        .any(|l| s(&l[f::MESSAGE]).contains("127.0.0.1 > 127.0.0.1 | EchoRequest")));
}

#[test]
fn snaplen_truncation_is_said_not_an_error() {
    let (lines, t) = translate_with(SNAP, Verbosity::Info, &iface());
    let cut: Vec<&Value> = lines
        .iter()
        .filter(|l| l[f::META][f::TRUNC] == true)
        .collect();
    assert!(cut.len() > 10);
    assert!(cut
        .iter()
        .all(|l| l[f::ERROR].is_null() && s(&l[f::SEVERITY]) != "ERROR"));
    assert!(cut.iter().all(|l| l[f::META][f::CAP_LEN] == 64));
    assert_eq!(t.counters().truncated as usize, cut.len());
}

#[test]
fn malformed_layer_is_an_error_and_lower_layers_stay() {
    let pcap = wire::pcapfile::File::new(VETH).unwrap();
    let mut p = pcap.records().nth(50).unwrap().unwrap().data.to_vec();
    p[46] = 0x30; // TCP data offset 3 words
    let mut t = Translator::new(settings(Verbosity::Debug));
    let mut out = Vec::new();
    let o = t.translate(
        &ethernet(iface()),
        &CapturedPacket {
            ts_sec: 1_700_000_000,
            ts_nsec: 0,
            wire_len: p.len() as u32,
            num: 0,
            data: &p,
        },
        &mut out,
    );
    assert_eq!(o.severity, Severity::Error);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v[f::ERROR],
        serde_json::json!({"layer": "tcp", "kind": "bad_header_length", "offset": 46})
    );
    assert_eq!(s(&v[f::SEVERITY]), "ERROR");
    assert_eq!(s(&v[f::L3][f::SRC]), "10.77.0.1");
    assert!(v[f::L4].is_null());
    assert!(s(&v[f::MESSAGE]).ends_with(" | error:tcp/bad_header_length@46"));
    assert_eq!(t.counters().errors(analyze::Layer::Tcp), 1);
    assert_eq!(t.counters().decode_errors, 1);
}

#[test]
fn dates_sort_as_text() {
    let (lines, _) = translate_all(VETH, Verbosity::Info);
    let dates: Vec<&str> = lines.iter().map(|l| s(&l[f::PCAP][f::DATE])).collect();
    let mut sorted = dates.clone();
    sorted.sort();
    assert_eq!(dates, sorted);
    for (l, d) in lines.iter().zip(&dates) {
        let parsed = chrono::DateTime::parse_from_rfc3339(d).unwrap();
        assert_eq!(
            parsed.timestamp(),
            l[f::TIMESTAMP][f::SECONDS].as_i64().unwrap()
        );
        assert_eq!(
            parsed.timestamp_subsec_nanos() as u64,
            l[f::TIMESTAMP][f::NANOS].as_u64().unwrap()
        );
        assert!(d.ends_with('Z') && d.as_bytes()[19] == b'.');
    }
}

#[test]
fn flow_table_is_bounded() {
    let mut s = settings(Verbosity::Info);
    s.max_flows = 64;
    let source = ethernet(iface());
    let mut t = Translator::new(s);
    let pcap = wire::pcapfile::File::new(VETH).unwrap();
    let syn = pcap.records().nth(50).unwrap().unwrap().data.to_vec();
    let mut out = Vec::new();
    for port in 0..5000u16 {
        let mut p = syn.clone();
        p[34..36].copy_from_slice(&port.to_be_bytes());
        out.clear();
        t.translate(
            &source,
            &CapturedPacket {
                ts_sec: 1_700_000_000 + i64::from(port),
                ts_nsec: 0,
                wire_len: p.len() as u32,
                num: u64::from(port),
                data: &p,
            },
            &mut out,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[f::OPERATION][f::FIRST], true);
    }
    let c = t.counters();
    assert!(c.flows_active <= 64);
    assert_eq!(c.flows_created, 5000);
    assert!(c.flows_evicted_cap + c.flows_evicted_idle >= 5000 - 64);
}

#[test]
fn info_tcp_median_size() {
    let pcap = wire::pcapfile::File::new(VETH).unwrap();
    let source = ethernet(Interface {
        index: 2,
        name: "eth0".into(),
        addrs: vec!["10.77.0.1".parse().unwrap()],
    });
    let mut s = settings(Verbosity::Info);
    s.run_id = "pcapd/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into();
    s.log_name = format!("projects/my-project/pcap/{}", s.run_id);
    let mut t = Translator::new(s.clone());
    let mut sizes = Vec::new();
    let mut out = Vec::new();
    for r in pcap.records() {
        out.clear();
        let o = t.translate(&source, &r.unwrap(), &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        if v[f::MESSAGE].as_str().unwrap().contains(" | TCP | ") {
            sizes.push(o.bytes);
        }
    }
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    println!(
        "INFO TCP entries: {} median {median} min {} max {}",
        sizes.len(),
        sizes[0],
        sizes[sizes.len() - 1]
    );
    assert!(sizes.len() > 40);
    // 482 with the compact message and operation id (599 before them).
    assert!(median <= 500, "median INFO TCP entry {median} bytes");
}
