//! The image, as users get it and as Cloud Run runs it.
//!
//! - `docker_build_tags`: the tags `scripts/docker_build` gives (`--print-tags`), and what it
//!   refuses.
//! - `cloudbuild_builds_both_flavours`: `cloudbuild.yaml` parses and uses the substitutions.
//! - `gen2_image_in_a_pod_exports_every_file`: builds the gen2 image with podman (from a base
//!   image made locally with debootstrap: no registry is reachable here), then runs it in a
//!   pod exactly like a Cloud Run instance: the app container (`python3 -m http.server`), the
//!   sidecar container, the metadata emulator and the Cloud Storage API emulator all share the
//!   pod's network namespace. Traffic with trace headers comes from a peer namespace over a
//!   veth pair whose other end is the pod's `eth0`. `podman stop -t 10` (Cloud Run's SIGTERM,
//!   then SIGKILL 10 s later) must end the sidecar with exit code 0 and every file in the bucket.
//!   The sidecar uploads through the API (`PCAP_GCS_FUSE=false`): gcsfuse cannot be fetched
//!   here, so the image is built with `INSTALL_GCSFUSE=false`.
//! - `gen2_image_on_ubuntu_in_a_pod_exports_every_file`: the same with
//!   `BASE_IMAGE=docker.io/library/ubuntu:22.04` (also made locally, `debootstrap jammy`;
//!   skipped, saying so, where Ubuntu's mirror is unreachable).
//! - `gen1_image_under_gvisor_limits_in_a_pod_exports_every_file`: the same with the gen1
//!   image, its sidecar started under gVisor's capture limits (seccomp: no packet rings, no
//!   socket filters; the `gvisor-limits` example as entrypoint, then `pcap-init`): the
//!   ring-less path, no tcpdump, and still every packet in the bucket.
//! - `docker_build_refuses_binaries_the_base_cannot_run`: binaries needing a newer glibc than
//!   the base (Debian 11) stop the build, with the reason, and leave no tag.
//! - `gen1_image_sets_the_compat_path`: the gen1 flavour's tags, labels and environment.
//!
//! Podman runs with this machine's settings (runc, cgroupfs, low ulimits: see
//! `shared/TESTING.md`), given through a `CONTAINERS_CONF` file of the test's own. The
//! daemons are the debug binaries next to this test (`cargo build -p pcap-init -p tcpdumpw -p
//! pcapd -p pcap-fsnotify -p hc-probe` first, or `cargo test --workspace`). When `podman info`
//! fails (no container runtime can run here) the podman tests print `SKIPPED` and pass; a
//! missing `podman` binary is a failure (`scripts/install-deps` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    assert_bucket_path, bin_dir, check_exports, check_summary, message, read_bucket, under_prefix,
    APP_PORT, REVISION, SERVICE,
};
use serde_json::Value;
use testbed::{GcsEmulator, MetadataConfig, MetadataServer, TestNet};

/// The image the tests build (fixed name: the package layer stays cached between runs).
const IMAGE: &str = "localhost/pcap-sidecar-test";
/// The same on the Ubuntu 22.04 base.
const UBUNTU_IMAGE: &str = "localhost/pcap-sidecar-test-ubuntu";
const APP_IMAGE: &str = "localhost/pcap-sidecar-test-app:latest";
const DEBIAN: &str = "docker.io/library/debian:bookworm-slim";
const UBUNTU: &str = "docker.io/library/ubuntu:22.04";
const BUCKET: &str = "pcap-image-bucket";
const HC_PORT: u16 = 8022;

/// One podman build at a time: the two image tests share layers and the machine has 2 cores.
static PODMAN_BUILDS: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// `scripts/docker_build --print-tags ARGS`: (exit code, stdout lines, stderr).
fn print_tags(args: &[&str]) -> (i32, Vec<String>, String) {
    let out = Command::new(repo().join("scripts/docker_build"))
        .arg("--print-tags")
        .args(args)
        .output()
        .expect("run scripts/docker_build");
    let lines = text(&out.stdout).lines().map(str::to_string).collect();
    (out.status.code().unwrap_or(-1), lines, text(&out.stderr))
}

