//! Where is this sidecar running? Project, region and instance from the metadata server,
//! service and revision from Cloud Run's `K_SERVICE` / `K_REVISION`, turned into the bucket
//! path (`sidecar_core::bucket`; README, "Find, download and merge the files").
//!
//! Every metadata call has a timeout and a bounded number of retries; a value that cannot be
//! had is logged and left out, and [`BucketPath`] puts a placeholder in its segment. Outside
//! any cloud (no metadata server) discovery still succeeds, with a warning.

use std::collections::BTreeMap;
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

/// The Docker socket mounted into the sidecar on App Engine Flex (`-v
/// /var/run/docker.sock:/docker.sock`); `DOCKER_HOST=unix:///path` overrides it.
pub const DEFAULT_DOCKER_SOCKET: &str = "/docker.sock";
/// The app container of an App Engine Flex VM.
pub const GAE_APP_CONTAINER: &str = "gaeapp";

/// The Docker socket to use: `DOCKER_HOST` (when it is a `unix://` address) or the default.
pub fn docker_socket(env: &dyn Fn(&str) -> Option<String>) -> std::path::PathBuf {
    env("DOCKER_HOST")
        .and_then(|host| host.strip_prefix("unix://").map(str::to_string))
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.to_string())
        .into()
}

/// The app container's `GAE_*`, `GOOGLE_*` and `GCLOUD_*` variables, read from the Docker
/// Engine API (`GET /containers/<name>/json`) over its unix socket.
pub fn app_container_env(
    socket: &std::path::Path,
    container: &str,
) -> Result<BTreeMap<String, String>, String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let timeout = Some(Duration::from_secs(5));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    // HTTP/1.0: the engine closes the connection after the body, so no chunked decoding.
    let request = format!("GET /containers/{container}/json HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("Docker API request failed: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("Docker API answer failed: {e}"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("Docker API answer without headers")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!(
            "Docker API answered {status} for container {container}"
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&answer[split + 4..])
        .map_err(|e| format!("Docker API answer is not JSON: {e}"))?;
    let mut vars = BTreeMap::new();
    for entry in body["Config"]["Env"].as_array().into_iter().flatten() {
        let Some((key, value)) = entry.as_str().and_then(|e| e.split_once('=')) else {
            continue;
        };
        if ["GAE_", "GOOGLE_", "GCLOUD_"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            vars.insert(key.to_string(), value.to_string());
        }
    }
    Ok(vars)
}

#[derive(Serialize)]
struct AppEngineApp<'a> {
    container: &'a str,
    variables: Vec<&'a str>,
}

/// App Engine Flex (`PCAP_GAE=true`): the app's own variables (through the Docker socket)
/// give project, service (`GAE_SERVICE`) and version (`GAE_VERSION`); the metadata server
/// gives the zone (used as the region, as the original did) and the VM's instance id, joined
/// with `GAE_INSTANCE`. Falls back to [`discover`]'s sources for what is missing.
pub fn discover_app_engine(
    env: &dyn Fn(&str) -> Option<String>,
    metadata: &MetadataClient,
    socket: &std::path::Path,
) -> Discovered {
    let app = match app_container_env(socket, GAE_APP_CONTAINER) {
        Ok(vars) => {
            log::event(
                Severity::Info,
                "App Engine Flex: read the app container's environment",
                &AppEngineApp {
                    container: GAE_APP_CONTAINER,
                    variables: vars.keys().map(String::as_str).collect(),
                },
            );
            vars
        }
        Err(reason) => {
            log::event(
                Severity::Warning,
                "App Engine Flex: cannot read the app container's environment",
                &Missing {
                    value: "app environment",
                    reason: &reason,
                },
            );
            BTreeMap::new()
        }
    };
    let merged = |name: &str| app.get(name).cloned().or_else(|| env(name));
    let mut found = discover(&merged, metadata);
    found.service = non_empty(merged("GAE_SERVICE")).or(found.service);
    found.revision = non_empty(merged("GAE_VERSION")).or(found.revision);
    if let Ok(zone) = metadata.get("instance/zone") {
        found.region = Some(last_segment(&zone));
    }
    if let Some(gae_instance) = non_empty(merged("GAE_INSTANCE")) {
        found.instance = Some(match found.instance.take() {
            Some(vm) => format!("{vm}-{gae_instance}"),
            None => gae_instance,
        });
    }
    found
}
