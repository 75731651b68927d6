//! Two network namespaces joined by a veth pair, for capturing real traffic.
//!
//! `TestNet` builds "app" (198.51.100.1, 2001:db8:5100::1) and "peer" (198.51.100.2,
//! 2001:db8:5100::2), each with its end of the pair named `eth0` and `lo` up.
//! The veth is created directly inside the namespaces, so the host never
//! sees an interface, address or route: test traffic cannot leak out.

use crate::{command_line, run, wait_for, Error, Result};
use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Name of the veth end inside each namespace.
pub const INTERFACE: &str = "eth0";
/// Prefix length of the IPv4 addresses (TEST-NET-1, RFC 5737).
pub const IPV4_PREFIX: u8 = 24;
/// Prefix length of the IPv6 addresses (documentation range, RFC 3849).
pub const IPV6_PREFIX: u8 = 64;

const LINK_UP_TIMEOUT: Duration = Duration::from_secs(20);

// Makes names unique among TestNets of one process; the pid separates processes.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One named network namespace; deleted (`ip netns del`) on drop.
///
/// Processes started inside are not killed: whoever spawned them owns them
/// (use [`crate::ChildGuard`]).
#[derive(Debug)]
pub struct Netns {
    name: String,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
}

impl Netns {
    fn create(name: String, ipv4: Ipv4Addr, ipv6: Ipv6Addr) -> Result<Netns> {
        run(Command::new("ip").args(["netns", "add", &name]))?;
        Ok(Netns { name, ipv4, ipv6 })
    }

    /// Names the existing network namespace of process `pid` (`ip netns attach`). Dropping
    /// it removes only the name: the namespace lives as long as its processes.
    fn attach(name: String, pid: u32, ipv4: Ipv4Addr, ipv6: Ipv6Addr) -> Result<Netns> {
        run(Command::new("ip").args(["netns", "attach", &name, &pid.to_string()]))?;
        Ok(Netns { name, ipv4, ipv6 })
    }

    /// A namespace of its own with only `lo`, up: a private loopback where a port chosen by
    /// a test cannot be taken by any other process. `tag` makes the name recognizable; pid
    /// and a counter make it unique. Its 198.51.100.1 / 2001:db8:5100::1 addresses are
    /// nominal: there is no `eth0`.
    pub fn loopback_only(tag: &str) -> Result<Netns> {
        crate::check_netns()?;
        let ns = Netns::create(
            format!("{}-lo", unique_base(tag)),
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0x5100, 0, 0, 0, 0, 1),
        )?;
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name, as shown by `ip netns list`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file `ip netns` keeps (`/var/run/netns/<name>`), for `setns(2)`.
    pub fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread that first joins this namespace, and returns its result.
    ///
    /// Sockets created by `f` stay in this namespace when handed back (a socket keeps the
    /// namespace it was created in), so a listener bound here can be served from any thread.
    pub fn enter<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        enter_path(&self.path(), f)
    }

    /// Whether a TCP connection to `addr` from inside this namespace succeeds within `timeout`.
    pub fn can_connect(&self, addr: SocketAddr, timeout: Duration) -> Result<bool> {
        self.enter(|| TcpStream::connect_timeout(&addr, timeout).is_ok())
    }

    /// The interface joining this namespace to the other one (`eth0`).
    pub fn interface(&self) -> &str {
        INTERFACE
    }

    /// The IPv4 address of [`Netns::interface`].
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// The IPv6 address of [`Netns::interface`].
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    /// A command that runs `program` inside this namespace (`ip netns exec`).
    ///
    /// `ip` execs the program, so a spawned child's pid is the program's own.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program args...` inside the namespace to completion; fails on a non-zero exit.
    pub fn run<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.command(program).args(args))
    }

    /// `count` pings from inside the namespace to `to`, 50 ms apart, each answered within
    /// 2 s; fails unless every one is answered.
    pub fn ping(&self, to: &str, count: u32) -> Result<()> {
        self.ping_every(to, count, Duration::from_millis(50))
    }

    /// [`Netns::ping`] with the pings `every` apart.
    pub fn ping_every(&self, to: &str, count: u32, every: Duration) -> Result<()> {
        let count = count.to_string();
        let interval = format!("{}", every.as_secs_f64());
        self.run(
            "ping",
            ["-n", "-q", "-c", &count, "-i", &interval, "-W", "2", to],
        )?;
        Ok(())
    }

    /// Runs `ip -n <name> args...` (configuration without entering the namespace).
    fn ip<const N: usize>(&self, args: [&str; N]) -> Result<Output> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    fn link_is_up(&self) -> std::result::Result<(), String> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-o", "link", "show", "dev", INTERFACE]);
        let line = command_line(&cmd);
        let out = cmd.output().map_err(|e| format!("{line}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("state UP") {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, text.trim()))
        }
    }
}

