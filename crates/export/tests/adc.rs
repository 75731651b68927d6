//! Application Default Credentials of the API upload, each source against a stand-in that
//! speaks the real protocol on loopback:
//! - a service-account key file (`GOOGLE_APPLICATION_CREDENTIALS`): the stand-in OAuth token
//!   endpoint takes the JWT bearer grant (RFC 7523) and checks the assertion: RS256 signature
//!   verified by `openssl dgst` with the key's public half, `kid`, `iss`, `aud`, `scope`,
//!   `iat`/`exp`;
//! - gcloud's application-default file (user credentials): the refresh-token grant with the
//!   file's client id, secret and refresh token (as a form or as JSON, both of which Google's
//!   endpoint takes);
//! - an external-account file (workload identity federation) with a file-sourced subject
//!   token: the stand-in security token service takes the RFC 8693 token exchange as Google's
//!   STS does (a form POST) and checks every field;
//! - the metadata server (`testbed::MetadataServer`, which insists on `Metadata-Flavor`).
//!
//! For the key and gcloud files the same stand-in plays the Cloud Storage endpoint: it records
//! the `Authorization` header of the upload and refuses it (503), so each test sees which token
//! the upload carried. The external-account and metadata-server uploads go to the real API
//! emulator (fake-gcs-server) and succeed, through a loopback proxy that records their
//! `Authorization` headers (the emulator accepts any). (A real gcloud file has no `token_uri`;
//! here it names the stand-in, which `gcloud-auth` honours, instead of
//! `https://oauth2.googleapis.com/token`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use export::credentials::FileOrigin;
use export::{Compression, Destination, Export, GcsApiDestination, GcsApiSettings};
use testbed::{GcsEmulator, MetadataServer};

const SA_EMAIL: &str = "uploader@my-project.iam.gserviceaccount.com";
const KEY_ID: &str = "0123456789abcdef";
/// The workload identity pool provider an external-account file names.
const WIF_AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/pool-1/providers/oidc-1";
/// The external identity provider's token (an OIDC ID token, as Kubernetes or a CI system
/// would put in a file).
const SUBJECT_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpjYXB0dXJlIn0.c2lnbmF0dXJl";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Default)]
struct Seen {
    /// Outcome of every token request: `Ok(grant)` or why it was refused.
    grants: Vec<Result<String, String>>,
    /// `Authorization` headers of the storage requests.
    authorizations: Vec<Option<String>>,
}

