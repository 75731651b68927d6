//! [`GcsApiDestination`]: uploads through the Cloud Storage JSON API (`PCAP_GCS_FUSE=false`)
//! with the `gcloud-storage` client crate.
//!
//! One streaming multipart upload per file (the object's metadata, then its bytes, produced
//! 64 KiB at a time by the compressor so memory does not grow with the file) with the
//! precondition `ifGenerationMatch=0`: an existing object is never overwritten. (Multipart
//! rather than a media upload because fake-gcs-server, the emulator the tests use, ignores
//! the precondition on media uploads; Cloud Storage honours it on both.) The CRC32C the
//! service computed must equal the one of the bytes sent, otherwise the object just written
//! (and only that generation) is deleted and the export is retried. When the name is taken,
//! the existing object counts as delivered if its CRC32C and size are what this file would
//! produce; otherwise it is a conflict.
//!
//! Credentials follow Application Default Credentials ([`crate::credentials`]): a file named
//! by `GOOGLE_APPLICATION_CREDENTIALS` or gcloud's application-default file, else the
//! metadata server (`GCE_METADATA_HOST` honoured); `gcloud-auth` gets and caches the tokens.
//! With `STORAGE_EMULATOR_HOST` set and neither a file nor `GCE_METADATA_HOST`, requests are
//! anonymous, like Google's own client libraries.
//!
//! The client is asynchronous; the destination owns a Tokio runtime with one I/O thread and
//! the exporter's worker threads block on it, each compressing its own file into the body of
//! its upload through a bounded channel (so several files still compress in parallel).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use gcloud_storage::http::objects::Object;

use crate::credentials::{Credentials, CredentialsFileRef, CredentialsTokenSource};
use crate::encode::{encode, open_source, read_full, Encoded};
use crate::{check_object_name, Compression, Delivery, Destination, Export, ExportError};

/// The production endpoint.
pub const DEFAULT_GCS_ENDPOINT: &str = "https://storage.googleapis.com";

/// Where and how to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsApiSettings {
    /// The bucket.
    pub bucket: String,
    /// Base URL of the API (`https://storage.googleapis.com`, or the emulator's).
    pub endpoint: String,
    /// Whether tokens come from the metadata server when no credentials file is found
    /// (`false`: anonymous requests). Its address is not a setting: `gcloud-auth` reads
    /// `GCE_METADATA_HOST` from the process environment ([`crate::credentials::metadata_host`]).
    pub metadata_server: bool,
    /// A credentials file (Application Default Credentials); it wins over the metadata
    /// server.
    pub credentials_file: Option<CredentialsFileRef>,
    /// Timeout of connecting, and of each read or write on the connection.
    pub io_timeout: Duration,
}

impl GcsApiSettings {
    /// Settings from the environment: `STORAGE_EMULATOR_HOST` (the endpoint; anonymous
    /// unless `GCE_METADATA_HOST` is also set) and `GCE_METADATA_HOST`.
    pub fn from_env(bucket: &str) -> Self {
        Self::from_lookup(bucket, &|name| std::env::var(name).ok())
    }

    /// [`GcsApiSettings::from_env`] from any source of variables, with Application Default
    /// Credentials' files (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file under
    /// `CLOUDSDK_CONFIG` or `HOME`).
    pub fn from_lookup(bucket: &str, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut settings = Self::from_vars(
            bucket,
            var("STORAGE_EMULATOR_HOST"),
            var("GCE_METADATA_HOST").is_some(),
        );
        settings.credentials_file = CredentialsFileRef::find(env);
        settings
    }

