//! tcpdumpw with the flight recorder (`PCAP_TRIGGER`), on the libpcap path and on the
//! ring-less path (under the seccomp filter reproducing gVisor's limits), in a network
//! namespace with real traffic: no tcpdump runs and no rotating `.json` is written (only the
//! window's, `PCAP_JSON=true`), the readiness
//! signal is raised while the recorder records, a trigger writes exactly one window (holding
//! the packets from before it), and `PCAP_TIMEOUT_SECS` still ends the capture, closing the
//! window in progress.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Sidecar;
use testbed::{wait_for, Netns, TestNet};

const APP: &str = "198.51.100.1";

fn icmp_types(file: &Path) -> Vec<String> {
    testbed::tshark::field_lines(file, &["icmp.type"]).unwrap()
}

/// tcpdumpw in the app's namespace on the `eth` interfaces, with `env` on top, restricted
/// like gVisor when `gvisor` is set.
fn tcpdumpw(net: &TestNet, env: &[(&str, &str)], gvisor: bool) -> Sidecar {
    let mut all = vec![("PCAP_IFACE", "eth")];
    all.extend_from_slice(env);
    Sidecar::start_with_path(net.app(), &all, gvisor)
}

/// SIGTERM, then a clean exit within 20 s.
fn terminate(sidecar: &mut Sidecar) {
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}\n{}", sidecar.log_text());
}

/// A POST from `ns` to `url` (3 s at most): the HTTP status code, `000` without an answer.
fn post(ns: &Netns, url: &str) -> String {
    let out = ns
        .command("curl")
        .args(["-s", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "3"])
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn recorder_under_tcpdumpw(gvisor: bool) {
    let net = TestNet::new(if gvisor { "tdw-rec-rl" } else { "tdw-rec" }).unwrap();
    let started = Instant::now();
    let mut sidecar = tcpdumpw(
        &net,
        &[
            ("PCAP_JSON", "true"),
            ("PCAP_L4_PROTOS", "udp,icmp"),
            ("PCAP_TRIGGER", "icmp:unreachable"),
            ("PCAP_TRIGGER_BEFORE_SECS", "2"),
            ("PCAP_TRIGGER_AFTER_SECS", "60"),
            ("PCAP_TIMEOUT_SECS", "8"),
        ],
        gvisor,
    );
    sidecar.wait_ready();
    // Echo requests for the ring, then a datagram to a closed port: the unreachable fires.
    net.peer().ping(APP, 3).unwrap();
    let _ = net
        .peer()
        .command("bash")
        .args(["-c", &format!("echo x > /dev/udp/{APP}/9")])
        .status();
    net.peer().ping(APP, 1).unwrap();
    // The timeout (8 s) ends the run long before the window's 60 s are over.
    sidecar.wait_log("one-shot capture complete", 1);
    assert!(started.elapsed() < Duration::from_secs(20));
    terminate(&mut sidecar);
    let text = sidecar.log_text();
    assert!(!text.contains("tcpdump[eth0]"), "no tcpdump runs:\n{text}");
    assert!(
        text.contains("flight recorder: unreachable fired"),
        "{text}"
    );
    let pcaps = sidecar.files("pcap");
    assert_eq!(pcaps.len(), 1, "one window: {pcaps:?}\n{text}");
    let name = pcaps[0].file_name().unwrap().to_str().unwrap();
    // PCAP_JSON=true: no rotating .json, only the window's.
    assert_eq!(
        sidecar.files("json"),
        vec![pcaps[0].with_extension("json")],
        "only the window's JSON"
    );
    assert!(
        name.starts_with("eth0_part_") && name.ends_with("Z_unreachable.pcap"),
        "{name}"
    );
    let types = icmp_types(&pcaps[0]);
    assert!(types.iter().any(|t| t == "3"), "the unreachable: {types:?}");
    assert!(
        types.iter().filter(|t| *t == "8").count() >= 2,
        "echo requests from before the trigger: {types:?}"
    );
}

#[test]
fn recorder_on_the_libpcap_path_writes_only_the_window_and_honours_the_timeout() {
    recorder_under_tcpdumpw(false);
}

#[test]
fn recorder_on_the_ring_less_path_writes_only_the_window_and_honours_the_timeout() {
    recorder_under_tcpdumpw(true);
}

/// Cron bounds the recorder like any capture: each run is a fresh pcapd (empty ring), a
/// window in progress is closed when its run ends, and nothing is captured between runs.
#[test]
fn cron_runs_bound_the_recorder_and_close_its_windows() {
    let net = TestNet::new("tdw-rec-cron").unwrap();
    let mut sidecar = tcpdumpw(
        &net,
        &[
            ("PCAP_L4_PROTOS", "udp,icmp"),
            ("PCAP_USE_CRON", "true"),
            ("PCAP_CRON_EXP", "*/4 * * * * *"),
            ("PCAP_TIMEOUT_SECS", "2"),
            ("PCAP_TRIGGER", "icmp:unreachable"),
            ("PCAP_TRIGGER_BEFORE_SECS", "1"),
            ("PCAP_TRIGGER_AFTER_SECS", "60"),
        ],
        false,
    );
    sidecar.wait_log("capture schedule armed", 1);
    // For about 11 s, every 250 ms: an echo request, then a datagram to a closed port (its
    // ICMP port unreachable fires the trigger whenever a run is capturing).
    let traffic_until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < traffic_until {
        net.peer().ping(APP, 1).unwrap();
        let _ = net
            .peer()
            .command("bash")
            .args(["-c", &format!("echo x > /dev/udp/{APP}/9")])
            .status();
        std::thread::sleep(Duration::from_millis(250));
    }
    terminate(&mut sidecar);
    let text = sidecar.log_text();
    assert!(text.contains("capture run 1 complete"), "{text}");
    assert!(text.contains("capture run 2 started"), "{text}");
    let pcaps = sidecar.files("pcap");
    // A window per run that saw traffic: the 60 s `after` never outlives its 2 s run.
    assert!(pcaps.len() >= 2, "{pcaps:?}\n{text}");
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with("Z_unreachable.pcap"), "{name}");
        let times = testbed::tshark::field_lines(pcap, &["frame.time_epoch"]).unwrap();
        assert!(!times.is_empty(), "{name}: no packets");
        for time in times {
            let time: f64 = time.trim().parse().unwrap();
            // Runs start on multiples of 4 s and last 2 s: nothing later than 3 s into one,
            // so a window holds only its own run's packets.
            let into_cycle = time - (time / 4.0).floor() * 4.0;
            assert!(
                into_cycle < 3.0,
                "{name}: a packet {into_cycle:.3} s into the cycle"
            );
        }
    }
}

