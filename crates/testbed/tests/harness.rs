//! Self-tests of the `testbed` crate: every real part must really work on this machine.
//!
//! Tests needing root print "skipped: needs root" and pass when not root; as root
//! (always the case in CI) a missing tool is a failure, never a silent skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::{
    is_mounted, mount_fstype, wait_for, wait_until, ChildGuard, Error, FuseMount, GcsEmulator,
    MetadataConfig, MetadataServer, TestNet,
};

fn needs_root(test: &str) -> bool {
    if testbed::is_root() {
        true
    } else {
        eprintln!("{test}: skipped: needs root");
        false
    }
}

/// Deterministic pseudo-random bytes: incompressible, includes every byte value.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    testbed::rng::Rng::from_state(seed).fill(&mut bytes);
    bytes
}

#[test]
fn emulator_round_trip_survives_restart() {
    let mut gcs = GcsEmulator::start("harness-bucket").expect("start fake-gcs-server");
    assert_eq!(gcs.bucket(), "harness-bucket");
    assert_eq!(gcs.endpoint(), format!("http://127.0.0.1:{}", gcs.port()));

    let name = "dir/sub/capture 1.pcap";
    let data = noise(300_000, 1);
    gcs.upload_object(name, &data).expect("upload");
    gcs.upload_object("other", b"x")
        .expect("upload second object");

    let objects = gcs.list_objects().expect("list");
    let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, [name, "other"]);
    assert_eq!(objects[0].size, 300_000);
    assert!(objects[0].crc32c.is_some(), "emulator reports crc32c");
    assert_eq!(gcs.read_object(name).expect("read"), data);

    // A missing object is an error, not empty data.
    match gcs.read_object("missing") {
        Err(Error::Http {
            status: Some(404), ..
        }) => {}
        other => panic!("expected 404 for a missing object, got {other:?}"),
    }

    let port = gcs.port();
    gcs.stop().expect("stop");
    assert!(!gcs.is_running());
    match gcs.list_objects() {
        Err(Error::Http { status: None, .. }) => {}
        other => panic!("expected a connection error while stopped, got {other:?}"),
    }

    gcs.restart().expect("restart");
    assert_eq!(gcs.port(), port, "restart keeps the port");
    let objects = gcs.list_objects().expect("list after restart");
    assert_eq!(objects.len(), 2);
    assert_eq!(gcs.read_object(name).expect("read after restart"), data);

    gcs.delete_object("other").expect("delete");
    assert_eq!(gcs.list_objects().expect("list after delete").len(), 1);
}

#[test]
fn fuse_mount_uploads_closed_files() {
    if !needs_root("fuse_mount_uploads_closed_files") {
        return;
    }
    testbed::check_fuse().expect("running as root, so FUSE must be usable");
    let gcs = GcsEmulator::start("fuse-bucket").expect("start fake-gcs-server");
    let dir = tempfile::tempdir().expect("tempdir");
    // A space exercises the \040 escaping in /proc/self/mountinfo.
    let mountpoint = dir.path().join("gcs mount");
    let mut mount = FuseMount::rclone(&gcs, &mountpoint).expect("rclone mount");
    let path = mount.path().to_path_buf();
    assert_eq!(mount_fstype(&path).as_deref(), Some("fuse.rclone"));

    let small = noise(64 * 1024, 2);
    // Above the 16 MiB chunk size of rclone's GCS client: takes the resumable
    // upload path (smaller files use a single multipart POST).
    let large = noise(17 * 1024 * 1024, 3);
    let files = [("pcaps/eth0/part 1.pcap", &small), ("big.pcap", &large)];
    for (name, data) in files {
        let file_path = path.join(name);
        let parent = file_path.parent().expect("file has a parent");
        std::fs::create_dir_all(parent).expect("mkdir -p inside the mount");
        let mut file = std::fs::File::create(&file_path).expect("create in mount");
        file.write_all(data).expect("write to mount");
        // Dropping closes the file, which triggers the upload.
    }

    for (name, data) in files {
        let size = u64::try_from(data.len()).expect("size fits u64");
        wait_for(
            "rclone to upload the closed file",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                let objects = gcs.list_objects().map_err(|e| e.to_string())?;
                match objects.iter().find(|o| o.name == name) {
                    Some(o) if o.size == size => Ok(()),
                    Some(o) => Err(format!("{name} has {} of {size} bytes", o.size)),
                    None => Err(format!("{name} not in {objects:?}")),
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}\nrclone log:\n{}", mount.log()));
        assert!(
            gcs.read_object(name).expect("read uploaded object") == *data,
            "{name}: bytes differ"
        );
    }

    mount.unmount().expect("unmount");
    assert!(!is_mounted(&path), "{} still mounted", path.display());
    assert!(
        !path.exists(),
        "mount point created by FuseMount is removed"
    );
    mount.unmount().expect("second unmount is a no-op");
}

fn metadata_get(url: &str, flavor: Option<&str>) -> (u16, Option<String>, Option<String>, String) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut request = agent.get(url);
    if let Some(flavor) = flavor {
        request = request.set("Metadata-Flavor", flavor);
    }
    let response = match request.call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let flavor = response.header("Metadata-Flavor").map(str::to_string);
    let content_type = response.header("Content-Type").map(str::to_string);
    let body = response.into_string().expect("read body");
    (status, flavor, content_type, body)
}

