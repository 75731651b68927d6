//! The manual trigger's HTTP endpoint: `POST /trigger?reason=…` on 127.0.0.1 and ::1 only.
//! On Cloud Run the app container shares the sidecar's localhost, so it can call it; nothing
//! outside the instance can. A caller whose address is not loopback is refused (403) even if
//! a listener ever saw one. One request per connection, read with a deadline and a size cap:
//! a slow or hostile local client cannot hold the endpoint or grow memory.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sidecar_core::log::Severity;

use crate::recorder::{Fired, TriggerSink};
use crate::LogTarget;

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
pub fn start(port: u16, sink: Arc<TriggerSink>, logs: LogTarget) -> io::Result<Endpoint> {
    let mut listeners = vec![TcpListener::bind((Ipv4Addr::LOCALHOST, port))?];
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(listener) => listeners.push(listener),
        Err(error) => logs.event(
            Severity::Info,
            &format!("manual trigger endpoint: not listening on [::1]:{port}: {error}"),
            &(),
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
        let (stop, sink) = (Arc::clone(&stop), Arc::clone(&sink));
        threads.push(
            std::thread::Builder::new()
                .name("trigger-endpoint".into())
                .spawn(move || serve(&listener, &stop, &sink, logs))?,
        );
    }
    logs.event(
        Severity::Info,
        "manual trigger endpoint listening: POST /trigger?reason=...",
        &ListeningEvent { addresses },
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

fn serve(listener: &TcpListener, stop: &AtomicBool, sink: &TriggerSink, logs: LogTarget) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !peer.ip().to_canonical().is_loopback() {
                    logs.event(
                        Severity::Warning,
                        "manual trigger endpoint: refused a caller that is not on loopback",
                        &RefusedEvent {
                            peer: peer.to_string(),
                        },
                    );
                    let _ = respond(&stream, 403, "only loopback callers may trigger");
                    continue;
                }
                let _ = handle(stream, sink);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn handle(mut stream: TcpStream, sink: &TriggerSink) -> io::Result<()> {
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
    let reason = reason(query);
    sink.fire(Fired {
        kind: "manual".into(),
        detail: format!("reason={reason}"),
        at_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        trace: None,
        flow: None,
    });
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
}
