//! A loopback HTTP server speaking the GCE/Cloud Run metadata protocol.
//!
//! Point clients at it with `GCE_METADATA_HOST=<host()>`. Like the real server it
//! insists on `Metadata-Flavor: Google`, and it can be told to fail a path a
//! number of times so retry logic can be exercised, counting every request.

use crate::{Error, Netns, Result};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use tiny_http::{Header, Request, Response, Server};

/// Values served by [`MetadataServer`]; `Default` gives realistic Cloud Run values.
///
/// Region and zone are short names; they are served in the real long form
/// `projects/<numeric_project_id>/regions/<region>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataConfig {
    /// `project/project-id`.
    pub project_id: String,
    /// `project/numeric-project-id`.
    pub numeric_project_id: String,
    /// Short region name, e.g. `us-central1`.
    pub region: String,
    /// Short zone name, e.g. `us-central1-a`.
    pub zone: String,
    /// `instance/id` (Cloud Run uses long hex ids).
    pub instance_id: String,
    /// `instance/service-accounts/default/email`.
    pub service_account_email: String,
    /// The `access_token` in `instance/service-accounts/default/token`.
    pub access_token: String,
    /// The `expires_in` (seconds) in the token answer.
    pub token_expires_in: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            project_id: "test-project".into(),
            numeric_project_id: "123456789".into(),
            region: "us-central1".into(),
            zone: "us-central1-a".into(),
            instance_id: "00f46b92856196d6e7c02cf2e57e5a4b2d1a0d5c3e5b7a9f1e2d3c4b5a6978f0a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
            service_account_email: "123456789-compute@developer.gserviceaccount.com".into(),
            access_token: "ya29.testbed-access-token".into(),
            token_expires_in: 3599,
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    content_type: &'static str,
    body: String,
}

#[derive(Debug, Default)]
struct State {
    routes: HashMap<String, Route>,
    requests: HashMap<String, usize>,
    failures: HashMap<String, usize>,
}

/// A running metadata server on `127.0.0.1:<random port>` (of the host, or of a namespace
/// with [`MetadataServer::start_in`]); stopped on drop.
pub struct MetadataServer {
    addr: SocketAddr,
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
}

impl MetadataServer {
    /// Path of the project id.
    pub const PROJECT_ID: &'static str = "/computeMetadata/v1/project/project-id";
    /// Path of the numeric project id.
    pub const NUMERIC_PROJECT_ID: &'static str = "/computeMetadata/v1/project/numeric-project-id";
    /// Path of the region (`projects/N/regions/R`).
    pub const REGION: &'static str = "/computeMetadata/v1/instance/region";
    /// Path of the zone (`projects/N/zones/Z`).
    pub const ZONE: &'static str = "/computeMetadata/v1/instance/zone";
    /// Path of the instance id.
    pub const INSTANCE_ID: &'static str = "/computeMetadata/v1/instance/id";
    /// Path of the default service account's access token (JSON).
    pub const TOKEN: &'static str = "/computeMetadata/v1/instance/service-accounts/default/token";
    /// Path of the default service account's email.
    pub const EMAIL: &'static str = "/computeMetadata/v1/instance/service-accounts/default/email";

    /// Starts a server with [`MetadataConfig::default`] values.
    pub fn start() -> Result<MetadataServer> {
        Self::start_with(MetadataConfig::default())
    }

