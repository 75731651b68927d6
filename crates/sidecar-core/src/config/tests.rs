//! Every variable: its default, a valid value, and at least one invalid value.

use std::collections::HashMap;
use std::net::IpAddr;

use super::values::{IpNet, L3Proto, L4Proto, PortRange, Selection, TcpFlag};
use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(&|name| map.get(name).cloned())
}

fn ok(pairs: &[(&str, &str)]) -> Config {
    parse(pairs).unwrap_or_else(|e| panic!("{pairs:?} should parse: {e}"))
}

fn bad(pairs: &[(&str, &str)]) -> Vec<&'static str> {
    match parse(pairs) {
        Ok(config) => panic!("{pairs:?} should fail, got {config:?}"),
        Err(errors) => errors.0.iter().map(|e| e.var).collect(),
    }
}

fn net(text: &str) -> IpNet {
    let addr: IpAddr = text.split('/').next().unwrap().parse().unwrap();
    let family = if addr.is_ipv4() {
        values::Family::V4
    } else {
        values::Family::V6
    };
    IpNet::parse(text, family).unwrap()
}

#[test]
fn defaults_match_the_readme() {
    let c = ok(&[]);
    assert_eq!(c.iface, "eth");
    assert!(!c.loopback);
    assert_eq!(c.gcs_bucket, None);
    assert!(c.gcs_fuse);
    assert_eq!(c.gcs_prefix, None);
    assert_eq!(c.gcs_mount, PathBuf::from("/pcap"));
    assert_eq!(c.capture_dir(), PathBuf::from("/pcap-tmp"));
    assert_eq!(
        c.l3_protos,
        Selection::Only(vec![L3Proto::Ipv4, L3Proto::Ipv6])
    );
    assert_eq!(
        c.l4_protos,
        Selection::Only(vec![L4Proto::Tcp, L4Proto::Udp])
    );
    assert_eq!(c.ipv4, Selection::All);
    assert_eq!(c.ipv6, Selection::All);
    assert_eq!(c.hosts, Selection::All);
    assert_eq!(c.ports, Selection::All);
    assert_eq!(c.tcp_flags, Selection::All);
    assert_eq!(c.filter, None);
    assert!(c.exclude_self);
    assert_eq!(c.snaplen, 65_536);
    assert_eq!(c.rotate_secs, 60);
    assert_eq!(c.file_ext, "pcap");
    assert!(c.compress);
    assert_eq!(c.compress_level, 1);
    assert_eq!(c.backlog_mb, 256);
    assert_eq!(c.backlog_policy, BacklogPolicy::DropOldest);
    assert!(c.tcpdump);
    assert!(!c.json);
    assert!(!c.json_log);
    assert!(!c.ordered);
    assert!(!c.conntrack);
    assert_eq!(c.hc_port, 12345);
    assert!(!c.use_cron);
    assert_eq!(c.cron, None);
    assert_eq!(c.timezone, chrono_tz::UTC);
    assert_eq!(c.timeout_secs, 0);
    assert!(!c.compat);
    assert!(!c.gae);
    assert!(!c.debug);
    assert_eq!(c.verbosity, Verbosity::Debug);
    assert_eq!(c.shutdown_secs, 9);
    assert!(c.redact_headers.is_empty());
    assert_eq!(c.run_dir, PathBuf::from("/run/pcap-sidecar"));
    assert_eq!(c.supervisor_file, None);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn defaults_in_the_table_parse_to_the_same_config() {
    let pairs: Vec<(&str, &str)> = VARS
        .iter()
        .filter_map(|v| v.default.map(|d| (v.name, d)))
        .collect();
    assert_eq!(ok(&pairs), ok(&[]));
}

/// (variable, valid value, invalid value) — one row per variable, checked below to cover the
/// whole table.
const CASES: &[(&str, &str, &str)] = &[
    ("PCAP_IFACE", " ens ", "eth0;rm"),
    ("PCAP_LOOPBACK", "Yes", "lo"),
    ("PCAP_GCS_BUCKET", "my-bucket", "gs://my-bucket"),
    ("PCAP_GCS_FUSE", "No", "maybe"),
    ("PCAP_GCS_PREFIX", "/team/a/", "a/../b"),
    ("GCS_MOUNT", "/gae/pcap/", "relative/dir"),
    ("PCAP_L3_PROTOS", "ipv4, arp", "ipx"),
    ("PCAP_L4_PROTOS", "tcp,icmp6", "sctp"),
    ("PCAP_IPV4", "10.0.0.5, 10.1.0.0/16", "10.0.0.1/8"),
    ("PCAP_IPV6", "::1,2001:db8::/32", "10.0.0.1"),
    ("PCAP_HOSTS", "metadata.google.internal", "not a host"),
    ("PCAP_PORTS", "80,443,8000-8080,https", "70000"),
    ("PCAP_TCP_FLAGS", "syn,rst,psh", "tcp-foo"),
    ("PCAP_FILTER", "tcp port 443", "tcp\0port"),
    ("PCAP_EXCLUDE_SELF", "false", "sometimes"),
    ("PCAP_SNAPSHOT_LENGTH", "0", "262145"),
    ("PCAP_ROTATE_SECS", "0", "-5"),
    ("PCAP_FILE_EXT", "cap", "json"),
    ("PCAP_COMPRESS", "FALSE", "nope"),
    ("PCAP_COMPRESS_LEVEL", "9", "10"),
    ("PCAP_BACKLOG_MB", "0", "1g"),
    ("PCAP_BACKLOG_POLICY", "Drop-Newest", "drop-random"),
    ("PCAP_MANIFEST_SECS", "86400", "0"),
    ("PCAP_TCPDUMP", "yes", "2"),
    ("PCAP_JSON", "1", "enabled"),
    ("PCAP_JSON_LOG", "true", "y"),
    ("PCAP_ORDERED", "True", "ordered"),
    ("PCAP_CONNTRACK", "0", "off"),
    ("PCAP_HC_PORT", "8080", "0"),
    ("PCAP_USE_CRON", "false", "sometimes"),
    ("PCAP_CRON_EXP", "*/5 * * * * *", "every 5 minutes"),
    ("PCAP_TIMEZONE", "America/Los_Angeles", "Mars/Olympus"),
    ("PCAP_TIMEOUT_SECS", "60", "1m"),
    ("PCAP_PACKET_COUNT", "1000", "-1"),
    (
        "PCAP_TRIGGER",
        "http:5xx, latency:>2s ,manual",
        "http:5xx,http:6xx",
    ),
    ("PCAP_RING_SECS", "120", "0"),
    ("PCAP_RING_MB", "16", "4097"),
    ("PCAP_TRIGGER_BEFORE_SECS", "10", "61"),
    ("PCAP_TRIGGER_AFTER_SECS", "0", "3601"),
    ("PCAP_TRIGGER_COOLDOWN_SECS", "0", "1h"),
    ("PCAP_TRIGGER_MAX_PER_HOUR", "3600", "0"),
    ("PCAP_TRIGGER_ON_EXIT", "yes", "always"),
    ("PCAP_TRIGGER_PORT", "8081", "65536"),
    ("PCAP_COMPAT", "true", "gen1"),
    ("PCAP_GAE", "false", "flex"),
    ("PCAP_DEBUG", "true", "verbose"),
    ("PCAP_VERBOSITY", "info", "TRACE"),
    ("PCAP_SHUTDOWN_SECS", "5", "0"),
    (
        "PCAP_REDACT_HEADERS",
        "X-Api-Key, X-Goog-Iap-Jwt-Assertion",
        "bad header",
    ),
    ("PCAP_MAX_ENTRY_BYTES", "65536", "300000"),
    ("PCAP_STATE_MIB", "64", "2"),
    ("PCAP_RUN_DIR", "/tmp/run", "run"),
    ("PCAP_SUPERVISOR_FILE", "/etc/pcap/graph.toml", "graph.toml"),
];

#[test]
fn every_variable_has_a_valid_and_an_invalid_case() {
    for var in VARS {
        assert!(
            CASES.iter().any(|(name, _, _)| *name == var.name),
            "{} has no test case",
            var.name
        );
    }
    for (name, valid, invalid) in CASES {
        assert!(vars::find(name).is_some(), "{name} is not in VARS");
        ok(&[(name, valid)]);
        let errors = bad(&[(name, invalid)]);
        assert_eq!(errors, vec![*name], "{name}={invalid:?}");
    }
}

#[test]
fn valid_values_become_typed_values() {
    let c = ok(&[
        ("PCAP_IFACE", " ANY "),
        ("PCAP_GCS_PREFIX", "/team/a/"),
        ("GCS_MOUNT", "/gae/pcap/"),
        ("PCAP_L3_PROTOS", "IPv4, arp"),
        ("PCAP_IPV4", "10.0.0.5, 10.1.0.0/16"),
        ("PCAP_IPV6", "::1"),
        ("PCAP_HOSTS", "Metadata.Google.Internal"),
        ("PCAP_PORTS", "80, https ,8000-8080"),
        ("PCAP_TCP_FLAGS", "SYN,push"),
        ("PCAP_SNAPSHOT_LENGTH", "0"),
        ("PCAP_FILE_EXT", ".cap"),
        ("PCAP_VERBOSITY", "info"),
        ("PCAP_REDACT_HEADERS", "X-Api-Key"),
        ("PCAP_TIMEZONE", "America/Los_Angeles"),
        ("PCAP_EXCLUDE_SELF", "No"),
    ]);
    assert_eq!(c.iface, "any");
    assert_eq!(c.gcs_prefix.as_deref(), Some("team/a"));
    assert_eq!(c.gcs_mount, PathBuf::from("/gae/pcap"));
    assert_eq!(c.capture_dir(), PathBuf::from("/gae/pcap-tmp"));
    assert_eq!(
        c.l3_protos,
        Selection::Only(vec![L3Proto::Ipv4, L3Proto::Arp])
    );
    assert_eq!(
        c.ipv4,
        Selection::Only(vec![net("10.0.0.5"), net("10.1.0.0/16")])
    );
    assert_eq!(c.ipv6, Selection::Only(vec![net("::1")]));
    assert_eq!(
        c.hosts,
        Selection::Only(vec!["metadata.google.internal".to_string()])
    );
    assert_eq!(
        c.ports,
        Selection::Only(vec![
            PortRange { start: 80, end: 80 },
            PortRange {
                start: 443,
                end: 443
            },
            PortRange {
                start: 8000,
                end: 8080
            },
        ])
    );
    assert_eq!(
        c.tcp_flags,
        Selection::Only(vec![TcpFlag::Syn, TcpFlag::Psh])
    );
    assert_eq!(c.snaplen, MAX_SNAPLEN);
    assert_eq!(c.file_ext, "cap");
    assert_eq!(c.verbosity, Verbosity::Info);
    assert_eq!(c.redact_headers, vec!["x-api-key".to_string()]);
    assert_eq!(c.timezone, chrono_tz::America::Los_Angeles);
    assert!(!c.exclude_self);
}

#[test]
fn sentinels_ignore_case_and_empty_means_default() {
    let c = ok(&[
        ("PCAP_L3_PROTOS", "all"),
        ("PCAP_L4_PROTOS", "Any"),
        ("PCAP_IPV4", "disabled"),
        ("PCAP_IPV6", "ALL"),
        ("PCAP_HOSTS", "any"),
        ("PCAP_PORTS", "all"),
        ("PCAP_TCP_FLAGS", "any"),
        ("PCAP_FILTER", "Disabled"),
        ("PCAP_HC_PORT", "   "),
    ]);
    assert_eq!(c.l3_protos, Selection::All);
    assert_eq!(c.l4_protos, Selection::All);
    assert_eq!(c.ipv4, Selection::All);
    assert_eq!(c.ipv6, Selection::All);
    assert_eq!(c.ports, Selection::All);
    assert_eq!(c.filter, None);
    assert_eq!(c.hc_port, 12345);
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let errors = parse(&[
        ("PCAP_HC_PORT", "abc"),
        ("PCAP_COMPRESS", "maybe"),
        ("PCAP_PORTS", "80,abc"),
    ])
    .unwrap_err();
    let vars: Vec<_> = errors.0.iter().map(|e| e.var).collect();
    assert_eq!(vars, vec!["PCAP_PORTS", "PCAP_COMPRESS", "PCAP_HC_PORT"]);
    let port = &errors.0[2];
    assert_eq!(port.value, "abc");
    let text = port.to_string();
    assert!(text.contains("PCAP_HC_PORT") && text.contains("abc") && text.contains("1..=65535"));
}

#[test]
fn cross_variable_rules() {
    assert_eq!(
        bad(&[("PCAP_USE_CRON", "true")]),
        vec!["PCAP_CRON_EXP"],
        "cron without an expression"
    );
    ok(&[("PCAP_USE_CRON", "true"), ("PCAP_CRON_EXP", "*/5 * * * *")]);
    assert_eq!(
        bad(&[
            ("PCAP_TCPDUMP", "false"),
            ("PCAP_JSON", "false"),
            ("PCAP_JSON_LOG", "false")
        ]),
        vec!["PCAP_TCPDUMP"]
    );
    ok(&[("PCAP_TCPDUMP", "false"), ("PCAP_JSON_LOG", "true")]);
    assert_eq!(
        bad(&[("GCS_MOUNT", "/x"), ("PCAP_RUN_DIR", "/x")]),
        vec!["PCAP_RUN_DIR"]
    );
    // A bad cron expression is reported once, under its own name.
    assert_eq!(
        bad(&[("PCAP_USE_CRON", "true"), ("PCAP_CRON_EXP", "nope")]),
        vec!["PCAP_CRON_EXP"]
    );
}

#[test]
fn warnings_point_at_ignored_settings() {
    let c = ok(&[("PCAP_FILTER", "tcp"), ("PCAP_PORTS", "80")]);
    assert_eq!(c.filter.as_deref(), Some("tcp"));
    let warnings = c.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("PCAP_PORTS")),
        "{warnings:?}"
    );
    assert!(!warnings.iter().any(|w| w.contains("PCAP_HOSTS")));
}

