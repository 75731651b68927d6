//! [`GcsApiDestination`]: uploads through the Cloud Storage JSON API (`PCAP_GCS_FUSE=false`).
//!
//! One streaming multipart upload per file (`uploadType=multipart`: the object's metadata,
//! then its bytes, sent chunked so memory does not grow with the file) with the precondition
//! `ifGenerationMatch=0`: an existing object is never overwritten. (Multipart rather than a
//! media upload because fake-gcs-server, the emulator the tests use, ignores the
//! precondition on media uploads; Cloud Storage honours it on both.) The CRC32C the service computed must equal the one of the bytes sent,
//! otherwise the object just written (and only that generation) is deleted and the export is
//! retried. When the name is taken, the existing object counts as delivered if its CRC32C and
//! size are what this file would produce; otherwise it is a conflict.
//!
//! Access tokens come from the metadata server (`GCE_METADATA_HOST` honoured) and are cached
//! until a minute before they expire. With `STORAGE_EMULATOR_HOST` set and no
//! `GCE_METADATA_HOST`, requests are anonymous, like Google's own client libraries.

use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::encode::{encode, open_source};
use crate::{check_object_name, Compression, Delivery, Destination, Export, ExportError};

/// The production endpoint.
pub const DEFAULT_GCS_ENDPOINT: &str = "https://storage.googleapis.com";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// Refresh a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Where and how to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsApiSettings {
    /// The bucket.
    pub bucket: String,
    /// Base URL of the API (`https://storage.googleapis.com`, or the emulator's).
    pub endpoint: String,
    /// `host[:port]` of the metadata server; `None` for anonymous requests.
    pub metadata_host: Option<String>,
    /// Timeout of connecting, and of each read or write on the connection.
    pub io_timeout: Duration,
}

impl GcsApiSettings {
    /// Settings from the environment: `STORAGE_EMULATOR_HOST` (the endpoint; anonymous
    /// unless `GCE_METADATA_HOST` is also set) and `GCE_METADATA_HOST`.
    pub fn from_env(bucket: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::from_vars(
            bucket,
            var("STORAGE_EMULATOR_HOST"),
            var("GCE_METADATA_HOST"),
        )
    }

