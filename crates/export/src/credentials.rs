//! Application Default Credentials for the API upload, in the order Google's client libraries
//! use: the file `GOOGLE_APPLICATION_CREDENTIALS` names (a service-account key, an
//! external-account configuration for workload identity federation, or user credentials),
//! then gcloud's application-default file (`gcloud auth application-default login`), then the
//! metadata server. With `STORAGE_EMULATOR_HOST` and none of them, requests are anonymous.
//!
//! Finding the file is done here (so the start-up log can say which source is used); reading
//! it, signing the JWT assertion, exchanging it (or the refresh token, or the external
//! subject token) for an access token, asking the metadata server, and caching the token is
//! `gcloud-auth`'s work.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gcloud_auth::credentials::CredentialsFile;
use gcloud_auth::project::{
    create_token_source_from_credentials, create_token_source_from_project, Config, Project,
    ProjectInfo,
};
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

/// The metadata server gcloud-auth asks for tokens: `GCE_METADATA_HOST` of this process's
/// environment, else the link-local address. gcloud-auth reads the variable itself (as
/// Google's own libraries do), so a host given any other way would not be the one used.
pub fn metadata_host() -> String {
    std::env::var(gcloud_metadata::METADATA_HOST_ENV)
        .unwrap_or_else(|_| gcloud_metadata::METADATA_IP.to_string())
}

/// Where the tokens come from.
enum Origin {
    File(Box<CredentialsFile>),
    MetadataServer,
}

/// Application Default Credentials as found: what the log may say about them, and the
/// `gcloud-auth` token source made from them on first use (so a token endpoint that is down
/// delays exports instead of stopping start-up).
pub(crate) struct Credentials {
    origin: Origin,
    description: String,
    source: Mutex<Option<Box<dyn gcloud_auth::token_source::TokenSource>>>,
}

/// Never the key or a token: `Debug` output can end up in logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads and checks a credentials file (a missing or malformed file stops start-up,
    /// naming it).
    pub(crate) async fn from_file(found: &CredentialsFileRef) -> Result<Self, ExportError> {
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
            "external_account" => {
                let mut who = format!(
                    "external account (workload identity federation, audience {}",
                    file.audience.as_deref().unwrap_or("unset")
                );
                // The service account the federated token is exchanged for, when there is one.
                if let Some(url) = &file.service_account_impersonation_url {
                    who.push_str(", impersonating ");
                    who.push_str(impersonated_account(url));
                }
                who.push(')');
                who
            }
            other => return Err(bad(format!("credential type '{other}' is not supported"))),
        };
        Ok(Credentials {
            description: format!("{who} from {}", found.describe_origin()),
            origin: Origin::File(Box::new(file)),
            source: Mutex::new(None),
        })
    }

    /// The default service account of the metadata server at [`metadata_host`].
    pub(crate) fn metadata_server() -> Self {
        Credentials {
            description: format!(
                "the metadata server's default service account ({})",
                metadata_host()
            ),
            origin: Origin::MetadataServer,
            source: Mutex::new(None),
        }
    }

    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    /// `Bearer <token>`: `gcloud-auth` caches a token until shortly before it expires.
    pub(crate) async fn authorization(&self) -> Result<String, ExportError> {
        let failed = |e: gcloud_auth::error::Error| ExportError::Credentials {
            detail: format!("{}: {e}", self.description),
        };
        let mut source = self.source.lock().await;
        let made = match source.as_mut() {
            Some(made) => made,
            None => {
                let scopes = [SCOPE];
                let config = Config::default().with_scopes(&scopes);
                let made = match &self.origin {
                    Origin::File(file) => create_token_source_from_credentials(file, &config).await,
                    Origin::MetadataServer => {
                        let project = Project::FromMetadataServer(ProjectInfo { project_id: None });
                        create_token_source_from_project(&project, config).await
                    }
                }
                .map_err(failed)?;
                source.insert(made)
            }
        };
        let token = made.token().await.map_err(failed)?;
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

/// `…/serviceAccounts/<email>:generateAccessToken` → `<email>` (the whole URL if it has
/// another shape).
fn impersonated_account(url: &str) -> &str {
    url.rsplit_once("/serviceAccounts/")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map_or(url, |(email, _)| email)
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
pub(crate) struct CredentialsTokenSource(pub(crate) Arc<Credentials>);

#[async_trait::async_trait]
impl token_source::TokenSource for CredentialsTokenSource {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .authorization()
            .await
            .map_err(|e| e.to_string().into())
    }
}

impl token_source::TokenSourceProvider for CredentialsTokenSource {
    fn token_source(&self) -> Arc<dyn token_source::TokenSource> {
        Arc::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn load(json: serde_json::Value) -> Credentials {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let found = CredentialsFileRef {
            origin: FileOrigin::EnvironmentVariable,
            path,
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Credentials::from_file(&found))
            .unwrap()
    }

    #[test]
    fn an_external_account_names_its_pool_and_the_account_it_impersonates() {
        let credentials = load(serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "https://sts.googleapis.com/v1/token",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/up@p.iam.gserviceaccount.com:generateAccessToken",
            "credential_source": {"file": "/var/run/token"},
        }));
        assert!(
            credentials.description().starts_with(
                "external account (workload identity federation, audience //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q, impersonating up@p.iam.gserviceaccount.com) from GOOGLE_APPLICATION_CREDENTIALS="
            ),
            "{}",
            credentials.description()
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let credentials = load(serde_json::json!({
            "type": "authorized_user",
            "client_id": "id.apps.googleusercontent.com",
            "client_secret": "secret-1",
            "refresh_token": "1//refresh-secret",
        }));
        let text = format!("{:?}", CredentialsTokenSource(Arc::new(credentials)));
        assert!(text.contains("user credentials"), "{text}");
        assert!(
            !text.contains("secret-1") && !text.contains("refresh-secret"),
            "{text}"
        );
    }
}
