//! The real `pcap-init` binary running process graphs of small shell programs (and a real
//! rclone FUSE mount): start order, readiness waits, restarts, the readiness gate, and the
//! ordered shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{clean_env, BIN};

struct Init {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
    // Reserved for as long as pcap-init may ask it.
    _no_metadata: testbed::ClosedPort,
}

impl Drop for Init {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Init {
    fn start(dir: &Path, graph: &str, extra: &[(&str, &str)]) -> Init {
        let graph_file = dir.join("graph.toml");
        std::fs::write(&graph_file, graph).unwrap();
        // No metadata server: connections refused at once, as on a laptop.
        let no_metadata = testbed::ClosedPort::new().unwrap();
        let mut child = clean_env(&mut Command::new(BIN), dir, &no_metadata.address())
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Init {
            child,
            lines,
            seen: Vec::new(),
            _no_metadata: no_metadata,
        }
    }

    /// Waits for a log line whose message contains `text`.
    fn wait_line(&mut self, text: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some(found) = self.seen.iter().find(|l| message(l).contains(text)) {
            return found.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line containing {text:?}; seen {:#?}", self.seen));
            self.seen.push(line.clone());
            if message(&line).contains(text) {
                return line;
            }
        }
    }

    fn terminate(&mut self) -> i32 {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.wait_exit(Duration::from_secs(15))
    }

    fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.seen.extend(self.lines.try_iter());
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "pcap-init did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn message(line: &serde_json::Value) -> &str {
    line["message"].as_str().unwrap_or("")
}

/// A `[[program]]` table running `/bin/sh script`, stopped `stop_order`th, with `more` (its
/// other keys, or its `[program.ready]` table).
fn sh_program(name: &str, script: &Path, stop_order: u32, more: &str) -> String {
    format!(
        "\n[[program]]\nname = \"{name}\"\ncommand = [\"/bin/sh\", \"{}\"]\nstop_order = {stop_order}\n{more}",
        script.display()
    )
}

/// A `[program.ready]` table: the file `path` in the run directory, within `secs`.
fn ready_file(path: &str, secs: u32) -> String {
    format!("[program.ready]\nkind = \"file\"\npath = \"{path}\"\ntimeout_secs = {secs}\n")
}

/// A shell program that records its start and stop in `journal`, optionally raises a
/// readiness file after a delay, and waits for SIGTERM.
fn script(dir: &Path, name: &str, journal: &Path, ready_file: Option<&str>) -> PathBuf {
    let path = dir.join(format!("{name}.sh"));
    let raise = match ready_file {
        Some(file) => format!(
            "sleep 0.3; printf '{{\"pid\":%d,\"since\":\"t\",\"detail\":\"{name}\"}}' $$ > \"$PCAP_RUN_DIR/.{file}\"; mv \"$PCAP_RUN_DIR/.{file}\" \"$PCAP_RUN_DIR/{file}\"",
        ),
        None => String::new(),
    };
    let body = format!(
        "#!/bin/sh\necho \"start {name} $(ls \"$PCAP_RUN_DIR\" | tr '\\n' ' ')\" >> {journal}\ntrap 'echo \"stop {name}\" >> {journal}; exit 0' TERM\n{raise}\nsleep 1000 &\nwait\n",
        journal = journal.display(),
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// Waits until the journal has a line starting with `prefix` (a started program needs a
/// moment before its first line, and a signal before its trap is set would kill it).
fn wait_journal(path: &Path, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !journal(path).iter().any(|l| l.starts_with(prefix)) {
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} in {:?}",
            journal(path)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn journal(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn starts_in_order_after_readiness_and_stops_in_stop_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let first = script(dir.path(), "first", &log, Some("first.ready"));
    let second = script(dir.path(), "second", &log, None);
    let graph = [
        sh_program("first", &first, 2, &ready_file("first.ready", 10)),
        sh_program("second", &second, 1, ""),
    ]
    .concat();
    let mut init = Init::start(dir.path(), &graph, &[]);
    let located = init.wait_line("PCAP files available at: ");
    assert!(message(&located).contains("/pcap/unknown-project/svc/unknown-region/svc-001/"));
    init.wait_line("all programs started");
    wait_journal(&log, "start second");
    assert!(dir.path().join("pcap-tmp").is_dir(), "capture dir created");
    let exported = dir
        .path()
        .join("pcap")
        .join(located["bucket_path"].as_str().unwrap());
    assert!(exported.is_dir(), "export dir {exported:?} created");
    assert_eq!(init.terminate(), 0, "{:#?}", init.seen);
    let entries = journal(&log);
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert_eq!(
        entries[0].split(' ').take(2).collect::<Vec<_>>(),
        ["start", "first"]
    );
    assert!(
        entries[1].starts_with("start second") && entries[1].contains("first.ready"),
        "second starts only once first is ready: {entries:?}"
    );
    assert_eq!(&entries[2..], ["stop second", "stop first"]);
    let summary = init.wait_line("shutdown complete");
    assert_eq!(summary["clean"], true);
    let stopped: Vec<&str> = summary["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["program"].as_str().unwrap())
        .collect();
    assert_eq!(stopped, ["second", "first"]);
}

#[test]
fn a_program_that_never_gets_ready_fails_start_up_with_the_hint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let first = script(dir.path(), "first", &log, None);
    let never = script(dir.path(), "never", &log, None);
    let never_ready = ready_file("never.ready", 1) + "hint = \"check the never variable\"\n";
    let graph = [
        sh_program("first", &first, 1, ""),
        sh_program("never", &never, 2, &never_ready),
    ]
    .concat();
    let started = Instant::now();
    let mut init = Init::start(dir.path(), &graph, &[]);
    let code = init.wait_exit(Duration::from_secs(15));
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    let failure = init.wait_line("never not ready after 1 s");
    assert_eq!(failure["severity"], "CRITICAL");
    assert!(message(&failure).contains("check the never variable"));
    let entries = journal(&log);
    assert!(entries.contains(&"stop first".to_string()), "{entries:?}");
    assert!(entries.contains(&"stop never".to_string()), "{entries:?}");
}

#[test]
fn crashed_programs_restart_and_a_program_that_gives_up_closes_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let steady = script(dir.path(), "steady", &log, None);
    let gate = script(dir.path(), "hc-probe", &log, None);
    let flaky = dir.path().join("flaky.sh");
    std::fs::write(
        &flaky,
        format!(
            "#!/bin/sh\nif [ -e {marker} ]; then echo 'flaky: cannot continue' >&2; exit 3; fi\nsleep 1000\n",
            marker = dir.path().join("break").display()
        ),
    )
    .unwrap();
    let graph = [
        sh_program("steady", &steady, 1, ""),
        sh_program(
            "flaky",
            &flaky,
            2,
            "output = \"wrap\"\nrestart = { max_failures = 1 }\n",
        ),
        sh_program("hc-probe", &gate, 3, ""),
    ]
    .concat();
    let mut init = Init::start(dir.path(), &graph, &[]);
    init.wait_line("all programs started");
    let first = init.wait_line("started steady");
    wait_journal(&log, "start steady");
    wait_journal(&log, "start hc-probe");
    let steady_pid = first["pid"].as_i64().unwrap() as i32;
    // kill -9 of a daemon: restarted.
    kill(Pid::from_raw(steady_pid), Signal::SIGKILL).unwrap();
    init.wait_line("steady exited (signal SIGKILL); restarting");
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal(&log)
        .iter()
        .filter(|l| l.starts_with("start steady"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "steady was not restarted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // flaky now fails on every start: one restart, then it is given up and the gate closes.
    std::fs::write(dir.path().join("break"), "").unwrap();
    let flaky_line = init.wait_line("started flaky");
    kill(
        Pid::from_raw(flaky_line["pid"].as_i64().unwrap() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    init.wait_line("flaky exited (exit code 3); giving up");
    let closed = init.wait_line("so the startup probe fails");
    assert_eq!(closed["severity"], "CRITICAL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journal(&log).contains(&"stop hc-probe".to_string()) {
        assert!(
            Instant::now() < deadline,
            "gate not stopped: {:?}",
            journal(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The wrapped stderr of the failing program reached the log as a structured line.
    let wrapped = init.wait_line("flaky: cannot continue");
    assert_eq!(wrapped["program"], "flaky");
    assert_eq!(wrapped["severity"], "ERROR");
    init.terminate();
}

#[test]
fn a_fuse_mount_is_waited_for_and_unmounted_last() {
    if let Err(reason) = testbed::check_fuse() {
        panic!("FUSE is required: {reason}");
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let emulator = testbed::GcsEmulator::start("pcap-bucket").unwrap();
    let worker = script(dir.path(), "worker", &log, None);
    let mount = dir.path().join("pcap");
    let graph = format!(
        r#"
[[program]]
name = "mounter"
when = "fuse"
command = ["rclone", "mount", ":gcs:${{PCAP_GCS_BUCKET}}", "${{GCS_MOUNT}}", "--gcs-endpoint", "{endpoint}/storage/v1/", "--gcs-anonymous", "--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--dir-cache-time", "1s", "--cache-dir", "{cache}", "--config", "/nonexistent"]
output = "wrap"
stop_order = 2
[program.ready]
kind = "mount"
path = "${{GCS_MOUNT}}"
timeout_secs = 30
"#,
        endpoint = emulator.endpoint(),
        cache = dir.path().join("rclone-cache").display(),
    ) + &sh_program("worker", &worker, 1, "");
    let mut init = Init::start(
        dir.path(),
        &graph,
        &[
            ("PCAP_GCS_BUCKET", "pcap-bucket"),
            ("PCAP_GCS_FUSE", "true"),
        ],
    );
    let located = init.wait_line("PCAP files available at: gs://pcap-bucket/");
    init.wait_line("all programs started");
    assert!(testbed::is_mounted(&mount), "mounted");
    wait_journal(&log, "start worker");
    let bucket_path = located["bucket_path"].as_str().unwrap().to_string();
    // The bucket path was created through the mount.
    assert!(mount.join(&bucket_path).is_dir());
    assert!(journal(&log)[0].starts_with("start worker"));
    assert_eq!(init.terminate(), 0, "{:#?}", init.seen);
    assert!(!testbed::is_mounted(&mount), "unmounted at the end");
    let entries = journal(&log);
    assert_eq!(entries.last().map(String::as_str), Some("stop worker"));
}

#[test]
fn a_mounter_that_fails_ends_start_up_naming_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let graph = r#"
[[program]]
name = "mounter"
when = "fuse"
command = ["/bin/sh", "-c", "echo 'mount: bucket does not exist' >&2; exit 1"]
output = "wrap"
restart = { max_failures = 1 }
stop_order = 1
[program.ready]
kind = "mount"
path = "${GCS_MOUNT}"
timeout_secs = 20
hint = "check the bucket name and the service account's storage role"
"#;
    let started = Instant::now();
    let mut init = Init::start(
        dir.path(),
        graph,
        &[
            ("PCAP_GCS_BUCKET", "no-such-bucket"),
            ("PCAP_GCS_FUSE", "yes"),
        ],
    );
    assert_eq!(init.wait_exit(Duration::from_secs(20)), 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fails fast when the mounter gives up"
    );
    let failure = init.wait_line("bucket no-such-bucket not mounted at");
    assert!(message(&failure).contains("storage role"));
}

#[test]
fn without_fuse_the_mounter_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let worker = script(dir.path(), "worker", &log, None);
    let graph = r#"
[[program]]
name = "mounter"
when = "fuse"
command = ["/bin/false"]
stop_order = 2
[program.ready]
kind = "mount"
path = "${GCS_MOUNT}"
"#
    .to_string()
        + &sh_program("worker", &worker, 1, "");
    let mut init = Init::start(
        dir.path(),
        &graph,
        &[("PCAP_GCS_BUCKET", "bkt"), ("PCAP_GCS_FUSE", "false")],
    );
    init.wait_line("all programs started");
    wait_journal(&log, "start worker");
    assert!(!init
        .seen
        .iter()
        .any(|l| message(l).contains("started mounter")));
    assert_eq!(init.terminate(), 0);
}

/// An unknown variable is reported once, by pcap-init: its children inherit the same
/// environment and are told (PCAP_SIDECAR_ENV_CHECKED_BY) that it was checked.
#[test]
fn an_unknown_variable_is_reported_once_for_the_whole_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journal");
    let seen_env = dir.path().join("child-env");
    let worker = dir.path().join("worker.sh");
    std::fs::write(
        &worker,
        format!(
            "#!/bin/sh\nenv | grep '^PCAP_' > {env}\necho \"start worker\" >> {journal}\ntrap 'exit 0' TERM\nsleep 1000 &\nwait\n",
            env = seen_env.display(),
            journal = log.display(),
        ),
    )
    .unwrap();
    let graph = sh_program("worker", &worker, 1, "");
    let mut init = Init::start(dir.path(), &graph, &[("PCAP_ORDER", "true")]);
    init.wait_line("all programs started");
    wait_journal(&log, "start worker");
    assert_eq!(init.terminate(), 0);
    let warnings: Vec<&serde_json::Value> = init
        .seen
        .iter()
        .filter(|l| l["variable"] == "PCAP_ORDER")
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", init.seen);
    assert_eq!(warnings[0]["severity"], "WARNING");
    assert_eq!(warnings[0]["did_you_mean"], "PCAP_ORDERED");
    let child_env = std::fs::read_to_string(&seen_env).unwrap();
    assert!(child_env.contains("PCAP_ORDER=true"), "{child_env}");
    assert!(
        child_env.contains(&format!("{}=pcap-init", sidecar_core::daemon::ENV_CHECKED)),
        "{child_env}"
    );
}
