//! gVisor's capture limits, reproduced on a normal kernel with seccomp: the tests of the
//! ring-less capture path (Cloud Run gen1) run the capture under this filter.
//!
//! gVisor implements `AF_PACKET` sockets but refuses `PACKET_RX_RING`, `PACKET_TX_RING` and
//! `PACKET_VERSION` (no `TPACKET` rings) and `SO_ATTACH_FILTER`, all with `ENOPROTOOPT`.
//! [`restrict_like_gvisor`] makes exactly those `setsockopt` calls fail the same way in a
//! child process (and everything it executes); every other system call is allowed.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::{Error, Result};

/// `SOL_PACKET`.
pub const SOL_PACKET: u64 = 263;
/// `PACKET_RX_RING`, `PACKET_VERSION`, `PACKET_TX_RING`.
pub const REFUSED_PACKET_OPTIONS: [u64; 3] = [5, 10, 13];
/// `SOL_SOCKET`.
pub const SOL_SOCKET: u64 = 1;
/// `SO_ATTACH_FILTER`.
pub const SO_ATTACH_FILTER: u64 = 26;

fn seccomp_error(error: impl std::fmt::Display) -> Error {
    Error::io(
        "building the gVisor-like seccomp filter",
        io::Error::other(error.to_string()),
    )
}

/// `PACKET_AUXDATA`, refused by [`Limits::Strict`].
pub const PACKET_AUXDATA: u64 = 8;
/// `PACKET_STATISTICS` (`getsockopt`), refused by [`Limits::Strict`].
pub const PACKET_STATISTICS: u64 = 6;
/// `SO_TIMESTAMPNS`, refused by [`Limits::Strict`].
pub const SO_TIMESTAMPNS: u64 = 35;

/// Which limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// What gVisor is known to refuse: packet rings and kernel filters.
    Gvisor,
    /// Also `PACKET_AUXDATA`, `SO_TIMESTAMPNS` and `getsockopt(PACKET_STATISTICS)`: options
    /// a gVisor version may lack, for the capture's fallbacks (original lengths from
    /// `MSG_TRUNC`, microsecond timestamps, unknown drops).
    Strict,
}

/// The seccomp program: `setsockopt(fd, SOL_PACKET, PACKET_RX_RING | PACKET_VERSION |
/// PACKET_TX_RING, …)` and `setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, …)` fail with
/// `ENOPROTOOPT`; everything else is allowed.
pub fn gvisor_filter() -> Result<BpfProgram> {
    filter(Limits::Gvisor)
}

/// The seccomp program for `limits` (see [`gvisor_filter`]).
pub fn filter(limits: Limits) -> Result<BpfProgram> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(seccomp_error)?;
    let rule = |level: u64, option: u64| -> Result<SeccompRule> {
        SeccompRule::new(vec![
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, level)
                .map_err(seccomp_error)?,
            SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, option)
                .map_err(seccomp_error)?,
        ])
        .map_err(seccomp_error)
    };
    let mut rules = Vec::new();
    for option in REFUSED_PACKET_OPTIONS {
        rules.push(rule(SOL_PACKET, option)?);
    }
    rules.push(rule(SOL_SOCKET, SO_ATTACH_FILTER)?);
    let mut syscalls = BTreeMap::new();
    if limits == Limits::Strict {
        rules.push(rule(SOL_PACKET, PACKET_AUXDATA)?);
        rules.push(rule(SOL_SOCKET, SO_TIMESTAMPNS)?);
        syscalls.insert(
            libc::SYS_getsockopt,
            vec![rule(SOL_PACKET, PACKET_STATISTICS)?],
        );
    }
    syscalls.insert(libc::SYS_setsockopt, rules);
    let filter = SeccompFilter::new(
        syscalls,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOPROTOOPT as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    filter.try_into().map_err(seccomp_error)
}

/// Makes `command`'s process (and whatever it executes: seccomp filters are inherited) see
/// gVisor's capture limits.
pub fn restrict_like_gvisor(command: &mut Command) -> Result<()> {
    restrict(command, Limits::Gvisor)
}

/// [`restrict_like_gvisor`] with other [`Limits`].
pub fn restrict(command: &mut Command, limits: Limits) -> Result<()> {
    let program = filter(limits)?;
    // SAFETY: the hook runs in the forked child before exec; `apply_filter` only issues the
    // prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2) system calls on a program built before the
    // fork, allocating nothing.
    unsafe {
        command.pre_exec(move || seccompiler::apply_filter(&program).map_err(io::Error::other));
    }
    Ok(())
}
