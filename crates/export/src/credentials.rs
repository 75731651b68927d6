//! Application Default Credentials for the API upload, in the order Google's client libraries
//! use: the file `GOOGLE_APPLICATION_CREDENTIALS` names (a service-account key, an
//! external-account configuration for workload identity federation, or user credentials),
//! then gcloud's application-default file (`gcloud auth application-default login`), then the
//! metadata server. With `STORAGE_EMULATOR_HOST` and none of them, requests are anonymous.
//!
//! Finding the file is done here (so the start-up log can say which source is used); reading
//! it, signing the JWT assertion, exchanging it (or the refresh token, or the external
//! subject token) for an access token and caching that token is `gcloud-auth`'s work.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gcloud_auth::credentials::CredentialsFile;
use gcloud_auth::project::{create_token_source_from_credentials, Config};
use tokio::sync::Mutex;

use crate::ExportError;

/// The OAuth scope of the uploads (create, read metadata, delete a bad upload).
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// Where a credentials file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrigin {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    EnvironmentVariable,
    /// gcloud's `application_default_credentials.json`.
    Gcloud,
}

/// A credentials file and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsFileRef {
    /// How it was found.
    pub origin: FileOrigin,
    /// Its path.
    pub path: PathBuf,
}

impl CredentialsFileRef {
    /// The first file of Application Default Credentials in `env`: the path in
    /// `GOOGLE_APPLICATION_CREDENTIALS` (whether or not it exists: a wrong path must fail,
    /// not fall through to another identity), else gcloud's file when it exists
    /// (`$CLOUDSDK_CONFIG/application_default_credentials.json`, default
    /// `$HOME/.config/gcloud/…`).
    pub fn find(env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
            return Some(CredentialsFileRef {
                origin: FileOrigin::EnvironmentVariable,
                path: PathBuf::from(path),
            });
        }
        let config_dir = var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config/gcloud")))?;
        let path = config_dir.join("application_default_credentials.json");
        path.is_file().then_some(CredentialsFileRef {
            origin: FileOrigin::Gcloud,
            path,
        })
    }
}

/// A loaded credentials file: what the log may say about it, and the token source made
/// from it on first use (so a token endpoint that is down delays exports instead of
/// stopping start-up).
pub(crate) struct FileCredentials {
    file: CredentialsFile,
    description: String,
    source: Mutex<Option<Box<dyn gcloud_auth::token_source::TokenSource>>>,
}

/// Never the key or a token: `Debug` output can end up in logs.
impl std::fmt::Debug for FileCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCredentials")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl FileCredentials {
    /// Reads and checks the file (a missing or malformed file stops start-up, naming it).
    pub(crate) async fn load(found: &CredentialsFileRef) -> Result<Self, ExportError> {
        let bad = |detail: String| ExportError::Credentials {
            detail: format!("{}: {detail}", found.describe_origin()),
        };
        let text = tokio::fs::read_to_string(&found.path)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let file = CredentialsFile::new_from_str(&text)
            .await
            .map_err(|e| bad(format!("not a credentials file: {e}")))?;
        let who = match file.tp.as_str() {
            "service_account" => format!(
                "service-account key of {}",
                file.client_email.as_deref().unwrap_or("an unnamed account")
            ),
            "authorized_user" => "user credentials".to_string(),
            "external_account" => format!(
                "external account (workload identity federation, audience {})",
                file.audience.as_deref().unwrap_or("unset")
            ),
            other => return Err(bad(format!("credential type '{other}' is not supported"))),
        };
        Ok(FileCredentials {
            description: format!("{who} from {}", found.describe_origin()),
            file,
            source: Mutex::new(None),
        })
    }

    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    /// `Bearer <token>`: `gcloud-auth` caches a token until it expires.
    pub(crate) async fn authorization(&self) -> Result<String, ExportError> {
        let mut source = self.source.lock().await;
        let made = match source.as_mut() {
            Some(made) => made,
            None => {
                let scopes = [SCOPE];
                let config = Config::default().with_scopes(&scopes);
                let made = create_token_source_from_credentials(&self.file, &config)
                    .await
                    .map_err(|e| ExportError::Credentials {
                        detail: format!("{}: {e}", self.description),
                    })?;
                source.insert(made)
            }
        };
        let token = made.token().await.map_err(|e| ExportError::Credentials {
            detail: format!("{}: {e}", self.description),
        })?;
        Ok(token.value())
    }

    /// Drops the cached token source after a 401, so the next request gets a new token.
    /// (Skipped while a token is being fetched: that one is new anyway.)
    pub(crate) fn forget(&self) {
        if let Ok(mut source) = self.source.try_lock() {
            *source = None;
        }
    }
}

impl CredentialsFileRef {
    fn describe_origin(&self) -> String {
        match self.origin {
            FileOrigin::EnvironmentVariable => {
                format!("GOOGLE_APPLICATION_CREDENTIALS={}", self.path.display())
            }
            FileOrigin::Gcloud => format!("gcloud's {}", self.path.display()),
        }
    }
}

/// The token source handed to the Cloud Storage client.
#[derive(Debug, Clone)]
pub(crate) struct FileTokenSource(pub(crate) Arc<FileCredentials>);

#[async_trait::async_trait]
impl token_source::TokenSource for FileTokenSource {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .authorization()
            .await
            .map_err(|e| e.to_string().into())
    }
}

impl token_source::TokenSourceProvider for FileTokenSource {
    fn token_source(&self) -> Arc<dyn token_source::TokenSource> {
        Arc::new(self.clone())
    }
}