/// The stand-in OAuth token endpoint and Cloud Storage endpoint.
struct StandIn {
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn form(body: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn b64(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default()
}

/// RFC 8693 as Google's security token service applies it to a workload identity pool.
fn check_token_exchange(
    content_type: Option<&str>,
    fields: &HashMap<String, String>,
) -> Result<(), String> {
    // STS takes the exchange only as a form.
    if content_type.map(|t| t.split(';').next().unwrap_or("").trim())
        != Some("application/x-www-form-urlencoded")
    {
        return Err(format!("content type {content_type:?}"));
    }
    let expected = [
        ("grant_type", TOKEN_EXCHANGE),
        ("audience", WIF_AUDIENCE),
        ("subject_token_type", JWT_TOKEN_TYPE),
        ("subject_token", SUBJECT_TOKEN),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("scope", export::credentials::SCOPE),
    ];
    for (name, value) in expected {
        if fields.get(name).map(String::as_str) != Some(value) {
            return Err(format!("{name} = {:?}", fields.get(name)));
        }
    }
    Ok(())
}

/// RFC 7523 as Google's token endpoint applies it to a service-account key.
fn check_assertion(assertion: &str, public_pem: &Path, token_url: &str) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWS compact serialization".into());
    };
    let header: serde_json::Value =
        serde_json::from_slice(&b64(header)).map_err(|e| format!("header: {e}"))?;
    if header["alg"] != "RS256" || header["kid"] != KEY_ID {
        return Err(format!("header {header}"));
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&b64(claims)).map_err(|e| format!("claims: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let iat = claims["iat"].as_i64().unwrap_or(0);
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if claims["iss"] != SA_EMAIL
        || claims["aud"] != token_url
        || claims["scope"] != export::credentials::SCOPE
        || (iat - now).abs() > 300
        || exp <= iat
        || exp - iat > 3600
    {
        return Err(format!("claims {claims}"));
    }
    // The signature, checked by an implementation other than the one that made it.
    let dir = tempfile::tempdir().unwrap();
    let signed = dir.path().join("signed");
    let sig = dir.path().join("sig");
    std::fs::write(&signed, format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(&sig, b64(signature)).unwrap();
    let verify = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&signed)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !verify.status.success() {
        return Err(format!(
            "signature: {}",
            String::from_utf8_lossy(&verify.stdout)
        ));
    }
    Ok(())
}

impl StandIn {
    fn start(public_pem: Option<std::path::PathBuf>) -> StandIn {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let port = server.server_addr().to_ip().unwrap().port();
        let token_url = format!("http://127.0.0.1:{port}/token");
        let thread = {
            let server = server.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let json = |status: u16, body: serde_json::Value| {
                    tiny_http::Response::from_string(body.to_string())
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        )
                };
                while let Ok(mut request) = server.recv() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let content_type = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Content-Type"))
                        .map(|h| h.value.to_string());
                    if request.url() == "/token" {
                        // Google's endpoint takes the grant as a form or as JSON (gcloud-auth
                        // sends the refresh-token grant as JSON).
                        let fields = match serde_json::from_str::<HashMap<String, String>>(&body) {
                            Ok(fields) => fields,
                            Err(_) => form(&body),
                        };
                        let outcome = match fields.get("grant_type").map(String::as_str) {
                            Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                                match (&public_pem, fields.get("assertion")) {
                                    (Some(pem), Some(assertion)) => {
                                        check_assertion(assertion, pem, &token_url)
                                            .map(|()| "jwt-bearer".to_string())
                                    }
                                    _ => Err("no assertion".into()),
                                }
                            }
                            Some("refresh_token") => {
                                let ok = fields.get("client_id").map(String::as_str)
                                    == Some("client-1.apps.googleusercontent.com")
                                    && fields.get("client_secret").map(String::as_str)
                                        == Some("client-secret-1")
                                    && fields.get("refresh_token").map(String::as_str)
                                        == Some("1//refresh-token-1");
                                if ok {
                                    Ok("refresh_token".to_string())
                                } else {
                                    Err(format!("refresh grant {fields:?}"))
                                }
                            }
                            Some(TOKEN_EXCHANGE) => {
                                check_token_exchange(content_type.as_deref(), &fields)
                                    .map(|()| "token-exchange".to_string())
                            }
                            other => Err(format!("grant {other:?}")),
                        };
                        let response = match &outcome {
                            // STS answers with the RFC 8693 fields (`issued_token_type`).
                            Ok(grant) if grant == "token-exchange" => json(
                                200,
                                serde_json::json!({
                                    "access_token": format!("ya29.stand-in-{grant}"),
                                    "issued_token_type": ACCESS_TOKEN_TYPE,
                                    "token_type": "Bearer",
                                    "expires_in": 3599,
                                }),
                            ),
                            Ok(grant) => json(
                                200,
                                serde_json::json!({
                                    "access_token": format!("ya29.stand-in-{grant}"),
                                    "expires_in": 3599,
                                    "token_type": "Bearer",
                                }),
                            ),
                            Err(_) => json(400, serde_json::json!({"error": "invalid_grant"})),
                        };
                        seen.lock().unwrap().grants.push(outcome);
                        let _ = request.respond(response);
                    } else {
                        let authorization = request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv("Authorization"))
                            .map(|h| h.value.to_string());
                        seen.lock().unwrap().authorizations.push(authorization);
                        let _ = request.respond(json(
                            503,
                            serde_json::json!({"error": {"code": 503, "message": "stand-in"}}),
                        ));
                    }
                }
            })
        };
        StandIn {
            server,
            seen,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.server.server_addr().to_ip().unwrap().port()
        )
    }
}

