//! Filter texts for the reference's worked examples (with the intended, fixed results), each
//! variable alone and combined, errors, exclusions and refresh. Every text that [`build`]
//! returns has been compiled by the real libpcap for Ethernet and `any`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use sidecar_core::config::{Config, ConfigErrors};

use super::*;

/// Variable settings of one case.
type Pairs<'a> = &'a [(&'a str, &'a str)];

const METADATA_HTTP: &str = "not (tcp port 80 and host 169.254.169.254)";

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(&|name| map.get(name).cloned())
}

fn cfg(pairs: &[(&str, &str)]) -> FilterSpec {
    FilterSpec::from(&config(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}")))
}

fn addrs(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

/// A fixed DNS: the names of the tests, anything else is NXDOMAIN.
fn dns(name: &str) -> io::Result<Vec<IpAddr>> {
    match name {
        "metadata.google.internal" => Ok(addrs(&["169.254.169.254"])),
        "api.example.com" => Ok(addrs(&["2001:db8::7", "192.0.2.7", "192.0.2.8"])),
        "db.example.com" => Ok(addrs(&["192.0.2.8"])),
        "v6only.example.com" => Ok(addrs(&["2001:db8::6"])),
        STORAGE => Ok(addrs(&["142.250.1.1", "2a00:1450::1"])),
        "localhost" => Ok(addrs(&["127.0.0.1"])),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN")),
    }
}

const STORAGE: &str = exclude::STORAGE_API_HOST;

/// Builds (and so compiles) the plan for `pairs`.
fn build_plan(pairs: &[(&str, &str)]) -> FilterPlan {
    build(&cfg(pairs), &[], &dns).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

/// The filter text without the self exclusion.
fn text(pairs: &[(&str, &str)]) -> String {
    let mut all = vec![("PCAP_EXCLUDE_SELF", "false")];
    all.extend_from_slice(pairs);
    build_plan(&all).text
}

fn error(pairs: &[(&str, &str)]) -> FilterError {
    match build(&cfg(pairs), &[], &dns) {
        Ok(plan) => panic!("{pairs:?} should fail, got {plan}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_capture_ip_tcp_and_udp_without_the_metadata_server() {
    let plan = build_plan(&[]);
    assert_eq!(
        plan.text,
        format!("(ip or ip6) and (tcp or udp) and {METADATA_HTTP}")
    );
    assert_eq!(plan.source, FilterSource::Simple);
    assert_eq!(
        plan.variables,
        ["PCAP_L3_PROTOS", "PCAP_L4_PROTOS", "PCAP_EXCLUDE_SELF"]
    );
    assert_eq!(plan.excluded.len(), 1);
    assert_eq!(plan.excluded[0].port, Some(80));
    assert!(plan.resolved_hosts.is_empty());
    assert!(!plan.has_names());
    assert_eq!(text(&[]), "(ip or ip6) and (tcp or udp)");
}

/// The original sidecar's filter examples, with the intended results.
#[test]
fn worked_examples_give_the_intended_filters() {
    let cases: &[(Pairs, &str)] = &[
        // 1
        (&[], "(ip or ip6) and (tcp or udp)"),
        // 2
        (
            &[("PCAP_PORTS", "80,443")],
            "(ip or ip6) and (tcp or udp) and (port 80 or port 443)",
        ),
        // 3: any of the flags; the IPv6 half checks next header = TCP.
        (
            &[("PCAP_TCP_FLAGS", "syn,rst")],
            "(ip or ip6) and (tcp or udp) and ((tcp[tcpflags] & (tcp-syn|tcp-rst) != 0) \
             or (ip6 and ip6[6] = 6 and ip6[53] & 0x06 != 0))",
        ),
        // 4: IPv4 only, so only the IPv4 flags half.
        (
            &[
                ("PCAP_L3_PROTOS", "ipv4"),
                ("PCAP_L4_PROTOS", "tcp"),
                ("PCAP_PORTS", "443"),
                ("PCAP_TCP_FLAGS", "syn"),
                ("PCAP_IPV4", "1.2.3.4"),
                ("PCAP_IPV6", "DISABLED"),
            ],
            "(ip) and (tcp) and (port 443) and (tcp[tcpflags] & (tcp-syn) != 0) and (host 1.2.3.4)",
        ),
        // 5
        (
            &[
                ("PCAP_IPV4", "10.0.0.5,10.1.0.0/16"),
                ("PCAP_IPV6", "DISABLED"),
            ],
            "(ip or ip6) and (tcp or udp) and (host 10.0.0.5 or net 10.1.0.0/16)",
        ),
        // 6: the address restricts even with PCAP_IPV6 left at its default or ALL.
        (
            &[("PCAP_IPV4", "10.0.0.5")],
            "(ip or ip6) and (tcp or udp) and (host 10.0.0.5)",
        ),
        (
            &[("PCAP_IPV4", "10.0.0.5"), ("PCAP_IPV6", "ALL")],
            "(ip or ip6) and (tcp or udp) and (host 10.0.0.5)",
        ),
        // 7
        (
            &[
                ("PCAP_HOSTS", "metadata.google.internal"),
                ("PCAP_IPV4", "DISABLED"),
                ("PCAP_IPV6", "DISABLED"),
            ],
            "(ip or ip6) and (tcp or udp) and (host 169.254.169.254)",
        ),
        // 8: the host filter holds on its own.
        (
            &[("PCAP_HOSTS", "metadata.google.internal")],
            "(ip or ip6) and (tcp or udp) and (host 169.254.169.254)",
        ),
        // 9: nothing restricts: every packet.
        (&[("PCAP_L3_PROTOS", "ALL"), ("PCAP_L4_PROTOS", "ALL")], ""),
        // 10: ARP can match.
        (
            &[("PCAP_L3_PROTOS", "ipv4,ipv6,arp")],
            "(arp or ((ip or ip6) and (tcp or udp)))",
        ),
        // 11
        (
            &[("PCAP_L4_PROTOS", "tcp,icmp,icmp6")],
            "(ip or ip6) and (tcp or icmp or icmp6)",
        ),
        // 12
        (
            &[("PCAP_FILTER", "tcp port 443"), ("PCAP_PORTS", "80")],
            "(tcp port 443)",
        ),
        // 13: libpcap's keyword is tcp-push.
        (
            &[("PCAP_TCP_FLAGS", "psh")],
            "(ip or ip6) and (tcp or udp) and ((tcp[tcpflags] & (tcp-push) != 0) \
             or (ip6 and ip6[6] = 6 and ip6[53] & 0x08 != 0))",
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(text(pairs), *expected, "{pairs:?}");
    }
}

#[test]
fn worked_examples_that_were_invalid_are_rejected_by_the_configuration() {
    // 14, 15: stopped before any filter is built, naming the variable.
    for (name, value) in [
        ("PCAP_PORTS", "abc"),
        ("PCAP_PORTS", "70000"),
        ("PCAP_IPV4", "10.0.0.1/8"),
        ("PCAP_TCP_FLAGS", "tcp-foo"),
    ] {
        let errors = config(&[(name, value)]).unwrap_err();
        assert_eq!(errors.0[0].var, name, "{value}");
    }
}

#[test]
fn each_variable_alone() {
    let base = "(ip or ip6) and (tcp or udp)";
    let cases: &[(&str, &str, &str)] = &[
        ("PCAP_L3_PROTOS", "ipv6, ipv4", "(ip6 or ip) and (tcp or udp)"),
        ("PCAP_L3_PROTOS", "ALL", "(tcp or udp)"),
        ("PCAP_L4_PROTOS", "udp", "(ip or ip6) and (udp)"),
        ("PCAP_L4_PROTOS", "ALL", "(ip or ip6)"),
        (
            "PCAP_PORTS",
            "https, 8000-8080, dns",
            "BASE and (port 443 or portrange 8000-8080 or port 53)",
        ),
        (
            "PCAP_TCP_FLAGS",
            "ack",
            "BASE and ((tcp[tcpflags] & (tcp-ack) != 0) or (ip6 and ip6[6] = 6 and ip6[53] & 0x10 != 0))",
        ),
        (
            "PCAP_TCP_FLAGS",
            "fin,syn,rst,psh,ack,urg,ece,cwr",
            "BASE and ((tcp[tcpflags] & (tcp-fin|tcp-syn|tcp-rst|tcp-push|tcp-ack|tcp-urg|tcp-ece|tcp-cwr) != 0) \
             or (ip6 and ip6[6] = 6 and ip6[53] & 0xff != 0))",
        ),
        ("PCAP_IPV4", "192.0.2.0/24", "BASE and (net 192.0.2.0/24)"),
        ("PCAP_IPV4", "0.0.0.0/0", "BASE and (net 0.0.0.0/0)"),
        (
            "PCAP_IPV6",
            "2001:db8::1, fd00::/8",
            "BASE and (host 2001:db8::1 or net fd00::/8)",
        ),
        (
            "PCAP_HOSTS",
            "api.example.com",
            "BASE and (host 192.0.2.7 or host 192.0.2.8 or host 2001:db8::7)",
        ),
    ];
    for (name, value, expected) in cases {
        let expected = expected.replace("BASE", base);
        assert_eq!(text(&[(name, value)]), expected, "{name}={value}");
    }
}

#[test]
fn combinations_keep_group_order_and_user_order() {
    assert_eq!(
        text(&[
            ("PCAP_HOSTS", "db.example.com, api.example.com"),
            ("PCAP_IPV6", "fd00::/8"),
            ("PCAP_IPV4", "192.0.2.8, 10.0.0.0/8"),
            ("PCAP_TCP_FLAGS", "rst,syn"),
            ("PCAP_PORTS", "443,80"),
            ("PCAP_L4_PROTOS", "tcp"),
            ("PCAP_L3_PROTOS", "ipv6,ipv4"),
        ]),
        "(ip6 or ip) and (tcp) and (port 443 or port 80) \
         and ((tcp[tcpflags] & (tcp-rst|tcp-syn) != 0) or (ip6 and ip6[6] = 6 and ip6[53] & 0x06 != 0)) \
         and (host 192.0.2.8 or net 10.0.0.0/8 or net fd00::/8 or host 192.0.2.7 or host 2001:db8::7)"
    );
    // IPv4, IPv6 and host names together restrict one ORed group (no subsumption).
    assert_eq!(
        text(&[
            ("PCAP_IPV4", "10.0.0.5"),
            ("PCAP_IPV6", "2001:db8::1"),
            ("PCAP_HOSTS", "metadata.google.internal"),
        ]),
        "(ip or ip6) and (tcp or udp) and (host 10.0.0.5 or host 2001:db8::1 or host 169.254.169.254)"
    );
    // The same text twice: deterministic.
    let pairs = [("PCAP_PORTS", "53,443,80"), ("PCAP_L4_PROTOS", "udp,tcp")];
    assert_eq!(text(&pairs), text(&pairs));
}

#[test]
fn tcp_flags_follow_the_ip_versions_captured() {
    assert_eq!(
        text(&[("PCAP_L3_PROTOS", "ipv4"), ("PCAP_TCP_FLAGS", "syn")]),
        "(ip) and (tcp or udp) and (tcp[tcpflags] & (tcp-syn) != 0)"
    );
    assert_eq!(
        text(&[("PCAP_L3_PROTOS", "ipv6"), ("PCAP_TCP_FLAGS", "syn,ack")]),
        "(ip6) and (tcp or udp) and (ip6 and ip6[6] = 6 and ip6[53] & 0x12 != 0)"
    );
    assert_eq!(
        text(&[("PCAP_L3_PROTOS", "ALL"), ("PCAP_TCP_FLAGS", "fin")]),
        "(tcp or udp) and ((tcp[tcpflags] & (tcp-fin) != 0) \
         or (ip6 and ip6[6] = 6 and ip6[53] & 0x01 != 0))"
    );
}

#[test]
fn arp_is_not_restricted_by_ip_groups() {
    let cases: &[(Pairs, &str)] = &[
        (&[("PCAP_L3_PROTOS", "arp")], "(arp)"),
        (
            &[("PCAP_L3_PROTOS", "arp"), ("PCAP_L4_PROTOS", "ALL")],
            "(arp)",
        ),
        (
            &[("PCAP_L3_PROTOS", "ipv4,arp"), ("PCAP_L4_PROTOS", "ALL")],
            "(ip or arp)",
        ),
        (
            &[
                ("PCAP_L3_PROTOS", "arp,ipv4"),
                ("PCAP_PORTS", "53"),
                ("PCAP_TCP_FLAGS", "syn"),
            ],
            "(arp or ((ip) and (tcp or udp) and (port 53) and (tcp[tcpflags] & (tcp-syn) != 0)))",
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(text(pairs), *expected, "{pairs:?}");
    }
    let arp_only = build_plan(&[("PCAP_L3_PROTOS", "arp"), ("PCAP_EXCLUDE_SELF", "false")]);
    assert_eq!(arp_only.variables, ["PCAP_L3_PROTOS"]);
    // With the exclusion, the OR stays inside its own parentheses.
    assert_eq!(
        build_plan(&[("PCAP_L3_PROTOS", "ipv4,ipv6,arp")]).text,
        format!("(arp or ((ip or ip6) and (tcp or udp))) and {METADATA_HTTP}")
    );
}

#[test]
fn contradictions_are_errors_not_empty_captures() {
    let cases: &[(Pairs, &str, &str)] = &[
        (
            &[("PCAP_TCP_FLAGS", "syn"), ("PCAP_L4_PROTOS", "udp")],
            "PCAP_TCP_FLAGS",
            "syn",
        ),
        (
            &[("PCAP_PORTS", "80"), ("PCAP_L4_PROTOS", "icmp,icmp6")],
            "PCAP_PORTS",
            "80",
        ),
        (
            &[("PCAP_L3_PROTOS", "ipv6"), ("PCAP_L4_PROTOS", "icmp")],
            "PCAP_L4_PROTOS",
            "icmp",
        ),
        (
            &[("PCAP_L3_PROTOS", "ipv4"), ("PCAP_IPV6", "2001:db8::1")],
            "PCAP_IPV6",
            "2001:db8::1",
        ),
        (
            &[
                ("PCAP_L3_PROTOS", "ipv4"),
                ("PCAP_HOSTS", "v6only.example.com"),
            ],
            "PCAP_HOSTS",
            "v6only.example.com",
        ),
        (
            &[("PCAP_L4_PROTOS", "icmp"), ("PCAP_IPV6", "2001:db8::1")],
            "PCAP_IPV6",
            "2001:db8::1",
        ),
        (
            &[("PCAP_L3_PROTOS", "arp"), ("PCAP_PORTS", "80")],
            "PCAP_PORTS",
            "80",
        ),
    ];
    for (pairs, variable, value) in cases {
        let err = error(pairs);
        assert!(
            matches!(err, FilterError::Contradiction { .. }),
            "{pairs:?}: {err}"
        );
        assert_eq!(err.variable(), *variable, "{pairs:?}: {err}");
        assert_eq!(err.value(), *value, "{pairs:?}: {err}");
        assert!(err.is_config());
    }
    // Not contradictions: one usable IP version is enough.
    text(&[("PCAP_L4_PROTOS", "icmp"), ("PCAP_IPV4", "10.0.0.1")]);
    text(&[
        ("PCAP_L3_PROTOS", "ipv4"),
        ("PCAP_HOSTS", "api.example.com"),
    ]);
    text(&[("PCAP_L4_PROTOS", "udp,icmp6"), ("PCAP_PORTS", "53")]);
}

#[test]
fn a_name_that_does_not_resolve_stops_start_up() {
    let err = error(&[("PCAP_HOSTS", "api.example.com, tpyo.example.com")]);
    assert_eq!(
        err,
        FilterError::Unresolved {
            variable: "PCAP_HOSTS",
            name: "tpyo.example.com".into(),
            reason: "NXDOMAIN".into(),
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("PCAP_HOSTS") && text.contains("tpyo.example.com"),
        "{text}"
    );
}

#[test]
fn resolved_hosts_are_reported_and_deduplicated() {
    let plan = build_plan(&[
        ("PCAP_HOSTS", "db.example.com,api.example.com"),
        ("PCAP_EXCLUDE_SELF", "false"),
    ]);
    assert_eq!(
        plan.resolved_hosts,
        vec![
            ResolvedHost {
                name: "db.example.com".into(),
                addrs: addrs(&["192.0.2.8"]),
            },
            ResolvedHost {
                name: "api.example.com".into(),
                addrs: addrs(&["192.0.2.7", "192.0.2.8", "2001:db8::7"]),
            },
        ]
    );
    assert_eq!(
        plan.text,
        "(ip or ip6) and (tcp or udp) and (host 192.0.2.8 or host 192.0.2.7 or host 2001:db8::7)"
    );
    assert!(plan.has_names());
}

#[test]
fn pcap_filter_replaces_the_simple_filters_but_not_the_exclusion() {
    let never = |name: &str| -> io::Result<Vec<IpAddr>> {
        panic!("PCAP_HOSTS must not be resolved with PCAP_FILTER ({name})")
    };
    let plan = build(
        &cfg(&[
            ("PCAP_FILTER", "udp port 53"),
            ("PCAP_HOSTS", "api.example.com"),
            ("PCAP_L3_PROTOS", "arp"),
        ]),
        &[],
        &never,
    )
    .unwrap();
    assert_eq!(plan.text, format!("(udp port 53) and {METADATA_HTTP}"));
    assert_eq!(plan.source, FilterSource::Custom);
    assert_eq!(plan.variables, ["PCAP_FILTER", "PCAP_EXCLUDE_SELF"]);
    assert!(plan.resolved_hosts.is_empty());
    assert_eq!(
        text(&[("PCAP_FILTER", "  icmp or arp ")]),
        "(icmp or arp)",
        "values are trimmed"
    );
}

#[test]
fn libpcap_rejections_name_the_variables_and_quote_libpcap() {
    let err = error(&[("PCAP_FILTER", "tcp port")]);
    let FilterError::Rejected {
        variables,
        filter,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(variables, &["PCAP_FILTER"]);
    assert_eq!(filter, "tcp port");
    assert!(message.contains("syntax error"), "{message}");
    assert!(err.to_string().contains("PCAP_FILTER"), "{err}");
    assert!(err.is_config());

    // Balanced only once wrapped: would turn the exclusion into an OR branch. Rejected alone.
    let err = error(&[("PCAP_FILTER", "tcp) or (udp")]);
    assert_eq!(err.variable(), "PCAP_FILTER");
    assert!(validate_text("(tcp) or (udp) and not (tcp port 80)"));

    // libpcap's semantic errors come through too.
    let err = error(&[("PCAP_FILTER", "port 99999")]);
    assert!(err.to_string().contains("99999"), "{err}");
    let err = error(&[("PCAP_FILTER", "host no-such-host.invalid")]);
    assert_eq!(err.variable(), "PCAP_FILTER");
}

fn validate_text(text: &str) -> bool {
    VALIDATED_LINKTYPES
        .iter()
        .all(|linktype| compile(text, *linktype).is_ok())
}

#[test]
fn match_all_still_excludes_the_sidecar() {
    let all = [("PCAP_L3_PROTOS", "ALL"), ("PCAP_L4_PROTOS", "ALL")];
    let plan = build_plan(&all);
    assert_eq!(plan.source, FilterSource::MatchAll);
    assert_eq!(plan.text, METADATA_HTTP);
    assert_eq!(plan.variables, ["PCAP_EXCLUDE_SELF"]);
    let off = build_plan(&[all[0], all[1], ("PCAP_EXCLUDE_SELF", "false")]);
    assert_eq!(off.source, FilterSource::MatchAll);
    assert_eq!(off.text, "");
    assert!(off.variables.is_empty());
    assert!(off.excluded.is_empty());
    assert_eq!(off.to_string(), "<no filter: every packet> [match all]");
}

#[test]
fn extra_exclusions_are_resolved_and_merged() {
    let extra = vec![
        ExcludedEndpoint::parse(
            "GCE_METADATA_HOST",
            "metadata.google.internal",
            Some(80),
            "metadata server",
        )
        .unwrap(),
        ExcludedEndpoint::cloud_storage(),
        ExcludedEndpoint::parse(
            "STORAGE_EMULATOR_HOST",
            "http://localhost:9023",
            None,
            "Cloud Storage uploads",
        )
        .unwrap(),
    ];
    let plan = build(&cfg(&[]), &extra, &dns).unwrap();
    assert_eq!(
        plan.text,
        "(ip or ip6) and (tcp or udp) and not ((tcp port 80 and host 169.254.169.254) \
         or (tcp port 443 and (host 142.250.1.1 or host 2a00:1450::1)) \
         or (tcp port 9023 and host 127.0.0.1))"
    );
    assert_eq!(plan.excluded.len(), 4);
    assert!(plan.has_names());
    // Off: nothing excluded, the extra endpoints are ignored (and not resolved).
    let never = |_: &str| -> io::Result<Vec<IpAddr>> { panic!("resolved") };
    let off = build(&cfg(&[("PCAP_EXCLUDE_SELF", "no")]), &extra, &never).unwrap();
    assert_eq!(off.text, "(ip or ip6) and (tcp or udp)");
    // An endpoint that does not resolve is kept out of the text and reported with its
    // variable; it does not stop capture.
    let broken =
        [ExcludedEndpoint::parse("GCE_METADATA_HOST", "nowhere.invalid", Some(80), "m").unwrap()];
    let plan = build(&cfg(&[]), &broken, &dns).unwrap();
    let reason = plan.excluded[1].unresolved.as_deref().unwrap();
    assert!(reason.contains("GCE_METADATA_HOST") && reason.contains("nowhere.invalid"));
    assert_eq!(
        plan.text,
        "(ip or ip6) and (tcp or udp) and not (tcp port 80 and host 169.254.169.254)"
    );
}

#[test]
fn self_endpoints_follow_the_configuration() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let hosts = |endpoints: Vec<ExcludedEndpoint>| -> Vec<(String, Option<u16>)> {
        endpoints.into_iter().map(|e| (e.host, e.port)).collect()
    };
    let none: &[(&str, &str)] = &[];
    assert!(self_endpoints(&cfg(&[]), &env(none)).unwrap().is_empty());
    let bucket = cfg(&[("PCAP_GCS_BUCKET", "bkt")]);
    assert_eq!(
        hosts(self_endpoints(&bucket, &env(none)).unwrap()),
        [(STORAGE.to_string(), Some(443))]
    );
    let emulated: &[(&str, &str)] = &[
        ("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443"),
        ("GCE_METADATA_HOST", "127.0.0.1:8181"),
    ];
    let api = cfg(&[("PCAP_GCS_BUCKET", "bkt"), ("PCAP_GCS_FUSE", "false")]);
    assert_eq!(
        hosts(self_endpoints(&api, &env(emulated)).unwrap()),
        [
            ("127.0.0.1".to_string(), Some(8181)),
            ("127.0.0.1".to_string(), Some(4443))
        ]
    );
    // The emulator stands for the API whichever way the bucket is reached.
    assert_eq!(
        hosts(self_endpoints(&bucket, &env(emulated)).unwrap()),
        [
            ("127.0.0.1".to_string(), Some(8181)),
            ("127.0.0.1".to_string(), Some(4443))
        ]
    );
    let off = cfg(&[("PCAP_GCS_BUCKET", "bkt"), ("PCAP_EXCLUDE_SELF", "false")]);
    assert!(self_endpoints(&off, &env(emulated)).unwrap().is_empty());
    let bad: &[(&str, &str)] = &[("GCE_METADATA_HOST", "ftp://x")];
    let err = self_endpoints(&cfg(&[]), &env(bad)).unwrap_err();
    assert_eq!(err.variable(), "GCE_METADATA_HOST");
}

#[test]
fn refresh_reports_only_real_address_changes() {
    let answers: RefCell<Vec<&str>> = RefCell::new(vec!["192.0.2.1", "192.0.2.2"]);
    let resolver = |name: &str| -> io::Result<Vec<IpAddr>> {
        match name {
            "app.example.com" => Ok(addrs(&answers.borrow())),
            _ => dns(name),
        }
    };
    let config = cfg(&[("PCAP_HOSTS", "app.example.com")]);
    let plan = build(&config, &[], &resolver).unwrap();
    assert!(
        plan.text.contains("(host 192.0.2.1 or host 192.0.2.2)"),
        "{plan}"
    );

    // Same set in another order: nothing to do.
    *answers.borrow_mut() = vec!["192.0.2.2", "192.0.2.1"];
    assert_eq!(plan.refresh(&config, &[], &resolver).unwrap(), None);

    // A new address: a new, validated plan.
    *answers.borrow_mut() = vec!["192.0.2.3"];
    let fresh = plan.refresh(&config, &[], &resolver).unwrap().unwrap();
    assert!(fresh.text.contains("(host 192.0.2.3)"), "{fresh}");
    assert_eq!(fresh.resolved_hosts[0].addrs, addrs(&["192.0.2.3"]));

    // The name vanished: an error; the caller keeps the current filter.
    answers.borrow_mut().clear();
    let err = fresh.refresh(&config, &[], &resolver).unwrap_err();
    assert_eq!(err.variable(), "PCAP_HOSTS");

    // Excluded endpoints are refreshed too.
    let storage = RefCell::new(vec!["142.250.1.1"]);
    let resolver = |name: &str| -> io::Result<Vec<IpAddr>> {
        match name {
            STORAGE => Ok(addrs(&storage.borrow())),
            _ => dns(name),
        }
    };
    let extra = [ExcludedEndpoint::cloud_storage()];
    let plan = build(&cfg(&[]), &extra, &resolver).unwrap();
    assert_eq!(plan.refresh(&cfg(&[]), &extra, &resolver).unwrap(), None);
    *storage.borrow_mut() = vec!["142.250.1.2"];
    let fresh = plan.refresh(&cfg(&[]), &extra, &resolver).unwrap().unwrap();
    assert!(fresh.text.contains("host 142.250.1.2"), "{fresh}");
}

#[test]
fn plans_display_and_serialize_for_the_log_line() {
    let plan = build_plan(&[("PCAP_PORTS", "443")]);
    assert_eq!(
        plan.to_string(),
        format!(
            "(ip or ip6) and (tcp or udp) and (port 443) and {METADATA_HTTP} \
             [simple filters from PCAP_L3_PROTOS, PCAP_L4_PROTOS, PCAP_PORTS, PCAP_EXCLUDE_SELF]"
        )
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["filter"], plan.text.as_str());
    assert_eq!(json["source"], "simple");
    assert_eq!(json["excluded"][0]["host"], "169.254.169.254");
    assert_eq!(json["excluded"][0]["port"], 80);
    assert!(json.get("custom").is_none());
    let custom = build_plan(&[("PCAP_FILTER", "icmp")]);
    assert_eq!(serde_json::to_value(&custom).unwrap()["source"], "custom");
    assert_eq!(FilterSource::Custom.to_string(), "PCAP_FILTER");
}

#[test]
fn every_filter_compiles_for_ethernet_and_any() {
    // build() validated them; check the link types explicitly once more.
    for pairs in [
        &[][..],
        &[("PCAP_TCP_FLAGS", "ece,cwr,urg")][..],
        &[("PCAP_L3_PROTOS", "arp,ipv6"), ("PCAP_PORTS", "1-1024")][..],
        &[("PCAP_IPV6", "::/0"), ("PCAP_IPV4", "0.0.0.0/0")][..],
    ] {
        let plan = build_plan(pairs);
        assert!(validate_text(&plan.text), "{plan}");
        for linktype in VALIDATED_LINKTYPES {
            let program = compile(&plan.text, *linktype).unwrap();
            assert!(!program.get_instructions().is_empty());
        }
    }
}

/// Regression (end-to-end run without DNS): a self endpoint whose name does not resolve must
/// not stop capture; it is reported and left out until a refresh resolves it.
#[test]
fn an_unresolvable_self_endpoint_is_reported_not_fatal() {
    let config = cfg(&[("PCAP_GCS_BUCKET", "bkt")]);
    let no_dns = |_: &str| -> io::Result<Vec<IpAddr>> {
        Err(io::Error::new(io::ErrorKind::NotFound, "no DNS"))
    };
    let plan = build(&config, &[ExcludedEndpoint::cloud_storage()], &no_dns).unwrap();
    let storage = plan.excluded.iter().find(|e| e.host == STORAGE).unwrap();
    assert!(storage.addrs.is_empty());
    assert!(storage.unresolved.is_some());
    assert!(
        plan.text
            .ends_with("not (tcp port 80 and host 169.254.169.254)"),
        "{}",
        plan.text
    );
}
