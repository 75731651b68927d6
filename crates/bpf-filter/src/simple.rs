//! The simple filter variables → BPF text.
//!
//! Groups come in the order L3, L4, ports, TCP flags, addresses; terms are ORed inside a
//! (parenthesised) group in the order the user gave them, groups are ANDed, and a group whose
//! variable is `ALL` is left out. L4, ports, flags and addresses restrict **IP** traffic only:
//! - with `arp` in `PCAP_L3_PROTOS` next to IP versions and other restrictions, the result is
//!   `(arp or ((ip or ip6) and (…) and …))`, so ARP frames pass unrestricted (the original
//!   ANDed `arp` with the L4 group, which no ARP frame can satisfy);
//! - `PCAP_L3_PROTOS=ALL` leaves the L3 group out: non-IP frames (ARP, …) then pass only when
//!   no other group restricts the capture. List `arp` explicitly to see ARP next to a
//!   restricted IP capture.
//!
//! TCP flags mean "any of these flags is set" and imply TCP. libpcap's `tcp[]` only reads
//! IPv4, so IPv6 gets `(ip6 and ip6[6] = 6 and ip6[53] & MASK != 0)`: next header must be TCP
//! right after the fixed 40-byte header; extension headers are not followed, so a TCP segment
//! behind an extension header never matches the IPv6 half (nor libpcap's own `tcp`, `udp` and
//! `port`, which do not follow them either).
//!
//! Combinations that could never match any packet are errors, not an empty capture.

use std::net::IpAddr;

use sidecar_core::config::values::{IpNet, L3Proto, L4Proto, Selection, TcpFlag};

use crate::resolve::ResolvedHost;
use crate::FilterError;
use crate::FilterSpec;

/// The simple filter's top-level conjuncts (ANDed by the caller) and the variables behind them.
pub(crate) struct Simple {
    pub conjuncts: Vec<String>,
    pub variables: Vec<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    V4,
    V6,
}

fn family_of(addr: &IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

fn l4_carried_by(proto: L4Proto, family: Family) -> bool {
    match proto {
        L4Proto::Tcp | L4Proto::Udp => true,
        L4Proto::Icmp => family == Family::V4,
        L4Proto::Icmp6 => family == Family::V6,
    }
}

fn group(terms: &[String]) -> String {
    format!("({})", terms.join(" or "))
}

fn net_term(net: &IpNet) -> String {
    if net.is_host() {
        format!("host {}", net.addr)
    } else {
        format!("net {}/{}", net.addr, net.prefix)
    }
}

fn flag_keyword(flag: TcpFlag) -> &'static str {
    match flag {
        TcpFlag::Fin => "tcp-fin",
        TcpFlag::Syn => "tcp-syn",
        TcpFlag::Rst => "tcp-rst",
        TcpFlag::Psh => "tcp-push",
        TcpFlag::Ack => "tcp-ack",
        TcpFlag::Urg => "tcp-urg",
        TcpFlag::Ece => "tcp-ece",
        TcpFlag::Cwr => "tcp-cwr",
    }
}

/// The TCP-flags group for the IP versions being captured.
fn flags_group(flags: &[TcpFlag], families: &[Family]) -> String {
    let keywords: Vec<&str> = flags.iter().map(|f| flag_keyword(*f)).collect();
    let mask = flags.iter().fold(0u8, |m, f| m | f.bit());
    let mut halves = Vec::new();
    if families.contains(&Family::V4) {
        halves.push(format!("(tcp[tcpflags] & ({}) != 0)", keywords.join("|")));
    }
    if families.contains(&Family::V6) {
        // Byte 6 is the next header (6 = TCP); the flags are byte 13 of the TCP header.
        halves.push(format!(
            "(ip6 and ip6[6] = 6 and ip6[53] & 0x{mask:02x} != 0)"
        ));
    }
    if halves.len() == 1 {
        halves.remove(0)
    } else {
        group(&halves)
    }
}