    /// Starts a server serving `config`.
    pub fn start_with(config: MetadataConfig) -> Result<MetadataServer> {
        let server = Server::http("127.0.0.1:0").map_err(|e| {
            Error::io(
                "starting the metadata server on 127.0.0.1",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Self::serve(server, config)
    }

    /// Starts a server serving `config` on `127.0.0.1:<random port>` inside `netns`, so
    /// processes in that namespace reach it with `GCE_METADATA_HOST=<host()>` (and the host
    /// cannot). The listener is bound from a thread that joined the namespace; the namespace
    /// must outlive the server.
    pub fn start_in(netns: &Netns, config: MetadataConfig) -> Result<MetadataServer> {
        let listener = netns
            .enter(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?
            .map_err(|e| {
                Error::io(
                    format!("binding 127.0.0.1:0 inside netns {}", netns.name()),
                    e,
                )
            })?;
        let server = Server::from_listener(listener, None).map_err(|e| {
            Error::io(
                format!("starting the metadata server inside netns {}", netns.name()),
                std::io::Error::other(e.to_string()),
            )
        })?;
        Self::serve(server, config)
    }

    fn serve(server: Server, config: MetadataConfig) -> Result<MetadataServer> {
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Protocol("metadata server has no IP address".into()))?;
        let server = Arc::new(server);
        let state = Arc::new(Mutex::new(State {
            routes: routes(&config),
            ..State::default()
        }));
        let thread = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("testbed-metadata".into())
                // Ends when Drop calls `unblock()`.
                .spawn(move || {
                    for request in server.incoming_requests() {
                        handle(&state, request);
                    }
                })
                .map_err(|e| Error::io("spawning the metadata server thread", e))?
        };
        Ok(MetadataServer {
            addr,
            server,
            state,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT`: the value for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves `value` as `application/text` at `path` (added or replaced).
    pub fn set(&self, path: &str, value: impl Into<String>) {
        self.set_route(path, "application/text", value.into());
    }

    /// Serves `json` as `application/json` at `path` (added or replaced).
    pub fn set_json(&self, path: &str, json: &serde_json::Value) {
        self.set_route(path, "application/json", json.to_string());
    }

    /// Stops serving `path`: it answers 404 from now on.
    pub fn remove(&self, path: &str) {
        self.lock().routes.remove(path);
    }

    /// Makes the next `n` requests to `path` answer 503 (counted as usual).
    pub fn fail_next(&self, path: &str, n: usize) {
        self.lock().failures.insert(path.to_string(), n);
    }

    /// How many requests reached `path` (query string ignored), whatever their outcome.
    pub fn requests(&self, path: &str) -> usize {
        self.lock().requests.get(path).copied().unwrap_or(0)
    }

    /// How many requests reached the server in total.
    pub fn total_requests(&self) -> usize {
        self.lock().requests.values().sum()
    }

    fn set_route(&self, path: &str, content_type: &'static str, body: String) {
        self.lock()
            .routes
            .insert(path.to_string(), Route { content_type, body });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl std::fmt::Debug for MetadataServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// A panic while holding the lock cannot leave `State` inconsistent, so recover.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn routes(c: &MetadataConfig) -> HashMap<String, Route> {
    let text = |body: String| Route {
        content_type: "application/text",
        body,
    };
    let token = serde_json::json!({
        "access_token": c.access_token,
        "expires_in": c.token_expires_in,
        "token_type": "Bearer",
    });
    HashMap::from([
        (
            MetadataServer::PROJECT_ID.into(),
            text(c.project_id.clone()),
        ),
        (
            MetadataServer::NUMERIC_PROJECT_ID.into(),
            text(c.numeric_project_id.clone()),
        ),
        (
            MetadataServer::REGION.into(),
            text(format!(
                "projects/{}/regions/{}",
                c.numeric_project_id, c.region
            )),
        ),
        (
            MetadataServer::ZONE.into(),
            text(format!(
                "projects/{}/zones/{}",
                c.numeric_project_id, c.zone
            )),
        ),
        (
            MetadataServer::INSTANCE_ID.into(),
            text(c.instance_id.clone()),
        ),
        (
            MetadataServer::EMAIL.into(),
            text(c.service_account_email.clone()),
        ),
        (
            MetadataServer::TOKEN.into(),
            Route {
                content_type: "application/json",
                body: token.to_string(),
            },
        ),
    ])
}

fn handle(state: &Mutex<State>, request: Request) {
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    };
    let flavor_ok = header("Metadata-Flavor") == Some("Google");
    // The real server refuses proxied requests, to stop SSRF through proxies.
    let proxied = header("X-Forwarded-For").is_some();
    let (status, content_type, body) = {
        let mut state = lock(state);
        *state.requests.entry(path.clone()).or_default() += 1;
        if !flavor_ok || proxied {
            (
                403,
                "text/html",
                "Missing Metadata-Flavor:Google header.\n".to_string(),
            )
        } else if let Some(left) = state.failures.get_mut(&path).filter(|n| **n > 0) {
            *left -= 1;
            (
                503,
                "text/html",
                "Service Unavailable (injected by testbed)\n".to_string(),
            )
        } else if let Some(route) = state.routes.get(&path) {
            (200, route.content_type, route.body.clone())
        } else {
            (404, "text/html", format!("{path} not found\n"))
        }
    };
    let mut response = Response::from_string(body).with_status_code(status);
    for (name, value) in [
        ("Metadata-Flavor", "Google"),
        ("Content-Type", content_type),
    ] {
        if let Ok(h) = Header::from_bytes(name, value) {
            response.add_header(h);
        }
    }
    // The client may have gone away; nothing useful to do about it.
    let _ = request.respond(response);
}