/// Tries one upload (the stand-in refuses it) and returns what the destination said about
/// its credentials.
fn upload_once(env: &HashMap<&str, String>) -> String {
    let settings = GcsApiSettings::from_lookup("bkt", &|name| env.get(name).cloned());
    let destination = GcsApiDestination::new(settings).expect("a destination");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("eth0_part_20260101T000000Z.pcap");
    std::fs::write(&source, b"capture bytes").unwrap();
    let result = destination.deliver(&Export {
        source: &source,
        object: "p/eth0_part_20260101T000000Z.pcap",
        compression: Compression::None,
        gate: None,
    });
    assert!(result.is_err(), "the stand-in refuses uploads");
    destination.credentials()
}

fn service_account_key(dir: &Path, token_uri: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("key.pem");
    let public = dir.join("public.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap()
        .success()
        && Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl makes a key pair");
    let file = dir.join("sa-key.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": KEY_ID,
            "private_key": std::fs::read_to_string(&key).unwrap(),
            "client_email": SA_EMAIL,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    (file, public)
}

#[test]
fn a_service_account_key_file_signs_a_verified_jwt_bearer_grant() {
    let dir = tempfile::tempdir().unwrap();
    // The key must exist before the stand-in (which checks with its public half) starts, and
    // the key file names the stand-in's port: bind first, then write the key with it.
    let keys = tempfile::tempdir().unwrap();
    let public = keys.path().join("public.pem");
    let stand_in = StandIn::start(Some(public.clone()));
    let (key_file, made_public) =
        service_account_key(keys.path(), &format!("{}/token", stand_in.url()));
    assert_eq!(made_public, public);
    let env = HashMap::from([
        ("STORAGE_EMULATOR_HOST", stand_in.url()),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            key_file.display().to_string(),
        ),
        ("HOME", dir.path().display().to_string()),
    ]);
    let credentials = upload_once(&env);
    let seen = stand_in.seen.lock().unwrap();
    assert_eq!(seen.grants, [Ok("jwt-bearer".to_string())]);
    assert!(!seen.authorizations.is_empty());
    assert!(seen
        .authorizations
        .iter()
        .all(|a| a.as_deref() == Some("Bearer ya29.stand-in-jwt-bearer")));
    assert!(credentials.contains(SA_EMAIL), "{credentials}");
    assert!(credentials.contains("GOOGLE_APPLICATION_CREDENTIALS"));
    assert!(!credentials.contains("ya29"), "{credentials}");
}

#[test]
fn gclouds_application_default_file_uses_the_refresh_token_grant() {
    let stand_in = StandIn::start(None);
    let home = tempfile::tempdir().unwrap();
    let gcloud = home.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "client-1.apps.googleusercontent.com",
            "client_secret": "client-secret-1",
            "refresh_token": "1//refresh-token-1",
            "token_uri": format!("{}/token", stand_in.url()),
        })
        .to_string(),
    )
    .unwrap();
    let metadata = MetadataServer::start().unwrap();
    let env = HashMap::from([
        ("STORAGE_EMULATOR_HOST", stand_in.url()),
        ("HOME", home.path().display().to_string()),
        // The file comes before the metadata server.
        ("GCE_METADATA_HOST", metadata.host()),
    ]);
    let credentials = upload_once(&env);
    let seen = stand_in.seen.lock().unwrap();
    assert_eq!(seen.grants, [Ok("refresh_token".to_string())]);
    assert!(!seen.authorizations.is_empty());
    assert!(seen
        .authorizations
        .iter()
        .all(|a| a.as_deref() == Some("Bearer ya29.stand-in-refresh_token")));
    assert_eq!(metadata.requests(MetadataServer::TOKEN), 0);
    assert!(
        credentials.contains("user credentials from gcloud's"),
        "{credentials}"
    );
    assert!(!credentials.contains("ya29") && !credentials.contains("refresh-token-1"));
}