/// `tb-<tag>-<pid>-<counter>`: recognizable, and unique across processes and calls.
fn unique_base(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(20)
        .collect();
    format!(
        "tb-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` on a fresh thread that has joined the network namespace at `path`.
///
/// Only that thread changes namespace; it ends when `f` returns.
pub fn enter_path<T, F>(path: &Path, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening netns {}", path.display()), e))?;
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::io(format!("setns into {}", path.display()), e.into()))?;
            Ok(f())
        });
        handle
            .join()
            .map_err(|_| Error::Protocol(format!("a thread inside {} panicked", path.display())))?
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Destroying the namespace also destroys the veth end inside it.
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("testbed: could not delete netns {}: {e}", self.name);
        }
    }
}

/// Two namespaces, "app" and "peer", joined by a veth pair; both deleted on drop.
#[derive(Debug)]
pub struct TestNet {
    app: Netns,
    peer: Netns,
}

impl TestNet {
    /// Creates the pair. `tag` (e.g. the test name) makes the namespace names
    /// recognizable; pid and a counter make them unique.
    ///
    /// Returns once both ends are operationally up. Addresses are added with
    /// `nodad`, so IPv6 is usable immediately.
    pub fn new(tag: &str) -> Result<TestNet> {
        Self::build(tag, None)
    }

    /// Like [`TestNet::new`], but "app" is the existing network namespace of process `pid`
    /// (e.g. the infra container of a `podman pod create --network none` pod, which has only
    /// `lo`): it gets the `eth0` end of the pair and the app addresses. The namespace must have
    /// no `eth0` yet. Dropping the `TestNet` deletes the peer namespace (and with it the
    /// pair) and the app namespace's name, not the namespace itself.
    pub fn around_pid(tag: &str, pid: u32) -> Result<TestNet> {
        Self::build(tag, Some(pid))
    }

    fn build(tag: &str, app_pid: Option<u32>) -> Result<TestNet> {
        crate::check_netns()?;
        let base = unique_base(tag);
        // Each Netns deletes itself on drop, so an error below leaks nothing.
        let (app_v4, app_v6) = (
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0x5100, 0, 0, 0, 0, 1),
        );
        let app = match app_pid {
            None => Netns::create(format!("{base}-app"), app_v4, app_v6)?,
            Some(pid) => Netns::attach(format!("{base}-app"), pid, app_v4, app_v6)?,
        };
        let peer = Netns::create(
            format!("{base}-peer"),
            Ipv4Addr::new(198, 51, 100, 2),
            Ipv6Addr::new(0x2001, 0xdb8, 0x5100, 0, 0, 0, 0, 2),
        )?;
        // Created directly in the namespaces: no interface ever exists on the host.
        run(Command::new("ip").args([
            "link", "add", INTERFACE, "netns", &app.name, "type", "veth", "peer", "name",
            INTERFACE, "netns", &peer.name,
        ]))?;
        for ns in [&app, &peer] {
            let v4 = format!("{}/{IPV4_PREFIX}", ns.ipv4);
            let v6 = format!("{}/{IPV6_PREFIX}", ns.ipv6);
            ns.ip(["link", "set", "lo", "up"])?;
            ns.ip(["addr", "add", &v4, "dev", INTERFACE])?;
            ns.ip(["-6", "addr", "add", &v6, "dev", INTERFACE, "nodad"])?;
            ns.ip(["link", "set", INTERFACE, "up"])?;
        }
        for ns in [&app, &peer] {
            wait_for(
                "veth end to come up",
                LINK_UP_TIMEOUT,
                Duration::from_millis(20),
                || ns.link_is_up(),
            )?;
        }
        Ok(TestNet { app, peer })
    }

    /// The namespace where the application (and the capture) runs.
    pub fn app(&self) -> &Netns {
        &self.app
    }

    /// The namespace acting as the remote side.
    pub fn peer(&self) -> &Netns {
        &self.peer
    }
}