#[test]
fn effective_configuration_is_keyed_by_every_variable_name() {
    let c = ok(&[("PCAP_GCS_BUCKET", "bkt"), ("PCAP_CRON_EXP", "0 * * * *")]);
    let effective = c.effective();
    let names: Vec<&str> = VARS.iter().map(|v| v.name).collect();
    let keys: Vec<&str> = effective.keys().copied().collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(effective["PCAP_GCS_BUCKET"], "bkt");
    assert_eq!(effective["PCAP_CRON_EXP"], "0 0 * * * *");
    assert_eq!(effective["PCAP_L4_PROTOS"], "tcp,udp");
}

#[test]
fn flags_win_over_environment_and_booleans_may_be_bare() {
    let command = clap::Command::new("t").args(args());
    let matches = command
        .try_get_matches_from(["t", "--hc-port", "999", "--compress=false", "--json"])
        .unwrap();
    let c = from_matches(&matches).unwrap();
    assert_eq!(c.hc_port, 999);
    assert!(!c.compress);
    assert!(c.json);
}

#[test]
fn compat_refuses_unlimited_snaplen_naming_the_variable() {
    for snaplen in ["0", "262144"] {
        assert_eq!(
            bad(&[("PCAP_COMPAT", "true"), ("PCAP_SNAPSHOT_LENGTH", snaplen)]),
            ["PCAP_SNAPSHOT_LENGTH"]
        );
    }
    let message = parse(&[("PCAP_COMPAT", "yes"), ("PCAP_SNAPSHOT_LENGTH", "0")])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("PCAP_SNAPSHOT_LENGTH") && message.contains("PCAP_COMPAT=true"),
        "{message}"
    );
    // Detection (PCAP_COMPAT=false) keeps 0 valid: the daemons refuse it only if the
    // ring-less path is detected at start.
    assert_eq!(ok(&[("PCAP_SNAPSHOT_LENGTH", "0")]).snaplen, MAX_SNAPLEN);
    assert_eq!(
        ok(&[("PCAP_COMPAT", "true"), ("PCAP_SNAPSHOT_LENGTH", "262143")]).snaplen,
        262_143
    );
}