/// Builds the simple filter; `hosts` are the resolved `PCAP_HOSTS` (empty when `ALL`).
pub(crate) fn build(spec: &FilterSpec, hosts: &[ResolvedHost]) -> Result<Simple, FilterError> {
    let mut variables = Vec::new();
    let l3 = spec.l3_protos.items();
    let families: Vec<Family> = match l3 {
        None => vec![Family::V4, Family::V6],
        Some(items) => items
            .iter()
            .filter_map(|p| match p {
                L3Proto::Ipv4 => Some(Family::V4),
                L3Proto::Ipv6 => Some(Family::V6),
                L3Proto::Arp => None,
            })
            .collect(),
    };
    let arp = l3.is_some_and(|items| items.contains(&L3Proto::Arp));
    if l3.is_some() {
        variables.push("PCAP_L3_PROTOS");
    }

    check_contradictions(spec, &families, hosts)?;

    // The groups that restrict IP traffic, in order.
    let mut ip_groups = Vec::new();
    if let Some(l4) = spec.l4_protos.items() {
        let terms: Vec<String> = l4.iter().map(ToString::to_string).collect();
        ip_groups.push(group(&terms));
        variables.push("PCAP_L4_PROTOS");
    }
    if let Some(ports) = spec.ports.items() {
        let terms: Vec<String> = ports
            .iter()
            .map(|p| {
                if p.is_single() {
                    format!("port {}", p.start)
                } else {
                    format!("portrange {}-{}", p.start, p.end)
                }
            })
            .collect();
        ip_groups.push(group(&terms));
        variables.push("PCAP_PORTS");
    }
    if let Some(flags) = spec.tcp_flags.items() {
        ip_groups.push(flags_group(flags, &families));
        variables.push("PCAP_TCP_FLAGS");
    }
    let mut address_terms: Vec<String> = Vec::new();
    for (name, selection) in [("PCAP_IPV4", &spec.ipv4), ("PCAP_IPV6", &spec.ipv6)] {
        if let Some(nets) = selection.items() {
            address_terms.extend(nets.iter().map(net_term));
            variables.push(name);
        }
    }
    if spec.hosts.items().is_some() {
        for addr in hosts.iter().flat_map(|h| &h.addrs) {
            let term = format!("host {addr}");
            if !address_terms.contains(&term) {
                address_terms.push(term);
            }
        }
        variables.push("PCAP_HOSTS");
    }
    if !address_terms.is_empty() {
        ip_groups.push(group(&address_terms));
    }

    let conjuncts = match l3 {
        None => ip_groups,
        Some(items) => {
            let l3_terms: Vec<String> = items
                .iter()
                .map(|p| {
                    match p {
                        L3Proto::Ipv4 => "ip",
                        L3Proto::Ipv6 => "ip6",
                        L3Proto::Arp => "arp",
                    }
                    .to_string()
                })
                .collect();
            if !arp || ip_groups.is_empty() {
                // No restriction beyond L3 (or no ARP): one plain L3 group.
                std::iter::once(group(&l3_terms)).chain(ip_groups).collect()
            } else if families.is_empty() {
                // ARP only; the IP groups cannot apply (contradictions were rejected above,
                // the default L4 group is simply moot).
                variables.retain(|v| *v == "PCAP_L3_PROTOS");
                vec!["(arp)".to_string()]
            } else {
                let ip_l3: Vec<String> = l3_terms.into_iter().filter(|t| t != "arp").collect();
                let ip_part: Vec<String> =
                    std::iter::once(group(&ip_l3)).chain(ip_groups).collect();
                vec![format!("(arp or ({}))", ip_part.join(" and "))]
            }
        }
    };
    Ok(Simple {
        conjuncts,
        variables,
    })
}

fn contradiction(variable: &'static str, value: String, reason: String) -> FilterError {
    FilterError::Contradiction {
        variable,
        value,
        reason,
    }
}

