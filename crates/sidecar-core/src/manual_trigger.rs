//! The manual trigger: its HTTP endpoint, `POST /trigger?reason=…` on 127.0.0.1 and ::1
//! only, and the reason file through which tcpdumpw hands a trigger's reason to every
//! interface's pcapd along with SIGUSR2 (one endpoint per port, one recorder per interface).
//!
//! Whoever hosts the endpoint (a standalone pcapd, or tcpdumpw for all its pcapds) says what a
//! trigger does through [`Host`]. On Cloud Run the app container shares the sidecar's localhost, so it can call it; nothing
//! outside the instance can. A caller whose address is not loopback is refused (403) even if
//! a listener ever saw one. One request per connection, read with a deadline and a size cap:
//! a slow or hostile local client cannot hold the endpoint or grow memory.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::log::Severity;

/// A log line's fields.
pub type Fields = serde_json::Value;

/// What hosts the endpoint: fires the trigger, writes the endpoint's log lines.
pub trait Host: Send + Sync {
    /// A manual trigger with this reason (decoded, printable ASCII, bounded).
    fn trigger(&self, reason: &str);
    /// One log line of the endpoint.
    fn log(&self, severity: Severity, message: &str, fields: &Fields) {
        crate::log::event(severity, message, fields);
    }
}

/// The reason file in `PCAP_RUN_DIR`: written by tcpdumpw just before it sends SIGUSR2 to
/// its pcapds, read by each pcapd on SIGUSR2.
pub const REASON_FILE: &str = "manual-trigger.json";
/// A reason file older than this is not the current signal's (a leftover).
pub const REASON_MAX_AGE: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
struct ReasonFile {
    reason: String,
    at_ns: u64,
}

/// Writes `reason` to the reason file atomically (a temporary name, then rename): a pcapd
/// reading it concurrently sees the old file or the new one, never part of one.
pub fn write_reason(run_dir: &Path, reason: &str) -> io::Result<()> {
    let body = serde_json::to_vec(&ReasonFile {
        reason: bounded(reason),
        at_ns: now_ns(),
    })
    .map_err(io::Error::other)?;
    // A name of its own per write: two triggers at once (IPv4 and IPv6 listeners) never
    // write into the same temporary file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = run_dir.join(format!(
        ".{REASON_FILE}.{}.{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(run_dir)?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, run_dir.join(REASON_FILE))
}

/// Removes the reason file: the next SIGUSR2 is a plain signal.
pub fn clear_reason(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(REASON_FILE));
}

/// The reason in the reason file, if there is one written within [`REASON_MAX_AGE`].
pub fn read_reason(run_dir: &Path) -> Option<String> {
    let body = std::fs::read(run_dir.join(REASON_FILE)).ok()?;
    if body.len() > MAX_REQUEST {
        return None;
    }
    let file: ReasonFile = serde_json::from_slice(&body).ok()?;
    let age = now_ns().checked_sub(file.at_ns)?;
    (age <= REASON_MAX_AGE.as_nanos() as u64).then(|| bounded(&file.reason))
}

fn bounded(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| (' '..='~').contains(c))
        .take(MAX_REASON)
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Largest request read.
const MAX_REQUEST: usize = 8 * 1024;
/// Longest reason kept.
const MAX_REASON: usize = 200;
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// The running endpoint; stopped on drop.
pub struct Endpoint {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Serialize)]
struct ListeningEvent {
    addresses: Vec<String>,
}

#[derive(Serialize)]
struct RefusedEvent {
    peer: String,
}

/// Starts listening on `127.0.0.1:port` (required) and `[::1]:port` (when the host has IPv6).
pub fn start(port: u16, host: Arc<dyn Host>) -> io::Result<Endpoint> {
    let mut listeners = vec![TcpListener::bind((Ipv4Addr::LOCALHOST, port))?];
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(listener) => listeners.push(listener),
        Err(error) => host.log(
            Severity::Info,
            &format!("manual trigger endpoint: not listening on [::1]:{port}: {error}"),
            &serde_json::Value::Null,
        ),
    }
    let addresses = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let (stop, host) = (Arc::clone(&stop), Arc::clone(&host));
        threads.push(
            std::thread::Builder::new()
                .name("trigger-endpoint".into())
                .spawn(move || serve(&listener, &stop, host.as_ref()))?,
        );
    }
    host.log(
        Severity::Info,
        "manual trigger endpoint listening: POST /trigger?reason=...",
        &serde_json::to_value(ListeningEvent { addresses }).unwrap_or_default(),
    );
    Ok(Endpoint { stop, threads })
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, host: &dyn Host) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !peer.ip().to_canonical().is_loopback() {
                    host.log(
                        Severity::Warning,
                        "manual trigger endpoint: refused a caller that is not on loopback",
                        &serde_json::to_value(RefusedEvent {
                            peer: peer.to_string(),
                        })
                        .unwrap_or_default(),
                    );
                    let _ = respond(&stream, 403, "only loopback callers may trigger");
                    continue;
                }
                let _ = handle(stream, host);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn handle(mut stream: TcpStream, host: &dyn Host) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request
        .split(|b| *b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("")
        .trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/trigger" {
        return respond(&stream, 404, "not found: POST /trigger?reason=...");
    }
    if method != "POST" {
        return respond(&stream, 405, "use POST");
    }
    host.trigger(&reason(query));
    respond(&stream, 202, "triggered")
}

/// The `reason` parameter, percent-decoded, printable ASCII only, at most [`MAX_REASON`].
fn reason(query: &str) -> String {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("reason="))
        .unwrap_or("");
    let bytes = raw.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < MAX_REASON {
        let c = match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                i += 2;
                u8::from_str_radix(hex, 16).unwrap_or(b'?')
            }
            b'+' => b' ',
            b => b,
        };
        if (0x20..0x7f).contains(&c) {
            out.push(c as char);
        }
        i += 1;
    }
    out
}

fn respond(mut stream: &TcpStream, status: u16, text: &str) -> io::Result<()> {
    let phrase = match status {
        202 => "Accepted",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let body = format!("{text}\n");
    write!(
        stream,
        "HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_decoded_and_bounded() {
        assert_eq!(reason("reason=deploy+v2%21&x=1"), "deploy v2!");
        assert_eq!(reason("x=1"), "");
        assert_eq!(reason("reason=%0a%41%4"), "A%4");
        assert_eq!(
            reason(&format!("reason={}", "a".repeat(500))).len(),
            MAX_REASON
        );
    }

    #[test]
    fn the_reason_file_is_read_back_while_recent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_reason(dir.path()), None);
        write_reason(dir.path(), "deploy\nv2").unwrap();
        assert_eq!(read_reason(dir.path()).as_deref(), Some("deployv2"));
        // Only the file itself is left: the temporary name was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let stale = serde_json::to_vec(&ReasonFile {
            reason: "old".into(),
            at_ns: now_ns() - REASON_MAX_AGE.as_nanos() as u64 - 1,
        })
        .unwrap();
        std::fs::write(dir.path().join(REASON_FILE), stale).unwrap();
        assert_eq!(read_reason(dir.path()), None);
        clear_reason(dir.path());
        assert_eq!(read_reason(dir.path()), None);
    }
}