/// A TCP proxy in front of the API emulator that keeps every byte the client sent, so a test
/// can read the headers of requests the emulator served.
struct RecordingProxy {
    address: String,
    sent: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl RecordingProxy {
    fn start(upstream: &str) -> RecordingProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (sent, stop) = (sent.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    let (mut client_read, mut server_write) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let sent = sent.clone();
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(n @ 1..) = client_read.read(&mut buffer) {
                            sent.lock().unwrap().extend_from_slice(&buffer[..n]);
                            if server_write.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown(Shutdown::Write);
                    });
                    let (mut server_read, mut client_write) = (server, client);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut server_read, &mut client_write);
                        let _ = client_write.shutdown(Shutdown::Both);
                    });
                }
            });
        }
        RecordingProxy {
            address,
            sent,
            stop,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The `Authorization` header of each request that went through (`None`: none sent).
    fn authorizations(&self) -> Vec<Option<String>> {
        let sent = self.sent.lock().unwrap();
        let text = String::from_utf8_lossy(&sent);
        let mut requests = Vec::new();
        for line in text.split("\r\n") {
            let is_request = ["GET ", "POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| line.starts_with(m))
                && line.ends_with(" HTTP/1.1");
            if is_request {
                requests.push(None);
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("authorization") {
                    if let Some(last) = requests.last_mut() {
                        *last = Some(value.trim().to_string());
                    }
                }
            }
        }
        requests
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// Uploads one file (which must succeed) and returns the credentials description.
fn upload_for_real(settings: GcsApiSettings, object: &str, bytes: &[u8]) -> String {
    let destination = GcsApiDestination::new(settings).expect("a destination");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("eth0_part_20260101T000000Z.pcap");
    std::fs::write(&source, bytes).unwrap();
    let delivery = destination
        .deliver(&Export {
            source: &source,
            object,
            compression: Compression::None,
            gate: None,
        })
        .expect("the upload succeeds");
    assert!(!delivery.already_present);
    destination.credentials()
}

#[test]
fn an_external_account_file_exchanges_the_subject_token_at_sts() {
    let stand_in = StandIn::start(None);
    let gcs = GcsEmulator::start("bkt").unwrap();
    let proxy = RecordingProxy::start(&gcs.endpoint());
    let metadata = MetadataServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As `gcloud iam workload-identity-pools create-cred-config … --credential-source-file`
    // writes it (no service-account impersonation).
    let subject_file = dir.path().join("oidc-token");
    std::fs::write(&subject_file, SUBJECT_TOKEN).unwrap();
    let config = dir.path().join("wif.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "type": "external_account",
            "audience": WIF_AUDIENCE,
            "subject_token_type": JWT_TOKEN_TYPE,
            "token_url": format!("{}/token", stand_in.url()),
            "credential_source": {
                "file": subject_file.display().to_string(),
                "format": {"type": "text"},
            },
        })
        .to_string(),
    )
    .unwrap();
    let env = HashMap::from([
        ("STORAGE_EMULATOR_HOST", proxy.endpoint()),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            config.display().to_string(),
        ),
        ("HOME", dir.path().display().to_string()),
        // The file comes before the metadata server.
        ("GCE_METADATA_HOST", metadata.host()),
    ]);
    let settings = GcsApiSettings::from_lookup("bkt", &|name| env.get(name).cloned());
    let credentials = upload_for_real(settings, "p/wif.pcap", b"federated capture");

    assert_eq!(gcs.read_object("p/wif.pcap").unwrap(), b"federated capture");
    assert_eq!(
        stand_in.seen.lock().unwrap().grants,
        [Ok("token-exchange".to_string())]
    );
    let authorizations = proxy.authorizations();
    assert!(!authorizations.is_empty());
    assert!(
        authorizations
            .iter()
            .all(|a| a.as_deref() == Some("Bearer ya29.stand-in-token-exchange")),
        "{authorizations:?}"
    );
    assert_eq!(metadata.total_requests(), 0);
    assert!(
        credentials.contains("external account (workload identity federation")
            && credentials.contains(WIF_AUDIENCE)
            && credentials.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{credentials}"
    );
    assert!(!credentials.contains("ya29") && !credentials.contains(SUBJECT_TOKEN));
}