    /// Same as [`GcsApiSettings::from_env`] with the values given (`metadata_host_set`:
    /// whether `GCE_METADATA_HOST` is set; without an emulator the metadata server is always
    /// asked).
    pub fn from_vars(bucket: &str, emulator: Option<String>, metadata_host_set: bool) -> Self {
        let (endpoint, metadata_server) = match emulator {
            Some(host) => {
                let host = host.trim().trim_end_matches('/').to_string();
                let endpoint = if host.contains("://") {
                    host
                } else {
                    format!("http://{host}")
                };
                (endpoint, metadata_host_set)
            }
            None => (DEFAULT_GCS_ENDPOINT.to_string(), true),
        };
        GcsApiSettings {
            bucket: bucket.to_string(),
            endpoint,
            metadata_server,
            credentials_file: None,
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// Uploads to one bucket.
pub struct GcsApiDestination {
    settings: GcsApiSettings,
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The credentials handed to the client (`None`: anonymous), kept to drop their token
    /// after a 401.
    credentials: Option<Arc<Credentials>>,
}

impl std::fmt::Debug for GcsApiDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsApiDestination")
            .field("settings", &self.settings)
            .field("credentials", &self.credentials())
            .finish()
    }
}

/// Bytes of the file read per chunk of the upload body.
const CHUNK: usize = 64 * 1024;

impl GcsApiDestination {
    /// A destination for `settings` (no request is made yet).
    pub fn new(settings: GcsApiSettings) -> Result<Self, ExportError> {
        if settings.bucket.is_empty() {
            return Err(ExportError::InvalidName {
                name: String::new(),
                reason: "empty bucket name".into(),
            });
        }
        let setup = |detail: String| ExportError::Transport {
            context: "setting up the Cloud Storage client".into(),
            detail,
        };
        // One process-wide TLS provider: ring, which the rest of the workspace uses too. An
        // error means one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One thread for the connections; the callers' threads compress (see `deliver`).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gcs-api-io")
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(settings.io_timeout)
            .build()
            .map_err(|e| setup(chain(&e)))?;
        let credentials = match &settings.credentials_file {
            Some(found) => Some(runtime.block_on(Credentials::from_file(found))?),
            None => settings.metadata_server.then(Credentials::metadata_server),
        }
        .map(Arc::new);
        let config = ClientConfig {
            http: Some(reqwest_middleware::ClientBuilder::new(http).build()),
            storage_endpoint: settings.endpoint.clone(),
            token_source_provider: credentials.clone().map(|c| {
                Box::new(CredentialsTokenSource(c)) as Box<dyn token_source::TokenSourceProvider>
            }),
            ..ClientConfig::default()
        };
        let client = runtime.block_on(async { Client::new(config) });
        Ok(GcsApiDestination {
            settings,
            runtime,
            client,
            credentials,
        })
    }

    /// Which credentials the uploads use, for the start-up log (never a token or key).
    pub fn credentials(&self) -> String {
        match &self.credentials {
            Some(credentials) => credentials.description().to_string(),
            None => "none: anonymous requests (STORAGE_EMULATOR_HOST)".to_string(),
        }
    }

    fn gs(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.settings.bucket)
    }

    fn api_error(&self, context: String, error: gcloud_storage::http::Error) -> ExportError {
        use gcloud_storage::http::Error;
        match error {
            Error::Response(response) => {
                if response.code == 401 {
                    if let Some(credentials) = &self.credentials {
                        credentials.forget();
                    }
                }
                ExportError::Http {
                    context,
                    status: response.code,
                    detail: response.message.chars().take(2048).collect(),
                }
            }
            Error::TokenSource(cause) => ExportError::Credentials {
                detail: cause.to_string(),
            },
            Error::HttpClient(cause) => ExportError::Transport {
                context,
                detail: chain(&cause),
            },
            other => ExportError::Transport {
                context,
                detail: chain(&other),
            },
        }
    }

    fn metadata(&self, object: &str) -> Result<Object, ExportError> {
        let request = GetObjectRequest {
            bucket: self.settings.bucket.clone(),
            object: object.to_string(),
            ..GetObjectRequest::default()
        };
        self.runtime
            .block_on(self.client.get_object(&request))
            .map_err(|e| self.api_error(format!("GET {}", self.gs(object)), e))
    }

    /// The name is taken: the same bytes count as delivered, other bytes are a conflict.
    fn existing(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        let stored = self.metadata(export.object)?;
        let mut local = encode(open_source(export.source)?, export.compression);
        io::copy(&mut local, &mut io::sink()).map_err(|source| ExportError::Read {
            path: export.source.to_path_buf(),
            source,
        })?;
        if same_bytes(&stored, &local) {
            Ok(Delivery {
                location: self.gs(export.object),
                bytes_read: local.bytes_read(),
                bytes_stored: local.bytes_out(),
                already_present: true,
                crc32c: local.crc32c(),
            })
        } else {
            Err(ExportError::Conflict {
                target: self.gs(export.object),
            })
        }
    }
}

/// Whether `stored` holds what `local` produced: same CRC32C and size.
fn same_bytes(stored: &Object, local: &Encoded) -> bool {
    stored.crc32c.as_deref() == Some(crc_base64(local.crc32c()).as_str())
        && u64::try_from(stored.size).ok() == Some(local.bytes_out())
}