#[test]
fn flags_are_unique() {
    let mut flags: Vec<&str> = VARS.iter().map(|v| v.flag).collect();
    flags.sort_unstable();
    let before = flags.len();
    flags.dedup();
    assert_eq!(before, flags.len());
}

#[test]
fn to_env_round_trips() {
    let original = ok(&[
        ("PCAP_GCS_BUCKET", "bkt"),
        ("PCAP_PORTS", "80,8000-8080"),
        ("PCAP_IPV6", "2001:db8::/32"),
        ("PCAP_FILTER", "tcp port 443"),
        ("PCAP_SNAPSHOT_LENGTH", "0"),
        ("PCAP_USE_CRON", "true"),
        ("PCAP_CRON_EXP", "*/5 * * * 1-5"),
        ("PCAP_TIMEZONE", "Europe/Paris"),
        ("PCAP_REDACT_HEADERS", "x-api-key,x-token"),
        ("PCAP_VERBOSITY", "info"),
    ]);
    let env: HashMap<String, String> = original
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let again = Config::from_lookup(&|name| env.get(name).cloned()).unwrap();
    assert_eq!(again, original);
    assert_eq!(
        ok(&[])
            .to_env()
            .iter()
            .find(|(k, _)| *k == "PCAP_GCS_BUCKET"),
        None
    );
}

