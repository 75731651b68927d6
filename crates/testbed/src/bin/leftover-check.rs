//! `leftover-check -- COMMAND [ARGS…]`: runs a test command and fails when it left anything
//! behind: processes, network namespaces, mounts, podman containers or pods.
//!
//! Processes are found exactly, not by name: this program makes itself the *child subreaper*
//! of everything the command starts (`PR_SET_CHILD_SUBREAPER`), so an orphan — a `sleep`
//! whose shell was killed, a daemon that double-forked — is re-parented here instead of to
//! PID 1. Whatever still descends from this process once the command has exited is a
//! leftover. Namespaces, mounts and containers are compared with a snapshot taken before the
//! command starts. A namespace `testbed` named after a process that is still alive belongs to
//! another run (all of this command's processes are gone by then) and is left alone; other
//! things another program creates meanwhile would show too, so run it on a quiet machine, as
//! CI is.
//!
//! Every leftover is named on stderr, then removed, so that the next run starts clean. The
//! exit code is the command's when it failed, 1 when it passed but left something, else 0.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => &args[..],
    };
    let Some((program, rest)) = command.split_first() else {
        eprintln!("usage: leftover-check -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("leftover-check: cannot become a child subreaper: {e}");
        return ExitCode::from(2);
    }
    let before = Snapshot::take();
    let child = match Command::new(program).args(rest).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("leftover-check: cannot run {program}: {e}");
            return ExitCode::from(2);
        }
    };
    let code = wait_reaping_orphans(child.id());
    let leftovers = sweep(&before);
    for leftover in &leftovers {
        eprintln!("leftover-check: left behind: {leftover}");
    }
    if leftovers.is_empty() {
        eprintln!("leftover-check: nothing left behind (processes, network namespaces, mounts, containers)");
    } else {
        eprintln!(
            "leftover-check: {} thing(s) left behind (named above, now removed)",
            leftovers.len()
        );
    }
    match code {
        0 if leftovers.is_empty() => ExitCode::SUCCESS,
        0 => ExitCode::from(1),
        code => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}

/// Waits for the command like PID 1 would: orphans re-parented here are reaped as they exit
/// (a test that waits for a killed process to vanish from `/proc` must see it vanish), and
/// the command's own exit code is returned (1 for a signal).
fn wait_reaping_orphans(command: u32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None::<nix::unistd::Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() as u32 == command => return code,
            Ok(WaitStatus::Signaled(pid, _, _)) if pid.as_raw() as u32 == command => return 1,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // No child at all: the command is gone.
            Err(_) => return 1,
        }
    }
}

/// What exists before the command runs, to compare with what exists after it.
struct Snapshot {
    namespaces: BTreeSet<String>,
    mounts: BTreeSet<String>,
    containers: BTreeSet<String>,
    pods: BTreeSet<String>,
}

impl Snapshot {
    fn take() -> Snapshot {
        Snapshot {
            namespaces: namespaces(),
            mounts: mounts(),
            containers: podman_list(&["ps", "-a", "--format", "{{.ID}} {{.Names}}"]),
            pods: podman_list(&["pod", "ps", "--format", "{{.ID}} {{.Name}}"]),
        }
    }
}

/// Names and removes everything new since `before`; processes first, since a leftover
/// process can hold a mount or a namespace busy.
fn sweep(before: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    // Descendants can fork while being killed: repeat until none remain.
    for _ in 0..10 {
        let descendants = descendants(std::process::id());
        if descendants.is_empty() {
            break;
        }
        for (pid, cmdline) in descendants {
            found.push(format!("process {pid}: {cmdline}"));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        reap_all();
    }
    let after = Snapshot::take();
    for pod in after.pods.difference(&before.pods) {
        found.push(format!("podman pod {pod}"));
        remove(&["podman", "pod", "rm", "-f", first_word(pod)]);
    }
    for container in after.containers.difference(&before.containers) {
        found.push(format!("podman container {container}"));
        remove(&["podman", "rm", "-f", first_word(container)]);
    }
    // Innermost first, so a mount below another one is not hidden by its parent's removal.
    let new_mounts: Vec<&String> = after.mounts.difference(&before.mounts).collect();
    for mount in new_mounts.into_iter().rev() {
        found.push(format!("mount {mount}"));
        remove(&["umount", "-l", mount]);
    }
    for namespace in after.namespaces.difference(&before.namespaces) {
        if creator(namespace)
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        {
            continue;
        }
        found.push(format!("network namespace {namespace}"));
        remove(&["ip", "netns", "del", namespace]);
    }
    found
}

/// The pid in a `testbed` namespace name (`tb-<tag>-<pid>-<counter>-<role>`).
fn creator(namespace: &str) -> Option<u32> {
    let rest = namespace.strip_prefix("tb-")?;
    let mut fields = rest.rsplit('-');
    let (_role, _counter) = (fields.next()?, fields.next()?);
    fields.next()?.parse().ok()
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or(line)
}

fn remove(command: &[&str]) {
    let _ = Command::new(command[0])
        .args(&command[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Waits for every child that has exited (orphans re-parented here included).
fn reap_all() {
    std::thread::sleep(std::time::Duration::from_millis(200));
    while let Ok(status) = nix::sys::wait::waitpid(
        None::<nix::unistd::Pid>,
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    ) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

/// Every live process below `root`, with its command line (zombies already reaped).
fn descendants(root: u32) -> Vec<(u32, String)> {
    reap_all();
    let mut parents: BTreeMap<u32, u32> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            parents.insert(pid, ppid);
        }
    }
    let mut below = Vec::new();
    for &pid in parents.keys() {
        let mut at = pid;
        // A parent chain is short; the bound only guards against a pid-reuse cycle.
        for _ in 0..64 {
            match parents.get(&at) {
                Some(&ppid) if ppid == root => {
                    below.push((pid, cmdline(pid)));
                    break;
                }
                Some(&ppid) if ppid > 1 => at = ppid,
                _ => break,
            }
        }
    }
    below
}

/// The parent pid from `/proc/PID/stat`, skipping zombies (state `Z`, reaped next).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    fields.next()?.parse().ok()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn namespaces() -> BTreeSet<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points of this mount namespace (`/proc/self/mountinfo`, field 5).
fn mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| {
            text.lines()
                .filter_map(|line| line.split(' ').nth(4).map(str::to_string))
                // A named network namespace is a mount too; it is reported as a namespace.
                // podman's own per-container mounts come and go with its containers,
                // which are checked on their own.
                .filter(|point| {
                    !point.starts_with("/run/netns") && !point.contains("/containers/storage/")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lines of a podman listing; empty when podman is not installed.
fn podman_list(args: &[&str]) -> BTreeSet<String> {
    Command::new("podman")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