#[test]
fn docker_build_tags() {
    let uri = "us-central1-docker.pkg.dev/my-project/my-repo/pcap-sidecar";
    let v = version();
    let cases: [(&[&str], Vec<String>); 6] = [
        (
            &["gen1", uri],
            vec![format!("{uri}:{v}-gen1"), format!("{uri}:latest")],
        ),
        (
            &["gen2", uri],
            vec![format!("{uri}:{v}-gen2"), format!("{uri}:newest")],
        ),
        (
            &["gen2", uri, "1.2.3"],
            vec![format!("{uri}:v1.2.3-gen2"), format!("{uri}:newest")],
        ),
        (
            &["cloud_run_gen1", uri, "v1.2.3"],
            vec![format!("{uri}:v1.2.3-gen1"), format!("{uri}:latest")],
        ),
        // Release candidates move neither latest nor newest, whatever the case of "rc".
        (
            &["gen1", uri, "v2.0.0-rc1"],
            vec![format!("{uri}:v2.0.0-rc1-gen1")],
        ),
        (
            &["gen2", uri, "v2.0.0-RC.3"],
            vec![format!("{uri}:v2.0.0-RC.3-gen2")],
        ),
    ];
    for (args, expected) in cases {
        let (code, tags, stderr) = print_tags(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(tags, expected, "{args:?}");
    }
    for (args, complaint) in [
        (&["gen3", uri][..], "gen1 or gen2"),
        (&["gen2", "example.com/repo/image:latest"], "without a tag"),
        (
            &["gen2", "example.com/repo/image@sha256:abc"],
            "without a tag",
        ),
        (&["gen2", uri, "banana"], "not vX.Y.Z"),
        (&["gen2", uri, "v1.2"], "not vX.Y.Z"),
        (&["gen2"], "usage"),
    ] {
        let (code, tags, stderr) = print_tags(args);
        assert_eq!(code, 2, "{args:?} must be refused: {tags:?}");
        assert!(tags.is_empty(), "{args:?}: {tags:?}");
        assert!(stderr.contains(complaint), "{args:?}: {stderr}");
    }
}

#[test]
fn cloudbuild_builds_both_flavours() {
    let path = repo().join("cloudbuild.yaml");
    let raw = std::fs::read_to_string(&path).expect("cloudbuild.yaml");
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&path)
        .output();
    let config: Value = match parsed {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).unwrap(),
        Ok(out) if text(&out.stderr).contains("No module named 'yaml'") => {
            eprintln!("SKIPPED parsing cloudbuild.yaml: python3 has no yaml module");
            return;
        }
        other => panic!("cloudbuild.yaml does not parse: {other:?}"),
    };
    for name in ["_REPO_LOCATION", "_REPO_NAME", "_IMAGE_NAME", "_TAG_NAME"] {
        assert!(
            config["substitutions"].get(name).is_some(),
            "{name} has a default"
        );
    }
    // Every substitution that is declared is used, and every one used is declared (Cloud
    // Build fails on either mistake).
    for (name, _) in config["substitutions"].as_object().unwrap() {
        assert!(
            raw.matches(&format!("${{{name}}}")).count() >= 1,
            "{name} is never used"
        );
    }
    let steps = config["steps"].as_array().expect("steps");
    let image = "${_REPO_LOCATION}-docker.pkg.dev/${PROJECT_ID}/${_REPO_NAME}/${_IMAGE_NAME}";
    let mut flavours = Vec::new();
    for step in steps {
        let args: Vec<&str> = step["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        if args.first() == Some(&"scripts/docker_build") {
            assert_eq!(args[1], "--push", "{args:?}");
            assert_eq!(args[3], image, "{args:?}");
            assert_eq!(args[4], "${_TAG_NAME}", "{args:?}");
            let env: Vec<&str> = step["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert!(
                env.contains(&"PREBUILT_BIN_DIR=/workspace/target/release"),
                "{env:?}"
            );
            flavours.push(args[2]);
        }
    }
    assert_eq!(flavours, ["gen1", "gen2"]);
    let compile = &steps[0];
    let script = compile["args"].to_string();
    assert!(
        script.contains("cargo build --release --locked"),
        "{compile}"
    );
    for daemon in [
        "pcap-init",
        "tcpdumpw",
        "pcapd",
        "pcap-fsnotify",
        "hc-probe",
    ] {
        assert!(script.contains(&format!("-p {daemon}")), "{daemon}");
    }
}

/// `podman` with this machine's settings.
struct Podman {
    conf: tempfile::TempDir,
}

