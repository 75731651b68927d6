#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Discovery against the metadata-server emulator (real HTTP, `Metadata-Flavor: Google`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pcap_init::discovery::{discover, MetadataClient};
use testbed::{MetadataConfig, MetadataServer};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn fast(host: &str) -> MetadataClient {
    MetadataClient::new(host).with_retries(Duration::from_millis(500), 3, Duration::from_millis(10))
}

#[test]
fn cloud_run_values_make_the_bucket_path() {
    let server = MetadataServer::start_with(MetadataConfig {
        project_id: "my-project".into(),
        region: "europe-west1".into(),
        instance_id: "0087abc".into(),
        ..MetadataConfig::default()
    })
    .unwrap();
    let env = env(&[
        ("K_SERVICE", "checkout"),
        ("K_REVISION", "checkout-00042-abc"),
        ("GCE_METADATA_HOST", &server.host()),
    ]);
    let found = discover(&env, &MetadataClient::from_env(&env));
    assert_eq!(found.project.as_deref(), Some("my-project"));
    assert_eq!(found.region.as_deref(), Some("europe-west1"));
    assert_eq!(found.instance.as_deref(), Some("0087abc"));
    let path = found.bucket_path(Some("team"));
    let stamp = found.startup.format("%Y%m%dT%H%M%SZ").to_string();
    assert_eq!(
        path.as_str(),
        format!("team/my-project/checkout/europe-west1/checkout-00042-abc/{stamp}/0087abc")
    );
}

#[test]
fn server_errors_are_retried() {
    let server = MetadataServer::start().unwrap();
    server.fail_next(MetadataServer::REGION, 2);
    let found = discover(&env(&[]), &fast(&server.host()));
    assert_eq!(found.region.as_deref(), Some("us-central1"));
    assert_eq!(server.requests(MetadataServer::REGION), 3);
}

#[test]
fn missing_values_become_placeholders_without_empty_segments() {
    let server = MetadataServer::start().unwrap();
    server.remove(MetadataServer::INSTANCE_ID);
    server.fail_next(MetadataServer::REGION, 10);
    let found = discover(
        &env(&[("GOOGLE_CLOUD_PROJECT", "from-env")]),
        &fast(&server.host()),
    );
    assert_eq!(found.project.as_deref(), Some("from-env"));
    assert_eq!(server.requests(MetadataServer::PROJECT_ID), 0, "env wins");
    assert_eq!(found.region, None);
    assert_eq!(
        server.requests(MetadataServer::REGION),
        3,
        "bounded retries"
    );
    assert_eq!(found.instance, None);
    assert_eq!(
        server.requests(MetadataServer::INSTANCE_ID),
        1,
        "404 is final"
    );
    let path = found.bucket_path(None);
    assert!(path
        .as_str()
        .starts_with("from-env/unknown-service/unknown-region/unknown-revision/"));
    assert!(path.as_str().ends_with("/unknown-instance"));
}

#[test]
fn no_metadata_server_is_quick_and_local() {
    // A closed port on loopback: connection refused, as on a laptop.
    let closed = testbed::ClosedPort::new().unwrap();
    let started = Instant::now();
    let found = discover(&env(&[]), &fast(&closed.address()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(found.project, None);
    assert!(found
        .bucket_path(None)
        .as_str()
        .starts_with("unknown-project/"));
}

/// A Docker Engine API stand-in on a unix socket (the engine itself cannot run here): answers
/// `GET /containers/gaeapp/json` like the engine does, with the app's environment.
fn docker_api(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::{Read, Write};
    let socket = dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            // Read the whole request head: it may arrive in several pieces.
            let mut request = Vec::new();
            let mut chunk = [0u8; 256];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request).to_string();
            let (status, body) = if request.starts_with("GET /containers/gaeapp/json ") {
                (
                    "200 OK",
                    serde_json::json!({"Id": "abc", "Name": "/gaeapp", "Config": {"Env": [
                        "PATH=/usr/bin", "GAE_SERVICE=default", "GAE_VERSION=20261126t0700",
                        "GAE_INSTANCE=aef-default-20261126t0700-x1y2", "GOOGLE_CLOUD_PROJECT=flex-project",
                        "SECRET_TOKEN=not-for-us"
                    ]}})
                    .to_string(),
                )
            } else {
                (
                    "404 Not Found",
                    r#"{"message":"No such container"}"#.to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    socket
}

#[test]
fn app_engine_flex_reads_the_app_container_through_the_docker_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = docker_api(dir.path());
    let vars = pcap_init::discovery::app_container_env(&socket, "gaeapp").unwrap();
    assert_eq!(vars.get("GAE_SERVICE").map(String::as_str), Some("default"));
    assert!(!vars.contains_key("SECRET_TOKEN") && !vars.contains_key("PATH"));
    assert!(pcap_init::discovery::app_container_env(&socket, "other").is_err());

    let server = MetadataServer::start_with(MetadataConfig {
        instance_id: "4455".into(),
        zone: "us-east1-b".into(),
        ..MetadataConfig::default()
    })
    .unwrap();
    let found =
        pcap_init::discovery::discover_app_engine(&env(&[]), &fast(&server.host()), &socket);
    assert_eq!(found.project.as_deref(), Some("flex-project"));
    assert_eq!(found.service.as_deref(), Some("default"));
    assert_eq!(found.revision.as_deref(), Some("20261126t0700"));
    assert_eq!(found.region.as_deref(), Some("us-east1-b"));
    assert_eq!(
        found.instance.as_deref(),
        Some("4455-aef-default-20261126t0700-x1y2")
    );
    let socket_env = env(&[("DOCKER_HOST", "unix:///run/other.sock")]);
    assert_eq!(
        pcap_init::discovery::docker_socket(&socket_env),
        std::path::PathBuf::from("/run/other.sock")
    );
}
