//! Real parts for the pcap-sidecar tests: no mocks.
//!
//! - [`GcsEmulator`]: a `fake-gcs-server` process speaking the GCS JSON API.
//! - [`FuseMount`]: an `rclone mount` of an emulator bucket, standing in for
//!   the Cloud Run GCS volume mount.
//! - [`MetadataServer`]: a loopback HTTP server speaking the GCE metadata protocol.
//! - [`TestNet`]: two network namespaces ("app" and "peer") joined by a veth pair.
//! - [`gvisor`]: gVisor's capture limits (no packet rings, no kernel filters) reproduced
//!   with seccomp.
//! - [`daemon_cli`]: `--version`, `--help` and the first log line of a daemon binary.
//! - Generated traffic: [`rng::Rng`] (deterministic random numbers), [`synth`] (mixed and
//!   HTTP-heavy captures with correct checksums, for pcapd), [`pcapgen`] (captures that
//!   compress like real ones, for the exporter), all written by [`pcapfile::Writer`], the
//!   tests' one pcap writer.
//! - [`tshark`]: capture files read back by tshark, which must find them whole.
//! - Small process helpers: [`ChildGuard`], [`free_port`], [`wait_until`], [`wait_for`], [`run`].
//!
//! Every helper undoes what it did when dropped (kills its processes, unmounts,
//! deletes namespaces and temporary directories), and reports failures as
//! [`Error`] values instead of panicking.

// Assertions for test binaries: a failed check is a test failure, so it panics.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod daemon_cli;
mod error;
mod fuse;
mod gcs;
pub mod gvisor;
mod metadata;
mod netns;
pub mod pcapfile;
pub mod pcapgen;
pub mod rng;
pub mod synth;
pub mod tshark;

pub use error::{Error, Result};
pub use fuse::{is_mounted, mount_fstype, FuseMount};
pub use gcs::{GcsEmulator, ObjectInfo, FAKE_GCS_SERVER_ENV};
pub use metadata::{MetadataConfig, MetadataServer};
pub use netns::{enter_path, Netns, TestNet, INTERFACE, IPV4_PREFIX, IPV6_PREFIX};

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process can take it before the
/// program it is meant for binds it. Use it only where that collision is detected and
/// retried (as [`GcsEmulator::start`] does); for "nothing answers here" use [`ClosedPort`],
/// and for a server that can pick its own port, let it and read the port back.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the address of a free-port probe", e))?;
    Ok(addr.port())
}

/// A TCP port on 127.0.0.1 that refuses connections and stays reserved while this lives.
///
/// It holds a socket bound to the port that never listens: a connection gets a reset (as to
/// a closed port on a laptop), and no other process can bind the port meanwhile, so a
/// listener cannot appear there by chance.
#[derive(Debug)]
pub struct ClosedPort {
    _socket: std::os::fd::OwnedFd,
    port: u16,
}

impl ClosedPort {
    /// Reserves a port chosen by the kernel.
    pub fn new() -> Result<ClosedPort> {
        use nix::sys::socket::{
            bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
        };
        let socket = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("creating a socket to reserve a port", e.into()))?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            &SockaddrIn::new(127, 0, 0, 1, 0),
        )
        .map_err(|e| Error::io("binding 127.0.0.1:0 to reserve a port", e.into()))?;
        let address: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&socket))
            .map_err(|e| Error::io("reading the address of a reserved port", e.into()))?;
        Ok(ClosedPort {
            _socket: socket,
            port: address.port(),
        })
    }

    /// The reserved port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The whole lines of a log file a daemon is still appending to: a last line without its
/// newline is still being written, and is left for the next read.
pub fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let end = text.rfind('\n').map_or(0, |i| i + 1);
    text[..end].lines()
}

/// Polls `condition` every `poll` until it returns `true` or `timeout` elapses.
///
/// The condition is always evaluated at least once, and once more at the deadline,
/// so a slow machine does not turn "just in time" into a failure.
pub fn wait_until<F>(timeout: Duration, poll: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> bool,
{
    wait_for("condition", timeout, poll, || {
        if condition() {
            Ok(())
        } else {
            Err("condition still false".to_string())
        }
    })
}

/// Polls `probe` until it returns `Ok(value)`, and returns that value.
///
/// `probe` returns `Err(state)` while not ready; the last state is put in the
/// [`Error::Timeout`] so a failure says how far things got. `what` names the wait.
pub fn wait_for<T, F>(what: &str, timeout: Duration, poll: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> std::result::Result<T, String>,
{
    let start = Instant::now();
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                waited: elapsed,
                detail: last,
            });
        }
        std::thread::sleep(poll.min(timeout - elapsed));
    }
}

/// Runs a command to completion and fails unless it exits successfully.
///
/// Stdout and stderr are captured; stderr is included in the error.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let line = command_line(cmd);
    let output = cmd
        .output()
        .map_err(|e| Error::io(format!("running `{line}`"), e))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command {
            command: line,
            detail: format!(
                "{}; stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// Renders a command as a shell-like line for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Whether the current process runs with effective user id 0.
///
/// Reads `/proc/self/status` because the crate forbids `unsafe` (no `geteuid`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Checks that network namespaces can be created here (root and `ip` present).
///
/// Returns [`Error::Unsupported`] with the reason otherwise, so tests can print
/// a clear skip message.
pub fn check_netns() -> Result<()> {
    if !is_root() {
        return Err(Error::Unsupported("network namespaces need root".into()));
    }
    require_program("ip", &["-V"], "iproute2")
}

/// Checks that FUSE mounts with rclone can be made here (root, `/dev/fuse`,
/// `rclone`, `fusermount3`).
pub fn check_fuse() -> Result<()> {
    if !is_root() {
        return Err(Error::Unsupported("FUSE mounts need root".into()));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::Unsupported("/dev/fuse is missing".into()));
    }
    require_program("rclone", &["version"], "rclone")?;
    require_program("fusermount3", &["-V"], "fuse3")
}

fn require_program(program: &str, args: &[&str], package: &str) -> Result<()> {
    let ok = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "`{program}` is not runnable (install the `{package}` package)"
        )))
    }
}

/// Reads the last `max` bytes of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Owns a spawned child process and kills and reaps it when dropped.
///
/// Prevents stray servers and zombies when a test fails half-way.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    // Set once the child is known to have exited, so Drop does not signal a
    // pid the kernel may already have recycled.
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Takes ownership of an already spawned child.
    pub fn new(child: Child) -> Self {
        ChildGuard {
            child,
            status: None,
        }
    }

    /// Spawns `cmd` and guards the resulting child.
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("spawning `{}`", command_line(cmd)), e))?;
        Ok(Self::new(child))
    }

    /// The process id of the child.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Mutable access to the child, e.g. to take its stdin or stdout pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Returns the exit status if the child has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("checking child {}", self.child.id()), e))?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the child to exit on its own.
    ///
    /// Returns `Ok(None)` if it is still running at the deadline.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the child (SIGKILL) if it is still running and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // An error here means it exited in the meantime; `wait` below settles it.
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("reaping child {}", self.child.id()), e))?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
