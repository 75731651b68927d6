//! Where is this sidecar running? Project, region and instance from the metadata server,
//! service and revision from Cloud Run's `K_SERVICE` / `K_REVISION`, turned into the bucket
//! path of CONTRACT §5.
//!
//! Every metadata call has a timeout and a bounded number of retries; a value that cannot be
//! had is logged and left out, and [`BucketPath`] puts a placeholder in its segment. Outside
//! any cloud (no metadata server) discovery still succeeds, with a warning.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sidecar_core::bucket::{BucketPath, PathParts};
use sidecar_core::log::{self, Severity};

/// Host of the metadata server when `GCE_METADATA_HOST` is not set.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// How metadata is fetched.
#[derive(Debug, Clone)]
pub struct MetadataClient {
    host: String,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
}

impl MetadataClient {
    /// A client for `host` (`host[:port]`, as in `GCE_METADATA_HOST`).
    pub fn new(host: &str) -> Self {
        MetadataClient {
            host: host.to_string(),
            timeout: Duration::from_secs(1),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }

    /// The client the environment asks for: `GCE_METADATA_HOST` or the well-known name.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let host = env("GCE_METADATA_HOST")
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string());
        Self::new(&host)
    }

    /// Changes the per-request timeout and the number of attempts (at least 1).
    pub fn with_retries(mut self, timeout: Duration, attempts: u32, backoff: Duration) -> Self {
        self.timeout = timeout;
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// `GET /computeMetadata/v1/<path>`, trimmed. Retries server errors and connection
    /// failures; a 404 is final (the value does not exist here).
    pub fn get(&self, path: &str) -> Result<String, String> {
        let url = format!("http://{}/computeMetadata/v1/{}", self.host, path);
        let agent = ureq::AgentBuilder::new()
            .timeout(self.timeout)
            .redirects(0)
            .build();
        let mut last_error = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(self.backoff * attempt);
            }
            match agent.get(&url).set("Metadata-Flavor", "Google").call() {
                Ok(response) => {
                    if response.header("Metadata-Flavor") != Some("Google") {
                        return Err(format!("{url}: answer without Metadata-Flavor: Google"));
                    }
                    return response
                        .into_string()
                        .map(|body| body.trim().to_string())
                        .map_err(|e| format!("{url}: {e}"));
                }
                Err(ureq::Error::Status(404, _)) => return Err(format!("{url}: not found")),
                Err(ureq::Error::Status(code, _)) => last_error = format!("{url}: HTTP {code}"),
                // ureq's transport errors already name the URL.
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(last_error)
    }
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovered {
    /// Project id.
    pub project: Option<String>,
    /// Region (short name, e.g. `us-central1`).
    pub region: Option<String>,
    /// Instance id.
    pub instance: Option<String>,
    /// Service (`K_SERVICE`).
    pub service: Option<String>,
    /// Revision (`K_REVISION`).
    pub revision: Option<String>,
    /// When this instance started (to the second).
    pub startup: DateTime<Utc>,
}

impl Discovered {
    /// The bucket path of this instance's files.
    pub fn bucket_path(&self, prefix: Option<&str>) -> BucketPath {
        BucketPath::new(&PathParts {
            prefix: prefix.map(str::to_string),
            project: self.project.clone(),
            service: self.service.clone(),
            region: self.region.clone(),
            revision: self.revision.clone(),
            startup: self.startup,
            instance: self.instance.clone(),
        })
    }
}

#[derive(Serialize)]
struct Missing<'a> {
    value: &'a str,
    reason: &'a str,
}

/// The last `/`-separated segment (`projects/1/regions/us-central1` → `us-central1`).
fn last_segment(value: &str) -> String {
    value.rsplit('/').next().unwrap_or(value).to_string()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Discovers this instance. `env` reads environment variables (injectable for tests).
pub fn discover(env: &dyn Fn(&str) -> Option<String>, metadata: &MetadataClient) -> Discovered {
    let startup = Utc::now().trunc_subsecs(0);
    let mut missing = Vec::new();
    let mut fetch = |what: &'static str, path: &str| match metadata.get(path) {
        Ok(value) if !value.is_empty() => Some(value),
        Ok(_) => {
            missing.push((what, "empty answer".to_string()));
            None
        }
        Err(reason) => {
            missing.push((what, reason));
            None
        }
    };
    // The app's own project settings win: they are what the user sees in the console.
    let project = non_empty(env("GOOGLE_CLOUD_PROJECT"))
        .or_else(|| non_empty(env("PROJECT_ID")))
        .or_else(|| fetch("project", "project/project-id"));
    let region = fetch("region", "instance/region").map(|r| last_segment(&r));
    let instance = fetch("instance", "instance/id");
    let discovered = Discovered {
        project,
        region,
        instance,
        service: non_empty(env("K_SERVICE")),
        revision: non_empty(env("K_REVISION")),
        startup,
    };
    for (what, reason) in &missing {
        log::event(
            Severity::Warning,
            &format!("metadata: no {what}; using a placeholder in the bucket path"),
            &Missing {
                value: what,
                reason,
            },
        );
    }
    for (what, value) in [
        ("service", &discovered.service),
        ("revision", &discovered.revision),
    ] {
        if value.is_none() {
            log::event(
                Severity::Warning,
                &format!("no {what} (K_SERVICE / K_REVISION unset); using a placeholder"),
                &Missing {
                    value: what,
                    reason: "unset",
                },
            );
        }
    }
    discovered
}
