//! tcpdumpw with the flight recorder (`PCAP_TRIGGER`), on the libpcap path and on the
//! ring-less path (under the seccomp filter reproducing gVisor's limits), in a network
//! namespace with real traffic: no tcpdump runs and no rotating `.json` is written (only the
//! window's, `PCAP_JSON=true`), the readiness
//! signal is raised while the recorder records, a trigger writes exactly one window (holding
//! the packets from before it), and `PCAP_TIMEOUT_SECS` still ends the capture, closing the
//! window in progress.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sidecar_core::readiness::{self, Readiness};
use testbed::gvisor::restrict_like_gvisor;
use testbed::{wait_for, ChildGuard, TestNet};

const APP: &str = "198.51.100.1";

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn icmp_types(file: &Path) -> Vec<String> {
    testbed::tshark::field_lines(file, &["icmp.type"]).unwrap()
}

/// tcpdumpw in the app's namespace on the `eth` interfaces, writing under `dir` (capture
/// directory `pcap-tmp`, run directory `run`) and logging to `dir/log`, with `env` on top.
fn tcpdumpw(net: &TestNet, dir: &Path, env: &[(&str, &str)]) -> std::process::Command {
    let log = File::create(dir.join("log")).unwrap();
    let mut command = net.app().command(env!("CARGO_BIN_EXE_tcpdumpw"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GCS_MOUNT", dir.join("pcap"))
        .env("PCAP_RUN_DIR", dir.join("run"))
        .env("PCAP_IFACE", "eth")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    command
}

/// SIGTERM, then a clean exit within 20 s.
fn terminate(child: &mut ChildGuard, log_text: impl Fn() -> String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap_or_else(|| panic!("tcpdumpw still running\n{}", log_text()));
    assert!(status.success(), "{status:?}\n{}", log_text());
}

fn recorder_under_tcpdumpw(gvisor: bool) {
    let pcapd = Path::new(env!("CARGO_BIN_EXE_tcpdumpw")).with_file_name("pcapd");
    assert!(
        pcapd.is_file(),
        "{} is missing: run `cargo build -p pcapd` first",
        pcapd.display()
    );
    let net = TestNet::new(if gvisor { "tdw-rec-rl" } else { "tdw-rec" }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut command = tcpdumpw(
        &net,
        dir.path(),
        &[
            ("PCAP_JSON", "true"),
            ("PCAP_L4_PROTOS", "udp,icmp"),
            ("PCAP_TRIGGER", "icmp:unreachable"),
            ("PCAP_TRIGGER_BEFORE_SECS", "2"),
            ("PCAP_TRIGGER_AFTER_SECS", "60"),
            ("PCAP_TIMEOUT_SECS", "8"),
        ],
    );
    if gvisor {
        restrict_like_gvisor(&mut command).unwrap();
    }
    let started = Instant::now();
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let log_text = || std::fs::read_to_string(dir.path().join("log")).unwrap();
    let run = dir.path().join("run");
    wait_for(
        "capture ready",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || match readiness::check(&run) {
            Readiness::Ready { .. } => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    // Echo requests for the ring, then a datagram to a closed port: the unreachable fires.
    net.peer().ping(APP, 3).unwrap();
    let _ = net
        .peer()
        .command("bash")
        .args(["-c", &format!("echo x > /dev/udp/{APP}/9")])
        .status();
    net.peer().ping(APP, 1).unwrap();
    // The timeout (8 s) ends the run long before the window's 60 s are over.
    wait_for(
        "the one-shot capture to end",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            if log_text().contains("one-shot capture complete") {
                Ok(())
            } else {
                Err("running".to_string())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    assert!(started.elapsed() < Duration::from_secs(20));
    terminate(&mut child, log_text);
    let text = log_text();
    assert!(!text.contains("tcpdump[eth0]"), "no tcpdump runs:\n{text}");
    assert!(
        text.contains("flight recorder: unreachable fired"),
        "{text}"
    );
    let capture = dir.path().join("pcap-tmp");
    let pcaps = files(&capture, "pcap");
    assert_eq!(pcaps.len(), 1, "one window: {pcaps:?}\n{text}");
    let name = pcaps[0].file_name().unwrap().to_str().unwrap();
    // PCAP_JSON=true: no rotating .json, only the window's.
    assert_eq!(
        files(&capture, "json"),
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
    let dir = tempfile::tempdir().unwrap();
    let mut command = tcpdumpw(
        &net,
        dir.path(),
        &[
            ("PCAP_L4_PROTOS", "udp,icmp"),
            ("PCAP_USE_CRON", "true"),
            ("PCAP_CRON_EXP", "*/4 * * * * *"),
            ("PCAP_TIMEOUT_SECS", "2"),
            ("PCAP_TRIGGER", "icmp:unreachable"),
            ("PCAP_TRIGGER_BEFORE_SECS", "1"),
            ("PCAP_TRIGGER_AFTER_SECS", "60"),
        ],
    );
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let log_text = || std::fs::read_to_string(dir.path().join("log")).unwrap();
    wait_for(
        "the schedule",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || {
            if log_text().contains("capture schedule armed") {
                Ok(())
            } else {
                Err("not armed".to_string())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
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
    terminate(&mut child, log_text);
    let text = log_text();
    assert!(text.contains("capture run 1 complete"), "{text}");
    assert!(text.contains("capture run 2 started"), "{text}");
    let pcaps = files(&dir.path().join("pcap-tmp"), "pcap");
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
    let dir = tempfile::tempdir().unwrap();
    let port = "18346";
    let mut command = tcpdumpw(
        &net,
        dir.path(),
        &[
            ("PCAP_L4_PROTOS", "icmp"),
            ("PCAP_TRIGGER", "manual"),
            ("PCAP_TRIGGER_PORT", port),
            ("PCAP_TRIGGER_BEFORE_SECS", "3"),
            ("PCAP_TRIGGER_AFTER_SECS", "1"),
            ("PCAP_TRIGGER_COOLDOWN_SECS", "0"),
        ],
    );
    let mut child = ChildGuard::spawn(&mut command).unwrap();
    let log_text = || std::fs::read_to_string(dir.path().join("log")).unwrap();
    let run = dir.path().join("run");
    for ready in [run.clone(), run.join("pcapd-eth0"), run.join("pcapd-eth1")] {
        wait_for(
            "every pcapd ready",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || match readiness::check(&ready) {
                Readiness::Ready { .. } => Ok(()),
                other => Err(format!("{}: {other:?}", ready.display())),
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    }
    let ping_both = || {
        net.peer().ping(APP, 3).unwrap();
        net.peer().ping("198.51.101.1", 3).unwrap();
    };
    let count = |needle: &str| log_text().matches(needle).count();
    let wait_count = |what: &str, needle: &str, n: usize| {
        wait_for(
            what,
            Duration::from_secs(20),
            Duration::from_millis(50),
            || match count(needle) {
                c if c >= n => Ok(()),
                c => Err(format!("{c} of {n}")),
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", log_text()));
    };

    ping_both();
    // A caller that is not on loopback: the endpoint listens on loopback only.
    let remote = net
        .peer()
        .command("curl")
        .args(["-s", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "3"])
        .arg(format!("http://{APP}:{port}/trigger?reason=remote"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        "000",
        "no connection"
    );
    let posted = net
        .app()
        .command("curl")
        .args(["-s", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "3"])
        .arg(format!("http://127.0.0.1:{port}/trigger?reason=xyz"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&posted.stdout),
        "202",
        "{}",
        log_text()
    );
    wait_count("a window per interface", "window of manual closed", 2);

    ping_both();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .unwrap();
    wait_count("a window per interface again", "window of manual closed", 4);

    terminate(&mut child, log_text);
    let text = log_text();
    assert_eq!(count("manual fired (reason=xyz)"), 2, "{text}");
    assert_eq!(count("manual fired (SIGUSR2)"), 2, "{text}");
    assert!(!text.contains("reason=remote"), "{text}");
    assert_eq!(count("window of manual closed"), 4, "{text}");
    let pcaps = files(&dir.path().join("pcap-tmp"), "pcap");
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