/// Rejects settings that together leave no packet to capture.
fn check_contradictions(
    spec: &FilterSpec,
    families: &[Family],
    hosts: &[ResolvedHost],
) -> Result<(), FilterError> {
    let l3_text = spec.l3_protos.to_string();
    let address_vars: Vec<&'static str> = [
        ("PCAP_IPV4", spec.ipv4 != Selection::All),
        ("PCAP_IPV6", spec.ipv6 != Selection::All),
        ("PCAP_HOSTS", spec.hosts != Selection::All),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();

    if families.is_empty() {
        // ARP only: every restriction of IP traffic is a contradiction (L4 is not checked:
        // its default is not ALL, so it cannot tell the user's intent).
        let restricted = [
            (
                "PCAP_PORTS",
                spec.ports.to_string(),
                spec.ports != Selection::All,
            ),
            (
                "PCAP_TCP_FLAGS",
                spec.tcp_flags.to_string(),
                spec.tcp_flags != Selection::All,
            ),
            (
                "PCAP_IPV4",
                spec.ipv4.to_string(),
                spec.ipv4 != Selection::All,
            ),
            (
                "PCAP_IPV6",
                spec.ipv6.to_string(),
                spec.ipv6 != Selection::All,
            ),
            (
                "PCAP_HOSTS",
                spec.hosts.to_string(),
                spec.hosts != Selection::All,
            ),
        ];
        if let Some((name, value, _)) = restricted.into_iter().find(|(_, _, set)| *set) {
            return Err(contradiction(
                name,
                value,
                format!("it restricts IP traffic, but PCAP_L3_PROTOS={l3_text} captures no IP"),
            ));
        }
        return Ok(());
    }

    let l4 = spec.l4_protos.items();
    let l4_text = spec.l4_protos.to_string();
    if let (Some(flags), Some(l4)) = (spec.tcp_flags.items(), l4) {
        if !l4.contains(&L4Proto::Tcp) {
            return Err(contradiction(
                "PCAP_TCP_FLAGS",
                Selection::Only(flags.to_vec()).to_string(),
                format!(
                    "TCP flags select TCP segments, but PCAP_L4_PROTOS={l4_text} leaves TCP out"
                ),
            ));
        }
    }
    if let (Some(ports), Some(l4)) = (spec.ports.items(), l4) {
        if !l4.contains(&L4Proto::Tcp) && !l4.contains(&L4Proto::Udp) {
            return Err(contradiction(
                "PCAP_PORTS",
                Selection::Only(ports.to_vec()).to_string(),
                format!("ports select TCP and UDP, but PCAP_L4_PROTOS={l4_text} leaves both out"),
            ));
        }
    }
    // IP versions for which the L4 group can match at all.
    let usable: Vec<Family> = families
        .iter()
        .copied()
        .filter(|f| l4.is_none_or(|l4| l4.iter().any(|p| l4_carried_by(*p, *f))))
        .collect();
    if usable.is_empty() {
        return Err(contradiction(
            "PCAP_L4_PROTOS",
            l4_text,
            format!("none of these protocols is carried by PCAP_L3_PROTOS={l3_text}"),
        ));
    }
    if !address_vars.is_empty() {
        let mut address_families: Vec<Family> = Vec::new();
        for selection in [&spec.ipv4, &spec.ipv6] {
            if let Some(nets) = selection.items() {
                address_families.extend(nets.iter().map(|n| family_of(&n.addr)));
            }
        }
        address_families.extend(hosts.iter().flat_map(|h| h.addrs.iter().map(family_of)));
        if !address_families.iter().any(|f| usable.contains(f)) {
            let name = address_vars[0];
            let value = match name {
                "PCAP_IPV4" => spec.ipv4.to_string(),
                "PCAP_IPV6" => spec.ipv6.to_string(),
                _ => spec.hosts.to_string(),
            };
            return Err(contradiction(
                name,
                value,
                format!(
                    "the addresses of {} are all of an IP version that \
                     PCAP_L3_PROTOS={l3_text} / PCAP_L4_PROTOS={l4_text} do not capture",
                    address_vars.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