/// Adds a second veth pair, `eth1`, between the two namespaces (198.51.101.0/24); it goes
/// with the namespaces.
fn second_interface(net: &TestNet) {
    let (app, peer) = (net.app().name(), net.peer().name());
    let ip = |args: &[&str]| testbed::run(std::process::Command::new("ip").args(args)).unwrap();
    ip(&[
        "-n", app, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", peer,
    ]);
    for (ns, address) in [(app, "198.51.101.1/24"), (peer, "198.51.101.2/24")] {
        ip(&["-n", ns, "addr", "add", address, "dev", "eth1"]);
        ip(&["-n", ns, "link", "set", "eth1", "up"]);
    }
}

/// The manual trigger saves the window of every interface: tcpdumpw serves the endpoint and
/// passes each trigger (its reason too) to every interface's pcapd; a SIGUSR2 to tcpdumpw
/// does the same; a caller that is not on loopback cannot reach the endpoint.
#[test]
fn a_manual_trigger_saves_the_window_of_every_interface() {
    let net = TestNet::new("tdw-manual").unwrap();
    second_interface(&net);
    let port = "18346";
    let mut sidecar = tcpdumpw(
        &net,
        &[
            ("PCAP_L4_PROTOS", "icmp"),
            ("PCAP_TRIGGER", "manual"),
            ("PCAP_TRIGGER_PORT", port),
            ("PCAP_TRIGGER_BEFORE_SECS", "3"),
            ("PCAP_TRIGGER_AFTER_SECS", "1"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "0"),
        ],
        false,
    );
    let run = sidecar.run_dir();
    for ready in [run.clone(), run.join("pcapd-eth0"), run.join("pcapd-eth1")] {
        sidecar.wait_ready_in(&ready);
    }
    let ping_both = || {
        net.peer().ping(APP, 3).unwrap();
        net.peer().ping("198.51.101.1", 3).unwrap();
    };
    let count = |sidecar: &Sidecar, needle: &str| sidecar.log_text().matches(needle).count();
    let wait_count = |sidecar: &Sidecar, what: &str, needle: &str, n: usize| {
        wait_for(
            what,
            Duration::from_secs(20),
            Duration::from_millis(50),
            || match count(sidecar, needle) {
                c if c >= n => Ok(()),
                c => Err(format!("{c} of {n}")),
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", sidecar.log_text()));
    };

    ping_both();
    // A caller that is not on loopback: the endpoint listens on loopback only.
    let remote = post(
        net.peer(),
        &format!("http://{APP}:{port}/trigger?reason=remote"),
    );
    assert_eq!(remote, "000", "no connection");
    let posted = post(
        net.app(),
        &format!("http://127.0.0.1:{port}/trigger?reason=xyz"),
    );
    assert_eq!(posted, "202", "{}", sidecar.log_text());
    wait_count(
        &sidecar,
        "a window per interface",
        "window of manual closed",
        2,
    );

    ping_both();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sidecar.pid() as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .unwrap();
    wait_count(
        &sidecar,
        "a window per interface again",
        "window of manual closed",
        4,
    );

    terminate(&mut sidecar);
    let text = sidecar.log_text();
    assert_eq!(count(&sidecar, "manual fired (reason=xyz)"), 2, "{text}");
    assert_eq!(count(&sidecar, "manual fired (SIGUSR2)"), 2, "{text}");
    assert!(!text.contains("reason=remote"), "{text}");
    assert_eq!(count(&sidecar, "window of manual closed"), 4, "{text}");
    let pcaps = sidecar.files("pcap");
    assert_eq!(pcaps.len(), 4, "{pcaps:?}\n{text}");
    for iface in ["eth0", "eth1"] {
        let windows: Vec<&PathBuf> = pcaps
            .iter()
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with(&format!("{iface}_part_")) && name.ends_with("Z_manual.pcap")
            })
            .collect();
        assert_eq!(windows.len(), 2, "{iface}: {pcaps:?}");
        for window in windows {
            let types = icmp_types(window);
            assert!(
                types.iter().filter(|t| *t == "8").count() >= 3,
                "{window:?} holds the echo requests from before its trigger: {types:?}"
            );
        }
    }
}