#[test]
fn the_recorder_settings_are_checked_together() {
    let c = ok(&[
        ("PCAP_TRIGGER", "HTTP:5xx, manual"),
        ("PCAP_TRIGGER_BEFORE_SECS", "45"),
        ("PCAP_RING_SECS", "90"),
    ]);
    let r = c.recorder.unwrap();
    assert_eq!((r.before_secs, r.ring_secs, r.port), (45, 90, 12346));
    assert_eq!(r.triggers.len(), 2);
    assert!(ok(&[]).recorder.is_none(), "no PCAP_TRIGGER, no recorder");
    // The window before the trigger must fit the ring.
    assert_eq!(
        bad(&[
            ("PCAP_TRIGGER", "http:5xx"),
            ("PCAP_TRIGGER_BEFORE_SECS", "30"),
            ("PCAP_RING_SECS", "20"),
        ]),
        vec!["PCAP_TRIGGER_BEFORE_SECS"]
    );
    // The manual endpoint cannot take the startup probe's port.
    assert_eq!(
        bad(&[
            ("PCAP_TRIGGER", "manual"),
            ("PCAP_TRIGGER_PORT", "8080"),
            ("PCAP_HC_PORT", "8080"),
        ]),
        vec!["PCAP_TRIGGER_PORT"]
    );
    ok(&[
        ("PCAP_TRIGGER", "http:5xx"),
        ("PCAP_TRIGGER_PORT", "8080"),
        ("PCAP_HC_PORT", "8080"),
    ]);
}
