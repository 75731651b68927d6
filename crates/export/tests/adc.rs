//! Application Default Credentials of the API upload, each source against a stand-in that
//! speaks the real protocol on loopback:
//! - a service-account key file (`GOOGLE_APPLICATION_CREDENTIALS`): the stand-in OAuth token
//!   endpoint takes the JWT bearer grant (RFC 7523) and checks the assertion: RS256 signature
//!   verified by `openssl dgst` with the key's public half, `kid`, `iss`, `aud`, `scope`,
//!   `iat`/`exp`;
//! - gcloud's application-default file (user credentials): the refresh-token grant with the
//!   file's client id, secret and refresh token (as a form or as JSON, both of which Google's
//!   endpoint takes);
//! - the metadata server (`testbed::MetadataServer`).
//!
//! The same stand-in plays the Cloud Storage endpoint: it records the `Authorization` header
//! of the upload and refuses it (503), so each test sees which token the upload carried.
//! (A real gcloud file has no `token_uri`; here it names the stand-in, which `gcloud-auth`
//! honours, instead of `https://oauth2.googleapis.com/token`.)

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use export::credentials::FileOrigin;
use export::{Compression, Destination, Export, GcsApiDestination, GcsApiSettings};
use testbed::MetadataServer;

const SA_EMAIL: &str = "uploader@my-project.iam.gserviceaccount.com";
const KEY_ID: &str = "0123456789abcdef";

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
                            other => Err(format!("grant {other:?}")),
                        };
                        let response = match &outcome {
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

#[test]
fn without_a_file_the_metadata_server_gives_the_token() {
    let stand_in = StandIn::start(None);
    let home = tempfile::tempdir().unwrap();
    let metadata = MetadataServer::start().unwrap();
    let env = HashMap::from([
        ("STORAGE_EMULATOR_HOST", stand_in.url()),
        ("HOME", home.path().display().to_string()),
        ("GCE_METADATA_HOST", metadata.host()),
    ]);
    let credentials = upload_once(&env);
    let seen = stand_in.seen.lock().unwrap();
    assert!(seen.grants.is_empty());
    assert!(metadata.requests(MetadataServer::TOKEN) >= 1);
    assert!(seen
        .authorizations
        .iter()
        .all(|a| a.as_deref() == Some("Bearer ya29.testbed-access-token")));
    assert!(credentials.contains("metadata server"), "{credentials}");
    assert!(!credentials.contains("ya29"));
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
    assert_eq!(nothing.metadata_host, None, "anonymous with the emulator");

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