impl Podman {
    /// `None` (after printing why) when podman cannot run containers here.
    fn new() -> Option<Podman> {
        assert!(
            Command::new("podman")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "podman is not installed: run scripts/install-deps"
        );
        let conf = tempfile::Builder::new()
            .prefix("image-podman-")
            .tempdir()
            .unwrap();
        std::fs::write(
            conf.path().join("containers.conf"),
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        let podman = Podman { conf };
        let info = podman.command(["info"]).output().unwrap();
        if !info.status.success() {
            eprintln!(
                "SKIPPED: podman cannot run containers here (`podman info` failed: {})",
                text(&info.stderr)
            );
            return None;
        }
        Some(podman)
    }

    fn conf_file(&self) -> PathBuf {
        self.conf.path().join("containers.conf")
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.conf_file()).args(args);
        cmd
    }

    /// Runs podman to completion (failing on a non-zero exit); returns trimmed stdout.
    fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = testbed::run(&mut self.command(args)).unwrap_or_else(|e| panic!("{e}"));
        text(&out.stdout)
    }

    fn image_id(&self, image: &str) -> Option<String> {
        let out = self
            .command(["image", "inspect", "--format", "{{.Id}}", image])
            .output()
            .unwrap();
        out.status.success().then(|| text(&out.stdout))
    }

    /// `base`, made with debootstrap when missing (kept for later runs). A mirror can fail a
    /// download now and then ("Couldn't download packages"): three attempts, then the
    /// bootstrap's last words.
    fn try_base_image(&self, base: &str) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..3 {
            let out = Command::new(repo().join("scripts/local-base-image"))
                .arg(base)
                .env("CONTAINERS_CONF", self.conf_file())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if out.status.success() {
                return Ok(());
            }
            last = text(&out.stderr);
        }
        Err(last)
    }

    fn ensure_base_image(&self, base: &str) {
        if let Err(why) = self.try_base_image(base) {
            panic!("scripts/local-base-image: {why}");
        }
    }

    /// `scripts/docker_build FLAVOUR IMAGE` on `base` with the debug binaries and without
    /// gcsfuse; returns the tags it printed. The image it replaces (same tags) is removed once
    /// the new one exists; the layers they share stay.
    fn docker_build(&self, flavour: &str, base: &str, image: &str) -> Vec<String> {
        let tags = print_tags(&[flavour, image]).1;
        let previous = self.image_id(&tags[0]);
        let out = Command::new(repo().join("scripts/docker_build"))
            .args([flavour, image])
            .env("BASE_IMAGE", base)
            .env("CONTAINERS_CONF", self.conf_file())
            .env("CONTAINER_ENGINE", "podman")
            .env("PREBUILT_BIN_DIR", bin_dir())
            .env("INSTALL_GCSFUSE", "false")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/docker_build {flavour} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let printed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(
            printed, tags,
            "docker_build prints (only) the tags --print-tags shows"
        );
        let id = self.image_id(&tags[0]).expect("the built image exists");
        for tag in &tags {
            assert_eq!(self.image_id(tag).as_deref(), Some(id.as_str()), "{tag}");
        }
        if let Some(old) = previous.filter(|old| *old != id) {
            let _ = self.command(["rmi", &old]).output();
        }
        tags
    }

    /// The labels and environment of `image`.
    fn config(&self, image: &str) -> Value {
        let raw = self.run(["image", "inspect", "--format", "{{json .Config}}", image]);
        serde_json::from_str(&raw).unwrap()
    }

    fn container_state(&self, name: &str) -> Value {
        let raw = self.run(["inspect", "--format", "{{json .State}}", name]);
        serde_json::from_str(&raw).unwrap()
    }

    fn logs(&self, name: &str) -> Vec<String> {
        let out = self.command(["logs", name]).output().unwrap();
        let mut all = text(&out.stdout);
        all.push('\n');
        all.push_str(&text(&out.stderr));
        all.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Removes the pod and its containers on every exit path.
struct PodGuard<'a> {
    podman: &'a Podman,
    name: String,
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .command(["pod", "rm", "--force", "--time", "0", &self.name])
            .output();
    }
}

fn elapsed(since: Instant) -> String {
    format!("{:.1}s", since.elapsed().as_secs_f64())
}

#[test]
fn gen2_image_in_a_pod_exports_every_file() {
    run_in_a_pod(DEBIAN, IMAGE, "gen2");
}

/// The gen1 image in the same pod, its sidecar under gVisor's capture limits (no packet
/// rings, no socket filters: `testbed::gvisor`'s seccomp filter, applied by the
/// `gvisor-limits` example as the container's entrypoint before it executes `pcap-init`).
#[test]
fn gen1_image_under_gvisor_limits_in_a_pod_exports_every_file() {
    run_in_a_pod(DEBIAN, IMAGE, "gen1");
}

