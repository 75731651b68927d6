//! The whole sidecar, end to end: the real `pcap-init` (and through it `pcap-fsnotify`,
//! `tcpdumpw`, `tcpdump`, `pcapd`, `hc-probe`) runs inside the "app" network namespace of a
//! [`testbed::TestNet`], like the containers of one Cloud Run instance, with the metadata
//! emulator (and, for the bucket scenarios, the GCS emulator) inside the same namespace.
//! "The app" is `python3 -m http.server` in that namespace; traffic is `curl` from the peer
//! namespace with trace headers. Nothing leaves the machine: the veth pair exists only inside
//! the two namespaces.
//!
//! The daemons are found next to this test's executable (`target/debug/`); `cargo test
//! --workspace` builds them, otherwise run
//! `cargo build -p pcap-init -p tcpdumpw -p pcapd -p pcap-fsnotify -p hc-probe` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use testbed::{ChildGuard, MetadataConfig, MetadataServer, TestNet};

mod common;
use common::{
    assert_bucket_path, bin_dir, check_exports, check_manifest, check_summary, children_of, gunzip,
    is_capture_name, mergecap, message, packets, read_bucket, start_app, under_prefix, Reference,
    APP_PORT, REVISION, SERVICE,
};

const HC_PORT: u16 = 8022;
/// One world per scenario: the namespaces, the metadata emulator and the app inside "app".
struct World {
    // Field order is drop order: processes first, the namespaces last.
    _app: ChildGuard,
    metadata: MetadataServer,
    dir: tempfile::TempDir,
    net: TestNet,
}

impl World {
    fn new(tag: &str) -> World {
        let net = TestNet::new(tag).expect("network namespaces (run as root)");
        let metadata =
            MetadataServer::start_in(net.app(), MetadataConfig::default()).expect("metadata");
        let dir = tempfile::Builder::new()
            .prefix("e2e-")
            .tempdir()
            .expect("tempdir");
        let app = start_app(&net, &dir.path().join("www"), "hello from the app\n");
        World {
            _app: app,
            metadata,
            dir,
            net,
        }
    }

    fn gcs_mount(&self) -> PathBuf {
        self.dir.path().join("pcap")
    }

