//! `pcap-init --check-config` run as a real process with a real environment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use sidecar_core::config::VARS;

fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcap-init"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("pcap-init runs")
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 output");
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(
                ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]
                    .contains(&value["severity"].as_str().unwrap_or("")),
                "{line}"
            );
            assert_eq!(
                value["logging.googleapis.com/labels"]["module"],
                "pcap-init"
            );
            value
        })
        .collect()
}

#[test]
fn valid_configuration_is_logged_as_one_line_without_secrets() {
    let output = run(
        &[
            ("PCAP_GCS_BUCKET", "my-bucket"),
            ("PCAP_PORTS", " 443 , 80 "),
            ("PCAP_COMPRESS", "No"),
            ("PCAP_USE_CRON", "yes"),
            ("PCAP_CRON_EXP", "*/10 * * * *"),
            // Secrets in the environment must never be printed.
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.super-secret-token"),
            ("DB_PASSWORD", "hunter2-secret"),
        ],
        &["--check-config"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("super-secret") && !text.contains("hunter2"),
        "{text}"
    );
    let lines = lines(&output);
    assert_eq!(lines.len(), 1, "{text}");
    let config = &lines[0]["config"];
    for var in VARS {
        assert!(
            config.get(var.name).is_some(),
            "{} missing: {text}",
            var.name
        );
    }
    assert_eq!(config["PCAP_GCS_BUCKET"], "my-bucket");
    assert_eq!(config["PCAP_PORTS"], "443,80");
    assert_eq!(config["PCAP_COMPRESS"], false);
    assert_eq!(config["PCAP_CRON_EXP"], "0 */10 * * * *");
    assert_eq!(lines[0]["capture_dir"], "/pcap-tmp");
}

#[test]
fn flags_override_the_environment() {
    let output = run(
        &[("PCAP_HC_PORT", "1000")],
        &["--check-config", "--hc-port", "2000", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines = lines(&output);
    assert_eq!(lines[0]["config"]["PCAP_HC_PORT"], 2000);
    assert_eq!(lines[0]["config"]["PCAP_JSON"], true);
}

/// One invalid value for every variable at once: one ERROR line each, exit 2.
#[test]
fn every_invalid_variable_is_reported_and_exits_2() {
    let bad: &[(&str, &str)] = &[
        ("PCAP_IFACE", "eth0 lo"),
        ("PCAP_LOOPBACK", "loopback"),
        ("PCAP_GCS_BUCKET", "Not_A_Bucket!"),
        ("PCAP_GCS_FUSE", "perhaps"),
        ("PCAP_GCS_PREFIX", "../up"),
        ("GCS_MOUNT", "pcap"),
        ("PCAP_L3_PROTOS", "ipv5"),
        ("PCAP_L4_PROTOS", "tcp,quic"),
        ("PCAP_IPV4", "300.1.1.1"),
        ("PCAP_IPV6", "2001:db8::1/64"),
        ("PCAP_HOSTS", "bad_host!"),
        ("PCAP_PORTS", "http,abc"),
        ("PCAP_TCP_FLAGS", "syn,tcp-psh"),
        ("PCAP_FILTER", "tcp\0"),
        ("PCAP_EXCLUDE_SELF", "sometimes"),
        ("PCAP_SNAPSHOT_LENGTH", "big"),
        ("PCAP_ROTATE_SECS", "86401"),
        ("PCAP_FILE_EXT", "gz"),
        ("PCAP_COMPRESS", "gzip"),
        ("PCAP_COMPRESS_LEVEL", "0"),
        ("PCAP_BACKLOG_MB", "-1"),
        ("PCAP_BACKLOG_POLICY", "keep-all"),
        ("PCAP_MANIFEST_SECS", "1m"),
        ("PCAP_TCPDUMP", "on"),
        ("PCAP_JSON", "json"),
        ("PCAP_JSON_LOG", "stdout"),
        ("PCAP_ORDERED", "2"),
        ("PCAP_CONNTRACK", "-1"),
        ("PCAP_HC_PORT", "65536"),
        ("PCAP_USE_CRON", "cron"),
        ("PCAP_CRON_EXP", "* * *"),
        ("PCAP_TIMEZONE", "PST8PDT/Nowhere"),
        ("PCAP_TIMEOUT_SECS", "ten"),
        ("PCAP_PACKET_COUNT", "1e6"),
        ("PCAP_TRIGGER", "http:5xx,disk-full"),
        ("PCAP_RING_SECS", "1h"),
        ("PCAP_RING_MB", "0"),
        ("PCAP_TRIGGER_BEFORE_SECS", "-1"),
        ("PCAP_TRIGGER_AFTER_SECS", "3601"),
        ("PCAP_TRIGGER_COOLDOWN_SECS", "soon"),
        ("PCAP_TRIGGER_MAX_PER_HOUR", "0"),
        ("PCAP_TRIGGER_ON_EXIT", "ring"),
        ("PCAP_TRIGGER_PORT", "0"),
        ("PCAP_COMPAT", "gen1"),
        ("PCAP_GAE", "flex"),
        ("PCAP_DEBUG", "loud"),
        ("PCAP_VERBOSITY", "WARN"),
        ("PCAP_SHUTDOWN_SECS", "3601"),
        ("PCAP_REDACT_HEADERS", "x-ok,not ok"),
        ("PCAP_MAX_ENTRY_BYTES", "1k"),
        ("PCAP_STATE_MIB", "0"),
        ("PCAP_RUN_DIR", "./run"),
        ("PCAP_SUPERVISOR_FILE", "relative.toml"),
    ];
    // The environment cannot carry a NUL byte; test PCAP_FILTER's NUL rule in unit tests only.
    let bad: Vec<(&str, &str)> = bad
        .iter()
        .copied()
        .filter(|(name, _)| *name != "PCAP_FILTER")
        .collect();
    for var in VARS {
        if var.name != "PCAP_FILTER" {
            assert!(
                bad.iter().any(|(name, _)| *name == var.name),
                "add an invalid value for {}",
                var.name
            );
        }
    }
    let output = run(&bad, &["--check-config"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let lines = lines(&output);
    assert!(lines.iter().all(|l| l["severity"] == "ERROR"));
    let named: Vec<&str> = lines
        .iter()
        .map(|l| l["variable"].as_str().unwrap_or(""))
        .collect();
    for (name, value) in &bad {
        let line = lines
            .iter()
            .find(|l| l["variable"] == *name)
            .unwrap_or_else(|| panic!("{name} not reported; got {named:?}"));
        assert_eq!(line["value"], value.trim(), "{name}");
        assert!(line["message"].as_str().unwrap_or("").contains(name));
        assert!(!line["accepted"].as_str().unwrap_or("").is_empty());
    }
    assert_eq!(
        lines.len(),
        bad.len(),
        "one line per bad variable: {named:?}"
    );
}

#[test]
fn invalid_configuration_stops_start_up_before_anything_runs() {
    let output = run(&[("PCAP_HC_PORT", "http")], &[]);
    assert_eq!(output.status.code(), Some(2));
    let lines = lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["variable"], "PCAP_HC_PORT");
}

#[test]
fn help_lists_every_variable_without_values() {
    let output = run(&[("PCAP_GCS_BUCKET", "secret-bucket-name")], &["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for var in VARS {
        assert!(help.contains(var.name), "{} missing from --help", var.name);
        assert!(help.contains(&format!("--{}", var.flag)));
    }
    assert!(!help.contains("secret-bucket-name"));
}

/// What the original's parser (robfig/cron) accepted: descriptors, `@every`, a zone prefix.
#[test]
fn original_cron_expressions_are_accepted() {
    for (given, shown) in [
        ("@hourly", "@hourly"),
        ("@every 10m", "@every 10m"),
        (
            "CRON_TZ=America/New_York 0 9 * * *",
            "CRON_TZ=America/New_York 0 0 9 * * *",
        ),
        (
            "TZ=Europe/Berlin 0 0 1,15 * 1",
            "TZ=Europe/Berlin 0 0 0 1,15 * 1",
        ),
    ] {
        let output = run(
            &[("PCAP_USE_CRON", "true"), ("PCAP_CRON_EXP", given)],
            &["--check-config"],
        );
        assert_eq!(output.status.code(), Some(0), "{given}: {output:?}");
        let lines = lines(&output);
        assert_eq!(lines[0]["config"]["PCAP_CRON_EXP"], shown, "{given}");
    }
    let output = run(
        &[("PCAP_USE_CRON", "true"), ("PCAP_CRON_EXP", "@every soon")],
        &["--check-config"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(lines(&output)[0]["variable"], "PCAP_CRON_EXP");
}

/// The original README's own spelling `PCAP_ORDER`: one WARNING naming `PCAP_ORDERED`, and
/// start-up carries on (the original ignored unknown variables).
#[test]
fn unknown_variable_is_one_warning_naming_the_closest() {
    let output = run(
        &[("PCAP_ORDER", "true"), ("PCAP_JSON", "true")],
        &["--check-config"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines = lines(&output);
    let warnings: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["severity"] == "WARNING")
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert_eq!(
        warnings[0]["message"],
        "PCAP_ORDER is not a variable; did you mean PCAP_ORDERED?"
    );
    assert_eq!(warnings[0]["variable"], "PCAP_ORDER");
    // The configuration is still read and reported; the unknown name changes nothing.
    let config = &lines.last().expect("the configuration line")["config"];
    assert_eq!(config["PCAP_ORDERED"], false);
    assert_eq!(config["PCAP_JSON"], true);
}