#[test]
fn metadata_server_speaks_the_protocol() {
    let md = MetadataServer::start_with(MetadataConfig {
        project_id: "harness-project".into(),
        numeric_project_id: "987654321".into(),
        region: "europe-west4".into(),
        zone: "europe-west4-b".into(),
        ..MetadataConfig::default()
    })
    .expect("start metadata server");
    assert_eq!(md.host(), format!("127.0.0.1:{}", md.port()));
    assert_eq!(md.url(), format!("http://{}", md.host()));
    let url = |path: &str| format!("{}{path}", md.url());
    let ok = |path: &str| {
        let (status, flavor, content_type, body) = metadata_get(&url(path), Some("Google"));
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(flavor.as_deref(), Some("Google"), "{path}");
        (content_type, body)
    };

    let (content_type, body) = ok(MetadataServer::PROJECT_ID);
    assert_eq!(body, "harness-project");
    assert_eq!(content_type.as_deref(), Some("application/text"));
    assert_eq!(ok(MetadataServer::NUMERIC_PROJECT_ID).1, "987654321");
    assert_eq!(
        ok(MetadataServer::REGION).1,
        "projects/987654321/regions/europe-west4"
    );
    assert_eq!(
        ok(MetadataServer::ZONE).1,
        "projects/987654321/zones/europe-west4-b"
    );
    assert_eq!(
        ok(MetadataServer::INSTANCE_ID).1,
        MetadataConfig::default().instance_id
    );
    assert!(ok(MetadataServer::EMAIL)
        .1
        .ends_with(".gserviceaccount.com"));
    let (content_type, token) = ok(MetadataServer::TOKEN);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let token: serde_json::Value = serde_json::from_str(&token).expect("token is JSON");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3599);
    assert!(token["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    // Query strings (e.g. ?alt=text) do not change the answer.
    assert_eq!(
        ok(&format!("{}?alt=text", MetadataServer::PROJECT_ID)).1,
        "harness-project"
    );

    let (status, flavor, _, _) = metadata_get(&url(MetadataServer::PROJECT_ID), None);
    assert_eq!(status, 403, "missing Metadata-Flavor header");
    assert_eq!(flavor.as_deref(), Some("Google"));
    let (status, ..) = metadata_get(&url(MetadataServer::PROJECT_ID), Some("Amazon"));
    assert_eq!(status, 403, "wrong Metadata-Flavor value");
    let (status, ..) = metadata_get(&url("/computeMetadata/v1/nope"), Some("Google"));
    assert_eq!(status, 404);

    md.fail_next(MetadataServer::ZONE, 2);
    for attempt in 1..=2 {
        let (status, ..) = metadata_get(&url(MetadataServer::ZONE), Some("Google"));
        assert_eq!(status, 503, "injected failure {attempt}");
    }
    assert_eq!(
        ok(MetadataServer::ZONE).1,
        "projects/987654321/zones/europe-west4-b"
    );

    md.set(MetadataServer::PROJECT_ID, "changed");
    assert_eq!(ok(MetadataServer::PROJECT_ID).1, "changed");
    md.remove(MetadataServer::EMAIL);
    let (status, ..) = metadata_get(&url(MetadataServer::EMAIL), Some("Google"));
    assert_eq!(status, 404);

    // project-id: ok, ?alt=text, two 403s, changed.
    assert_eq!(md.requests(MetadataServer::PROJECT_ID), 5);
    // zone: ok, two 503s, ok.
    assert_eq!(md.requests(MetadataServer::ZONE), 4);
    assert_eq!(md.requests("/computeMetadata/v1/nope"), 1);
    assert_eq!(md.total_requests(), 5 + 4 + 1 + 1 + 1 + 1 + 2 + 1);
}

fn netns_list() -> String {
    let out = testbed::run(Command::new("ip").args(["netns", "list"])).expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whole-word match: `ip netns list` prints "NAME" or "NAME (id: N)".
fn listed(list: &str, name: &str) -> bool {
    list.lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// The host's interfaces and addresses, without volatile fields (lifetimes, stats).
fn host_network() -> Vec<String> {
    let mut lines = Vec::new();
    for (args, keep) in [(["-o", "link"], 2), (["-o", "addr"], 4)] {
        let out = testbed::run(Command::new("ip").args(args)).expect("ip on the host");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().take(keep).collect();
            lines.push(fields.join(" "));
        }
    }
    lines
}

#[test]
fn netns_pair_is_connected_and_cleaned_up() {
    if !needs_root("netns_pair_is_connected_and_cleaned_up") {
        return;
    }
    testbed::check_netns().expect("running as root, so netns must be usable");
    let host_before = host_network();
    let net = TestNet::new("harness").expect("create namespaces");
    let (app, peer) = (net.app().name().to_string(), net.peer().name().to_string());
    let list = netns_list();
    assert!(listed(&list, &app) && listed(&list, &peer), "{list}");

    assert_eq!(net.app().ipv4().to_string(), "198.51.100.1");
    assert_eq!(net.peer().ipv6().to_string(), "2001:db8:5100::2");
    net.peer()
        .run("ping", ["-c", "1", "-W", "2", "198.51.100.1"])
        .expect("IPv4 ping from peer to app");
    net.peer()
        .run("ping", ["-6", "-c", "1", "-W", "2", "2001:db8:5100::1"])
        .expect("IPv6 ping from peer to app");
    for ns in [net.app(), net.peer()] {
        let link = ns
            .run("ip", ["-d", "-o", "link", "show", "dev", "eth0"])
            .expect("eth0 exists");
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(link.contains(" veth "), "{}: {link}", ns.name());
    }

    // Nothing leaks to the host: same interfaces and addresses as before.
    // (Compared rather than grepped: the host itself may use 192.0.2.0/24.)
    assert_eq!(host_network(), host_before);

    drop(net);
    let list = netns_list();
    assert!(!listed(&list, &app) && !listed(&list, &peer), "{list}");
}

#[test]
fn netns_pair_can_join_an_existing_namespace() {
    if !needs_root("netns_pair_can_join_an_existing_namespace") {
        return;
    }
    testbed::check_netns().expect("running as root, so netns must be usable");
    // A process in a namespace of its own with only `lo`, like a `--network none` pod.
    let mut holder = ChildGuard::spawn(Command::new("unshare").args(["--net", "sleep", "60"]))
        .expect("unshare --net");
    let pid = holder.id();
    let own_ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        own_ns(pid) != own_ns(std::process::id())
    })
    .expect("the holder has its own namespace");
    let net = TestNet::around_pid("harness-pid", pid).expect("pair into the holder's namespace");
    let app = net.app().name().to_string();
    net.peer()
        .run("ping", ["-c", "1", "-W", "2", "198.51.100.1"])
        .expect("the holder's namespace answers on 198.51.100.1");
    let links = |pid: u32| {
        let out = testbed::run(Command::new("nsenter").args([
            "--net",
            &format!("--target={pid}"),
            "ip",
            "-o",
            "link",
        ]))
        .expect("ip link in the holder's namespace");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(links(pid).contains("eth0"), "{}", links(pid));

    drop(net);
    assert!(!listed(&netns_list(), &app), "the name is removed");
    // The namespace lives on with its process; its end of the pair went with the peer.
    assert!(holder.try_wait().unwrap().is_none());
    // The kernel destroys a deleted namespace (and the pair) asynchronously, once its last
    // user is gone: the app end disappears shortly after, not at once.
    wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        !links(pid).contains("eth0")
    })
    .unwrap_or_else(|_| panic!("eth0 still in the holder's namespace: {}", links(pid)));
    holder.kill().unwrap();
}