    /// Same as [`GcsApiSettings::from_env`] with the values given.
    pub fn from_vars(bucket: &str, emulator: Option<String>, metadata: Option<String>) -> Self {
        let (endpoint, metadata_host) = match emulator {
            Some(host) => {
                let host = host.trim().trim_end_matches('/').to_string();
                let endpoint = if host.contains("://") {
                    host
                } else {
                    format!("http://{host}")
                };
                (endpoint, metadata)
            }
            None => (
                DEFAULT_GCS_ENDPOINT.to_string(),
                Some(metadata.unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string())),
            ),
        };
        GcsApiSettings {
            bucket: bucket.to_string(),
            endpoint,
            metadata_host,
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// Uploads to one bucket.
#[derive(Debug)]
pub struct GcsApiDestination {
    settings: GcsApiSettings,
    agent: ureq::Agent,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct ObjectResource {
    size: Option<String>,
    crc32c: Option<String>,
    generation: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl GcsApiDestination {
    /// A destination for `settings` (no request is made yet).
    pub fn new(settings: GcsApiSettings) -> Result<Self, ExportError> {
        if settings.bucket.is_empty() {
            return Err(ExportError::InvalidName {
                name: String::new(),
                reason: "empty bucket name".into(),
            });
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(settings.io_timeout)
            .timeout_write(settings.io_timeout)
            .build();
        Ok(GcsApiDestination {
            settings,
            agent,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.endpoint)
    }

    fn object_url(&self, object: &str) -> String {
        self.url(&format!(
            "/storage/v1/b/{}/o/{}",
            encode_component(&self.settings.bucket),
            encode_component(object)
        ))
    }

    fn gs(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.settings.bucket)
    }

    /// `Authorization` header value, or `None` for anonymous requests.
    fn authorization(&self) -> Result<Option<String>, ExportError> {
        let Some(host) = &self.settings.metadata_host else {
            return Ok(None);
        };
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, expires)) = cached.as_ref() {
            if Instant::now() + TOKEN_MARGIN < *expires {
                return Ok(Some(format!("Bearer {token}")));
            }
        }
        let url =
            format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
        let response = self
            .agent
            .get(&url)
            .set("Metadata-Flavor", "Google")
            .timeout(Duration::from_secs(5))
            .call()
            .map_err(|e| ExportError::Credentials {
                detail: format!("GET {url}: {}", describe(e)),
            })?;
        let token: TokenResponse =
            serde_json::from_reader(response.into_reader()).map_err(|e| {
                ExportError::Credentials {
                    detail: format!("GET {url}: bad JSON: {e}"),
                }
            })?;
        let expires = Instant::now() + Duration::from_secs(token.expires_in.unwrap_or(300));
        let header = format!("Bearer {}", token.access_token);
        *cached = Some((token.access_token, expires));
        Ok(Some(header))
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn request(&self, method: &str, url: &str) -> Result<ureq::Request, ExportError> {
        let mut request = self.agent.request(method, url);
        if let Some(auth) = self.authorization()? {
            request = request.set("Authorization", &auth);
        }
        Ok(request)
    }

    fn http_error(&self, context: String, error: ureq::Error) -> ExportError {
        match error {
            ureq::Error::Status(status, response) => {
                if status == 401 {
                    self.forget_token();
                }
                let mut detail = String::new();
                let _ = response
                    .into_reader()
                    .take(2048)
                    .read_to_string(&mut detail);
                ExportError::Http {
                    context,
                    status,
                    detail: detail.trim().to_string(),
                }
            }
            ureq::Error::Transport(transport) => ExportError::Transport {
                context,
                detail: transport.to_string(),
            },
        }
    }

    fn metadata(&self, object: &str) -> Result<ObjectResource, ExportError> {
        let context = format!("GET {}", self.gs(object));
        let response = self
            .request("GET", &self.object_url(object))?
            .call()
            .map_err(|e| self.http_error(context.clone(), e))?;
        serde_json::from_reader(response.into_reader()).map_err(|e| ExportError::Transport {
            context,
            detail: format!("bad JSON: {e}"),
        })
    }

    /// The name is taken: the same bytes count as delivered, other bytes are a conflict.
    fn existing(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        let stored = self.metadata(export.object)?;
        let mut local = encode(open_source(export.source)?, export.compression);
        io::copy(&mut local, &mut io::sink()).map_err(|source| ExportError::Read {
            path: export.source.to_path_buf(),
            source,
        })?;
        let same = stored.crc32c.as_deref() == Some(crc_base64(local.crc32c()).as_str())
            && parse_size(&stored.size) == Some(local.bytes_out());
        if same {
            Ok(Delivery {
                location: self.gs(export.object),
                bytes_read: local.bytes_read(),
                bytes_stored: local.bytes_out(),
                already_present: true,
            })
        } else {
            Err(ExportError::Conflict {
                target: self.gs(export.object),
            })
        }
    }
}

impl Destination for GcsApiDestination {
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        check_object_name(export.object)?;
        let source = open_source(export.source)?;
        let mut encoded = encode(source, export.compression);
        let target = self.gs(export.object);
        let context = format!("upload {target}");
        let url = self.url(&format!(
            "/upload/storage/v1/b/{}/o",
            encode_component(&self.settings.bucket)
        ));
        let boundary = boundary();
        let metadata = serde_json::json!({
            "name": export.object,
            "contentType": match export.compression {
                Compression::None => "application/vnd.tcpdump.pcap",
                Compression::Gzip { .. } => "application/gzip",
            },
        });
        let head = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let body = io::Cursor::new(head.into_bytes())
            .chain(&mut encoded)
            .chain(io::Cursor::new(tail.into_bytes()));
        let result = self
            .request("POST", &url)?
            .query("uploadType", "multipart")
            // Never overwrite: the upload fails with 412 if the name exists.
            .query("ifGenerationMatch", "0")
            .set(
                "Content-Type",
                &format!("multipart/related; boundary={boundary}"),
            )
            .send(body);
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(412, _)) => return self.existing(export),
            Err(ureq::Error::Transport(transport))
                if transport.kind() == ureq::ErrorKind::Io && encoded.bytes_out() > 0 =>
            {
                // A read error of the local file surfaces as a transport error; tell them
                // apart by re-checking the source.
                return Err(match open_source(export.source) {
                    Err(error) => error,
                    Ok(_) => ExportError::Transport {
                        context,
                        detail: transport.to_string(),
                    },
                });
            }
            Err(error) => return Err(self.http_error(context, error)),
        };
        let stored: ObjectResource =
            serde_json::from_reader(response.into_reader()).map_err(|e| {
                ExportError::Transport {
                    context: context.clone(),
                    detail: format!("bad JSON in the upload response: {e}"),
                }
            })?;
        let sent_crc = crc_base64(encoded.crc32c());
        let crc_ok = stored.crc32c.as_deref() == Some(sent_crc.as_str());
        let size_ok = parse_size(&stored.size) == Some(encoded.bytes_out());
        if !(crc_ok && size_ok) {
            let detail = format!(
                "stored crc32c {:?} size {:?}, sent crc32c {sent_crc} size {}",
                stored.crc32c,
                stored.size,
                encoded.bytes_out()
            );
            // Remove exactly the generation just written, so the retry can create it again.
            if let Some(generation) = &stored.generation {
                if let Ok(request) = self.request("DELETE", &self.object_url(export.object)) {
                    let _ = request.query("ifGenerationMatch", generation).call();
                }
            }
            return Err(ExportError::Integrity { target, detail });
        }
        Ok(Delivery {
            location: target,
            bytes_read: encoded.bytes_read(),
            bytes_stored: encoded.bytes_out(),
            already_present: false,
        })
    }

    fn describe(&self) -> String {
        format!(
            "gs://{} via the JSON API at {}",
            self.settings.bucket, self.settings.endpoint
        )
    }
}

fn describe(error: ureq::Error) -> String {
    match error {
        ureq::Error::Status(status, _) => format!("HTTP {status}"),
        ureq::Error::Transport(transport) => transport.to_string(),
    }
}

/// A multipart boundary that cannot plausibly occur in the data: 128 bits from the clock,
/// the pid and a counter, mixed.
fn boundary() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix = |x: u64| {
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    format!(
        "pcap-sidecar-{:016x}{:016x}",
        mix(nanos ^ u64::from(std::process::id())),
        mix(count.wrapping_add(nanos.rotate_left(17)))
    )
}

fn parse_size(size: &Option<String>) -> Option<u64> {
    size.as_deref().and_then(|s| s.parse().ok())
}

/// CRC32C as the JSON API shows it: base64 of the big-endian 4 bytes.
fn crc_base64(crc: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// Percent-encodes all but RFC 3986 unreserved characters (object names in paths need `/`
/// as `%2F`).
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_variables() {
        let emulator = GcsApiSettings::from_vars("b", Some("127.0.0.1:4443".into()), None);
        assert_eq!(emulator.endpoint, "http://127.0.0.1:4443");
        assert_eq!(emulator.metadata_host, None);
        let with_metadata = GcsApiSettings::from_vars(
            "b",
            Some("http://127.0.0.1:4443/".into()),
            Some("127.0.0.1:99".into()),
        );
        assert_eq!(with_metadata.endpoint, "http://127.0.0.1:4443");
        assert_eq!(with_metadata.metadata_host.as_deref(), Some("127.0.0.1:99"));
        let production = GcsApiSettings::from_vars("b", None, None);
        assert_eq!(production.endpoint, DEFAULT_GCS_ENDPOINT);
        assert_eq!(
            production.metadata_host.as_deref(),
            Some("metadata.google.internal")
        );
    }

    #[test]
    fn crc_and_names_are_encoded_like_the_api() {
        // 0xE3069283 is the standard CRC32C check value of "123456789".
        assert_eq!(crc_base64(0x0000_0000), "AAAAAA==");
        assert_eq!(crc_base64(crc32c::crc32c(b"123456789")), "4waSgw==");
        assert_eq!(encode_component("a/b c"), "a%2Fb%20c");
    }
}