impl Destination for GcsApiDestination {
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        check_object_name(export.object)?;
        let source = open_source(export.source)?;
        let target = self.gs(export.object);
        // The upload is the commit: the last moment to give up.
        if export.gate.is_some_and(|gate| !gate.may_commit()) {
            return Err(ExportError::Stopped { target });
        }
        let context = format!("upload {target}");
        let request = UploadObjectRequest {
            bucket: self.settings.bucket.clone(),
            // Never overwrite: the upload fails with 412 if the name exists.
            if_generation_match: Some(0),
            ..UploadObjectRequest::default()
        };
        let metadata = Object {
            name: export.object.to_string(),
            content_type: Some(
                match export.compression {
                    Compression::None => "application/vnd.tcpdump.pcap",
                    Compression::Gzip { .. } => "application/gzip",
                }
                .to_string(),
            ),
            ..Object::default()
        };
        // This thread compresses and feeds the body through a small channel; the runtime's
        // thread only moves bytes. A send fails when the upload ended early (an answer before
        // the whole body, or a broken connection): stop reading then.
        let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(4);
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        });
        let client = self.client.clone();
        let upload = self.runtime.spawn(async move {
            client
                .upload_streamed_object(
                    &request,
                    chunks,
                    &UploadType::Multipart(Box::new(metadata)),
                )
                .await
        });
        let mut encoded = encode(source, export.compression);
        let mut read_error = None;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let item = match read_full(&mut encoded, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    Ok(chunk)
                }
                Err(error) => {
                    let sent = io::Error::new(error.kind(), "reading the local file failed");
                    read_error = Some(error);
                    Err(sent)
                }
            };
            let failed = item.is_err();
            if sender.blocking_send(item).is_err() || failed {
                break;
            }
        }
        drop(sender);
        let result = match self.runtime.block_on(upload) {
            Ok(result) => result,
            Err(join) => {
                return Err(ExportError::Transport {
                    context,
                    detail: format!("the upload task failed: {join}"),
                })
            }
        };
        if let Some(source) = read_error {
            return Err(match open_source(export.source) {
                Err(error) => error,
                Ok(_) => ExportError::Read {
                    path: export.source.to_path_buf(),
                    source,
                },
            });
        }
        let stored = match result {
            Ok(stored) => stored,
            Err(gcloud_storage::http::Error::Response(r)) if r.code == 412 => {
                return self.existing(export);
            }
            Err(error) => return Err(self.api_error(context, error)),
        };
        if !same_bytes(&stored, &encoded) {
            let detail = format!(
                "stored crc32c {:?} size {}, sent crc32c {} size {}",
                stored.crc32c,
                stored.size,
                crc_base64(encoded.crc32c()),
                encoded.bytes_out()
            );
            // Remove exactly the generation just written, so the retry can create it again.
            let delete = DeleteObjectRequest {
                bucket: self.settings.bucket.clone(),
                object: export.object.to_string(),
                if_generation_match: Some(stored.generation),
                ..DeleteObjectRequest::default()
            };
            let _ = self.runtime.block_on(self.client.delete_object(&delete));
            return Err(ExportError::Integrity { target, detail });
        }
        Ok(Delivery {
            location: target,
            bytes_read: encoded.bytes_read(),
            bytes_stored: encoded.bytes_out(),
            already_present: false,
            crc32c: encoded.crc32c(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "gs://{} via the JSON API at {}",
            self.settings.bucket, self.settings.endpoint
        )
    }
}

/// An error and its causes, `: `-separated (reqwest's own message omits the cause).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// CRC32C as the JSON API shows it: base64 of the big-endian 4 bytes.
fn crc_base64(crc: u32) -> String {
    crate::crc32c_base64(crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_variables() {
        let emulator = GcsApiSettings::from_vars("b", Some("127.0.0.1:4443".into()), false);
        assert_eq!(emulator.endpoint, "http://127.0.0.1:4443");
        assert!(!emulator.metadata_server, "anonymous");
        let with_metadata =
            GcsApiSettings::from_vars("b", Some("http://127.0.0.1:4443/".into()), true);
        assert_eq!(with_metadata.endpoint, "http://127.0.0.1:4443");
        assert!(with_metadata.metadata_server);
        let production = GcsApiSettings::from_vars("b", None, false);
        assert_eq!(production.endpoint, DEFAULT_GCS_ENDPOINT);
        assert!(
            production.metadata_server,
            "production always has credentials"
        );
    }

    #[test]
    fn crc_and_names_are_encoded_like_the_api() {
        // 0xE3069283 is the standard CRC32C check value of "123456789".
        assert_eq!(crc_base64(0x0000_0000), "AAAAAA==");
        assert_eq!(crc_base64(crc32c::crc32c(b"123456789")), "4waSgw==");
    }
}
