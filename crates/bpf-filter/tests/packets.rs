//! The generated filters run by libpcap's BPF interpreter over hand-built frames (Ethernet
//! and Linux cooked), asserting which packets each configuration captures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bpf_filter::{build, compile, ExcludedEndpoint, FilterPlan, FilterSpec, LinkType};
use sidecar_core::config::Config;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 2);
const SERVER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

// --- frame builders -----------------------------------------------------------------------

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Linux cooked capture (SLL) header, as the `any` interface delivers.
fn cooked(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 2, 0, 0];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(payload);
    packet
}

fn ipv6(next: u8, src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[next, 64]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(payload);
    packet
}

fn tcp_reply(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, flags: u8) -> Vec<u8> {
    ethernet(0x0800, &ipv4(6, src, dst, &tcp(sport, 40000, flags)))
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut segment = Vec::new();
    segment.extend_from_slice(&sport.to_be_bytes());
    segment.extend_from_slice(&dport.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    segment
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&sport.to_be_bytes());
    datagram.extend_from_slice(&dport.to_be_bytes());
    datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    datagram
}

fn icmp_echo(ty: u8) -> Vec<u8> {
    vec![ty, 0, 0, 0, 0, 1, 0, 1]
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 2];
    arp.extend_from_slice(&CLIENT4.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&target.octets());
    ethernet(0x0806, &arp)
}

fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    ethernet(0x0800, &ipv4(6, src, dst, &tcp(40000, dport, flags)))
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, dport: u16, flags: u8) -> Vec<u8> {
    ethernet(0x86dd, &ipv6(6, src, dst, &tcp(40000, dport, flags)))
}

fn udp4(dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    ethernet(
        0x0800,
        &ipv4(17, CLIENT4, dst, &udp(40000, dport, b"query")),
    )
}

fn udp6(dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(0x86dd, &ipv6(17, CLIENT6, dst, &udp(40000, dport, payload)))
}

/// The named packets every test looks at.
fn packets() -> Vec<(&'static str, Vec<u8>)> {
    // A UDP payload whose byte 5 (IPv6 byte 53) has the SYN bit: the original's IPv6 flag
    // clause matched it.
    let syn_lookalike = [0u8, 0, 0, 0, 0, 0x02, 0, 0];
    // A TCP SYN behind a hop-by-hop extension header (8 bytes, next header TCP).
    let mut hop_by_hop = vec![6, 0, 1, 4, 0, 0, 0, 0];
    hop_by_hop.extend_from_slice(&tcp(40000, 443, SYN));
    vec![
        ("tcp4 syn 443", tcp4(CLIENT4, SERVER4, 443, SYN)),
        ("tcp4 ack 443", tcp4(CLIENT4, SERVER4, 443, ACK)),
        ("tcp4 psh 8080", tcp4(CLIENT4, SERVER4, 8080, PSH_ACK)),
        ("tcp6 syn 443", tcp6(CLIENT6, SERVER6, 443, SYN)),
        ("tcp6 ack 443", tcp6(CLIENT6, SERVER6, 443, ACK)),
        ("udp4 53", udp4(SERVER4, 53)),
        ("udp6 53", udp6(SERVER6, 53, b"query")),
        ("udp6 syn-lookalike", udp6(SERVER6, 5000, &syn_lookalike)),
        (
            "icmp4 echo",
            ethernet(0x0800, &ipv4(1, CLIENT4, SERVER4, &icmp_echo(8))),
        ),
        (
            "icmp6 echo",
            ethernet(0x86dd, &ipv6(58, CLIENT6, SERVER6, &icmp_echo(128))),
        ),
        ("arp", arp_request(SERVER4)),
        ("metadata http", tcp4(CLIENT4, METADATA, 80, PSH_ACK)),
        ("metadata reply", tcp_reply(METADATA, CLIENT4, 80, ACK)),
        ("metadata dns", udp4(METADATA, 53)),
        (
            "tcp6 syn hop-by-hop",
            ethernet(0x86dd, &ipv6(0, CLIENT6, SERVER6, &hop_by_hop)),
        ),
    ]
}

// --- helpers ------------------------------------------------------------------------------

/// Variable settings of one case.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn config(pairs: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(&|name| map.get(name).cloned()).unwrap()
}

fn dns(name: &str) -> io::Result<Vec<IpAddr>> {
    match name {
        "api.example.com" => Ok(vec![SERVER4.into(), SERVER6.into()]),
        "storage.googleapis.com" => Ok(vec![SERVER4.into()]),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN")),
    }
}

