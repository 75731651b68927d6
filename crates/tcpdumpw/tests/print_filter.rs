//! Runs the real `tcpdumpw --print-filter` with a clean environment and reads its JSON lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    lines: Vec<Value>,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tcpdumpw"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    Run {
        code: output.status.code().unwrap(),
        lines,
    }
}

fn line<'a>(run: &'a Run, severity: &str) -> &'a Value {
    run.lines
        .iter()
        .find(|l| l["severity"] == severity)
        .unwrap_or_else(|| panic!("no {severity} line in {:?}", run.lines))
}

#[test]
fn defaults_print_the_filter_as_one_json_line() {
    let run = run(&["--print-filter"], &[]);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(run.lines.len(), 1, "{:?}", run.lines);
    let line = &run.lines[0];
    assert_eq!(line["message"], tcpdumpw::FILTER_MESSAGE);
    assert_eq!(
        line["filter"],
        "(ip or ip6) and (tcp or udp) and not (tcp port 80 and host 169.254.169.254)"
    );
    assert_eq!(line["source"], "simple");
    assert_eq!(line["logging.googleapis.com/labels"]["module"], "tcpdumpw");
}

#[test]
fn variables_and_flags_shape_the_printed_filter() {
    let simple = run(
        &["--print-filter", "--exclude-self=false"],
        &[
            ("PCAP_PORTS", "https,8000-8080"),
            ("PCAP_L3_PROTOS", "ipv4"),
        ],
    );
    assert_eq!(simple.code, 0, "{:?}", simple.lines);
    assert_eq!(
        line(&simple, "NOTICE")["filter"],
        "(ip) and (tcp or udp) and (port 443 or portrange 8000-8080)"
    );
    let run = run(
        &["--print-filter"],
        &[("PCAP_FILTER", "udp port 53"), ("PCAP_PORTS", "443")],
    );
    assert_eq!(run.code, 0, "{:?}", run.lines);
    let notice = line(&run, "NOTICE");
    assert_eq!(
        notice["filter"],
        "(udp port 53) and not (tcp port 80 and host 169.254.169.254)"
    );
    assert_eq!(notice["source"], "custom");
    // The simple filter that PCAP_FILTER overrides is pointed out.
    assert!(line(&run, "WARNING")["warning"]
        .as_str()
        .unwrap()
        .contains("PCAP_PORTS"));
}

#[test]
fn a_bad_port_stops_with_exit_2_naming_pcap_ports() {
    let run = run(&["--print-filter"], &[("PCAP_PORTS", "abc")]);
    assert_eq!(run.code, 2, "{:?}", run.lines);
    let error = line(&run, "ERROR");
    assert_eq!(error["variable"], "PCAP_PORTS");
    assert!(
        error["message"].as_str().unwrap().contains("abc"),
        "{error}"
    );
}

#[test]
fn a_filter_libpcap_rejects_stops_with_its_message_naming_pcap_filter() {
    let run = run(&["--print-filter"], &[("PCAP_FILTER", "tcp port")]);
    assert_eq!(run.code, 2, "{:?}", run.lines);
    assert_eq!(run.lines.len(), 1, "{:?}", run.lines);
    let error = line(&run, "ERROR");
    assert_eq!(error["variable"], "PCAP_FILTER");
    assert_eq!(error["value"], "tcp port");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("PCAP_FILTER") && message.contains("syntax error"),
        "{message}"
    );
}

#[test]
fn contradictory_filters_stop_with_exit_2() {
    let run = run(
        &["--print-filter"],
        &[("PCAP_L4_PROTOS", "udp"), ("PCAP_TCP_FLAGS", "syn")],
    );
    assert_eq!(run.code, 2, "{:?}", run.lines);
    assert_eq!(line(&run, "ERROR")["variable"], "PCAP_TCP_FLAGS");
}

#[test]
fn a_bad_metadata_host_is_named() {
    let bad = run(&["--print-filter"], &[("GCE_METADATA_HOST", "ftp://x")]);
    assert_eq!(bad.code, 2, "{:?}", bad.lines);
    assert_eq!(line(&bad, "ERROR")["variable"], "GCE_METADATA_HOST");
    let good = run(
        &["--print-filter"],
        &[("GCE_METADATA_HOST", "127.0.0.1:8181")],
    );
    assert_eq!(good.code, 0, "{:?}", good.lines);
    assert_eq!(
        line(&good, "NOTICE")["filter"],
        "(ip or ip6) and (tcp or udp) and not ((tcp port 80 and host 169.254.169.254) \
         or (tcp port 8181 and host 127.0.0.1))"
    );
}

#[test]
fn help_lists_the_capture_flags() {
    // Capture itself runs in network namespaces (tests/capture.rs), never on this host.
    let output = Command::new(env!("CARGO_BIN_EXE_tcpdumpw"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--print-filter",
        "--rescan-secs",
        "--hosts-refresh-secs",
        "--iface-wait-secs",
        "--buffer-kib",
        "--pcapd",
        "--loopback",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