/// Set in the child process [`without_a_file_the_metadata_server_gives_the_token`] starts.
const CHILD: &str = "ADC_TEST_METADATA_CHILD";

/// gcloud-auth reads `GCE_METADATA_HOST` from the process environment (as Google's own
/// libraries do), and the tests of one binary share a process: the upload runs in a child
/// (this test again, alone, in this binary) whose environment names the stand-in metadata
/// server, as a daemon's would.
#[test]
fn without_a_file_the_metadata_server_gives_the_token() {
    if std::env::var_os(CHILD).is_some() {
        let credentials = upload_for_real(
            GcsApiSettings::from_env("bkt"),
            "p/metadata.pcap",
            b"capture bytes",
        );
        println!("credentials: {credentials}");
        return;
    }
    let gcs = GcsEmulator::start("bkt").unwrap();
    let proxy = RecordingProxy::start(&gcs.endpoint());
    let metadata = MetadataServer::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "without_a_file_the_metadata_server_gives_the_token",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD, "1")
        .env("HOME", home.path())
        .env("STORAGE_EMULATOR_HOST", proxy.endpoint())
        .env("GCE_METADATA_HOST", metadata.host())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let credentials = stdout
        .lines()
        // The harness's "test … " may precede it on the line.
        .find_map(|l| l.split_once("credentials: ").map(|(_, said)| said))
        .expect("the child names its credentials");

    assert_eq!(
        gcs.read_object("p/metadata.pcap").unwrap(),
        b"capture bytes"
    );
    assert!(metadata.requests(MetadataServer::TOKEN) >= 1);
    let authorizations = proxy.authorizations();
    assert!(!authorizations.is_empty());
    assert!(
        authorizations
            .iter()
            .all(|a| a.as_deref() == Some("Bearer ya29.testbed-access-token")),
        "{authorizations:?}"
    );
    assert_eq!(
        credentials,
        format!(
            "the metadata server's default service account ({})",
            metadata.host()
        )
    );
    assert!(!stdout.contains("ya29"), "{stdout}");
}

#[test]
fn the_search_follows_googles_order() {
    let home = tempfile::tempdir().unwrap();
    let gcloud = home.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    std::fs::write(gcloud.join("application_default_credentials.json"), "{}").unwrap();
    let home_dir = home.path().display().to_string();
    let find = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GcsApiSettings::from_lookup("bkt", &|name| env.get(name).cloned())
    };
    let all = find(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", "/keys/sa.json"),
        ("HOME", &home_dir),
        ("GCE_METADATA_HOST", "127.0.0.1:1"),
    ]);
    let file = all.credentials_file.expect("a file");
    assert_eq!(file.origin, FileOrigin::EnvironmentVariable);
    assert_eq!(file.path, Path::new("/keys/sa.json"));
    let gcloud_only = find(&[("HOME", &home_dir), ("GCE_METADATA_HOST", "127.0.0.1:1")]);
    let file = gcloud_only.credentials_file.expect("gcloud's file");
    assert_eq!(file.origin, FileOrigin::Gcloud);
    assert!(file.path.starts_with(&gcloud));
    let empty = tempfile::tempdir().unwrap();
    let nothing = find(&[
        ("HOME", &empty.path().display().to_string()),
        ("STORAGE_EMULATOR_HOST", "127.0.0.1:2"),
    ]);
    assert_eq!(nothing.credentials_file, None);
    assert!(!nothing.metadata_server, "anonymous with the emulator");

    // A named file that is not a key stops start-up, naming the variable.
    let error = GcsApiDestination::new(find(&[(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "/nonexistent/key.json",
    )]))
    .expect_err("no such file");
    assert!(
        error.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{error}"
    );
}