#[test]
fn child_guard_and_waits_behave() {
    let port = testbed::free_port().expect("free port");
    assert_ne!(port, 0);

    let guard = ChildGuard::spawn(Command::new("sleep").arg("30")).expect("spawn sleep");
    let proc_dir = format!("/proc/{}", guard.id());
    assert!(Path::new(&proc_dir).exists());
    drop(guard);
    // Killed and reaped: not even a zombie remains.
    assert!(!Path::new(&proc_dir).exists(), "{proc_dir} survived drop");

    let start = Instant::now();
    let err = wait_until(
        Duration::from_millis(300),
        Duration::from_millis(50),
        || false,
    )
    .expect_err("never true");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));

    let mut calls = 0;
    wait_until(Duration::from_secs(5), Duration::from_millis(1), || {
        calls += 1;
        calls == 3
    })
    .expect("true on the third call");
    assert_eq!(calls, 3);
}

#[test]
fn emulators_can_live_inside_a_namespace() {
    if !needs_root("emulators_can_live_inside_a_namespace") {
        return;
    }
    let net = TestNet::new("harness-inside").expect("netns pair");
    let app = net.app();

    // The metadata server listens on the namespace's loopback.
    let metadata =
        MetadataServer::start_in(app, MetadataConfig::default()).expect("metadata inside");
    let url = format!("{}{}", metadata.url(), MetadataServer::PROJECT_ID);
    let out = app
        .run("curl", ["-sf", "-H", "Metadata-Flavor: Google", &url])
        .expect("curl inside the namespace");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "test-project");
    assert_eq!(metadata.requests(MetadataServer::PROJECT_ID), 1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], metadata.port()));
    assert!(app.can_connect(addr, Duration::from_secs(2)).unwrap());
    // The peer namespace has its own loopback: nothing listens there.
    assert!(!net
        .peer()
        .can_connect(addr, Duration::from_secs(2))
        .unwrap());

    // The GCS emulator runs under `ip netns exec`; the handle's own requests go inside too.
    let gcs = GcsEmulator::start_in(app, "inside-bucket").expect("emulator inside");
    gcs.upload_object("a/b.txt", b"inside")
        .expect("upload from inside");
    assert_eq!(gcs.read_object("a/b.txt").expect("read"), b"inside");
    assert_eq!(gcs.list_objects().expect("list").len(), 1);
    let out = app
        .run(
            "curl",
            [
                "-sf",
                &format!("{}/storage/v1/b/inside-bucket/o", gcs.endpoint()),
            ],
        )
        .expect("the emulator answers inside the namespace");
    assert!(String::from_utf8_lossy(&out.stdout).contains("a/b.txt"));
    assert_eq!(
        std::fs::read(gcs.data_dir().join("inside-bucket/a/b.txt")).expect("data dir"),
        b"inside"
    );
    let gcs_addr = std::net::SocketAddr::from(([127, 0, 0, 1], gcs.port()));
    assert!(!net
        .peer()
        .can_connect(gcs_addr, Duration::from_secs(2))
        .unwrap());
}