#[test]
fn gen2_image_on_ubuntu_in_a_pod_exports_every_file() {
    // Only Debian's mirrors are promised on these machines; Ubuntu's answered on some. Where
    // it does not, the Ubuntu base cannot be made: say so rather than fail on the network.
    let mirror = std::env::var("UBUNTU_MIRROR")
        .unwrap_or_else(|_| "https://archive.ubuntu.com/ubuntu".into());
    let release = format!("{mirror}/dists/jammy/Release");
    let reachable = Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", "--max-time", "20", &release])
        .status()
        .is_ok_and(|s| s.success());
    if !reachable {
        eprintln!("SKIPPED: the Ubuntu mirror is not reachable ({release}); set UBUNTU_MIRROR");
        return;
    }
    run_in_a_pod(UBUNTU, UBUNTU_IMAGE, "gen2");
}

/// The whole scenario for the `flavour` image built on `base` and named `image`.
fn run_in_a_pod(base: &str, image: &str, flavour: &str) {
    let Some(podman) = Podman::new() else {
        return;
    };
    let gen1 = flavour == "gen1";
    // gen1: the seccomp wrapper, built with the tests (`cargo test` builds testbed's examples).
    let limits = bin_dir().join("examples/gvisor-limits");
    if gen1 {
        assert!(
            limits.is_file(),
            "{} is missing: run `cargo build -p testbed --example gvisor-limits`",
            limits.display()
        );
    }
    let _serial = PODMAN_BUILDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let work = tempfile::Builder::new().prefix("image-").tempdir().unwrap();

    // The app image is always built on Debian; the sidecar's on `base`.
    podman.ensure_base_image(DEBIAN);
    if base == UBUNTU {
        // Only Debian's mirrors are promised here: an Ubuntu mirror that keeps failing
        // downloads is the network's fault, not the image's.
        if let Err(why) = podman.try_base_image(base) {
            eprintln!("SKIPPED: the Ubuntu base could not be made from its mirror: {why}");
            return;
        }
    } else {
        podman.ensure_base_image(base);
    }
    eprintln!("[{}] base image {base} ready", elapsed(started));

    // The app: the same HTTP server as in e2e.rs, in a container of its own.
    let app_dir = work.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("Containerfile"),
        format!(
            "FROM {DEBIAN}\n\
             RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 \
             >/dev/null && rm -rf /var/lib/apt/lists/*\n\
             RUN mkdir /www && echo 'hello from the app' > /www/index.html\n\
             WORKDIR /www\n\
             CMD [\"python3\", \"-m\", \"http.server\", \"{APP_PORT}\"]\n"
        ),
    )
    .unwrap();
    podman.run([
        "build",
        "--network",
        "host",
        "--quiet",
        "-t",
        APP_IMAGE,
        app_dir.to_str().unwrap(),
    ]);
    eprintln!("[{}] app image built", elapsed(started));

    let tags = podman.docker_build(flavour, base, image);
    assert_eq!(
        tags,
        [
            format!("{image}:{}-{flavour}", version()),
            format!("{image}:{}", if gen1 { "latest" } else { "newest" })
        ]
    );
    let image = &tags[1];
    let config = podman.config(image);
    eprintln!("[{}] sidecar image {image} built", elapsed(started));
    assert_eq!(config["Labels"]["org.opencontainers.image.base.name"], base);
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        version().as_str()
    );
    assert_eq!(labels["dev.pcap-sidecar.flavour"], flavour);
    // This build's revision, not one a layer cache kept from an earlier build.
    let head = Command::new("git")
        .args(["-C", repo().to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .unwrap();
    if head.status.success() {
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            text(&head.stdout).trim(),
            "{labels}"
        );
    }
    assert_eq!(labels["dev.pcap-sidecar.gcsfuse"], "false");
    for label in ["tcpdump", "libpcap"] {
        let value = labels[format!("dev.pcap-sidecar.{label}.version")]
            .as_str()
            .unwrap_or("");
        assert!(
            value.starts_with(|c: char| c.is_ascii_digit()),
            "{label} version label: {labels}"
        );
    }
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/pcap-init"])
    );
    assert_eq!(
        config["Env"].to_string().contains("PCAP_COMPAT=true"),
        gen1,
        "gen1 forces the ring-less path, gen2 keeps the default: {}",
        config["Env"]
    );

    // The instance: a pod with only `lo`, given an `eth0` whose peer plays the outside world.
    let distribution = base
        .rsplit('/')
        .next()
        .and_then(|name| name.split(':').next())
        .unwrap_or("base");
    let pod = format!("pcap-image-{distribution}-{flavour}-{}", std::process::id());
    podman.run(["pod", "create", "--name", &pod, "--network", "none"]);
    let _pod = PodGuard {
        podman: &podman,
        name: pod.clone(),
    };
    podman.run(["pod", "start", &pod]);
    let infra = podman.run(["pod", "inspect", "--format", "{{.InfraContainerID}}", &pod]);
    let infra_pid: u32 = podman
        .run(["inspect", "--format", "{{.State.Pid}}", &infra])
        .parse()
        .expect("infra pid");
    let net = TestNet::around_pid("image", infra_pid).expect("eth0 for the pod (run as root)");
    let metadata =
        MetadataServer::start_in(net.app(), MetadataConfig::default()).expect("metadata");
    let gcs = GcsEmulator::start_in(net.app(), BUCKET).expect("GCS emulator");

    let app = format!("{pod}-app");
    podman.run(["run", "--detach", "--pod", &pod, "--name", &app, APP_IMAGE]);
    let target = SocketAddr::from((net.app().ipv4(), APP_PORT));
    testbed::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        net.peer()
            .can_connect(target, Duration::from_secs(1))
            .unwrap_or(false)
    })
    .unwrap_or_else(|e| panic!("the app container listens: {e}\n{:?}", podman.logs(&app)));
    eprintln!("[{}] pod {pod} up, app listening", elapsed(started));
    // From here on, every packet of the app's traffic must reach the bucket.
    let reference = common::reference_capture(net.app(), &work.path().join("ref.pcap"));

    // The sidecar, configured as the README's Cloud Run example (API upload instead of gcsfuse).
    let sidecar = format!("{pod}-sidecar");
    let endpoint = gcs.endpoint();
    let metadata_host = metadata.host();
    let env = [
        ("K_SERVICE", SERVICE),
        ("K_REVISION", REVISION),
        ("K_CONFIGURATION", SERVICE),
        ("GCE_METADATA_HOST", metadata_host.as_str()),
        ("STORAGE_EMULATOR_HOST", endpoint.as_str()),
        ("PCAP_GCS_BUCKET", BUCKET),
        ("PCAP_GCS_FUSE", "false"),
        ("PCAP_JSON", "true"),
        ("PCAP_ROTATE_SECS", "2"),
        ("PCAP_HC_PORT", "8022"),
        // gen1's own default is `any`; the comparison with the reference capture of `eth0`
        // needs the same interface.
        ("PCAP_IFACE", "eth"),
    ];
    let mut run = vec![
        "run",
        "--detach",
        "--pod",
        &pod,
        "--name",
        &sidecar,
        "--log-driver",
        "k8s-file",
        "--cap-add",
        "NET_RAW,NET_ADMIN,SYS_ADMIN",
        "--device",
        "/dev/fuse",
    ];
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &pairs {
        run.extend(["--env", pair.as_str()]);
    }
    let mount = format!("{}:/gvisor-limits:ro", limits.display());
    if gen1 {
        run.extend(["--volume", &mount, "--entrypoint", "/gvisor-limits"]);
    }
    run.push(image);
    if gen1 {
        run.push("/usr/local/bin/pcap-init");
    }
    let sidecar_started = Instant::now();
    podman.run(&run);

    // The startup probe: a TCP connect to PCAP_HC_PORT inside the instance.
    let probe = SocketAddr::from((Ipv4Addr::LOCALHOST, HC_PORT));
    testbed::wait_for(
        "the startup probe port",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            if net
                .app()
                .can_connect(probe, Duration::from_millis(300))
                .unwrap_or(false)
            {
                return Ok(());
            }
            let state = podman.container_state(&sidecar);
            if state["Running"] == false {
                panic!(
                    "the sidecar exited before readiness ({}):\n{}",
                    state["ExitCode"],
                    podman.logs(&sidecar).join("\n")
                );
            }
            Err("not listening".to_string())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", podman.logs(&sidecar).join("\n")));
    let ready_after = sidecar_started.elapsed();
    eprintln!(
        "[{}] startup probe port open {ready_after:?} after `podman run`",
        elapsed(started)
    );

    let traces = common::traffic(&net, 0, 12, Duration::from_secs(6));
    std::thread::sleep(Duration::from_millis(500));

    let stopping = Instant::now();
    podman.run(["stop", "--time", "10", &sidecar]);
    let stop_took = stopping.elapsed();
    eprintln!(
        "[{}] `podman stop -t 10` took {stop_took:?}",
        elapsed(started)
    );
    let (ref_path, ref_log) = reference.stop();

    let state = podman.container_state(&sidecar);
    let lines = podman.logs(&sidecar);
    let dump = lines.join("\n");
    assert_eq!(state["ExitCode"], 0, "sidecar exit code ({state}):\n{dump}");
    assert!(
        stop_took < Duration::from_secs(10),
        "stopped by SIGTERM, not SIGKILL: {stop_took:?}"
    );
    let json: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let located = json
        .iter()
        .find(|l| message(l).contains("PCAP files available at"))
        .unwrap_or_else(|| panic!("no location line:\n{dump}"));
    assert!(
        message(located).contains(&format!("gs://{BUCKET}/")),
        "{located}"
    );
    let bucket_path = assert_bucket_path(located);
    check_summary(&json, &dump);
    let paths: Vec<&Value> = json
        .iter()
        .filter(|l| message(l).starts_with("capture path"))
        .collect();
    assert!(!paths.is_empty(), "no capture path line:\n{dump}");
    for line in paths {
        let expected = if gen1 { "ring-less" } else { "ring" };
        assert_eq!(line["path"], expected, "{line}");
    }
    assert!(
        metadata.requests(MetadataServer::TOKEN) > 0,
        "the upload token came from the metadata server"
    );

    // Nothing left in the container's capture directory (read from the stopped container).
    let left_dir = work.path().join("left");
    podman.run([
        "cp",
        &format!("{sidecar}:/pcap-tmp"),
        left_dir.to_str().unwrap(),
    ]);
    let left: Vec<_> = std::fs::read_dir(&left_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in /pcap-tmp: {left:?}");

    let files = under_prefix(read_bucket(&gcs), &bucket_path);
    check_exports(work.path(), &files, &ref_path, &ref_log, &traces);
    eprintln!(
        "[{}] {} files under gs://{BUCKET}/{bucket_path}/ checked",
        elapsed(started),
        files.len()
    );
}

/// The binaries built here need glibc 2.34 (`objdump -T`); Debian 11 has 2.31. docker_build
/// must notice inside the image, fail, and leave no tag behind.
#[test]
fn docker_build_refuses_binaries_the_base_cannot_run() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let _serial = PODMAN_BUILDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let old_base = "docker.io/library/debian:bullseye-slim";
    podman.ensure_base_image(old_base);
    let image = "localhost/pcap-sidecar-test-oldglibc";
    let out = Command::new(repo().join("scripts/docker_build"))
        .args(["gen2", image])
        .env("BASE_IMAGE", old_base)
        .env("CONTAINERS_CONF", podman.conf_file())
        .env("CONTAINER_ENGINE", "podman")
        .env("PREBUILT_BIN_DIR", bin_dir())
        .env("INSTALL_GCSFUSE", "false")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the binaries do not run in the image") && stderr.contains("GLIBC_2.3"),
        "names the cause: {stderr}"
    );
    assert!(text(&out.stdout).is_empty(), "no tags printed");
    let names = podman.run(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        !names.lines().any(|n| n.starts_with(image)),
        "no tag of the refused image is left: {names}"
    );
}

#[test]
fn gen1_image_sets_the_compat_path() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let _serial = PODMAN_BUILDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    podman.ensure_base_image(DEBIAN);
    let tags = podman.docker_build("gen1", DEBIAN, IMAGE);
    assert_eq!(
        tags,
        [
            format!("{IMAGE}:{}-gen1", version()),
            format!("{IMAGE}:latest")
        ]
    );
    eprintln!("[{}] gen1 image built", elapsed(started));
    let config = podman.config(&tags[1]);
    assert_eq!(config["Labels"]["dev.pcap-sidecar.flavour"], "gen1");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "PCAP_COMPAT=true")
            && config["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "PCAP_IFACE=any"),
        "{}",
        config["Env"]
    );
    // pcap-init, as the entrypoint, reads the flavour's environment.
    let out: Output = podman
        .command([
            "run",
            "--rm",
            "--network",
            "none",
            &tags[1],
            "--check-config",
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let effective = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| message(l) == "effective configuration")
        .unwrap_or_else(|| panic!("no effective configuration line:\n{stdout}"));
    assert_eq!(effective["config"]["PCAP_COMPAT"], true, "{effective}");
    assert_eq!(effective["config"]["PCAP_IFACE"], "any", "{effective}");
}