fn plan(pairs: &[(&str, &str)]) -> FilterPlan {
    build(&FilterSpec::from(&config(pairs)), &[], &dns).unwrap()
}

/// The names of the packets `plan` captures on an Ethernet interface.
fn captured(plan: &FilterPlan) -> Vec<&'static str> {
    let program = compile(&plan.text, LinkType::Ethernet).unwrap();
    packets()
        .into_iter()
        .filter(|(_, frame)| program.filter(frame))
        .map(|(name, _)| name)
        .collect()
}

fn assert_captures(pairs: &[(&str, &str)], expected: &[&str]) {
    let plan = plan(pairs);
    assert_eq!(captured(&plan), expected, "{pairs:?} → {}", plan.text);
}

// --- behaviour ----------------------------------------------------------------------------

#[test]
fn defaults_capture_tcp_and_udp_but_not_the_metadata_servers_http() {
    assert_captures(
        &[],
        &[
            "tcp4 syn 443",
            "tcp4 ack 443",
            "tcp4 psh 8080",
            "tcp6 syn 443",
            "tcp6 ack 443",
            "udp4 53",
            "udp6 53",
            "udp6 syn-lookalike",
            "metadata dns",
        ],
    );
    // Without the exclusion, the metadata server's HTTP traffic is there.
    let with_self = captured(&plan(&[("PCAP_EXCLUDE_SELF", "false")]));
    assert!(with_self.contains(&"metadata http") && with_self.contains(&"metadata reply"));
}

#[test]
fn ports_select_tcp_and_udp_of_both_ip_versions() {
    assert_captures(
        &[("PCAP_PORTS", "https,dns")],
        &[
            "tcp4 syn 443",
            "tcp4 ack 443",
            "tcp6 syn 443",
            "tcp6 ack 443",
            "udp4 53",
            "udp6 53",
            "metadata dns",
        ],
    );
    assert_captures(
        &[("PCAP_PORTS", "8000-8080"), ("PCAP_EXCLUDE_SELF", "false")],
        &["tcp4 psh 8080"],
    );
}

#[test]
fn tcp_flags_match_any_listed_flag_and_only_tcp() {
    let syn_only = ["tcp4 syn 443", "tcp6 syn 443"];
    assert_captures(&[("PCAP_TCP_FLAGS", "syn")], &syn_only);
    // The original's IPv6 clause took the UDP look-alike for a SYN.
    let original = compile("(tcp or udp) and (ip6[13+40]&0x2!=0)", LinkType::Ethernet).unwrap();
    let lookalike = packets()
        .into_iter()
        .find(|(n, _)| *n == "udp6 syn-lookalike")
        .unwrap();
    assert!(original.filter(&lookalike.1));
    // The IPv6 UDP look-alike no longer matches. A SYN behind an extension header is not
    // seen, like libpcap's own `tcp` (which does not follow extension headers either).
    assert_captures(
        &[("PCAP_TCP_FLAGS", "syn,psh")],
        &["tcp4 syn 443", "tcp4 psh 8080", "tcp6 syn 443"],
    );
    assert_captures(
        &[("PCAP_TCP_FLAGS", "syn"), ("PCAP_L3_PROTOS", "ipv4")],
        &["tcp4 syn 443"],
    );
    assert_captures(
        &[("PCAP_TCP_FLAGS", "syn"), ("PCAP_L3_PROTOS", "ipv6")],
        &["tcp6 syn 443"],
    );
    assert_captures(
        &[("PCAP_TCP_FLAGS", "ack"), ("PCAP_EXCLUDE_SELF", "false")],
        &[
            "tcp4 ack 443",
            "tcp4 psh 8080",
            "tcp6 ack 443",
            "metadata http",
            "metadata reply",
        ],
    );
}

#[test]
fn l3_and_l4_protocols() {
    assert_captures(
        &[("PCAP_L4_PROTOS", "icmp,icmp6")],
        &["icmp4 echo", "icmp6 echo"],
    );
    assert_captures(
        &[("PCAP_L3_PROTOS", "ipv6"), ("PCAP_L4_PROTOS", "udp")],
        &["udp6 53", "udp6 syn-lookalike"],
    );
    // ARP passes next to a restricted IP capture.
    assert_captures(
        &[
            ("PCAP_L3_PROTOS", "ipv4,arp"),
            ("PCAP_L4_PROTOS", "tcp"),
            ("PCAP_PORTS", "443"),
        ],
        &["tcp4 syn 443", "tcp4 ack 443", "arp"],
    );
    assert_captures(&[("PCAP_L3_PROTOS", "arp")], &["arp"]);
    // The original ANDed arp with the L4 group: ARP could never match.
    let original = compile("(ip or ip6 or arp) and (tcp or udp)", LinkType::Ethernet).unwrap();
    assert!(!original.filter(&arp_request(SERVER4)));
}