    fn capture_dir(&self) -> PathBuf {
        self.dir.path().join("pcap-tmp")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Whether the health port accepts connections inside the app namespace.
    fn health_open(&self) -> bool {
        self.net
            .app()
            .can_connect(
                SocketAddr::from((Ipv4Addr::LOCALHOST, HC_PORT)),
                Duration::from_millis(500),
            )
            .unwrap_or(false)
    }

    /// A reference `tcpdump -i eth0` in the app namespace, capturing from now on.
    fn reference_capture(&self) -> Reference {
        common::reference_capture(self.net.app(), &self.dir.path().join("ref.pcap"))
    }

    /// `n` HTTP requests from the peer, spread over `over`, each with its own trace headers.
    /// Returns the trace ids sent.
    fn traffic(&self, n: usize, over: Duration) -> Vec<String> {
        self.traffic_numbered(0, n, over)
    }

    /// Like [`World::traffic`], numbering the requests from `first`; returns how many.
    fn traffic_from(&self, first: usize, n: usize, over: Duration) -> usize {
        self.traffic_numbered(first, n, over).len()
    }

    fn traffic_numbered(&self, first: usize, n: usize, over: Duration) -> Vec<String> {
        common::traffic(&self.net, first, n, over)
    }

    fn environment(&self, metadata_host: &str) -> Vec<(String, String)> {
        [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", self.dir.path().display().to_string()),
            ("K_SERVICE", SERVICE.to_string()),
            ("K_REVISION", REVISION.to_string()),
            ("K_CONFIGURATION", SERVICE.to_string()),
            ("PORT", APP_PORT.to_string()),
            ("GCE_METADATA_HOST", metadata_host.to_string()),
            ("PCAP_IFACE", "eth".to_string()),
            ("PCAP_JSON", "true".to_string()),
            ("PCAP_ROTATE_SECS", "2".to_string()),
            ("PCAP_COMPRESS", "true".to_string()),
            ("GCS_MOUNT", self.gcs_mount().display().to_string()),
            ("PCAP_RUN_DIR", self.run_dir().display().to_string()),
            ("PCAP_HC_PORT", HC_PORT.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Starts `pcap-init` in the app namespace with a Cloud Run environment plus `extra`.
    fn start_sidecar(&self, extra: &[(&str, &str)]) -> Sidecar {
        self.start_sidecar_with(extra, false)
    }

    /// [`World::start_sidecar`], under gVisor's capture limits (Cloud Run gen1: no packet
    /// rings, no kernel filters; `testbed::gvisor`) when `gvisor` is set.
    fn start_sidecar_with(&self, extra: &[(&str, &str)], gvisor: bool) -> Sidecar {
        let mut cmd = self.net.app().command(bin_dir().join("pcap-init"));
        cmd.env_clear()
            .envs(self.environment(&self.metadata.host()))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if gvisor {
            testbed::gvisor::restrict_like_gvisor(&mut cmd).expect("seccomp filter");
        }
        let started = Instant::now();
        let mut child = ChildGuard::spawn(&mut cmd).expect("start pcap-init");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.child_mut().stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.child_mut().stderr.take().unwrap()),
        ] {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Sidecar {
            child,
            started,
            lines,
        }
    }
}

struct Sidecar {
    child: ChildGuard,
    started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sidecar {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn json_lines(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    fn dump(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (bounded) for a log line whose message contains `text`.
    fn wait_line(&mut self, text: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .lines()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| message(l).contains(text))
            {
                return found;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(found) = self
                    .json_lines()
                    .into_iter()
                    .find(|l| message(l).contains(text))
                {
                    return found;
                }
                panic!(
                    "pcap-init exited ({status}) without a line containing {text:?}:\n{}",
                    self.dump()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line containing {text:?} within {timeout:?}:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` for pcap-init to exit; returns its exit code and when it exited.
    fn wait_exit(&mut self, limit: Duration) -> (i32, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let at = Instant::now();
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(300));
                return (status.code().unwrap_or(-1), at);
            }
            assert!(
                Instant::now() < deadline,
                "pcap-init did not exit within {limit:?}:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits for the exit; returns the code and the shutdown duration.
    fn terminate(&mut self) -> (i32, Duration) {
        let sent = Instant::now();
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let (code, at) = self.wait_exit(Duration::from_secs(20));
        (code, at - sent)
    }
}

/// Reads every exported file under `dir` (recursively), relative name → bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}
/// Waits for the health port to open and checks capture was running by then.
fn wait_healthy(world: &World, sidecar: &mut Sidecar) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let capture_ready = world.run_dir().join("capture.ready").exists();
        if world.health_open() {
            let at = sidecar.started.elapsed();
            assert!(
                capture_ready || world.run_dir().join("capture.ready").exists(),
                "health port open before capture.ready:\n{}",
                sidecar.dump()
            );
            let files: Vec<String> = std::fs::read_dir(world.capture_dir())
                .map(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                files
                    .iter()
                    .any(|f| f.starts_with("eth0_part_") && f.ends_with(".pcap")),
                "health port open but tcpdump has no capture file yet: {files:?}"
            );
            return at;
        }
        if let Some(status) = sidecar.child.try_wait().unwrap() {
            panic!(
                "pcap-init exited ({status}) before health:\n{}",
                sidecar.dump()
            );
        }
        assert!(
            Instant::now() < deadline,
            "health port not open after 60 s:\n{}",
            sidecar.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The common middle of a scenario: 12 traced requests over 6 s, a moment for the last
/// segments to be captured, then SIGTERM and the shutdown checks. Returns the trace ids.
fn traffic_then_shutdown(world: &World, sidecar: &mut Sidecar) -> Vec<String> {
    let traces = world.traffic(12, Duration::from_secs(6));
    std::thread::sleep(Duration::from_millis(500));
    let took = check_shutdown(world, sidecar);
    eprintln!("shutdown took {took:?}");
    traces
}

/// Shutdown checks common to every scenario: exit 0 in time, capture dir empty, the last
/// line is the summary, fsnotify lost nothing.
fn check_shutdown(world: &World, sidecar: &mut Sidecar) -> Duration {
    let (code, took) = sidecar.terminate();
    assert_eq!(code, 0, "pcap-init exit code:\n{}", sidecar.dump());
    assert!(took < Duration::from_secs(9), "shutdown took {took:?}");
    check_summary(&sidecar.json_lines(), &sidecar.dump());
    let left: Vec<_> = std::fs::read_dir(world.capture_dir())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the capture directory: {left:?}");
    took
}

#[test]
fn plain_directory_end_to_end() {
    let world = World::new("e2e-dir");
    let reference = world.reference_capture();
    let mut sidecar = world.start_sidecar(&[]);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    let bucket_path = assert_bucket_path(&located);
    let healthy = wait_healthy(&world, &mut sidecar);
    eprintln!("health port open {healthy:?} after start");
    assert!(
        healthy < Duration::from_secs(15),
        "health after {healthy:?}"
    );

    let traces = traffic_then_shutdown(&world, &mut sidecar);
    let (ref_path, ref_log) = reference.stop();

    let export_dir = world.gcs_mount().join(&bucket_path);
    let files = read_tree(&export_dir);
    let all = read_tree(&world.gcs_mount());
    assert_eq!(
        all.len(),
        files.len(),
        "every export is under {bucket_path}: {:?}",
        all.keys()
    );
    check_manifest(&files);
    check_exports(world.dir.path(), &files, &ref_path, &ref_log, &traces);
}

/// Cloud Run gen1: the whole sidecar under gVisor's capture limits. tcpdumpw detects them,
/// pcapd writes the rotating `.pcap` files (no tcpdump can run), and the exported files hold
/// every packet of a reference capture taken outside the limits, as in the scenario above.
#[test]
fn gvisor_ring_less_end_to_end() {
    let world = World::new("e2e-gvisor");
    let reference = world.reference_capture();
    let mut sidecar = world.start_sidecar_with(&[], true);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    let bucket_path = assert_bucket_path(&located);
    let path = sidecar.wait_line("capture path: ring-less", Duration::from_secs(30));
    assert!(
        path["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ENOPROTOOPT")),
        "{path}"
    );
    let healthy = wait_healthy(&world, &mut sidecar);
    eprintln!("health port open {healthy:?} after start");
    let traces = traffic_then_shutdown(&world, &mut sidecar);
    let (ref_path, ref_log) = reference.stop();
    assert!(
        !sidecar
            .json_lines()
            .iter()
            .any(|l| message(l).contains("tcpdump[")),
        "no tcpdump under gVisor's limits:\n{}",
        sidecar.dump()
    );
    let files = read_tree(&world.gcs_mount().join(&bucket_path));
    check_manifest(&files);
    check_exports(world.dir.path(), &files, &ref_path, &ref_log, &traces);
}

const BUCKET: &str = "pcap-e2e-bucket";

/// The default process graph with gcsfuse's command replaced by an `rclone mount` of the
/// emulator's bucket (rclone runs as pcap-init's child, inside the namespace, like gcsfuse).
fn rclone_graph(world: &World, gcs: &testbed::GcsEmulator) -> PathBuf {
    let default = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../supervisor/processes.toml"),
    )
    .expect("supervisor/processes.toml");
    let start = default
        .find("command = [\"gcsfuse\"")
        .expect("the default graph mounts with gcsfuse");
    let end = start + default[start..].find("]\n").expect("end of the command") + 2;
    // Like gcsfuse, the stand-in refuses a bucket it cannot reach (rclone would mount anything
    // and fail later); then it runs rclone in the foreground.
    let script = "curl -sf -o /dev/null \"$0/storage/v1/b/$1\" || { echo \"mount: bucket $1 not \
                  reachable at $0\" >&2; exit 1; }; exec rclone mount \":gcs:$1\" \"$2\" \
                  --gcs-endpoint \"$0/storage/v1/\" --gcs-anonymous --vfs-cache-mode off \
                  --ignore-checksum --dir-cache-time 1s --poll-interval 0 --cache-dir \"$3\" \
                  --config /nonexistent";
    let rclone = format!(
        "command = [\"/bin/sh\", \"-c\", {script:?}, \"{endpoint}\", \"${{PCAP_GCS_BUCKET}}\", \
         \"${{GCS_MOUNT}}\", \"{cache}\"]\n",
        endpoint = gcs.endpoint(),
        cache = world.dir.path().join("rclone-cache").display()
    );
    let graph = format!("{}{rclone}{}", &default[..start], &default[end..]);
    assert!(!graph.contains("gcsfuse\","), "{graph}");
    let path = world.dir.path().join("processes.toml");
    std::fs::write(&path, graph).unwrap();
    path
}

/// `fstype` of the mount at `path` in the mount namespace of process `pid`.
fn mount_in(pid: u32, path: &Path) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let target = path.display().to_string();
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (left.split(' ').nth(4)? == target).then(|| right.split(' ').next().unwrap_or("").into())
    })
}

#[test]
fn fuse_mount_end_to_end() {
    testbed::check_fuse().expect("FUSE (rclone, fusermount3, /dev/fuse) is required");
    let world = World::new("e2e-fuse");
    let gcs = testbed::GcsEmulator::start_in(world.net.app(), BUCKET).expect("emulator");
    let graph = rclone_graph(&world, &gcs);
    let reference = world.reference_capture();
    let endpoint = gcs.endpoint();
    let mut sidecar = world.start_sidecar(&[
        ("PCAP_GCS_BUCKET", BUCKET),
        ("PCAP_GCS_FUSE", "true"),
        ("PCAP_SUPERVISOR_FILE", graph.to_str().unwrap()),
        // The mounter talks to the emulator, so that is the storage endpoint tcpdumpw leaves
        // out of the capture. Without it tcpdumpw resolves storage.googleapis.com, which the
        // namespace (no DNS, on purpose: nothing may leave the machine) cannot do.
        ("STORAGE_EMULATOR_HOST", endpoint.as_str()),
    ]);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    assert!(
        message(&located).contains(&format!("gs://{BUCKET}/")),
        "{located}"
    );
    let bucket_path = assert_bucket_path(&located);
    let mounted = sidecar.wait_line("started gcsfuse", Duration::from_secs(30));
    let mounter_pid = u32::try_from(mounted["pid"].as_u64().expect("pid")).unwrap();
    let healthy = wait_healthy(&world, &mut sidecar);
    eprintln!("health port open {healthy:?} after start (mount included)");
    assert!(
        healthy < Duration::from_secs(40),
        "health after {healthy:?}"
    );
    // `ip netns exec` gives pcap-init its own mount namespace: look at the mount there.
    assert_eq!(
        mount_in(sidecar.child.id(), &world.gcs_mount()).as_deref(),
        Some("fuse.rclone"),
        "GCS_MOUNT is an rclone mount for pcap-init"
    );

    let traces = traffic_then_shutdown(&world, &mut sidecar);
    let (ref_path, ref_log) = reference.stop();
    assert!(
        !Path::new(&format!("/proc/{mounter_pid}")).exists(),
        "the mounter is gone after exit"
    );
    assert!(!testbed::is_mounted(&world.gcs_mount()));

    let files = under_prefix(read_bucket(&gcs), &bucket_path);
    check_exports(world.dir.path(), &files, &ref_path, &ref_log, &traces);
}

#[test]
fn api_upload_end_to_end() {
    let world = World::new("e2e-api");
    let gcs = testbed::GcsEmulator::start_in(world.net.app(), BUCKET).expect("emulator");
    let reference = world.reference_capture();
    let endpoint = gcs.endpoint();
    let mut sidecar = world.start_sidecar(&[
        ("PCAP_GCS_BUCKET", BUCKET),
        ("PCAP_GCS_FUSE", "false"),
        ("STORAGE_EMULATOR_HOST", endpoint.as_str()),
    ]);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    assert!(
        message(&located).contains(&format!("gs://{BUCKET}/")),
        "{located}"
    );
    let bucket_path = assert_bucket_path(&located);
    let healthy = wait_healthy(&world, &mut sidecar);
    eprintln!("health port open {healthy:?} after start");
    assert!(
        healthy < Duration::from_secs(15),
        "health after {healthy:?}"
    );

    let traces = traffic_then_shutdown(&world, &mut sidecar);
    let (ref_path, ref_log) = reference.stop();
    assert!(
        world.metadata.requests(MetadataServer::TOKEN) > 0,
        "the upload token came from the metadata server"
    );
    assert!(
        read_tree(&world.gcs_mount()).is_empty(),
        "nothing written to the local GCS_MOUNT with API upload"
    );
    let files = under_prefix(read_bucket(&gcs), &bucket_path);
    check_exports(world.dir.path(), &files, &ref_path, &ref_log, &traces);
}

fn pid_of(line: &Value) -> u32 {
    u32::try_from(line["pid"].as_u64().expect("pid field")).unwrap()
}

/// The `?request=N` numbers of the GETs in a pcap.
fn requests_in(pcap: &Path) -> Vec<usize> {
    let mut ids: Vec<usize> = packets(pcap, &format!("tcp dst port {APP_PORT}"))
        .into_iter()
        .flat_map(|(line, n)| {
            let id = line
                .split("GET /?request=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|r| r.parse().ok());
            std::iter::repeat_n(id, n)
        })
        .flatten()
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn killed_daemons_are_restarted_and_no_file_is_lost() {
    let world = World::new("e2e-kill");
    let mut sidecar = world.start_sidecar(&[]);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    let bucket_path = assert_bucket_path(&located);
    wait_healthy(&world, &mut sidecar);
    let mut sent = 0;
    let mut traffic = |n: usize, secs: u64| {
        let ids = world.traffic_from(sent, n, Duration::from_secs(secs));
        sent += ids;
    };
    traffic(6, 3);

    // kill -9 pcap-fsnotify: pcap-init restarts it, and the files completed meanwhile are
    // exported by the new one.
    let fsnotify = pid_of(&sidecar.wait_line("started pcap-fsnotify", Duration::from_secs(5)));
    kill(Pid::from_raw(fsnotify as i32), Signal::SIGKILL).unwrap();
    traffic(5, 3);
    sidecar.wait_line(
        "pcap-fsnotify exited (signal SIGKILL); restarting",
        Duration::from_secs(20),
    );
    testbed::wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        sidecar
            .json_lines()
            .iter()
            .filter(|l| message(l) == "started pcap-fsnotify")
            .count()
            >= 2
    })
    .unwrap_or_else(|e| panic!("pcap-fsnotify not restarted: {e}\n{}", sidecar.dump()));
    traffic(4, 2);

    // kill -9 of tcpdump: tcpdumpw notices and starts another one.
    let tcpdumpw = pid_of(&sidecar.wait_line("started tcpdumpw", Duration::from_secs(5)));
    let tcpdumps = children_of(tcpdumpw, "tcpdump");
    assert_eq!(tcpdumps.len(), 1, "one tcpdump for eth0: {tcpdumps:?}");
    kill(Pid::from_raw(tcpdumps[0] as i32), Signal::SIGKILL).unwrap();
    let died = sidecar.wait_line(
        "tcpdump[eth0] exited (signal SIGKILL); restarting",
        Duration::from_secs(20),
    );
    assert!(
        died["last_output"].is_array(),
        "logged with its output: {died}"
    );
    let replacement = testbed::wait_for(
        "a new tcpdump",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || match children_of(tcpdumpw, "tcpdump").as_slice() {
            [pid] if *pid != tcpdumps[0] => Ok(*pid),
            other => Err(format!("tcpdump children: {other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", sidecar.dump()));
    // Capturing again once the new tcpdump has its file open.
    testbed::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        std::fs::read_dir(format!("/proc/{replacement}/fd"))
            .map(|fds| {
                fds.filter_map(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(world.capture_dir()))
                })
            })
            .unwrap_or(false)
    })
    .expect("the new tcpdump writes a capture file");
    std::thread::sleep(Duration::from_millis(300));
    traffic(6, 3);
    std::thread::sleep(Duration::from_millis(500));
    let took = check_shutdown(&world, &mut sidecar);
    eprintln!("shutdown took {took:?}");

    // Every exported file decompresses and merges; every request is in the merged capture.
    let mut files = read_tree(&world.gcs_mount().join(&bucket_path));
    // The manifest spans the exporter's restarts: checked, then set aside.
    check_manifest(&files);
    files.remove("MANIFEST.jsonl");
    let merged_dir = world.dir.path().join("merged");
    std::fs::create_dir_all(&merged_dir).unwrap();
    let mut inputs = Vec::new();
    for (name, bytes) in &files {
        assert!(
            is_capture_name(name, "pcap") || is_capture_name(name, "json"),
            "unexpected export {name}"
        );
        let plain = gunzip(bytes, name);
        if is_capture_name(name, "pcap") {
            let path = merged_dir.join(name.trim_end_matches(".gz"));
            std::fs::write(&path, plain).unwrap();
            inputs.push(path);
        }
    }
    let merged = world.dir.path().join("merged.pcap");
    mergecap(&merged, &inputs);
    let expected: Vec<usize> = (0..sent).collect();
    assert_eq!(
        requests_in(&merged),
        expected,
        "every request, once, across the restarts ({} pcap files)",
        inputs.len()
    );
}

#[test]
fn invalid_configuration_exits_2_before_starting_anything() {
    let world = World::new("e2e-config");
    let started = Instant::now();
    let mut sidecar = world.start_sidecar(&[("PCAP_ROTATE_SECS", "often")]);
    let (code, _) = sidecar.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 2, "exit code for a bad value:\n{}", sidecar.dump());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let lines = sidecar.json_lines();
    assert!(
        lines.iter().any(|l| {
            let m = message(l);
            m.contains("PCAP_ROTATE_SECS") && m.contains("often")
        }),
        "one line names the variable and the value:\n{}",
        sidecar.dump()
    );
    assert!(
        !lines.iter().any(|l| message(l).starts_with("started ")),
        "nothing was started:\n{}",
        sidecar.dump()
    );
    assert!(
        !world.capture_dir().exists(),
        "no capture directory created"
    );
    assert!(!world.health_open());
    assert_eq!(
        world.metadata.total_requests(),
        0,
        "not even discovery runs with a bad configuration"
    );
}

#[test]
fn mount_failures_end_start_up_naming_the_bucket() {
    testbed::check_fuse().expect("FUSE (rclone, fusermount3, /dev/fuse) is required");
    let world = World::new("e2e-mountfail");
    let mut gcs = testbed::GcsEmulator::start_in(world.net.app(), BUCKET).expect("emulator");
    let graph = rclone_graph(&world, &gcs);
    let endpoint = gcs.endpoint();
    // The mount's readiness timeout in the default graph is 30 s: failing start-up must not
    // take longer than that (plus the restarts' backoff and a loaded machine's slack).
    let limit = Duration::from_secs(40);
    let attempt = |bucket: &str, why: &str| {
        let started = Instant::now();
        let mut sidecar = world.start_sidecar(&[
            ("PCAP_GCS_BUCKET", bucket),
            ("PCAP_GCS_FUSE", "true"),
            ("PCAP_SUPERVISOR_FILE", graph.to_str().unwrap()),
            ("STORAGE_EMULATOR_HOST", endpoint.as_str()),
        ]);
        let (code, at) = sidecar.wait_exit(limit + Duration::from_secs(10));
        let took = at - started;
        eprintln!("{why}: exit {code} after {took:?}");
        assert_ne!(code, 0, "{why}: start-up must fail:\n{}", sidecar.dump());
        assert!(took < limit, "{why}: failed only after {took:?}");
        let failure = sidecar.wait_line(
            &format!("bucket {bucket} not mounted at"),
            Duration::from_secs(1),
        );
        assert!(
            matches!(failure["severity"].as_str(), Some("CRITICAL" | "ERROR")),
            "{failure}"
        );
        assert!(
            message(&failure).contains("storage role"),
            "actionable: {failure}"
        );
        let lines = sidecar.json_lines();
        assert!(
            !lines.iter().any(|l| message(l) == "started tcpdumpw"),
            "{why}: capture never starts without the mount:\n{}",
            sidecar.dump()
        );
        assert!(!world.health_open());
    };
    attempt("no-such-bucket-e2e", "wrong bucket name");
    gcs.stop().unwrap();
    attempt(BUCKET, "emulator down");
}

/// The manifest gives each file the drops of its own period. tcpdump and pcapd are stopped
/// (SIGSTOP) under a UDP flood, so their kernel buffers overflow; the drops of all `.pcap`
/// files add up to what tcpdump reports at exit, those of all `.json` files to what pcapd
/// reports in its final stats, and the files captured before the flood have none.
#[test]
fn each_file_in_the_manifest_carries_the_drops_of_its_period() {
    let world = World::new("e2e-drops");
    let mut sidecar = world.start_sidecar(&[("PCAP_ROTATE_SECS", "1")]);
    let located = sidecar.wait_line("PCAP files available at", Duration::from_secs(30));
    let bucket_path = assert_bucket_path(&located);
    wait_healthy(&world, &mut sidecar);
    world.traffic(4, Duration::from_secs(2));
    let before_flood = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1100));

    let tcpdumpw = pid_of(&sidecar.wait_line("started tcpdumpw", Duration::from_secs(5)));
    let writers: Vec<u32> = ["tcpdump", "pcapd"]
        .iter()
        .flat_map(|comm| children_of(tcpdumpw, comm))
        .collect();
    assert_eq!(writers.len(), 2, "one tcpdump and one pcapd: {writers:?}");
    for &pid in &writers {
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    }
    let flood = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         end = time.time() + 2.5\n\
         while time.time() < end:\n    s.sendto(b'x' * 64, ('{}', 9))\n",
        world.net.app().ipv4()
    );
    world
        .net
        .peer()
        .run("python3", ["-c", flood.as_str()])
        .unwrap();
    for &pid in &writers {
        kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    }
    // Time for the writers to catch up and for a counters poll after it.
    std::thread::sleep(Duration::from_secs(3));
    world.traffic(4, Duration::from_secs(2));
    check_shutdown(&world, &mut sidecar);

    let logs = sidecar.json_lines();
    // Every tcpdump's last words (tcpdumpw restarts one whose file stays idle, as the stopped
    // one's did).
    let tcpdump_total: u64 = logs
        .iter()
        .filter_map(|l| {
            message(l)
                .strip_suffix(" packets dropped by kernel")
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum();
    let pcapd_total = logs
        .iter()
        .rfind(|l| message(l) == "pcapd stats" && l["final"] == true)
        .and_then(|l| l["kernel_dropped"].as_u64())
        .unwrap_or_else(|| panic!("pcapd's final stats:\n{}", sidecar.dump()));
    assert!(
        tcpdump_total > 0 && pcapd_total > 0,
        "the flood caused drops: {tcpdump_total}, {pcapd_total}\n{}",
        sidecar.dump()
    );

    let files = read_tree(&world.gcs_mount().join(&bucket_path));
    check_manifest(&files);
    let records: Vec<Value> = String::from_utf8_lossy(&files["MANIFEST.jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum = |ext: &str| -> u64 {
        records
            .iter()
            .filter(|r| r["file"].as_str().is_some_and(|f| f.ends_with(ext)))
            .map(|r| r["kernel_drops"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(".pcap"), tcpdump_total, "{records:#?}");
    assert_eq!(sum(".json"), pcapd_total, "{records:#?}");
    // Files that ended before the flood (the next one of their kind had started: traffic
    // went on for 2 s with 1 s rotation) lost nothing.
    for record in &records {
        let name =
            sidecar_core::naming::CaptureFileName::parse(record["file"].as_str().unwrap()).unwrap();
        if name.started + chrono::Duration::seconds(2) < before_flood {
            assert_eq!(record["kernel_drops"], 0, "{record}");
        }
    }
}
