//! [`GcsApiDestination`] against a real fake-gcs-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use export::{Compression, Destination, Export, ExportError, GcsApiDestination, GcsApiSettings};
use testbed::pcapgen::pcap_bytes;
use testbed::GcsEmulator;

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn uploads_verifies_recognises_repeats_and_never_overwrites() {
    // Anonymous, as the emulator allows: tokens from each credential source are tested in
    // `adc.rs`.
    let gcs = GcsEmulator::start("bkt").unwrap();
    let destination = GcsApiDestination::new(GcsApiSettings::from_vars(
        "bkt",
        Some(gcs.endpoint()),
        false,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("eth0_part_20260101T000000Z.pcap");
    let data = pcap_bytes(7, 3_000_000);
    std::fs::write(&source, &data).unwrap();
    let export = Export {
        source: &source,
        object: "p/s/eth0_part_20260101T000000Z.pcap.gz",
        compression: Compression::Gzip { level: 2 },
        gate: None,
    };

    let delivery = destination.deliver(&export).unwrap();
    assert!(!delivery.already_present);
    assert_eq!(delivery.bytes_read, data.len() as u64);
    let objects = gcs.list_objects().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].name, export.object);
    assert_eq!(objects[0].size, delivery.bytes_stored);
    assert_eq!(gunzip(&gcs.read_object(export.object).unwrap()), data);

    // Delivering the same file again (a crash between upload and delete) is recognised.
    assert!(destination.deliver(&export).unwrap().already_present);

    // Other content under the name: a conflict, and the object is untouched.
    std::fs::write(&source, b"other bytes").unwrap();
    let error = destination.deliver(&export).unwrap_err();
    assert!(matches!(error, ExportError::Conflict { .. }), "{error}");
    assert_eq!(gunzip(&gcs.read_object(export.object).unwrap()), data);
    assert_eq!(gcs.list_objects().unwrap().len(), 1);

    // Uncompressed.
    let raw = Export {
        source: &source,
        object: "p/s/raw.pcap",
        compression: Compression::None,
        gate: None,
    };
    destination.deliver(&raw).unwrap();
    assert_eq!(gcs.read_object("p/s/raw.pcap").unwrap(), b"other bytes");
}

/// A one-byte file `dir/f` delivered uncompressed as object `f`, which must fail: the file
/// and the error.
fn deliver_fails(
    destination: &GcsApiDestination,
    dir: &std::path::Path,
) -> (std::path::PathBuf, ExportError) {
    let source = dir.join("f");
    std::fs::write(&source, b"x").unwrap();
    let error = destination
        .deliver(&Export {
            source: &source,
            object: "f",
            compression: Compression::None,
            gate: None,
        })
        .unwrap_err();
    (source, error)
}

#[test]
fn an_unreachable_api_is_a_retryable_failure() {
    let closed = testbed::ClosedPort::new().unwrap();
    let destination = GcsApiDestination::new(GcsApiSettings::from_vars(
        "bkt",
        Some(closed.address()),
        false,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (source, error) = deliver_fails(&destination, dir.path());
    assert!(error.is_retryable(), "{error}");
    assert!(source.exists());
}

/// HTTPS is on and verifies the server: a TLS endpoint with a self-signed certificate (a real
/// `openssl s_server`) is refused, with the certificate named, and nothing is lost.
#[test]
fn an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    // The server picks its own port and says which ("ACCEPT 127.0.0.1:PORT"): no other
    // process can take it in between.
    let mut server = testbed::ChildGuard::spawn(
        std::process::Command::new("openssl")
            .args(["s_server", "-www", "-accept", "127.0.0.1:0", "-cert"])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let stdout = server.child_mut().stdout.take().unwrap();
    let (said, port) = std::sync::mpsc::channel();
    // Keeps reading after the port, so the server never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("ACCEPT 127.0.0.1:") {
                let _ = said.send(port.trim().parse::<u16>().unwrap());
            }
        }
    });
    let port = port
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("openssl s_server says where it listens");
    let destination = GcsApiDestination::new(GcsApiSettings::from_vars(
        "bkt",
        Some(format!("https://127.0.0.1:{port}")),
        false,
    ))
    .unwrap();
    let (source, error) = deliver_fails(&destination, dir.path());
    let text = error.to_string().to_lowercase();
    assert!(
        matches!(error, ExportError::Transport { .. }) && text.contains("certificate"),
        "{error}"
    );
    assert!(error.is_retryable(), "{error}");
    assert!(source.exists());
    server.kill().unwrap();
}