#[test]
fn addresses_restrict_alone_or_together() {
    let to_server4 = ["tcp4 syn 443", "tcp4 ack 443", "tcp4 psh 8080", "udp4 53"];
    assert_captures(&[("PCAP_IPV4", "192.0.2.10")], &to_server4);
    assert_captures(&[("PCAP_IPV4", "192.0.2.0/24")], &to_server4);
    let to_server6 = [
        "tcp6 syn 443",
        "tcp6 ack 443",
        "udp6 53",
        "udp6 syn-lookalike",
    ];
    assert_captures(&[("PCAP_IPV6", "2001:db8::/32")], &to_server6);
    assert_captures(&[("PCAP_IPV6", "fd00::2")], &to_server6);
    let both: Vec<&str> = packets()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| to_server4.contains(n) || to_server6.contains(n))
        .collect();
    assert_captures(&[("PCAP_HOSTS", "api.example.com")], &both);
    assert_captures(
        &[("PCAP_IPV4", "192.0.2.10"), ("PCAP_IPV6", "2001:db8::10")],
        &both,
    );
    assert_captures(&[("PCAP_IPV4", "203.0.113.0/24")], &[]);
    // Without an L4 group the address alone decides: ICMPv6 and the extension-header packet.
    assert_captures(
        &[("PCAP_IPV6", "2001:db8::/32"), ("PCAP_L4_PROTOS", "ALL")],
        &[
            "tcp6 syn 443",
            "tcp6 ack 443",
            "udp6 53",
            "udp6 syn-lookalike",
            "icmp6 echo",
            "tcp6 syn hop-by-hop",
        ],
    );
}

#[test]
fn pcap_filter_replaces_the_simple_filters() {
    assert_captures(
        &[("PCAP_FILTER", "icmp or arp"), ("PCAP_PORTS", "443")],
        &["icmp4 echo", "arp"],
    );
    // The exclusion applies to PCAP_FILTER too.
    assert_captures(
        &[("PCAP_FILTER", "host 169.254.169.254")],
        &["metadata dns"],
    );
}

#[test]
fn cloud_storage_exclusion_hides_only_https_to_its_addresses() {
    let plan = build(
        &FilterSpec::from(&config(&[("PCAP_GCS_BUCKET", "bkt")])),
        &[ExcludedEndpoint::cloud_storage()],
        &dns,
    )
    .unwrap();
    let got = captured(&plan);
    assert!(!got.contains(&"tcp4 syn 443"), "{got:?}");
    assert!(got.contains(&"tcp4 psh 8080"), "{got:?}");
    assert!(got.contains(&"udp4 53"), "{got:?}");
    assert!(got.contains(&"tcp6 syn 443"), "{got:?}");
}

#[test]
fn the_same_filters_work_on_the_any_interface() {
    let frames = [
        (
            "tcp4 syn 443",
            cooked(0x0800, &ipv4(6, CLIENT4, SERVER4, &tcp(1, 443, SYN))),
        ),
        (
            "tcp6 syn 443",
            cooked(0x86dd, &ipv6(6, CLIENT6, SERVER6, &tcp(1, 443, SYN))),
        ),
        (
            "udp4 53",
            cooked(0x0800, &ipv4(17, CLIENT4, SERVER4, &udp(1, 53, b"q"))),
        ),
        (
            "metadata http",
            cooked(0x0800, &ipv4(6, CLIENT4, METADATA, &tcp(1, 80, ACK))),
        ),
    ];
    let cases: &[(Pairs, &[&str])] = &[
        (&[], &["tcp4 syn 443", "tcp6 syn 443", "udp4 53"]),
        (
            &[("PCAP_TCP_FLAGS", "syn")],
            &["tcp4 syn 443", "tcp6 syn 443"],
        ),
        (&[("PCAP_PORTS", "53")], &["udp4 53"]),
    ];
    for (pairs, expected) in cases {
        let plan = plan(pairs);
        let program = compile(&plan.text, LinkType::LinuxSll).unwrap();
        let got: Vec<&str> = frames
            .iter()
            .filter(|(_, f)| program.filter(f))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(&got, expected, "{pairs:?} → {}", plan.text);
    }
}
